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

import torch
from torch import nn

from egmt.config import ModelConfig
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
        self.channel_ffn = _per_modality(lambda: FeedForward(c, r)) if cfg.channel_attention else None
        self.token_attention = (
            _per_modality(lambda: WindowSelfAttention(c, h, cfg.window_size, cfg.relative_position_bias))
            if cfg.token_attention
            else None
        )
        self.token_ffn = _per_modality(lambda: FeedForward(c, r)) if cfg.token_attention else None
        use_cgha = cfg.cgha and cfg.text_interaction
        self.cgha = _per_modality(lambda: CrossModalGuidedHybridAttention(c, h)) if use_cgha else None
        self.cgha_ffn = _per_modality(lambda: FeedForward(c, r)) if use_cgha else None

    def forward(
        self,
        ir: torch.Tensor,
        vi: torch.Tensor,
        entities: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, nw, t, c = ir.shape
        x = {"ir": ir, "vi": vi}
        if self.channel_attention is not None:
            d_ir, d_vi = self.channel_attention(ir.reshape(b * nw, t, c), vi.reshape(b * nw, t, c))
            x["ir"] = ir + d_ir.view(b, nw, t, c)
            x["vi"] = vi + d_vi.view(b, nw, t, c)
            x = {m: x[m] + self.channel_ffn[m](x[m]) for m in MODALITIES}
        if self.token_attention is not None:
            x = {m: x[m] + self.token_attention[m](x[m].reshape(b * nw, t, c)).view(b, nw, t, c) for m in MODALITIES}
            x = {m: x[m] + self.token_ffn[m](x[m]) for m in MODALITIES}
        if self.cgha is not None and entities is not None and mask is not None and entities.shape[1] > 0:
            # The whole stage (attention and its FFN) is skipped for an image without a real
            # entity, so E = 0, an all-padding mask and entities=None all give the same output.
            gate = mask.any(dim=1).to(ir.dtype)[:, None, None, None]
            x = {m: x[m] + self.cgha[m](x[m], entities, mask) for m in MODALITIES}
            x = {m: x[m] + self.cgha_ffn[m](x[m]) * gate for m in MODALITIES}
        return x["ir"], x["vi"]


def _per_modality(make) -> nn.ModuleDict:
    """One independent module per modality (eq. 1 and 4 index the weights by m)."""
    return nn.ModuleDict({m: make() for m in MODALITIES})
