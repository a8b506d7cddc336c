"""Phase congruency (Liu's ``myphasecong3``, a variant of Kovesi's phasecong3) and the
Q_P fusion metric of Zhao, Laganiere & Liu (2007), Liu's ``metricZhao`` (key PC).

Kovesi's newer phasecong3 (and the ``phasepack`` port) is a different algorithm and does
not reproduce the reference numbers. Vectorised with scipy.fft: 4 scales are filtered
at once per orientation; the filter bank depends only on the image size and is cached.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.fft as sfft

from egmt.metrics._common import MetricUndefinedError, SourceCache, filter_same, gaussian_1d, prepare

NSCALE = 4
NORIENT = 6
MIN_WAVELENGTH = 3.0
MULT = 2.1
SIGMA_ON_F = 0.55
DTHETA_ON_SIGMA = 1.2
K_NOISE = 2.0
CUT_OFF = 0.5
G_SIGMOID = 10.0
EPS = 1e-4
MIN_SIZE = 2  # the frequency grid divides by (n - 1) for odd n


class PhaseCongruency(NamedTuple):
    """Per-pixel maps [H, W]: phase congruency, maximum and minimum covariance moments."""

    pc: np.ndarray
    M: np.ndarray
    m: np.ndarray


class _Bank(NamedTuple):
    log_gabor: np.ndarray  # [NSCALE, H, W] radial filters (0 frequency at [0, 0])
    spread: np.ndarray  # [NORIENT, H, W] angular Gaussians
    em: np.ndarray  # [NORIENT] sum of squared smallest-scale filter
    noise_s2: np.ndarray  # [NORIENT] sum over pixels and scales of ifftFilt_s^2
    noise_sx: np.ndarray  # [NORIENT] sum over pixels and scale pairs i<j of ifftFilt_i ifftFilt_j


def _centred_range(n: int) -> np.ndarray:
    """myphasecong3's normalised frequency range for n samples (odd n divides by n-1)."""
    if n % 2:
        return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
    return np.arange(-n / 2, n / 2) / n


@lru_cache(maxsize=2)
def _filter_bank(rows: int, cols: int) -> _Bank:
    x, y = np.meshgrid(_centred_range(cols), _centred_range(rows))
    radius = np.sqrt(x * x + y * y)
    radius[rows // 2, cols // 2] = 1.0
    theta = np.arctan2(-y, x)
    radius = sfft.ifftshift(radius)
    theta = sfft.ifftshift(theta)
    sintheta, costheta = np.sin(theta), np.cos(theta)

    # Old lowpassfilter: grid (j - (fix(cols/2)+1))/cols for 1-based j, placed with fftshift
    # (not ifftshift): misaligned by one sample for odd sizes, as in the reference.
    xl = (np.arange(1, cols + 1) - (cols // 2 + 1)) / cols
    yl = (np.arange(1, rows + 1) - (rows // 2 + 1)) / rows
    rl = np.sqrt(xl[None, :] ** 2 + yl[:, None] ** 2)
    lp = sfft.fftshift(1.0 / (1.0 + (rl / 0.45) ** 30))

    log_gabor = np.empty((NSCALE, rows, cols))
    for s in range(NSCALE):
        f0 = 1.0 / (MIN_WAVELENGTH * MULT**s)
        log_gabor[s] = np.exp(-(np.log(radius / f0) ** 2) / (2 * math.log(SIGMA_ON_F) ** 2)) * lp
        log_gabor[s, 0, 0] = 0.0

    theta_sigma = math.pi / NORIENT / DTHETA_ON_SIGMA
    spread = np.empty((NORIENT, rows, cols))
    em = np.empty(NORIENT)
    s2 = np.empty(NORIENT)
    sx = np.empty(NORIENT)
    for o in range(NORIENT):
        angl = o * math.pi / NORIENT
        ds = sintheta * math.cos(angl) - costheta * math.sin(angl)
        dc = costheta * math.cos(angl) + sintheta * math.sin(angl)
        dtheta = np.abs(np.arctan2(ds, dc))
        spread[o] = np.exp(-(dtheta**2) / (2 * theta_sigma**2))
        filters = log_gabor * spread[o]
        em[o] = np.sum(filters[0] ** 2)
        # Noise sums of real(ifft2(filter)) * sqrt(H W) per scale, by Parseval without FFTs:
        # real(ifft2(G)) = ifft2(Ge) with Ge(k) = (G(k) + G(-k)) / 2, so the sum over pixels
        # of its square (times H W) is sum_k Ge(k)^2, and of products sum_k Ge_i(k) Ge_j(k).
        even = (filters + np.roll(filters[:, ::-1, ::-1], 1, axis=(1, 2))) / 2
        s2[o] = np.sum(even * even)
        total = even.sum(axis=0)
        sx[o] = (np.sum(total * total) - s2[o]) / 2
    return _Bank(log_gabor, spread, em, s2, sx)


_BLOCK_BYTES = 1 << 21  # post-FFT work in row blocks of ~2 MB of complex data (cache-sized)


def phase_congruency(img: np.ndarray) -> PhaseCongruency:
    """Liu's ``myphasecong3`` on a float64 [H, W] image in 0..255 (4 scales x 6 orientations).

    Returns (pc, M, m), each [H, W]. PC_o = weight * Energy / sumAn has no epsilon, as in the
    reference, so a constant image yields NaN in M and m (PC then raises upstream)."""
    img = np.asarray(img, dtype=np.float64)
    rows, cols = img.shape
    bank = _filter_bank(rows, cols)
    image_fft = sfft.fft2(img)
    block = max(1, _BLOCK_BYTES // (NSCALE * cols * 16))
    total_energy = np.zeros((rows, cols))
    total_sum_an = np.zeros((rows, cols))
    covx2 = np.zeros((rows, cols))
    covy2 = np.zeros((rows, cols))
    covxy = np.zeros((rows, cols))
    sum_an = np.empty((rows, cols))
    max_an = np.empty((rows, cols))
    energy = np.empty((rows, cols))
    an0_sq = np.empty((rows, cols))
    for o in range(NORIENT):
        angl = o * math.pi / NORIENT
        eo = sfft.ifft2((image_fft * bank.spread[o])[None] * bank.log_gabor, axes=(-2, -1), overwrite_x=True)
        for r0 in range(0, rows, block):
            blk = eo[:, r0 : r0 + block]
            even, odd = blk.real, blk.imag
            an = np.abs(blk)
            np.sum(an, axis=0, out=sum_an[r0 : r0 + block])
            np.max(an, axis=0, out=max_an[r0 : r0 + block])
            np.square(an[0], out=an0_sq[r0 : r0 + block])
            sum_e = even.sum(axis=0)
            sum_o = odd.sum(axis=0)
            x_energy = np.sqrt(sum_e * sum_e + sum_o * sum_o) + EPS
            mean_e = sum_e / x_energy
            mean_o = sum_o / x_energy
            # Energy = sum_s [E_s mean_e + O_s mean_o - |E_s mean_o - O_s mean_e|], where the
            # first two terms sum to sum_e mean_e + sum_o mean_o.
            deviation = np.abs(even * mean_o - odd * mean_e).sum(axis=0)
            energy[r0 : r0 + block] = sum_e * mean_e + sum_o * mean_o - deviation
        del eo

        # median(|EO_1|^2) over all pixels (in place: an0_sq is rebuilt next orientation)
        flat = an0_sq.reshape(-1)
        half = flat.size // 2
        if flat.size % 2:
            median_e2n = float(np.partition(flat, half)[half])
        else:
            part = np.partition(flat, (half - 1, half))
            median_e2n = float((part[half - 1] + part[half]) / 2)
        noise_power = (-median_e2n / math.log(0.5)) / bank.em[o]
        est_noise_energy2 = 2 * noise_power * bank.noise_s2[o] + 4 * noise_power * bank.noise_sx[o]
        tau = math.sqrt(est_noise_energy2 / 2)
        threshold = (tau * math.sqrt(math.pi / 2) + K_NOISE * math.sqrt((2 - math.pi / 2) * tau**2)) / 1.7
        cos_a, sin_a = math.cos(angl), math.sin(angl)
        for r0 in range(0, rows, 4 * block):
            rs = slice(r0, r0 + 4 * block)
            s_an = sum_an[rs]
            e = np.maximum(energy[rs] - threshold, 0.0)
            width = s_an / (max_an[rs] + EPS) / NSCALE
            weighted = e / (1 + np.exp((CUT_OFF - width) * G_SIGMOID))  # weight * Energy
            total_energy[rs] += weighted
            total_sum_an[rs] += s_an
            with np.errstate(divide="ignore", invalid="ignore"):
                pc_o = weighted / s_an
            covx = pc_o * cos_a
            covy = pc_o * sin_a
            covx2[rs] += covx * covx
            covy2[rs] += covy * covy
            covxy[rs] += covx * covy

    pc = total_energy / (total_sum_an + EPS)
    covx2 /= NORIENT / 2
    covy2 /= NORIENT / 2
    covxy /= NORIENT
    denom = np.sqrt(covxy * covxy + (covx2 - covy2) ** 2) + EPS
    big_m = (covy2 + covx2 + denom) / 2
    small_m = (covy2 + covx2 - denom) / 2
    return PhaseCongruency(pc, big_m, small_m)


# Sources are scored against many fused images in a row; keep their maps for reuse.
_SOURCE_MAPS = SourceCache(lambda img: phase_congruency(img))


def clear_cache() -> None:
    """Forget the cached source maps (they are keyed by image content, so this is only
    needed to measure or to free memory)."""
    _SOURCE_MAPS.clear()


def _feature_score(fa, fb, fmax, ff, mask_a, mask_b, mask_max) -> float:
    """One feature's term of metricZhao (before dividing by the mask count): local
    correlations with F in a Gaussian (11, 1.5) 'same' window (zero padding), 0 outside
    each reference's mask, maximum over the three references (NaN skipped, as MATLAB's max)."""
    g = gaussian_1d(11, 1.5)
    mu_f = filter_same(ff, g)
    var_f = filter_same(ff * ff, g) - mu_f * mu_f
    result: np.ndarray | None = None
    for x, mask in ((fa, mask_a), (fb, mask_b), (fmax, mask_max)):
        x = x * mask
        mu = filter_same(x, g)
        var = filter_same(x * x, g) - mu * mu
        cov = filter_same(x * ff, g) - mu * mu_f
        with np.errstate(invalid="ignore"):
            r = np.where(mask, (cov + 1e-4) / (np.sqrt(np.abs(var * var_f)) + 1e-4), 0.0)
        result = r if result is None else np.fmax(result, r)
    assert result is not None  # three references
    return float(np.sum(result))


def pc_from_maps(pa: PhaseCongruency, pb: PhaseCongruency, pf: PhaseCongruency) -> float:
    """Q_P from the phase-congruency maps of A, B and F (see :func:`pc_metric`)."""
    take_a = pa.pc > pb.pc
    pc_max = np.where(take_a, pa.pc, pb.pc)
    mask_a = pa.pc > 0.1
    mask_b = pb.pc > 0.1
    mask_max = pc_max > 0.1
    count = int(mask_max.sum())
    if count == 0:
        raise MetricUndefinedError("PC is undefined: no pixel of either source has phase congruency > 0.1")
    score = 1.0
    for name in ("pc", "M", "m"):
        xa, xb, xf = getattr(pa, name), getattr(pb, name), getattr(pf, name)
        xmax = np.where(take_a, xa, xb)
        score *= _feature_score(xa, xb, xmax, xf, mask_a, mask_b, mask_max) / count
    if not math.isfinite(score):
        raise MetricUndefinedError("PC is undefined: phase congruency is 0/0 where an image is constant")
    return score


def source_maps(img: np.ndarray) -> PhaseCongruency:
    """Phase-congruency maps of a source image, cached by content (sources are scored
    against many fused images in a row)."""
    return _SOURCE_MAPS(np.asarray(img, dtype=np.float64))


def pc_metric(ir, vi, fused) -> float:
    """PC: Zhao et al.'s Q_P = score(pc) * score(M) * score(m) from phase congruency maps.

    Pixels where pcA > pcB (strict) take A's maps as the "max" reference, the others B's;
    masks are pc > 0.1. Raises MetricUndefinedError when no pixel has pcMax > 0.1 or the
    phase congruency is undefined (a constant image)."""
    a, b, f = prepare(ir, vi, fused, min_size=MIN_SIZE)
    return pc_from_maps(source_maps(a), source_maps(b), phase_congruency(f))
