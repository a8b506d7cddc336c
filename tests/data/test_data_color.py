"""egmt.data.color: BT.601 Y / CbCr split and merge (kornia underneath)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egmt.data.color import merge_luma, split_luma
from egmt.data.io import read_image


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


def test_round_trip_on_a_real_colour_image(data_dir):
    """RGB -> (Y, CbCr) -> RGB on a RoadScene visible image; tolerance 1e-5 (float32 rounding)."""
    rgb = _chw(read_image(data_dir / "roadscene" / "vi" / "FLIR_00006.jpg"))
    y, cbcr = split_luma(rgb)
    assert y.shape == (1, 329, 500) and cbcr.shape == (2, 329, 500)
    back = merge_luma(y, cbcr)
    assert back.shape == rgb.shape
    assert (back - rgb).abs().max().item() < 1e-5


def test_y_is_bt601_on_known_pixels(data_dir):
    rgb = read_image(data_dir / "roadscene" / "vi" / "FLIR_00006.jpg")
    y, cbcr = split_luma(_chw(rgb))
    for r, c in [(0, 0), (100, 250), (328, 499)]:
        R, G, B = (float(v) for v in rgb[r, c])
        assert y[0, r, c].item() == pytest.approx(0.299 * R + 0.587 * G + 0.114 * B, abs=1e-6)
        assert cbcr[0, r, c].item() == pytest.approx(0.5 + 0.564 * (B - (0.299 * R + 0.587 * G + 0.114 * B)), abs=1e-6)
    # Pure primaries: the BT.601 weights themselves.
    prim = torch.eye(3).reshape(3, 3, 1, 1).permute(1, 0, 2, 3)  # [3 pixels as batch, 3, 1, 1]
    y, cbcr = split_luma(prim)
    torch.testing.assert_close(y.flatten(), torch.tensor([0.299, 0.587, 0.114]))


def test_grey_rgb_has_neutral_chroma():
    grey = torch.rand(1, 5, 6).expand(3, 5, 6)
    y, cbcr = split_luma(grey)
    torch.testing.assert_close(y, grey[:1], atol=1e-6, rtol=0)
    torch.testing.assert_close(cbcr, torch.full_like(cbcr, 0.5), atol=1e-6, rtol=0)


def test_grey_input_passes_through():
    g = torch.rand(2, 1, 4, 4)
    y, cbcr = split_luma(g)
    assert cbcr is None and y is g
    assert merge_luma(y, None) is y


def test_batched_and_fused_y_with_visible_chroma():
    rgb = torch.rand(2, 3, 8, 9)
    y, cbcr = split_luma(rgb)
    assert y.shape == (2, 1, 8, 9) and cbcr.shape == (2, 2, 8, 9)
    brighter = merge_luma((y + 0.5), cbcr)  # a fused Y may push RGB out of range: clamped
    assert brighter.shape == (2, 3, 8, 9)
    assert brighter.min() >= 0.0 and brighter.max() <= 1.0 and brighter.max() == 1.0


def test_bad_shapes():
    with pytest.raises(ValueError):
        split_luma(torch.rand(2, 4, 4))
    with pytest.raises(ValueError):
        merge_luma(torch.rand(3, 4, 4), torch.rand(2, 4, 4))
    with pytest.raises(ValueError):
        merge_luma(torch.rand(1, 4, 4), torch.rand(2, 5, 4))
