"""Entity-guided cross-modal interaction module, ECIM (paper Sec. III-B, Fig. 3).

One :class:`ECIMBlock` runs, on windowed IR and VI tokens:

1. channel-wise cross-attention between the modalities (MCA, eq. 1-2) + FFN;
2. token-wise window self-attention per modality (MSA, eq. 3) + FFN;
3. CGHA per modality with the entities (eq. 4-6) + FFN (skipped for an image without entities).

Each stage is ``x = x + attention(x); x = x + FFN(x)`` (pre-norm transformer layout; the
paper says it omits the FFN and LayerNorm from its equations). Each stage can be switched
off for the ablations of Table VIII (CA, TA, CGHA). Paper: the number of blocks is not
given; ``ModelConfig.num_blocks`` stacks them (default 1).
"""

from __future__ import annotations

import typing

import torch
from torch import nn

from egmt.config import ChannelScope, ModelConfig
from egmt.model.attention import ChannelCrossAttention, FeedForward, WindowSelfAttention
from egmt.model.cgha import CrossModalGuidedHybridAttention

MODALITIES = ("ir", "vi")


class ECIMBlock(nn.Module):
    """``ir, vi: [B, nW, T, C]``, ``entities: [B, E, C]`` (aligned) or None, ``mask: [B, E]`` bool
    -> updated ``ir, vi`` of the same shape. Modules of switched-off stages are not built."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c, h, r = cfg.channels, cfg.num_heads, cfg.ffn_ratio
        self.channel_attention = ChannelCrossAttention(c, h) if cfg.channel_attention else None
        self.channel_ffn = per_modality(lambda: FeedForward(c, r)) if cfg.channel_attention else None
        self.channel_scope = cfg.channel_attention_scope
        self.token_attention = (
            per_modality(lambda: WindowSelfAttention(c, h, cfg.window_size, cfg.relative_position_bias))
            if cfg.token_attention
            else None
        )
        self.token_ffn = per_modality(lambda: FeedForward(c, r)) if cfg.token_attention else None
        use_cgha = cfg.cgha and cfg.text_interaction
        self.cgha = per_modality(lambda: CrossModalGuidedHybridAttention(c, h)) if use_cgha else None
        self.cgha_ffn = per_modality(lambda: FeedForward(c, r)) if use_cgha else None

    def forward(
        self,
        ir: torch.Tensor,
        vi: torch.Tensor,
        entities: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        grid: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.entity(self.visual(ir, vi, grid), entities, mask)

    def visual(self, ir: torch.Tensor, vi: torch.Tensor, grid: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """The stages that do not depend on the entities (MCA, MSA): ``{"ir", "vi"}: [B, nW, T, C]``.
        Run once and reused by a caption-free second pass (:meth:`EGMT.encode`). ``grid`` (the
        windows down and across) is the patch layout's; every stage here stays in its window."""
        x = channel_stage(self, {"ir": ir, "vi": vi}, self.channel_scope)
        if self.token_attention is not None:
            b, nw, t, c = ir.shape
            x = {m: x[m] + self.token_attention[m](x[m].reshape(b * nw, t, c)).view(b, nw, t, c) for m in MODALITIES}
            x = {m: x[m] + self.token_ffn[m](x[m]) for m in MODALITIES}
        return x

    def entity(
        self, x: dict[str, torch.Tensor], entities: torch.Tensor | None, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The CGHA stage on the output of :meth:`visual` -> ``ir, vi: [B, nW, T, C]``."""
        if self.cgha is not None and entities is not None and mask is not None and entities.shape[1] > 0:
            # The whole stage (attention and its FFN) is skipped for an image without a real
            # entity, so E = 0, an all-padding mask and entities=None all give the same output.
            gate = mask.any(dim=1).to(x["ir"].dtype)[:, None, None, None]
            x = {m: x[m] + self.cgha[m](x[m], entities, mask) for m in MODALITIES}
            x = {m: x[m] + self.cgha_ffn[m](x[m]) * gate for m in MODALITIES}
        return x["ir"], x["vi"]


CHANNEL_SCOPES = typing.get_args(ChannelScope)


def channel_stage(block: nn.Module, x: dict[str, torch.Tensor], scope: str = "window") -> dict[str, torch.Tensor]:
    """MCA (eq. 1-2) + FFN of ``block`` (its ``channel_attention`` / ``channel_ffn``, None when
    switched off) on windowed pixel tokens ``{"ir", "vi"}: [B, nW, T, C]``; both layouts use it.

    ``scope="window"``: one channel attention map per window; ``"image"``: one per image (channel
    attention sums over its tokens, so their order does not matter and the windows are simply
    joined: the same map mixes the channels everywhere, and no window border shows)."""
    if block.channel_attention is None:
        return x
    if scope not in CHANNEL_SCOPES:
        raise ValueError(f"channel_attention_scope must be one of {CHANNEL_SCOPES}, got {scope!r}")
    b, nw, t, c = x["ir"].shape
    n, tokens = (b * nw, t) if scope == "window" else (b, nw * t)
    d_ir, d_vi = block.channel_attention(x["ir"].reshape(n, tokens, c), x["vi"].reshape(n, tokens, c))
    x = {"ir": x["ir"] + d_ir.view(b, nw, t, c), "vi": x["vi"] + d_vi.view(b, nw, t, c)}
    return {m: x[m] + block.channel_ffn[m](x[m]) for m in MODALITIES}


def per_modality(make) -> nn.ModuleDict:
    """One independent module per modality (eq. 1 and 4 index the weights by m)."""
    return nn.ModuleDict({m: make() for m in MODALITIES})
