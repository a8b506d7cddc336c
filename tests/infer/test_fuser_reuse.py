"""The caption-free pass shares the entity-free features with the fusion pass (one encode per
pair), gives what two full forwards give, and fuses and tiles patch-layout checkpoints too."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from egmt.config import EGMTConfig
from egmt.data.pairs import Pair, load_pair
from egmt.infer.fuser import EGMTFuser
from egmt.model import EGMT


def _counting(fuser: EGMTFuser) -> list[int]:
    calls = [0]
    encode = fuser.model.encode

    def counted(ir, vi):
        calls[0] += 1
        return encode(ir, vi)

    fuser.model.encode = counted
    return calls


@pytest.fixture(scope="module", params=["pixel", "patch"])
def any_fuser(request, checkpoint, tmp_path_factory) -> EGMTFuser:
    if request.param == "pixel":
        return EGMTFuser.from_pretrained(checkpoint, device="cpu", validation={"classification": {"map": 0.9, "prior_map": 0.5}})
    cfg = EGMTConfig.load(checkpoint / "config.json")
    cfg.model = dataclasses.replace(cfg.model, layout="patch", token_dim=16, token_heads=2)
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("patch")
    EGMT(cfg.model).save_pretrained(folder, cfg)
    for name in ("entity_bank.safetensors", "vocabulary.json"):
        (folder / name).write_bytes((checkpoint / name).read_bytes())
    return EGMTFuser.from_pretrained(folder, device="cpu", validation={"classification": {"map": 0.9, "prior_map": 0.5}})


def test_caption_free_encodes_once_and_equals_two_full_passes(any_fuser, data_dir):
    ir, vi = data_dir / "tno" / "ir" / "07.png", data_dir / "tno" / "vi" / "07.png"
    calls = _counting(any_fuser)
    try:
        result = any_fuser(ir, vi, threshold=0.5 if any_fuser.model.config.layout == "pixel" else 0.0)
    finally:
        del any_fuser.model.encode
    assert calls[0] == 1 and result.entities  # one entity-free pass served both
    ir_y, vi_y = (torch.from_numpy(np.asarray(read)).float()[None, None] for read in _luma(ir, vi))
    with torch.no_grad():
        probs = torch.sigmoid(any_fuser.model(ir_y, vi_y).logits[0]).tolist()
        feats = any_fuser.entity_features(result.entities)[None]
        fused = any_fuser.model(ir_y, vi_y, feats, classify=False).fused[0, 0].numpy()
    assert list(result.probabilities.values()) == pytest.approx(probs, abs=1e-6)
    np.testing.assert_allclose(result.image, np.clip(fused, 0, 1), atol=1e-6)


def _luma(ir, vi):
    pair = load_pair(Pair("p", ir, vi))
    return pair.ir[0].numpy(), pair.vi[0].numpy()


def test_large_images_are_fused_and_classified_in_tiles(any_fuser):
    g = torch.Generator().manual_seed(0)
    ir, vi = torch.rand(1, 1, 100, 130, generator=g), torch.rand(1, 1, 100, 130, generator=g)
    any_fuser.tile_size = 64
    try:
        entities, probs = any_fuser.predict_entities(ir, vi, threshold=0.0)
        fused = any_fuser.fuse_y(ir, vi, entities)
    finally:
        any_fuser.tile_size = None
    assert fused.shape == (1, 1, 100, 130) and torch.isfinite(fused).all()
    # The tiled classifier keeps, per class, the highest probability of any tile.
    tiles = [(ir[..., :64, :64], vi[..., :64, :64]), (ir[..., 36:, 66:], vi[..., 36:, 66:])]
    with torch.no_grad():
        seen = torch.stack([torch.sigmoid(any_fuser.model(a, b).logits[0]) for a, b in tiles]).amax(0)
    assert all(p >= s - 1e-6 for p, s in zip(probs.values(), seen.tolist()))


def test_the_patch_layout_tiles_from_one_megapixel(any_fuser):
    expected = 2048 * 2048 if any_fuser.model.config.layout == "pixel" else 1024 * 1024
    assert any_fuser.max_pixels == expected
    assert any_fuser._tile(1080, 1920) == (None if any_fuser.model.config.layout == "pixel" else 1024)


def test_compile_wraps_both_halves_and_keeps_the_model(checkpoint):
    """``--compile``: encode and decode go through torch.compile (compiled lazily on first use,
    which the speed benchmark measures; not run here: it takes minutes on a CPU)."""
    fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu")
    plain = fuser.model.encode
    assert fuser.compile() is fuser
    assert fuser.model.encode is not plain and callable(fuser.model.decode)
    assert "encode" in vars(fuser.model) and "decode" in vars(fuser.model)
