"""Glow: the share of a fused image's pixels brighter than both of its sources by a margin.

    glow = mean over pixels of [F - max(IR, VI) > levels / 255]

0: the fused image never leaves the brighter source's value by more than the margin; a weight map
over the two sources, max-abs and averaging are 0 by construction. A fusion that re-bases the
infrared's structure onto the brighter source's local mean (the contrast target's re-based
infrared, ``egmt.model.prior.rebase_ir``) is meant to stand a person in bright smoke out above
the smoke; beside a warm roof or tree under a bright visible sky the same structure comes out as
a glow no source has (docs/target-halos.md). egmt's own measure (no reference toolbox has it).
The margin, 30 grey levels of 255, is above what the shipped network reaches on all but 0.01 %
of RoadScene's validation pixels.
"""

from __future__ import annotations

import numpy as np

GLOW_LEVELS = 30.0


def glow_share(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, levels: float = GLOW_LEVELS) -> float:
    """The share of pixels of ``fused`` more than ``levels`` grey levels (of 255) brighter than
    max(``ir``, ``vi``); grey ``[H, W]`` images in [0, 1], of one size."""
    if not (ir.shape == vi.shape == fused.shape):
        raise ValueError(f"glow_share: sizes differ: {ir.shape}, {vi.shape}, {fused.shape}")
    excess = np.asarray(fused, np.float64) - np.maximum(np.asarray(ir, np.float64), np.asarray(vi, np.float64))
    return float((excess * 255 > levels).mean())


def glow_metric(ir, vi, fused) -> float:
    """The metric registry's ``Glow``: :func:`glow_share` of the registry's grey images (0..255)."""
    return glow_share(ir / 255.0, vi / 255.0, fused / 255.0)
