"""Fuse a large collection with several processes: ``torchrun ... -m egmt fuse --ir DIR --vi DIR -o OUT``.

Each process (rank) takes its own share of the pairs, sorted by name and dealt round-robin
(pair i goes to rank ``i % WORLD_SIZE``), from torchrun's ``RANK`` / ``WORLD_SIZE``: every pair
is fused by exactly one rank, on one machine or several (``--nnodes``, OUT on a shared disk).
A pair whose output already exists is skipped: outputs are written atomically, so an existing
file is a complete one, and a killed job run again resumes where it stopped. At the end the
ranks gather their rows (over gloo, CPU tensors, whatever the fusion device) and rank 0
writes ``OUT/manifest.csv`` (one row per pair: name, status fused / exists / failed,
seconds, rank, output, and what the fusion reports) and prints one summary.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import torch.distributed as dist
from tqdm.auto import tqdm

from egmt.data.io import write_image
from egmt.data.pairs import Pair, match_folders
from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic
from egmt.device import resolve_device
from egmt.train.distributed import DistInfo

MANIFEST = "manifest.csv"
#: How long a rank waits for the slowest one at the end (gloo's default, 30 min, is too short
#: for a large collection whose shares end at different times).
GATHER_TIMEOUT = timedelta(days=7)


def rank_device(name: str, info: DistInfo) -> str:
    """``auto``: this rank's own GPU (``cuda:LOCAL_RANK``) if there are GPUs, else the CPU."""
    return str(resolve_device(name, info.local_rank)) if name == "auto" else name


def shard(pairs: list[Pair], rank: int, world_size: int) -> list[Pair]:
    """This rank's share: the pairs sorted by name, every ``world_size``-th from ``rank``."""
    return sorted(pairs, key=lambda p: p.name)[rank::world_size]


def _gather(rows: list[dict], info: DistInfo) -> list[dict]:
    """Every rank's rows, on every rank (just ``rows`` for one process)."""
    if info.world_size == 1:
        return rows
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo", timeout=GATHER_TIMEOUT)
    try:
        parts: list = [None] * info.world_size
        dist.all_gather_object(parts, rows)
    finally:
        if created:
            dist.destroy_process_group()
    return [r for part in parts for r in part]


def _remove_stale_temporaries(out: Path, hidden: list[str]) -> None:
    """Delete what a killed run left of ``out``: the temporary files of
    :func:`egmt.fileio.atomic_path` (``.STEM.XXXXXXXX SUFFIX``, mkstemp's eight random characters,
    never renamed into place). ``hidden``: the output folder's dot-file names, listed once per run,
    so a pair costs no folder scan; a pair ``a`` never matches the temporary of a pair ``a.b``."""
    temporary = re.compile(rf"\.{re.escape(out.stem)}\.[a-z0-9_]{{8}}{re.escape(out.suffix)}")
    for name in hidden:
        if temporary.fullmatch(name):
            (out.parent / name).unlink(missing_ok=True)


def write_manifest(path: Path, rows: list[dict]) -> None:
    """The rows (sorted by name) as CSV, atomically; columns: the fixed ones, then any others."""
    fields = ["name", "status", "seconds", "rank", "output"]
    fields += sorted({k for r in rows for k in r} - set(fields))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, restval="")
    w.writeheader()
    w.writerows(sorted(rows, key=lambda r: r["name"]))
    write_text_atomic(path, buf.getvalue())


class BatchReport:
    """What a sharded run did (rank 0: all ranks; another rank: its own share)."""

    def __init__(self, rows: list[dict], problems: list[str], info: DistInfo, seconds: float, unit: str):
        self.rows, self.info, self.seconds, self.unit = rows, info, seconds, unit
        self.failures = list(problems) + [f"{r['name']}: {r['detail']}" for r in rows if r["status"] == "failed"]
        self.written = [Path(r["output"]) for r in rows if r["status"] == "fused"]

    def summary(self) -> str:
        n = Counter(r["status"] for r in self.rows)
        who = f"{self.info.world_size} rank(s)" if self.info.is_main else f"rank {self.info.rank}"
        rate = f", {n['fused'] / self.seconds:.2f} {self.unit}s/s" if self.seconds > 0 and n["fused"] else ""
        return (
            f"{who}: fused {n['fused']} {self.unit}(s), {n['exists']} already there, {n['failed']} failed, "
            f"of {len(self.rows)} in {self.seconds:.1f} s{rate}"
        )


def run_sharded(
    pairs: list[Pair],
    problems: list[str],
    out_dir: Path,
    out_for: Callable[[Pair], Path],
    process: Callable[[Pair, Path], dict],
    info: DistInfo,
    unit: str = "pair",
    progress: bool = True,
) -> BatchReport:
    """Fuse this rank's share of ``pairs`` with ``process(pair, output) -> extra columns``
    (it writes ``output``; EGMTError: the pair failed), then gather and write the manifest.
    ``progress``: a bar over this rank's pairs on stderr."""
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    mine = shard(pairs, info.rank, info.world_size)
    hidden = [name for name in os.listdir(out_dir) if name.startswith(".")]
    for pair in tqdm(mine, desc=f"fuse, rank {info.rank}/{info.world_size}", unit=unit, disable=not progress or len(mine) < 2):
        out = out_for(pair)
        row = {"name": pair.name, "rank": info.rank, "output": str(out)}
        start = time.perf_counter()
        if out.is_file():
            rows.append({**row, "status": "exists", "seconds": ""})
            continue
        _remove_stale_temporaries(out, hidden)
        try:
            extra = process(pair, out)
            rows.append({**row, **extra, "status": "fused", "seconds": f"{time.perf_counter() - start:.4f}"})
        except EGMTError as e:
            rows.append({**row, "status": "failed", "seconds": "", "detail": str(e)})
    everything = _gather(rows, info)
    seconds = time.perf_counter() - t0
    if not info.is_main:
        return BatchReport(rows, [], info, seconds, unit)
    write_manifest(out_dir / MANIFEST, everything)
    return BatchReport(everything, problems, info, seconds, unit)


def fuse_image_folders(job, ir_dir: Path, vi_dir: Path, out_dir: Path, split: str | None, info: DistInfo) -> BatchReport:
    """This rank's share of two image folders fused by ``job`` (a FuseJob) into ``out_dir/STEM.png``."""
    pairs, problems = match_folders(ir_dir, vi_dir, split)

    def process(pair: Pair, out: Path) -> dict:
        result = job.fuse_pair(pair)
        write_image(out, result.image)
        return {"entity_source": result.entity_source, "entities": "; ".join(result.entities)}

    return run_sharded(pairs, problems, out_dir, lambda p: out_dir / f"{p.name}.png", process, info, progress=job.progress)
