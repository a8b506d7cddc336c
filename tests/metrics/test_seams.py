"""Seam ratio: about 1 for a source or a smooth blend, far above 1 for a 16x16 mosaic, whatever the size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from egmt.data.io import read_image
from egmt.metrics.seams import grid_contrast, seam_ratio
from tests.shared_data import DATA, need_shared


def _pair(name: str = "FLIR_00006") -> tuple[np.ndarray, np.ndarray]:
    root = need_shared(DATA / "roadscene", "RoadScene")
    ir_path = next((root / "ir").glob(f"{name}.*"))
    vi_path = next((root / "vi").glob(f"{name}.*"))
    grey = [read_image(p).astype(np.float64) for p in (ir_path, vi_path)]
    return tuple(g.mean(axis=2) if g.ndim == 3 else g for g in grey)


def _mosaic(ir: np.ndarray, vi: np.ndarray, period: int = 16) -> np.ndarray:
    """Block-wise selection: each period-square block copies one source, in a checkerboard."""
    rows, cols = np.indices(ir.shape) // period
    return np.where((rows + cols) % 2 == 0, ir, vi)


def test_sources_and_smooth_blends_stay_near_one():
    ir, vi = _pair()
    assert seam_ratio(ir, vi, ir) <= 1.0 + 1e-12 and seam_ratio(ir, vi, vi) <= 1.0 + 1e-12
    assert seam_ratio(ir, vi, ir) == pytest.approx(1.0) or seam_ratio(ir, vi, vi) == pytest.approx(1.0)
    for w in (0.3, 0.5, 0.8):
        assert 0.5 < seam_ratio(ir, vi, w * ir + (1 - w) * vi) < 1.03


def test_a_block_mosaic_is_far_above_one():
    ir, vi = _pair()
    assert seam_ratio(ir, vi, _mosaic(ir, vi)) > 1.3
    # the same mosaic shifted off the patch grid is not on the lines the ratio looks at
    assert seam_ratio(ir, vi, _mosaic(ir, vi)) > seam_ratio(ir[8:, 8:], vi[8:, 8:], _mosaic(ir, vi)[8:, 8:])


def test_the_ratio_does_not_depend_on_the_image_size():
    """Stationary textures (smoothed noise): the same mosaic of a 256-pixel and a 1024-pixel square
    scores alike (a ratio of means), where sums would differ 16 times."""
    from scipy.ndimage import gaussian_filter

    def texture(size: int, seed: int) -> np.ndarray:
        return gaussian_filter(np.random.default_rng(seed).normal(size=(size, size)), 2.0, mode="wrap")

    values = []
    for size in (256, 1024):
        ir, vi = texture(size, 1) + 0.2, texture(size, 2)
        values.append(seam_ratio(ir, vi, _mosaic(ir, vi)))
    assert values[0] > 1.3 and values[1] == pytest.approx(values[0], rel=0.05)


def test_grid_contrast_on_a_known_image_and_undefined_cases():
    x = np.zeros((32, 32))
    x[:, 16:] = 1.0  # one step, exactly on a grid line
    x += np.arange(32)[None, :] * 0.01  # a gentle ramp everywhere
    # 31 steps per row and per column, one of them on the line (16 | 17 ...: between 15 and 16).
    # Across columns: 1.01 on the line, 0.01 elsewhere; across rows: 0 everywhere.
    on = (32 * 1.01 + 32 * 0.0) / (32 + 32)
    off = (32 * 30 * 0.01 + 32 * 30 * 0.0) / (32 * 30 + 32 * 30)
    assert grid_contrast(x) == pytest.approx(on / off)
    assert math.isnan(grid_contrast(np.zeros((8, 8))))  # no grid line
    assert math.isnan(grid_contrast(np.ones((40, 40))))  # flat
    assert math.isnan(seam_ratio(np.ones((40, 40)), np.ones((40, 40)), np.ones((40, 40))))
