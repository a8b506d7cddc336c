"""Entity heat maps: CGHA's eq. 5 weights per entity, recorded without changing the output."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from egmt.cli import main as cli_main
from egmt.config import ModelConfig
from egmt.data.io import read_image
from egmt.data.pairs import Pair, load_pair
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.infer.heatmaps import AttentionRecorder, colour_map, entity_file_name, entity_heatmaps
from egmt.infer.tiling import tile_slices
from egmt.model import EGMT
from egmt.model.cgha import CrossModalGuidedHybridAttention

ENTITIES = ["person", "tree", "house"]


@pytest.fixture(scope="module")
def fuser(checkpoint):
    return EGMTFuser.from_pretrained(checkpoint, device="cpu")


@pytest.fixture
def pair(data_dir):
    return data_dir / "tno" / "ir" / "07.png", data_dir / "tno" / "vi" / "07.png"


def test_one_map_per_entity_of_the_images_size_summing_to_one(fuser, pair):
    # a crop whose size is not a multiple of the 8x8 windows (the padding is cropped back)
    h, w = 250, 246
    result = entity_heatmaps(fuser, read_image(pair[0])[:h, :w], read_image(pair[1])[:h, :w], ENTITIES)
    assert result.maps.shape == (3, h, w) and result.fused.shape == (h, w)
    assert result.entities == ENTITIES
    np.testing.assert_allclose(result.maps.sum(axis=0), 1.0, atol=1e-5)  # softmax over the entities
    assert (result.maps >= 0).all()
    # the entities draw attention to different places
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(result.maps[i] - result.maps[j]).mean() > 1e-3


def test_patch_layout_maps_are_the_patch_grid_interpolated(checkpoint, pair):
    fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu")
    cfg = ModelConfig(
        layout="patch",
        channels=8,
        num_heads=2,
        window_size=8,
        token_dim=16,
        token_heads=2,
        entity_dim=12,
        num_classes=fuser.model.config.num_classes,
    )
    torch.manual_seed(0)
    fuser.model = EGMT(cfg).eval()
    h, w = 60, 75  # padded to 64 x 80: an 8 x 10 grid of 8x8 patches
    cgha = [m for m in fuser.model.modules() if isinstance(m, CrossModalGuidedHybridAttention)]
    recorded = []
    for m in cgha:
        m.register_forward_hook(lambda mod, args, out: recorded.append(mod.attention.clone()))
    result = entity_heatmaps(fuser, read_image(pair[0])[:h, :w], read_image(pair[1])[:h, :w], ENTITIES)
    assert result.maps.shape == (3, h, w)
    assert [tuple(a.shape) for a in recorded] == [(1, 1, 80, 3)] * len(cgha)  # one token per patch, both directions
    np.testing.assert_allclose(result.maps.sum(axis=0), 1.0, atol=1e-5)
    grid = torch.stack(recorded).mean(0)[0, 0]  # [T, E]: the maps interpolate these values
    for e in range(3):
        assert grid[:, e].min() - 1e-6 <= result.maps[e].min() and result.maps[e].max() <= grid[:, e].max() + 1e-6
        assert result.maps[e].std() > 0  # not one value for the whole image


def test_recording_does_not_change_the_output_and_is_off_by_default(fuser, pair):
    modules = [m for m in fuser.model.modules() if isinstance(m, CrossModalGuidedHybridAttention)]
    assert modules and all(not m.record_attention and m.attention is None for m in modules)
    loaded = load_pair(Pair("07", *pair))
    feats = fuser.entity_features(ENTITIES)[None]
    plain = fuser.model(loaded.ir[None], loaded.vi[None], entities=feats).fused
    result = entity_heatmaps(fuser, *pair, ENTITIES)
    assert torch.equal(plain[0, 0], torch.from_numpy(result.fused))
    assert all(not m.record_attention and m.attention is None for m in modules)  # switched off again


def test_recorder_takes_entity_heatmaps_maps_from_the_fusions_pass(fuser, pair):
    h, w = 250, 246
    ir, vi = read_image(pair[0])[:h, :w], read_image(pair[1])[:h, :w]
    plain = fuser(ir, vi, entities=ENTITIES)
    with AttentionRecorder(fuser.model) as recorder:
        result = fuser(ir, vi, entities=ENTITIES)
    assert recorder.passes == 1
    np.testing.assert_array_equal(result.image, plain.image)  # recording changes nothing
    maps = recorder.heatmaps(result.entities, result.luma)
    separate = entity_heatmaps(fuser, ir, vi, ENTITIES)
    assert maps.entities == separate.entities
    np.testing.assert_array_equal(maps.maps, separate.maps)
    np.testing.assert_array_equal(maps.fused, separate.fused)
    modules = [m for m in fuser.model.modules() if isinstance(m, CrossModalGuidedHybridAttention)]
    assert all(not m.record_attention and m.attention is None and not m._forward_hooks for m in modules)


def test_recorder_refuses_a_fusion_in_tiles(fuser, pair):
    ir, vi = read_image(pair[0]), read_image(pair[1])
    fuser.tile_size = 128
    try:
        with AttentionRecorder(fuser.model) as recorder:
            result = fuser(ir, vi, entities=ENTITIES)
    finally:
        fuser.tile_size = None
    assert recorder.passes == len(tile_slices(*ir.shape[:2], 128, fuser.tile_overlap)) > 1
    with pytest.raises(EGMTError, match="a fusion in tiles"):
        recorder.heatmaps(result.entities, result.luma)


def test_recorded_weights_are_eq5s_softmax(fuser):
    cgha = next(m for m in fuser.model.modules() if isinstance(m, CrossModalGuidedHybridAttention))
    torch.manual_seed(0)
    tokens, ents = torch.randn(1, 2, 4, 8), torch.randn(1, 3, 8)
    mask = torch.tensor([[True, True, False]])  # the padding entity gets no weight
    cgha.record_attention = True
    try:
        cgha(tokens, ents, mask)
        recorded = cgha.attention
    finally:
        cgha.record_attention, cgha.attention = False, None
    x = cgha.norm_tokens(tokens).view(1, 8, 8)
    k, _ = cgha.kv_entities(cgha.norm_entities(ents)).chunk(2, dim=-1)
    q = cgha.q_tokens(x)
    per_head = [
        torch.softmax(
            (q[..., i * 4 : (i + 1) * 4] @ k[..., i * 4 : (i + 1) * 4].transpose(-1, -2)) / 2.0
            + torch.tensor([0.0, 0.0, float("-inf")]),
            dim=-1,
        )
        for i in range(2)
    ]
    expected = torch.stack(per_head).mean(0).view(1, 2, 4, 3)
    torch.testing.assert_close(recorded, expected)
    assert (recorded[..., 2] == 0).all()


def test_cli_writes_a_png_per_entity_over_the_image(checkpoint, pair, tmp_path, capsys):
    out = tmp_path / "maps"
    assert (
        cli_main(
            [
                "heatmap",
                "--ir",
                str(pair[0]),
                "--vi",
                str(pair[1]),
                "--entities",
                "person, tree, car",
                "-o",
                str(out),
                "--checkpoint",
                str(checkpoint),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == ["07_car.png", "07_person.png", "07_tree.png"]
    size = Image.open(pair[0]).size
    images = [np.asarray(Image.open(out / f).convert("RGB"), dtype=np.float64) for f in files]
    assert all(Image.open(out / f).size == size for f in files)
    assert images[0].std(axis=-1).mean() > 1  # coloured, not grey
    assert np.abs(images[0] - images[1]).mean() > 0.5 and np.abs(images[1] - images[2]).mean() > 0.5
    with open(out / "07_heatmaps.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["entity"] for r in rows] == ["person", "tree", "car"]
    assert sum(float(r["mean_weight"]) for r in rows) == pytest.approx(1.0, abs=1e-4)
    assert "07_person.png: person" in capsys.readouterr().out


def test_bad_requests_are_one_line_errors(checkpoint, pair, tmp_path, capsys):
    base = ["heatmap", "--ir", str(pair[0]), "--vi", str(pair[1]), "-o", str(tmp_path), "--checkpoint", str(checkpoint)]
    assert cli_main(base) == 2 and "exactly one of --entities and --annotations" in capsys.readouterr().err
    assert cli_main(base + ["--entities", " , "]) == 2 and "at least one entity" in capsys.readouterr().err
    no_text = EGMTFuser(EGMT(ModelConfig(channels=8, num_heads=2, window_size=8, text_interaction=False)), device="cpu")
    with pytest.raises(EGMTError, match="no CGHA"):
        entity_heatmaps(no_text, *pair, ["person"])


def test_one_entity_is_warned_about(checkpoint, pair, tmp_path, caplog):
    """eq. 5's weights sum to 1 over the entities: one entity's map is 1 everywhere, so say so."""
    import logging

    base = ["heatmap", "--ir", str(pair[0]), "--vi", str(pair[1]), "-o", str(tmp_path), "--checkpoint", str(checkpoint)]
    with caplog.at_level(logging.WARNING, logger="egmt.cli"):
        assert cli_main(base + ["--entities", "car"]) == 0
        assert "one entity (car): its map is 1 everywhere" in caplog.text
        caplog.clear()
        assert cli_main(base + ["--entities", "car, person"]) == 0
        assert "one entity" not in caplog.text


def test_colour_map_and_file_names():
    rgb = colour_map(np.array([[0.0, 1.0, 2.0]]))
    assert rgb.shape == (1, 3, 3) and rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[0, 1, 0] > rgb[0, 1, 2]
    assert np.array_equal(rgb[0, 1], rgb[0, 2])  # clipped
    assert entity_file_name("Street light") == "street_light" and entity_file_name("a/b") == "a_b"


def test_maps_are_the_mean_over_cghas_of_eq5_weights_put_back_at_their_pixels(fuser, pair):
    """Reference built by hand, without the recorder: switch on every CGHA's record_attention,
    run one forward, put each module's [1, nW, T, E] weights back on the pixel grid window by
    window, and average over the modules: entity_heatmaps gives the same maps."""
    h, w = 64, 80  # a whole number of the checkpoint's 8x8 windows: no padding
    ir, vi = read_image(pair[0])[:h, :w], read_image(pair[1])[:h, :w]
    modules = [m for m in fuser.model.modules() if isinstance(m, CrossModalGuidedHybridAttention)]
    loaded = load_pair(Pair("07", *pair))
    ir_y, vi_y = loaded.ir[None, :, :h, :w], loaded.vi[None, :, :h, :w]
    for m in modules:
        m.record_attention = True
    try:
        with torch.no_grad():
            fuser.model(ir_y, vi_y, entities=fuser.entity_features(ENTITIES)[None], classify=False)
        recorded = [m.attention for m in modules]
    finally:
        for m in modules:
            m.record_attention, m.attention = False, None
    s = fuser.model.config.window_size
    expected = np.zeros((len(ENTITIES), h, w))
    for a in recorded:  # [1, nW, s*s, E], windows in row-major order
        for k in range(a.shape[1]):
            r, c = divmod(k, w // s)
            expected[:, r * s : (r + 1) * s, c * s : (c + 1) * s] += a[0, k].T.reshape(len(ENTITIES), s, s).numpy() / len(
                recorded
            )
    result = entity_heatmaps(fuser, ir, vi, ENTITIES)
    np.testing.assert_allclose(result.maps, expected, atol=1e-6)


@pytest.mark.parametrize("layout", ["pixel", "patch"])
def test_heat_maps_of_a_pair_smaller_than_the_heads_blurs(layout):
    """With the re-based infrared (a Gaussian of sigma 16) the encoder pads a 20x24 pair to 56x56
    (fusion_min_side), not to its 24x24 window grid; the heat maps follow that padding."""
    from egmt.infer.heatmaps import AttentionRecorder
    from egmt.model import EGMT

    cfg = ModelConfig(
        channels=8,
        window_size=8,
        entity_dim=12,
        num_classes=3,
        fusion_output="weights",
        ir_rebase=16.0,
        layout=layout,
        token_dim=16,
        token_heads=2,
    )
    torch.manual_seed(0)
    model = EGMT(cfg).eval()
    ir, vi = torch.rand(1, 1, 20, 24), torch.rand(1, 1, 20, 24)
    with torch.no_grad(), AttentionRecorder(model) as recorder:
        fused = model(ir, vi, torch.randn(1, 2, 12)).fused
        maps = recorder.heatmaps(["a", "b"], fused[0, 0].numpy())
    assert maps.maps.shape == (2, 20, 24)
    assert np.allclose(maps.maps.sum(axis=0), 1.0, atol=1e-4)
