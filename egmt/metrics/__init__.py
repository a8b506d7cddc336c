"""egmt.metrics: image-fusion quality metrics that give the reference (MATLAB) numbers,
and multi-label classification metrics (``egmt.metrics.classification``).

Pure numpy/scipy/PyWavelets: importing this package does not import torch.

>>> from egmt.metrics import compute_fusion_metrics, PAPER_METRICS
>>> scores = compute_fusion_metrics(ir, vi, fused, names=PAPER_METRICS)  # doctest: +SKIP

Images are grey [H, W] (or RGB [H, W, 3], converted with MATLAB's rgb2gray weights),
uint8 or float, values 0..255 (not [0, 1]). Conventions, sources and golden values:
/work/shared/reference/README.md; each metric's docstring names its reference.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import scipy.fft as sfft

from egmt.errors import EGMTError
from egmt.metrics import fmi as _fmi
from egmt.metrics import fusion as _fu
from egmt.metrics import phase as _phase
from egmt.metrics._common import MetricUndefinedError, prepare, rgb2gray, to_gray

__all__ = [
    "MetricSpec",
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


@dataclass(frozen=True)
class MetricSpec:
    """One fusion metric: ``fn(ir, vi, fused) -> float`` and its direction."""

    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    description: str

    @property
    def arrow(self) -> str:
        """The arrow the paper's tables put after the name: ↑ or ↓."""
        return "↑" if self.higher_is_better else "↓"


def _spec(name, fn, higher, description) -> tuple[str, MetricSpec]:
    return name, MetricSpec(name, fn, higher, description)


#: All metrics, in table order: the paper's eight (Tables I-IV order), the seven extras the
#: field reports, then variants that other codebases publish (never computed by default).
FUSION_METRICS: Mapping[str, MetricSpec] = dict(
    [
        _spec("PC", _phase.pc_metric, True, "Zhao et al.'s phase-congruency metric Q_P (Liu's metricZhao)"),
        _spec("SSIM", _fu.ssim, True, "mean of SSIM(A,F) and SSIM(B,F), VIFB's SSIM (Gaussian 11x11, 'valid')"),
        _spec("MI", _fu.mi, True, "mutual information I(F;A) + I(F;B) in bits, exact histograms"),
        _spec("Qabf", _fu.qabf, True, "Xydeas-Petrovic gradient-based edge preservation"),
        _spec("PSNR", _fu.psnr, True, "10 log10(255^2 / mean of MSE(F,A), MSE(F,B)) in dB"),
        _spec("FMI_w", _fmi.fmi_w, True, "feature mutual information on the dmey wavelet feature"),
        _spec("Nabf", _fu.nabf, False, "Shreyamsha Kumar's modified fusion-artifact measure"),
        _spec("NCIE", _fu.ncie, True, "nonlinear correlation information entropy"),
        _spec("EN", _fu.en, True, "entropy of F in bits"),
        _spec("SD", _fu.sd, True, "standard deviation of F"),
        _spec("SF", _fu.sf, True, "spatial frequency of F"),
        _spec("AG", _fu.ag, True, "average gradient of F"),
        _spec("CC", _fu.cc, True, "mean Pearson correlation of F with A and B"),
        _spec("SCD", _fu.scd, True, "sum of the correlations of differences"),
        _spec("VIF", _fu.vif, True, "vifp(A,F) + vifp(B,F), pixel-domain multiscale VIF"),
        _spec("MI_tang", _fu.mi_tang, True, "MI with the 254/255 joint-histogram saturation of Tang's code"),
        _spec("PSNR_tang", _fu.psnr_tang, True, "PSNR + 48.13 dB, as Tang's 2023 driver reports it"),
        _spec("SSIM_sum_vifb", _fu.ssim_sum_vifb, True, "SSIM(A,F) + SSIM(B,F), as VIFB tabulates it"),
        _spec("Nabf_tang2023", _fu.nabf_tang2023, False, "Nabf with the swapped arguments of Tang's 2023 driver"),
        _spec("FMI_pixel", _fmi.fmi_pixel, True, "feature mutual information on raw pixels"),
        _spec("FMI_dct", _fmi.fmi_dct, True, "feature mutual information on the 2-D DCT"),
        _spec("FMI_edge", _fmi.fmi_edge, True, "feature mutual information on Sobel edge maps (Octave's edge)"),
    ]
)

#: The paper's eight metrics, in the column order of its Tables I-IV.
PAPER_METRICS: list[str] = ["PC", "SSIM", "MI", "Qabf", "PSNR", "FMI_w", "Nabf", "NCIE"]
#: The seven other metrics the field reports.
EXTRA_METRICS: list[str] = ["EN", "SD", "SF", "AG", "CC", "SCD", "VIF"]
#: The fifteen computed when no names are given.
DEFAULT_METRICS: list[str] = PAPER_METRICS + EXTRA_METRICS
#: Published variants and the other FMI features: available by name only.
VARIANT_METRICS: list[str] = [n for n in FUSION_METRICS if n not in DEFAULT_METRICS]

_GROUPS = {"paper": PAPER_METRICS, "extra": EXTRA_METRICS, "default": DEFAULT_METRICS,
           "variants": VARIANT_METRICS, "all": list(FUSION_METRICS)}


def resolve_metric_names(names: str | Iterable[str] | None) -> list[str]:
    """Metric names in registry spelling, without duplicates, in the order given.

    Accepts None (the fifteen defaults), names in any letter case, comma-separated
    strings, and the groups 'paper', 'extra', 'default', 'variants', 'all'."""
    if names is None:
        return list(DEFAULT_METRICS)
    if isinstance(names, str):
        names = [names]
    lookup = {n.lower(): n for n in FUSION_METRICS}
    out: list[str] = []
    for item in names:
        for token in str(item).split(","):
            token = token.strip()
            if not token:
                continue
            group = _GROUPS.get(token.lower())
            found = group if group is not None else [lookup.get(token.lower())]
            if found == [None]:
                raise EGMTError(f"unknown metric {token!r}; known: {', '.join(FUSION_METRICS)} "
                                f"or a group ({', '.join(_GROUPS)})")
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
    selected = resolve_metric_names(names)
    a, b, f = prepare(ir, vi, fused)  # check once; metrics re-check cheaply
    threads = max(1, threads or _available_cores())

    def run(name: str, inner: int) -> float:
        spec = FUSION_METRICS[name]
        try:
            if name in _FMI_FEATURE:
                return _fmi.fmi(a, b, f, feature=_FMI_FEATURE[name], threads=inner)
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
        if "PC" in selected:
            prepare(a, b, f, min_size=_phase.MIN_SIZE)  # the size check pc_metric makes
            pc_maps = [pool.submit(_phase.source_maps, a), pool.submit(_phase.source_maps, b),
                       pool.submit(_phase.phase_congruency, f)]
        order = sorted((n for n in selected if n != "PC"), key=lambda n: _COST_RANK.get(n, len(_COST_RANK)))
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
_COST_RANK = {n: i for i, n in enumerate(
    ["FMI_pixel", "FMI_dct", "FMI_edge", "FMI_w", "VIF", "Nabf", "Nabf_tang2023", "Qabf",
     "SSIM", "SSIM_sum_vifb", "NCIE", "MI", "MI_tang", "PSNR", "PSNR_tang", "CC", "SCD", "AG",
     "EN", "SD", "SF"])}
_FMI_FEATURE = {"FMI_w": "wavelet", "FMI_pixel": "none", "FMI_dct": "dct", "FMI_edge": "edge"}
