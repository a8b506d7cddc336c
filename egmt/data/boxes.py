"""Entity boxes drawn on source images: read a box file, turn boxes into masks, draw them.

A box file (``annotations/boxes-val.json``) is ``{pair: [{"entity": NAME, "box": [x0, y0, x1,
y1]}, ...]}`` in source-image pixels, origin at the top-left corner, half-open: a box covers
the columns ``x0 .. x1 - 1`` and rows ``y0 .. y1 - 1``. The boxes say where an entity is, so
that measures (:mod:`egmt.bench.steering`) can ask whether the network's entity attention and
the effect of an entity on the output land there. They are for measuring only, never training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from egmt.errors import EGMTError


@dataclass(frozen=True)
class Box:
    """One entity's box, half-open pixel coordinates ``[x0, x1) x [y0, y1)``."""

    entity: str
    x0: int
    y0: int
    x1: int
    y1: int

    def area(self) -> int:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    @property
    def corners(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``, as the box measures of :mod:`egmt.metrics.retention` take it."""
        return self.x0, self.y0, self.x1, self.y1


def read_boxes(path: str | Path) -> dict[str, list[Box]]:
    """``{pair: [Box, ...]}`` from a box file; one-line EGMTError naming the file for bad content
    (not JSON, a box that is not four integers with x0 < x1 and y0 < y1, an empty entity)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise EGMTError(f"{path}: cannot read the box file ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise EGMTError(f"{path}: not a JSON box file ({e})") from None
    if not isinstance(data, dict):
        raise EGMTError(f"{path}: expected a JSON object {{pair: [{{entity, box}}, ...]}}")
    boxes: dict[str, list[Box]] = {}
    for pair, items in data.items():
        if not isinstance(items, list):
            raise EGMTError(f"{path}: pair {pair!r}: expected a list of boxes")
        boxes[pair] = []
        for i, item in enumerate(items):
            where = f"{path}: pair {pair!r}, box {i}"
            if not isinstance(item, dict) or not isinstance(item.get("entity"), str) or not item["entity"].strip():
                raise EGMTError(f'{where}: expected {{"entity": NAME, "box": [x0, y0, x1, y1]}}')
            b = item.get("box")
            if not (isinstance(b, list) and len(b) == 4 and all(isinstance(v, int) and not isinstance(v, bool) for v in b)):
                raise EGMTError(f"{where}: the box must be four integers [x0, y0, x1, y1]")
            if not (0 <= b[0] < b[2] and 0 <= b[1] < b[3]):
                raise EGMTError(f"{where}: expected 0 <= x0 < x1 and 0 <= y0 < y1, got {b}")
            boxes[pair].append(Box(item["entity"].strip().lower(), *b))
    return boxes


def box_problems(boxes: dict[str, list[Box]], sizes: dict[str, tuple[int, int]], classes: Iterable[str]) -> list[str]:
    """What is wrong with ``boxes`` against the images' ``sizes`` (``{pair: (H, W)}``) and the
    entity ``classes``: a pair without an image, a box past the image's border, an entity that
    is not a class. Empty when all is well."""
    classes = set(classes)
    problems = []
    for pair, items in boxes.items():
        if pair not in sizes:
            problems.append(f"{pair}: no such pair")
            continue
        h, w = sizes[pair]
        for b in items:
            if b.x1 > w or b.y1 > h:
                problems.append(f"{pair}: {b.entity} box {list(b.corners)} past the {w}x{h} image")
            if b.entity not in classes:
                problems.append(f"{pair}: entity {b.entity!r} is not one of the classes")
    return problems


def box_mask(boxes: Sequence[Box], shape: tuple[int, int]) -> np.ndarray:
    """Boolean ``[H, W]``: the union of ``boxes`` (clipped to the image)."""
    mask = np.zeros(shape, dtype=bool)
    for b in boxes:
        mask[b.y0 : b.y1, b.x0 : b.x1] = True
    return mask


def draw_boxes(
    image: np.ndarray, boxes: Sequence[Box], colour: tuple[float, float, float] = (1.0, 1.0, 1.0), width: int = 2
) -> np.ndarray:
    """A copy of ``image`` (``[H, W]`` or ``[H, W, 3]``, floats in [0, 1]; grey becomes RGB) with
    each box outlined ``width`` pixels wide, inside the box, in ``colour``."""
    out = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image.copy()
    h, w = out.shape[:2]
    c = np.asarray(colour, dtype=out.dtype)
    for b in boxes:
        x0, y0, x1, y1 = min(b.x0, w), min(b.y0, h), min(b.x1, w), min(b.y1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        t = max(1, min(width, (x1 - x0 + 1) // 2, (y1 - y0 + 1) // 2))
        out[y0 : y0 + t, x0:x1] = c
        out[y1 - t : y1, x0:x1] = c
        out[y0:y1, x0 : x0 + t] = c
        out[y0:y1, x1 - t : x1] = c
    return out
