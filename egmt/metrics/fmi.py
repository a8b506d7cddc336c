"""Feature mutual information (Haghighat, Aghagolzadeh & Seyedarabi 2011), as in
Haghighat & Razian's "fast FMI" MATLAB function (Tang's ``analysis_fmi``), 3x3 windows.

Keys: FMI_w (paper; wavelet feature, MATLAB's 102-tap dmey), FMI_pixel, FMI_dct and
FMI_edge. All window positions are processed at once (float64 arrays laid out [9, N]
with the window values in MATLAB's column-major order).

The joint pmf of a window pair is J = k * dM + (1 - k) * pf (x) px, where dM is the mass of
the co- (c >= 0) or counter-monotone (c < 0) coupling of the two 9-value pdfs. dM is
non-zero only on a monotone staircase of at most 17 cells, found by merging the two CDFs
(each breakpoint's place in the merge is a count of the other list's smaller breakpoints,
from one 9x9 comparison). The entropy of the independent part is summed in closed form
and only the staircase cells are corrected: the reference's numbers (to ~1e-14) with 18
instead of 81 logarithms per window pair, and no Python loop over windows.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pywt
import scipy.fft as sfft
from numpy.lib.stride_tricks import sliding_window_view

from egmt.metrics._common import SourceCache, prepare
from egmt.metrics._dmey import DMEY102

_CHUNK_ROWS_TARGET = 2048  # window positions per chunk: temporaries stay in cache (measured optimum 1.5k-3k)


def _seqsum(x: np.ndarray) -> np.ndarray:
    """Left-to-right sum over axis 0 of a [9, N] array, as the reference's loop sums.

    (numpy's pairwise sum differs in the last bit; that bit decides c when both windows
    normalise to all ones, see the README's FMI notes.)"""
    s = x[0] + x[1]
    for k in range(2, x.shape[0]):
        s += x[k]
    return s


_TINY = 1e-300  # log2(|x| + _TINY) is finite at 0 and equals log2|x| for every |x| > 1e-284


class _Windows(NamedTuple):
    """Statistics of min-max normalised 3x3 windows, [9, N], [10, N] or [N]."""

    p: np.ndarray  # pdf, column-major [9, N]
    logp: np.ndarray  # log2 p, about -997 where p == 0 (always multiplied by 0 there)
    cdf: np.ndarray  # cumulative sum of p
    cdf0: np.ndarray  # [10, N]: 0, then the cdf (row k holds the cdf at k - 1)
    p_z: np.ndarray  # [10, N]: p, then 0 (row 9 is a sentinel)
    logp_z: np.ndarray  # [10, N]: log2 p, then 0
    dev: np.ndarray  # p - mean(p), the mean taken sequentially
    ss: np.ndarray  # sum dev^2
    cdf_sum: np.ndarray  # sum of the 9 cdf values
    p_sum: np.ndarray  # sum of p (1 up to rounding)
    sd: np.ndarray  # sqrt(E[i^2] - E[i]^2), i = 1..9
    plogp: np.ndarray  # sum p log2 p (= -entropy)


def _normalise(raw: np.ndarray) -> np.ndarray:
    """Min-max normalise each window (column) to [0, 1]; a constant window becomes ones."""
    lo = raw.min(axis=0)
    rng = raw.max(axis=0) - lo
    const = rng == 0
    out = (raw - lo) / np.where(const, 1.0, rng)
    out[:, const] = 1.0
    return out


# Rows: values 1..9, their squares, cdf weights 9..1 (sum_k cdf_k = sum_k (9-k) p_k), ones.
_MOMENTS = np.array([np.arange(1, 10), np.arange(1, 10) ** 2, np.arange(9, 0, -1), np.ones(9)], dtype=np.float64)


def _extend(rows: np.ndarray, value: float, first: bool) -> np.ndarray:
    """[9, N] -> [10, N] with a constant row added first or last."""
    out = np.empty((10, rows.shape[1]))
    if first:
        out[0] = value
        out[1:] = rows
    else:
        out[:9] = rows
        out[9] = value
    return out


def _cumsum_rows(x: np.ndarray) -> np.ndarray:
    """Sequential cumulative sum over axis 0 (as np.cumsum, but row by row: much faster
    than numpy's strided accumulate for [9, N])."""
    out = np.empty_like(x)
    out[0] = x[0]
    for k in range(1, x.shape[0]):
        np.add(out[k - 1], x[k], out=out[k])
    return out


def _stats(norm: np.ndarray) -> _Windows:
    p = norm / _seqsum(norm)
    cdf = _cumsum_rows(p)
    dev = p - _seqsum(p) / 9
    e1, e2, cdf_sum, p_sum = _MOMENTS @ p
    sd = np.sqrt(np.maximum(e2 - e1 * e1, 0.0))
    logp = np.log2(p + _TINY)
    plogp = np.einsum("ij,ij->j", p, logp)
    return _Windows(
        p,
        logp,
        cdf,
        _extend(cdf, 0.0, True),
        _extend(p, 0.0, False),
        _extend(logp, 0.0, False),
        dev,
        _seqsum(dev * dev),
        cdf_sum,
        p_sum,
        sd,
        plogp,
    )


def _pair_fmi(x: _Windows, f: _Windows) -> np.ndarray:
    """Per-window fmi of a source window against the (normalised) fused window, [N]."""
    n = x.p.shape[1]
    num = _seqsum(x.dev * f.dev)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(num == 0, 0.0, num / np.sqrt(x.ss * f.ss))
    neg = c < 0

    # Breakpoints of the source's intervals on the coupling axis: its cdf (comonotone
    # coupling, c >= 0), or for c < 0 (countermonotone) 1 - cdf read backwards, so that
    # interval j' holds source value 8 - j'; p and log p are reversed to match.
    q0, px_z, lpx_z = x.cdf0, x.p_z, x.logp_z
    if neg.any():
        q0_neg = np.empty_like(q0)
        q0_neg[0] = 0.0
        np.subtract(1.0, x.cdf[7::-1], out=q0_neg[1:9])
        q0_neg[9] = 1.0
        px_neg = np.empty_like(px_z)
        px_neg[:9] = x.p[::-1]
        px_neg[9] = 0.0
        lpx_neg = np.empty_like(lpx_z)
        lpx_neg[:9] = x.logp[::-1]
        lpx_neg[9] = 0.0
        # select per window with 0/1 weights: u*1 + v*0 == u exactly for finite values
        m = neg.astype(np.float64)
        keep = 1.0 - m
        q0 = q0 * keep + q0_neg * m
        px_z = px_z * keep + px_neg * m
        lpx_z = lpx_z * keep + lpx_neg * m
    q, px, lpx = q0[1:], px_z[:9], lpx_z[:9]
    pf = f.cdf

    # Merge the two sorted breakpoint lists (the fused one first on ties): Pf_i comes after
    # c_i = #(q_j < Pf_i) source breakpoints, q_j after d_j = #(Pf_i <= q_j) fused ones. The
    # segment ending at Pf_i lies in cell (i, c_i), the one ending at q_j in cell (d_j, j);
    # each starts at the larger of the two lists' previous breakpoints. The largest
    # breakpoint (count 9) passes the other list's end (both end at 1) only by rounding,
    # and the reference's min(Pf_i, Px_j) leaves that sliver out: so do we.
    below = (q[None, :, :] < pf[:, None, :]).view(np.uint8)  # [i, j, N]
    c_cnt = below.sum(axis=1, dtype=np.uint8).astype(np.intp)  # [9, N]
    d_cnt = 9 - below.sum(axis=0, dtype=np.uint8).astype(np.intp)
    cols = np.arange(n)
    flat_c = c_cnt * n + cols
    flat_d = d_cnt * n + cols
    lengths = np.empty((18, n))
    np.subtract(pf, np.maximum(f.cdf0[:9], np.take(q0, flat_c)), out=lengths[:9])
    np.subtract(q, np.maximum(q0[:9], np.take(f.cdf0, flat_d)), out=lengths[9:])
    lengths[:9][c_cnt == 9] = 0.0
    lengths[9:][d_cnt == 9] = 0.0

    # cov = sum_ij (M_ij - Pf_i Px_j) with M the coupling's cdf. S = sum_ij min(Pf_i, q_j)
    # = sum_i Pf_i (9 - c_i) + sum_j q_j (9 - d_j); M = min(Pf_i, Px_j) gives S, and
    # M = max(Pf_i + Px_j - 1, 0) = Pf_i - min(Pf_i, 1 - Px_j) gives 10 sum Pf - S.
    s_min = np.einsum("ij,ij->j", pf, 9.0 - c_cnt) + np.einsum("ij,ij->j", q, 9.0 - d_cnt)
    m_sum = np.where(neg, 10.0 * f.cdf_sum - s_min, s_min)
    cov = m_sum - f.cdf_sum * x.cdf_sum
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = c * f.sd * x.sd / cov
    kappa[(c == 0) | (f.sd == 0) | (x.sd == 0) | (cov == 0)] = 0.0

    # Joint entropy: closed form for J0 = t pf_i px_j over all 81 cells, then the
    # staircase cells' correction J log|J| - J0 log|J0|, with J = kappa L + J0.
    t = 1.0 - kappa
    log_t = np.log2(np.abs(t) + _TINY)
    all_j0 = t * (log_t * f.p_sum * x.p_sum + x.p_sum * f.plogp + f.p_sum * x.plogp)
    j0 = np.empty((18, n))
    np.multiply(f.p, np.take(px_z, flat_c), out=j0[:9])
    np.multiply(np.take(f.p_z, flat_d), px, out=j0[9:])
    lp = np.empty((18, n))
    np.add(f.logp, np.take(lpx_z, flat_c), out=lp[:9])
    np.add(np.take(f.logp_z, flat_d), lpx, out=lp[9:])
    j0 *= t
    lp += log_t
    joint = lengths
    joint *= kappa
    joint += j0
    correction = np.einsum("ij,ij->j", joint, np.log2(np.abs(joint) + _TINY)) - np.einsum("ij,ij->j", j0, lp)
    h_joint = -(all_j0 + correction)
    h_x, h_f = -x.plogp, -f.plogp
    mi = h_x + h_f - h_joint
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(mi == 0, 0.0, 2 * mi / (h_x + h_f))
    return np.where(np.isfinite(out), out, 0.0)


def _windows(img: np.ndarray, r0: int, r1: int) -> np.ndarray:
    """3x3 windows centred on rows r0+1..r1 (all full columns), [9, N], column-major."""
    v = sliding_window_view(img[r0 : r1 + 2], (3, 3))  # [rows, cols, r, c]
    return v.transpose(3, 2, 0, 1).reshape(9, -1)


def _chunk_sum(a: np.ndarray, b: np.ndarray, f: np.ndarray, r0: int, r1: int) -> float:
    """Sum over the window positions with top row r0..r1-1 of (fmi_AF + fmi_BF) / 2."""
    aw, bw, fw = _windows(a, r0, r1), _windows(b, r0, r1), _windows(f, r0, r1)
    fn = _normalise(fw)
    fs = _stats(fn)
    eq_a = np.all(aw == fw, axis=0)
    fmi_af = np.where(eq_a, 1.0, _pair_fmi(_stats(_normalise(aw)), fs))
    # The B step starts from the current F window: the normalised one unless A matched.
    f_current = np.where(eq_a, fw, fn)
    eq_b = np.all(bw == f_current, axis=0)
    fmi_bf = np.where(eq_b, 1.0, _pair_fmi(_stats(_normalise(bw)), fs))
    return float(np.sum((fmi_af + fmi_bf) / 2))


def fmi_core(a: np.ndarray, b: np.ndarray, f: np.ndarray, threads: int | None = None) -> float:
    """FMI of feature maps a, b (sources) and f (fused), each float64 [m, n], m, n >= 3:
    mean over all full 3x3 windows of (fmi_AF + fmi_BF) / 2."""
    m, n = f.shape
    if m < 3 or n < 3:
        raise ValueError(f"FMI needs feature maps of at least 3x3, got {m}x{n}")
    rows = m - 2
    step = max(1, _CHUNK_ROWS_TARGET // max(n - 2, 1))
    bounds = [(r, min(r + step, rows)) for r in range(0, rows, step)]
    threads = threads or 1
    if threads > 1 and len(bounds) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            parts = list(pool.map(lambda rb: _chunk_sum(a, b, f, *rb), bounds))
    else:
        parts = [_chunk_sum(a, b, f, r0, r1) for r0, r1 in bounds]
    return math.fsum(parts) / (rows * (n - 2))


# --------------------------------------------------------------------------- features


@lru_cache(maxsize=1)
def _dmey_wavelet() -> pywt.Wavelet:
    """MATLAB's 102-tap dmey as a PyWavelets filter bank (Wn = W / sum W, LoR = sqrt2 Wn)."""
    w = np.asarray(DMEY102, dtype=np.float64)
    lo_r = math.sqrt(2.0) * (w / w.sum())
    lo_d = lo_r[::-1]
    hi_r = np.array([(-1) ** k * lo_r[101 - k] for k in range(102)])
    hi_d = hi_r[::-1]
    return pywt.Wavelet("dmey102", filter_bank=[lo_d.tolist(), hi_d.tolist(), lo_r.tolist(), hi_r.tolist()])


def wavelet_feature(x: np.ndarray) -> np.ndarray:
    """MATLAB ``dwt2(x, 'dmey')`` (mode 'sym') tiled [[cA, cH], [cV, cD]], min-max scaled
    to [0, 1] (all ones if constant). A 128x128 image gives a 228x228 mosaic."""
    ca, (ch, cv, cd) = pywt.dwt2(x, _dmey_wavelet(), mode="symmetric")
    mosaic = np.block([[ca, ch], [cv, cd]])
    lo, hi = mosaic.min(), mosaic.max()
    if hi == lo:
        return np.ones_like(mosaic)
    return (mosaic - lo) / (hi - lo)


def dct_feature(x: np.ndarray) -> np.ndarray:
    """MATLAB ``dct2``: orthonormal 2-D DCT-II of the whole image, no rescaling."""
    return sfft.dctn(x, type=2, norm="ortho")


def edge_feature(x: np.ndarray) -> np.ndarray:
    """Binary Sobel edge map as GNU Octave's ``edge(x/255)`` (image package 2.14) computes it.

    Kernels [[1,2,1],[0,0,0],[-1,-2,-1]]/8 and its transpose, replicate padding; s^2 below
    or at 4 mean(s^2) is cleared; a pixel is an edge when s^2 is strictly greater than both
    horizontal or both vertical neighbours (outside counts as 0). MATLAB's own thinning may
    differ, so FMI_edge is a check of the FMI core rather than a MATLAB value."""
    y = np.asarray(x, dtype=np.float64) / 255.0
    p = np.pad(y, 1, mode="edge")
    h, w = y.shape
    kernel = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]) / 8
    # Octave's conv2 accumulates kernel taps in reverse column-major order of the
    # correlation kernel; the same order reproduces its rounding (and so its ties).
    taps = [(m, n) for n in (2, 1, 0) for m in (2, 1, 0)]
    g1 = np.zeros((h, w))
    g2 = np.zeros((h, w))
    for m, n in taps:
        if kernel[m, n]:
            g1 = g1 + kernel[m, n] * p[m : m + h, n : n + w]
        if kernel[n, m]:
            g2 = g2 + kernel[n, m] * p[m : m + h, n : n + w]
    s2 = g1 * g1 + g2 * g2
    s2[s2 <= 4 * s2.mean()] = 0.0
    z = np.pad(s2, 1, mode="constant")
    horiz = (s2 > z[1:-1, :-2]) & (s2 > z[1:-1, 2:])
    vert = (s2 > z[:-2, 1:-1]) & (s2 > z[2:, 1:-1])
    return (horiz | vert).astype(np.float64)


_FEATURES = {
    "none": lambda x: x,
    "wavelet": wavelet_feature,
    "dct": dct_feature,
    "edge": edge_feature,
}
# The sources' features, remembered across the fused images they are scored against.
_SOURCE_FEATURES = {name: fn if name == "none" else SourceCache(fn) for name, fn in _FEATURES.items()}


def clear_cache() -> None:
    """Forget the cached source features (only needed to measure or to free memory)."""
    for cache in _SOURCE_FEATURES.values():
        if isinstance(cache, SourceCache):
            cache.clear()


def fmi(ir, vi, fused, feature: str = "wavelet", threads: int | None = None) -> float:
    """FMI of (ir, vi, fused) on the given feature: 'wavelet' (FMI_w, the paper's),
    'none' (FMI_pixel: raw pixels), 'dct' (FMI_dct) or 'edge' (FMI_edge).

    Note: tables from Tang's driver labelled "FMI_pixel" actually used the default
    'edge' feature of the reference function."""
    if feature not in _FEATURES:
        raise ValueError(f"unknown FMI feature {feature!r}; choose from {sorted(_FEATURES)}")
    a, b, f = prepare(ir, vi, fused, min_size=3)
    feat, source_feat = _FEATURES[feature], _SOURCE_FEATURES[feature]
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return fmi_core(source_feat(a), source_feat(b), feat(f), threads=threads)


def fmi_w(ir, vi, fused) -> float:
    """FMI_w: FMI on the single-level dmey (102-tap) wavelet mosaic (the paper's FMI_w)."""
    return fmi(ir, vi, fused, "wavelet")


def fmi_pixel(ir, vi, fused) -> float:
    """FMI_pixel: FMI on raw pixel values (feature 'none')."""
    return fmi(ir, vi, fused, "none")


def fmi_dct(ir, vi, fused) -> float:
    """FMI_dct: FMI on the whole-image orthonormal DCT-II."""
    return fmi(ir, vi, fused, "dct")


def fmi_edge(ir, vi, fused) -> float:
    """FMI_edge: FMI on Octave's binary Sobel edge maps (compare at rel 1e-3)."""
    return fmi(ir, vi, fused, "edge")
