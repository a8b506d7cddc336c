"""Score fused images of one or more methods against their (ir, vi) sources.

Images are matched by file stem across the folders (``ir/00016N.png``, ``vi/00016N.jpg``,
``fused_a/00016N.png`` ...). Every triple is scored with :mod:`egmt.metrics` in worker
processes; the results are written to ``OUT``:

* ``per_image.csv``: one row per (method, image), a column per metric, full precision
  (an empty cell where a metric is undefined for that image);
* ``summary.csv`` and ``summary.md``: one row per method, the mean of each metric over
  its images, in the layout of the paper's Tables I-IV (↑/↓ in the header, best in bold).

Missing, unreadable or mismatched files are reported by name and skipped; the run goes on.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from egmt.bench.score_cache import ScoreCache, file_stamp
from egmt.data.io import IMAGE_EXTENSIONS, read_image, to_uint8
from egmt.errors import EGMTError
from egmt.files import PER_IMAGE_FILE, SUMMARY_CSV_FILE, SUMMARY_MD_FILE
from egmt.metrics import compute_fusion_metrics, get_profile, resolve_metric_names, rgb2gray


def grey_u8(image: np.ndarray) -> np.ndarray:
    """An image (floats in [0, 1] or uint8; grey or RGB) as the 8-bit grey image the metrics score:
    rounded as :func:`egmt.data.io.write_image` stores it, RGB through MATLAB's ``rgb2gray``."""
    u8 = to_uint8(image)
    return rgb2gray(u8) if u8.ndim == 3 else u8


def read_grey_u8(path: Path) -> np.ndarray:
    """An image file as grey uint8 ``[H, W]``, as the metrics' references take it.

    Read by :func:`egmt.data.io.read_image` (EGMTError naming the file for unreadable or
    truncated files; alpha dropped); 8-bit values come back exactly, 16-bit ones are
    rounded to 8 bits, and RGB goes through MATLAB's ``rgb2gray``.
    """
    return grey_u8(read_image(path))


def list_images(folder: Path, label: str, problems: list[str], ambiguous: set[str] | None = None) -> dict[str, Path]:
    """{stem: path} of the images in a folder. A stem present with two extensions is
    ambiguous: reported in ``problems``, added to ``ambiguous`` and left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EGMTError(f"{label} folder not found: {folder}")
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            found.setdefault(p.stem, []).append(p)
    out = {}
    for stem, paths in found.items():
        if len(paths) > 1:
            problems.append(f"{label}: '{stem}' is ambiguous ({', '.join(p.name for p in paths)}); skipped")
            if ambiguous is not None:
                ambiguous.add(stem)
        else:
            out[stem] = paths[0]
    return out


def _natural_key(stem: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", stem)]


@dataclass
class EvaluationSummary:
    """What :func:`evaluate` computed and wrote."""

    metrics: list[str]
    methods: list[str]
    mean: dict[str, dict[str, float]]  # method -> metric -> mean over the method's images
    counts: dict[str, int]  # method -> images scored
    problems: list[str] = field(default_factory=list)  # per-file problems, by name
    per_image_csv: Path | None = None
    summary_csv: Path | None = None
    summary_md: Path | None = None
    profile: str = "paper"  # whose metric conventions (egmt.metrics.profiles)

    def best(self, metric: str) -> list[str]:
        """The method(s) with the best mean for ``metric``."""
        hib = get_profile(self.profile).metrics[metric].higher_is_better
        vals = {m: self.mean[m][metric] for m in self.methods if not math.isnan(self.mean[m][metric])}
        if not vals:
            return []
        target = max(vals.values()) if hib else min(vals.values())
        return [m for m, v in vals.items() if v == target]


def _score_stem(
    stem: str, ir_path: Path, vi_path: Path, fused: list[tuple[str, Path]], metrics: list[str], profile: str = "paper"
) -> list[tuple[str, dict[str, float] | None, list[str]]]:
    """Score every method's image for one stem (sources read once; their phase-congruency
    maps are cached across methods). Returns [(method, values or None, [problems])]."""
    try:
        ir = read_grey_u8(ir_path)
        vi = read_grey_u8(vi_path)
    except EGMTError as e:
        return [(m, None, [str(e)] if i == 0 else []) for i, (m, _) in enumerate(fused)]
    if ir.shape != vi.shape:
        msg = f"{stem}: ir {ir.shape[1]}x{ir.shape[0]} and vi {vi.shape[1]}x{vi.shape[0]} differ in size; skipped"
        return [(m, None, [msg] if i == 0 else []) for i, (m, _) in enumerate(fused)]
    out: list[tuple[str, dict[str, float] | None, list[str]]] = []
    for method, path in fused:
        try:
            img = read_grey_u8(path)
            if img.shape != ir.shape:
                raise EGMTError(
                    f"{path}: size {img.shape[1]}x{img.shape[0]} differs from the sources' {ir.shape[1]}x{ir.shape[0]}"
                )
            errors: dict[str, str] = {}
            values = compute_fusion_metrics(ir, vi, img, metrics, profile=profile, threads=1, errors=errors)
            out.append((method, values, [f"{method}/{stem}: {msg}" for msg in errors.values()]))
        except EGMTError as e:
            out.append((method, None, [f"{method}/{stem}: {e}" if str(path) not in str(e) else str(e)]))
    return out


def _init_worker() -> None:
    """One BLAS thread per worker process: the processes already use every core."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - optional
        pass


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def evaluate(
    ir_dir: Path,
    vi_dir: Path,
    fused: Mapping[str, Path],
    out_dir: Path,
    metrics: str | Iterable[str] | None = None,
    workers: int | None = None,
    *,
    profile: str = "paper",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    cache: str | os.PathLike | None = None,
) -> EvaluationSummary:
    """Score the fused images of each method (``{name: folder}``) against ``ir_dir`` and
    ``vi_dir`` and write per_image.csv, summary.csv and summary.md to ``out_dir``.

    metrics: names or groups for :func:`egmt.metrics.resolve_metric_names` (default: the
    profile's defaults, the fifteen for 'paper'). profile: 'paper' (default), 'vifb' or
    'cddfuse', whose metric set and conventions to follow. workers: processes (default: all cores; 1 runs in this process). Workers
    are spawned (safe with threads or CUDA in the caller), so a script that calls this
    with workers > 1 needs the usual ``if __name__ == "__main__":`` guard.
    Raises EGMTError for a missing folder, no source images, or no triple to score;
    per-file problems are collected in ``summary.problems`` (and passed to ``log``).
    cache: a :class:`~egmt.bench.score_cache.ScoreCache` CSV: a triple whose three files are
    unchanged since it was scored under this profile is read from it, not scored again."""
    profile = get_profile(profile).name
    names = resolve_metric_names(metrics, profile)
    if not fused:
        raise EGMTError("no fused folder given (--fused NAME=DIR)")
    problems: list[str] = []
    unclear: set[str] = set()
    irs = list_images(ir_dir, "ir", problems, unclear)
    vis = list_images(vi_dir, "vi", problems, unclear)
    if not irs:
        raise EGMTError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in ir folder {ir_dir}")
    for stem in sorted(set(irs) - set(vis) - unclear, key=_natural_key):
        problems.append(f"vi: '{stem}' missing (present in ir); skipped")
    for stem in sorted(set(vis) - set(irs) - unclear, key=_natural_key):
        problems.append(f"ir: '{stem}' missing (present in vi); skipped")
    stems = sorted(set(irs) & set(vis), key=_natural_key)

    methods = list(fused)
    per_method: dict[str, dict[str, Path]] = {}
    for method in methods:
        unclear_m: set[str] = set()
        files = list_images(Path(fused[method]), f"fused {method}", problems, unclear_m)
        for stem in stems:
            if stem not in files and stem not in unclear_m:
                problems.append(f"fused {method}: '{stem}' missing; skipped")
        for stem in sorted(set(files) - set(stems), key=_natural_key):
            problems.append(f"fused {method}: '{stem}' has no ir/vi pair; ignored")
        per_method[method] = files

    scores = ScoreCache(cache) if cache is not None else None
    results: dict[tuple[str, str], dict[str, float]] = {}
    stamps: dict[tuple[str, str], str] = {}
    jobs = []
    for stem in stems:
        todo = []
        for m in methods:
            if stem not in per_method[m]:
                continue
            if scores is not None:
                stamps[(m, stem)] = f"{profile}|" + file_stamp(per_method[m][stem], irs[stem], vis[stem])
                hit = scores.get(m, stem, stamps[(m, stem)], names)
                if hit is not None:
                    results[(m, stem)] = hit
                    continue
            todo.append((m, per_method[m][stem]))
        if todo:
            jobs.append((stem, irs[stem], vis[stem], todo))
    total = sum(len(j[3]) for j in jobs)
    if total == 0 and not results:
        raise EGMTError("no (ir, vi, fused) triple to score: check that the file names match")

    emit = log or (lambda msg: None)
    for msg in problems:
        emit(msg)

    scoring_problems: dict[str, list[str]] = {}  # by stem: listed in name order, whatever order workers finish in

    def collect(stem: str, scored) -> None:
        for method, values, msgs in scored:
            for msg in msgs:
                scoring_problems.setdefault(stem, []).append(msg)
                emit(msg)
            if values is not None:
                results[(method, stem)] = values
                if scores is not None:
                    scores.put(method, stem, stamps[(method, stem)], values)

    workers = max(1, workers or _available_cores())
    bar = _progress(total, progress)
    try:
        if workers == 1 or len(jobs) <= 1:  # no pool for one triple, or none (all read from the cache)
            for job in jobs:
                collect(job[0], _score_stem(*job, names, profile))
                bar.update(len(job[3]))
        else:
            ctx = multiprocessing.get_context("spawn")  # safe even if the caller holds threads or CUDA
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker) as pool:
                futures = {pool.submit(_score_stem, *job, names, profile): job for job in jobs}
                for fut in as_completed(futures):
                    job = futures[fut]
                    collect(job[0], fut.result())
                    bar.update(len(job[3]))
    finally:
        bar.close()
        if scores is not None and total:
            scores.save()  # also after an interruption: what was scored stays scored

    problems += [msg for stem in stems for msg in scoring_problems.get(stem, [])]
    return _write_outputs(Path(out_dir), names, methods, stems, results, problems, profile)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="evaluate", unit="img", disable=not enabled, dynamic_ncols=True)


def _write_outputs(out_dir, names, methods, stems, results, problems, profile="paper") -> EvaluationSummary:
    from egmt.bench.tables import csv_text, markdown_table
    from egmt.fileio import write_text_atomic as write_atomic

    rows = []
    mean: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for method in methods:
        scored = [(s, results[(method, s)]) for s in stems if (method, s) in results]
        counts[method] = len(scored)
        for stem, values in scored:
            rows.append([method, stem, *(float(values[n]) for n in names)])
        mean[method] = {}
        for n in names:
            vals = np.array([v[n] for _, v in scored], dtype=np.float64)
            vals = vals[~np.isnan(vals)]
            mean[method][n] = float(np.mean(vals)) if vals.size else math.nan

    per_image_csv = out_dir / PER_IMAGE_FILE
    summary_csv = out_dir / SUMMARY_CSV_FILE
    summary_md = out_dir / SUMMARY_MD_FILE
    write_atomic(per_image_csv, csv_text(["method", "image", *names], rows))
    write_atomic(
        summary_csv,
        csv_text(["method", "images", *names], [[m, counts[m], *(mean[m][n] for n in names)] for m in methods]),
    )
    prof = get_profile(profile)
    specs = {n: prof.metrics[n] for n in names}
    hib = {n: s.higher_is_better for n, s in specs.items()}
    labels = {n: f"{n} [{s.unit}]" if s.unit else n for n, s in specs.items()}
    text = f"Profile: `{prof.name}`, {prof.toolbox}.\n\n"
    text += markdown_table(
        methods, names, mean, hib, extra_columns={"Images": {m: str(counts[m]) for m in methods}}, labels=labels
    )
    text += "\nMean over each method's images; ↑ higher is better, ↓ lower is better; best in bold; units in [].\n"
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        text += f"{len(problems)} problem(s), left out of the means: {shown}.\n"
    write_atomic(summary_md, text)
    return EvaluationSummary(
        names, list(methods), mean, counts, list(problems), per_image_csv, summary_csv, summary_md, prof.name
    )
