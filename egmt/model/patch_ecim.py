"""ECIM in the patch-token layout (``ModelConfig.layout = "patch"``; docs/design.md, "Two token layouts").

Sec. III-B-1 embeds the channel-attended features "into a token-wise matrix M_t in R^{T x L_t}"
and MSA yields "token-wise *global* features"; Sec. IV-A calls 16x16 the "non-overlapping patch
size". Read that way, one :class:`PatchECIMBlock` runs, on the windowed pixel features
``{"ir", "vi"}: [B, nW, p*p, C]`` (one window = one patch):

1. MCA + FFN channel-wise inside each patch (eq. 1-2), exactly as the pixel layout does;
2. each patch is flattened (L_t = p*p*C values, 8192 at p = 16, C = 32) and projected to one
   token of width D = ``token_dim`` per modality: ``[B, nW, D]``, T = nW tokens;
3. MSA + FFN across *all* patch tokens of the image, per modality (eq. 3), no position
   encoding (the paper mentions none; any image size works);
4. CGHA + FFN between the patch tokens and the entities, both directions (eq. 4-6): the
   tokens weight the entities (eq. 5), the weighted entities query all tokens (eq. 6);
   skipped for an image without a real entity;
5. the tokens' updates (steps 3-4) return to the pixel features and are added to them (the
   residual of eq. 3, taken in pixel space so the full-resolution detail does not have to pass
   a D-wide bottleneck): ``token_unembed="patch"`` projects each update to p*p*C values of its
   own patch; ``"smooth"`` projects it to C values at the patch centre and interpolates
   bilinearly between patch centres, so the update has no edge at a patch border (the "patch"
   form draws the patch grid into the fused image). The reconstructor (eq. 7) and the
   classifier (eq. 8) read those pixel features as in the pixel layout.

The block has the pixel block's interface (``visual`` / ``entity`` / ``forward``,
:class:`~egmt.model.layout.ECIMLayoutBlock`), so :class:`~egmt.model.network.EGMT` drives
both layouts alike.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from egmt.config import ModelConfig, TokenUnembed
from egmt.data.pairs import MODALITIES
from egmt.model.attention import FeedForward, WindowSelfAttention, window_partition
from egmt.model.cgha import CrossModalGuidedHybridAttention
from egmt.model.layout import Grid, LayoutBlock, as_pair, per_modality


UNEMBEDS = typing.get_args(TokenUnembed)


@dataclass
class PatchState:
    """What :meth:`PatchECIMBlock.visual` hands to :meth:`PatchECIMBlock.entity`:
    ``pixels`` ``{m: [B, nW, p*p, C]}`` after MCA; ``start`` and ``tokens`` ``{m: [B, nW, D]}``
    (the embedded patches, and after MSA), or None when no token stage exists."""

    pixels: dict[str, torch.Tensor]
    start: dict[str, torch.Tensor] | None
    tokens: dict[str, torch.Tensor] | None
    grid: Grid | None = None  # patches down and across (the "smooth" return needs it)


class PatchECIMBlock(LayoutBlock[PatchState]):
    """``ir, vi: [B, nW, p*p, C]`` windowed pixel features, ``entities: [B, E, D]`` (aligned to
    ``token_dim``) or None, ``mask: [B, E]`` -> updated ``ir, vi`` of the same shape
    (``forward``: :class:`~egmt.model.layout.LayoutBlock`).

    Modules of switched-off stages are not built; without MSA and CGHA there are no tokens
    (and no embedding) at all, so the block is MCA alone.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)  # MCA + FFN
        c, p, d = cfg.channels, cfg.window_size, cfg.token_dim
        use_cgha = cfg.cgha and cfg.text_interaction
        uses_tokens = cfg.token_attention or use_cgha
        # M_t: one Linear per modality (eq. 1 and 4 index the weights by m), L_t -> D and back.
        self.embed = per_modality(lambda: nn.Linear(p * p * c, d)) if uses_tokens else None
        if cfg.token_unembed not in UNEMBEDS:
            raise ValueError(f"token_unembed must be one of {UNEMBEDS}, got {cfg.token_unembed!r}")
        # The way back: p*p*C values per patch, or C per patch centre interpolated ("smooth").
        # No bias: a token update of exactly zero adds exactly nothing.
        self.smooth = cfg.token_unembed == "smooth"
        width = c if self.smooth else p * p * c
        self.unembed = per_modality(lambda: nn.Linear(d, width, bias=False)) if uses_tokens else None
        self.patch = p
        h, r = cfg.token_heads, cfg.token_ffn_ratio
        # WindowSelfAttention over [B, T, D] is global self-attention: the "window" is the image.
        self.token_attention = per_modality(lambda: WindowSelfAttention(d, h, p)) if cfg.token_attention else None
        self.token_ffn = per_modality(lambda: FeedForward(d, r)) if cfg.token_attention else None
        self.cgha = per_modality(lambda: CrossModalGuidedHybridAttention(d, h)) if use_cgha else None
        self.cgha_ffn = per_modality(lambda: FeedForward(d, r)) if use_cgha else None

    def visual(self, ir: torch.Tensor, vi: torch.Tensor, grid: Grid | None = None) -> PatchState:
        """MCA per patch (or image), then patch tokens and global MSA (nothing here depends on the
        entities). ``grid``: (patches down, patches across) of the windowed input, which the
        "smooth" return to pixels needs."""
        x = self.channel_stage(ir, vi)
        if self.embed is None:
            return PatchState(x, None, None, grid)
        start = {m: self.embed[m](x[m].flatten(2)) for m in MODALITIES}  # [B, T, D], T = nW patches
        tokens = start
        if self.token_attention is not None and self.token_ffn is not None:
            tokens = {m: tokens[m] + self.token_attention[m](tokens[m]) for m in MODALITIES}
            tokens = {m: tokens[m] + self.token_ffn[m](tokens[m]) for m in MODALITIES}
        return PatchState(x, start, tokens, grid)

    def entity(
        self, state: PatchState, entities: torch.Tensor | None, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Global CGHA on the tokens, then the tokens' updates back to the pixel features."""
        x, tokens = state.pixels, state.tokens
        if tokens is None or state.start is None or self.unembed is None:  # no token stage exists
            return as_pair(x)
        windowed = {m: t[:, None] for m, t in tokens.items()}  # all the image's patch tokens as one window
        attended = self.entity_stage(windowed, entities, mask)
        if attended is not windowed:  # the stage ran (it returns its input when it does not)
            tokens = {m: t[:, 0] for m, t in attended.items()}
        if tokens is state.start:  # no token stage ran (no MSA, no entity): nothing to add
            return as_pair(x)
        start, unembed = state.start, self.unembed
        return as_pair({m: x[m] + self._to_pixels(unembed[m](tokens[m] - start[m]), state.grid, x[m]) for m in MODALITIES})

    def _to_pixels(self, update: torch.Tensor, grid: Grid | None, like: torch.Tensor) -> torch.Tensor:
        """Projected token updates ``[B, T, p*p*C]`` ("patch") or ``[B, T, C]`` ("smooth") -> the
        windowed pixel layout ``[B, T, p*p, C]`` of ``like``. "smooth": the T values form the
        patch grid ``[B, C, gh, gw]``, upsampled bilinearly ``p`` times (half-pixel centres, so
        each patch centre keeps its token's value and the border pixels their nearest's)."""
        if not self.smooth:
            return update.view_as(like)
        if grid is None or grid[0] * grid[1] != update.shape[1]:
            raise ValueError(f"the smooth token return needs the patch grid of {update.shape[1]} tokens, got {grid}")
        b, t, c = update.shape
        coarse = update.transpose(1, 2).reshape(b, c, *grid)
        fine = F.interpolate(coarse, scale_factor=self.patch, mode="bilinear", align_corners=False)
        return window_partition(fine, self.patch)
