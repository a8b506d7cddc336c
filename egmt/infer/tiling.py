"""Fuse images too large for memory in overlapping tiles, blended with a smooth weight.

Every tile is fused on its own; where tiles overlap, their outputs are averaged with a
separable ramp weight that falls towards each tile's border, so seams don't show. Tile
corners come from :func:`egmt.data.crops.crop_positions`, which keeps the last tile flush
with the image border.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, TypeVar

import torch
from tqdm.auto import tqdm

from egmt.data.crops import crop_positions


def _ramp(n: int, overlap: int) -> torch.Tensor:
    """1 in the middle, rising linearly over ``overlap`` samples at both ends (never 0)."""
    w = torch.ones(n)
    if overlap > 0:
        r = (torch.arange(overlap, dtype=torch.float32) + 1) / (overlap + 1)
        w[:overlap] = r
        w[n - overlap :] = torch.minimum(w[n - overlap :], r.flip(0))
    return w


def tile_slices(height: int, width: int, tile: int, overlap: int = 32) -> list[tuple[slice, slice]]:
    """``(rows, cols)`` of every tile of a ``height x width`` image, row-major: ``tile`` x ``tile``
    (or the whole extent where the image is smaller), ``overlap`` pixels shared by neighbours."""
    th, tw = min(tile, height), min(tile, width)
    stride_h, stride_w = max(th - overlap, 1), max(tw - overlap, 1)
    tops = sorted({t for t, _ in crop_positions(height, tw, th, stride_h)})
    lefts = sorted({left for _, left in crop_positions(th, width, tw, stride_w)})
    return [(slice(top, top + th), slice(left, left + tw)) for top in tops for left in lefts]


T = TypeVar("T")


def tile_progress(tiles: Sequence[T], desc: str, enabled: bool = True) -> Sequence[T]:
    """``tiles`` behind a tqdm bar on stderr (cleared when done; none for a single tile, or when
    not ``enabled``): a large image takes minutes on a CPU (a 3840x2160 pair: 12 tiles of 1024)."""
    return tqdm(tiles, desc=desc, unit="tile", leave=False, disable=not enabled or len(tiles) < 2)


def fuse_in_tiles(
    fuse: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ir: torch.Tensor,
    vi: torch.Tensor,
    tile: int,
    overlap: int = 32,
    progress: bool = True,
) -> torch.Tensor:
    """Apply ``fuse`` (``[B, 1, h, w]`` x2 -> ``[B, 1, h, w]``) tile by tile over ``[B, 1, H, W]``.

    An image no larger than ``tile`` in either direction is fused in one piece along it.
    ``progress``: a bar over the tiles on stderr.
    """
    _, _, h, w = ir.shape
    th, tw = min(tile, h), min(tile, w)
    out = torch.zeros_like(ir)
    weight = torch.zeros(1, 1, h, w, dtype=ir.dtype, device=ir.device)
    window = (_ramp(th, min(overlap, th // 2))[:, None] * _ramp(tw, min(overlap, tw // 2))[None, :]).to(ir)
    for rows, cols in tile_progress(tile_slices(h, w, tile, overlap), "fuse tiles", progress):
        sl = (..., rows, cols)
        out[sl] += fuse(ir[sl], vi[sl]) * window
        weight[sl] += window
    return out / weight
