"""The five metrics that only VIFB's toolbox reports (xingchenzhang/VIFB, ``metrics/*.m``):
CE, EI, its root-SSE "RMSE" and "PSNR", Qcb (Chen-Blum) and Qcv (Chen-Varshney).

VIFB's other eight metrics are the ones in ``fusion.py`` with a switch or two; the table
of choices is ``egmt.metrics.profiles``. Images are grey float64 [H, W] in 0..255, read as
:func:`egmt.metrics._common.prepare` returns them; every function is ``fn(ir, vi, fused)``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from egmt.metrics._common import MetricUndefinedError, filter_same, prepare, to_levels
from egmt.metrics.fusion import stretch_levels


def _histogram(x: np.ndarray) -> np.ndarray:
    return np.bincount(to_levels(x).ravel(), minlength=256) / x.size


def ce(ir, vi, fused) -> float:
    """CE (``metricsCross_entropy``): mean over the two sources of the KL divergence
    sum_k pX(k) log2(pX(k) / pF(k)) of the 256-bin histograms, bins where either p is 0
    skipped. Bits; lower is better."""
    a, b, f = prepare(ir, vi, fused)
    pf = _histogram(f)
    total = 0.0
    for x in (b, a):  # VIFB's order: visible, then infrared
        px = _histogram(x)
        both = (px > 0) & (pf > 0)
        total += float(np.sum(px[both] * np.log2(px[both] / pf[both])))
    return total / 2


def ei(ir, vi, fused) -> float:
    """EI (``metricsEdge_intensity``): mean over all pixels of the Sobel magnitude of F,
    ``imfilter`` with replicate padding (scipy ``mode='nearest'``)."""
    _, _, f = prepare(ir, vi, fused)
    gx = ndimage.sobel(f, axis=0, mode="nearest")
    gy = ndimage.sobel(f, axis=1, mode="nearest")
    return float(np.mean(np.sqrt(gx * gx + gy * gy)))


def _root_sse(a, b, f) -> float:
    """(e(A, F) + e(B, F)) / 2 with e = sqrt(sum of squared differences) / (H W)."""
    return (math.sqrt(np.sum((a - f) ** 2)) + math.sqrt(np.sum((b - f) ** 2))) / 2 / f.size


def rmse(ir, vi, fused) -> float:
    """RMSE as VIFB's ``metricsRmse`` computes it: (e(VI, F) + e(IR, F)) / 2 with
    e = sqrt(sum (X - F)^2) / (H W), i.e. a true RMSE divided by sqrt(H W). Lower is better."""
    return _root_sse(*prepare(ir, vi, fused))


def psnr(ir, vi, fused) -> float:
    """PSNR as VIFB's ``metricsPsnr`` computes it: 20 log10(255 / sqrt(M)) with M the
    value of :func:`rmse`, so not a PSNR of an MSE (~30 dB above one on 640x480)."""
    m = _root_sse(*prepare(ir, vi, fused))
    return math.inf if m == 0 else 20 * math.log10(255 / math.sqrt(m))


def _freqspace(n: int) -> np.ndarray:
    """MATLAB ``freqspace`` for n samples: ((0:n-1) - floor(n/2)) * 2/n."""
    return (np.arange(n) - n // 2) * (2.0 / n)


def _radial_frequency(rows: int, cols: int, scale_rows: float, scale_cols: float) -> np.ndarray:
    """r = sqrt(u^2 + v^2) on ``freqspace([rows, cols], 'meshgrid')`` scaled by (cols, rows)
    factors, in ifftshift order (zero frequency at [0, 0])."""
    u = _freqspace(cols) * scale_cols
    v = _freqspace(rows) * scale_rows
    return sfft.ifftshift(np.sqrt(u[None, :] ** 2 + v[:, None] ** 2))


def _filter_in_frequency(x: np.ndarray, response: np.ndarray) -> np.ndarray:
    """``ifft2(ifftshift(fftshift(fft2(x)) .* S))``; S is even, so the result is real up to
    rounding (MATLAB returns it real; Octave's imaginary residue is < 1e-13)."""
    return sfft.ifft2(sfft.fft2(x) * response).real


def _qcb_contrast(x: np.ndarray) -> np.ndarray:
    """|filter2(G_2, x) / filter2(G_4, x) - 1| with 31x31 unnormalised Gaussians (sigma 2, 4)
    in 'same' mode, then the masking C^3 / (C^2 + 1e-4)."""
    t = np.arange(-15, 16, dtype=np.float64)
    g2, g4 = np.exp(-t * t / 8), np.exp(-t * t / 32)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.abs((filter_same(x, g2) / (8 * math.pi)) / (filter_same(x, g4) / (32 * math.pi)) - 1)
    return c**3 / (c**2 + 1e-4)


def qcb(ir, vi, fused) -> float:
    """Qcb (``metricsQcb``, Zheng Liu's ``metricChenBlum``; Chen & Blum 2009): images
    min-max stretched to 0..255, a DoG contrast-sensitivity filter in the frequency domain
    (f0 15.3870, f1 1.3456, a 0.7622, frequencies scaled by H/30 and W/30), local contrast
    preservation weighted by the sources' squared contrast, mean over all pixels."""
    a, b, f = prepare(ir, vi, fused)
    rows, cols = f.shape
    r = _radial_frequency(rows, cols, rows / 30, cols / 30)
    csf = np.exp(-((r / 15.3870) ** 2)) - 0.7622 * np.exp(-((r / 1.3456) ** 2))
    cb, ca, cf = (
        _qcb_contrast(_filter_in_frequency(stretch_levels(x, n, metric="Qcb").astype(np.float64), csf))
        for x, n in ((b, "vi"), (a, "ir"), (f, "fused"))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        q = 0.0
        for cx, cy in ((cb, ca), (ca, cb)):
            mask = (cx < cf).astype(np.float64)
            preservation = (cx / cf) * mask + (cf / cx) * (1 - mask)
            q = q + (cx * cx) / (cx * cx + cy * cy) * preservation
    value = float(np.mean(q))
    if math.isnan(value):
        raise MetricUndefinedError("Qcb is undefined: a contrast map is 0/0 (flat image regions)")
    return value


def _block_sums(x: np.ndarray, size: int = 16) -> np.ndarray:
    """MATLAB ``blkproc(x, [size size], [0 0], @(b) sum(b(:)))``: zero-padded at the
    bottom and right to whole blocks."""
    rows, cols = x.shape
    hb, wb = -(-rows // size), -(-cols // size)
    padded = np.zeros((hb * size, wb * size))
    padded[:rows, :cols] = x
    return padded.reshape(hb, size, wb, size).sum(axis=(1, 3))


def _sobel_same(x: np.ndarray) -> np.ndarray:
    """Gradient magnitude from ``filter2`` with [-1 0 1; -2 0 2; -1 0 1] and its transpose,
    'same' size, zero padding."""
    gx = ndimage.correlate(x, np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]), mode="constant")
    gy = ndimage.correlate(x, np.array([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]]), mode="constant")
    return np.sqrt(gx * gx + gy * gy)


def qcv(ir, vi, fused) -> float:
    """Qcv (``metricsQcv``, Liu's ``metricChen``; Chen & Varshney 2007): images stretched
    to 0..255; per 16x16 block (zero-padded), saliency = sum of Sobel magnitude^5 of the
    source, and the mean squared difference source - F after the Mannos-Sakrison CSF
    (frequencies scaled by W/8 and H/8); Q = sum(saliency * D) / sum(saliency). Lower is better."""
    a, b, f = prepare(ir, vi, fused)
    rows, cols = f.shape
    f = stretch_levels(f, "fused", metric="Qcv").astype(np.float64)
    r = _radial_frequency(rows, cols, rows / 8, cols / 8)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))
    num = den = 0.0
    for x, label in ((b, "vi"), (a, "ir")):
        x = stretch_levels(x, label, metric="Qcv").astype(np.float64)
        saliency = _block_sums(_sobel_same(x) ** 5)
        distortion = _block_sums(_filter_in_frequency(x - f, csf) ** 2) / 256
        num += float(np.sum(saliency * distortion))
        den += float(np.sum(saliency))
    if den == 0:
        raise MetricUndefinedError("Qcv is undefined: both sources have no edges (constant images)")
    return num / den
