"""The demo's HTTP API (Starlette's TestClient, no browser): answers, limits, errors, recovery."""

from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from egmt.data.pairs import match_folders
from egmt.errors import EGMTError
from egmt.serve.app import create_app, find_samples
from tests.serve.conftest import SAMPLES, egmt_fuse_pixels

LIMIT = 200_000  # bytes: the bundled pairs (~80-130 kB) fit


@pytest.fixture(scope="module")
def client(pipeline):
    with TestClient(create_app(pipeline, samples=SAMPLES, checkpoint="ckpt", max_upload_bytes=LIMIT)) as c:
        yield c


def pixels(data_uri: str) -> np.ndarray:
    head, _, payload = data_uri.partition(",")
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))


def files(name: str) -> dict:
    return {role: (f"{name}.png", (SAMPLES / role / f"{name}.png").read_bytes(), "image/png") for role in ("ir", "vi")}


def test_page_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="fuse"' in page.text and "/api/fuse" in page.text
    info = client.get("/api/info").json()
    assert info["samples"] == ["07", "08", "19", "20"] and info["max_upload_bytes"] == LIMIT
    assert info["checkpoint"] == "ckpt"
    image = client.get("/samples/07/vi")
    assert image.headers["content-type"] == "image/png" and image.content == (SAMPLES / "vi" / "07.png").read_bytes()
    assert client.get("/samples/nope/ir").status_code == 404
    assert client.get("/samples/07/../../x").status_code == 404


def test_upload_fuses_like_egmt_fuse(client, tmp_path):
    r = client.post("/api/fuse", files=files("07"), data={"entities": "person, tree"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["entities"] == ["person", "tree"] and body["entity_source"] == "typed" and body["name"] == "07"
    np.testing.assert_array_equal(pixels(body["fused"]), egmt_fuse_pixels("07", "person, tree", tmp_path))
    assert [h["entity"] for h in body["heatmaps"]] == ["person", "tree"]
    assert set(body["scores"]) == {"EN", "SD", "SF", "MI", "seam_ratio", "target_retention"}


def test_a_bundled_sample_by_name_caption_free(client, fuser, tmp_path):
    body = client.post("/api/fuse", data={"sample": "20", "entities": ""}).json()
    reference = fuser(SAMPLES / "ir" / "20.png", SAMPLES / "vi" / "20.png")
    assert (body["entities"], body["entity_source"]) == (reference.entities, reference.entity_source)
    np.testing.assert_array_equal(pixels(body["fused"]), egmt_fuse_pixels("20", None, tmp_path))


def test_bad_requests_get_one_line_and_the_server_keeps_serving(client):
    bad = {"ir": ("notes.txt", b"hello", "text/plain"), "vi": files("07")["vi"]}
    cases = [
        (client.post("/api/fuse", files=bad), 400, "infrared 'notes.txt': not an image file Pillow can read"),
        (client.post("/api/fuse", files={**files("07"), "vi": files("08")["vi"]}), 400, "IR and visible sizes differ"),
        (client.post("/api/fuse", files={"ir": files("07")["ir"]}), 400, "choose an infrared and a visible image"),
        (client.post("/api/fuse", data={"sample": "99"}), 400, "no bundled sample '99'"),
        # too large, told by Content-Length ...
        (
            client.post("/api/fuse", files={"ir": ("big.png", b"0" * (LIMIT + 1)), "vi": files("07")["vi"]}),
            413,
            "upload too large",
        ),
        # ... and without one (chunked): refused as the bytes pass the limit
        (
            client.post(
                "/api/fuse", content=iter([b"x" * 50_000] * 6), headers={"content-type": "multipart/form-data; boundary=b"}
            ),
            413,
            "upload too large: the limit is 0.191 MB",
        ),
    ]
    for response, status, message in cases:
        assert response.status_code == status
        error = response.json()["error"]
        assert message in error and "\n" not in error
    assert client.post("/api/fuse", data={"sample": "07", "entities": "car"}).status_code == 200


def test_find_samples_pairs_stems_present_in_both(tmp_path, caplog):
    for role, stems in (("ir", ["a", "b"]), ("vi", ["b", "c"])):
        (tmp_path / role).mkdir()
        for s in stems:
            (tmp_path / role / f"{s}.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="egmt.serve"):
        assert list(find_samples(tmp_path)) == ["b"]
    assert "a.png: no visible partner" in caplog.text and "c.png: no infrared partner" in caplog.text
    assert find_samples(tmp_path / "missing") == {} and find_samples(None) == {}
    (tmp_path / "vi").rename(tmp_path / "visible")
    assert find_samples(tmp_path) == {}  # ir/ without vi/


def test_find_samples_pairs_as_egmt_fuse_does(tmp_path):
    """One pairing rule: the demo's samples are match_folders' pairs (what `egmt fuse` fuses)."""
    assert find_samples(SAMPLES) == {p.name: (p.ir, p.vi) for p in match_folders(SAMPLES / "ir", SAMPLES / "vi")[0]}
    for role, names in (("ir", ["b.png", "a.png", "c.txt", ".d.png"]), ("vi", ["a.JPG", "b.tif", "c.png", ".d.png"])):
        (tmp_path / role).mkdir()
        for name in names:
            (tmp_path / role / name).write_bytes(b"")
    # stems across extensions, sorted; not an image or hidden: not a sample
    assert find_samples(tmp_path) == {
        "a": (tmp_path / "ir" / "a.png", tmp_path / "vi" / "a.JPG"),
        "b": (tmp_path / "ir" / "b.png", tmp_path / "vi" / "b.tif"),
    }
    (tmp_path / "vi" / "a.png").write_bytes(b"")
    with pytest.raises(EGMTError, match=r"a\.png: duplicate stem 'a' \(also a\.JPG\)"):
        find_samples(tmp_path)
