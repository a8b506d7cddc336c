"""Shared helpers for the fusion metrics: input checks, MATLAB conventions, filtering.

All metrics take grey images with values 0..255 (uint8, or float holding 0..255) and work
in float64, because several reference tests are exact equalities (see the "Input
conventions" of the reference fixtures' README, summarised in docs/metrics.md).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import ndimage

from egmt.errors import EGMTError

# MATLAB rgb2gray coefficients (from the inverse of the NTSC YIQ matrix), in R, G, B order.
RGB2GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)


class MetricUndefinedError(EGMTError):
    """A metric has no value for these images (the reference would return NaN)."""


def matlab_round(x: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: halves away from zero (numpy rounds halves to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def rgb2gray(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` on an [H, W, 3] image -> [H, W].

    uint8 in -> uint8 out, rounded half away from zero as MATLAB's uint8 cast does;
    float in (0..255) -> float64 out, unrounded (MATLAB keeps doubles unrounded).
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise EGMTError(f"rgb2gray expects an [H, W, 3] image, got shape {img.shape}")
    r, g, b = (img[..., k].astype(np.float64) for k in range(3))
    grey = r * RGB2GRAY_WEIGHTS[0] + g * RGB2GRAY_WEIGHTS[1] + b * RGB2GRAY_WEIGHTS[2]
    if img.dtype == np.uint8:
        return np.clip(np.floor(grey + 0.5), 0, 255).astype(np.uint8)
    return grey


def to_gray(img: np.ndarray, name: str = "image") -> np.ndarray:
    """Accept [H, W], [H, W, 1] or RGB [H, W, 3] in 0..255; return [H, W] (dtype kept).

    Raises EGMTError for RGBA, other shapes, non-finite values, values outside 0..255, and
    float images that look like [0, 1] data (they would give silently wrong numbers).
    """
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    elif img.ndim == 3 and img.shape[2] == 3:
        img = rgb2gray(img)
    elif img.ndim == 3 and img.shape[2] == 4:
        raise EGMTError(f"{name}: RGBA image; drop or composite the alpha channel first")
    if img.ndim != 2:
        raise EGMTError(f"{name}: expected a grey [H, W] or RGB [H, W, 3] image, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.bool_ or not (np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating)):
        raise EGMTError(f"{name}: unsupported dtype {img.dtype}; expected uint8 or float 0..255")
    if img.size and not np.all(np.isfinite(img)):
        raise EGMTError(f"{name}: contains NaN or infinite values")
    lo, hi = (float(img.min()), float(img.max())) if img.size else (0.0, 0.0)
    if lo < 0 or hi > 255:
        raise EGMTError(f"{name}: values {lo:g}..{hi:g} are outside 0..255 (16-bit data must be rescaled to 8 bits)")
    if np.issubdtype(img.dtype, np.floating) and 0 < hi <= 1.0:
        raise EGMTError(f"{name}: float values in [0, 1]; metrics expect 0..255 (multiply by 255)")
    return img


def prepare(ir, vi, fused, min_size: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a triple and return it as float64 [H, W] arrays in 0..255 (same size)."""
    a = to_gray(ir, "ir")
    b = to_gray(vi, "vi")
    f = to_gray(fused, "fused")
    if not (a.shape == b.shape == f.shape):
        raise EGMTError(f"size mismatch: ir {a.shape}, vi {b.shape}, fused {f.shape}")
    if min(a.shape) < min_size:
        raise EGMTError(
            f"image of size {a.shape[0]}x{a.shape[1]} is smaller than the {min_size}x{min_size} window this metric needs"
        )
    return a.astype(np.float64), b.astype(np.float64), f.astype(np.float64)


def to_levels(x: np.ndarray) -> np.ndarray:
    """Integer grey levels 0..255 (int64) for histogram metrics; non-integer floats are
    rounded half away from zero, as MATLAB's uint8 conversion does."""
    return np.clip(matlab_round(x), 0, 255).astype(np.int64)


def entropy_bits(counts: np.ndarray) -> float:
    """-sum p log2 p over the non-empty bins of a histogram (any shape)."""
    c = counts[counts > 0].astype(np.float64)
    p = c / c.sum()
    return float(-np.sum(p * np.log2(p)))


def joint_histogram(x: np.ndarray, y: np.ndarray, levels: int = 256) -> np.ndarray:
    """[levels, levels] counts of integer pairs (x, y)."""
    idx = x.ravel() * levels + y.ravel()
    return np.bincount(idx, minlength=levels * levels).reshape(levels, levels)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r over all pixels (MATLAB ``corr2``); NaN if either image is constant."""
    dx = x - x.mean()
    dy = y - y.mean()
    den = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    if den == 0:
        return float("nan")
    return float(np.sum(dx * dy) / den)


@lru_cache(maxsize=16)
def gaussian_1d(n: int, sigma: float) -> np.ndarray:
    """1-D factor g of MATLAB ``fspecial('gaussian', n, sigma)`` = outer(g, g).

    The 2-D window is separable, so filtering with g along each axis equals filter2 with
    the 2-D window up to rounding (~1e-16 relative)."""
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    g = g / g.sum()
    g.setflags(write=False)
    return g


def filter_same(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(outer(g, g), x, 'same')``: separable correlation, zero padding."""
    y = ndimage.correlate1d(x, g, axis=0, mode="constant", cval=0.0)
    return ndimage.correlate1d(y, g, axis=1, mode="constant", cval=0.0)


def filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(outer(g, g), x, 'valid')``: [H-n+1, W-n+1], empty if n > H or W.

    (Unlike scipy.signal.convolve2d(..., 'valid'), never swaps image and kernel.)"""
    n = g.size
    h, w = x.shape
    if n > h or n > w:
        return np.zeros((max(h - n + 1, 0), max(w - n + 1, 0)))
    r = n // 2
    y = ndimage.correlate1d(x, g, axis=0, mode="constant", cval=0.0)[r : h - r]
    return ndimage.correlate1d(y, g, axis=1, mode="constant", cval=0.0)[:, r : w - r]


def check_defined(value: float, metric: str, why: str = "") -> float:
    """Raise MetricUndefinedError instead of returning a silent NaN."""
    if np.isnan(value):
        raise MetricUndefinedError(f"{metric} is undefined for these images" + (f": {why}" if why else ""))
    return float(value)


class SourceCache:
    """``fn(img)`` for source images, remembered by content (shape, dtype and a hash of the
    bytes) in a small LRU: a pair of sources is scored against one fused image per method,
    so their per-source work (phase-congruency maps, FMI features) is done once. Thread-safe;
    the result must not be modified by the caller."""

    def __init__(self, fn: Callable[[np.ndarray], object], size: int = 4):
        self.fn, self.size = fn, size
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __call__(self, img: np.ndarray):
        img = np.ascontiguousarray(img)
        key = (img.shape, img.dtype.str, hashlib.blake2b(img.data, digest_size=16).digest())
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        result = self.fn(img)
        with self._lock:
            self._items[key] = result
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return result
