"""The demo's quick scores on small images whose every score is worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from egmt.serve.scores import quick_scores

N = 32  # 32 x 32: one patch-grid line in each direction (between columns / rows 15 and 16)


def levels(a: np.ndarray) -> np.ndarray:
    """Grey levels 0..255 as the [0, 1] floats the demo scores."""
    return np.asarray(a, dtype=np.float64) / 255.0


def test_ramps_with_a_step_on_the_grid_line():
    cols, rows = np.meshgrid(np.arange(N), np.arange(N))
    ir = 6 * cols  # a horizontal ramp, 0..186
    vi = 6 * rows  # a vertical one
    fused = ir + 20 * (cols >= 16)  # the IR ramp, 20 brighter from the grid line on
    s = quick_scores(levels(ir), levels(vi), levels(fused))
    assert list(s) == ["EN", "SD", "SF", "MI", "seam_ratio", "target_retention"]
    # 32 distinct levels (0..90 and 116..206), 32 pixels each: 5 bits
    assert s["EN"] == pytest.approx(5.0)
    # F = 6j + 20 [j >= 16] over columns j: 36 var(j) + 400 var(b) + 240 cov(j, b) = 36 * 85.25 + 100 + 240 * 4
    assert s["SD"] == pytest.approx(math.sqrt(4129))
    # no vertical change; per row 30 horizontal steps of 6 and one of 26, each mean over its own count
    assert s["SF"] == pytest.approx(math.sqrt((30 * 36 + 26**2) / 31))
    # F is a one-to-one function of the IR column (5 bits) and independent of the VIS row (0 bits)
    assert s["MI"] == pytest.approx(5.0, abs=1e-9)
    # grid contrast: the sources' steps are even (G = 1); the fused step on the line is 26 against 6 off
    # it, with the vertical steps (0) counted on and off the line alike: G(F) = (26 / 2) / (6 / 2) = 13 / 3
    assert s["seam_ratio"] == pytest.approx(13 / 3)
    # the hottest 1 % of IR: its last column (186); sum(F - VI) / sum(IR - VI) there,
    # VI = 6 x row: (32 x 206 - 6 x 496) / (32 x 186 - 6 x 496)
    assert s["target_retention"] == pytest.approx(3616 / 2976)


def test_halves_fused_as_the_infrared_and_an_undefined_seam_ratio():
    ir = np.zeros((N, N))
    ir[:, 16:] = 255  # left half black, right half white: the only step is on the grid line
    vi = np.full((N, N), 100.0)  # flat
    s = quick_scores(levels(ir), levels(vi), levels(ir))
    assert s["EN"] == pytest.approx(1.0) and s["SD"] == pytest.approx(127.5)
    assert s["SF"] == pytest.approx(255 / math.sqrt(31))  # one step of 255 among 31 per row
    assert s["MI"] == pytest.approx(1.0)  # I(F; IR) = H(IR) = 1 bit; a flat VIS shares nothing
    assert s["target_retention"] == pytest.approx(1.0)  # the warm half kept as it was
    # no source has a step off the grid line (the flat VIS none at all): no grid contrast to compare
    assert math.isnan(s["seam_ratio"])
    # the visible image instead of the IR: the warm half is gone
    assert quick_scores(levels(ir), levels(vi), levels(vi))["target_retention"] == pytest.approx(0.0)


def test_grey_stored_as_rgb_scores_as_grey():
    cols, rows = np.meshgrid(np.arange(N), np.arange(N))
    ir, vi, fused = levels(6 * cols), levels(6 * rows), levels(3 * cols + 3 * rows)
    rgb = [np.stack([x] * 3, axis=-1) for x in (ir, vi, fused)]
    assert quick_scores(*rgb) == quick_scores(ir, vi, fused)
