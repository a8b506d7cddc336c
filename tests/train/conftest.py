"""A tiny real dataset (crops of TNO pairs) with hand-made annotations, for training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from egmt.config import EGMTConfig
from egmt.text.annotations import PairAnnotation, write_annotations
from egmt.text.bank import EntityBank
from egmt.text.labels import Vocabulary
from tests.helpers import RandomEncoder

CLASSES = ["person", "tree", "house"]
ENTITIES = {"01": ["person", "house", "tree"], "02": ["person", "tree"], "05": []}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, data_dir) -> Path:
    """ROOT/{ir,vi}/NAME.png: 64x80 crops of three TNO pairs, annotations.jsonl + vocabulary + bank."""
    root = tmp_path_factory.mktemp("tiny")
    for sub in ("ir", "vi"):
        (root / sub).mkdir()
        for name in ENTITIES:
            img = Image.open(data_dir / "tno" / sub / f"{name}.png").convert("L")
            img.crop((200, 200, 280, 264)).save(root / sub / f"{name}.png")
    (root / "train.txt").write_text("\n".join(ENTITIES) + "\n")

    ann = root / "annotations"
    ann.mkdir()
    vocab = Vocabulary(classes=CLASSES, synonyms={}, positive_ratio=[2 / 3, 2 / 3, 1 / 3])
    vocab.save(ann / "vocabulary.json")
    write_annotations(
        ann / "tiny.jsonl",
        [PairAnnotation(n, "", "", e, [], e, vocab.labels(e)) for n, e in ENTITIES.items()],
    )

    bank = EntityBank("random", 12)
    bank.add(CLASSES, RandomEncoder())
    bank.save(ann / "entity_bank.safetensors")
    return root


@pytest.fixture
def tiny_config():
    """Factory: a small, fast EGMTConfig over the tiny dataset, train fields overridable."""
    return make_tiny_config


def make_tiny_config(root: Path, **train) -> EGMTConfig:
    cfg = EGMTConfig()
    cfg.data.root = str(root)
    cfg.data.split = "train.txt"
    cfg.data.annotations = str(root / "annotations" / "tiny.jsonl")
    cfg.data.crop_size = 32
    cfg.data.crop_stride = 24
    cfg.model.channels = 8
    cfg.model.num_heads = 2
    cfg.model.window_size = 8
    cfg.train.batch_size = 2
    cfg.train.log_every = 1
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg
