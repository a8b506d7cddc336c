"""Thermal-target retention: 1 for max-abs, 0.5 for averaging, 0 for the visible image."""

from __future__ import annotations

import math

import numpy as np
import pytest

from egmt.metrics.retention import hot_target_sums, target_retention


def _pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.2, 0.6, size=(40, 50))
    ir = rng.uniform(0.0, 0.3, size=(40, 50))
    ir[10:14, 20:25] = 0.95  # a warm target, brighter than the visible image there
    return ir, vi


def test_reference_fusions_give_their_shares():
    pairs = [_pair(0), _pair(1)]
    assert target_retention((ir, vi, np.maximum(ir, vi)) for ir, vi in pairs) == pytest.approx(1.0)
    assert target_retention((ir, vi, (ir + vi) / 2) for ir, vi in pairs) == pytest.approx(0.5)
    assert target_retention((ir, vi, vi) for ir, vi in pairs) == pytest.approx(0.0)
    assert target_retention((ir, vi, 0.25 * ir + 0.75 * vi) for ir, vi in pairs) == pytest.approx(0.25)


def test_only_the_hottest_pixels_count_and_no_excess_is_nan():
    ir, vi = _pair(2)
    fused = vi.copy()
    fused[10:14, 20:25] = ir[10:14, 20:25]  # the target kept, everything else visible
    kept, excess = hot_target_sums(ir, vi, fused)
    assert excess > 0 and kept == pytest.approx(excess)
    assert math.isnan(target_retention([(vi * 0.5, vi, vi)]))  # IR never warmer than VI
