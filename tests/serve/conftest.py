"""The demo's fixtures: the shipped checkpoint behind a :class:`DemoPipeline`, the bundled samples,
and reference fusions made by :class:`EGMTFuser` directly (what ``egmt fuse`` writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from egmt.infer.fuser import EGMTFuser
from egmt.infer.run import DEFAULT_CHECKPOINT
from egmt.serve.pipeline import DemoPipeline

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "tno"


@pytest.fixture(scope="session")
def fuser() -> EGMTFuser:
    return EGMTFuser.from_pretrained(DEFAULT_CHECKPOINT, device="cpu")


@pytest.fixture(scope="session")
def pipeline(fuser) -> DemoPipeline:
    return DemoPipeline(fuser)


def expected_fused(fuser: EGMTFuser, name: str, entities: list[str] | None) -> np.ndarray:
    """The 8-bit pixels ``egmt fuse`` writes for the bundled pair ``name`` (write_image's rounding)."""
    result = fuser(SAMPLES / "ir" / f"{name}.png", SAMPLES / "vi" / f"{name}.png", entities=entities)
    return np.rint(np.clip(result.image, 0.0, 1.0) * 255.0).astype(np.uint8)
