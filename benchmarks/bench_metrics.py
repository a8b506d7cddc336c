"""Time each fusion metric on a 640x480 and a 128x128 (ir, vi, fused) triple.

    python benchmarks/bench_metrics.py [--repeat 3] [--threads 2] [--metrics all] [--out docs/metrics-speed.md]

Prints, per metric, the best wall time and the CPU time of that run (min of --repeat),
with per-size caches (phase-congruency filter bank, dmey wavelet) warm but no cached
source work, i.e. the cost of scoring one new triple in a batch of same-size images.
Then the time of compute_fusion_metrics for the fifteen default metrics together, with
1 thread and with --threads; the same when the sources were already scored against
another fused image (their phase-congruency maps and FMI features cached, as in
``egmt evaluate`` with several methods); and each profile's full metric set (vifb,
cddfuse). Goal (issue): all fifteen on 640x480 in < 2 s on 2 cores.
On a shared machine wall time includes waiting for a core; CPU time does not: the load
average is printed before and after. The table is printed and written to --out (Markdown).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from egmt import metrics as M  # noqa: E402
from egmt.fileio import write_text_atomic  # noqa: E402
from egmt.metrics import fmi, phase  # noqa: E402

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


def _clear_source_caches() -> None:
    phase.clear_cache()
    fmi.clear_cache()


def _time(fn, repeat: int, cached_sources: bool = False) -> tuple[float, float]:
    """(best wall s, CPU s of that run) over ``repeat`` runs after one warm-up; source
    caches cleared before each run unless ``cached_sources``."""
    fn()
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        if not cached_sources:
            _clear_source_caches()
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
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "metrics-speed.md",
                        help="Markdown file for the results (default docs/metrics-speed.md)")
    args = parser.parse_args()
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    names = M.resolve_metric_names(args.metrics)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    say(f"# {platform.processor() or platform.machine()}, {cores} cores available, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    say(f"# numpy {np.__version__}; best of {args.repeat}; times in ms\n")

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
        wall, cpu = _time(lambda: M.compute_fusion_metrics(a, b, f, names=names, threads=args.threads), args.repeat,
                          cached_sources=True)
        row.append(f"{wall * 1e3:9.1f} {cpu * 1e3:9.1f}")
        for profile in ("vifb", "cddfuse"):
            for threads in (1, args.threads):
                wall, cpu = _time(lambda: M.compute_fusion_metrics(a, b, f, profile=profile, threads=threads),
                                  args.repeat)
                row.append(f"{wall * 1e3:9.1f} {cpu * 1e3:9.1f}")
        totals.append(row)

    cold = []
    for a, _, _, _ in triples:
        phase._filter_bank.cache_clear()
        t0 = time.perf_counter()
        phase._filter_bank(*a.shape)
        cold.append(f"{(time.perf_counter() - t0) * 1e3:9.1f} {'':9s}")

    head = " | ".join(f"{t[3]:^19s}" for t in triples)
    say(f"{'metric':30s} | {head}")
    say(f"{'':30s} | " + " | ".join(f"{'wall':>9s} {'cpu':>9s}" for _ in triples))
    for name, cells in per_metric.items():
        say(f"{name:30s} | " + " | ".join(cells))
    labels = ["all, 1 thread", f"all, {args.threads} threads", f"all, {args.threads} thr, cached sources",
              "vifb (13), 1 thread", f"vifb (13), {args.threads} threads",
              "cddfuse (12), 1 thread", f"cddfuse (12), {args.threads} threads"]
    for k, label in enumerate(labels):
        say(f"{label:30s} | " + " | ".join(t[k] for t in totals))
    say(f"{'PC bank (once':30s} | " + " | ".join(cold) + "   <- per image size, not in the rows above)")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    say(f"\n# load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    write_text_atomic(args.out, "\n".join([
        "# Fusion metric speed on this CPU", "",
        "Made by `python benchmarks/bench_metrics.py` (do not edit by hand); " + when + ".",
        "Goal (issue 19): the fifteen paper metrics on one 640x480 triple in < 2 s on 2 cores.",
        "Rows: best of --repeat runs, wall and CPU milliseconds; other jobs may share the machine",
        "(load average before and after), so compare CPU times and rows of one run.", "",
        "```", *lines, "```", ""]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
