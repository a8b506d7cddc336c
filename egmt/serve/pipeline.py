"""The demo's work, framework-free: two uploaded files + typed entities -> what the page shows.

Uploads are written only into a fresh temporary folder (under their role's name, never the
client's file name), read with :func:`egmt.data.io.read_image` and fused by the same
:class:`~egmt.infer.EGMTFuser` call as ``egmt fuse``; the fused PNG is written by the same
:func:`~egmt.data.io.write_image`, so the page's download equals ``egmt fuse``'s file byte for
byte in pixels. The folder is removed before the answer is returned. Bad input (not an image,
sizes differ, too small, too many pixels) raises :class:`EGMTError` with one line naming the
upload and the cause.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from egmt.data.io import IMAGE_EXTENSIONS, read_image, write_image
from egmt.data.pairs import MIN_FUSION_SIZE, MODALITIES
from egmt.errors import EGMTError
from egmt.infer.entities import parse_entity_list
from egmt.infer.fuser import EGMTFuser, FusionResult
from egmt.infer.heatmaps import AttentionRecorder, entity_heatmaps, one_entity_note, overlays
from egmt.serve.scores import quick_scores

#: Smallest side accepted: one 16x16 patch (below it the network's windows, the seam ratio
#: and the spatial metrics have nothing to work on).
MIN_SIDE = MIN_FUSION_SIZE
#: Largest image accepted by default, in pixels (a 2-Mpixel pair takes seconds on a CPU).
MAX_PIXELS = 4_000_000


@dataclass
class Upload:
    """One uploaded file: the client's file name (for messages only) and its bytes."""

    filename: str
    data: bytes


@dataclass
class DemoResult:
    """Everything the page shows after a fusion (PNG files as bytes)."""

    ir_png: bytes
    vi_png: bytes
    fused_png: bytes
    width: int
    height: int
    entities: list[str]
    entity_source: str
    scores: dict[str, float]
    heatmaps: list[tuple[str, bytes, float]] = field(default_factory=list)  # (entity, PNG, mean weight)
    heatmap_note: str = ""
    seconds: float = 0.0


def _suffix(upload: Upload) -> str:
    """A known image extension from the client's name (else .img: Pillow reads by content)."""
    suffix = Path(upload.filename or "").suffix.lower()
    return suffix if suffix in IMAGE_EXTENSIONS else ".img"


def _check_header(path: Path, label: str, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the file's header, before any decoding: refuses files Pillow
    cannot identify, images under MIN_SIDE and over ``max_pixels`` (a decompression bomb)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except Image.DecompressionBombError:
        raise EGMTError(f"{label}: image has too many pixels (over {max_pixels:,})") from None
    except Exception:
        raise EGMTError(f"{label}: not an image file Pillow can read") from None
    if w < MIN_SIDE or h < MIN_SIDE:
        raise EGMTError(f"{label}: image is {w}x{h}; each side must be at least {MIN_SIDE} pixels")
    if w * h > max_pixels:
        raise EGMTError(f"{label}: image is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}")
    return w, h


def _png_bytes(image: np.ndarray, folder: Path, name: str) -> bytes:
    """``image`` written as ``egmt fuse`` writes it (:func:`write_image`), as bytes."""
    path = folder / f"{name}.png"
    write_image(path, image)
    return path.read_bytes()


class DemoPipeline:
    """A loaded fuser shared by the server's requests (one fusion at a time: the fuser keeps
    per-pair state)."""

    def __init__(self, fuser: EGMTFuser, max_pixels: int = MAX_PIXELS, heatmap_alpha: float = 0.5):
        self.fuser = fuser
        self.max_pixels = max_pixels
        self.heatmap_alpha = heatmap_alpha
        self._lock = threading.Lock()

    def run(self, ir: Upload, vi: Upload, entities: str = "") -> DemoResult:
        """Fuse one uploaded pair. ``entities``: comma-separated; empty means caption-free."""
        typed = parse_entity_list(entities) if entities.strip() else None
        labels = (f"infrared {ir.filename or 'upload'!r}", f"visible {vi.filename or 'upload'!r}")
        with tempfile.TemporaryDirectory(prefix="egmt-serve-") as tmp:
            folder = Path(tmp)
            paths, sizes = [], []
            for role, upload, label in zip(MODALITIES, (ir, vi), labels):
                if not upload.data:
                    raise EGMTError(f"{label}: empty file")
                path = folder / f"{role}{_suffix(upload)}"
                path.write_bytes(upload.data)
                sizes.append(_check_header(path, label, self.max_pixels))
                paths.append(path)
            if sizes[0] != sizes[1]:
                (wi, hi), (wv, hv) = sizes
                raise EGMTError(f"{labels[0]} is {wi}x{hi} but {labels[1]} is {wv}x{hv}: IR and visible sizes differ")
            try:
                ir_img, vi_img = (read_image(p) for p in paths)
            except EGMTError as e:  # name the upload, not the temporary file
                message = str(e)
                for p, label in zip(paths, labels):
                    message = message.replace(str(p), label)
                raise EGMTError(message) from None
            with self._lock:
                t0 = time.perf_counter()
                with AttentionRecorder(self.fuser.model) as recorder:  # the heat maps, from the fusion's own pass
                    result = self.fuser(ir_img, vi_img, entities=typed)
                seconds = time.perf_counter() - t0
                if typed is not None:
                    result.entity_source = "typed"  # as `egmt fuse --entities` names it
                maps, note = self._heatmaps(recorder, ir_img, vi_img, result)
            fused_png = _png_bytes(result.image, folder, "fused")
            out = DemoResult(
                ir_png=_png_bytes(ir_img, folder, "ir_view"),
                vi_png=_png_bytes(vi_img, folder, "vi_view"),
                fused_png=fused_png,
                width=ir_img.shape[1],
                height=ir_img.shape[0],
                entities=list(result.entities),
                entity_source=result.entity_source,
                scores=quick_scores(ir_img, vi_img, result.image),  # rounded as fused.png stores it
                heatmap_note=note,
                seconds=seconds,
            )
            if maps is not None:
                for i, (entity, image) in enumerate(zip(maps.entities, overlays(maps, self.heatmap_alpha))):
                    out.heatmaps.append((entity, _png_bytes(image, folder, f"heat{i}"), float(maps.maps[i].mean())))
        return out

    def _heatmaps(self, recorder: AttentionRecorder, ir_img: np.ndarray, vi_img: np.ndarray, result: FusionResult):
        """``(EntityHeatmaps or None, why none)``: heat maps need entities and a CGHA.

        They are :func:`entity_heatmaps`'s maps of ``result.entities``, taken from the fusion's
        pass that ``recorder`` saw. Where that pass cannot give them, a pass of their own, as
        before: a pair fused in tiles (the maps show one whole-image pass) or an entity typed
        twice (the fusion keeps both copies, the maps one)."""
        entities = result.entities
        if not entities:
            return None, "no entity guided this fusion, so there is no entity attention to show"
        if not self.fuser.model.config.text_interaction:
            return None, "this checkpoint does not use entities"
        try:
            if recorder.passes == 1 and len(set(entities)) == len(entities) and result.luma is not None:
                return recorder.heatmaps(entities, result.luma), one_entity_note(entities)
            return entity_heatmaps(self.fuser, ir_img, vi_img, entities), one_entity_note(entities)
        except EGMTError as e:
            return None, str(e)
