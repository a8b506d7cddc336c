"""Fusion quality metrics on (ir, vi, fused) grey images in 0..255, as the MATLAB references
compute them (conventions: docs/metrics.md; golden values: tests/data/reference).

A = ir, B = vi, F = fused. Every function takes the three images (uint8 or float 0..255,
RGB converted with MATLAB rgb2gray weights) and returns a float. A metric the reference
leaves undefined (NaN) raises :class:`MetricUndefinedError` (an EGMTError) instead.
Phase congruency (PC) lives in ``phase.py``, the FMI family in ``fmi.py``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from egmt.metrics._common import (
    MetricUndefinedError,
    check_defined,
    entropy_bits,
    filter_valid,
    gaussian_1d,
    joint_histogram,
    matlab_round,
    pearson,
    prepare,
    to_levels,
)

# --------------------------------------------------------------------------- statistics of F


def en(ir, vi, fused) -> float:
    """EN: entropy (bits) of the 256-bin histogram of F (MATLAB ``entropy`` on uint8)."""
    _, _, f = prepare(ir, vi, fused)
    return entropy_bits(np.bincount(to_levels(f).ravel(), minlength=256))


def sd(ir, vi, fused) -> float:
    """SD: population standard deviation of F (divisor H*W), Tang ``SD_evaluation``."""
    _, _, f = prepare(ir, vi, fused)
    return float(np.sqrt(np.mean((f - f.mean()) ** 2)))


def sf(ir, vi, fused, per_pixel: bool = False) -> float:
    """SF: spatial frequency sqrt(RF^2 + CF^2); each mean over its own count (Tang, CDDFuse).

    ``per_pixel=True`` divides both sums of squared differences by H*W instead, as VIFB's
    ``metricsSpatial_frequency`` does (a slightly smaller value)."""
    _, _, f = prepare(ir, vi, fused, min_size=2)
    rows, cols = np.diff(f, axis=0) ** 2, np.diff(f, axis=1) ** 2
    if per_pixel:
        return float(np.sqrt((rows.sum() + cols.sum()) / f.size))
    return float(np.sqrt(rows.mean() + cols.mean()))


def ag(ir, vi, fused, plain_mean: bool = False) -> float:
    """AG: average gradient, sum over all H*W pixels of sqrt((Gx^2+Gy^2)/2) divided by
    (H-1)(W-1), the reference's quirk (Tang ``AG_evaluation`` = VIFB).

    ``plain_mean=True`` divides by H*W, as CDDFuse's ``Evaluator.AG`` does (smaller by
    (H-1)(W-1)/(HW))."""
    _, _, f = prepare(ir, vi, fused, min_size=2)
    gy, gx = np.gradient(f)
    h, w = f.shape
    total = np.sum(np.sqrt((gx * gx + gy * gy) / 2))
    return float(total / (h * w if plain_mean else (h - 1) * (w - 1)))


# --------------------------------------------------------------------------- correlation


def cc(ir, vi, fused) -> float:
    """CC: (r(A, F) + r(B, F)) / 2 with Pearson r (Tang ``CC_evaluation``)."""
    a, b, f = prepare(ir, vi, fused)
    value = (pearson(a, f) + pearson(b, f)) / 2
    return check_defined(value, "CC", "an image is constant")


def scd(ir, vi, fused) -> float:
    """SCD: r(F - B, A) + r(F - A, B) (Aslantas & Bendes 2015; Tang ``analysis_SCD``).

    Undefined (MetricUndefinedError) when a source is constant or F differs from a source
    by a constant, e.g. F equal to a source: MATLAB's corr2 gives NaN there."""
    a, b, f = prepare(ir, vi, fused)
    value = pearson(f - b, a) + pearson(f - a, b)
    return check_defined(value, "SCD", "a source, or F minus a source, is constant (e.g. F equals a source)")


# --------------------------------------------------------------------------- VIF


_VIF_SIGMA_NSQ = 2.0


def scipy_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``scipy.signal.convolve2d(x, outer(g, g), 'valid')`` as CDDFuse's VIF calls it: the
    same as :func:`filter_valid` while the window fits, but when the window is larger than
    the image in both directions scipy silently swaps the two and returns a non-empty array."""
    n = g.size
    if n <= x.shape[0] and n <= x.shape[1]:
        return filter_valid(x, g)
    try:
        return signal.convolve2d(x, np.outer(g, g), mode="valid")
    except ValueError as e:  # window larger in one direction only
        raise MetricUndefinedError(f"VIF (scipy 'valid') is undefined for a {x.shape[0]}x{x.shape[1]} scale: {e}") from e


def _vif_pyramid(img: np.ndarray, valid=filter_valid) -> list[tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """Per scale (1..4) of ``vifp_mscale``: (image at that scale, local mean, E[x^2]) with
    the scale's Gaussian (N = 2^(5-s)+1, sigma N/5), or None once the window no longer fits.
    Scales > 1 filter with that scale's window ('valid') and keep every second sample.
    ``valid``: the 'valid' filter (:func:`filter_valid`, or :func:`scipy_valid`)."""
    out = []
    for scale in range(1, 5):
        n = 2 ** (5 - scale) + 1
        g = gaussian_1d(n, n / 5)
        if scale > 1:
            img = valid(img, g)[::2, ::2]
        mu = valid(img, g)
        out.append(None if mu.size == 0 else (img, mu, valid(img * img, g)))
    return out


def _vifp(ref_pyr, dist_pyr, valid=filter_valid) -> tuple[float, float]:
    """(num, den) of LIVE ``vifp_mscale`` for one (reference, distorted) pair of pyramids."""
    num = den = 0.0
    for scale, (r, d) in enumerate(zip(ref_pyr, dist_pyr), start=1):
        if r is None:
            continue  # MATLAB's sums over an empty 'valid' output add 0
        ref, mu1, e11 = r
        dist, mu2, e22 = d
        n = 2 ** (5 - scale) + 1
        s1 = e11 - mu1 * mu1
        s2 = e22 - mu2 * mu2
        s12 = valid(ref * dist, gaussian_1d(n, n / 5)) - mu1 * mu2
        # the reference's order of fix-ups, step 4 in the README
        s1[s1 < 0] = 0
        s2[s2 < 0] = 0
        gain = s12 / (s1 + 1e-10)
        sv = s2 - gain * s12
        low1 = s1 < 1e-10
        gain[low1] = 0
        sv[low1] = s2[low1]
        s1[low1] = 0
        low2 = s2 < 1e-10
        gain[low2] = 0
        sv[low2] = 0
        neg = gain < 0
        sv[neg] = s2[neg]
        gain[neg] = 0
        sv[sv <= 1e-10] = 1e-10
        num += float(np.sum(np.log10(1 + gain * gain * s1 / (sv + _VIF_SIGMA_NSQ))))
        den += float(np.sum(np.log10(1 + s1 / _VIF_SIGMA_NSQ)))
    return num, den


def vif(ir, vi, fused, scipy_convention: bool = False) -> float:
    """VIF: vifp(A, F) + vifp(B, F), pixel-domain multiscale VIF (Sheikh & Bovik, LIVE
    ``vifp_mscale`` as in Tang), source as reference, F as distorted. Not Han's VIFF.
    Scales whose Gaussian window no longer fits the image add nothing.

    ``scipy_convention=True`` is CDDFuse's port (its key VIFF): scipy's 'valid' convolution
    (:func:`scipy_valid`, which differs on images under 41 pixels a side) and a source
    with no local variance counting vifp = 1 instead of being undefined."""
    a, b, f = prepare(ir, vi, fused, min_size=17)
    valid = scipy_valid if scipy_convention else filter_valid
    f_pyr = _vif_pyramid(f, valid)
    total = 0.0
    for src, label in ((a, "ir"), (b, "vi")):
        num, den = _vifp(_vif_pyramid(src, valid), f_pyr, valid)
        if den != 0:
            total += num / den
        elif scipy_convention:
            total += 1.0  # CDDFuse's compare_viff: NaN (0/0) -> 1.0
        else:
            raise MetricUndefinedError(f"VIF is undefined: {label} has no local variance (constant image)")
    return total


# --------------------------------------------------------------------------- mutual information


def _mi_terms(x: np.ndarray, f: np.ndarray, saturate: bool) -> float:
    """H(X) + H(F) - H(F, X) in bits for integer images; with ``saturate`` the joint
    histogram maps 255 to 254 (uint8 index arithmetic in Tang's ``Hab``)."""
    hx = entropy_bits(np.bincount(x.ravel(), minlength=256))
    hf = entropy_bits(np.bincount(f.ravel(), minlength=256))
    if saturate:
        joint = joint_histogram(np.minimum(f, 254), np.minimum(x, 254))
    else:
        joint = joint_histogram(f, x)
    return hx + hf - entropy_bits(joint)


def mi(ir, vi, fused, saturate: bool = False, stretch: bool = False, nats: bool = False) -> float:
    """MI: I(F; A) + I(F; B) in bits, exact 256x256 joint histograms.

    ``saturate=True`` gives Tang's ``MI_evaluation`` (key MI_tang): in the joint histograms
    only, grey levels 254 and 255 share a bin (uint8 saturation in the reference), which
    inflates MI when a 254 and a 255 share a partner value.
    ``stretch=True`` min-max stretches each image to round(255 (x - min)/(max - min)) first
    (a constant image becomes 0), as VIFB's ``metricsMutinf`` does; ``nats=True`` reports
    natural-log units (VIFB, and CDDFuse's scikit-learn ``mutual_info_score``)."""
    a, b, f = (to_levels(x) for x in prepare(ir, vi, fused))
    if stretch:
        a, b, f = (stretch_levels(x, label, constant_to_zero=True) for x, label in ((a, "ir"), (b, "vi"), (f, "fused")))
    value = _mi_terms(a, f, saturate) + _mi_terms(b, f, saturate)
    return value * math.log(2) if nats else value


def mi_tang(ir, vi, fused) -> float:
    """MI_tang: MI with the reference's 254/255 joint-histogram saturation (Tang ``MI_evaluation``)."""
    return mi(ir, vi, fused, saturate=True)


# --------------------------------------------------------------------------- PSNR, SSIM

PSNR_TANG_OFFSET_DB = 20 * math.log10(255)  # 48.1308... dB


def mse(ir, vi, fused) -> float:
    """MSE: (MSE(F, A) + MSE(F, B)) / 2 on 0..255 values (CDDFuse's ``Evaluator.MSE``)."""
    return _mse(*prepare(ir, vi, fused))


def _mse(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return float((np.mean((a - f) ** 2) + np.mean((b - f) ** 2)) / 2)


def psnr(ir, vi, fused, tang_offset: bool = False, peak_from_fused: bool = False) -> float:
    """PSNR = 10 log10(255^2 / ((MSE(F, A) + MSE(F, B)) / 2)) in dB; +inf when F = A = B.

    ``tang_offset=True`` gives Tang's 2023 ``PSNR_evaluation`` (key PSNR_tang), which works
    on [0, 1] data but keeps 255 as the peak and so reads 20 log10(255) = 48.13 dB higher.
    ``peak_from_fused=True`` takes max(F) as the peak instead of 255 (CDDFuse)."""
    a, b, f = prepare(ir, vi, fused)
    value = _mse(a, b, f)
    if value == 0:
        return math.inf
    peak = float(f.max()) if peak_from_fused else 255.0
    value = 10 * math.log10(peak**2 / value)
    return value + PSNR_TANG_OFFSET_DB if tang_offset else value


def psnr_tang(ir, vi, fused) -> float:
    """PSNR_tang: PSNR + 20 log10(255) dB, as Tang's 2023 driver reports it."""
    return psnr(ir, vi, fused, tang_offset=True)


def _ssim_vifb(x: np.ndarray, f: np.ndarray, f_stats: tuple[np.ndarray, np.ndarray]) -> float:
    """Mean SSIM map of (x, f): Gaussian (11, 1.5) window, 'valid', L = 255 (VIFB
    ``metricsSsim``); ``f_stats`` = (local mean, E[f^2]) of f, shared by both sources."""
    g = gaussian_1d(11, 1.5)
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    mf, eff = f_stats
    mx = filter_valid(x, g)
    sxx = filter_valid(x * x, g) - mx * mx
    sff = eff - mf * mf
    sxf = filter_valid(x * f, g) - mx * mf
    smap = ((2 * mx * mf + c1) * (2 * sxf + c2)) / ((mx * mx + mf * mf + c1) * (sxx + sff + c2))
    return float(smap.mean())


def _ssim_per_source(ir, vi, fused) -> tuple[float, float]:
    """``(SSIM(A, F), SSIM(B, F))`` with VIFB's SSIM; F's local statistics computed once."""
    a, b, f = prepare(ir, vi, fused, min_size=11)
    g = gaussian_1d(11, 1.5)
    f_stats = (filter_valid(f, g), filter_valid(f * f, g))
    return _ssim_vifb(a, f, f_stats), _ssim_vifb(b, f, f_stats)


def ssim(ir, vi, fused, summed: bool = False) -> float:
    """SSIM = (SSIM(A, F) + SSIM(B, F)) / 2 with VIFB's SSIM (Gaussian 11x11, sigma 1.5,
    'valid' map, C1 = (0.01*255)^2, C2 = (0.03*255)^2, plain mean).

    ``summed=True`` gives the sum SSIM(A, F) + SSIM(B, F) that VIFB reports (key SSIM_sum_vifb).
    Neither MATLAB's built-in ``ssim`` nor scikit-image's, which give other numbers."""
    total = sum(_ssim_per_source(ir, vi, fused))
    return total if summed else total / 2


def ssim_min(ir, vi, fused) -> float:
    """SSIM_min = min(SSIM(A, F), SSIM(B, F)) with the same SSIM as :func:`ssim`: how much of the
    *less* kept source's structure survives. Copying one source scores SSIM(A, B); egmt's own
    measure of balance (no reference toolbox has it), built on the reference-tested SSIM."""
    return min(_ssim_per_source(ir, vi, fused))


def ssim_sum_vifb(ir, vi, fused) -> float:
    """SSIM_sum_vifb: SSIM(A, F) + SSIM(B, F), as VIFB tabulates it (twice SSIM)."""
    return ssim(ir, vi, fused, summed=True)


def ssim_skimage(ir, vi, fused, data_range: float = 2.0) -> float:
    """SSIM(F, A) + SSIM(F, B) with scikit-image's ``structural_similarity`` defaults, as
    CDDFuse sums it: 7x7 uniform window, sample covariance, K1 0.01, K2 0.03, and the
    data range scikit-image <= 0.19 inferred for float images, 2, so C1 = 0.02^2 and
    C2 = 0.06^2 on 0..255 data. Up to 2; not comparable with the Gaussian SSIM."""
    from skimage.metrics import structural_similarity

    a, b, f = prepare(ir, vi, fused, min_size=7)
    return float(structural_similarity(f, a, data_range=data_range) + structural_similarity(f, b, data_range=data_range))


# --------------------------------------------------------------------------- Qabf


def _qabf_gradients(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel strength g and angle alpha: true 2-D convolution with [[-1,0,1],[-2,0,2],[-1,0,1]]
    (Sx) and [[1,2,1],[0,0,0],[-1,-2,-1]] (Sy), zero padding, 'same' size (= scipy
    convolve2d(x, k, 'same')). alpha = atan(Sy/Sx), pi/2 wherever Sx == 0."""
    p = np.pad(x, 1, mode="constant")
    dcol = p[:, :-2] - p[:, 2:]  # convolution flips the kernel: left minus right
    sx = dcol[:-2] + 2 * dcol[1:-1] + dcol[2:]
    drow = p[2:] - p[:-2]
    sy = drow[:, :-2] + 2 * drow[:, 1:-1] + drow[:, 2:]
    g = np.sqrt(sx * sx + sy * sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.arctan(sy / sx)
    alpha[sx == 0] = np.pi / 2
    return g, alpha


def _qabf_preservation(gx, ax, gf, af) -> np.ndarray:
    """Q_XF per pixel, keeping the reference's G = gF where gX == gF (README step 2)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = np.where(gx > gf, gf / gx, np.where(gx == gf, gf, gx / gf))
    orient = 1 - np.abs(ax - af) / (np.pi / 2)
    qg = 0.9994 / (1 + np.exp(-15 * (strength - 0.5)))
    qa = 0.9879 / (1 + np.exp(-22 * (orient - 0.8)))
    return qg * qa


def qabf(ir, vi, fused, input_scale: float = 1.0) -> float:
    """Qabf: Xydeas-Petrovic edge preservation sum(Q_AF gA + Q_BF gB) / sum(gA + gB)
    (Tang ``analysis_Qabf``; equal strengths give G = gF, the reference's quirk).

    ``input_scale=255`` multiplies the images by 255 first, as VIFB's ``metricsQabf`` does
    (its 255*im2double on doubles): only the G = gF quirk sees the scale (~1e-10)."""
    a, b, f = (x * input_scale for x in prepare(ir, vi, fused))
    ga, aa = _qabf_gradients(a)
    gb, ab = _qabf_gradients(b)
    gf, af = _qabf_gradients(f)
    den = np.sum(ga + gb)
    if den == 0:
        raise MetricUndefinedError("Qabf is undefined: both sources have no edges (constant images)")
    num = np.sum(_qabf_preservation(ga, aa, gf, af) * ga + _qabf_preservation(gb, ab, gf, af) * gb)
    return float(num / den)


# --------------------------------------------------------------------------- Nabf


def _nabf_gradients(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strength g and atan angle from Sobel/8 correlation on a mirror-extended image."""
    p = np.pad(x, 1, mode="reflect")
    # correlate with V = [[-1,0,1],[-2,0,2],[-1,0,1]]/8 and Hk = [[-1,-2,-1],[0,0,0],[1,2,1]]/8;
    # integer sums divided by 8 are exact in float64.
    left, right = p[:, :-2], p[:, 2:]
    dcol = right - left
    gv = (dcol[:-2] + 2 * dcol[1:-1] + dcol[2:]) / 8
    drow = p[2:] - p[:-2]
    gh = (drow[:, :-2] + 2 * drow[:, 1:-1] + drow[:, 2:]) / 8
    g = np.sqrt(gh * gh + gv * gv)
    with np.errstate(divide="ignore", invalid="ignore"):
        ang = np.arctan(gv / gh)  # atan(+-inf) = +-pi/2 where only gh == 0
    ang[(gh == 0) & (gv == 0)] = 0
    return g, ang


def _nabf_core(fused: np.ndarray, src1: np.ndarray, src2: np.ndarray) -> float:
    """Shreyamsha Kumar's modified artifact measure N_abf, in ``objective_fusion_perform_fn``'s
    argument order (fused first)."""
    gf, af = _nabf_gradients(fused)
    total_num = 0.0
    weights = []
    mask = np.ones_like(gf, dtype=bool)
    losses = []
    for src in (src1, src2):
        gx, ax = _nabf_gradients(src)
        with np.errstate(divide="ignore", invalid="ignore"):
            strength = np.where((gx == 0) | (gf == 0), 0.0, np.minimum(gx, gf) / np.maximum(gx, gf))
        orient = np.abs(np.abs(ax - af) - np.pi / 2) * 2 / np.pi
        qg = 0.9999 / (1 + np.exp(-19 * (strength - 0.5)))
        qa = 0.9995 / (1 + np.exp(-22 * (orient - 0.5)))
        q = np.sqrt(qg * qa)
        w = np.where(gx >= 2, gx**1.5, 0.001)
        mask &= gf > gx
        losses.append((1 - q) * w)
        weights.append(w)
    total_num = float(np.sum(mask * (losses[0] + losses[1])))
    return total_num / float(np.sum(weights[0] + weights[1]))


def nabf(ir, vi, fused, swapped: bool = False) -> float:
    """Nabf: modified fusion-artifact measure (Shreyamsha Kumar 2013), lower is better;
    0 when F never has a stronger gradient than both sources.

    ``swapped=True`` reproduces Tang's 2023 driver (key Nabf_tang2023), which passes
    (A, B, F) where the function expects (F, A, B): the value is wrong but it is what
    tables made with that driver contain."""
    a, b, f = prepare(ir, vi, fused)
    return _nabf_core(a, b, f) if swapped else _nabf_core(f, a, b)


def nabf_tang2023(ir, vi, fused) -> float:
    """Nabf_tang2023: Nabf with Tang's 2023 argument order (ir taken as the fused image)."""
    return nabf(ir, vi, fused, swapped=True)


# --------------------------------------------------------------------------- NCIE


def stretch_levels(x: np.ndarray, label: str, constant_to_zero: bool = False, metric: str = "NCIE") -> np.ndarray:
    """Liu's ``normalize1``: round((x - min)/(max - min) * 255), MATLAB round.
    A constant image: undefined (0/0) in normalize1, all 0 with ``constant_to_zero``
    (VIFB's ``metricsMutinf``)."""
    hi, lo = x.max(), x.min()
    if (hi == 0 and lo == 0) or (hi == lo and constant_to_zero):
        return np.zeros(x.shape, dtype=np.int64)
    if hi == lo:
        raise MetricUndefinedError(f"{metric} is undefined: {label} is a constant non-zero image (0/0 in the stretch)")
    return matlab_round((x - lo) / (hi - lo) * 255).astype(np.int64)


def _ncc(x: np.ndarray, y: np.ndarray) -> float:
    """Nonlinear correlation coefficient: base-256 entropies H_X + H_Y - H_XY."""
    return (
        entropy_bits(np.bincount(x.ravel(), minlength=256))
        + entropy_bits(np.bincount(y.ravel(), minlength=256))
        - entropy_bits(joint_histogram(x, y))
    ) / 8.0


def ncie(ir, vi, fused) -> float:
    """NCIE: nonlinear correlation information entropy (Wang et al.; Liu's ``metricWang``).

    Eigenvalues that are zero up to rounding contribute 0 (the limit of x log x); the
    reference would return NaN there (paper: not defined; we use the limit)."""
    a, b, f = prepare(ir, vi, fused)
    a, b, f = stretch_levels(a, "ir"), stretch_levels(b, "vi"), stretch_levels(f, "fused")
    nab, naf, nbf = _ncc(a, b), _ncc(a, f), _ncc(b, f)
    r = np.array([[1.0, nab, naf], [nab, 1.0, nbf], [naf, nbf, 1.0]])
    lam = np.linalg.eigvalsh(r)
    if lam.min() < -1e-12:
        raise MetricUndefinedError("NCIE is undefined: the NCC matrix is not positive semi-definite")
    lam = lam[lam > 1e-15]
    hr = -np.sum((lam / 3) * np.log2(lam / 3)) / 8.0
    return float(1 - hr)
