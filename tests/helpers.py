"""Stand-ins shared by several test folders (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image


class RandomEncoder:
    """A text encoder stand-in: a fixed random ``dim``-vector per string (stable across runs)."""

    name = "random"

    def __init__(self, dim: int = 12):
        self.dim = dim

    def encode(self, texts):
        vecs = [torch.randn(self.dim, generator=torch.Generator().manual_seed(zlib.crc32(t.encode()))) for t in texts]
        return torch.stack(vecs) if vecs else torch.zeros(0, self.dim)


class CountingEncoder:
    """Wraps an encoder and records what it was asked to encode."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.name, self.dim, self.model_id = inner.name, inner.dim, getattr(inner, "model_id", "")

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)


def write_random_pairs(root: Path, stems: tuple[str, ...], shape: tuple[int, int], seed: int = 0) -> Path:
    """ROOT/{ir,vi}/STEM.png: random grey pairs of ``shape`` (H, W); returns ``root``."""
    rng = np.random.default_rng(seed)
    for side in ("ir", "vi"):
        (root / side).mkdir(parents=True)
        for stem in stems:
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / side / f"{stem}.png")
    return root


def load_benchmark(name: str) -> ModuleType:
    """A script of ``benchmarks/`` (not a package module) loaded from its path."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
