"""egmt.data.crops: the sliding-window grid and the cached, flipped crop dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from egmt.config import DataConfig
from egmt.data.crops import PairCropDataset, crop_positions
from egmt.data.pairs import find_pairs, load_pair
from egmt.errors import EGMTError


@pytest.mark.parametrize(
    "h,w,size,stride",
    [(480, 640, 448, 48), (480, 640, 448, 224), (329, 500, 128, 64), (100, 100, 100, 7), (37, 53, 16, 5), (16, 40, 16, 40)],
)
def test_grid_covers_the_image_and_stays_inside(h, w, size, stride):
    pos = crop_positions(h, w, size, stride)
    covered = np.zeros((h, w), dtype=bool)
    for t, l in pos:
        assert 0 <= t <= h - size and 0 <= l <= w - size
        covered[t : t + size, l : l + size] = True
    assert covered.all() or stride > size  # a stride above the window size leaves gaps, by design
    assert pos[0] == (0, 0) and pos[-1] == (h - size, w - size)  # last window flush with the corner
    assert len(set(pos)) == len(pos)
    tops = sorted({t for t, _ in pos})
    assert all(b - a <= stride for a, b in zip(tops, tops[1:]))  # steps never exceed the stride


def test_grid_values_and_paper_count():
    assert crop_positions(10, 12, 4, 4) == [(t, l) for t in (0, 4, 6) for l in (0, 4, 8)]
    assert crop_positions(8, 8, 8, 3) == [(0, 0)]
    # DataConfig's default stride: 10 crops per 640x480 MSRS image (paper: ~9.7, see config.py).
    assert len(crop_positions(480, 640, DataConfig.crop_size, DataConfig.crop_stride)) == 10


def test_grid_errors():
    with pytest.raises(EGMTError, match="smaller than the 448x448 crop"):
        crop_positions(329, 500, 448, 48)
    with pytest.raises(EGMTError):
        crop_positions(100, 100, 64, 0)


def _noise_dataset(root: Path, sizes: dict[str, tuple[int, int]]) -> list:
    rng = np.random.default_rng(2)
    for stem, (h, w) in sizes.items():
        for m, mode in (("ir", "L"), ("vi", "RGB")):
            (root / m).mkdir(parents=True, exist_ok=True)
            shape = (h, w) if mode == "L" else (h, w, 3)
            Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode=mode).save(root / m / f"{stem}.png")
    return find_pairs(root)


def _window(full: torch.Tensor, item: dict, s: int) -> torch.Tensor:
    return full[:, item["top"] : item["top"] + s, item["left"] : item["left"] + s]


def test_crops_are_aligned_windows_of_the_full_images(tmp_path):
    pairs = _noise_dataset(tmp_path, {"p": (40, 50), "q": (33, 33)})
    ds = PairCropDataset(pairs, size=32, stride=16, flips=False)
    full = {p.name: load_pair(p) for p in pairs}
    assert len(ds) == len(crop_positions(40, 50, 32, 16)) + len(crop_positions(33, 33, 32, 16)) == 6 + 4
    for i in range(len(ds)):
        item = ds[i]
        assert item["ir"].shape == item["vi"].shape == (1, 32, 32) and item["ir"].dtype == torch.float32
        lp = full[item["name"]]
        # float16 cache: within half a float16 step of the float32 value (< 2.5e-4 in [0, 1])
        torch.testing.assert_close(item["ir"], _window(lp.ir, item, 32), atol=2.5e-4, rtol=0)
        torch.testing.assert_close(item["vi"], _window(lp.vi, item, 32), atol=2.5e-4, rtol=0)
    assert {ds[i]["name"] for i in range(len(ds))} == {"p", "q"}


def test_uint8_and_float32_caches(tmp_path):
    pairs = _noise_dataset(tmp_path, {"p": (24, 30)})
    lp = load_pair(pairs[0])
    exact = PairCropDataset(pairs, size=24, stride=6, flips=False, cache_dtype=torch.float32)
    small = PairCropDataset(pairs, size=24, stride=6, flips=False, cache_dtype=torch.uint8)
    assert len(exact) == len(small) == 2
    for i in range(2):
        a, b = exact[i], small[i]
        assert torch.equal(a["ir"], _window(lp.ir, a, 24))  # 8-bit grey IR: exact either way
        torch.testing.assert_close(b["ir"], a["ir"], atol=1e-6, rtol=0)
        torch.testing.assert_close(b["vi"], a["vi"], atol=0.5 / 255 + 1e-6, rtol=0)  # Y rounded to 1/255
        assert b["vi"].dtype == torch.float32
    with pytest.raises(EGMTError, match="cache_dtype"):
        PairCropDataset(pairs, size=24, stride=6, cache_dtype=torch.int32)


def test_flips_are_the_same_for_ir_and_vi_and_random(tmp_path):
    pairs = _noise_dataset(tmp_path, {"p": (24, 24)})
    ds = PairCropDataset(pairs, size=24, stride=24, flips=True)
    lp = load_pair(pairs[0])
    ir_full, vi_full = lp.ir.half().float(), lp.vi.half().float()
    seen = set()
    torch.manual_seed(0)
    for _ in range(40):
        item = ds[0]
        matches = [
            dims for dims in ([], [-1], [-2], [-1, -2]) if torch.equal(item["ir"], ir_full.flip(dims) if dims else ir_full)
        ]
        assert len(matches) == 1
        dims = matches[0]
        assert torch.equal(item["vi"], vi_full.flip(dims) if dims else vi_full)
        seen.add(tuple(dims))
    assert len(seen) == 4  # all four flip combinations occur
    item = ds[0]
    item["ir"].fill_(0)  # a returned crop is a copy: the cache is untouched
    assert torch.equal(PairCropDataset(pairs, size=24, stride=24, flips=False)[0]["ir"], ir_full)


def test_seeded_loader_is_reproducible(tmp_path):
    pairs = _noise_dataset(tmp_path, {"p": (40, 40)})
    ds = PairCropDataset(pairs, size=16, stride=8, flips=True)

    def run():
        torch.manual_seed(123)
        return [b["ir"] for b in DataLoader(ds, batch_size=4, shuffle=True)]

    a, b = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_small_pair_is_an_error_naming_the_file_or_skipped(tmp_path):
    pairs = _noise_dataset(tmp_path, {"big": (40, 40), "small": (40, 20)})
    with pytest.raises(EGMTError) as e:
        PairCropDataset(pairs, size=32, stride=8)
    assert str(tmp_path / "ir" / "small.png") in str(e.value) and "20x40" in str(e.value)
    with pytest.warns(UserWarning, match="small.png"):
        ds = PairCropDataset(pairs, size=32, stride=8, small_images="skip")
    assert ds.skipped == ["small"] and {ds[i]["name"] for i in range(len(ds))} == {"big"}
    with pytest.warns(UserWarning), pytest.raises(EGMTError, match="all 2 pairs are smaller"):
        PairCropDataset(pairs, size=64, stride=8, small_images="skip")
    with pytest.raises(EGMTError, match="small_images"):
        PairCropDataset(pairs, size=32, stride=8, small_images="pad")


def test_from_config_on_real_data(data_dir):
    cfg = DataConfig(root=str(data_dir / "roadscene"), split="test.txt", crop_size=128, crop_stride=64)
    ds = PairCropDataset.from_config(cfg)
    n_pairs = len(find_pairs(cfg.root, cfg.split))
    assert n_pairs == 50 and len(ds.names) == 50
    assert len(ds) >= 50 * 8  # every RoadScene image (>= 161 high, >= 351 wide) gives >= 2 x 4 crops
    item = ds[len(ds) - 1]
    assert item["ir"].shape == (1, 128, 128) and 0.0 <= item["vi"].min() and item["vi"].max() <= 1.0
    with pytest.raises(EGMTError, match="smaller than the 448x448 crop"):
        PairCropDataset.from_config(DataConfig(root=str(data_dir / "roadscene"), split="test.txt"))
