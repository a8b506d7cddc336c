"""Where the entities of a pair come from at inference time, in order of preference.

1. an annotation file from ``egmt annotate`` (its ``entities`` for the pair);
2. a captions file, run through the entity pipeline (extractor, merge, de-duplication);
3. entities typed by the user (``--entities "person, car"``), the same for every pair;
4. none: the fuser's caption-free mode (its classifier picks them).

A checkpoint that reads captions instead of entities (``ModelConfig.text_tokens = "captions"``,
Table VIII's w/o ENT) gets the pair's two captions from either file (``tokens="captions"``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from egmt.text.annotations import caption_tokens, read_annotations
from egmt.text.captions import read_caption_file

if TYPE_CHECKING:
    from egmt.text.entities import EntityExtractor

log = logging.getLogger(__name__)


def parse_entity_list(text: str) -> list[str]:
    """``"person, car , road"`` -> ``["person", "car", "road"]`` (lowercase, empties dropped)."""
    return [e.strip().lower() for e in text.split(",") if e.strip()]


class EntityResolver:
    """Per-pair entity lists from the sources the user gave; ``None`` means caption-free."""

    def __init__(
        self,
        annotations: str | Path | None = None,
        captions: str | Path | None = None,
        typed: list[str] | None = None,
        extractor: str = "spacy",
        extractor_path: str | None = None,
        max_entities: int = 8,
        tokens: str = "entities",
        warn_missing: bool = False,
    ):
        self.tokens = tokens
        self.warn_missing = warn_missing  # egmt fuse: a pair the given files do not name is said
        self.annotations = read_annotations(annotations) if annotations else {}
        self.captions = read_caption_file(captions) if captions else {}
        self.files = [str(f) for f in (annotations, captions) if f]
        self.typed = typed
        self.extractor_name, self.extractor_path = extractor, extractor_path
        self.max_entities = max_entities
        self._extractor: EntityExtractor | None = None

    def __call__(self, name: str) -> tuple[list[str] | None, str]:
        """``(entities, source)``, source one of annotations / captions / typed / none."""
        if name in self.annotations:
            return self.annotations[name].tokens(self.tokens), "annotations"
        if name in self.captions and self.tokens == "captions":
            caps = self.captions[name]
            return caption_tokens(caps.ir, caps.vi), "captions"
        if name in self.captions:
            from egmt.text.entities import load_extractor, merge_entities

            if self._extractor is None:
                self._extractor = load_extractor(self.extractor_name, self.extractor_path)
            caps = self.captions[name]
            ir_ents, vi_ents = self._extractor.extract([caps.ir, caps.vi])
            return merge_entities(ir_ents, vi_ents, self.max_entities), "captions"
        fallback: tuple[list[str] | None, str] = (list(self.typed), "typed") if self.typed is not None else (None, "none")
        if self.files and self.warn_missing:  # a file was given for the pairs, and this one is not in it: say so
            how = "with the typed --entities" if self.typed is not None else "caption-free"
            log.warning("pair %r is not in %s: fused %s", name, " or ".join(self.files), how)
        return fallback
