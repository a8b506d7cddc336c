"""Classical fusion rules, so every results table has reference rows made on the same machine.

Each method takes the infrared and visible luma, float ``[H, W]`` in [0, 1] (any size,
odd included), and returns the fused luma, float32 ``[H, W]`` in [0, 1]. Colour is the
caller's job (fuse Y, then :func:`egmt.data.merge_luma` with the visible CbCr).
All are vectorised: the two sources go through one batched transform.

:data:`BASELINES` (filled by :func:`register`, as timm registers its models) is the one list of
them: ``egmt fuse --method``, ``egmt benchmark --methods`` and the tables' row names read it,
so a new rule is one decorated function here. This module imports numpy only (torch, kornia,
PyWavelets and, for ``contrast``, ``egmt.model`` when a rule runs), so the CLI can read the names
without loading torch. Its users are ``egmt.infer`` and ``egmt.bench``, later stages than ``model``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import numpy as np

from egmt.config import RebaseSpread
from egmt.errors import EGMTError

LAPLACIAN_LEVELS = 4  # levels of the Laplacian pyramid, base included (a common choice; VIFB's LP uses 4)
DWT_WAVELET = "db2"  # paper: no DWT baseline; Daubechies-2 is a usual choice
DWT_LEVELS = 3  # decomposition levels of the DWT


#: A fusion rule: IR and visible luma ``[H, W]`` -> fused luma float32 ``[H, W]`` in [0, 1].
FusionRule = Callable[..., np.ndarray]


#: name -> fusion function ``(ir [H, W], vi [H, W]) -> fused [H, W]``, all floats in [0, 1], in
#: the order the rules are defined (the tables' row order), filled by :func:`register`.
BASELINES: dict[str, FusionRule] = {}
#: name -> row name in the tables.
DISPLAY_NAMES: dict[str, str] = {}


def register(name: str, display: str) -> Callable[[FusionRule], FusionRule]:
    """Decorator: add the function to :data:`BASELINES` as ``name`` (row name ``display``)."""

    def add(fn: FusionRule) -> FusionRule:
        if name in BASELINES:
            raise ValueError(f"baseline {name!r} registered twice")
        BASELINES[name], DISPLAY_NAMES[name] = fn, display
        return fn

    return add


def _check(ir: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ir, vi = np.asarray(ir), np.asarray(vi)
    if ir.ndim != 2 or vi.ndim != 2:
        raise EGMTError(f"baseline fusion wants two [H, W] luma images, got {ir.shape} and {vi.shape}")
    if ir.shape != vi.shape:
        raise EGMTError(f"baseline fusion: IR {ir.shape} and visible {vi.shape} sizes differ")
    return ir.astype(np.float64), vi.astype(np.float64)


def _select_max_abs(a, b):
    """Element-wise: the coefficient of larger magnitude (ties: ``a``). Works on numpy and torch."""
    if not isinstance(a, np.ndarray):  # a torch tensor (kornia's pyramid)
        import torch

        return torch.where(a.abs() >= b.abs(), a, b)
    return np.where(np.abs(a) >= np.abs(b), a, b)


def _out(f: np.ndarray) -> np.ndarray:
    return np.clip(f, 0.0, 1.0).astype(np.float32)


@register("average", "Average")
def average(ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
    """Pixel-wise mean ``(ir + vi) / 2``: the simplest reference rule (a weighted average,
    e.g. the "average" rule of Burt & Kolczynski, "Enhanced image capture through fusion", ICCV 1993)."""
    ir, vi = _check(ir, vi)
    return _out((ir + vi) / 2.0)


@register("max_abs", "Max-abs")
def max_abs(ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
    """Choose-max: each pixel from the source of larger magnitude. On intensities in [0, 1]
    this is ``max(ir, vi)``; the same selection rule is what the multiscale methods below apply
    to detail coefficients (Burt & Kolczynski, "Enhanced image capture through fusion", ICCV 1993)."""
    ir, vi = _check(ir, vi)
    return _out(_select_max_abs(ir, vi))


@register("laplacian_pyramid", "Laplacian pyramid")
def laplacian_pyramid(ir: np.ndarray, vi: np.ndarray, levels: int = LAPLACIAN_LEVELS) -> np.ndarray:
    """Laplacian-pyramid fusion: average the coarsest (Gaussian) level, choose max-abs in every
    band-pass level, then collapse the pyramid (Burt & Adelson, "The Laplacian pyramid as a
    compact image code", IEEE Trans. Commun. 31(4), 1983; fusion rule as in Burt & Kolczynski 1993).

    The pyramid is kornia's (5-tap Gaussian, reflect borders; it pads odd sizes itself, and the
    result is cropped back). ``levels`` counts the base; it is lowered for very small images so
    the coarsest level keeps at least 4 pixels a side.
    """
    import torch
    from kornia.geometry.transform import build_laplacian_pyramid, pyrup

    a, b = _check(ir, vi)
    h, w = a.shape
    smallest = min(h, w)
    max_levels = 1 + int(np.log2(smallest / 4)) if smallest >= 4 else 1
    levels = max(1, min(int(levels), max_levels))
    # [2, 1, H, W]: both sources in one batch; float32 (3x faster than float64, error ~1e-7)
    x = torch.from_numpy(np.stack([a, b])[:, None].astype(np.float32))
    pyr = build_laplacian_pyramid(x, levels)
    fused = [_select_max_abs(lvl[0:1], lvl[1:2]) for lvl in pyr[:-1]]
    img = pyr[-1].mean(dim=0, keepdim=True)  # base: average
    for detail in reversed(fused):
        img = pyrup(img) + detail
    return _out(img[0, 0, :h, :w].numpy())


@register("dwt", "DWT")
def dwt(ir: np.ndarray, vi: np.ndarray, wavelet: str = DWT_WAVELET, levels: int = DWT_LEVELS) -> np.ndarray:
    """Discrete-wavelet-transform fusion: average the approximation band, choose max-abs in every
    detail band (H, V, D at each level), inverse DWT (Li, Manjunath & Mitra, "Multisensor image
    fusion using the wavelet transform", Graphical Models and Image Processing 57(3), 1995).

    PyWavelets ``wavedec2`` / ``waverec2`` with symmetric borders; the result is cropped to the
    input size. ``levels`` is lowered to what the image size allows (``pywt.dwt_max_level``).
    """
    import pywt

    a, b = _check(ir, vi)
    h, w = a.shape
    try:
        wav = pywt.Wavelet(wavelet)
    except ValueError:
        raise EGMTError(f"unknown wavelet {wavelet!r} (see pywt.wavelist(kind='discrete'))") from None
    levels = max(0, min(int(levels), pywt.dwt_max_level(min(h, w), wav.dec_len)))
    coeffs = pywt.wavedec2(np.stack([a, b]), wav, level=levels, axes=(-2, -1))  # both sources at once
    fused = [coeffs[0].mean(axis=0)]
    for bands in coeffs[1:]:
        fused.append(tuple(_select_max_abs(c[0], c[1]) for c in bands))
    return _out(pywt.waverec2(fused, wav)[:h, :w])


@register("contrast", "Contrast target")
def contrast(
    ir: np.ndarray,
    vi: np.ndarray,
    sigma: float = 8.0,
    power: float = 4.0,
    noise: float = 20.0,
    rebase: float = 16.0,
    rebase_spread: RebaseSpread = "gaussian",
) -> np.ndarray:
    """The contrast rule of the shipped recipe's intensity term (:func:`egmt.model.prior.contrast_target`
    with ``loss.intensity_*`` of ``docs/training/egmt-roadscene-config.json``): the infrared's
    structure, re-based onto the brighter source's local mean, where only the infrared has contrast
    above its noise, max(IR, VI) elsewhere. Not a published method (the paper's target is
    max(IR, VI)): the target the shipped network is trained towards, so a table shows what the
    network adds to it. ``rebase_spread``: ``loss.intensity_rebase_spread``. An image with a side
    of at most 3 max(sigma, rebase) pixels is padded to its Gaussians' reflected border as the
    network pads it (:func:`egmt.model.network.pad_to_grid`) and cropped back."""
    import torch

    from egmt.model.network import pad_to_grid
    from egmt.model.prior import blur_margin, contrast_target

    ir, vi = _check(ir, vi)
    h, w = ir.shape
    side = 1 + max(blur_margin(sigma), blur_margin(rebase) if rebase > 0 else 0)
    a, b = (pad_to_grid(torch.from_numpy(x).float()[None, None], 1, side) for x in (ir, vi))
    target = contrast_target(a, b, sigma, power, noise, rebase, rebase_spread=rebase_spread)
    return _out(target[0, 0, :h, :w].numpy())


def get_baseline(name: str, **options) -> FusionRule:
    """The baseline called ``name``, with ``options`` (``levels``, ``wavelet``) bound; EGMTError if unknown."""
    if name not in BASELINES:
        raise EGMTError(f"unknown fusion method {name!r}; choose from {', '.join(BASELINES)}")
    fn = BASELINES[name]
    if not options:
        return fn
    accepted = set(inspect.signature(fn).parameters) - {"ir", "vi"}
    unknown = set(options) - accepted
    if unknown:
        raise EGMTError(f"fusion method {name!r} takes no option(s) {sorted(unknown)}; it takes {sorted(accepted) or 'none'}")
    return functools.partial(fn, **options)
