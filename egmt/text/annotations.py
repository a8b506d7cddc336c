"""Annotation files: one JSON Lines file per dataset, one line per image pair.

A line is ``{"name", "ir_caption", "vi_caption", "ir_entities", "vi_entities", "entities",
"labels"}``: the two captions, the entities found in each, their merged and de-duplicated
union (at most 8, the list the network sees, unless it reads the captions:
:meth:`PairAnnotation.tokens`) and the multi-hot pseudo-label in the order of
the vocabulary's classes. Written by ``egmt annotate``; read by training and inference.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from egmt.errors import EGMTError
from egmt.fileio import read_json_lines, write_text_atomic
from egmt.text.entities import dedupe

KEYS = ("name", "ir_caption", "vi_caption", "ir_entities", "vi_entities", "entities", "labels")


def caption_tokens(ir_caption: str, vi_caption: str) -> list[str]:
    """A pair's two captions as the texts a model that reads captions sees (w/o ENT), normalised as
    the entity bank keys them (:func:`egmt.text.entities.dedupe`: lower case, no punctuation or
    leading article): both, or one where they are the same text; empty captions dropped."""
    return dedupe([ir_caption, vi_caption])


@dataclass
class PairAnnotation:
    """Captions, entities and pseudo-label of one IR/VIS pair (``name`` is the file stem)."""

    name: str
    ir_caption: str
    vi_caption: str
    ir_entities: list[str]
    vi_entities: list[str]
    entities: list[str]
    labels: list[int]

    def sources(self) -> list[str]:
        """Where each merged entity came from: ``"ir"``, ``"vi"`` or ``"both"`` (Fig. 4 colours)."""
        ir, vi = set(self.ir_entities), set(self.vi_entities)
        out = []
        for e in self.entities:
            out.append("both" if (e in ir and e in vi) else "ir" if e in ir else "vi" if e in vi else "unknown")
        return out

    def tokens(self, kind: str = "entities") -> list[str]:
        """The texts the network reads (``ModelConfig.text_tokens``): the merged ``entities``, or
        the two ``captions`` (one where they are the same text)."""
        if kind == "entities":
            return list(self.entities)
        if kind == "captions":
            return caption_tokens(self.ir_caption, self.vi_caption)
        raise EGMTError(f"unknown text tokens {kind!r} (entities or captions)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object, where: str = "annotation") -> PairAnnotation:
        """Build from a parsed JSON object, checking every key and type (``where`` names the line)."""
        if not isinstance(d, dict):
            raise EGMTError(f"{where}: expected a JSON object, got {type(d).__name__}")
        missing = [k for k in KEYS if k not in d]
        if missing:
            raise EGMTError(f"{where}: missing key(s) {missing}")
        for k in ("name", "ir_caption", "vi_caption"):
            if not isinstance(d[k], str):
                raise EGMTError(f"{where}: {k!r} must be a string")
        if not d["name"]:
            raise EGMTError(f"{where}: empty 'name'")
        for k in ("ir_entities", "vi_entities", "entities"):
            if not isinstance(d[k], list) or not all(isinstance(e, str) and e for e in d[k]):
                raise EGMTError(f"{where}: {k!r} must be a list of non-empty strings")
        labels = d["labels"]
        if not isinstance(labels, list) or not all(type(v) is int and v in (0, 1) for v in labels):
            raise EGMTError(f"{where}: 'labels' must be a list of 0/1 integers")
        return cls(**{k: d[k] for k in KEYS})


def read_annotations(path: str | os.PathLike) -> dict[str, PairAnnotation]:
    """Read a JSON Lines annotation file into ``{pair name: PairAnnotation}`` (file order).

    Raises :class:`EGMTError` naming the file and line on bad JSON, a missing key, a wrong type,
    a repeated pair name, or label vectors of different lengths.
    """
    path = Path(path)
    out: dict[str, PairAnnotation] = {}
    num_labels: int | None = None
    for where, d in read_json_lines(path, "annotation file", " (make it with `egmt annotate`)"):
        ann = PairAnnotation.from_dict(d, where)
        if ann.name in out:
            raise EGMTError(f"{where}: pair {ann.name!r} appears twice")
        if num_labels is None:
            num_labels = len(ann.labels)
        elif len(ann.labels) != num_labels:
            raise EGMTError(f"{where}: {len(ann.labels)} labels, but earlier lines have {num_labels}")
        out[ann.name] = ann
    if not out:
        raise EGMTError(f"{path}: no annotations in file")
    return out


def write_annotations(path: str | os.PathLike, annotations: Iterable[PairAnnotation]) -> None:
    """Write annotations as JSON Lines, atomically (temp file in the same folder, then rename)."""
    lines = [json.dumps(a.to_dict(), ensure_ascii=False) for a in annotations]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
