"""A tiny data root (64x80 crops of real TNO and RoadScene pairs), hand-made annotations with
a random 12-d entity bank, and a tiny EGMT checkpoint trained on them for 2 steps."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from egmt.bench.entity_effect import UNRELATED_ENTITIES
from egmt.config import EGMTConfig
from egmt.text.annotations import PairAnnotation, write_annotations
from egmt.text.bank import EntityBank
from egmt.text.labels import Vocabulary
from tests.helpers import RandomEncoder
from egmt.train.trainer import train

CLASSES = ["person", "tree", "house"]
# dataset -> {stem in the real dataset: entities}; roadscene's test.txt lists the first two.
ENTITIES = {
    "tno": {"01": ["person", "house", "tree"], "02": ["person", "tree"], "05": []},
    "roadscene": {"FLIR_00211": ["tree"], "FLIR_00977": ["house", "person"], "FLIR_01130": ["tree", "house"]},
}
ROADSCENE_TEST = ["FLIR_00211", "FLIR_00977"]
BOX = {"tno": (200, 200, 280, 264), "roadscene": (200, 100, 280, 164)}  # 80 x 64 crops


@contextlib.contextmanager
def one_thread():
    """Torch on one thread: the tiny network runs ~20x faster than on 2 threads of a shared,
    busy machine (OpenMP threads wait on each other), and results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory, data_dir) -> Path:
    """ROOT/data/{tno,roadscene}/{ir,vi}/STEM.png (+ roadscene/test.txt) and ROOT/annotations/."""
    root = tmp_path_factory.mktemp("bench")
    for dataset, stems in ENTITIES.items():
        for sub in ("ir", "vi"):
            folder = root / "data" / dataset / sub
            folder.mkdir(parents=True)
            for stem in stems:
                src = next((data_dir / dataset / sub).glob(f"{stem}.*"))
                with Image.open(src) as img:
                    img.crop(BOX[dataset]).save(folder / f"{stem}.png")
    (root / "data" / "roadscene" / "test.txt").write_text("\n".join(ROADSCENE_TEST) + "\n")

    ann = root / "annotations"
    ann.mkdir()
    vocab = Vocabulary(classes=CLASSES, synonyms={}, positive_ratio=[2 / 3, 2 / 3, 1 / 3])
    vocab.save(ann / "vocabulary.json")
    for dataset, stems in ENTITIES.items():
        write_annotations(
            ann / f"{dataset}.jsonl", [PairAnnotation(n, "", "", e, [], e, vocab.labels(e)) for n, e in stems.items()]
        )
    bank = EntityBank("random", 12)
    bank.add(CLASSES + list(UNRELATED_ENTITIES), RandomEncoder())  # the entity-effect table's unrelated ones too
    bank.save(ann / "entity_bank.safetensors")
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_root, tmp_path_factory) -> Path:
    """A checkpoint folder of a small EGMT (8 channels, 8x8 windows) trained 2 steps on the TNO crops."""
    cfg = EGMTConfig()
    cfg.data.root = str(tiny_root / "data" / "tno")
    cfg.data.split = None
    cfg.data.annotations = str(tiny_root / "annotations" / "tno.jsonl")
    cfg.data.crop_size, cfg.data.crop_stride = 32, 24
    cfg.model.channels, cfg.model.num_heads, cfg.model.window_size = 8, 2, 8
    cfg.train.batch_size, cfg.train.max_steps, cfg.train.save_every, cfg.train.device = 2, 2, 2, "cpu"
    with one_thread():
        return train(cfg, tmp_path_factory.mktemp("run"))
