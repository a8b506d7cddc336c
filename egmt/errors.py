"""The one exception type that egmt raises for bad input.

The CLI prints an ``EGMTError`` as a single line (``egmt: error: ...``) instead of a
traceback, so its message must name the file (or entity, or checkpoint) and the cause.
"""


class EGMTError(Exception):
    """Bad user input: unreadable file, size mismatch, wrong checkpoint, unknown entity..."""
