"""Entity bank: entity text -> feature vector, cached on disk so no entity is encoded twice.

Training and inference read entity features from here and never load a text encoder for an
entity already seen. One bank holds the entities of any number of datasets, all from one
encoder (name, width and checkpoint fingerprint are checked on every add).

File (safetensors): tensor ``vectors`` ``[N, D]`` float32; metadata ``encoder`` (name),
``dim`` (width), ``strings`` (JSON list of the N entity strings, in row order) and
``model`` (fingerprint of the encoder checkpoint, may be empty).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from egmt.errors import EGMTError
from egmt.fileio import write_bytes_atomic
from egmt.text.entities import entity_key, normalize_entity


class EntityBank:
    """Entity strings and their vectors ``[N, D]`` float32 from one text encoder."""

    def __init__(self, encoder: str, dim: int, strings: Sequence[str] = (), vectors: torch.Tensor | None = None, model: str = ""):
        if dim < 1:
            raise EGMTError(f"entity bank: width must be >= 1, got {dim}")
        self.encoder, self.dim, self.model = encoder, int(dim), model
        self.strings: list[str] = [normalize_entity(s) for s in strings]
        self.vectors = torch.zeros(0, self.dim) if vectors is None else vectors.detach().to("cpu", torch.float32).contiguous()
        if self.vectors.shape != (len(self.strings), self.dim):
            raise EGMTError(
                f"entity bank: vectors {tuple(self.vectors.shape)} do not match {len(self.strings)} strings x {self.dim}"
            )
        self._index: dict[str, int] = {}
        for i, s in enumerate(self.strings):
            if not s:
                raise EGMTError(f"entity bank: empty entity string at row {i}")
            k = entity_key(s)
            if k in self._index:
                raise EGMTError(f"entity bank: entity {s!r} appears twice")
            self._index[k] = i

    @classmethod
    def for_encoder(cls, encoder) -> EntityBank:
        """An empty bank for ``encoder`` (an object from :func:`egmt.text.encoders.load_encoder`)."""
        return cls(encoder.name, encoder.dim, model=getattr(encoder, "model_id", ""))

    def __len__(self) -> int:
        return len(self.strings)

    def __contains__(self, entity: str) -> bool:
        return entity_key(entity) in self._index

    def __repr__(self) -> str:
        return f"EntityBank(encoder={self.encoder!r}, dim={self.dim}, entities={len(self)})"

    def lookup(self, entities: Sequence[str]) -> torch.Tensor:
        """Vectors ``[E, D]`` of ``entities`` in order (``[0, D]`` for none); EGMTError if one is unknown."""
        rows = []
        for e in entities:
            i = self._index.get(entity_key(e))
            if i is None:
                raise EGMTError(
                    f"entity {e!r} is not in the entity bank ({self.encoder}, {len(self)} entities); run `egmt annotate` to add it"
                )
            rows.append(i)
        return self.vectors[torch.tensor(rows, dtype=torch.long)] if rows else torch.zeros(0, self.dim)

    def missing(self, entities: Iterable[str]) -> list[str]:
        """Normalised entities of ``entities`` not yet in the bank, de-duplicated, in order."""
        out, seen = [], set()
        for e in entities:
            n = normalize_entity(e)
            k = entity_key(n)
            if n and k not in self._index and k not in seen:
                seen.add(k)
                out.append(n)
        return out

    def check_encoder(self, encoder) -> None:
        """EGMTError unless ``encoder`` is the one this bank's vectors came from."""
        if encoder.name != self.encoder or encoder.dim != self.dim:
            raise EGMTError(
                f"entity bank holds {self.encoder} vectors ({self.dim}-d), not {encoder.name} ({encoder.dim}-d); use another bank"
            )
        model = getattr(encoder, "model_id", "")
        if self.model and model and model != self.model:
            raise EGMTError(
                f"entity bank vectors come from {self.encoder} checkpoint {self.model}, not {model}; use another bank"
            )

    def add(self, entities: Iterable[str], encoder) -> list[str]:
        """Encode and append the entities not yet in the bank; return those added."""
        self.check_encoder(encoder)
        new = self.missing(entities)
        if not new:
            return []
        vecs = encoder.encode(new)
        if vecs.shape != (len(new), self.dim):
            raise EGMTError(
                f"encoder {encoder.name} returned {tuple(vecs.shape)} for {len(new)} entities, expected width {self.dim}"
            )
        self.vectors = torch.cat([self.vectors, vecs.detach().to("cpu", torch.float32)]).contiguous()
        for s in new:
            self._index[entity_key(s)] = len(self.strings)
            self.strings.append(s)
        if not self.model:
            self.model = getattr(encoder, "model_id", "")
        return new

    def save(self, path: str | os.PathLike) -> None:
        """Write the bank as safetensors, atomically."""
        from safetensors.torch import save

        meta = {
            "encoder": self.encoder,
            "dim": str(self.dim),
            "strings": json.dumps(self.strings, ensure_ascii=False),
            "model": self.model,
        }
        write_bytes_atomic(path, save({"vectors": self.vectors.contiguous()}, metadata=meta))

    @classmethod
    def load(cls, path: str | os.PathLike) -> EntityBank:
        """Read a bank file; :class:`EGMTError` naming the file if it is missing or not a bank."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise EGMTError(f"{path}: entity bank not found (make it with `egmt annotate`)")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if "vectors" not in f.keys():
                    raise EGMTError(f"{path}: not an entity bank (no 'vectors' tensor)")
                vectors = f.get_tensor("vectors")
        except EGMTError:
            raise
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
            raise EGMTError(
                f"{path}: cannot read entity bank ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
            ) from None
        missing = [k for k in ("encoder", "dim", "strings") if k not in meta]
        if missing:
            raise EGMTError(f"{path}: not an entity bank (metadata lacks {missing})")
        try:
            strings = json.loads(meta["strings"])
            dim = int(meta["dim"])
        except (ValueError, json.JSONDecodeError):
            raise EGMTError(f"{path}: corrupt entity bank metadata") from None
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise EGMTError(f"{path}: corrupt entity bank metadata ('strings' is not a list of strings)")
        if vectors.dtype != torch.float32:
            raise EGMTError(f"{path}: entity bank vectors are {vectors.dtype}, expected float32")
        try:
            return cls(meta["encoder"], dim, strings, vectors, model=meta.get("model", ""))
        except EGMTError as e:
            raise EGMTError(f"{path}: {e}") from None
