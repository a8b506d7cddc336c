"""Sliding-window training crops of infrared/visible pairs (paper Sec. IV-A: 448x448, fixed step).

Every pair is read once and kept in memory as float16 Y channels; a crop is a view of
that cache, flipped at random (the same flip for IR and visible).
"""

from __future__ import annotations

import typing
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from egmt.config import DataConfig, SmallImages
from egmt.data.pairs import Pair, find_pairs, load_pair
from egmt.errors import EGMTError

SMALL_IMAGE_POLICIES = typing.get_args(SmallImages)


def _axis_positions(length: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis: 0, stride, 2*stride, ... plus one flush with the end."""
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def crop_positions(height: int, width: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners ``(top, left)`` of a ``size`` x ``size`` sliding-window grid, row-major.

    Windows start every ``stride`` pixels; where the grid does not end on the border, one
    more window is placed flush with the bottom / right edge, so every pixel is covered
    (when ``stride <= size``; a larger stride samples windows with gaps between them).
    EGMTError if the image is smaller than the window.
    """
    if size <= 0 or stride <= 0:
        raise EGMTError(f"crop size and stride must be positive, got size={size}, stride={stride}")
    if height < size or width < size:
        raise EGMTError(f"a {width}x{height} (W x H) image is smaller than the {size}x{size} crop")
    return [(t, l) for t in _axis_positions(height, size, stride) for l in _axis_positions(width, size, stride)]


def _check_unique_names(pairs: Sequence[Pair]) -> None:
    """EGMTError when two pairs (from different dataset folders) share a name: their entities would mix."""
    seen: dict[str, Pair] = {}
    for p in pairs:
        if p.name in seen:
            raise EGMTError(
                f"{p.ir}: pair name {p.name!r} also comes from {seen[p.name].ir}; names must be unique across sources"
            )
        seen[p.name] = p


class PairCropDataset(Dataset):
    """All sliding-window crops of all pairs; item ``i`` -> ``{"ir", "vi": [1, s, s], "name", "top", "left"}``.

    Images are loaded once at construction and cached as Y in ``cache_dtype``: float16 (default;
    half the memory of float32, and its 11-bit mantissa is finer than 8-bit input) or uint8
    (a quarter; Y rounded to 1/255, as fusion code that converts with OpenCV does).
    MSRS (1086 pairs of 640x480) takes 1.3 GB as float16.
    ``small_images``: a pair smaller than the crop in either dimension is an ``"error"``
    (default: a silent drop would shrink the training set unnoticed) or is ``"skip"``-ped
    with a warning. Flips (horizontal, vertical, each with p = 0.5) are drawn from torch's
    global RNG, so a seeded DataLoader (or worker seeding) makes them reproducible.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        size: int = DataConfig.crop_size,
        stride: int = DataConfig.crop_stride,
        flips: bool = DataConfig.flips,
        small_images: str = DataConfig.small_images,
        cache_dtype: torch.dtype = torch.float16,
        progress: bool = False,
    ) -> None:
        if small_images not in SMALL_IMAGE_POLICIES:
            raise EGMTError(f"small_images must be one of {SMALL_IMAGE_POLICIES}, got {small_images!r}")
        if size <= 0 or stride <= 0:
            raise EGMTError(f"crop size and stride must be positive, got size={size}, stride={stride}")
        if cache_dtype not in (torch.float16, torch.float32, torch.uint8):
            raise EGMTError(f"cache_dtype must be float16, float32 or uint8, got {cache_dtype}")
        self.size, self.stride, self.flips = size, stride, flips
        self._scale = 255.0 if cache_dtype == torch.uint8 else 1.0
        self.names: list[str] = []
        self._ir: list[Tensor] = []
        self._vi: list[Tensor] = []
        self._index: list[tuple[int, int, int]] = []  # (image index, top, left)
        skipped = []
        for pair in tqdm(pairs, desc="loading pairs", unit="pair", disable=not progress):
            loaded = load_pair(pair)
            h, w = loaded.ir.shape[-2:]
            if h < size or w < size:
                msg = f"{pair.ir}: {w}x{h} (W x H) is smaller than the {size}x{size} crop"
                if small_images == "error":
                    raise EGMTError(
                        msg + " (a smaller crop: --crop-size N; or leave such pairs out: --set data.small_images=skip)"
                    )
                skipped.append(pair.name)
                warnings.warn(msg + "; pair skipped", stacklevel=2)
                continue
            k = len(self.names)
            self.names.append(pair.name)
            self._ir.append(self._encode(loaded.ir, cache_dtype))
            self._vi.append(self._encode(loaded.vi, cache_dtype))
            self._index.extend((k, t, l) for t, l in crop_positions(h, w, size, stride))
        if not self._index:
            what = f"all {len(skipped)} pairs are smaller than the {size}x{size} crop" if skipped else "no pairs given"
            raise EGMTError(f"no training crops: {what}")
        self.skipped = skipped

    def _encode(self, y: Tensor, dtype: torch.dtype) -> Tensor:
        return (y * 255.0).round_().to(dtype) if dtype == torch.uint8 else y.to(dtype)

    @classmethod
    def from_config(cls, cfg: DataConfig, progress: bool = False) -> PairCropDataset:
        """The training crops that ``cfg`` describes (root + extra sources, splits, crop size/stride,
        flips, small-image policy). Pair names must be unique across sources."""
        pairs = list(find_pairs(cfg.root, cfg.split))
        for source in cfg.extra_sources:
            pairs += find_pairs(source.root, source.split)
        _check_unique_names(pairs)
        return cls(
            pairs, size=cfg.crop_size, stride=cfg.crop_stride, flips=cfg.flips, small_images=cfg.small_images, progress=progress
        )

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict:
        k, top, left = self._index[i]
        s = self.size
        ir = self._ir[k][:, top : top + s, left : left + s].to(torch.float32, copy=True)
        vi = self._vi[k][:, top : top + s, left : left + s].to(torch.float32, copy=True)
        if self._scale != 1.0:
            ir, vi = ir.div_(self._scale), vi.div_(self._scale)
        if self.flips:
            hflip, vflip = (torch.rand(2) < 0.5).tolist()
            dims = [d for d, on in ((-1, hflip), (-2, vflip)) if on]
            if dims:
                ir, vi = ir.flip(dims), vi.flip(dims)
        return {"ir": ir, "vi": vi, "name": self.names[k], "top": top, "left": left}
