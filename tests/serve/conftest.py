"""The demo's fixtures: the shipped checkpoint behind a :class:`DemoPipeline`, the bundled samples,
and the pixels ``egmt fuse`` writes for a bundled pair, to compare the demo's output with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from egmt.cli import main as cli_main
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


def egmt_fuse_pixels(name: str, entities: str | None, out: Path) -> np.ndarray:
    """The pixels ``egmt fuse`` writes for the bundled pair ``name`` (``entities``: its
    ``--entities``; None: caption-free), the shipped checkpoint, on the CPU."""
    argv = [
        "fuse",
        "--ir",
        str(SAMPLES / "ir" / f"{name}.png"),
        "--vi",
        str(SAMPLES / "vi" / f"{name}.png"),
        "-o",
        str(out / f"{name}.png"),
        "--device",
        "cpu",
    ]
    assert cli_main(argv + (["--entities", entities] if entities is not None else [])) == 0
    return np.asarray(Image.open(out / f"{name}.png"))
