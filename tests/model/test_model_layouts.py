"""Both token layouts (ModelConfig.layout "pixel" / "patch"): odd sizes, gradients, entity
handling, the reach of attention (global in the patch layout, windowed in the pixel layout),
the entity-free encode / decode split, and checkpoints of either layout."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from egmt.config import ModelConfig
from egmt.errors import EGMTError
from egmt.model import EGMT
from egmt.model.patch_ecim import PatchECIMBlock

D = 384
# Small widths keep the tests fast; the patch layout's paper configuration is profiled elsewhere.
LAYOUTS = {
    "pixel": {"channels": 16, "num_heads": 2},
    "patch": {"channels": 8, "num_heads": 2, "layout": "patch", "window_size": 8, "token_dim": 32, "token_heads": 2},
    # the seam-free variant: token updates interpolated between patch centres, one MCA map per image
    "patch-smooth": {
        "channels": 8,
        "num_heads": 2,
        "layout": "patch",
        "window_size": 8,
        "token_dim": 32,
        "token_heads": 2,
        "token_unembed": "smooth",
        "channel_attention_scope": "image",
    },
}


def make(name: str, seed: int = 0, **overrides) -> EGMT:
    torch.manual_seed(seed)
    return EGMT(dataclasses.replace(ModelConfig(), **(LAYOUTS[name] | overrides)))


def pair(b: int, h: int, w: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g)


def ents(b: int, e: int, seed: int = 2) -> torch.Tensor:
    return torch.randn(b, e, D, generator=torch.Generator().manual_seed(seed))


def test_the_factory_builds_the_layouts_block():
    assert type(make("pixel").blocks[0]).__name__ == "ECIMBlock"
    assert isinstance(make("patch").blocks[0], PatchECIMBlock)
    with pytest.raises(ValueError, match="layout"):
        make("pixel", layout="voxel")


SWITCHES = [
    {},
    {"channel_attention": False},
    {"token_attention": False},
    {"cgha": False},
    {"text_interaction": False},
    {"multi_task": False},
    {"channel_attention": False, "token_attention": False},
    {"num_blocks": 2},
]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "full")
def test_forward_backward_at_an_odd_size_reaches_every_parameter(layout, switches):
    model = make(layout, **switches).train()
    ir, vi = pair(2, 27, 37)  # not a multiple of any window: padded, then cropped back
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = model(ir, vi, ents(2, 3), mask)
    assert out.fused.shape == (2, 1, 27, 37) and torch.isfinite(out.fused).all()
    loss = out.fused.square().mean() + (out.logits.square().mean() if out.logits is not None else 0)
    loss.backward()
    idle = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert idle == []
    assert (out.logits is None) == (not model.config.multi_task)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_e0_all_padding_none_agree_and_real_entities_matter(layout):
    model = make(layout).eval()
    ir, vi = pair(2, 19, 30)
    with torch.no_grad():
        none = model(ir, vi)
        empty = model(ir, vi, torch.zeros(2, 0, D), torch.zeros(2, 0, dtype=torch.bool))
        padded = model(ir, vi, ents(2, 4), torch.zeros(2, 4, dtype=torch.bool))
        real = model(ir, vi, ents(2, 4))
    for other in (empty, padded):
        torch.testing.assert_close(other.fused, none.fused, rtol=0, atol=1e-6)
        torch.testing.assert_close(other.logits, none.logits, rtol=0, atol=1e-6)
    assert (real.fused - none.fused).abs().max() > 1e-5


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_padding_entities_have_no_effect(layout):
    model = make(layout).eval()
    ir, vi = pair(2, 24, 21)
    e = ents(2, 4)
    mask = torch.tensor([[True, True, True, False], [False, False, False, False]])
    garbage = e.clone()
    garbage[~mask] = 1e4 * torch.randn(int((~mask).sum()), D)
    garbage[0, 3] = float("nan")
    with torch.no_grad():
        batched = model(ir, vi, garbage, mask)
        first = model(ir[:1], vi[:1], e[:1, :3])
        second = model(ir[1:], vi[1:], torch.zeros(1, 0, D))
    torch.testing.assert_close(batched.fused, torch.cat([first.fused, second.fused]), rtol=0, atol=1e-5)
    torch.testing.assert_close(batched.logits, torch.cat([first.logits, second.logits]), rtol=0, atol=1e-5)


def _reach(model: EGMT, size: int, window: int, entities: int = 2) -> torch.Tensor:
    """|change| of the fused image when only the top-left window of the infrared input changes."""
    ir, vi = pair(1, size, size)
    changed = ir.clone()
    changed[..., :window, :window] = 1 - changed[..., :window, :window]
    e = ents(1, entities)
    with torch.no_grad():
        return (model(changed, vi, e).fused - model(ir, vi, e).fused).abs()[0, 0]


def test_patch_layout_attention_is_global():
    """One changed patch changes the fused pixels of patches far away (MSA / CGHA over all tokens)."""
    diff = _reach(make("patch").eval(), 48, 8)
    far = diff[24:, 24:]  # patches at least two patches (and the conv margin) away
    assert (far > 0).float().mean() > 0.9 and far.mean() > 1e-6


@pytest.mark.parametrize(
    "msa, cgha, entities",
    [(True, False, 2), (True, True, 0), (False, True, 2)],
    ids=["MSA alone (CGHA off)", "MSA alone (no entity)", "CGHA alone (MSA off)"],
)
def test_each_patch_token_stage_alone_is_global(msa, cgha, entities):
    """Each of the two token stages spreads one patch's change over the image on its own: MSA
    (eq. 3, over all patch tokens) with CGHA off or skipped for want of an entity, and CGHA
    (eq. 6: the entity-weighted queries attend to all tokens) with MSA off. With both on, either
    would hide the other being cut down to a token attending only to itself."""
    diff = _reach(make("patch", token_attention=msa, cgha=cgha).eval(), 48, 8, entities)
    far = diff[24:, 24:]
    assert (far > 0).float().mean() > 0.9 and far.mean() > 1e-6


def test_patch_layout_without_token_stages_is_local():
    """The control that makes the reach above mean something: with neither MSA nor CGHA (MCA is
    per patch), pixels beyond the changed patch, its neighbour and the convs' margins are identical."""
    diff = _reach(make("patch", token_attention=False, cgha=False).eval(), 48, 8)
    assert diff[:8, :8].max() > 1e-3
    assert diff[24:, :].max() == 0 and diff[:, 24:].max() == 0


@pytest.mark.parametrize("entities", [None, 0])
def test_patch_block_without_msa_and_entities_adds_nothing_to_the_pixels(entities):
    """MSA off and no entity to attend to: no token stage runs, so the block returns its MCA output
    unchanged (not the token return's bias added to every pixel)."""
    model = make("patch-smooth", token_attention=False).eval()
    block = model.blocks[0]
    ir, vi = torch.rand(2, 1, 36, 64, 8)  # [B, nW, T, C]: a 6x6 grid of 8x8 patches
    state = block.visual(ir, vi, (6, 6))
    e = None if entities is None else torch.rand(1, 0, D)
    mask = None if entities is None else torch.zeros(1, 0, dtype=torch.bool)
    out = block.entity(state, e, mask)
    assert torch.equal(out[0], state.pixels["ir"]) and torch.equal(out[1], state.pixels["vi"])


def test_image_scope_channel_attention_reaches_the_whole_image():
    """MCA with one channel map per image (``channel_attention_scope="image"``): a change in one
    patch moves every pixel, with no token stage at all; per window (the control above) it does not."""
    diff = _reach(make("patch", token_attention=False, cgha=False, channel_attention_scope="image").eval(), 48, 8)
    assert (diff[24:, 24:] > 0).float().mean() > 0.9


@pytest.mark.parametrize("unembed, seamless", [("smooth", True), ("patch", False)])
def test_smooth_token_return_draws_no_patch_grid(unembed, seamless):
    """The token updates' way back to the pixels: "smooth" interpolates linearly between patch
    centres, so the step across a patch border equals the steps beside it (the update bends only at
    patch centres, never at a border); the "patch" projection gives each patch its own pattern."""
    from egmt.model.attention import window_reverse

    block = make("patch", token_unembed=unembed).blocks[0]
    (gh, gw), c, p = (6, 5), 8, 8
    torch.manual_seed(3)
    with torch.no_grad():
        update = block.unembed["ir"](torch.randn(1, gh * gw, 32))
        like = torch.zeros(1, gh * gw, p * p, c)
        pixels = window_reverse(block._to_pixels(update, (gh, gw), like), p, gh * p, gw * p)[0]
    for x in range(p, gw * p, p):  # the interior borders between patch columns
        across, beside = pixels[:, :, x] - pixels[:, :, x - 1], pixels[:, :, x - 1] - pixels[:, :, x - 2]
        assert torch.allclose(across, beside, atol=1e-6) == seamless
    for y in range(p, gh * p, p):  # ... and between patch rows
        across, beside = pixels[:, y] - pixels[:, y - 1], pixels[:, y + 1] - pixels[:, y]
        assert torch.allclose(across, beside, atol=1e-6) == seamless
    if seamless:
        with pytest.raises(ValueError, match="patch grid"):
            block._to_pixels(update, (gh, gw + 1), like)


def test_pixel_layout_attention_stays_in_its_window():
    """In the pixel layout information moves one window at most (the shallow convs' 2-pixel margin
    reaches the next window, whose attention spreads it over that window, plus the head's 2 pixels):
    pixels beyond are bit-identical."""
    diff = _reach(make("pixel").eval(), 64, 16)
    assert diff[:16, :16].max() > 1e-3  # the changed window itself does change
    assert diff[34:, :].max() == 0 and diff[:, 34:].max() == 0


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_encode_once_decode_twice_equals_two_forwards(layout):
    """The caption-free reuse: the entity-free part computed once serves a classifier-only pass
    and an entity-guided fusion pass, with the same results as two full forwards."""
    model = make(layout).eval()
    ir, vi = pair(1, 21, 34)
    e = ents(1, 3)
    with torch.no_grad():
        encoded = model.encode(ir, vi)
        classified = model.decode(encoded, fuse=False)
        fused = model.decode(encoded, e, classify=False)
        full_none, full_e = model(ir, vi), model(ir, vi, e)
    assert classified.fused is None and fused.logits is None
    torch.testing.assert_close(classified.logits, full_none.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(fused.fused, full_e.fused, rtol=0, atol=1e-6)
    with pytest.raises(EGMTError, match="model input"):
        model.decode(encoded, torch.randn(2, 3, D))


def test_patch_checkpoint_round_trip(tmp_path):
    model = make("patch", num_blocks=2).eval()
    model.save_pretrained(tmp_path / "ckpt")
    back = EGMT.from_pretrained(tmp_path / "ckpt")
    assert back.config.layout == "patch" and isinstance(back.blocks[1], PatchECIMBlock)
    ir, vi = pair(1, 20, 26)
    with torch.no_grad():
        assert torch.equal(model(ir, vi, ents(1, 2)).fused, back(ir, vi, ents(1, 2)).fused)


def test_config_without_layout_loads_as_pixel(tmp_path):
    """Checkpoints written before the layout switch (config.json without the key) still load."""
    model = make("pixel")
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    for key in ("layout", "token_dim", "token_heads", "token_ffn_ratio"):
        del saved["model"][key]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    back = EGMT.from_pretrained(tmp_path)
    assert back.config.layout == "pixel" and back.config == model.config


def test_unknown_layout_in_a_checkpoint_is_a_one_line_error(tmp_path):
    make("pixel").save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved["model"]["layout"] = "voxel"
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(EGMTError, match="layout"):
        EGMT.from_pretrained(tmp_path)


def test_an_unknown_channel_scope_is_refused_when_the_model_is_built():
    with pytest.raises(ValueError, match="channel_attention_scope"):
        make("patch", channel_attention_scope="everywhere")
