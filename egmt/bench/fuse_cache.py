"""Fusion with a cache: a fused image is reused while it is newer than what it depends on and
the stamp in ``fused_with.json`` is unchanged (see :mod:`egmt.bench.benchmark`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from egmt.data.io import write_image
from egmt.data.pairs import Pair
from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic as write_atomic
from egmt.infer.fuser import EGMTFuser, caption_free_policy
from egmt.infer.run import FuseJob
from egmt.train.checkpoint import MODEL_FILE

STAMP_FILE = "fused_with.json"


SCORE_CACHE = "scores.csv"  # per dataset (and per entity-effect folder): see egmt.bench.score_cache


@dataclass
class FuseStats:
    """One (dataset, method): pairs fused now, reused from the cache, and failures by name."""

    fused: int = 0
    cached: int = 0
    failures: list[str] = field(default_factory=list)


def _fresh(path: Path, newer_than: float | None) -> bool:
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return False
    return newer_than is None or mtime > newer_than


def fuse_cached(
    job: FuseJob,
    pairs: Sequence[Pair],
    out_dir: Path,
    *,
    newer_than: float | None = None,
    stamp: dict | None = None,
    force: bool = False,
    progress: bool = True,
    desc: str = "fuse",
) -> FuseStats:
    """Fuse ``pairs`` into ``out_dir/STEM.png`` with ``job``, skipping every image that is
    already there and newer than ``newer_than`` (a timestamp), unless ``force`` or the
    ``stamp`` recorded in ``out_dir/fused_with.json`` differs from the given one (another
    checkpoint). A pair that fails is reported and its stale image, if any, removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp_path = out_dir / STAMP_FILE
    redo_all = force
    if stamp is not None and not redo_all:
        try:
            redo_all = json.loads(stamp_path.read_text(encoding="utf-8")) != stamp
        except (OSError, ValueError):
            redo_all = True
    todo = [p for p in pairs if redo_all or not _fresh(out_dir / f"{p.name}.png", newer_than)]
    stats = FuseStats(cached=len(pairs) - len(todo))
    for pair in tqdm(todo, desc=desc, unit="pair", disable=not progress or not todo, dynamic_ncols=True):
        target = out_dir / f"{pair.name}.png"
        try:
            write_image(target, job.fuse_pair(pair).image)
            stats.fused += 1
        except EGMTError as e:
            stats.failures.append(f"{pair.name}: {e}")
            target.unlink(missing_ok=True)
    if stamp is not None:
        write_atomic(stamp_path, json.dumps(stamp, indent=2) + "\n")
    return stats


def egmt_cache_key(
    fuser: EGMTFuser, folder: Path, sha: str, ann_file: Path | None, threshold: float, **extra
) -> tuple[float, dict]:
    """What egmt's fused images depend on: a time they must be newer than (the weights, the
    annotation file) and a stamp (the weights' hash, the whole model config (e.g. entity guidance
    or the text tokens, which config.json holds and the weights' hash does not), where the
    entities came from, the caption-free threshold and policy, and ``extra``; not paths: a moved
    checkpoint is the same)."""
    newer = (folder / MODEL_FILE).stat().st_mtime
    if ann_file is not None:
        newer = max(newer, ann_file.stat().st_mtime)
    stamp = {
        "sha256": sha,
        "annotations": ann_file.name if ann_file else None,
        "threshold": threshold,
        "caption_free": caption_free_policy(fuser.validation)[1],
        "model": asdict(fuser.model.config),
        **extra,
    }
    return newer, stamp
