"""Entity features and labels as batched tensors: the one interface the network side reads.

Training and inference see, per pair, a list of entity strings (from an annotation file, or
typed by a user; the pair's two captions for a model that reads captions, Table VIII's w/o ENT),
turned into vectors by an
:class:`~egmt.text.bank.EntityBank` and into a multi-hot label by a
:class:`~egmt.text.labels.Vocabulary`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from egmt.errors import EGMTError
from egmt.files import BANK_FILE, VOCABULARY_FILE
from egmt.text.annotations import PairAnnotation, read_annotations
from egmt.text.bank import EntityBank
from egmt.text.labels import Vocabulary


def pad_entity_features(features: Sequence[torch.Tensor], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-pair entity features ``[E_i, D]`` into ``[B, E_max, D]`` and a mask ``[B, E_max]``.

    ``mask`` is True for a real entity and False for padding; ``E_max`` may be 0.
    """
    e_max = max((f.shape[0] for f in features), default=0)
    out = torch.zeros(len(features), e_max, dim)
    mask = torch.zeros(len(features), e_max, dtype=torch.bool)
    for i, f in enumerate(features):
        out[i, : f.shape[0]] = f
        mask[i, : f.shape[0]] = True
    return out, mask


class EntityFeatures:
    """Per-pair entity features ``[B, E, D]``, padding masks ``[B, E]`` and labels ``[B, K]``.

    Built from the three files that ``egmt annotate`` writes: ``DATASET.jsonl`` (one line per
    pair), and beside it ``vocabulary.json`` and ``entity_bank.safetensors``.
    """

    def __init__(
        self, annotations: dict[str, PairAnnotation], bank: EntityBank, vocabulary: Vocabulary, source: str = "annotations"
    ):
        self.annotations = annotations
        self.bank = bank
        self.vocabulary = vocabulary
        self.source = source
        self.tokens = "entities"  # what the network reads (ModelConfig.text_tokens): or "captions" (w/o ENT)

    @classmethod
    def from_annotation_file(cls, path: str | Path) -> EntityFeatures:
        path = Path(path)
        if not path.is_file():
            raise EGMTError(f"{path}: annotation file not found (make it with `egmt annotate`)")
        folder = path.parent
        for name in (BANK_FILE, VOCABULARY_FILE):
            if not (folder / name).is_file():
                raise EGMTError(f"{folder / name}: missing beside the annotations {path.name}")
        return cls(
            read_annotations(path),
            EntityBank.load(folder / BANK_FILE),
            Vocabulary.load(folder / VOCABULARY_FILE),
            source=str(path),
        )

    @classmethod
    def from_annotation_files(cls, paths: Sequence[str | Path]) -> EntityFeatures:
        """Several datasets' annotations as one: the files must lie in one folder (one vocabulary,
        one entity bank, as ``egmt annotate -o FOLDER`` makes them) and name no pair twice."""
        files = [Path(p) for p in paths]
        if not files:
            raise EGMTError("no annotation file given")
        merged = cls.from_annotation_file(files[0])
        for path in files[1:]:
            if path.parent.resolve() != files[0].parent.resolve():
                raise EGMTError(
                    f"{path}: annotations of one run must share a folder (vocabulary and entity bank) with {files[0]}"
                )
            if not path.is_file():
                raise EGMTError(f"{path}: annotation file not found (make it with `egmt annotate`)")
            for name, ann in read_annotations(path).items():
                if name in merged.annotations:
                    raise EGMTError(f"{path}: pair {name!r} is also annotated in another file of this run")
                merged.annotations[name] = ann
        merged.source = ", ".join(str(p) for p in files)
        return merged

    @property
    def dim(self) -> int:
        return self.bank.dim

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary.classes)

    def class_text(self) -> torch.Tensor:
        """Each vocabulary class's text embedding ``[K, D]``: the mean vector of the bank's entities
        whose canonical form (synonyms applied) is the class, e.g. "person" from "person",
        "pedestrian", "man"... (the token classifier's class queries). EGMTError for a class no
        entity of the bank names."""
        rows = []
        for cls in self.vocabulary.classes:
            picked = [i for i, s in enumerate(self.bank.strings) if self.vocabulary.canonical_form(s) == cls]
            if not picked:
                raise EGMTError(f"{self.source}: no entity of the bank names the class {cls!r}")
            rows.append(self.bank.vectors[picked].mean(dim=0))
        return torch.stack(rows)

    def entities(self, name: str) -> list[str]:
        """The texts of pair ``name`` the network reads: its entities, or its captions (w/o ENT)."""
        return self._get(name).tokens(self.tokens)

    def texts(self) -> list[str]:
        """Every pair's texts (:meth:`entities`), in file order."""
        return [t for name in self.annotations for t in self.entities(name)]

    def _get(self, name: str) -> PairAnnotation:
        try:
            return self.annotations[name]
        except KeyError:
            raise EGMTError(f"{self.source}: no annotation for pair {name!r}") from None

    def batch(self, names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Entity features ``[B, E, D]``, mask ``[B, E]`` (True = real) and labels ``[B, K]`` float."""
        feats = [self.bank.lookup(self.entities(n)) for n in names]
        entities, mask = pad_entity_features(feats, self.dim)
        labels = torch.tensor([self._get(n).labels for n in names], dtype=torch.float32).reshape(len(names), -1)
        return entities, mask, labels

    def class_mask(self, names: Sequence[str], classes: Sequence[str]) -> torch.Tensor:
        """``[B, E]`` bool, aligned with :meth:`batch`'s features: True where the pair's entity names
        one of ``classes`` (its canonical form, synonyms applied: "pedestrian" names "person").
        EGMTError for a class the vocabulary does not have."""
        unknown = [c for c in classes if c not in self.vocabulary.classes]
        if unknown:
            raise EGMTError(
                f"{self.source}: {unknown[0]!r} is not a class of the vocabulary ({', '.join(self.vocabulary.classes)})"
            )
        rows = [[self.vocabulary.canonical_form(t) in classes for t in self.entities(n)] for n in names]
        mask = torch.zeros(len(rows), max(map(len, rows), default=0), dtype=torch.bool)
        for i, row in enumerate(rows):
            mask[i, : len(row)] = torch.tensor(row, dtype=torch.bool)
        return mask
