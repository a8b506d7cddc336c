"""Seam ratio: whether a fused image carries a block grid (a mosaic of patches) its sources do not.

For an image X and a period p (the patch size, 16), let the *steps* be the absolute differences
between horizontally and vertically adjacent pixels. The grid lines are the steps between
column (row) ``p*k - 1`` and ``p*k``, k >= 1: the borders of the patches a patch-token network
works on (egmt pads right/bottom, so the grid starts at the top-left pixel).

    G(X) = mean |step| on the grid lines / mean |step| everywhere else       (both directions)
    seam ratio = G(F) / max(G(IR), G(VI))

1.0: the fused image has no more contrast across the patch borders than the sources have; a
natural image or a smooth fusion of its sources stays near or below 1; a fusion that switches
between the sources patch by patch (a 16x16 mosaic) lies well above it. It is a ratio of means,
so it does not depend on the image's size. egmt's own measure (no reference toolbox has it).
"""

from __future__ import annotations

import numpy as np

from egmt.errors import EGMTError
from egmt.metrics._common import MetricUndefinedError

PATCH_PERIOD = 16


def grid_contrast(x: np.ndarray, period: int = PATCH_PERIOD) -> float:
    """G(X) of one grey ``[H, W]`` image: mean step across the grid lines / mean step elsewhere.

    NaN when the image has no grid line (no side longer than the period) or no contrast off
    the grid (a flat image)."""
    if period < 2:
        raise EGMTError(f"seam ratio: the period must be at least 2, got {period}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise EGMTError(f"seam ratio: expected a grey [H, W] image, got shape {x.shape}")
    on = off = 0.0
    n_on = n_off = 0
    for steps in (np.abs(np.diff(x, axis=1)), np.abs(np.diff(x, axis=0)).T):
        # steps[:, j] is the step between column j and j + 1; a grid line is j + 1 = p*k.
        line = (np.arange(steps.shape[1]) + 1) % period == 0
        on += steps[:, line].sum()
        off += steps[:, ~line].sum()
        n_on += steps[:, line].size
        n_off += steps[:, ~line].size
    if n_on == 0 or n_off == 0 or off == 0:
        return float("nan")
    return float((on / n_on) / (off / n_off))


def seam_ratio(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, period: int = PATCH_PERIOD) -> float:
    """The fused image's grid contrast over the larger of the sources' (module doc); ``[H, W]``
    arrays of one shape, any common scale. NaN when it is undefined (no grid line, flat sources)."""
    shapes = {np.shape(a) for a in (ir, vi, fused)}
    if len(shapes) != 1:
        raise EGMTError(f"seam ratio: ir, vi and fused must share one shape, got {sorted(shapes)}")
    sources = [g for g in (grid_contrast(ir, period), grid_contrast(vi, period)) if np.isfinite(g)]
    if not sources or max(sources) <= 0:
        return float("nan")
    return grid_contrast(fused, period) / max(sources)


def seam_metric(ir, vi, fused) -> float:
    """The metric registry's ``Seam``: :func:`seam_ratio` at period 16, with the registry's
    convention for an undefined value (:class:`MetricUndefinedError` naming it, never NaN)."""
    value = seam_ratio(ir, vi, fused)
    if np.isnan(value):
        raise MetricUndefinedError("Seam is undefined: no patch-grid line in the image, or flat sources")
    return value
