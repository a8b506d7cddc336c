"""A dataset folder ``ROOT/{ir,vi}/STEM.ext``: find infrared/visible pairs by stem and load them.

Pairs are matched by file stem (``ir/00004N.png`` with ``vi/00004N.png``; the two may
have different extensions). A split file lists one stem a line (blank lines and ``#``
comments ignored), as ``roadscene/train.txt`` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from egmt.data.color import split_luma
from egmt.data.io import IMAGE_EXTENSIONS, read_image
from egmt.errors import EGMTError

#: The two sources, in the order of every ``(ir, vi)`` pair; the model keys its per-modality
#: modules (``shallow.ir``, ``...channel_ffn.vi``) and the demo its upload fields by these names.
MODALITIES = ("ir", "vi")

#: The smallest pair (each side, pixels) that ``egmt fuse`` / ``heatmap`` accept: one 16x16 window
#: (patch) of the shipped models. Below it the network sees mostly padding and its classifier
#: still names entities (a 1x1 pair got six): an error naming the file (docs/design.md).
MIN_FUSION_SIZE = 16


@dataclass(frozen=True)
class Pair:
    """One infrared/visible pair on disk; ``name`` is the shared stem."""

    name: str
    ir: Path
    vi: Path


@dataclass
class LoadedPair:
    """A pair read into tensors, ready for fusion on Y.

    ``ir``: ``[1, H, W]`` float32 (the Y of the IR if it was stored in colour);
    ``vi``: ``[1, H, W]`` Y of the visible; ``vi_cbcr``: ``[2, H, W]``, None for a grey visible.
    """

    name: str
    ir: Tensor
    vi: Tensor
    vi_cbcr: Tensor | None


def _index_folder(folder: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> dict[str, Path]:
    """stem -> file in ``folder`` with one of ``extensions``; EGMTError on a stem present with two."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in extensions:
            continue
        if p.stem in found:
            raise EGMTError(f"{p}: duplicate stem {p.stem!r} (also {found[p.stem].name}); keep one file per stem")
        found[p.stem] = p
    return found


def read_split(path: str | os.PathLike) -> list[str]:
    """Stems listed in a split file, in file order, duplicates dropped. A trailing image extension is ignored."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EGMTError(f"{path}: cannot read split file ({e})") from None
    stems: dict[str, None] = {}
    for line in lines:
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        if Path(s).suffix.lower() in IMAGE_EXTENSIONS:
            s = Path(s).stem
        stems[s] = None
    return list(stems)


def find_pairs(root: str | os.PathLike, split: str | os.PathLike | None = None) -> list[Pair]:
    """All pairs under ``root`` (or only the stems of ``split``), sorted by name.

    ``split`` is a path relative to ``root`` (``train.txt``), else relative to the working
    folder (a split file kept in the repository, ``splits/roadscene-val.txt``), or absolute.
    Every selected stem must exist in both ``ir/`` and ``vi/``; a file without its partner is
    an error naming it (files outside the split are not checked).
    """
    root = Path(root)
    split_path = None
    if split is not None:
        split_path = Path(split)
        if not split_path.is_absolute() and ((root / split_path).is_file() or not split_path.is_file()):
            split_path = root / split_path
    pairs, problems = match_folders(root / "ir", root / "vi", split_path)
    if problems:
        raise EGMTError(problems[0])
    if not pairs:
        where = f"{root} (split {split})" if split is not None else str(root)
        raise EGMTError(f"{where}: no image pairs found")
    return pairs


def match_folders(
    ir_dir: str | os.PathLike,
    vi_dir: str | os.PathLike,
    split: str | os.PathLike | None = None,
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
) -> tuple[list[Pair], list[str]]:
    """Pair the images of two folders by stem, leniently: the pairs found, and one message per problem.

    ``extensions``: which files count (images by default; :data:`egmt.data.video.VIDEO_EXTENSIONS` for clips).
    A missing folder or split file raises :class:`EGMTError`; a file without its partner, or a
    split stem with no image, is reported in the list and left out, so a caller can go on.
    """
    folders = {"ir": Path(ir_dir), "vi": Path(vi_dir)}
    for m, folder in folders.items():
        if not folder.is_dir():
            raise EGMTError(f"{folder}: missing '{m}/' folder (a dataset is ROOT/ir/STEM.ext + ROOT/vi/STEM.ext)")
    ir, vi = (_index_folder(f, extensions) for f in folders.values())
    problems: list[str] = []
    if split is None:
        stems = sorted(set(ir) | set(vi))
    else:
        split = Path(split)
        if not split.is_file():
            raise EGMTError(f"{split}: split file not found")
        stems = read_split(split)
    for s in stems:
        if s not in ir and s not in vi:
            problems.append(f"{split}: stem {s!r} has no pair under {folders['ir'].parent}")
        elif s not in ir:
            problems.append(f"{vi[s]}: no infrared partner (expected {folders['ir']}/{s}.*)")
        elif s not in vi:
            problems.append(f"{ir[s]}: no visible partner (expected {folders['vi']}/{s}.*)")
    pairs = [Pair(name=s, ir=ir[s], vi=vi[s]) for s in sorted(stems) if s in ir and s in vi]
    return pairs, problems


def _is_grey_rgb(a: np.ndarray) -> bool:
    """True for an ``[H, W, 3]`` array whose three channels are identical."""
    return a.ndim == 3 and bool((a[..., 0] == a[..., 1]).all() and (a[..., 0] == a[..., 2]).all())


def _to_chw(a: np.ndarray) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def load_pair(pair: Pair) -> LoadedPair:
    """Read both images; return the IR's Y, the visible's Y and its CbCr (None if grey)."""
    return pair_from_arrays(pair.name, read_image(pair.ir), read_image(pair.vi), pair.ir, pair.vi)


def pair_from_arrays(
    name: str,
    ir_np: np.ndarray,
    vi_np: np.ndarray,
    ir_label: object = "infrared",
    vi_label: object = "visible",
    min_size: int = 0,
) -> LoadedPair:
    """Y channels (and the visible's CbCr) of two images as :func:`read_image` returns them.

    An image stored as RGB with R == G == B (TNO's PNGs) is treated as grey: its channel is
    taken as is, exactly, and a grey visible gets no CbCr (so it stays grey after fusion).
    The labels name the images in the error raised when their sizes differ, or when either
    side is under ``min_size`` pixels (fusion passes :data:`MIN_FUSION_SIZE`).
    """
    if ir_np.shape[:2] != vi_np.shape[:2]:
        (hi, wi), (hv, wv) = ir_np.shape[:2], vi_np.shape[:2]
        raise EGMTError(f"{ir_label} is {wi}x{hi} but {vi_label} is {wv}x{hv} (W x H): IR and visible sizes differ")
    h, w = ir_np.shape[:2]
    if h < min_size or w < min_size:
        raise EGMTError(f"{ir_label}: {w}x{h} (W x H) is smaller than the {min_size}x{min_size} minimum for fusion")
    if _is_grey_rgb(ir_np):
        ir_np = ir_np[..., 0]
    if _is_grey_rgb(vi_np):
        vi_np = vi_np[..., 0]
    ir_y, _ = split_luma(_to_chw(ir_np))
    vi_y, vi_cbcr = split_luma(_to_chw(vi_np))
    return LoadedPair(
        name=name, ir=ir_y.contiguous(), vi=vi_y.contiguous(), vi_cbcr=None if vi_cbcr is None else vi_cbcr.contiguous()
    )
