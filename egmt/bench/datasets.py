"""The bundled test sets and the methods the benchmark runs on them: the pairs of a set (its
split only), its annotation file, and folders of links to the split's sources and to the
learned peers' images of its pairs."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from egmt.baselines import BASELINES, DISPLAY_NAMES
from egmt.data.pairs import Pair, find_pairs
from egmt.errors import EGMTError


@dataclass(frozen=True)
class DatasetSpec:
    """A bundled test set: folder under the data root, split file (None: every pair), titles."""

    folder: str
    title: str
    split: str | None
    paper_table: str  # the paper's table for its fusion results


DATASETS: dict[str, DatasetSpec] = {
    "tno": DatasetSpec("tno", "TNO", None, "Table I"),
    "roadscene": DatasetSpec("roadscene", "RoadScene", "test.txt", "Table II"),
    "msrs": DatasetSpec("msrs", "MSRS", None, "Table IV"),
}
METHODS: tuple[str, ...] = ("egmt", *BASELINES)
DISPLAY: dict[str, str] = {"egmt": "EGMT (ours)", **DISPLAY_NAMES}


def dataset_pairs(data: Path, name: str) -> list[Pair]:
    """The pairs of bundled dataset ``name`` under the data root (its split only, if it has one)."""
    spec = dataset_spec(name)
    root = Path(data) / spec.folder
    if not root.is_dir():
        raise EGMTError(f"{root}: dataset folder not found (give the data root with --data)")
    return find_pairs(root, spec.split)


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise EGMTError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]


def annotation_file(annotations: Path | None, name: str) -> Path | None:
    """``annotations/DATASET.jsonl`` if that file exists, else None (EGMT then runs caption-free)."""
    if annotations is None:
        return None
    path = Path(annotations) / f"{name}.jsonl"
    return path if path.is_file() else None


def link_files(paths: Sequence[Path], folder: Path) -> Path:
    """``folder`` made afresh, holding a link to each of ``paths`` (a copy where links are not allowed)."""
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for path in paths:
        src = Path(path).resolve()
        dst = folder / src.name
        try:
            os.symlink(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    return folder


def source_folders(data: Path, name: str, pairs: Sequence[Pair], work: Path) -> tuple[Path, Path]:
    """Folders of the pairs' sources for :func:`evaluate`: the dataset's own ``ir/`` and ``vi/``
    when it has no split, else ``work/sources/{ir,vi}`` holding links to the split's files only
    (so the other pairs are not reported as missing). Copies where links are not allowed."""
    spec = dataset_spec(name)
    if spec.split is None:
        root = Path(data) / spec.folder
        return root / "ir", root / "vi"
    ir = link_files([p.ir for p in pairs], work / "sources" / "ir")
    return ir, link_files([p.vi for p in pairs], work / "sources" / "vi")


def find_peers(peers: Path | None, name: str) -> dict[str, Path]:
    """``{METHOD: PEERS/METHOD/DATASET}`` for each peer that has images of dataset ``name``
    (methods sorted by name); ``{}`` when ``peers`` is None or not a folder."""
    if peers is None or not Path(peers).is_dir():
        return {}
    found = {}
    for method in sorted(p.name for p in Path(peers).iterdir() if p.is_dir() and not p.name.startswith(".")):
        folder = Path(peers) / method / dataset_spec(name).folder
        if folder.is_dir():
            if method in METHODS:
                raise EGMTError(f"{Path(peers) / method}: a peer may not be named like an egmt method ({method})")
            found[method] = folder
    return found


def peer_folders(peers: dict[str, Path], pairs: Sequence[Pair], work: Path) -> dict[str, Path]:
    """Each peer's images of ``pairs`` only (``work/peers/METHOD``, links), so that a peer is
    scored on exactly the pairs egmt is scored on; a pair the peer lacks is left out (and
    reported missing by :func:`evaluate`)."""
    out = {}
    for method, folder in peers.items():
        files = [folder / f"{p.name}.png" for p in pairs]
        out[method] = link_files([f for f in files if f.is_file()], work / "peers" / method)
    return out
