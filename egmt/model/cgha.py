"""Cross-modal guided hybrid attention, CGHA (paper Sec. III-B-2, eq. 4-6).

Two alternating steps for one visual modality m:

1. (eq. 5) every visual token queries the entities: softmax over the *real* entities of
   its image (padding masked out), so irrelevant (hallucinated) entities get low weight.
   The result is one weighted entity feature per token.
2. (eq. 6) that weighted entity feature queries the visual tokens of its window. Paper: the
   token range is not given. The module attends inside the window axis ``nW`` it is given, so
   the layout decides (docs/design.md, "Two token layouts"): the pixel layout
   (:mod:`egmt.model.ecim`) passes its 16x16 pixel windows, as the inter-visual MSA (over all
   H x W pixel tokens it would be quadratic in the image size, about 4e10 logits at 448x448);
   the patch layout (:mod:`egmt.model.patch_ecim`, the shipped model) passes all patch tokens
   of the image as one window (``[B, 1, T, D]``), so there the attention is global.

The update is added to the visual tokens (residual, as in eq. 2-3). An image with no real
entity (E = 0 or an all-padding mask) has no text guidance: its update is exactly zero.

For the entity heat maps (paper Fig. 5), ``record_attention = True`` keeps eq. 5's weights of
the last forward in ``attention`` (computed beside the fused kernel, so the output is unchanged);
``keep_logits = True`` keeps its logits with their gradient, for the token-entity contrast of
training (``loss.entity_contrast``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossModalGuidedHybridAttention(nn.Module):
    """CGHA for one visual modality.

    ``tokens: [B, nW, T, C]`` windowed visual tokens (the patch layout: ``[B, 1, T, D]``, all
    patch tokens as one window); ``entities: [B, E, C]`` entity features
    already aligned to the visual width (the shared fully connected layer of Sec. III-B-2);
    ``mask: [B, E]`` bool, True = real entity. Returns the update ``[B, nW, T, C]``.
    Multi-head like the other attentions (paper: head count not given; ``num_heads``).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"channels ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.norm_tokens = nn.LayerNorm(dim)
        self.norm_entities = nn.LayerNorm(dim)
        # eq. 4: W_m^Q for the tokens, W_en^K / W_en^V for the entities.
        self.q_tokens = nn.Linear(dim, dim)
        self.kv_entities = nn.Linear(dim, 2 * dim)
        # eq. 6: the weighted entity features -> Q; the tokens -> K, V.
        self.q_weighted = nn.Linear(dim, dim)
        self.kv_tokens = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.record_attention = False  # keep eq. 5's weights in ``attention`` (off: nothing is kept)
        self.attention: torch.Tensor | None = None  # [B, nW, T, E], mean over heads, last forward
        # keep eq. 5's logits, with their gradient, in ``logits`` (the token-entity contrast of training)
        self.keep_logits = False
        self.logits: torch.Tensor | None = None  # [B, nW*T, E], mean over heads, padding not masked

    @staticmethod
    def _entity_logits(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Eq. 5's logits as the fused kernel computes them: ``q [B, h, N, d]``, ``k [B, h, E, d]``
        -> ``[B, h, N, E]`` (padding not masked)."""
        return (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5

    def _entity_weights(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 5's softmax weights from :meth:`_entity_logits` and ``mask [B, E]``: ``[B, N, E]``,
        averaged over heads (detached)."""
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
        return logits.softmax(dim=-1).mean(dim=1).detach()

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., L, C] -> [..., h, L, C/h]``."""
        *lead, length, c = x.shape
        return x.view(*lead, length, self.num_heads, c // self.num_heads).transpose(-3, -2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., h, L, d] -> [..., L, h*d]``."""
        x = x.transpose(-3, -2)
        return x.reshape(*x.shape[:-2], -1)

    def forward(self, tokens: torch.Tensor, entities: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, nw, t, c = tokens.shape
        self.logits = None
        has_entity = mask.any(dim=1)  # [B]
        if entities.shape[1] == 0:
            return torch.zeros_like(tokens)
        # A sample without entities would take a softmax over an empty set (NaN); let it
        # attend to its padding instead and zero its update below.
        mask = mask | ~has_entity[:, None]
        x = self.norm_tokens(tokens)

        # eq. 5: every token queries its image's entities; softmax over the real entities only.
        q = self._heads(self.q_tokens(x).view(b, nw * t, c))  # [B, h, nW*T, d]
        k, v = self.kv_entities(self.norm_entities(entities)).chunk(2, dim=-1)  # [B, E, C] each
        weighted = F.scaled_dot_product_attention(q, self._heads(k), self._heads(v), attn_mask=mask[:, None, None, :])
        if self.record_attention or self.keep_logits:
            logits = self._entity_logits(q, self._heads(k))  # [B, h, nW*T, E]
            if self.record_attention:
                self.attention = self._entity_weights(logits, mask).view(b, nw, t, -1)
            if self.keep_logits:
                self.logits = logits.mean(dim=1)
        weighted = self._merge(weighted).view(b * nw, t, c)  # one weighted entity feature per token

        # eq. 6: the weighted entity features query the visual tokens of their window.
        q = self._heads(self.q_weighted(weighted))  # [B*nW, h, T, d]
        k, v = self.kv_tokens(x.view(b * nw, t, c)).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(q, self._heads(k), self._heads(v))
        out = self.proj(self._merge(out)).view(b, nw, t, c)
        return out * has_entity.to(out.dtype)[:, None, None, None]
