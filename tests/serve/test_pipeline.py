"""The demo's framework-free work: the same pixels as ``egmt fuse``, one-line errors, nothing left on disk."""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from egmt.data.io import read_image, write_image
from egmt.errors import EGMTError
from egmt.infer.heatmaps import entity_heatmaps, overlays
from egmt.model.cgha import CrossModalGuidedHybridAttention
from egmt.serve.pipeline import Upload
from egmt.serve.scores import quick_scores
from tests.serve.conftest import SAMPLES, egmt_fuse_pixels


def sample(name: str, role: str) -> Upload:
    path = SAMPLES / role / f"{name}.png"
    return Upload(path.name, path.read_bytes())


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Every temporary folder the pipeline makes goes under tmp_path/t (to check it is emptied)."""
    folder = tmp_path / "t"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_typed_entities_fuse_as_egmt_fuse_does_and_nothing_stays_on_disk(pipeline, private_tmp, tmp_path):
    result = pipeline.run(sample("07", "ir"), sample("07", "vi"), "Person, tree ,")
    assert result.entities == ["person", "tree"] and result.entity_source == "typed"
    np.testing.assert_array_equal(decode(result.fused_png), egmt_fuse_pixels("07", "person, tree", tmp_path))
    assert (result.width, result.height) == (256, 256)
    # the sources as shown are the uploads' pixels
    np.testing.assert_array_equal(decode(result.ir_png), decode((SAMPLES / "ir" / "07.png").read_bytes()))
    # one heat map per entity, each an RGB overlay of the image's size
    assert [h[0] for h in result.heatmaps] == ["person", "tree"]
    assert all(decode(h[1]).shape == (256, 256, 3) for h in result.heatmaps)
    assert math.isclose(sum(h[2] for h in result.heatmaps), 1.0, abs_tol=1e-4)  # weights sum to 1 per pixel
    assert list(private_tmp.iterdir()) == []


def test_caption_free_reports_the_fusers_entities_and_source(pipeline, fuser, tmp_path):
    result = pipeline.run(sample("19", "ir"), sample("19", "vi"), "  ")
    reference = fuser(SAMPLES / "ir" / "19.png", SAMPLES / "vi" / "19.png")
    assert (result.entities, result.entity_source) == (reference.entities, reference.entity_source)
    assert result.entity_source != "typed"
    np.testing.assert_array_equal(decode(result.fused_png), egmt_fuse_pixels("19", None, tmp_path))
    assert len(result.heatmaps) == len(result.entities)
    if not result.entities:
        assert "no entity" in result.heatmap_note


@pytest.mark.parametrize("entities", ["person", "car, car"])
def test_one_entity_shows_its_map_with_a_note_that_it_is_flat(pipeline, entities):
    """eq. 5's weights sum to 1 over the entities: the one map is shown, and the note says why it
    is 1 everywhere (as egmt heatmap warns)."""
    result = pipeline.run(sample("07", "ir"), sample("07", "vi"), entities)
    assert len(result.heatmaps) == 1 and result.heatmaps[0][2] == pytest.approx(1.0, abs=1e-3)
    assert "its map is 1 everywhere" in result.heatmap_note


def test_scores_are_the_metrics_of_the_8bit_images(pipeline):
    result = pipeline.run(sample("07", "ir"), sample("07", "vi"), "person")
    assert list(result.scores) == ["EN", "SD", "SF", "MI", "seam_ratio", "target_retention"]
    ir, vi, fused = (decode(b).astype(np.float64) / 255.0 for b in (result.ir_png, result.vi_png, result.fused_png))
    # which images are scored: the page's scores are those of the 8-bit images it shows (the fused
    # one as its PNG stores it); the scores' values on known images: tests/serve/test_scores.py
    assert quick_scores(ir, vi, fused) == result.scores
    # fusing a source with itself keeps all of its warm targets and adds no seams
    same = quick_scores(ir, vi, ir)
    assert math.isclose(same["target_retention"], 1.0) and same["seam_ratio"] <= 1.0 + 1e-9
    assert 0 < result.scores["EN"] <= 8


@pytest.mark.parametrize(
    "ir, vi, message",
    [
        (Upload("notes.txt", b"not an image at all"), None, "infrared 'notes.txt': not an image file"),
        (None, Upload("vi.png", b""), "visible 'vi.png': empty file"),
        (
            Upload("tiny.png", png(np.zeros((1, 1), np.uint8))),
            Upload("tiny.png", png(np.zeros((1, 1), np.uint8))),
            "infrared 'tiny.png': image is 1x1; each side must be at least 16 pixels",
        ),
        (None, sample("08", "vi"), "infrared '07.png' is 256x256 but visible '08.png' is 595x328: IR and visible sizes differ"),
        (Upload("cut.png", (SAMPLES / "ir" / "07.png").read_bytes()[:4000]), None, "infrared 'cut.png': unreadable image"),
    ],
)
def test_bad_input_is_one_line_naming_the_upload(pipeline, private_tmp, ir, vi, message):
    with pytest.raises(EGMTError) as info:
        pipeline.run(ir or sample("07", "ir"), vi or sample("07", "vi"))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert str(private_tmp) not in str(info.value)  # the temporary file is never named
    assert list(private_tmp.iterdir()) == []


def test_too_many_pixels_is_refused_from_the_header(fuser):
    from egmt.serve.pipeline import DemoPipeline

    small = DemoPipeline(fuser, max_pixels=200 * 200)
    with pytest.raises(EGMTError, match=r"infrared '07.png': image is 256x256 = 65,536 pixels; the limit is 40,000"):
        small.run(sample("07", "ir"), sample("07", "vi"))


@contextlib.contextmanager
def counting_runs(model):
    """Forward calls of the network's parts during the ``with``: ``encode`` (the IR's shallow
    features), every CGHA, the fusion head."""
    counts: Counter[str] = Counter()
    cgha = [m for m in model.modules() if isinstance(m, CrossModalGuidedHybridAttention)]
    parts = {"encode": model.shallow["ir"], "fusion head": model.fusion_head, **{f"cgha {i}": m for i, m in enumerate(cgha)}}
    handles = [m.register_forward_hook(lambda *_, name=name: counts.update([name])) for name, m in parts.items()]
    try:
        yield counts, parts
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("name, entities", [("07", "person, tree"), ("19", "")])  # typed; caption-free (classifier)
def test_one_request_runs_the_network_once(pipeline, fuser, name, entities):
    with counting_runs(fuser.model) as (counts, parts):
        result = pipeline.run(sample(name, "ir"), sample(name, "vi"), entities)
    assert result.entities and len(result.heatmaps) == len(result.entities) and not result.heatmap_note
    # encoded once (the caption-free classifier pass reuses it), one fusion, each CGHA once
    assert counts == {part: 1 for part in parts}


def bytes_of(image: np.ndarray, path) -> bytes:
    write_image(path, image)
    return path.read_bytes()


@pytest.mark.parametrize("entities", ["person, tree, car", "car, person, car", ""])
def test_fused_image_and_heat_maps_equal_their_separate_computations(pipeline, fuser, tmp_path, entities):
    """The demo's one pass gives EGMTFuser's image bit for bit and entity_heatmaps' maps (an
    entity typed twice: the maps' own pass, as before); a colour visible, so the maps' background
    (the fused Y) is not the fused image."""
    vi_grey = read_image(SAMPLES / "vi" / "07.png")
    write_image(tmp_path / "vi.png", np.stack([vi_grey, vi_grey * 0.8, vi_grey * 0.6], axis=-1))
    vi = Upload("vi.png", (tmp_path / "vi.png").read_bytes())
    result = pipeline.run(sample("07", "ir"), vi, entities)

    ir_img, vi_img = read_image(SAMPLES / "ir" / "07.png"), read_image(tmp_path / "vi.png")
    assert vi_img.ndim == 3
    separate = fuser(ir_img, vi_img, entities=[e.strip() for e in entities.split(",")] if entities else None)
    assert result.entities == separate.entities
    assert result.fused_png == bytes_of(separate.image, tmp_path / "fused.png")
    maps = entity_heatmaps(fuser, ir_img, vi_img, separate.entities)
    assert [h[0] for h in result.heatmaps] == maps.entities == list(dict.fromkeys(separate.entities))
    for i, ((entity, png, mean), overlay) in enumerate(zip(result.heatmaps, overlays(maps, 0.5))):
        assert png == bytes_of(overlay, tmp_path / f"heat{i}.png"), entity
        assert mean == float(maps.maps[i].mean())
