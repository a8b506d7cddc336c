"""Comparison figures (the paper's Fig. 4): sources and every method's fused image side by side.

One PNG per test set: a header row of labels, then one row per pair, one column per image
(IR, VIS, then each method). Every image is shown grey (the Y the metrics score: RGB goes
through MATLAB's rgb2gray, like :mod:`egmt.bench.evaluate`) and downscaled to ``tile_width``
pixels so a figure stays a few tens of KB. Which pairs are shown is a fixed rule, not a
choice by quality: the first ``n`` stems in natural order (:func:`figure_pairs`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from egmt.bench.evaluate import read_grey_u8
from egmt.data.pairs import Pair
from egmt.errors import EGMTError
from egmt.fileio import write_bytes_atomic

LABEL_HEIGHT = 14  # pixels of the header row
GAP = 2  # pixels between tiles
BACKGROUND = 255
TILE_WIDTH = 112  # pixels per image: 11 columns x 2 rows of TNO is ~120 KB


def natural_key(stem: str) -> list:
    """``"img10"`` after ``"img9"``: digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", stem)]


def figure_pairs(pairs: Sequence[Pair], n: int) -> list[Pair]:
    """The first ``n`` pairs by stem in natural order (the rule that picks a figure's rows)."""
    return sorted(pairs, key=lambda p: natural_key(p.name))[: max(0, n)]


def grey(path: Path) -> np.ndarray:
    """``[H, W]`` in [0, 1]: an image as the metrics read it (RGB through MATLAB's rgb2gray)."""
    return read_grey_u8(path) / 255.0


def _tile(path: Path | None, width: int, height: int) -> Image.Image:
    """The image at ``path`` resized to ``width x height`` (grey); a mid-grey tile with
    "missing" when there is no such file or it cannot be read."""
    try:
        if path is None:
            raise EGMTError("no image")
        return Image.fromarray(read_grey_u8(path), mode="L").resize((width, height), Image.Resampling.LANCZOS)
    except EGMTError:
        tile = Image.new("L", (width, height), 160)
        ImageDraw.Draw(tile).text((4, height // 2 - 5), "missing", fill=0, font=ImageFont.load_default())
        return tile


def _draw_label(draw: ImageDraw.ImageDraw, label: str, x: int, y: int, tile_width: int, fill) -> None:
    """``label`` centred over a tile at ``x`` (cut to fit the tile's width)."""
    font = ImageFont.load_default()
    text = label if draw.textlength(label, font=font) <= tile_width - 2 else label[: tile_width // 7]
    draw.text((x + (tile_width - draw.textlength(text, font=font)) / 2, y + 1), text, fill=fill, font=font)


def _write_png(canvas: Image.Image, out: Path) -> Path:
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    write_bytes_atomic(out, buf.getvalue())
    return out


def comparison_figure(
    pairs: Sequence[Pair],
    columns: Sequence[tuple[str, Path | None]],
    out: Path,
    tile_width: int = TILE_WIDTH,
) -> Path:
    """Write ``out`` (PNG, grey): header labels, then per pair its IR, VIS and one tile per
    ``(label, folder)`` column (``folder/STEM.png``; ``None`` = a missing column). Tiles keep
    the aspect ratio of the pair's IR image. Returns ``out``."""
    if not pairs:
        raise EGMTError(f"{out}: no pairs for the comparison figure")
    labels = ["IR", "VIS", *(label for label, _ in columns)]
    heights = []
    for pair in pairs:
        with Image.open(pair.ir) as im:
            w, h = im.size
        heights.append(max(1, round(tile_width * h / w)))
    width = len(labels) * tile_width + (len(labels) - 1) * GAP
    height = LABEL_HEIGHT + sum(heights) + GAP * len(pairs)
    canvas = Image.new("L", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(labels):
        _draw_label(draw, label, j * (tile_width + GAP), 0, tile_width, fill=0)
    y = LABEL_HEIGHT
    for pair, h in zip(pairs, heights):
        paths = [Path(pair.ir), Path(pair.vi)] + [None if f is None else Path(f) / f"{pair.name}.png" for _, f in columns]
        for j, path in enumerate(paths):
            canvas.paste(_tile(path, tile_width, h), (j * (tile_width + GAP), y))
        y += h + GAP
    return _write_png(canvas, out)


def labelled_grid(rows: Sequence[Sequence[tuple[str, np.ndarray]]], out: Path, tile_width: int = TILE_WIDTH) -> Path:
    """Write ``out`` (PNG, RGB): one row per sequence of ``(label, image)``, each image (``[H, W]``
    grey or ``[H, W, 3]`` RGB, floats in [0, 1]) downscaled to ``tile_width`` under its own label
    (rows may differ in length, e.g. one heat map per entity of each pair). Returns ``out``."""
    if not rows or not all(rows):
        raise EGMTError(f"{out}: a figure needs at least one image per row")
    heights = [max(1, round(tile_width * row[0][1].shape[0] / row[0][1].shape[1])) for row in rows]
    columns = max(len(row) for row in rows)
    width = columns * tile_width + (columns - 1) * GAP
    canvas = Image.new("RGB", (width, sum(heights) + len(rows) * (LABEL_HEIGHT + GAP)), (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(canvas)
    y = 0
    for row, h in zip(rows, heights):
        for j, (label, image) in enumerate(row):
            x = j * (tile_width + GAP)
            _draw_label(draw, label, x, y, tile_width, fill=(0, 0, 0))
            pixels = np.clip(np.round(np.asarray(image, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
            tile = Image.fromarray(pixels).convert("RGB").resize((tile_width, h), Image.Resampling.LANCZOS)
            canvas.paste(tile, (x, y + LABEL_HEIGHT))
        y += LABEL_HEIGHT + h + GAP
    return _write_png(canvas, out)
