"""Time each fusion metric on a 640x480 and a 128x128 (ir, vi, fused) triple.

    python benchmarks/bench_metrics.py [--repeat 3] [--threads 2] [--metrics all]

Prints, per metric, the best wall time and the CPU time of that run (min of --repeat),
with per-size caches (phase-congruency filter bank, dmey wavelet) warm but no cached
source maps, i.e. the cost of scoring one new triple in a batch of same-size images.
Then the time of compute_fusion_metrics for the fifteen default metrics together, with
1 thread and with --threads. Goal (issue): all fifteen on 640x480 in < 2 s on 2 cores.
On a shared machine wall time includes waiting for a core; CPU time does not.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from egmt import metrics as M  # noqa: E402
from egmt.metrics import phase  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "metrics"


def _load(case: str, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """A reference triple if present (real content), else smooth random images."""
    folder = REFERENCE / case
    if folder.is_dir():
        from PIL import Image

        imgs = [np.array(Image.open(folder / f"{n}.png")) for n in ("ir", "vi", "fused")]
        return (*imgs, f"{case} ({imgs[0].shape[1]}x{imgs[0].shape[0]})")
    from scipy import ndimage

    rng = np.random.default_rng(0)
    a, b = (ndimage.gaussian_filter(rng.normal(size=size), 2) for _ in range(2))
    a = np.round((a - a.min()) / np.ptp(a) * 255).astype(np.uint8)
    b = np.round((b - b.min()) / np.ptp(b) * 255).astype(np.uint8)
    f = ((a.astype(np.uint16) + b) // 2).astype(np.uint8)
    return a, b, f, f"synthetic ({size[1]}x{size[0]})"


def _time(fn, repeat: int) -> tuple[float, float]:
    """(best wall s, CPU s of that run) over ``repeat`` runs after one warm-up."""
    fn()
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        phase.clear_cache()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best[0]:
            best = (wall, cpu)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--metrics", default="default", help="metric names or a group (default: the fifteen)")
    args = parser.parse_args()
    names = M.resolve_metric_names(args.metrics)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.processor() or platform.machine()}, {cores} cores available, load average {load:.2f}")
    print(f"# numpy {np.__version__}; best of {args.repeat}; times in ms\n")

    triples = [_load("msrs_00016N_blend", (480, 640)), _load("tno01_avg_crop128", (128, 128))]
    per_metric: dict[str, list[str]] = {}
    totals = []
    for a, b, f, label in triples:
        for name in names:
            wall, cpu = _time(lambda: M.compute_fusion_metrics(a, b, f, names=[name], threads=1), args.repeat)
            per_metric.setdefault(name, []).append(f"{wall * 1e3:9.1f} {cpu * 1e3:9.1f}")
        row = []
        for threads in (1, args.threads):
            wall, cpu = _time(lambda: M.compute_fusion_metrics(a, b, f, names=names, threads=threads), args.repeat)
            row.append(f"{wall * 1e3:9.1f} {cpu * 1e3:9.1f}")
        totals.append(row)

    cold = []
    for a, _, _, _ in triples:
        phase._filter_bank.cache_clear()
        t0 = time.perf_counter()
        phase._filter_bank(*a.shape)
        cold.append(f"{(time.perf_counter() - t0) * 1e3:9.1f} {'':9s}")

    head = " | ".join(f"{t[3]:^19s}" for t in triples)
    print(f"{'metric':14s} | {head}")
    print(f"{'':14s} | " + " | ".join(f"{'wall':>9s} {'cpu':>9s}" for _ in triples))
    for name, cells in per_metric.items():
        print(f"{name:14s} | " + " | ".join(cells))
    print(f"{'all, 1 thread':14s} | " + " | ".join(t[0] for t in totals))
    print(f"{f'all, {args.threads} threads':14s} | " + " | ".join(t[1] for t in totals))
    print(f"{'PC bank (once':14s} | " + " | ".join(cold) + "   <- per image size, not in the rows above)")


if __name__ == "__main__":
    main()
