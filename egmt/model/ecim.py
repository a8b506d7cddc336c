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

from egmt.config import ModelConfig
from egmt.data.pairs import MODALITIES
from egmt.model.attention import FeedForward, WindowSelfAttention
from egmt.model.cgha import CrossModalGuidedHybridAttention
from egmt.model.layout import Grid, LayoutBlock, as_pair, per_modality

__all__ = ["MODALITIES", "ECIMBlock", "PixelState"]

#: What :meth:`ECIMBlock.visual` hands to :meth:`ECIMBlock.entity`: ``{"ir", "vi"}: [B, nW, T, C]``.
PixelState = dict[str, torch.Tensor]


class ECIMBlock(LayoutBlock[PixelState]):
    """``ir, vi: [B, nW, T, C]``, ``entities: [B, E, C]`` (aligned) or None, ``mask: [B, E]`` bool
    -> updated ``ir, vi`` of the same shape (``forward``: :class:`~egmt.model.layout.LayoutBlock`).
    Modules of switched-off stages are not built."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)  # MCA + FFN
        c, h, r = cfg.channels, cfg.num_heads, cfg.ffn_ratio
        self.token_attention = (
            per_modality(lambda: WindowSelfAttention(c, h, cfg.window_size, cfg.relative_position_bias))
            if cfg.token_attention
            else None
        )
        self.token_ffn = per_modality(lambda: FeedForward(c, r)) if cfg.token_attention else None
        use_cgha = cfg.cgha and cfg.text_interaction
        self.cgha = per_modality(lambda: CrossModalGuidedHybridAttention(c, h)) if use_cgha else None
        self.cgha_ffn = per_modality(lambda: FeedForward(c, r)) if use_cgha else None

    def visual(self, ir: torch.Tensor, vi: torch.Tensor, grid: Grid | None = None) -> PixelState:
        """The stages that do not depend on the entities (MCA, MSA): ``{"ir", "vi"}: [B, nW, T, C]``.
        Run once and reused by a caption-free second pass (:meth:`EGMT.encode`). ``grid`` (the
        windows down and across) is the patch layout's; every stage here stays in its window."""
        x = self.channel_stage(ir, vi)
        if self.token_attention is not None and self.token_ffn is not None:
            b, nw, t, c = ir.shape
            x = {m: x[m] + self.token_attention[m](x[m].reshape(b * nw, t, c)).view(b, nw, t, c) for m in MODALITIES}
            x = {m: x[m] + self.token_ffn[m](x[m]) for m in MODALITIES}
        return x

    def entity(
        self, x: PixelState, entities: torch.Tensor | None, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The CGHA stage (:meth:`entity_stage`, in each window) on the output of :meth:`visual`
        -> ``ir, vi: [B, nW, T, C]``."""
        return as_pair(self.entity_stage(x, entities, mask))
