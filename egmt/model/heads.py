"""Task-specific heads (paper Sec. III-C): the fused-image reconstructor (eq. 7) and the
multi-label entity classifier (eq. 8)."""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F
from torch import nn

from egmt.config import RebaseSpread
from egmt.model.prior import contrast_mix, contrast_target, rebase_ir


class FusionHead(nn.Module):
    """Reconstructor, eq. 7: ``Conv3x3(2C->C) -> Conv3x3(C->C/2) -> Conv1x1(C/2->1)``, stride 1.

    With the paper's C = 32 this is 64:32, 32:16, 16:1 (Sec. IV-A). Paper: activations not
    given; we use LeakyReLU(0.2) after the two 3x3 convolutions and a sigmoid at the end so
    the fused image lies in [0, 1]. Reflection padding avoids dark borders.
    ``[B, 2C, H, W] -> [B, 1, H, W]``.

    ``output="weights"`` (``ModelConfig.fusion_output``) reads the sigmoid as a per-pixel weight
    ``w`` instead and returns ``w * ir + (1 - w) * vi`` (``ir, vi: [B, 1, H, W]``, the sources on
    the same grid): the network then chooses, per pixel, how much of each source to keep, and
    can never leave the sources' range.

    ``output="residual"`` reads the last convolution as a correction ``out`` to the contrast rule's
    image ``T`` (:func:`egmt.model.prior.contrast_target` with ``prior_args`` and ``rebase``, the
    loss's contrast target when they equal ``loss.intensity_*``) and returns ``clamp(T + out, 0, 1)``:
    unlike a weight map it can leave the sources' range (T does, where it re-bases the infrared).
    The last convolution starts at zero, so the untrained network fuses as the rule does (exactly
    when the image needs no padding to the token grid; the rule then sees the padded sources near
    the right and bottom borders), and its gradient is 1 wherever the image is inside [0, 1] (the weight prior's sigmoid starts
    saturated where the rule's choice is sure). Why: the network fits the rule worse than the rule
    itself scores (docs/training.md, "what the network leaves on the table").

    With a ``prior`` (:func:`egmt.model.prior.contrast_mix` with its ``sigma, power, noise``;
    ``ModelConfig.weight_prior``) the weight is ``sigmoid(logit(m) + out)``, ``m`` the rule's
    mixing weight clamped to [PRIOR_EPS, 1 - PRIOR_EPS] and ``out`` the last convolution, which
    starts at zero: the untrained head fuses as the rule does (within PRIOR_EPS of its mix), and
    learns where to depart from it. The clamp bounds how saturated the sigmoid starts (its slope
    w (1 - w) is 0.0475 at 0.05, 0.001 at 1e-3). Trained with the contrast target, whose minimum is
    at or near the rule, the network stayed at the rule with either clamp (docs/training.md, "What
    did not work"). The rule is computed per tile when a large image is fused in tiles (each
    tile's own noise level), and needs sides of more than 3 prior_sigma pixels (its Gaussian's
    reflected border).

    With ``rebase = s > 0`` (``ModelConfig.ir_rebase``) the weight map mixes the visible image
    with the infrared re-based onto the brighter source's local mean
    (:func:`egmt.model.prior.rebase_ir`) instead of the infrared as it is: a weight map can then
    give a person in bright smoke his infrared contrast at the smoke's brightness, which the
    re-based contrast target (``loss.intensity_rebase``) asks for and no mix of the raw sources
    can give (the head returns ``w * S + (1 - w) * vi``; ``ir`` stays the raw infrared outside).
    ``rebase_ceiling = c > 0`` (``ModelConfig.ir_rebase_ceiling``) caps S at max(IR, VI) + c grey
    levels, so that no mix of S and the visible image glows more than c above both sources.
    ``rebase_spread`` (``ModelConfig.ir_rebase_spread``): how S spreads the lift, "gaussian" or
    "guided" by the visible image (:func:`egmt.model.prior.rebase_ir`).
    """

    OUTPUTS = ("image", "weights", "residual")
    PRIORS = ("none", "contrast")
    PRIOR_EPS = 0.05

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        output: str = "image",
        prior: str = "none",
        prior_args: tuple[float, float, float] = (8.0, 4.0, 12.0),
        rebase: float = 0.0,
        rebase_ceiling: float = 0.0,
        rebase_spread: RebaseSpread = "gaussian",
    ) -> None:
        super().__init__()
        if output not in self.OUTPUTS:
            raise ValueError(f"fusion_output must be one of {self.OUTPUTS}, got {output!r}")
        if prior not in self.PRIORS:
            raise ValueError(f"weight_prior must be one of {self.PRIORS}, got {prior!r}")
        if prior != "none" and output != "weights":
            raise ValueError(f"weight_prior={prior!r} needs fusion_output='weights' (a weight map to start from)")
        if rebase_spread not in get_args(RebaseSpread):
            raise ValueError(f"ir_rebase_spread must be one of {get_args(RebaseSpread)}, got {rebase_spread!r}")
        if rebase > 0 and output == "image":
            raise ValueError(f"ir_rebase={rebase} needs fusion_output='weights' or 'residual' (a fusion made from the sources)")
        self.output = output
        self.rebase = rebase
        self.rebase_ceiling = rebase_ceiling
        self.rebase_spread = rebase_spread
        self.prior = prior
        self.prior_args = prior_args
        mid = in_channels // 2
        low = max(1, in_channels // 4)
        self.conv1 = nn.Conv2d(in_channels, mid, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(mid, low, 3, padding=1, padding_mode="reflect")
        self.conv3 = nn.Conv2d(low, out_channels, 1)
        self.act = nn.LeakyReLU(0.2)
        if prior != "none" or output == "residual":
            for param in self.conv3.parameters():  # out = 0: the untrained head is the rule
                nn.init.zeros_(param)

    def forward(self, x: torch.Tensor, ir: torch.Tensor | None = None, vi: torch.Tensor | None = None) -> torch.Tensor:
        return self.compose(self.logits(x, ir, vi), ir, vi)

    def logits(self, x: torch.Tensor, ir: torch.Tensor | None = None, vi: torch.Tensor | None = None) -> torch.Tensor:
        """The head's raw output, ``[B, 1, H, W]``: the image's logit, or the weight map's (the
        prior's included), both before their sigmoid, or the residual head's correction. Entity guidance (:meth:`egmt.model.network.EGMT._fuse`) mixes two of
        these."""
        out = self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))
        if self.output != "weights" or self.prior != "contrast":
            return out
        if ir is None or vi is None:
            raise ValueError("a weight-map fusion head with a prior needs the two sources")
        mix = contrast_mix(ir, vi, *self.prior_args).clamp(self.PRIOR_EPS, 1 - self.PRIOR_EPS)
        return out + torch.logit(mix)

    def compose(self, logits: torch.Tensor, ir: torch.Tensor | None = None, vi: torch.Tensor | None = None) -> torch.Tensor:
        """The fused image from :meth:`logits`: their sigmoid, or the sources mixed by it, or the
        rule's image corrected by them."""
        if self.output == "image":
            return torch.sigmoid(logits)
        if ir is None or vi is None:
            raise ValueError(f"a {self.output!r} fusion head needs the two sources")
        if self.output == "residual":
            return (
                contrast_target(ir, vi, *self.prior_args, rebase=self.rebase, rebase_spread=self.rebase_spread) + logits
            ).clamp(0, 1)
        w = torch.sigmoid(logits)
        if self.rebase > 0:
            ir = rebase_ir(ir, vi, self.rebase, self.rebase_ceiling, self.rebase_spread)
        return w * ir + (1 - w) * vi


class EntityClassifier(nn.Module):
    """Multi-label classifier, eq. 8: ``p = FC(MP(Phi_f^sr . Mask(Phi_en^text)))``.

    Paper: the joint space and the product are not defined; we read them as follows.
    Mask: during training only, each element of the flattened entity features ``[E*D]`` is
    zeroed independently with probability ``mask_ratio`` (0.6), without rescaling (it is a
    masking, not dropout). The masked entities are projected by a fully connected layer to
    the shared width 2C (the visual-entity joint space); the product with the shared
    representation is element-wise per token, channel and entity,
    ``J[b, e, t, c] = Phi[b, t, c] * e[b, e, c]``; MP is the global max over tokens and over
    the image's real entities, giving ``[B, 2C]``; FC maps it to K logits. Since
    ``max_t(x_t * e) = max(e * max_t x_t, e * min_t x_t)`` per channel, J is never built.
    An image without entities (or a model without text interaction, ``use_entities=False``)
    is classified from the plain global max pool of the shared representation.

    ``shared: [B, 2C, H, W]``, ``entities: [B, E, D]`` or None, ``mask: [B, E]`` bool -> ``[B, K]``.
    """

    def __init__(self, in_channels: int, entity_dim: int, num_classes: int, mask_ratio: float, use_entities: bool = True) -> None:
        super().__init__()
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"entity_mask_ratio must be in [0, 1), got {mask_ratio}")
        self.mask_ratio = mask_ratio
        self.entity_proj = nn.Linear(entity_dim, in_channels) if use_entities else None
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(
        self, shared: torch.Tensor, entities: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        high = shared.amax(dim=(2, 3))  # [B, 2C]
        if self.entity_proj is None or entities is None or entities.shape[1] == 0:
            return self.fc(high)
        if mask is None:
            mask = torch.ones(entities.shape[:2], dtype=torch.bool, device=entities.device)
        low = shared.amin(dim=(2, 3))
        if self.training and self.mask_ratio > 0:
            keep = torch.rand(entities.shape, device=entities.device) >= self.mask_ratio
            entities = entities * keep.to(entities.dtype)
        e = self.entity_proj(entities)  # [B, E, 2C]
        joint = torch.maximum(e * high[:, None], e * low[:, None])  # max over tokens, per entity
        joint = joint.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1)  # max over real entities
        has_entity = mask.any(dim=1, keepdim=True)
        return self.fc(torch.where(has_entity, joint, high))

    def caption_free(self, shared: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]`` without entities, the max pool taken where ``valid [B, 1, H, W]``
        (the unpadded image; the exported classifier graph)."""
        return self.fc(shared.masked_fill(~valid, float("-inf")).amax(dim=(2, 3)))


class TokenClassifier(nn.Module):
    """Multiple-instance classifier over the image's pixels (``model.classifier="tokens"``, issue 17;
    not the paper's eq. 8): ``logit[b, k] = s * max_t cos(Phi[b, :, t], W q_k) + bias_k``.

    ``q_k`` is class k's text embedding (``class_text [K, D]``, a buffer the trainer fills from the
    entity bank, :meth:`egmt.text.features.EntityFeatures.class_text`, and the checkpoint keeps),
    ``W`` a linear map into the shared width 2C, ``s`` a learned scale. No entity is read, so the
    label cannot be copied from the input: some pixel's feature must resemble the class's text,
    which gives CGHA's entity attention features worth attending to. ``token_scores`` are the
    per-pixel class maps ``[B, K, H, W]``.

    ``shared: [B, 2C, H, W]`` -> ``[B, K]`` (entities and mask accepted and ignored).
    """

    def __init__(self, in_channels: int, entity_dim: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("class_text", torch.zeros(num_classes, entity_dim))
        self.text_proj = nn.Linear(entity_dim, in_channels)
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def token_scores(self, shared: torch.Tensor) -> torch.Tensor:
        """Cosine of every pixel's feature with each class's projected text: ``[B, K, H, W]``."""
        classes = F.normalize(self.text_proj(self.class_text), dim=-1)  # [K, 2C]
        return torch.einsum("bchw,kc->bkhw", F.normalize(shared, dim=1), classes)

    def forward(
        self, shared: torch.Tensor, entities: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.caption_free(shared)

    def caption_free(self, shared: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """The logits with the max taken where ``valid [B, 1, H, W]`` (the unpadded image; None:
        everywhere). The classifier reads no entity, so this is also :meth:`forward`."""
        scores = self.token_scores(shared)
        if valid is not None:
            scores = scores.masked_fill(~valid, float("-inf"))
        return self.scale * scores.amax(dim=(2, 3)) + self.bias
