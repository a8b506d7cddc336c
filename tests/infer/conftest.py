"""A small untrained EGMT checkpoint (with entity bank and vocabulary) for inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from egmt.config import EGMTConfig, ModelConfig
from egmt.model import EGMT
from egmt.text.bank import EntityBank
from egmt.text.labels import Vocabulary
from tests.helpers import RandomEncoder

CLASSES = ["person", "tree", "house", "road"]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    cfg = EGMTConfig(model=ModelConfig(channels=8, num_heads=2, window_size=8, entity_dim=12, num_classes=len(CLASSES)))
    EGMT(cfg.model).save_pretrained(folder, cfg)
    bank = EntityBank("random", 12)
    bank.add(CLASSES + ["car"], RandomEncoder())
    bank.save(folder / "entity_bank.safetensors")
    Vocabulary(classes=CLASSES, synonyms={}, positive_ratio=[0.5] * len(CLASSES)).save(folder / "vocabulary.json")
    return folder
