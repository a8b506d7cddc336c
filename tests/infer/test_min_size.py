"""Pairs under MIN_FUSION_SIZE (16x16) are refused with an error naming the file, by EGMT,
the baselines and the heat maps; a pair of exactly 16x16 fuses."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from egmt.cli import main as cli_main
from egmt.data.pairs import MIN_FUSION_SIZE
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.infer.heatmaps import entity_heatmaps


def _save(folder, w, h):
    rng = np.random.default_rng(w * 100 + h)
    paths = []
    for side in ("ir", "vi"):
        path = folder / f"{side}-{w}x{h}.png"
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("w, h", [(1, 1), (15, 40), (40, 15)])
def test_small_pairs_are_refused_naming_the_file(checkpoint, tmp_path, capsys, w, h):
    assert MIN_FUSION_SIZE == 16
    ir, vi = _save(tmp_path, w, h)
    fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu", validation={"classification": {"map": 1, "prior_map": 0}})
    message = f"{ir}: {w}x{h} (W x H) is smaller than the 16x16 minimum for fusion"
    with pytest.raises(EGMTError) as e:
        fuser(ir, vi, threshold=0.0)  # caption-free would otherwise name entities for it
    assert str(e.value) == message
    with pytest.raises(EGMTError, match="minimum for fusion"):
        entity_heatmaps(fuser, ir, vi, ["person"])
    code = cli_main(["fuse", "--ir", str(ir), "--vi", str(vi), "-o", str(tmp_path / "f.png"), "--method", "average"])
    assert code == 1 and f"egmt: skipped {ir.stem}: {message}" in capsys.readouterr().out
    assert not (tmp_path / "f.png").exists()


def test_a_pair_of_the_minimum_size_fuses(checkpoint, tmp_path):
    ir, vi = _save(tmp_path, 16, 16)
    out = EGMTFuser.from_pretrained(checkpoint, device="cpu")(ir, vi, entities=["person"])
    assert out.image.shape == (16, 16)
    assert cli_main(["fuse", "--ir", str(ir), "--vi", str(vi), "-o", str(tmp_path / "f.png"), "--method", "dwt"]) == 0
    assert (tmp_path / "f.png").is_file()
