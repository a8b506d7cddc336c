"""The multi-task loss (paper Sec. III-D, eq. 9-15).

``L_total = lambda_1 * L_fus + lambda_2 * L_cla`` with ``lambda = softmax(-w / tau)`` over two
learnable weights w (eq. 9-10); ``L_fus = a1 * L_int + a2 * L_edge + a3 * L_ssim`` (eq. 11-14);
``L_cla`` a class-balanced focal loss (eq. 15). SSIM, the Laplacian and the focal loss come
from kornia.
"""

from __future__ import annotations

import functools
import typing

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from egmt.config import IntensityTarget, LossConfig, TaskWeighting
from egmt.errors import EGMTError
from egmt.model.prior import contrast_target, gaussian_blur


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """3x3 Laplacian ``[[1,1,1],[1,-8,1],[1,1,1]]`` with reflected borders, ``[B, C, H, W]``.

    Paper: the Laplacian's kernel is not given; we use kornia's 3x3 kernel unnormalised (raw
    grey-level differences, the scale of SwinFusion's unnormalised Sobel gradient loss, whose
    weighting the paper adopts).
    """
    return kornia.filters.laplacian(x, kernel_size=3, border_type="reflect", normalized=False)


class FusionLoss(nn.Module):
    """``L_fus = a1 L_int + a2 L_edge + a3 L_ssim`` (eq. 11-14); inputs ``[B, 1, H, W]`` in [0, 1].

    - ``L_int = mean |F - max(I_ir, I_vi)|`` (eq. 12), or the base/detail form
      (``LossConfig.intensity_target``, :func:`_intensity`);
    - ``L_edge = mean | |lap F| - max(|lap I_ir|, |lap I_vi|) |`` (eq. 13). The paper writes
      ``lap F`` without the absolute value; a signed Laplacian cannot match a non-negative
      target, so we take ``|lap F|`` as SwinFusion (which the paper follows) does;
      ``LossConfig.edge_abs_fused=False`` gives the literal form;
    - ``L_ssim = (1 - SSIM(F, I_ir)) + (1 - SSIM(F, I_vi))`` (eq. 14): Gaussian window
      ``ssim_window`` (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2, mean over the valid region.

    ``keep_ir: [B]`` in [0, 1] (the entity-conditioned target, ``loss.entity_target_classes``;
    "contrast" only) scales each sample's infrared weight of the contrast target: 1 = the contrast
    target, 0 = max(I_ir, I_vi). None: 1 for every sample.

    Returns a dict of scalars: ``fusion, int, edge, ssim``.
    """

    def __init__(self, cfg: LossConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else LossConfig()

    def forward(
        self, fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, keep_ir: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        if not (fused.shape == ir.shape == vi.shape) or fused.ndim != 4:
            raise EGMTError(
                f"fusion loss: fused, ir and vi must share one [B, C, H, W] shape, got "
                f"{tuple(fused.shape)}, {tuple(ir.shape)}, {tuple(vi.shape)}"
            )
        if min(fused.shape[-2:]) < cfg.ssim_window:
            raise EGMTError(f"fusion loss: image {tuple(fused.shape[-2:])} is smaller than the SSIM window ({cfg.ssim_window})")
        if keep_ir is not None and (cfg.intensity_target != "contrast" or keep_ir.shape != fused.shape[:1]):
            raise EGMTError(
                f"fusion loss: keep_ir needs loss.intensity_target=contrast and one value per sample, got "
                f"{cfg.intensity_target!r} and shape {tuple(keep_ir.shape)} for batch {fused.shape[0]}"
            )
        l_int = _intensity(fused, ir, vi, cfg, keep_ir)
        lap_f = laplacian(fused)
        if cfg.edge_abs_fused:
            lap_f = lap_f.abs()
        l_edge = F.l1_loss(lap_f, torch.maximum(laplacian(ir).abs(), laplacian(vi).abs()))
        if cfg.ssim_form == "sum":
            l_ssim = (1 - _ssim(fused, ir, cfg.ssim_window)) + (1 - _ssim(fused, vi, cfg.ssim_window))
        elif cfg.ssim_form == "grad_weighted":
            w_ir, w_vi = _gradient_weights(ir, vi)
            per_sample = w_ir * _ssim(fused, ir, cfg.ssim_window, per_sample=True) + w_vi * _ssim(
                fused, vi, cfg.ssim_window, per_sample=True
            )
            l_ssim = 1 - per_sample.mean()
        else:
            raise EGMTError(f"loss.ssim_form: unknown form {cfg.ssim_form!r} (sum or grad_weighted)")
        total = cfg.alpha_int * l_int + cfg.alpha_edge * l_edge + cfg.alpha_ssim * l_ssim
        return {"fusion": total, "int": l_int, "edge": l_edge, "ssim": l_ssim}


INTENSITY_TARGETS = typing.get_args(IntensityTarget)


def _intensity(
    fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, cfg: LossConfig, keep_ir: torch.Tensor | None = None
) -> torch.Tensor:
    """eq. 12's term, ``cfg.intensity_target``: ``"max"`` = mean |F - max(I_ir, I_vi)|;
    ``"base_detail"`` = mean |G*F - max(G*I_ir, G*I_vi)| + mean |D(F) - maxabs(D(I_ir), D(I_vi))|,
    G a Gaussian blur of sigma ``intensity_sigma`` (reflected borders), D(x) = x - G*x, maxabs
    taking per pixel the detail of larger magnitude; ``intensity_base="mean"`` asks for the mean of
    the two bases instead of the brighter; ``"contrast"`` = mean |F - contrast_target(I_ir, I_vi)|
    (:func:`contrast_target`, its infrared weight times ``keep_ir: [B]``). ``[B, 1, H, W]`` each -> scalar."""
    if cfg.intensity_target == "max":
        return F.l1_loss(fused, torch.maximum(ir, vi))
    if cfg.intensity_target == "contrast":
        target = contrast_target(
            ir,
            vi,
            cfg.intensity_sigma,
            cfg.intensity_power,
            cfg.intensity_noise,
            cfg.intensity_rebase,
            keep_ir,
            cfg.intensity_rebase_spread,
        )
        return F.l1_loss(fused, target)
    if cfg.intensity_target != "base_detail":
        raise EGMTError(f"loss.intensity_target: unknown {cfg.intensity_target!r} (one of {', '.join(INTENSITY_TARGETS)})")
    base = functools.partial(gaussian_blur, sigma=float(cfg.intensity_sigma))
    b_f, b_ir, b_vi = base(fused), base(ir), base(vi)
    d_ir, d_vi = ir - b_ir, vi - b_vi
    detail = torch.where(d_ir.abs() >= d_vi.abs(), d_ir, d_vi)
    target = torch.maximum(b_ir, b_vi) if cfg.intensity_base == "max" else (b_ir + b_vi) / 2
    return F.l1_loss(b_f, target) + F.l1_loss(fused - b_f, detail)


def entity_negative(own: torch.Tensor, shuffled: torch.Tensor, margin: float) -> torch.Tensor:
    """Shuffled-entity negative (``loss.entity_negative``): ``relu(own - shuffled + margin)``, the
    fusion loss with the pair's own entities against the same pairs fused with another pair's
    entities (scalars): zero once the own entities give a fusion loss lower by ``margin``."""
    return F.relu(own - shuffled + margin)


def absent_entities(own: torch.Tensor, own_mask: torch.Tensor, other: torch.Tensor, other_mask: torch.Tensor) -> torch.Tensor:
    """Which of another pair's real entities are not among a pair's own: ``own: [B, E, D]``,
    ``other: [B, E', D]`` entity features, masks bool (True = real) -> ``[B, E']`` bool. Two
    entities are the same when their features are (cosine > 0.999: one word, one feature)."""
    unit_own, unit_other = F.normalize(own, dim=-1), F.normalize(other, dim=-1)
    same = (unit_other @ unit_own.transpose(1, 2) > 0.999) & own_mask[:, None, :]  # [B, E', E]
    return other_mask & ~same.any(dim=2)


def token_entity_contrast(
    own: torch.Tensor, own_mask: torch.Tensor, other: torch.Tensor, other_mask: torch.Tensor, margin: float
) -> torch.Tensor:
    """Token-entity contrast (``loss.entity_contrast``), multiple-instance style: each entity's
    best-matching token must match a pair's own entities better, by ``margin``, than entities
    absent from it. ``own: [B, E]`` and ``other: [B, E']`` the maximum over the image's tokens of
    CGHA's eq. 5 logits for its own entities and for another pair's; ``own_mask``, ``other_mask``
    bool, True = a real entity (for ``other``: one that is not also among the own).
    Mean over samples and (own, other) entity pairs of ``relu(margin - (own_e - other_e'))``;
    zero where a sample has no such pair."""
    gap = own[:, :, None] - other[:, None, :]  # [B, E, E']
    valid = own_mask[:, :, None] & other_mask[:, None, :]
    hinge = F.relu(margin - gap) * valid
    return hinge.sum() / valid.sum().clamp_min(1)


def _ssim(a: torch.Tensor, b: torch.Tensor, window: int, per_sample: bool = False) -> torch.Tensor:
    """Mean SSIM over the valid region (no padding), images in [0, 1]: a scalar, or ``[B]``."""
    ssim_map = kornia.metrics.ssim(a, b, window_size=window, max_val=1.0, padding="valid")
    return ssim_map.mean(dim=(1, 2, 3)) if per_sample else ssim_map.mean()


def _gradient_weights(ir: torch.Tensor, vi: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """SwinFusion's SSIM weights: each source's share of the mean Sobel gradient magnitude, ``[B]`` each.

    SwinFusion takes the mean over the whole batch; we take it per sample, so one flat crop
    does not change the weights of the others in its batch.
    """
    g_ir = kornia.filters.sobel(ir, normalized=False).mean(dim=(1, 2, 3))
    g_vi = kornia.filters.sobel(vi, normalized=False).mean(dim=(1, 2, 3))
    total = g_ir + g_vi + eps
    return g_ir / total, g_vi / total


def class_balance_weights(positive_ratio: torch.Tensor, min_ratio: float = 0.01) -> torch.Tensor:
    """alpha_c proportional to 1 / r_c (eq. 15), normalised to mean 1 so the loss keeps its scale.

    Paper: the normalisation is not given. A class never (or almost never) positive would get
    an unbounded weight, so r_c is clamped to ``[min_ratio, 1]`` first.
    """
    r = torch.as_tensor(positive_ratio, dtype=torch.float32).flatten()
    if r.numel() == 0 or not torch.isfinite(r).all() or (r < 0).any() or (r > 1).any():
        raise EGMTError(f"positive_ratio must be K finite values in [0, 1], got {r.tolist()}")
    inv = 1.0 / r.clamp(min=min_ratio, max=1.0)
    return inv / inv.mean()


class FocalLoss(nn.Module):
    """Class-balanced multi-label focal loss (eq. 15), via kornia's binary focal loss:
    ``mean over samples and classes of alpha_c (1 - p_t)^gamma BCE(p, y)``.

    Paper: alpha_c multiplies the whole term of class c (positives and negatives), as eq. 15
    writes it, rather than the positive term only as in the original focal loss.
    ``positive_ratio: [K]`` (None: alpha = 1). ``logits, labels: [B, K]`` -> scalar.
    """

    def __init__(self, gamma: float = 2.0, positive_ratio: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        alpha = class_balance_weights(positive_ratio) if positive_ratio is not None else None
        self.register_buffer("alpha", alpha)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.shape != labels.shape or logits.ndim != 2:
            raise EGMTError(f"focal loss: logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must be [B, K]")
        if self.alpha is not None and self.alpha.numel() != logits.shape[1]:
            raise EGMTError(f"focal loss: {self.alpha.numel()} class weights for {logits.shape[1]} classes")
        return kornia.losses.binary_focal_loss_with_logits(
            logits, labels.to(logits.dtype), alpha=None, gamma=self.gamma, reduction="mean", weight=self.alpha
        )


TASK_WEIGHTINGS = typing.get_args(TaskWeighting)


class MultiTaskLoss(nn.Module):
    """``L_total`` from ``L_fus`` and ``L_cla`` (eq. 9-10), weighted as ``cfg.task_weighting`` says.

    - ``"softmax"`` (eq. 10 as written): ``lambda = softmax(-w / tau)``, ``w`` learnable (init 0,
      so 0.5/0.5). Eq. 10 has no regulariser: descent moves weight toward the task whose loss
      is smaller (with Adam at 1e-4, ``|w_1 - w_2|`` can grow by about 2e-4 per step).
    - ``"uncertainty"`` (Kendall et al., the paper's ref. [51]): ``sum_i exp(-s_i) L_i + s_i``
      with ``s_i = log sigma_i^2`` learnable (init 0); the ``+ s_i`` term keeps a weight from
      collapsing. ``lambda_i = exp(-s_i)``.
    - ``"fixed"``: ``lambda = cfg.fixed_task_weights``. ``learn_task_weights=False`` (legacy) means this.

    ``w`` holds the two learnable values (logits or log-variances); it is a buffer when fixed.
    Without logits (multi-task off) the total is the fusion loss alone and lambda = (1, 0).

    ``terms = crit(fused, ir, vi, logits, labels, keep_ir)`` (``keep_ir``: :class:`FusionLoss`):
    dict of scalars ``total, fusion, int, edge,
    ssim, cls, lambda_fus, lambda_cls``.
    """

    def __init__(self, cfg: LossConfig | None = None, positive_ratio: torch.Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else LossConfig()
        self.weighting = self.cfg.task_weighting if self.cfg.learn_task_weights else "fixed"
        if self.weighting not in TASK_WEIGHTINGS:
            raise EGMTError(f"loss.task_weighting: unknown {self.weighting!r} (one of {', '.join(TASK_WEIGHTINGS)})")
        if len(self.cfg.fixed_task_weights) != 2:
            raise EGMTError(f"loss.fixed_task_weights: two weights (fusion, classification), got {self.cfg.fixed_task_weights}")
        self.fusion = FusionLoss(self.cfg)
        self.focal = FocalLoss(self.cfg.focal_gamma, positive_ratio)
        w = torch.zeros(2)
        if self.weighting == "fixed":
            self.register_buffer("w", w)
        else:
            self.w = nn.Parameter(w)

    def task_weights(self) -> torch.Tensor:
        """``[lambda_fus, lambda_cls]``: the factors of the two task losses."""
        if self.weighting == "softmax":
            return torch.softmax(-self.w / self.cfg.temperature, dim=0)
        if self.weighting == "uncertainty":
            return torch.exp(-self.w)
        return torch.tensor(self.cfg.fixed_task_weights, dtype=self.w.dtype, device=self.w.device)

    def forward(
        self,
        fused: torch.Tensor,
        ir: torch.Tensor,
        vi: torch.Tensor,
        logits: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        keep_ir: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        terms = self.fusion(fused, ir, vi, keep_ir)
        if logits is None:
            zero = fused.new_zeros(())
            terms.update(total=terms["fusion"], cls=zero, lambda_fus=fused.new_ones(()), lambda_cls=zero)
            return terms
        if labels is None:
            raise EGMTError("multi-task loss: logits given without labels")
        lam = self.task_weights().to(fused.dtype)
        cls = self.focal(logits, labels)
        total = lam[0] * terms["fusion"] + lam[1] * cls
        if self.weighting == "uncertainty":
            total = total + self.w.sum().to(fused.dtype)
        terms.update(total=total, cls=cls, lambda_fus=lam[0].detach(), lambda_cls=lam[1].detach())
        return terms
