"""The contrast rule: a per-pixel weight of the infrared from where each source has structure.

Where only the infrared has local contrast (a person in bright, flat smoke) the rule keeps the
infrared; where only the visible image has, the visible; elsewhere the brighter source (the
paper's eq. 12 target, max(I_ir, I_vi)). Its image (:func:`contrast_target`) is the intensity
target of ``loss.intensity_target = "contrast"``; with ``model.weight_prior = "contrast"`` its
weight map, and with ``model.fusion_output = "residual"`` its image, is what the network starts
from and corrects (docs/design.md).
"""

from __future__ import annotations

import math
from typing import get_args

import kornia
import torch

from egmt.config import RebaseSpread

#: The guided filter's regulariser (``rebase_ir(spread="guided")``), in squared [0, 1] units: an
#: edge of the visible image whose local variance is well above it (a roof against the sky, about
#: 1e-2) stops the lift; flat smoke's texture (about 1e-4) does not (docs/design.md, the re-base's
#: spread).
GUIDED_EPS = 1e-3


def blur_margin(sigma: float) -> int:
    """Half the width of :func:`gaussian_blur`'s kernel: its reflected border needs images of
    more than this many pixels a side."""
    return int(math.ceil(3 * sigma))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``x [B, C, H, W]`` (kernel 2*ceil(3 sigma)+1, reflected borders)."""
    size = 2 * blur_margin(sigma) + 1
    return kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect")


def noise_level(x: torch.Tensor) -> torch.Tensor:
    """Each image's sensor-noise level, ``[B, C, H, W] -> [B, 1, 1, 1]``: the robust standard
    deviation (median absolute value / 0.6745) of its finest detail layer ``x - G_1*x``, where
    scene structure is sparse and noise and fixed-pattern stripes are everywhere."""
    detail = (x - gaussian_blur(x, 1.0)).flatten(1).abs()
    if torch.compiler.is_exporting():  # ONNX has no median: the same (lower) median by a sort, 6-9x slower
        median = detail.sort(dim=1).values[:, (detail.shape[1] - 1) // 2]
    else:
        median = detail.median(dim=1).values
    return (median / 0.6745).view(-1, 1, 1, 1)


@torch.no_grad()
def contrast_weight(
    ir: torch.Tensor, vi: torch.Tensor, sigma: float = 8.0, power: float = 4.0, noise: float = 0.0
) -> torch.Tensor:
    """``w = G*(c_ir^p / (c_ir^p + c_vi^p))``, ``[B, 1, H, W]`` each -> ``[B, 1, H, W]`` in [0, 1].

    ``c`` is the local standard deviation of each source in a Gaussian window of ``sigma``,
    ``p = power``: near 1 where only the infrared has structure, near 0 where only the visible
    image has. Where neither source has contrast, w = 1/2. With ``noise = kappa > 0`` only
    contrast above the image's own noise counts, ``c^2 = max(var - (kappa * noise_level)^2, 0)``
    (an infrared sky's sensor noise and stripes are not structure), and where neither source has
    any, w = 0. No gradient flows into the sources.
    """
    c = []
    for x in (ir, vi):
        mean = gaussian_blur(x, sigma)
        var = (gaussian_blur(x * x, sigma) - mean * mean).clamp_min(0)
        if noise > 0:
            var = (var - (noise * noise_level(x)) ** 2).clamp_min(0)
        c.append(var.sqrt() ** power)
    total = c[0] + c[1]
    flat = 0.0 if noise > 0 else 0.5  # w where neither source has contrast
    w = torch.where(total > 0, c[0] / total.clamp_min(torch.finfo(ir.dtype).tiny), torch.full_like(total, flat))
    return gaussian_blur(w, sigma).clamp(0, 1)


def contrast_mix(ir: torch.Tensor, vi: torch.Tensor, sigma: float = 8.0, power: float = 4.0, noise: float = 0.0) -> torch.Tensor:
    """The rule as a mixing weight ``m`` of ``m I_ir + (1 - m) I_vi``, ``[B, 1, H, W]``: the rule's
    image ``w I_ir + (1 - w) max(I_ir, I_vi)`` is that mix with ``m = 1`` where the infrared is the
    brighter source and ``m = w`` elsewhere (where the two are equal either gives the same pixel)."""
    w = contrast_weight(ir, vi, sigma, power, noise)
    return torch.where(ir > vi, torch.ones_like(w), w)


def rebase_ir(
    ir: torch.Tensor, vi: torch.Tensor, sigma: float, ceiling: float = 0.0, spread: RebaseSpread = "gaussian"
) -> torch.Tensor:
    """The infrared's structure on the brighter source's local mean, ``[B, 1, H, W]`` each:
    ``I_ir + S(max(I_ir, I_vi) - I_ir)`` clamped to [0, 1], the lift of each pixel to the brighter
    source spread around it by S. A warm person on the infrared's dark background, behind bright
    smoke, comes out as the person standing out of the smoke by his own contrast, without his dark
    background (which, pasted into the smoke, is a halo). Where the infrared is the brighter source
    throughout, it is the infrared. Used by the contrast target (``loss.intensity_rebase``) and the
    weight-map head (``model.ir_rebase``).

    ``spread="gaussian"``: S a Gaussian of ``sigma`` (``I_ir - G*I_ir + G*max(I_ir, I_vi)``). Beside
    a warm roof or tree under a bright sky it spills the sky's lift onto them: a band glowing far
    above both sources (docs/target-halos.md). ``"guided"``: S kornia's guided filter steered by the
    visible image (window ``2 round(sigma) + 1``, :data:`GUIDED_EPS`), which spreads the lift
    within what the visible image shows as one region (the flat smoke around a person) but not
    across its edges (the roof's against the sky). Its local linear fit can overshoot near an edge
    of a noisy visible image, by some grey levels either way (the Gaussian's lift is never
    negative). ``ceiling = c > 0`` (grey levels of 255; ``model.ir_rebase_ceiling``) caps the
    result at ``max(I_ir, I_vi) + c / 255``."""
    if spread == "guided":
        radius = max(int(round(sigma)), 1)
        lift = torch.maximum(ir, vi) - ir
        rebased = (ir + kornia.filters.guided_blur(vi, lift, 2 * radius + 1, GUIDED_EPS, separable=True)).clamp(0, 1)
    elif spread == "gaussian":
        rebased = (ir - gaussian_blur(ir, sigma) + gaussian_blur(torch.maximum(ir, vi), sigma)).clamp(0, 1)
    else:
        raise ValueError(f"rebase spread {spread!r}: one of {get_args(RebaseSpread)}")
    if ceiling > 0:
        rebased = torch.minimum(rebased, torch.maximum(ir, vi) + ceiling / 255)
    return rebased


@torch.no_grad()
def contrast_target(
    ir: torch.Tensor,
    vi: torch.Tensor,
    sigma: float = 8.0,
    power: float = 4.0,
    noise: float = 0.0,
    rebase: float = 0.0,
    keep_ir: torch.Tensor | None = None,
    rebase_spread: RebaseSpread = "gaussian",
) -> torch.Tensor:
    """The ``"contrast"`` intensity target: ``w S + (1 - w) max(I_ir, I_vi)``, ``[B, 1, H, W]``,
    ``w`` the contrast rule (:func:`contrast_weight`): the infrared's structure
    where only the infrared has any (a person in bright, flat smoke), the paper's max(I_ir, I_vi)
    where neither source has any above its noise (``noise = kappa > 0``).

    ``S`` is the infrared as it is (``rebase = 0``), or, with ``rebase = s > 0``, the infrared
    re-based onto the brighter source's local mean (:func:`rebase_ir`, its lift spread by a
    Gaussian of sigma s or a guided filter of window 2 round(s) + 1, ``rebase_spread``): its
    structure at the local brightness of the scene. As it is, the infrared's own dark background
    comes with the person and cuts a dark hole into bright smoke around him (a halo as wide as
    ``w``'s window); re-based, the person stands out of the smoke as he does out of his background. ``keep_ir: [B]`` scales each sample's ``w`` (0: max(I_ir, I_vi),
    the entity-conditioned target). ``rebase_spread``: :func:`rebase_ir`'s ``spread``. No gradient
    flows into the sources."""
    w = contrast_weight(ir, vi, sigma, power, noise)
    if keep_ir is not None:
        w = w * keep_ir.to(w).view(-1, 1, 1, 1)
    structure = ir if rebase <= 0 else rebase_ir(ir, vi, rebase, spread=rebase_spread)
    return w * structure + (1 - w) * torch.maximum(ir, vi)
