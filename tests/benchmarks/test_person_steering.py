"""benchmarks/person_steering.py: the per-pair measures pooled over pairs, worked out by hand with
a stub fuser (the script is not a package module, so it is loaded from its path)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from egmt.data.boxes import Box
from egmt.metrics.retention import box_correlation
from tests.helpers import load_benchmark


class StubFeatures:
    """Each pair's entities; 'person' and 'man' name the person class."""

    def __init__(self, entities: dict[str, list[str]]):
        self._entities = entities

    def entities(self, name: str) -> list[str]:
        return list(self._entities[name])

    def class_mask(self, names, classes):
        return torch.tensor([[e in ("person", "man") for e in self._entities[n]] for n in names])


class StubFuser:
    """Fused with a person named: the infrared; otherwise the visible image (as [0, 1] floats)."""

    def __init__(self):
        self.calls = []

    def __call__(self, ir, vi, entities=None):
        self.calls.append(list(entities))
        named = any(e in ("person", "man") for e in entities)
        return SimpleNamespace(luma=ir if named else vi)


def write_pair(root: Path, name: str, ir: np.ndarray, vi: np.ndarray) -> None:
    for role, array in (("ir", ir), ("vi", vi)):
        (root / role).mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / role / f"{name}.png")


def test_steer_pools_every_pair_naming_a_person(tmp_path):
    steering = load_benchmark("person_steering")
    rng = np.random.default_rng(0)
    images = {
        n: (rng.integers(0, 256, (40, 48), dtype=np.uint8), rng.integers(0, 256, (40, 48), dtype=np.uint8))
        for n in ("a", "b", "c")
    }
    for name, (ir, vi) in images.items():
        write_pair(tmp_path, name, ir, vi)
    (tmp_path / "split.txt").write_text("a\nb\nc\n")
    features = StubFeatures({"a": ["person", "road"], "b": ["man"], "c": ["tree", "car"]})
    boxes = {"a": [Box("person", 2, 3, 20, 30), Box("car", 0, 0, 10, 10)], "b": [Box("person", 10, 5, 40, 35)]}
    fuser = StubFuser()

    r = steering.steer(fuser, features, boxes, tmp_path, tmp_path / "split.txt")

    # pair c names nobody and is skipped; b, left with nothing, is fused with "tree"
    assert fuser.calls == [["person", "road"], ["road"], ["man"], ["tree"]]
    assert r["pairs"] == 2 and r["boxes"] == 2
    grey = {n: (ir / 255.0, vi / 255.0) for n, (ir, vi) in images.items()}
    moved = [np.abs(ir - vi).mean() * 255 for ir, vi in (grey["a"], grey["b"])]
    assert r["moved"] == pytest.approx(np.mean(moved), rel=1e-5)
    # named: the infrared itself in both person boxes; not named: the visible image there
    assert r["named"] == pytest.approx(1.0)
    unnamed = [box_correlation(grey[n][0], grey[n][1], box.corners) for n, box in (("a", boxes["a"][0]), ("b", boxes["b"][0]))]
    assert r["unnamed"] == pytest.approx(np.mean(unnamed), abs=1e-6)


def test_steer_without_people_is_empty(tmp_path):
    steering = load_benchmark("person_steering")
    ir = np.full((16, 16), 100, np.uint8)
    write_pair(tmp_path, "a", ir, ir)
    (tmp_path / "split.txt").write_text("a\n")
    r = steering.steer(StubFuser(), StubFeatures({"a": ["tree"]}), {}, tmp_path, tmp_path / "split.txt")
    assert r["pairs"] == 0 and np.isnan(r["moved"]) and np.isnan(r["named"])
