"""Thermal-target retention: how much of the infrared's warm targets survives fusion.

Over the hottest ``hot_percent`` % of each infrared image's pixels,

    retention = sum(F - VI) / sum(IR - VI)     (sums over pixels and images)

1.0: the infrared's excess over the visible image is kept in full (max-abs selection);
0.5: it is halved (plain averaging); 0: the fused image shows the visible image there and the
warm targets are gone. MI, FMI_w, PC and NCIE reward copying either source; this number says
whether the warm targets, what infrared is fused for, are among what was kept. egmt's own
measure (no reference toolbox has it); a ratio of sums, so a pair whose hot pixels are no
warmer than the visible image's weighs little instead of dividing by zero.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from egmt.metrics._common import pearson

HOT_PERCENT = 1.0


def hot_target_sums(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, hot_percent: float = HOT_PERCENT) -> tuple[float, float]:
    """``(sum(F - VI), sum(IR - VI))`` over the ``hot_percent`` % hottest IR pixels of one
    ``[H, W]`` triple (any common scale)."""
    ir, vi, fused = (np.asarray(a, dtype=np.float64) for a in (ir, vi, fused))
    hot = ir >= np.percentile(ir, 100.0 - hot_percent)
    return float((fused - vi)[hot].sum()), float((ir - vi)[hot].sum())


def target_retention(triples: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], hot_percent: float = HOT_PERCENT) -> float:
    """Retention over ``(ir, vi, fused)`` triples (module doc); NaN when the hot pixels are no
    warmer than the visible image overall."""
    kept = excess = 0.0
    for ir, vi, fused in triples:
        a, b = hot_target_sums(ir, vi, fused, hot_percent)
        kept, excess = kept + a, excess + b
    return kept / excess if excess > 0 else float("nan")


def box_correlation(ir: np.ndarray, fused: np.ndarray, box: tuple[int, int, int, int] | list[int]) -> float:
    """Pearson correlation of ``fused`` with ``ir`` (``[H, W]`` each) inside ``box`` = (x0, y0, x1, y1),
    half-open: 1 = the target's infrared appearance kept up to contrast and offset, ~0 = replaced
    (a person hidden behind the visible image's smoke). NaN where either is constant in the box.

    A person need not be among the hottest pixels (:func:`target_retention` cannot see a cool
    person in bright smoke); with hand-drawn person boxes this says whether they stay plain."""
    x0, y0, x1, y1 = box
    return pearson(np.asarray(ir, dtype=np.float64)[y0:y1, x0:x1], np.asarray(fused, dtype=np.float64)[y0:y1, x0:x1])


def surround_darkening(vi: np.ndarray, fused: np.ndarray, box: tuple[int, int, int, int] | list[int], width: int = 16) -> float:
    """How much darker than the visible image ``fused`` is in a ring of ``width`` pixels around
    ``box`` = (x0, y0, x1, y1) (half-open; clipped to the image), ``[H, W]`` each: the mean of
    max(VI - F, 0) over the ring, in the images' units (grey levels for uint8). 0: the
    surround is at least as bright as the visible image. For a person in bright smoke this is the
    dark halo of a fusion that keeps him by pasting his infrared background into the smoke, which
    :func:`box_correlation` (inside the box) cannot see."""
    h, w = np.shape(vi)
    x0, y0, x1, y1 = max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)
    ring = np.zeros((h, w), dtype=bool)
    ring[max(y0 - width, 0) : min(y1 + width, h), max(x0 - width, 0) : min(x1 + width, w)] = True
    ring[y0:y1, x0:x1] = False
    if not ring.any():
        return float("nan")
    diff = np.asarray(vi, dtype=np.float64)[ring] - np.asarray(fused, dtype=np.float64)[ring]
    return float(np.clip(diff, 0, None).mean())
