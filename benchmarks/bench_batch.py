"""Batch fusion throughput: 1 process x 2 threads against 2 processes x 1 thread (torchrun).

Fuses the same folder of 640x480 M3SVD pairs (the first ``--pairs``, copied into a temporary
folder) caption-free with the shipped checkpoint, under ``torchrun --nproc_per_node P`` with
``OMP_NUM_THREADS=T``, into a fresh output folder each time. Reported per configuration:
pairs per second end to end (wall clock of the whole command: start-up, model load, fusion,
manifest) and in steady state (pairs over the busiest rank's summed per-pair seconds, from
``manifest.csv``). The two configurations alternate for ``--repeats`` rounds and the best of
each is kept, so a load that comes and goes hits both alike; the ratio is the result.

    python benchmarks/bench_batch.py                     # writes its section of docs/speed-batch-video.md
    python benchmarks/bench_batch.py --pairs 8 --repeats 1 --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from egmt.bench.profile import machine_description  # noqa: E402
from egmt.data.pairs import find_pairs  # noqa: E402
from egmt.fileio import write_text_atomic  # noqa: E402

M3SVD = REPO.parent / "shared" / "data" / "m3svd"
DOC = REPO / "docs" / "speed-batch-video.md"
CONFIGS = [(1, 2), (2, 1)]  # (processes, threads per process)


def replace_section(path: Path, name: str, body: str) -> None:
    """Put ``body`` between ``<!-- name -->`` and ``<!-- /name -->`` in ``path`` (appended if absent),
    so that each benchmark script rewrites its own section of a shared doc."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = path.read_text() if path.is_file() else "# Speed of batch and video fusion on this CPU\n\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_text_atomic(path, text)


def load_average() -> float:
    return os.getloadavg()[0]


def run_config(data: Path, out: Path, processes: int, threads: int) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
           "-m", "egmt", "fuse", "--ir", str(data / "ir"), "--visible", str(data / "vi"), "-o", str(out), "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    load = load_average()
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    busy = defaultdict(float)
    with (out / "manifest.csv").open() as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        busy[r["rank"]] += float(r["seconds"])
    return {"pairs": len(rows), "wall": wall, "steady": len(rows) / max(busy.values()), "load": (load, load_average())}


def markdown(results: dict, n: int, repeats: int, started: str) -> str:
    m = machine_description("cpu")
    base = results[CONFIGS[0]]
    lines = ["## Batch fusion: processes against threads", "",
             "Made by `python benchmarks/bench_batch.py` (do not edit by hand).", "",
             f"- Date: {started}; machine: {m['cpu']}; torch {m['torch']}. The machine was shared with a model "
             "training run and other jobs, and this ran under `nice -n 19` (1-minute load average in the table), so "
             "only the ratio between rows measured in the same run means anything.",
             f"- Work: `egmt fuse` caption-free with the shipped checkpoint on {n} M3SVD pairs (640×480), "
             f"under `torchrun --nproc_per_node P` with `OMP_NUM_THREADS=T`; best of {repeats} alternating rounds.",
             "- End to end: pairs over the wall clock of the whole command (start-up and model load included); "
             "steady: pairs over the busiest rank's summed per-pair seconds (manifest.csv).", "",
             "| Processes × threads | Pairs | End to end (pairs/s) | Steady (pairs/s) | vs 1 × 2 (end to end) | vs 1 × 2 (steady) | Load |",
             "|:---|---:|---:|---:|---:|---:|:---|"]
    for (p, t), r in results.items():
        lines.append(f"| {p} × {t} | {r['pairs']} | {r['pairs'] / r['wall']:.3f} | {r['steady']:.3f} | "
                     f"{base['wall'] / r['wall']:.2f}× | {r['steady'] / base['steady']:.2f}× | "
                     f"{r['load'][0]:.2f} → {r['load'][1]:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=16, help="M3SVD pairs fused (default 16)")
    p.add_argument("--repeats", type=int, default=2, help="alternating rounds; the best of each configuration is kept")
    p.add_argument("--out", type=Path, default=DOC, help=f"Markdown doc whose section is rewritten (default {DOC.relative_to(REPO)})")
    args = p.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    pairs = find_pairs(M3SVD)[: args.pairs]
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        for pair in pairs:
            for m in ("ir", "vi"):
                (data / m).mkdir(parents=True, exist_ok=True)
                shutil.copy(getattr(pair, m), data / m / f"{pair.name}{getattr(pair, m).suffix}")
        for k in range(args.repeats):
            for processes, threads in CONFIGS:
                r = run_config(data, Path(tmp) / f"out{k}_{processes}x{threads}", processes, threads)
                print(f"{processes} x {threads}: {r}", flush=True)
                best = results.get((processes, threads))
                if best is None or r["wall"] < best["wall"]:
                    results[(processes, threads)] = r
    replace_section(args.out, "bench_batch", markdown(results, len(pairs), args.repeats, started))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
