"""The reconstructor's output switch: the paper's image (eq. 7), a per-pixel weight map, or a
correction to the contrast rule's image."""

from __future__ import annotations

import pytest
import torch

from egmt.config import ModelConfig
from egmt.model import EGMT
from egmt.model.heads import FusionHead


def _cfg(**kw) -> ModelConfig:
    return ModelConfig(channels=8, window_size=8, entity_dim=12, num_classes=3, **kw)


def test_weight_map_output_stays_between_the_sources_and_trains():
    torch.manual_seed(0)
    model = EGMT(_cfg(fusion_output="weights"))
    ir, vi = torch.rand(2, 1, 37, 41), torch.rand(2, 1, 37, 41)
    fused = model(ir, vi, torch.randn(2, 3, 12)).fused
    assert fused.shape == ir.shape
    assert ((fused >= torch.minimum(ir, vi) - 1e-6) & (fused <= torch.maximum(ir, vi) + 1e-6)).all()
    fused.mean().backward()
    assert model.fusion_head.conv3.weight.grad.abs().sum() > 0


def test_weight_map_head_by_hand_and_image_head_unchanged():
    torch.manual_seed(1)
    head = FusionHead(8, 1, output="weights")
    x, ir, vi = torch.randn(1, 8, 9, 9), torch.rand(1, 1, 9, 9), torch.rand(1, 1, 9, 9)
    w = _as_image(head)(x)  # the same convs read as an image: the weight map
    assert torch.allclose(head(x, ir, vi), w * ir + (1 - w) * vi)
    with pytest.raises(ValueError, match="two sources"):
        head(x)
    with pytest.raises(ValueError, match="fusion_output"):
        FusionHead(8, 1, output="mask")


def _as_image(head: FusionHead) -> FusionHead:
    image = FusionHead(8, 1, output="image")
    image.load_state_dict(head.state_dict())
    return image


def test_the_untrained_network_with_the_contrast_prior_fuses_as_the_rule(data_dir):
    """``weight_prior="contrast"``: the last convolution starts at zero, so before any training the
    network's image is the contrast rule's (the intensity target of ``loss.intensity_target =
    "contrast"``) on a real pair whatever the entities; training moves it away (gradients reach
    the head)."""
    from PIL import Image

    from egmt.model.prior import contrast_target

    def load(sub: str) -> torch.Tensor:
        img = Image.open(data_dir / "tno" / sub / "02.png").convert("L").crop((64, 64, 320, 256))
        return torch.tensor(list(img.getdata()), dtype=torch.float32).view(1, 1, 192, 256) / 255

    ir, vi = load("ir"), load("vi")
    torch.manual_seed(0)
    model = EGMT(_cfg(fusion_output="weights", weight_prior="contrast", prior_noise=12.0))
    fused = model(ir, vi, torch.randn(1, 3, 12)).fused
    rule = contrast_target(ir, vi, sigma=8.0, power=4.0, noise=12.0)
    # the rule's mixing weight is clamped to [eps, 1 - eps]: eps |ir - vi| at most, and exact elsewhere
    gap = (fused - rule).abs()
    assert (gap <= FusionHead.PRIOR_EPS * (ir - vi).abs() + 1e-6).all()
    assert gap.mean() < 0.2 * (rule - (ir + vi) / 2).abs().mean()
    assert (rule - (ir + vi) / 2).abs().mean() > 0.02  # the rule is not a plain blend here
    fused.mean().backward()
    assert model.fusion_head.conv3.weight.grad.abs().sum() > 0


def test_the_untrained_residual_network_fuses_exactly_as_the_rule_and_learns_a_correction(data_dir):
    """``fusion_output="residual"``: the image is the contrast rule's (the re-based one here, as the
    shipped recipe's loss asks for) plus the last convolution's output, which starts at zero: the
    untrained network gives the rule's image exactly, with any entities, and a correction moves
    every pixel by itself (gradient 1), unlike the weight prior's saturated sigmoid."""
    from PIL import Image

    from egmt.model.prior import contrast_target

    def load(sub: str, box: tuple[int, int, int, int]) -> torch.Tensor:
        img = Image.open(data_dir / "tno" / sub / "02.png").convert("L").crop(box)
        return torch.tensor(list(img.getdata()), dtype=torch.float32).view(1, 1, 192, 256) / 255

    ir, vi = load("ir", (300, 250, 556, 442)), load("vi", (300, 250, 556, 442))  # the man in smoke
    torch.manual_seed(0)
    cfg = _cfg(fusion_output="residual", ir_rebase=16.0, prior_noise=20.0)
    model = EGMT(cfg)
    fused = model(ir, vi, torch.randn(1, 3, 12)).fused
    rule = contrast_target(ir, vi, sigma=8.0, power=4.0, noise=20.0, rebase=16.0)
    assert torch.allclose(fused, rule, atol=1e-6)
    assert (rule - torch.maximum(ir, vi)).abs().mean() > 0.005  # the rule is not max(IR, VI) here
    fused.sum().backward()
    assert ((rule == 0) | (rule == 1)).any()  # saturated pixels: the clamp still lets them move inward
    assert model.fusion_head.conv3.bias.grad.item() == pytest.approx(float(rule.numel()))
    head = FusionHead(8, 1, output="residual", rebase=4.0)
    torch.nn.init.normal_(head.conv3.weight)
    x, a, b = torch.randn(1, 8, 40, 40), torch.rand(1, 1, 40, 40), torch.rand(1, 1, 40, 40)
    expected = (contrast_target(a, b, 8.0, 4.0, 12.0, 4.0) + head.logits(x, a, b)).clamp(0, 1)
    assert torch.allclose(head(x, a, b), expected, atol=1e-6)
    with pytest.raises(ValueError, match="two sources"):
        head(x)
    with pytest.raises(ValueError, match="needs fusion_output='weights'"):
        FusionHead(8, 1, output="residual", prior="contrast")


def test_a_rebased_head_mixes_the_visible_image_with_the_rebased_infrared():
    """``model.ir_rebase``: the weight map mixes the visible image with the infrared re-based onto
    the brighter source's local mean; with the same weights as a plain head, the two differ only
    by w times (rebased - raw infrared). A warm person in bright smoke can then be brighter than
    the smoke, which no mix of the raw sources can give."""
    from egmt.model.prior import rebase_ir

    torch.manual_seed(2)
    plain = FusionHead(8, 1, output="weights")
    rebased = FusionHead(8, 1, output="weights", rebase=4.0)
    rebased.load_state_dict(plain.state_dict())
    x, ir, vi = torch.randn(1, 8, 32, 32), torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    w = _as_image(plain)(x)
    assert torch.allclose(rebased(x, ir, vi), plain(x, ir, vi) + w * (rebase_ir(ir, vi, 4.0) - ir), atol=1e-6)
    person_ir = torch.full((1, 1, 48, 48), 0.1)
    person_ir[..., 16:32, 20:28] = 0.6
    smoke = torch.full_like(person_ir, 0.55)
    s = rebase_ir(person_ir, smoke, 8.0)
    assert float(s[..., 20:28, 22:26].mean()) > 0.75  # brighter than the smoke and than the infrared
    assert float(s[..., 2:8, 2:8].mean()) == pytest.approx(0.55, abs=0.01)  # far away: the smoke
    with pytest.raises(ValueError, match="ir_rebase"):
        FusionHead(8, 1, output="image", rebase=4.0)


def test_a_rebase_ceiling_keeps_the_fusion_within_c_grey_levels_of_the_brighter_source():
    """``model.ir_rebase_ceiling``: a warm roof's re-based infrared under a bright sky glows far
    above both sources; capped at max(IR, VI) + c, no weight map can take the fusion higher, and
    where the re-based infrared stays under the cap nothing changes."""
    torch.manual_seed(5)
    plain = FusionHead(8, 1, output="weights", rebase=8.0)
    capped = FusionHead(8, 1, output="weights", rebase=8.0, rebase_ceiling=30.0)
    capped.load_state_dict(plain.state_dict())
    torch.nn.init.constant_(plain.conv3.bias, 4.0)  # w near 1: the re-based infrared itself
    torch.nn.init.constant_(capped.conv3.bias, 4.0)
    ir = torch.full((1, 1, 48, 48), 0.2)
    ir[..., 24:, :] = 0.7  # a warm roof below a cold sky
    vi = torch.full_like(ir, 0.8)  # a bright, flat visible sky and roof
    x = torch.randn(1, 8, 48, 48)
    over = (plain(x, ir, vi) - torch.maximum(ir, vi)) * 255
    assert float(over.max()) > 45  # the glow the cap is for
    capped_over = (capped(x, ir, vi) - torch.maximum(ir, vi)) * 255
    assert float(capped_over.max()) <= 30 + 1e-3
    calm = over < 25  # well under the cap: unchanged
    assert calm.any() and torch.allclose(capped(x, ir, vi)[calm], plain(x, ir, vi)[calm])


def test_the_guided_rebase_does_not_spill_a_bright_skys_lift_onto_a_warm_roof():
    """``ir_rebase_spread="guided"``: a warm roof (bright in the infrared, darker in the visible
    image) under a cold, bright sky. The Gaussian spreads the sky's lift (its brightness in the
    visible image over its cold infrared) onto the roof beside it: a band glowing far above both
    sources. The guided filter, steered by the visible image, stops the lift at the roofline
    that the visible image shows, and still lifts the sky to its visible brightness."""
    from egmt.model.prior import rebase_ir

    ir = torch.full((1, 1, 64, 64), 0.1)
    ir[..., 32:, :] = 0.7  # a warm roof below a cold sky
    vi = torch.full_like(ir, 0.9)
    vi[..., 32:, :] = 0.3  # the roof darker than the sky in the visible image
    over = {s: (rebase_ir(ir, vi, 8.0, spread=s) - torch.maximum(ir, vi)) * 255 for s in ("gaussian", "guided")}
    assert float(over["gaussian"][..., 32:40, :].max()) > 45  # the band the guided spread is for
    assert float(over["guided"].max()) < 5
    assert float(rebase_ir(ir, vi, 8.0, spread="guided")[..., :24, :].mean()) == pytest.approx(0.9, abs=0.02)
    plain = FusionHead(8, 1, output="weights", rebase=8.0)
    guided = FusionHead(8, 1, output="weights", rebase=8.0, rebase_spread="guided")
    guided.load_state_dict(plain.state_dict())
    torch.nn.init.constant_(guided.conv3.bias, 4.0)  # w near 1: the re-based infrared itself
    x = torch.randn(1, 8, 64, 64)
    assert float(((guided(x, ir, vi) - torch.maximum(ir, vi)) * 255).max()) < 5
    with pytest.raises(ValueError, match="spread 'box'"):
        rebase_ir(ir, vi, 8.0, spread="box")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ir_rebase_spread"):
        FusionHead(8, 1, output="weights", rebase=8.0, rebase_spread="box")  # type: ignore[arg-type]


def test_images_smaller_than_the_heads_blurs_are_padded_to_them():
    """The weight prior's and the re-based infrared's Gaussians reflect at the borders: the encoder
    pads to fusion_min_side (1 + 3 sigma) and crops back, so a 20x24 pair fuses (it was an error
    inside kornia); without them the padding is the window grid's, as before."""
    from egmt.model.network import fusion_min_side, pad_to_grid

    cfg = _cfg(fusion_output="weights", weight_prior="contrast", ir_rebase=16.0)
    assert fusion_min_side(cfg) == 49 and fusion_min_side(_cfg()) == 1
    assert fusion_min_side(_cfg(fusion_output="residual")) == 25  # the rule's window, sigma 8
    x = torch.rand(1, 1, 20, 24)
    assert pad_to_grid(x, 8, 49).shape[-2:] == (56, 56)
    assert pad_to_grid(x, 8).shape[-2:] == (24, 24)
    assert torch.equal(pad_to_grid(x, 8, 49)[..., :20, :24], x)  # 36 rows of padding for 20: replicated
    big = torch.rand(1, 1, 40, 40)
    padded = pad_to_grid(big, 16, 49)  # 24 of padding for 40: reflected
    assert padded.shape[-2:] == (64, 64) and torch.equal(padded[..., 40, :40], big[..., 38, :])
    torch.manual_seed(0)
    fused = EGMT(cfg)(x, torch.rand(1, 1, 20, 24), torch.randn(1, 2, 12)).fused
    assert fused.shape == x.shape and torch.isfinite(fused).all()


def test_the_prior_needs_a_weight_map():
    with pytest.raises(ValueError, match="needs fusion_output='weights'"):
        FusionHead(8, 1, output="image", prior="contrast")
    with pytest.raises(ValueError, match="weight_prior"):
        FusionHead(8, 1, output="weights", prior="guess")


def test_entity_guidance_scales_what_the_entities_change_at_inference_only():
    """``entity_guidance = g``: the weight map's logits are l_0 + (1 + g)(l_E - l_0) (l_0 without
    entities), checked by hand on the head's logits; a sample without entities and the training
    pass are left as they are; g = 0 is the network as trained."""
    torch.manual_seed(2)
    model = EGMT(_cfg(fusion_output="weights")).eval()
    ir, vi = torch.rand(2, 1, 24, 32), torch.rand(2, 1, 24, 32)
    entities, mask = torch.randn(2, 3, 12), torch.tensor([[True, True, False], [False, False, False]])
    with torch.no_grad():
        plain = model(ir, vi, entities, mask, classify=False).fused
        free = model(ir, vi, classify=False).fused
        encoded = model.encode(ir, vi)
        head = model.fusion_head
        shared, sources = model.head_inputs(encoded, entities, mask)
        l_e = head.logits(shared, *sources)
        l_0 = head.logits(model.shared_features(encoded, None, None), *encoded.sources)
        model.config.entity_guidance = 2.0
        guided = model(ir, vi, entities, mask, classify=False).fused
        model.config.entity_guidance = 0.0
        assert torch.equal(model(ir, vi, entities, mask, classify=False).fused, plain)  # 0: as trained
        model.config.entity_guidance = 2.0
    expected = head.compose(l_0 + 3.0 * (l_e - l_0), *encoded.sources)[..., :24, :32]
    assert torch.allclose(guided, expected, atol=1e-6)
    moved, moved_guided = (plain[0] - free[0]).abs().mean(), (guided[0] - free[0]).abs().mean()
    assert moved > 1e-4 and moved_guided > 2 * moved  # the entities' change, scaled up
    assert torch.allclose(guided[1], plain[1]) and torch.allclose(plain[1], free[1], atol=1e-6)  # no entity: as before
    assert ((guided >= torch.minimum(ir, vi) - 1e-6) & (guided <= torch.maximum(ir, vi) + 1e-6)).all()
    model.train()
    torch.manual_seed(3)
    trained_pass = model(ir, vi, entities, mask, classify=False).fused
    assert torch.allclose(trained_pass, plain, atol=1e-6)  # training never guides
    with pytest.raises(ValueError, match="entity_guidance"):
        EGMT(_cfg(fusion_output="weights", entity_guidance=-1.0))


def test_the_head_split_into_logits_and_compose_is_its_forward():
    """Guidance mixes ``logits`` and calls ``compose``: together they are ``forward``, the contrast
    prior and the re-based infrared included."""
    torch.manual_seed(4)
    head = FusionHead(8, 1, output="weights", prior="contrast", rebase=4.0)
    torch.nn.init.normal_(head.conv3.weight)  # off the prior, so the network's part counts
    x, ir, vi = torch.randn(1, 8, 40, 40), torch.rand(1, 1, 40, 40), torch.rand(1, 1, 40, 40)
    assert torch.allclose(head.compose(head.logits(x, ir, vi), ir, vi), head(x, ir, vi))
    mixed = head.compose(head.logits(x, ir, vi) + 1.0, ir, vi)
    assert not torch.allclose(mixed, head(x, ir, vi))  # the logits do reach the output
    with pytest.raises(ValueError, match="two sources"):
        head.compose(head.logits(x, ir, vi))
