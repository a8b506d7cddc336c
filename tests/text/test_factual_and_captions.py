"""The model-backed paths (FACTUAL T5, BLIP-2) with tiny models loaded from disk, and caption files."""

import json

import numpy as np
import pytest
from PIL import Image

from egmt.errors import EGMTError
from egmt.data.pairs import Pair
from egmt.text.captions import (
    Blip2Captioner,
    FileCaptioner,
    PairCaptions,
    load_captioner,
    read_caption_file,
    write_caption_file,
)
from egmt.text.entities import FactualExtractor, load_extractor


# ------------------------------------------------------------------ FACTUAL


def test_factual_tiny_t5_loads_from_disk_and_parses(tiny_t5_dir):
    # tiny_t5_dir was trained on exactly these two captions (conftest.FACTUAL_EXAMPLES)
    ex = load_extractor("factual", str(tiny_t5_dir))
    assert isinstance(ex, FactualExtractor)
    captions = ["a man walking on the street", "a white car near two trees"]
    assert ex.graphs(captions) == ["( man , walk on , street )", "( car , near , tree )"]
    assert ex.extract(captions) == [["man", "street"], ["car", "tree"]]
    # batched and one by one agree (padding must not change the output)
    ex.batch_size = 1
    assert ex.extract(captions) == [["man", "street"], ["car", "tree"]]


def test_factual_wrong_folder(tmp_path, tiny_clip_text_dir):
    with pytest.raises(EGMTError, match="not a FACTUAL"):
        FactualExtractor(str(tiny_clip_text_dir))
    with pytest.raises(EGMTError, match="no config.json"):
        FactualExtractor(str(tmp_path))
    with pytest.raises(EGMTError, match="unknown entity extractor"):
        load_extractor("nltk")


# ------------------------------------------------------------------ BLIP-2


@pytest.fixture
def image_pairs(tmp_path):
    """Three pairs: grey JPEG IR + RGB PNG VIS, a 16-bit IR, an RGBA VIS; different sizes."""
    rng = np.random.default_rng(0)
    (tmp_path / "ir").mkdir()
    (tmp_path / "vi").mkdir()
    pairs = []
    for i, (h, w) in enumerate([(40, 56), (33, 33), (64, 48)]):
        ir, vi = tmp_path / "ir" / f"p{i}.png", tmp_path / "vi" / f"p{i}.png"
        if i == 1:
            Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16)).save(ir)
        else:
            Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8), "L").save(ir)
        mode = "RGBA" if i == 2 else "RGB"
        Image.fromarray(rng.integers(0, 255, (h, w, len(mode)), dtype=np.uint8), mode).save(vi)
        pairs.append(Pair(f"p{i}", ir, vi))
    return pairs


def test_blip2_tiny_loads_from_disk_and_captions(tiny_blip2_dir, image_pairs):
    cap = load_captioner("blip2", str(tiny_blip2_dir), batch_size=4)
    assert isinstance(cap, Blip2Captioner)
    out = cap.caption_pairs(image_pairs)
    assert list(out) == ["p0", "p1", "p2"]
    assert all(isinstance(c, PairCaptions) and isinstance(c.ir, str) and isinstance(c.vi, str) for c in out.values())
    assert all("<image>" not in c.ir + c.vi for c in out.values())
    assert any(c.ir or c.vi for c in out.values())  # random weights still write words
    # batching must not change captions
    cap.batch_size = 1
    assert cap.caption_pairs(image_pairs) == out


def test_blip2_errors(tiny_blip2_dir, tiny_t5_dir, tmp_path):
    with pytest.raises(EGMTError, match="holds a 't5' model, not a BLIP-2"):
        Blip2Captioner(str(tiny_t5_dir))
    cap = Blip2Captioner(str(tiny_blip2_dir))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(EGMTError, match="broken.png: cannot read image"):
        cap.caption_images([bad])
    with pytest.raises(EGMTError, match="unknown dtype"):
        Blip2Captioner(str(tiny_blip2_dir), dtype="float7")


# ------------------------------------------------------------------ caption files


def test_read_shipped_caption_files(captions_dir):
    for name, n in [("roadscene", 221), ("tno", 25), ("msrs", 9)]:
        caps = read_caption_file(captions_dir / f"{name}.jsonl")
        assert len(caps) == n
        assert all(c.ir and c.vi for c in caps.values())
    assert read_caption_file(captions_dir / "tno.jsonl")["01"].ir.startswith("two people standing")


def test_caption_file_errors_and_datasets(tmp_path):
    p = tmp_path / "c.jsonl"
    rows = [
        {"dataset": "a", "name": "x", "ir": "ir x", "vi": "vi x"},
        {"dataset": "b", "name": "x", "ir": "ir bx", "vi": "vi bx"},
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_caption_file(p, "b")["x"] == PairCaptions("ir bx", "vi bx")
    with pytest.raises(EGMTError, match="no captions for dataset 'c'"):
        read_caption_file(p, "c")
    with pytest.raises(EGMTError, match="c.jsonl:2: captions for pair 'x' appear twice"):
        read_caption_file(p)
    p.write_text('{"name": "x", "ir": "a"}\n')
    with pytest.raises(EGMTError, match="c.jsonl:1: missing key"):
        read_caption_file(p)
    p.write_text('{"name": "x", "ir": "a", "vi": 3}\n')
    with pytest.raises(EGMTError, match="must be strings"):
        read_caption_file(p)
    p.write_text("{oops\n")
    with pytest.raises(EGMTError, match="c.jsonl:1: invalid JSON"):
        read_caption_file(p)
    with pytest.raises(EGMTError, match="not found"):
        FileCaptioner(tmp_path / "none.jsonl")
    with pytest.raises(EGMTError, match="needs a caption file"):
        load_captioner("file", None)


def test_write_caption_file_round_trip(tmp_path):
    caps = {"a": PairCaptions("a man", "a road"), "b": PairCaptions("", "trees")}
    write_caption_file(tmp_path / "c.jsonl", caps, "mine")
    assert read_caption_file(tmp_path / "c.jsonl") == caps
    assert json.loads((tmp_path / "c.jsonl").read_text().splitlines()[0])["dataset"] == "mine"
