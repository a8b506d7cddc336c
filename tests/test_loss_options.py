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


def _person_in_smoke() -> tuple[torch.Tensor, torch.Tensor]:
    """IR: a cool person (0.25) on a warmer background (0.45), with some texture; VI: bright, flat
    smoke (0.8) over all of it. ``[1, 1, 64, 64]`` each."""
    g = torch.Generator().manual_seed(0)
    ir = 0.45 + 0.02 * torch.rand(1, 1, 64, 64, generator=g)
    ir[..., 20:44, 26:38] = 0.25
    return ir, torch.full((1, 1, 64, 64), 0.8)


def test_base_detail_target_keeps_a_cool_person_in_bright_smoke():
    """eq. 12 as written (max) prefers the smoke over the person; the base/detail target prefers the
    smoke's brightness with the IR's structure on it (the issue's erased people)."""
    import torch.nn.functional as F

    ir, vi = _person_in_smoke()
    sigma = 8.0
    size = 2 * math.ceil(3 * sigma) + 1
    detail_ir = ir - kornia.filters.gaussian_blur2d(ir, (size, size), (sigma, sigma), border_type="reflect")
    with_person = (vi + detail_ir).clamp(0, 1)
    plain, split = (FusionLoss(LossConfig(intensity_target=t, intensity_sigma=sigma)) for t in ("max", "base_detail"))
    assert plain(vi, ir, vi)["int"] < plain(with_person, ir, vi)["int"]
    assert split(with_person, ir, vi)["int"] < split(vi, ir, vi)["int"]
    # by hand: base |G*F - max(G*IR, G*VI)| + detail |D(F) - maxabs(D(IR), D(VI))|, D(VI) = 0 here
    blur = lambda x: kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect")  # noqa: E731
    expected = F.l1_loss(blur(ir), torch.maximum(blur(ir), blur(vi))) + F.l1_loss(ir - blur(ir), detail_ir)
    assert split(ir, ir, vi)["int"] == pytest.approx(float(expected), abs=1e-6)
    # the mean base: half-way between the two bases, the same detail term
    mean = FusionLoss(LossConfig(intensity_target="base_detail", intensity_sigma=sigma, intensity_base="mean"))
    expected = F.l1_loss(blur(ir), (blur(ir) + blur(vi)) / 2)
    assert mean(ir, ir, vi)["int"] == pytest.approx(float(expected), abs=1e-6)
    assert mean(with_person, ir, vi)["int"] < mean(vi, ir, vi)["int"]
    same = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    assert float(split(same, same, same)["int"]) == pytest.approx(0.0, abs=1e-7)


def test_contrast_target_asks_for_the_person_in_bright_smoke_and_the_max_elsewhere():
    """The "contrast" target: the infrared where only it has structure (a person in flat smoke),
    max(IR, VI) where both have alike contrast, and no cost for fusing a source with itself."""
    from egmt.model.prior import contrast_target

    ir, vi = _person_in_smoke()
    target = contrast_target(ir, vi, sigma=4.0, power=4.0)
    person = (slice(None), slice(None), slice(26, 38), slice(28, 36))
    assert torch.allclose(target[person], ir[person], atol=0.01)  # the person as the IR shows it
    assert float(target[person].mean()) < 0.3 < float(vi[person].mean())  # not the smoke's brightness
    plain = FusionLoss(LossConfig(intensity_target="contrast", intensity_sigma=4.0))
    assert plain(ir, ir, vi)["int"] < plain(vi, ir, vi)["int"]  # the IR is the better fusion here
    # equal local contrast in both: w = 1/2, the target halfway between the IR and the max
    g = torch.Generator().manual_seed(2)
    texture = torch.rand(1, 1, 48, 48, generator=g) * 0.2
    bright, dark = texture + 0.6, texture + 0.1
    mid = contrast_target(dark, bright, sigma=3.0)
    assert torch.allclose(mid, (dark + bright) / 2, atol=1e-4)
    # a source fused with itself costs nothing, and no gradient reaches the sources
    assert float(plain(bright, bright, bright)["int"]) == pytest.approx(0.0, abs=1e-6)
    src = bright.clone().requires_grad_(True)
    assert not contrast_target(src, dark).requires_grad


@pytest.mark.parametrize("spread", ["gaussian", "guided"])
def test_rebased_contrast_target_keeps_a_warm_person_without_cutting_a_dark_hole_into_the_smoke(spread):
    """loss.intensity_rebase: a warm person on a dark infrared background behind bright, flat
    smoke. As it is, the target takes the infrared's dark background with the person (a dark hole
    in the smoke around him); re-based onto the brighter source's local mean, the surround stays
    near the smoke's brightness and the person still stands out of it. The guided spread does
    the same here: flat smoke has no edge to stop the lift."""
    from egmt.model.prior import contrast_target

    g = torch.Generator().manual_seed(0)
    ir = 0.1 + 0.02 * torch.rand(1, 1, 96, 96, generator=g)
    ir[..., 30:66, 40:56] = 0.7
    vi = torch.full_like(ir, 0.55)
    person, beside = (..., slice(30, 66), slice(40, 56)), (..., slice(30, 66), slice(32, 38))
    plain = contrast_target(ir, vi, sigma=4.0)
    rebased = contrast_target(ir, vi, sigma=4.0, rebase=16.0, rebase_spread=spread)
    assert float(plain[beside].mean()) < 0.2  # the infrared's background: a hole in the smoke
    assert float(rebased[beside].mean()) > 0.4  # close to the smoke (0.55)
    assert float(rebased[..., 5:15, 5:15].mean()) == pytest.approx(0.55, abs=0.02)  # far away: the smoke
    for target in (plain, rebased):
        assert float(target[person].mean() - target[beside].mean()) > 0.3  # the person stands out
    assert float(rebased.min()) >= 0 and float(rebased.max()) <= 1
    loss = FusionLoss(
        LossConfig(intensity_target="contrast", intensity_sigma=4.0, intensity_rebase=16.0, intensity_rebase_spread=spread)
    )
    assert float(loss(rebased, ir, vi)["int"]) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(plain, ir, vi)["int"]) > 0.1


def test_entity_negative_is_zero_once_the_own_entities_win_by_the_margin():
    from egmt.losses import entity_negative

    own, shuffled = torch.tensor(1.0, requires_grad=True), torch.tensor(1.2, requires_grad=True)
    assert entity_negative(own, shuffled, margin=0.1).item() == 0.0
    loss = entity_negative(own, shuffled, margin=0.5)
    assert loss.item() == pytest.approx(0.3)
    loss.backward()
    assert float(own.grad) == 1.0 and float(shuffled.grad) == -1.0  # lowers own, raises shuffled


def test_token_entity_contrast_hinges_each_own_entity_against_each_absent_one():
    from egmt.losses import token_entity_contrast

    own = torch.tensor([[3.0, 0.5]])  # two own entities' best token logits
    other = torch.tensor([[1.0, 9.0]])  # the other pair's entities; the second is also an own one
    own_mask, other_mask = torch.tensor([[True, True]]), torch.tensor([[True, False]])
    # pairs (3 vs 1): relu(1 - 2) = 0; (0.5 vs 1): relu(1 + 0.5) = 1.5; mean over the 2 valid pairs
    assert token_entity_contrast(own, own_mask, other, other_mask, margin=1.0).item() == pytest.approx(0.75)
    none = torch.zeros(1, 2, dtype=torch.bool)
    assert token_entity_contrast(own, own_mask, other, none, margin=1.0).item() == 0.0


def test_absent_entities_are_the_other_pairs_real_entities_not_among_the_own():
    from egmt.losses import absent_entities

    person, car, tree = torch.eye(3)
    own = torch.stack([person, car])[None]  # [1, 2, 3]
    other = torch.stack([2 * car, tree, person])[None]  # car (another scale: same word), tree, person
    own_mask = torch.tensor([[True, True]])
    other_mask = torch.tensor([[True, True, False]])  # the other pair's person is padding
    assert absent_entities(own, own_mask, other, other_mask).tolist() == [[False, True, False]]
    # an own entity that is padding does not count as present
    assert absent_entities(own, torch.tensor([[True, False]]), other, other_mask).tolist() == [[True, True, False]]


def test_contrast_target_with_a_noise_floor_ignores_sensor_noise_and_keeps_the_person():
    """loss.intensity_noise: an infrared sky of pure sensor noise over a flat, brighter visible
    sky no longer pulls the target towards the infrared (without the floor it does), a person in
    flat smoke still gets the infrared, and noise_level reads the noise's standard deviation."""
    from egmt.model.prior import contrast_target
    from egmt.model.prior import noise_level

    g = torch.Generator().manual_seed(3)
    noise = torch.randn(2, 1, 96, 96, generator=g) * 0.02
    assert noise_level(noise).flatten().tolist() == pytest.approx([0.02 * 0.87] * 2, rel=0.1)  # x - G_1*x keeps 87 %
    sky_ir, sky_vi = 0.3 + noise, torch.full_like(noise, 0.8)
    plain = contrast_target(sky_ir, sky_vi)
    floored = contrast_target(sky_ir, sky_vi, noise=8.0)
    assert float((plain - sky_vi).abs().mean()) > 0.3  # the noise counts as the infrared's structure
    assert torch.allclose(floored, sky_vi)  # below the noise floor: max(IR, VI), the visible sky
    ir, vi = _person_in_smoke()
    ir = ir + torch.randn(ir.shape, generator=g) * 0.005
    target = contrast_target(ir, vi, sigma=4.0, noise=8.0)
    person = (slice(None), slice(None), slice(26, 38), slice(28, 36))
    assert torch.allclose(target[person], ir[person], atol=0.03)
    loss = FusionLoss(LossConfig(intensity_target="contrast", intensity_noise=8.0))
    assert float(loss(sky_vi, sky_ir, sky_vi)["int"]) == pytest.approx(0.0, abs=1e-6)


def test_the_entity_conditioned_target_is_the_contrast_target_or_the_max_per_sample():
    """loss.entity_target_classes: keep_ir = 1 asks for the contrast target (the person in smoke
    as the infrared shows him), 0 for max(IR, VI) (the smoke), sample by sample; the loss follows."""
    from egmt.model.prior import contrast_target

    ir, vi = _person_in_smoke()
    ir2, vi2 = torch.cat([ir, ir]), torch.cat([vi, vi])
    target = contrast_target(ir2, vi2, sigma=4.0, power=4.0, keep_ir=torch.tensor([1.0, 0.0]))
    assert torch.allclose(target[:1], contrast_target(ir, vi, sigma=4.0, power=4.0), atol=1e-6)
    assert torch.equal(target[1:], torch.maximum(ir, vi))
    assert not torch.equal(target[0], target[1])  # the person differs: the switch matters here

    loss = FusionLoss(LossConfig(intensity_target="contrast", intensity_sigma=4.0))
    fused = torch.cat([ir, vi])  # sample 0 fused as the IR, sample 1 as the smoke
    wanted = loss(fused, ir2, vi2, keep_ir=torch.tensor([1.0, 0.0]))["int"]
    swapped = loss(fused, ir2, vi2, keep_ir=torch.tensor([0.0, 1.0]))["int"]
    assert wanted < swapped
    assert float(loss(fused, ir2, vi2, keep_ir=torch.ones(2))["int"]) == pytest.approx(float(loss(fused, ir2, vi2)["int"]))
    with pytest.raises(EGMTError, match="keep_ir needs loss.intensity_target=contrast"):
        FusionLoss(LossConfig(intensity_target="max"))(fused, ir2, vi2, keep_ir=torch.ones(2))
    with pytest.raises(EGMTError, match="one value per sample"):
        loss(fused, ir2, vi2, keep_ir=torch.ones(3))
