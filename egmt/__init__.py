"""egmt: Entity-Guided Multi-Task learning for infrared-visible image fusion.

Stages, in the order data flows (a module never imports from a later stage):
``data`` -> ``text`` -> ``model`` -> ``losses`` -> ``metrics`` -> ``train`` / ``infer``
-> ``bench``; ``cli`` only wires them.
"""

from egmt.errors import EGMTError

__version__ = "0.1.0"
__all__ = ["EGMTError", "__version__"]
