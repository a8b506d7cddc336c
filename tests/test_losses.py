"""Loss terms against values computed by hand (plain torch / explicit numbers, not kornia)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from egmt.config import LossConfig, ModelConfig
from egmt.errors import EGMTError
from egmt.losses import FocalLoss, FusionLoss, MultiTaskLoss, class_balance_weights, laplacian


def hand_laplacian(x: torch.Tensor) -> torch.Tensor:
    """Sum of the 8 neighbours minus 8x the centre, with reflected borders."""
    p = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    out = -9 * x
    for dy in range(3):
        for dx in range(3):
            out = out + p[..., dy : dy + h, dx : dx + w]
    return out


def hand_ssim(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Wang et al. SSIM: Gaussian window, C1 = 0.01^2, C2 = 0.03^2, mean over the valid region."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    win = (g[:, None] * g[None, :])[None, None]
    a, b = a.double(), b.double()
    mu_a, mu_b = F.conv2d(a, win), F.conv2d(b, win)
    var_a = F.conv2d(a * a, win) - mu_a**2
    var_b = F.conv2d(b * b, win) - mu_b**2
    cov = F.conv2d(a * b, win) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean()


def test_laplacian_explicit_values():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    lap = laplacian(x)[0, 0]
    assert lap[2, 2].item() == -8.0
    assert lap[1, 1].item() == lap[1, 2].item() == lap[3, 3].item() == 1.0
    assert lap[0, 0].item() == 0.0 and lap[0, 2].item() == 0.0
    y = torch.rand(2, 1, 7, 9)
    torch.testing.assert_close(laplacian(y), hand_laplacian(y))


def test_intensity_term_tiny_example():
    ir = torch.tensor([[[[0.2, 0.9], [0.4, 0.0]]]])
    vi = torch.tensor([[[[0.5, 0.1], [0.4, 0.3]]]])
    fused = torch.tensor([[[[0.6, 0.6], [0.4, 0.1]]]])
    # max = [[.5, .9], [.4, .3]] -> |diff| = .1, .3, 0, .2 -> mean .15
    img = lambda t: F.interpolate(t, scale_factor=8, mode="nearest")  # noqa: E731  (16x16, >= SSIM window)
    terms = FusionLoss()(img(fused), img(ir), img(vi))
    assert terms["int"].item() == pytest.approx(0.15, abs=1e-6)


def test_fusion_terms_match_hand_computation():
    g = torch.Generator().manual_seed(0)
    ir, vi, fused = (torch.rand(2, 1, 20, 23, generator=g) for _ in range(3))
    cfg = LossConfig()
    terms = FusionLoss(cfg)(fused, ir, vi)
    l_int = (fused - torch.maximum(ir, vi)).abs().mean()
    target = torch.maximum(hand_laplacian(ir).abs(), hand_laplacian(vi).abs())
    l_edge = (hand_laplacian(fused).abs() - target).abs().mean()
    l_ssim = (1 - hand_ssim(fused, ir)) + (1 - hand_ssim(fused, vi))
    assert terms["int"].item() == pytest.approx(l_int.item(), rel=1e-5)
    assert terms["edge"].item() == pytest.approx(l_edge.item(), rel=1e-5)
    assert terms["ssim"].item() == pytest.approx(l_ssim.item(), rel=1e-4)
    total = 1 * l_int + 15 * l_edge + 5 * l_ssim
    assert terms["fusion"].item() == pytest.approx(total.item(), rel=1e-4)
    literal = FusionLoss(dataclasses.replace(cfg, edge_abs_fused=False))(fused, ir, vi)
    assert literal["edge"].item() == pytest.approx((hand_laplacian(fused) - target).abs().mean().item(), rel=1e-5)


@pytest.mark.parametrize("ssim_form", ["sum", "grad_weighted"])
def test_fusion_total_applies_each_alpha_to_its_own_term(ssim_form):
    """Distinct, non-default alphas (the default alpha_int = 1 would hide an unapplied weight):
    the total is exactly sum(alpha_i * term_i) of the terms it returns, and each term counts."""
    g = torch.Generator().manual_seed(3)
    ir, vi, fused = (torch.rand(2, 1, 24, 20, generator=g) for _ in range(3))
    alphas = {"int": 20.0, "edge": 3.0, "ssim": 7.0}
    cfg = LossConfig(alpha_int=alphas["int"], alpha_edge=alphas["edge"], alpha_ssim=alphas["ssim"], ssim_form=ssim_form)
    terms = FusionLoss(cfg)(fused, ir, vi)
    assert all(terms[k].item() > 0.05 for k in alphas)  # every term matters at these weights
    expected = sum(a * terms[k] for k, a in alphas.items())
    assert terms["fusion"].item() == pytest.approx(expected.item(), rel=1e-6)
    for k in alphas:  # one weight changed: the total moves by exactly its term times the change
        other = FusionLoss(dataclasses.replace(cfg, **{f"alpha_{k}": alphas[k] + 1.0}))(fused, ir, vi)
        assert other["fusion"].item() - terms["fusion"].item() == pytest.approx(terms[k].item(), rel=1e-4)


def test_ssim_term_zero_for_identical_images():
    x = torch.rand(1, 1, 16, 16)
    assert FusionLoss()(x, x, x)["ssim"].item() == pytest.approx(0.0, abs=1e-5)


def test_fusion_loss_rejects_bad_shapes():
    with pytest.raises(EGMTError, match="SSIM window"):
        FusionLoss()(torch.rand(1, 1, 8, 30), torch.rand(1, 1, 8, 30), torch.rand(1, 1, 8, 30))
    with pytest.raises(EGMTError, match="shape"):
        FusionLoss()(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 17), torch.rand(1, 1, 16, 16))


def test_class_balance_weights():
    # 1/r = [2, 4] -> normalised to mean 1: [2/3, 4/3]
    torch.testing.assert_close(class_balance_weights(torch.tensor([0.5, 0.25])), torch.tensor([2 / 3, 4 / 3]))
    # a never-positive class is clamped to r = 0.01
    w = class_balance_weights(torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(w, torch.tensor([100 / 50.5, 1 / 50.5]))
    with pytest.raises(EGMTError):
        class_balance_weights(torch.tensor([0.5, 1.5]))


def test_focal_loss_tiny_example():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    alpha = [2 / 3, 4 / 3]  # from positive ratios [0.5, 0.25]
    total = 0.0
    for i in range(2):
        for c in range(2):
            p = 1 / (1 + math.exp(-logits[i, c].item()))
            y = labels[i, c].item()
            p_t = p if y == 1 else 1 - p
            bce = -math.log(p_t)
            total += alpha[c] * (1 - p_t) ** 2 * bce
    expected = total / 4
    got = FocalLoss(2.0, torch.tensor([0.5, 0.25]))(logits, labels)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # gamma = 0 and no class weights: plain BCE
    plain = FocalLoss(0.0)(logits, labels)
    assert plain.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, labels).item(), rel=1e-6)


def test_multitask_weighting():
    g = torch.Generator().manual_seed(1)
    ir, vi, fused = (torch.rand(1, 1, 16, 16, generator=g) for _ in range(3))
    logits, labels = torch.randn(1, 3, generator=g), torch.tensor([[1.0, 0.0, 1.0]])
    crit = MultiTaskLoss(LossConfig(temperature=2.0), torch.tensor([0.5, 0.2, 0.4]))
    with torch.no_grad():
        crit.w.copy_(torch.tensor([0.3, -0.5]))
    terms = crit(fused, ir, vi, logits, labels)
    e1, e2 = math.exp(-0.3 / 2), math.exp(0.5 / 2)
    lam = (e1 / (e1 + e2), e2 / (e1 + e2))
    assert terms["lambda_fus"].item() == pytest.approx(lam[0], rel=1e-6)
    assert terms["lambda_cls"].item() == pytest.approx(lam[1], rel=1e-6)
    expected = lam[0] * terms["fusion"].item() + lam[1] * terms["cls"].item()
    assert terms["total"].item() == pytest.approx(expected, rel=1e-6)
    assert set(terms) == {"total", "fusion", "int", "edge", "ssim", "cls", "lambda_fus", "lambda_cls"}
    terms["total"].backward()
    assert crit.w.grad is not None and crit.w.grad.abs().sum() > 0
    assert [n for n, _ in crit.named_parameters()] == ["w"]


def test_multitask_without_logits_is_fusion_loss():
    ir, vi, fused = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    terms = MultiTaskLoss()(fused, ir, vi)
    assert terms["total"].item() == terms["fusion"].item()
    assert terms["cls"].item() == 0 and terms["lambda_cls"].item() == 0 and terms["lambda_fus"].item() == 1
    with pytest.raises(EGMTError, match="labels"):
        MultiTaskLoss()(fused, ir, vi, torch.randn(1, 9))


def test_fixed_task_weights_have_no_parameters():
    crit = MultiTaskLoss(LossConfig(learn_task_weights=False))
    assert list(crit.parameters()) == []
    ir = torch.rand(1, 1, 16, 16)
    terms = crit(ir, ir, ir, torch.randn(1, 9), torch.zeros(1, 9))
    assert terms["lambda_fus"].item() == pytest.approx(0.5)


def _grey(path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0)


def test_a_few_steps_on_a_real_pair_lower_the_fusion_loss(data_dir):
    from egmt.model import EGMT

    ir = _grey(data_dir / "tno" / "ir" / "01.png")
    vi = _grey(data_dir / "tno" / "vi" / "01.png")
    h, w = ir.shape
    top, left = h // 2 - 48, w // 2 - 48
    ir = ir[top : top + 96, left : left + 96][None, None]
    vi = vi[top : top + 96, left : left + 96][None, None]
    torch.manual_seed(0)
    model = EGMT(ModelConfig(multi_task=False)).train()
    crit = MultiTaskLoss(LossConfig())
    opt = torch.optim.Adam(list(model.parameters()) + list(crit.parameters()), lr=1e-3)
    losses = []
    for _ in range(12):
        terms = crit(model(ir, vi).fused, ir, vi)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        losses.append(terms["fusion"].item())
    with torch.no_grad():
        final = crit(model(ir, vi).fused, ir, vi)["fusion"].item()
    assert final < 0.8 * losses[0], losses + [final]
