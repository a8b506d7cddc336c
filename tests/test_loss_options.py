"""The switchable parts of the loss: SwinFusion's SSIM form and the three task weightings."""

from __future__ import annotations

import math

import kornia
import pytest
import torch

from egmt.config import LossConfig
from egmt.errors import EGMTError
from egmt.losses import FusionLoss, MultiTaskLoss


def _images(seed=0, b=2, s=24):
    g = torch.Generator().manual_seed(seed)
    ir = torch.rand(b, 1, s, s, generator=g)
    vi = torch.rand(b, 1, s, s, generator=g) * 0.2  # flatter: smaller gradients
    fused = torch.rand(b, 1, s, s, generator=g)
    return fused, ir, vi


def test_grad_weighted_ssim_by_hand():
    fused, ir, vi = _images()
    got = FusionLoss(LossConfig(ssim_form="grad_weighted"))(fused, ir, vi)["ssim"]
    expected = []
    for i in range(fused.shape[0]):
        f, a, b = fused[i : i + 1], ir[i : i + 1], vi[i : i + 1]
        ga = kornia.filters.sobel(a, normalized=False).mean()
        gb = kornia.filters.sobel(b, normalized=False).mean()
        sa = kornia.metrics.ssim(f, a, 11, max_val=1.0, padding="valid").mean()
        sb = kornia.metrics.ssim(f, b, 11, max_val=1.0, padding="valid").mean()
        expected.append((ga * sa + gb * sb) / (ga + gb))
    assert got == pytest.approx(1 - torch.stack(expected).mean().item(), rel=1e-5)
    # the sharper source (ir) gets the larger weight: fusing to ir is cheaper than fusing to vi
    loss = FusionLoss(LossConfig(ssim_form="grad_weighted"))
    assert loss(ir, ir, vi)["ssim"] < loss(vi, ir, vi)["ssim"]
    with pytest.raises(EGMTError, match="ssim_form"):
        FusionLoss(LossConfig(ssim_form="nope"))(fused, ir, vi)


def test_uncertainty_weighting_is_kendalls_form():
    fused, ir, vi = _images(1)
    logits, labels = torch.randn(2, 3), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    crit = MultiTaskLoss(LossConfig(task_weighting="uncertainty"))
    with torch.no_grad():
        crit.w.copy_(torch.tensor([0.3, -0.7]))
    t = crit(fused, ir, vi, logits, labels)
    expected = math.exp(-0.3) * t["fusion"].item() + 0.3 + math.exp(0.7) * t["cls"].item() - 0.7
    assert t["total"].item() == pytest.approx(expected, rel=1e-6)
    assert t["lambda_fus"].item() == pytest.approx(math.exp(-0.3))
    t["total"].backward()
    assert crit.w.grad is not None and crit.w.grad.abs().sum() > 0


def test_fixed_and_softmax_weightings():
    fused, ir, vi = _images(2)
    logits, labels = torch.randn(2, 3), torch.ones(2, 3)
    fixed = MultiTaskLoss(LossConfig(task_weighting="fixed", fixed_task_weights=[0.9, 0.1]))
    assert "w" not in dict(fixed.named_parameters())
    t = fixed(fused, ir, vi, logits, labels)
    assert t["total"].item() == pytest.approx(0.9 * t["fusion"].item() + 0.1 * t["cls"].item(), rel=1e-6)
    legacy = MultiTaskLoss(LossConfig(learn_task_weights=False))  # old configs: fixed 0.5 / 0.5
    assert legacy.weighting == "fixed" and legacy.task_weights().tolist() == [0.5, 0.5]
    soft = MultiTaskLoss(LossConfig())
    assert soft.weighting == "softmax" and soft.task_weights().tolist() == [0.5, 0.5]
    with pytest.raises(EGMTError, match="task_weighting"):
        MultiTaskLoss(LossConfig(task_weighting="equal"))
