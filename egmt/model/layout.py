"""The seam between :class:`~egmt.model.network.EGMT` and its ECIM blocks, one per token layout.

``ModelConfig.layout`` picks the block (docs/design.md, "Two token layouts"):
:class:`~egmt.model.ecim.ECIMBlock` ("pixel": window attention over pixel tokens) or
:class:`~egmt.model.patch_ecim.PatchECIMBlock` ("patch": global attention over one token per
patch). The network drives both alike through :class:`ECIMLayoutBlock`: a block's forward is
split in two so a caption-free second pass (or several entity sets on one pair) can reuse
the part that does not depend on the entities:

- ``visual(ir, vi, grid) -> state``: the stages before the entities (MCA, MSA), on windowed
  pixel features ``ir, vi: [B, nW, T, C]``; ``grid`` is (windows down, windows across);
- ``entity(state, entities, mask) -> (ir, vi)``: CGHA with the aligned entities
  ``[B, E, D']`` and ``mask [B, E]`` (or None), back to ``[B, nW, T, C]`` each;
- ``forward(ir, vi, entities, mask, grid)``: the two in a row (:class:`SplitForward`, once for all).

What ``state`` holds is the layout's own business (a per-modality dict, a dataclass...);
only the block that made it reads it.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import torch
from torch import nn

from egmt.config import ChannelScope, ModelConfig
from egmt.data.pairs import MODALITIES
from egmt.model.attention import ChannelCrossAttention, FeedForward

CHANNEL_SCOPES = typing.get_args(ChannelScope)

#: (windows down, windows across) of the windowed features: the patch grid in the patch layout.
Grid = tuple[int, int]

State = TypeVar("State")


class ECIMLayoutBlock(Protocol[State]):
    """What every ECIM block (and :class:`Passthrough`) offers the network; see the module docstring."""

    def visual(self, ir: torch.Tensor, vi: torch.Tensor, grid: Grid | None = None) -> State: ...

    def entity(
        self, state: State, entities: torch.Tensor | None, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def forward(
        self,
        ir: torch.Tensor,
        vi: torch.Tensor,
        entities: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        grid: Grid | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class SplitForward(Generic[State]):
    """The shared ``forward`` = ``entity(visual(...))`` (mixin of :class:`LayoutBlock` and
    :class:`Passthrough`); a subclass writes :meth:`visual` and :meth:`entity`."""

    def forward(
        self,
        ir: torch.Tensor,
        vi: torch.Tensor,
        entities: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        grid: Grid | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.entity(self.visual(ir, vi, grid), entities, mask)

    def visual(self, ir: torch.Tensor, vi: torch.Tensor, grid: Grid | None = None) -> State:
        raise NotImplementedError

    def entity(self, state: State, entities: torch.Tensor | None, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class LayoutBlock(SplitForward[State], nn.Module):
    """Base of the ECIM blocks: the shared ``forward`` (:class:`SplitForward`) and what both
    layouts share, the MCA stage on the pixel tokens (:meth:`channel_stage`, built first so the
    parameter order is the blocks' own)."""

    # CGHA (eq. 4-6) and its FFN per modality, built by each layout at its own width (None: off).
    cgha: nn.ModuleDict | None
    cgha_ffn: nn.ModuleDict | None

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.channels
        if cfg.channel_attention_scope not in CHANNEL_SCOPES:
            raise ValueError(f"channel_attention_scope must be one of {CHANNEL_SCOPES}, got {cfg.channel_attention_scope!r}")
        self.channel_scope = cfg.channel_attention_scope
        self.channel_attention = ChannelCrossAttention(c, cfg.num_heads) if cfg.channel_attention else None
        self.channel_ffn = per_modality(lambda: FeedForward(c, cfg.ffn_ratio)) if cfg.channel_attention else None

    def channel_stage(self, ir: torch.Tensor, vi: torch.Tensor) -> dict[str, torch.Tensor]:
        """MCA (eq. 1-2) + FFN (nothing when switched off) on windowed pixel tokens
        ``ir, vi: [B, nW, T, C]`` -> ``{"ir", "vi"}: [B, nW, T, C]``; both layouts use it.

        ``model.channel_attention_scope="window"``: one channel attention map per window; ``"image"``: one per image (channel
        attention sums over its tokens, so their order does not matter and the windows are simply
        joined: the same map mixes the channels everywhere, and no window border shows)."""
        x = by_modality(ir, vi)
        if self.channel_attention is None or self.channel_ffn is None:
            return x
        b, nw, t, c = ir.shape
        n, tokens = (b * nw, t) if self.channel_scope == "window" else (b, nw * t)
        deltas = self.channel_attention(ir.reshape(n, tokens, c), vi.reshape(n, tokens, c))
        x = {m: x[m] + d.view(b, nw, t, c) for m, d in zip(MODALITIES, deltas, strict=True)}
        return {m: x[m] + self.channel_ffn[m](x[m]) for m in MODALITIES}

    def entity_stage(
        self, x: dict[str, torch.Tensor], entities: torch.Tensor | None, mask: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """CGHA with the entities ``[B, E, D']`` (``mask [B, E]``) + FFN on windowed tokens
        ``{"ir", "vi"}: [B, nW, T, C]``, both layouts. The whole stage (attention and its FFN) is
        skipped for an image without a real entity, so E = 0, an all-padding mask and
        entities=None all give the same output; when the whole batch has none (or CGHA is off) it
        returns ``x`` itself, the same dict, which a caller may test with ``is``."""
        if self.cgha is None or self.cgha_ffn is None or entities is None or mask is None or entities.shape[1] == 0:
            return x
        gate = mask.any(dim=1).to(x[MODALITIES[0]].dtype)[:, None, None, None]
        x = {m: x[m] + self.cgha[m](x[m], entities, mask) for m in MODALITIES}
        return {m: x[m] + self.cgha_ffn[m](x[m]) * gate for m in MODALITIES}


class Passthrough(SplitForward[tuple[torch.Tensor, torch.Tensor]]):
    """``num_blocks = 0`` (no ECIM, an ablation): the features pass unchanged; the state is
    ``(ir, vi)`` itself. A plain object, not a module, so the model's parameters and
    ``state_dict`` are those of the blocks it has."""

    def visual(self, ir: torch.Tensor, vi: torch.Tensor, grid: Grid | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return ir, vi

    def entity(
        self, state: tuple[torch.Tensor, torch.Tensor], entities: torch.Tensor | None, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return state


def per_modality(make: Callable[[], nn.Module]) -> nn.ModuleDict:
    """One independent module per modality (eq. 1 and 4 index the weights by m)."""
    return nn.ModuleDict({m: make() for m in MODALITIES})


def by_modality(ir: torch.Tensor, vi: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"ir": ir, "vi": vi}``: the per-modality form the stages work on."""
    return dict(zip(MODALITIES, (ir, vi), strict=True))


def as_pair(x: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``x["ir"], x["vi"]``: the per-modality form back to the blocks' ``(ir, vi)`` output."""
    ir, vi = MODALITIES
    return x[ir], x[vi]
