"""Entity heat maps (the paper's Fig. 5): where CGHA's attention lands, one map per entity.

CGHA's eq. 5 gives every visual token a softmax weight over the pair's entities. With the
pixel token layout a token is a pixel, so for entity ``e`` the weights form an image: how
much each pixel's query attends to ``e``; with the patch layout a token is a 16x16 patch, and
the map is the patch grid, interpolated to pixels. :func:`entity_heatmaps` records them during one
ordinary forward pass (the ``record_attention`` switch of
:class:`~egmt.model.cgha.CrossModalGuidedHybridAttention`, which leaves the output unchanged)
and averages them over heads, both modalities' CGHA and every ECIM block; at each pixel
the maps of all entities sum to 1. :class:`AttentionRecorder` records them during a fusion
(``EGMTFuser.__call__``), so that a caller which fuses and shows the maps (the web demo) runs
the network once. :func:`write_heatmaps` draws each map in a colour map
over the fused image, all entities on one scale (0 to the largest weight of any entity)
so that their colours compare; given boxes (:mod:`egmt.data.boxes`), each entity's own are
outlined on its map.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from egmt.data.boxes import Box, draw_boxes
from egmt.data.io import read_image, write_image
from egmt.data.pairs import MIN_FUSION_SIZE, pair_from_arrays
from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic
from egmt.infer.fuser import EGMTFuser
from egmt.model import EGMT
from egmt.model.attention import window_reverse
from egmt.model.cgha import CrossModalGuidedHybridAttention
from egmt.model.network import fusion_min_side, padded_side

# A perceptually ordered colour map (dark blue -> blue -> cyan -> yellow -> red), anchors in [0, 1].
_ANCHORS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_COLOURS = np.array([[0, 0, 96], [0, 64, 255], [0, 224, 224], [255, 224, 0], [224, 0, 0]], dtype=np.float64) / 255.0


@dataclass
class EntityHeatmaps:
    """``maps: [E, H, W]`` float, eq. 5 weights per entity and pixel (they sum to 1 over the
    entities); ``fused: [H, W]`` the fused Y in [0, 1]; ``entities`` in the order of ``maps``."""

    entities: list[str]
    maps: np.ndarray
    fused: np.ndarray


def colour_map(values: np.ndarray) -> np.ndarray:
    """``[H, W]`` in [0, 1] -> RGB ``[H, W, 3]`` in [0, 1] (the anchors above, linear between)."""
    v = np.clip(values, 0.0, 1.0)
    return np.stack([np.interp(v, _ANCHORS, _COLOURS[:, c]) for c in range(3)], axis=-1)


def _cgha_modules(model: object) -> list[CrossModalGuidedHybridAttention]:
    """The model's CGHA modules (none in a model that is not a torch module: ONNX)."""
    if not isinstance(model, torch.nn.Module):
        return []
    return [m for m in model.modules() if isinstance(m, CrossModalGuidedHybridAttention)]


NO_CGHA = "this checkpoint has no CGHA (trained without text interaction or CGHA): no entity attention to show"


class AttentionRecorder:
    """Records the eq. 5 weights of every CGHA of ``model`` during the forward passes run inside
    ``with AttentionRecorder(model) as recorder:`` (recording is switched off again on leaving,
    the modules keep nothing); :meth:`heatmaps` turns those of the last pass into maps.

    ``passes`` counts the passes through CGHA: a fusion in tiles makes one per tile, and the
    recorded weights are then the last tile's, not the image's; a pass without entities (the
    caption-free classifier pass) does not reach CGHA and is not counted.
    """

    def __init__(self, model: EGMT):
        self.modules = _cgha_modules(model)
        self.window = model.config.window_size
        self.min_side = fusion_min_side(model.config)  # what the encoder pads to
        self.passes = 0
        self._attention: list[torch.Tensor | None] = [None] * len(self.modules)
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []

    def _keep(self, index: int, module: CrossModalGuidedHybridAttention) -> None:
        self._attention[index] = module.attention
        if index == 0:
            self.passes += 1

    def __enter__(self) -> AttentionRecorder:
        self.passes, self._attention = 0, [None] * len(self.modules)
        for i, m in enumerate(self.modules):
            m.record_attention, m.attention = True, None
            self._hooks.append(m.register_forward_hook(lambda mod, args, out, i=i: self._keep(i, mod)))
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        for m in self.modules:
            m.record_attention, m.attention = False, None

    def heatmaps(self, entities: Sequence[str], fused: np.ndarray) -> EntityHeatmaps:
        """The maps of the last recorded pass: ``entities`` as that pass was given them (in order,
        without repeats), ``fused``: its fused Y ``[H, W]`` (the image's size, the maps' too)."""
        if not self.modules:
            raise EGMTError(NO_CGHA)
        if self.passes > 1:
            raise EGMTError(
                f"{self.passes} CGHA passes were recorded (a fusion in tiles): heat maps need one over the whole image"
            )
        h, w = fused.shape
        s = self.window
        hp, wp = padded_side(h, s, self.min_side), padded_side(w, s, self.min_side)
        maps = [_attention_image(a, s, hp, wp)[:, :h, :w] for a in self._attention]
        mean = torch.stack(maps).mean(dim=0)
        return EntityHeatmaps(list(entities), mean.cpu().numpy(), fused)


def one_entity_note(entities: Sequence[str]) -> str:
    """A warning for heat maps of a single entity ("" otherwise): eq. 5's weights sum to 1 over
    the entities at every token, so one entity's map is 1 everywhere and shows nothing."""
    distinct = list(dict.fromkeys(entities))
    if len(distinct) != 1:
        return ""
    return f"one entity ({distinct[0]}): its map is 1 everywhere; give two or more to compare"


@torch.no_grad()
def entity_heatmaps(
    fuser: EGMTFuser, ir: str | Path | np.ndarray, vi: str | Path | np.ndarray, entities: Sequence[str]
) -> EntityHeatmaps:
    """Fuse one pair with ``entities`` and return each entity's attention map (see module doc)."""
    entities = list(dict.fromkeys(entities))
    if not entities:
        raise EGMTError("heat maps need at least one entity (--entities or --annotations)")
    model = fuser.model
    if not _cgha_modules(model):
        raise EGMTError(NO_CGHA)
    ir_img = read_image(ir) if isinstance(ir, (str, Path)) else ir
    vi_img = read_image(vi) if isinstance(vi, (str, Path)) else vi
    labels = (ir, vi) if isinstance(ir, (str, Path)) else ("infrared", "visible")
    pair = pair_from_arrays("pair", ir_img, vi_img, *labels, min_size=MIN_FUSION_SIZE)
    ir_y, vi_y = pair.ir[None].to(fuser.device), pair.vi[None].to(fuser.device)
    feats = fuser.entity_features(entities)[None].to(fuser.device)
    with AttentionRecorder(model) as recorder:
        fused = model(ir_y, vi_y, entities=feats, classify=False).fused
    return recorder.heatmaps(entities, fused[0, 0].cpu().numpy())


def _attention_image(attention: torch.Tensor | None, s: int, hp: int, wp: int) -> torch.Tensor:
    """One CGHA's recorded eq. 5 weights -> ``[E, hp, wp]`` on the padded pixel grid.

    Pixel layout: ``[1, nW, s*s, E]``, one token per pixel, put back in place. Patch layout:
    ``[1, 1, T, E]``, one token per s x s patch (T = hp/s * wp/s); each patch's weights are
    spread over its pixels by bilinear interpolation between patch centres, so the map is
    as coarse as the attention it shows."""
    if attention is None:
        raise EGMTError("no CGHA attention was recorded (the pair has no real entity)")
    a = attention.float()
    if a.shape[1] * a.shape[2] == hp * wp:
        return window_reverse(a, s, hp, wp)[0]
    gh, gw = hp // s, wp // s
    if a.shape[1] == 1 and a.shape[2] == gh * gw:
        grid = a[0, 0].transpose(0, 1).reshape(1, -1, gh, gw)  # [T, E] -> [1, E, gh, gw]
        return torch.nn.functional.interpolate(grid, size=(hp, wp), mode="bilinear", align_corners=False)[0]
    raise EGMTError(f"unexpected CGHA attention shape {tuple(a.shape)} for a {hp}x{wp} padded image")


def entity_file_name(entity: str) -> str:
    """A file-name-safe form of an entity: ``"street light"`` -> ``"street_light"``."""
    return re.sub(r"[^\w-]+", "_", entity.strip().lower()).strip("_") or "entity"


BOX_COLOUR = (1.0, 1.0, 1.0)  # white: apart from every colour of the map


def overlays(result: EntityHeatmaps, alpha: float = 0.5, boxes: dict[str, list[Box]] | None = None) -> list[np.ndarray]:
    """Per entity, ``[H, W, 3]`` in [0, 1]: the colour-mapped weights (all entities on one scale,
    0 to the largest weight of any) blended over the fused image, ``alpha`` = weight of the colour;
    ``boxes`` (``{entity: its boxes}``) outlined in white on their entity's map."""
    top = float(result.maps.max()) or 1.0
    base = np.repeat(result.fused[..., None], 3, axis=-1)
    images = [(1.0 - alpha) * base + alpha * colour_map(weights / top) for weights in result.maps]
    boxes = boxes or {}
    return [draw_boxes(im, boxes[e], BOX_COLOUR) if boxes.get(e) else im for e, im in zip(result.entities, images)]


def write_heatmaps(
    result: EntityHeatmaps, out_dir: Path, prefix: str = "", alpha: float = 0.5, boxes: dict[str, list[Box]] | None = None
) -> list[Path]:
    """Write ``out_dir/PREFIXENTITY.png`` per entity (the colour-mapped weights blended with
    the fused image, ``alpha`` = weight of the colour, the entity's ``boxes`` outlined) and
    ``out_dir/PREFIXheatmaps.csv`` (entity, file, mean, min and max weight). Returns the PNG paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, rows, used = [], [], set()
    for entity, weights, image in zip(result.entities, result.maps, overlays(result, alpha, boxes)):
        name = entity_file_name(entity)
        while name in used:  # two entities with the same safe name
            name += "_"
        used.add(name)
        path = out_dir / f"{prefix}{name}.png"
        write_image(path, image)
        paths.append(path)
        rows.append([entity, path.name, f"{weights.mean():.6f}", f"{weights.min():.6f}", f"{weights.max():.6f}"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["entity", "file", "mean_weight", "min_weight", "max_weight"])
    writer.writerows(rows)
    write_text_atomic(out_dir / f"{prefix}heatmaps.csv", buf.getvalue())
    return paths
