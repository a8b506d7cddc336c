"""Temporal smoothing of fused video where the scene stands still (``egmt fuse --temporal``).

A fusion network decides per frame how much of each source to keep. Where the two sources
differ, a small change in that decision from one frame to the next is a jump in the output that
neither source made: the fused clip flickers more than its livelier source (the shipped
checkpoint on the validation clip 0111_1716: 1.15 times; max-abs 1.12; docs/video-stability.md).

:class:`StaticSmoother` blends each fused frame with the previous *smoothed* frame where neither
source moved, and leaves it alone where one did:

    d_t = max(box5 |IR_t - IR_{t-1}|, box5 |VI_t - VI_{t-1}|)   (grey levels, 5x5 box mean)
    m_t = beta * clip(1 - d_t / tau, 0, 1)
    S_t = m_t * S_{t-1} + (1 - m_t) * F_t

so a moving person (d_t above ``tau``) is the frame's own fusion, with no trail, and a static
wall settles instead of flickering. ``beta`` = 0.5, ``tau`` = 16 were chosen on the validation
clips (0111_1716, 1230_1202) over beta in {0.3, 0.5, 0.7}, tau in {4, 8, 16}: the least smoothing
that brings both clips to no more change than their livelier source (0.97 and 0.70 of it), the
smoothed frames 0.53 and 0.22 grey levels from the per-frame fusion on average.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from egmt.errors import EGMTError

#: Defaults of ``egmt fuse --temporal`` (beta) and of the motion threshold (grey levels).
DEFAULT_BETA = 0.5
DEFAULT_TAU = 16.0


def _grey(frame: np.ndarray) -> np.ndarray:
    """``[H, W]`` or ``[H, W, 3]`` uint8 -> ``[H, W]`` float32 grey levels (channel mean)."""
    frame = frame.astype(np.float32)
    return frame.mean(axis=-1) if frame.ndim == 3 else frame


class StaticSmoother:
    """Feed frames in order: ``smoother(fused, ir, vi) -> uint8`` of ``fused``'s shape.

    ``fused``: the frame's fusion, ``[H, W]`` or ``[H, W, C]`` uint8; ``ir``, ``vi``: the frame's
    sources as decoded (grey or RGB uint8, the same ``H x W``). ``beta`` = 0 returns every frame
    unchanged (the per-frame fusion).
    """

    def __init__(self, beta: float = DEFAULT_BETA, tau: float = DEFAULT_TAU) -> None:
        if not 0.0 <= beta < 1.0:
            raise EGMTError(f"temporal smoothing beta must be in [0, 1), got {beta}")
        if tau <= 0:
            raise EGMTError(f"the motion threshold tau must be positive, got {tau}")
        self.beta, self.tau = beta, tau
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # smoothed, ir, vi

    def __call__(self, fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        if self.beta == 0.0:
            return fused
        ir_grey, vi_grey, current = _grey(ir), _grey(vi), fused.astype(np.float32)
        if self._previous is None:
            smoothed = current
        else:
            last, last_ir, last_vi = self._previous
            moved = np.maximum(uniform_filter(np.abs(ir_grey - last_ir), 5), uniform_filter(np.abs(vi_grey - last_vi), 5))
            keep = self.beta * np.clip(1.0 - moved / self.tau, 0.0, 1.0)
            if current.ndim == 3:
                keep = keep[..., None]
            smoothed = keep * last + (1.0 - keep) * current
        self._previous = (smoothed, ir_grey, vi_grey)
        return np.clip(np.round(smoothed), 0, 255).astype(np.uint8)
