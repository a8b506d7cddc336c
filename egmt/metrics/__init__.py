"""egmt.metrics: image-fusion quality metrics that give the reference (MATLAB) numbers,
and multi-label classification metrics (``egmt.metrics.classification``).

Pure numpy/scipy/PyWavelets: importing this package does not import torch.

>>> from egmt.metrics import compute_fusion_metrics, PAPER_METRICS
>>> scores = compute_fusion_metrics(ir, vi, fused, names=PAPER_METRICS)  # doctest: +SKIP

Images are grey [H, W] (or RGB [H, W, 3], converted with MATLAB's rgb2gray weights),
uint8 or float, values 0..255 (not [0, 1]). ``profile='vifb'`` or ``'cddfuse'`` gives
those toolboxes' metric sets and conventions (:mod:`egmt.metrics.profiles`,
docs/metrics.md). Golden values: tests/data/reference; each metric's docstring names
its reference.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

import scipy.fft as sfft

from egmt.errors import EGMTError
from egmt.metrics import fmi as _fmi
from egmt.metrics import phase as _phase
from egmt.metrics._common import MetricUndefinedError, prepare, rgb2gray, to_gray
from egmt.metrics.profiles import (
    DEFAULT_METRICS,
    EXTRA_METRICS,
    FUSION_METRICS,
    PAPER_METRICS,
    PROFILES,
    VARIANT_METRICS,
    MetricProfile,
    MetricSpec,
)

__all__ = [
    "MetricSpec",
    "MetricProfile",
    "PROFILES",
    "get_profile",
    "FUSION_METRICS",
    "PAPER_METRICS",
    "EXTRA_METRICS",
    "DEFAULT_METRICS",
    "VARIANT_METRICS",
    "MetricUndefinedError",
    "compute_fusion_metrics",
    "resolve_metric_names",
    "rgb2gray",
    "to_gray",
]


def get_profile(profile: str | MetricProfile = "paper") -> MetricProfile:
    """A profile by name ('paper', 'vifb', 'cddfuse'; any letter case), or the profile given."""
    if isinstance(profile, MetricProfile):
        return profile
    found = PROFILES.get(str(profile).lower())
    if found is None:
        raise EGMTError(f"unknown metric profile {profile!r}; known: {', '.join(PROFILES)}")
    return found


def resolve_metric_names(names: str | Iterable[str] | None, profile: str | MetricProfile = "paper") -> list[str]:
    """Metric names in the profile's spelling, without duplicates, in the order given.

    Accepts None (the profile's defaults: the fifteen for 'paper', all for the others),
    names in any letter case, comma-separated strings, and the profile's groups ('paper',
    'extra', 'default', 'variants', 'all' for 'paper'; 'default', 'all' for the others)."""
    prof = get_profile(profile)
    if names is None:
        return prof.default
    if isinstance(names, str):
        names = [names]
    lookup = {n.lower(): n for n in prof.metrics}
    out: list[str] = []
    for item in names:
        for token in str(item).split(","):
            token = token.strip()
            if not token:
                continue
            group = prof.groups.get(token.lower())
            metric = lookup.get(token.lower())
            if group is not None:
                found = group
            elif metric is not None:
                found = [metric]
            else:
                raise EGMTError(
                    f"unknown metric {token!r} in profile {prof.name!r}; known: "
                    f"{', '.join(prof.metrics)} or a group ({', '.join(prof.groups)})"
                )
            out.extend(n for n in found if n not in out)
    if not out:
        raise EGMTError("no metric selected")
    return out


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def compute_fusion_metrics(
    ir,
    vi,
    fused,
    names: str | Iterable[str] | None = None,
    *,
    profile: str | MetricProfile = "paper",
    threads: int | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, float]:
    """Score one (ir, vi, fused) triple; returns {name: value} in the order of ``names``.

    ir, vi, fused: [H, W] grey or [H, W, 3] RGB arrays, uint8 or float in 0..255 (RGB goes
    through MATLAB's rgb2gray). names: see :func:`resolve_metric_names` (default: the
    fifteen DEFAULT_METRICS). threads: cores to use (default: all available); several
    metrics run concurrently, a single metric splits its FFTs / FMI windows.
    A metric that is undefined for these images (e.g. CC of a constant image) raises
    :class:`MetricUndefinedError`, unless ``errors`` is a dict: then its value is NaN and
    ``errors[name]`` says why. Bad input (size mismatch, RGBA, out of range) raises EGMTError.
    """
    prof = get_profile(profile)
    selected = resolve_metric_names(names, prof)
    a, b, f = prepare(ir, vi, fused)  # check once; metrics re-check cheaply
    threads = max(1, threads or _available_cores())

    def run(name: str, inner: int) -> float:
        spec = prof.metrics[name]
        try:
            if spec.fn in _FMI_FEATURE:
                return _fmi.fmi(a, b, f, feature=_FMI_FEATURE[spec.fn], threads=inner)
            with sfft.set_workers(inner):
                return float(spec.fn(a, b, f))
        except MetricUndefinedError as e:
            if errors is None:
                raise
            errors[name] = str(e)
            return math.nan

    if threads == 1 or len(selected) == 1:
        return {name: run(name, threads) for name in selected}
    # Several metrics: run them side by side on a pool, the costly ones first; numpy and
    # the FFTs release the GIL in their loops. PC is split into its three phase-congruency
    # maps (pool tasks) and the final scoring (here, while the pool works on the rest).
    results: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pc_maps = []
        pc = "PC" if "PC" in selected and prof.metrics["PC"].fn is _phase.pc_metric else None
        if pc:
            prepare(a, b, f, min_size=_phase.MIN_SIZE)  # the size check pc_metric makes
            pc_maps = [
                pool.submit(_phase.source_maps, a),
                pool.submit(_phase.source_maps, b),
                pool.submit(_phase.phase_congruency, f),
            ]
        order = sorted((n for n in selected if n != pc), key=lambda n: _COST_RANK.get(n, len(_COST_RANK)))
        futures = {name: pool.submit(run, name, 1) for name in order}
        if pc_maps:
            try:
                results["PC"] = _phase.pc_from_maps(*(m.result() for m in pc_maps))
            except MetricUndefinedError as e:
                if errors is None:
                    raise
                errors["PC"] = str(e)
                results["PC"] = math.nan
        for name, fut in futures.items():
            results[name] = fut.result()
    return {name: results[name] for name in selected}


# Rough cost order (most expensive first) to schedule metrics over threads.
_COST_RANK = {
    n: i
    for i, n in enumerate(
        [
            "FMI_pixel",
            "FMI_dct",
            "FMI_edge",
            "FMI_w",
            "VIF",
            "VIFF",
            "Qcb",
            "Qcv",
            "Nabf",
            "Nabf_tang2023",
            "Qabf",
            "SSIM",
            "SSIM_sum_vifb",
            "NCIE",
            "MI",
            "MI_tang",
            "EI",
            "PSNR",
            "PSNR_tang",
            "CC",
            "SCD",
            "AG",
            "EN",
            "SD",
            "SF",
        ]
    )
}
_FMI_FEATURE = {_fmi.fmi_w: "wavelet", _fmi.fmi_pixel: "none", _fmi.fmi_dct: "dct", _fmi.fmi_edge: "edge"}
