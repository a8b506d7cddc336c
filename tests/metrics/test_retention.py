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


def test_the_hottest_one_percent_exactly():
    """10 000 pixels: exactly 100 (1 %) at IR 0.9 over VI 0.4 (excess 0.5 each, 50 in all), the fused
    image keeping 0.3 of it (30): retention 0.6. The next 100 pixels sit just below the cut-off
    (IR 0.89 over VI 0.1, the fused image showing VI): counted, they would give 30 / 129."""
    rng = np.random.default_rng(7)
    ir = rng.uniform(0.0, 0.5, size=10_000)
    vi = rng.uniform(0.0, 1.0, size=10_000)
    fused = rng.uniform(0.0, 1.0, size=10_000)
    hot, near = rng.permutation(10_000)[:200].reshape(2, 100)
    ir[hot], vi[hot], fused[hot] = 0.9, 0.4, 0.7
    ir[near], vi[near], fused[near] = 0.89, 0.1, 0.1
    ir, vi, fused = (a.reshape(100, 100) for a in (ir, vi, fused))
    kept, excess = hot_target_sums(ir, vi, fused)
    assert (kept, excess) == (pytest.approx(30.0), pytest.approx(50.0))
    assert target_retention([(ir, vi, fused)]) == pytest.approx(0.6)
    assert hot_target_sums(ir, vi, fused, hot_percent=2.0) == (pytest.approx(30.0), pytest.approx(129.0))


def test_box_correlation_is_pearson_inside_the_box_only():
    import numpy as np

    from egmt.metrics.retention import box_correlation

    ir = np.zeros((10, 10))
    ir[2:5, 3:6] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    fused = np.full((10, 10), 50.0)
    fused[2:5, 3:6] = 100 - 2 * ir[2:5, 3:6]  # inverted inside the box, constant outside
    assert box_correlation(ir, fused, [3, 2, 6, 5]) == pytest.approx(-1.0)
    fused[2:5, 3:6] = [[1, 2, 3], [4, 5, 6], [7, 9, 8]]  # two pixels swapped
    a = np.arange(1, 10.0)
    b = np.array([1, 2, 3, 4, 5, 6, 7, 9, 8.0])
    expected = ((a - a.mean()) * (b - b.mean())).sum() / (9 * a.std() * b.std())  # 59/60
    assert expected == pytest.approx(59 / 60)
    assert box_correlation(ir, fused, [3, 2, 6, 5]) == pytest.approx(59 / 60)
    assert np.isnan(box_correlation(ir, fused, [7, 7, 9, 9]))  # constant IR there: undefined


def test_surround_darkening_sees_a_dark_ring_around_the_box_and_nothing_inside_it():
    """A fused image darker than the visible image only inside the box (the person kept) reads 0;
    a ring darker by 40 around it reads 40; a brighter surround does not count."""
    from egmt.metrics.retention import surround_darkening

    vi = np.full((40, 50), 150.0)
    box = [20, 10, 30, 25]
    kept = vi.copy()
    kept[10:25, 20:30] = 30  # the person, darker than the smoke: inside the box, not counted
    assert surround_darkening(vi, kept, box, width=4) == 0.0
    halo = kept.copy()
    halo[6:29, 16:34] -= 40
    halo[10:25, 20:30] = 30
    assert surround_darkening(vi, halo, box, width=4) == pytest.approx(40.0)
    assert surround_darkening(vi, halo, box, width=8) == pytest.approx(40.0 * (23 * 18 - 150) / (31 * 26 - 150))
    assert surround_darkening(vi, vi + 30, box, width=4) == 0.0  # brighter is no halo
    assert surround_darkening(vi, halo, [-5, 10, 30, 25], width=4) == surround_darkening(vi, halo, [0, 10, 30, 25], width=4)
    assert np.isnan(surround_darkening(vi, halo, [0, 0, 50, 40], width=4))  # the box is the image: no ring
