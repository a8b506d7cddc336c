"""Tiled fusion against fuse functions with strong spatial structure, the blend weights
themselves, and tiling through EGMTFuser and `egmt fuse --tile` (no ../shared needed).

A pointwise fuse function cannot tell tiled from untiled fusion; these can: a function that
answers a different constant for every tile (blending must turn each seam into a ramp of
1/(overlap+1) steps), and a 5x5 box filter with zero padding (every tile border darkens;
the blend must hide those borders under the neighbouring tile)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from egmt.cli import main as cli_main
from egmt.config import ModelConfig
from egmt.data.io import read_image
from egmt.infer import fuser as fuser_module
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.infer.tiling import _ramp, fuse_in_tiles


def _structured(h: int, w: int, seed: int) -> torch.Tensor:
    """[1, 1, h, w] in [0, 1]: a checkerboard of 8-pixel squares plus noise."""
    yy, xx = np.mgrid[:h, :w]
    board = ((yy // 8 + xx // 8) % 2).astype(np.float32)
    noise = np.random.default_rng(seed).uniform(0, 0.3, (h, w)).astype(np.float32)
    return torch.from_numpy(0.7 * board + noise)[None, None]


def _box5(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """5x5 mean of (a + b) / 2 with zero padding: wrong near every border it is given."""
    return F.avg_pool2d((a + b) / 2, 5, stride=1, padding=2, count_include_pad=True)


@pytest.mark.parametrize("n,overlap", [(96, 32), (64, 16), (9, 4)])
def test_blend_weights_are_a_partition_of_unity(n, overlap):
    w = _ramp(n, overlap)
    assert w.shape == (n,) and (w > 0).all() and (w <= 1).all()
    assert torch.equal(w, w.flip(0))  # symmetric
    assert (w[overlap : n - overlap] == 1).all()  # 1 away from the borders
    assert (w[1 : overlap + 1] > w[:overlap]).all()  # strictly rising over the overlap
    # the falling end of one tile and the rising start of the next, `overlap` apart, sum to 1
    assert torch.allclose(w[n - overlap :] + w[:overlap], torch.ones(overlap), atol=1e-6)


def test_tile_constants_blend_into_ramps():
    """fuse = a different constant per tile: away from the tiles' overlaps the output is that
    tile's constant; across an overlap it moves in steps of at most 2 dc/(overlap+1), never
    jumps (without blending a seam jumps by dc/2 or dc)."""
    h, w, tile, overlap = 160, 224, 96, 32
    calls = []

    def per_tile(a, b):
        calls.append(len(calls))
        return torch.full_like(a, float(len(calls)))  # 1, 2, 3 ...

    out = fuse_in_tiles(per_tile, torch.zeros(1, 1, h, w), torch.zeros(1, 1, h, w), tile, overlap)[0, 0]
    assert len(calls) == 2 * 3
    dc = len(calls) - 1
    steps = max(out.diff(dim=0).abs().max(), out.diff(dim=1).abs().max())
    assert steps <= 2 * dc / (overlap + 1) + 1e-5, steps
    assert out[0, 0] == 1 and float(out[-1, -1]) == pytest.approx(len(calls))  # corners: one tile each


def test_local_filter_seams_hidden_by_the_blend():
    """A 5x5 box filter differs from the one-pass result only within 2 pixels of a tile
    border; the blend weights such pixels below 3/33 against the neighbour tile's."""
    ir, vi = _structured(160, 224, 0), _structured(160, 224, 1)
    whole = _box5(ir, vi)
    tiled = fuse_in_tiles(_box5, ir, vi, tile=96, overlap=32)
    diff = (whole - tiled).abs()
    # one tile's own error at its border is up to ~0.4 here; blended it must shrink ~10x
    own = (whole[..., :96, :96] - _box5(ir[..., :96, :96], vi[..., :96, :96])).abs().max()
    assert own > 0.2
    assert diff.max() < own / 8, (float(diff.max()), float(own))


class _BoxModel(torch.nn.Module):
    """A stand-in network with the fuser's interface: fused = 5x5 box filter, no entities."""

    def __init__(self):
        super().__init__()
        self.config = ModelConfig(text_interaction=False, multi_task=False)
        self.calls: list[tuple[int, int]] = []

    def forward(self, ir, vi, entities=None, entity_mask=None, classify=True):
        self.calls.append(tuple(ir.shape[-2:]))
        return SimpleNamespace(fused=_box5(ir, vi), logits=None)

    def encode(self, ir, vi):  # the fuser's two-stage interface (EGMT.encode / decode)
        return ir, vi

    def decode(self, encoded, entities=None, entity_mask=None, classify=True, fuse=True):
        return self(*encoded)


def test_fuser_tiles_with_its_tile_size():
    ir, vi = _structured(160, 224, 2)[0, 0].numpy(), _structured(160, 224, 3)[0, 0].numpy()
    ir, vi = np.clip(ir, 0, 1), np.clip(vi, 0, 1)
    model = _BoxModel()
    whole = EGMTFuser(model, device="cpu")(ir, vi).image
    assert model.calls == [(160, 224)]
    model.calls.clear()
    tiled = EGMTFuser(model, device="cpu", tile_size=96, tile_overlap=32)(ir, vi).image
    assert model.calls == [(96, 96)] * 6  # 2 rows x 3 columns
    own = np.abs(whole[:96, :96] - EGMTFuser(model, device="cpu")(ir[:96, :96], vi[:96, :96]).image).max()
    assert np.abs(whole - tiled).max() < own / 8


def test_cli_tile_reaches_the_tiler(checkpoint, tmp_path, monkeypatch):
    """`egmt fuse --tile 64` reaches the tiler with 64x64 tiles and the default overlap. The
    untrained network's output spans only ~4 grey levels, so comparing its PNGs is a sanity
    check (2 levels); the numbers are checked with the structured stand-in above."""
    rng = np.random.default_rng(4)
    for name in ("ir", "vi"):
        img = (_structured(100, 150, int(rng.integers(100)))[0, 0].numpy().clip(0, 1) * 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"{name}.png")
    seen = []
    real = fuser_module.fuse_in_tiles

    def spy(fuse, ir, vi, tile, overlap=32, progress=True):
        seen.append((tile, overlap, tuple(ir.shape[-2:])))
        return real(fuse, ir, vi, tile, overlap, progress)

    monkeypatch.setattr(fuser_module, "fuse_in_tiles", spy)
    base = [
        "fuse",
        "--ir",
        str(tmp_path / "ir.png"),
        "--vi",
        str(tmp_path / "vi.png"),
        "--checkpoint",
        str(checkpoint),
        "--device",
        "cpu",
        "--entities",
        "person, tree",
    ]
    assert cli_main([*base, "-o", str(tmp_path / "one.png")]) == 0
    assert seen == []
    assert cli_main([*base, "-o", str(tmp_path / "tiled.png"), "--tile", "64"]) == 0
    assert seen == [(64, 32, (100, 150))]
    one, tiled = read_image(tmp_path / "one.png"), read_image(tmp_path / "tiled.png")
    assert np.abs(one - tiled).max() <= 2.5 / 255


def test_tiled_fusion_shows_progress_over_the_tiles(checkpoint, monkeypatch):
    """Caption-free fusion of a tiled pair: a bar over the classifier's tiles, then one over the
    fusion's, each advanced to the tile count; a pair in one piece shows none."""
    from egmt.infer import tiling
    from egmt.infer.tiling import tile_slices

    bars = []
    real = tiling.tqdm

    def spy(iterable, **kw):
        bar = real(iterable, **kw)
        bars.append((bar, kw["disable"]))  # a closed bar reads as disabled
        return bar

    monkeypatch.setattr(tiling, "tqdm", spy)
    validated = {"classification": {"map": 0.6, "prior_map": 0.5}}
    ir, vi = (_structured(100, 150, s)[0, 0].numpy().clip(0, 1) for s in (5, 6))
    fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu", tile_size=64, validation=validated)
    fuser(ir, vi, threshold=0.0)
    n = len(tile_slices(100, 150, 64, 32))
    assert n == 12  # 3 rows x 4 columns
    assert [(b.desc, b.total, b.n, off) for b, off in bars] == [("classify tiles", n, n, False), ("fuse tiles", n, n, False)]
    bars.clear()
    EGMTFuser.from_pretrained(checkpoint, device="cpu", validation=validated)(ir, vi, threshold=0.0)
    assert all(off for _, off in bars)  # one piece: no bar shown
    EGMTFuser.from_pretrained(checkpoint, device="cpu", tile_size=64)(ir[:64, :64], vi[:64, :64], entities=["car"])
    assert all(off for _, off in bars)


def test_a_tile_too_small_for_its_overlap_is_refused(tmp_path, capsys):
    """A tile under twice the overlap would step a pixel at a time (tens of thousands of passes on a
    small image): refused in one line before any work."""
    from egmt.infer.run import DEFAULT_CHECKPOINT

    with pytest.raises(EGMTError, match="tile size 10: at least 64"):
        EGMTFuser.from_pretrained(DEFAULT_CHECKPOINT, device="cpu", tile_size=10)
    sample = DEFAULT_CHECKPOINT.parents[1].parent / "samples" / "tno"
    argv = ["fuse", "--ir", str(sample / "ir" / "08.png"), "--vi", str(sample / "vi" / "08.png"), "-o", str(tmp_path / "f.png")]
    assert cli_main([*argv, "--tile", "16"]) == 2
    assert "tile size 16: at least 64" in capsys.readouterr().err and not (tmp_path / "f.png").exists()
