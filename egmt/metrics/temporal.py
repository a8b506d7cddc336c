"""Temporal stability of a video: the mean absolute change between consecutive frames.

``mean |F_t - F_{t-1}|`` over all pixels and all consecutive pairs of frames, on the grey
(MATLAB ``rgb2gray``) image in grey levels 0..255. A fused video should not change from
frame to frame more than its sources do: flicker that neither source has is an artefact of
the fusion. Computed as the frames stream by (one previous frame kept), so it costs no
memory that grows with the clip.
"""

from __future__ import annotations

import numpy as np

from egmt.metrics._common import rgb2gray


class TemporalChange:
    """Accumulate ``mean |F_t - F_{t-1}|`` over a stream of frames (``[H, W]`` or ``[H, W, 3]``, uint8 or float 0..255)."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self._total = 0.0
        self.steps = 0  # consecutive pairs seen (frames - 1)

    def add(self, frame: np.ndarray) -> None:
        a = np.asarray(frame, dtype=np.float64)  # float: rgb2gray unrounded
        grey = rgb2gray(a) if a.ndim == 3 else a
        if self._previous is not None:
            if grey.shape != self._previous.shape:
                raise ValueError(f"frame of shape {grey.shape} after one of {self._previous.shape}")
            self._total += float(np.abs(grey - self._previous).mean())
            self.steps += 1
        self._previous = grey

    @property
    def value(self) -> float:
        """The mean change per frame step (NaN for a clip of fewer than two frames)."""
        return self._total / self.steps if self.steps else float("nan")


def temporal_change(frames) -> float:
    """``mean |F_t - F_{t-1}|`` of an iterable of frames (see :class:`TemporalChange`)."""
    acc = TemporalChange()
    for f in frames:
        acc.add(f)
    return acc.value
