"""ChannelCrossAttention against eq. 1-2 written out the textbook way (Restormer's transposed
attention on [h, d, T] channel-major tensors), so the module's token-major layout, chosen for
speed, is checked against the formula rather than against itself."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from egmt.model.attention import ChannelCrossAttention


def _reference(module: ChannelCrossAttention, query_from: torch.Tensor, key_from: torch.Tensor, q_mod: str, k_mod: str):
    """update = W_proj( concat_heads( softmax(tau * Q_hat K_hat^T) V ) ), Q and K of ``[d, T]``
    per head L2-normalised along the tokens; Q from ``query_from`` (modality q_mod), K and V from
    ``key_from`` (modality k_mod), each through its own modality's norm and projections."""
    n, t, c = query_from.shape
    h = module.num_heads
    d = c // h

    def project(x: torch.Tensor, m: str) -> list[torch.Tensor]:
        y = module.qkv[m](module.norm[m](x))  # [N, T, 3C]
        return [y[..., i * c : (i + 1) * c].reshape(n, t, h, d).permute(0, 2, 3, 1) for i in range(3)]  # [N, h, d, T]

    q, _, _ = project(query_from, q_mod)
    _, k, v = project(key_from, k_mod)
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    attn = torch.softmax((q @ k.transpose(-2, -1)) * module.temperature[q_mod], dim=-1)  # [N, h, d, d]
    out = (attn @ v).permute(0, 3, 1, 2).reshape(n, t, c)  # [N, T, h*d]
    return module.proj[q_mod](out)


def test_channel_cross_attention_is_eq_1_2_in_both_directions():
    torch.manual_seed(0)
    module = ChannelCrossAttention(dim=12, num_heads=3)
    with torch.no_grad():  # temperatures away from 1, so a head mix-up would show
        module.temperature["ir"].copy_(torch.tensor([0.5, 2.0, 3.0]).view(3, 1, 1))
        module.temperature["vi"].copy_(torch.tensor([1.5, 0.7, 4.0]).view(3, 1, 1))
    ir, vi = torch.randn(2, 20, 12), torch.randn(2, 20, 12)
    up_ir, up_vi = module(ir, vi)
    assert torch.allclose(up_ir, _reference(module, ir, vi, "ir", "vi"), atol=1e-5)  # IR queries VI
    assert torch.allclose(up_vi, _reference(module, vi, ir, "vi", "ir"), atol=1e-5)  # VI queries IR
    # the channel map does not depend on the tokens' order: permuting tokens permutes the update
    perm = torch.randperm(20)
    p_ir, _ = module(ir[:, perm], vi[:, perm])
    assert torch.allclose(p_ir, up_ir[:, perm], atol=1e-5)
