"""egmt.data.pairs: finding pairs by stem, split files, and loading them as Y (+ CbCr)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from egmt.data.pairs import Pair, find_pairs, load_pair, read_split
from egmt.errors import EGMTError

RNG = np.random.default_rng(1)


def _save(path: Path, shape=(20, 24), mode="L") -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = RNG.integers(0, 256, size=shape if mode == "L" else (*shape, 3), dtype=np.uint8)
    Image.fromarray(a, mode=mode).save(path)
    return a


def _dataset(root: Path, stems=("a", "b", "c")) -> Path:
    for s in stems:
        _save(root / "ir" / f"{s}.png")
        _save(root / "vi" / f"{s}.png", mode="RGB")
    return root


# --- real data ---------------------------------------------------------------------------


def test_roadscene_splits_and_tno(data_dir):
    road = data_dir / "roadscene"
    train = find_pairs(road, "train.txt")
    test = find_pairs(road, "test.txt")
    assert len(train) == 171 and len(test) == 50
    assert [p.name for p in train] == sorted(read_split(road / "train.txt"))
    assert not {p.name for p in train} & {p.name for p in test}
    assert len(find_pairs(road)) == 221
    assert len(find_pairs(road, road / "test.txt")) == 50  # absolute split path
    tno = find_pairs(data_dir / "tno")
    assert len(tno) == 25
    assert tno[0] == Pair("01", data_dir / "tno" / "ir" / "01.png", data_dir / "tno" / "vi" / "01.png")


def test_load_real_colour_pair(data_dir):
    (pair,) = [p for p in find_pairs(data_dir / "roadscene", "train.txt") if p.name == "FLIR_00006"]
    lp = load_pair(pair)
    assert lp.name == "FLIR_00006"
    assert lp.ir.shape == (1, 329, 500) and lp.vi.shape == (1, 329, 500) and lp.vi_cbcr.shape == (2, 329, 500)
    assert lp.ir.dtype == lp.vi.dtype == torch.float32
    rgb = np.asarray(Image.open(pair.vi), dtype=np.float64) / 255
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(lp.vi[0].numpy(), y, atol=1e-6)
    np.testing.assert_array_equal(lp.ir[0].numpy(), np.asarray(Image.open(pair.ir), dtype=np.float32) / 255)


def test_grey_stored_as_rgb_is_grey(data_dir):
    lp = load_pair(find_pairs(data_dir / "tno")[0])  # TNO: grey pictures saved as RGB
    assert lp.vi_cbcr is None
    assert lp.ir.shape == lp.vi.shape == (1, 576, 768)
    raw = np.asarray(Image.open(data_dir / "tno" / "ir" / "01.png"), dtype=np.float32)[..., 0] / 255
    np.testing.assert_array_equal(lp.ir[0].numpy(), raw)  # exactly the channel, no weighted sum


# --- folders built in tmp_path ------------------------------------------------------------


def test_pairs_match_by_stem_across_extensions_and_ignore_other_files(tmp_path):
    root = _dataset(tmp_path, stems=("b", "a"))
    _save(root / "ir" / "c.bmp")
    _save(root / "vi" / "c.jpg", mode="RGB")
    (root / "ir" / "README.txt").write_text("not an image")
    (root / "vi" / ".DS_Store").write_bytes(b"\0")
    pairs = find_pairs(root)
    assert [p.name for p in pairs] == ["a", "b", "c"]
    assert pairs[2].ir.name == "c.bmp" and pairs[2].vi.name == "c.jpg"


def test_missing_partner_names_the_file(tmp_path):
    root = _dataset(tmp_path)
    _save(root / "ir" / "lonely.png")
    with pytest.raises(EGMTError) as e:
        find_pairs(root)
    assert str(root / "ir" / "lonely.png") in str(e.value) and "visible" in str(e.value)
    (root / "ir" / "lonely.png").unlink()
    _save(root / "vi" / "alone.png")
    with pytest.raises(EGMTError, match="alone.png.*no infrared partner"):
        find_pairs(root)


def test_split_only_checks_its_own_stems(tmp_path):
    root = _dataset(tmp_path)
    _save(root / "ir" / "lonely.png")  # not in the split: not used, not an error
    (root / "train.txt").write_text("# training stems\nb\n\na.png\nb\n")
    assert [p.name for p in find_pairs(root, "train.txt")] == ["a", "b"]


def test_split_stem_without_pair(tmp_path):
    root = _dataset(tmp_path)
    (root / "s.txt").write_text("a\nghost\n")
    with pytest.raises(EGMTError) as e:
        find_pairs(root, "s.txt")
    assert "ghost" in str(e.value) and "s.txt" in str(e.value)


def test_split_file_missing(tmp_path):
    root = _dataset(tmp_path)
    with pytest.raises(EGMTError, match="nosuch.txt"):
        find_pairs(root, "nosuch.txt")


def test_missing_modality_folder(tmp_path):
    _save(tmp_path / "ir" / "a.png")
    with pytest.raises(EGMTError, match="vi"):
        find_pairs(tmp_path)


def test_duplicate_stem_with_two_extensions(tmp_path):
    root = _dataset(tmp_path)
    _save(root / "vi" / "a.jpg", mode="RGB")
    with pytest.raises(EGMTError, match="duplicate stem 'a'"):
        find_pairs(root)


def test_empty_dataset(tmp_path):
    (tmp_path / "ir").mkdir()
    (tmp_path / "vi").mkdir()
    with pytest.raises(EGMTError, match="no image pairs"):
        find_pairs(tmp_path)


def test_size_mismatch_names_both_files_and_sizes(tmp_path):
    _save(tmp_path / "ir" / "x.png", shape=(20, 24))
    _save(tmp_path / "vi" / "x.png", shape=(21, 24), mode="RGB")
    (pair,) = find_pairs(tmp_path)
    with pytest.raises(EGMTError) as e:
        load_pair(pair)
    msg = str(e.value)
    assert str(pair.ir) in msg and str(pair.vi) in msg and "24x20" in msg and "24x21" in msg


def test_colour_ir_becomes_its_y_and_grey_visible_has_no_chroma(tmp_path):
    ir = _save(tmp_path / "ir" / "x.png", mode="RGB")
    vi = _save(tmp_path / "vi" / "x.png")
    lp = load_pair(find_pairs(tmp_path)[0])
    y = (0.299 * ir[..., 0] + 0.587 * ir[..., 1] + 0.114 * ir[..., 2]) / 255
    np.testing.assert_allclose(lp.ir[0].numpy(), y, atol=1e-6)
    np.testing.assert_array_equal(lp.vi[0].numpy(), vi.astype(np.float32) / 255)
    assert lp.vi_cbcr is None


def test_unreadable_image_in_a_pair(tmp_path):
    root = _dataset(tmp_path, stems=("a",))
    (root / "vi" / "a.png").write_bytes((root / "vi" / "a.png").read_bytes()[:40])
    with pytest.raises(EGMTError, match=re.escape(str(root / "vi" / "a.png"))):
        load_pair(find_pairs(root)[0])
