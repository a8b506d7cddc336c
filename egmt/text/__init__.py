"""Text side of EGMT (paper Sec. III-A): captions -> entities -> entity features and pseudo-labels.

Modules, in pipeline order: ``captions`` (file / BLIP-2), ``entities`` (spaCy / FACTUAL,
merging), ``encoders`` (MiniLM / CLIP), ``bank`` (entity -> vector cache on disk), ``labels``
(vocabulary, synonym map, multi-hot labels), ``annotations`` (the per-dataset JSON Lines
files), ``annotate`` (the whole pipeline, ``egmt annotate``). Heavy libraries (spaCy,
transformers) load only when a model is loaded.
"""

from egmt.text.annotations import PairAnnotation, read_annotations, write_annotations
from egmt.text.bank import EntityBank
from egmt.text.labels import Vocabulary

__all__ = ["PairAnnotation", "read_annotations", "write_annotations", "EntityBank", "Vocabulary"]
