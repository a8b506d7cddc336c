"""Inter-visual attention of ECIM (paper Sec. III-B-1): window helpers, channel-wise
cross-attention (MCA, eq. 1-2), token-wise window self-attention (MSA, eq. 3), feed-forward.

All modules work on windowed tokens ``[N, T, C]``: N = batch x windows, T = window_size**2
tokens per window, C channels. Each module returns the *update* (the residual branch);
the caller adds it (see :mod:`egmt.model.ecim`). Each module applies its own pre-LayerNorm
(paper: "we simplify ... the feed forward network and layer normalization"; we use the
standard pre-norm transformer layout ``x + f(LN(x))``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from egmt.data.pairs import MODALITIES


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """``[B, C, H, W]`` (H, W multiples of window_size) -> ``[B, nW, T, C]``, T = window_size**2."""
    b, c, h, w = x.shape
    s = window_size
    # Two simple moves (channels last, then window rows of s*c contiguous values) instead of
    # one 6-D permute: the same values, ~4-6x faster in PyTorch and ONNX Runtime (docs/speed.md).
    x = x.reshape(b, c, h * w).transpose(1, 2).reshape(b, h // s, s, w // s, s * c)
    return x.transpose(2, 3).reshape(b, (h // s) * (w // s), s * s, c)


def window_reverse(x: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``[B, nW, T, C]`` -> ``[B, C, H, W]``."""
    b, _, _, c = x.shape
    s = window_size
    x = x.reshape(b, height // s, width // s, s, s * c).transpose(2, 3).reshape(b, height * width, c)
    return x.transpose(1, 2).reshape(b, c, height, width)


class FeedForward(nn.Module):
    """Pre-norm MLP of a transformer block: ``LN -> Linear(C, rC) -> GELU -> Linear(rC, C)``.

    Paper: not given; we use the standard transformer FFN with GELU and ratio ``ffn_ratio``.
    ``[..., C] -> [..., C]`` (the update, not the residual sum).
    """

    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = max(1, round(dim * ratio))
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class ChannelCrossAttention(nn.Module):
    """Multi-head channel-wise cross-attention between IR and VI inside each window (eq. 1-2).

    Each modality m has its own projections W_m^Q, W_m^K, W_m^V (eq. 1). IR queries VI's keys
    and values, and VI queries IR's (both directions, eq. 2). The attention map is across
    channels: ``C/h x C/h`` per window and head, so its cost is linear in the window's tokens.
    Paper: the attention normalisation is not given; we follow Restormer's transposed
    attention (L2-normalise Q and K along the token axis, learnable temperature per head),
    which keeps the C x C logits bounded whatever the number of tokens.

    ``ir, vi: [N, T, C] -> (update_ir, update_vi): [N, T, C]``.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"channels ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.norm = nn.ModuleDict({m: nn.LayerNorm(dim) for m in MODALITIES})
        self.qkv = nn.ModuleDict({m: nn.Linear(dim, 3 * dim) for m in MODALITIES})
        self.proj = nn.ModuleDict({m: nn.Linear(dim, dim) for m in MODALITIES})
        # One temperature per head and per direction (ir <- vi, vi <- ir).
        self.temperature = nn.ParameterDict({m: nn.Parameter(torch.ones(num_heads, 1, 1)) for m in MODALITIES})

    def _qkv(self, x: torch.Tensor, m: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, t, c = x.shape
        qkv = self.qkv[m](self.norm[m](x)).view(n, t, 3, self.num_heads, c // self.num_heads)
        # Tokens stay before channels ([N, h, T, d], no T <-> d transpose of the big tensors):
        # the matmuls below take the transposed operands (ONNX Runtime: FusedMatMul), ~1.5-2x
        # faster in PyTorch and ONNX Runtime than materialising [N, h, d, T] (docs/speed.md).
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, h, T, d]
        return F.normalize(q, dim=-2), F.normalize(k, dim=-2), v

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: str) -> torch.Tensor:
        attn = (q.transpose(-2, -1) @ k) * self.temperature[m]  # [N, h, d, d]
        out = v @ attn.softmax(dim=-1).transpose(-2, -1)  # [N, h, T, d]: (softmax(attn) @ v^T)^T
        n, h, t, d = out.shape
        return self.proj[m](out.transpose(1, 2).reshape(n, t, h * d))

    def forward(self, ir: torch.Tensor, vi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m_ir, m_vi = MODALITIES
        q_ir, k_ir, v_ir = self._qkv(ir, m_ir)
        q_vi, k_vi, v_vi = self._qkv(vi, m_vi)
        return self._attend(q_ir, k_vi, v_vi, m_ir), self._attend(q_vi, k_ir, v_ir, m_vi)


class WindowSelfAttention(nn.Module):
    """Multi-head token-wise self-attention inside each window, one modality (eq. 3).

    Paper: no position encoding is mentioned. Optional Swin-style relative position bias
    (``relative_position_bias``); off by default because an additive mask makes PyTorch's
    CPU attention fall back to the slow path (about 8x slower at 16x16 windows).
    ``[N, T, C] -> [N, T, C]`` (the update).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, relative_position_bias: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"channels ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.window_size = window_size
        self.bias_index: torch.Tensor  # a buffer, with the bias table
        if relative_position_bias:
            s = window_size
            self.bias_table: nn.Parameter | None = nn.Parameter(torch.zeros((2 * s - 1) ** 2, num_heads))
            nn.init.trunc_normal_(self.bias_table, std=0.02)
            coords = torch.stack(torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")).flatten(1)
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (s - 1)  # [T, T, 2]
            self.register_buffer("bias_index", rel[..., 0] * (2 * s - 1) + rel[..., 1], persistent=False)
        else:
            self.bias_table = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        qkv = self.qkv(self.norm(x)).view(n, t, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, h, T, d]
        bias = None
        if self.bias_table is not None:
            bias = self.bias_table[self.bias_index[:t, :t]].permute(2, 0, 1).to(q.dtype)  # [h, T, T]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(n, t, c))
