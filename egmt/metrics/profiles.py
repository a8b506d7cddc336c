"""Metric profiles: which metrics a toolbox reports, and under which conventions.

Fusion papers print metrics with the same names and different definitions. Most tables
come from three codebases, and each is a profile here:

* ``paper`` (default): the MATLAB code the EGMT paper used (Tang's evaluation scripts,
  Zheng Liu's toolbox, VIFB's SSIM), the registry :data:`FUSION_METRICS`;
* ``vifb``: VIFB's MATLAB toolbox (xingchenzhang/VIFB ``22b2ea9d``, 13 metrics);
* ``cddfuse``: CDDFuse's Python ``utils/Evaluator.py`` (Zhaozixiang1228/MMIF-CDDFuse
  ``fd8da1f3``, 12 metrics, called as its ``test_IVF.py`` calls it).

A profile is a table of choices over the metric code in ``fusion.py`` (and ``vifb.py`` for
the five metrics only VIFB has): each entry names the function and its switches, the unit
and the direction. Keys are the toolboxes' own column names, so the same key (MI, SSIM,
PSNR, ...) means different things in different profiles; docs/metrics.md spells out every
difference. Golden values: the shared reference fixtures (tests/data/reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Mapping

from egmt.metrics import fmi as _fmi
from egmt.metrics import fusion as _fu
from egmt.metrics import glow as _glow
from egmt.metrics import phase as _phase
from egmt.metrics import seams as _seams
from egmt.metrics import vifb as _vifb


@dataclass(frozen=True)
class MetricSpec:
    """One fusion metric: ``fn(ir, vi, fused) -> float``, its direction and unit."""

    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    description: str
    unit: str = ""  # "bits", "nats", "dB", "grey levels" ... ("" = dimensionless)

    @property
    def arrow(self) -> str:
        """The arrow the paper's tables put after the name: ↑ or ↓."""
        return "↑" if self.higher_is_better else "↓"


@dataclass(frozen=True)
class MetricProfile:
    """A toolbox's metric set: ``metrics`` in its table order, ``groups`` of names
    (every profile has 'default' and 'all')."""

    name: str
    toolbox: str
    metrics: Mapping[str, MetricSpec]
    groups: Mapping[str, list[str]]

    @property
    def default(self) -> list[str]:
        return list(self.groups["default"])


def _table(rows) -> dict[str, MetricSpec]:
    return {row[0]: MetricSpec(*row) for row in rows}


GREY = "grey levels"

#: The paper's registry, in table order: the paper's eight (Tables I-IV order), the seven
#: extras the field reports, then variants that other codebases publish (by name only).
FUSION_METRICS: Mapping[str, MetricSpec] = _table(
    [
        ("PC", _phase.pc_metric, True, "Zhao et al.'s phase-congruency metric Q_P (Liu's metricZhao)"),
        ("SSIM", _fu.ssim, True, "mean of SSIM(A,F) and SSIM(B,F), VIFB's SSIM (Gaussian 11x11, 'valid')"),
        ("MI", _fu.mi, True, "mutual information I(F;A) + I(F;B) in bits, exact histograms", "bits"),
        ("Qabf", _fu.qabf, True, "Xydeas-Petrovic gradient-based edge preservation"),
        ("PSNR", _fu.psnr, True, "10 log10(255^2 / mean of MSE(F,A), MSE(F,B)) in dB", "dB"),
        ("FMI_w", _fmi.fmi_w, True, "feature mutual information on the dmey wavelet feature"),
        ("Nabf", _fu.nabf, False, "Shreyamsha Kumar's modified fusion-artifact measure"),
        ("NCIE", _fu.ncie, True, "nonlinear correlation information entropy"),
        ("EN", _fu.en, True, "entropy of F in bits", "bits"),
        ("SD", _fu.sd, True, "standard deviation of F", GREY),
        ("SF", _fu.sf, True, "spatial frequency of F", GREY),
        ("AG", _fu.ag, True, "average gradient of F", GREY),
        ("CC", _fu.cc, True, "mean Pearson correlation of F with A and B"),
        ("SCD", _fu.scd, True, "sum of the correlations of differences"),
        ("VIF", _fu.vif, True, "vifp(A,F) + vifp(B,F), pixel-domain multiscale VIF"),
        ("MI_tang", _fu.mi_tang, True, "MI with the 254/255 joint-histogram saturation of Tang's code", "bits"),
        ("PSNR_tang", _fu.psnr_tang, True, "PSNR + 48.13 dB, as Tang's 2023 driver reports it", "dB"),
        ("SSIM_sum_vifb", _fu.ssim_sum_vifb, True, "SSIM(A,F) + SSIM(B,F), as VIFB tabulates it"),
        ("Nabf_tang2023", _fu.nabf_tang2023, False, "Nabf with the swapped arguments of Tang's 2023 driver"),
        ("FMI_pixel", _fmi.fmi_pixel, True, "feature mutual information on raw pixels"),
        ("FMI_dct", _fmi.fmi_dct, True, "feature mutual information on the 2-D DCT"),
        ("FMI_edge", _fmi.fmi_edge, True, "feature mutual information on Sobel edge maps (Octave's edge)"),
        ("SSIM_min", _fu.ssim_min, True, "min of SSIM(A,F) and SSIM(B,F): the less kept source (egmt's own; validation rule)"),
        (
            "Seam",
            _seams.seam_metric,
            False,
            "seam ratio: contrast across the 16x16 patch grid over the sources' (egmt's own; 1 = no grid, a mosaic is far above)",
        ),
        (
            "Glow",
            _glow.glow_metric,
            False,
            f"share of pixels more than {_glow.GLOW_LEVELS:g} grey levels brighter than both sources (egmt's own; 0 for any "
            "mix of them)",
        ),
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

#: VIFB's 13 metrics (``compute_metrics.m``), in its order; the toolbox's raw return values.
VIFB_METRICS: Mapping[str, MetricSpec] = _table(
    [
        ("CE", _vifb.ce, False, "mean over the sources of the KL divergence of the histograms, sum pX log2(pX/pF)", "bits"),
        ("EN", _fu.en, True, "entropy of F (as paper EN)", "bits"),
        (
            "MI",
            partial(_fu.mi, stretch=True, nats=True),
            True,
            "I(F;A) + I(F;B) after a min-max stretch of each image to 0..255, natural log",
            "nats",
        ),
        ("PSNR", _vifb.psnr, True, "20 log10(255 / sqrt(RMSE)) with VIFB's RMSE: not an MSE-based PSNR", "dB"),
        ("AG", _fu.ag, True, "average gradient, sum / ((H-1)(W-1)) (as paper AG)", GREY),
        ("EI", _vifb.ei, True, "mean Sobel magnitude of F, replicate padding", GREY),
        (
            "Qabf",
            partial(_fu.qabf, input_scale=255.0),
            True,
            "Xydeas-Petrovic on images multiplied by 255 (moves the G = gF quirk, <= 3e-10)",
        ),
        ("SD", _fu.sd, True, "population standard deviation of F (as paper SD)", GREY),
        ("SF", partial(_fu.sf, per_pixel=True), True, "spatial frequency, both sums divided by H*W", GREY),
        ("RMSE", _vifb.rmse, False, "mean over the sources of sqrt(sum (X-F)^2) / (H W), i.e. RMSE / sqrt(H W)", GREY),
        ("SSIM", _fu.ssim_sum_vifb, True, "SSIM(A,F) + SSIM(B,F), Gaussian 11x11 'valid' (= 2 x paper SSIM; up to 2)"),
        ("Qcb", _vifb.qcb, True, "Chen-Blum contrast-preservation metric (Liu's metricChenBlum)"),
        ("Qcv", _vifb.qcv, False, "Chen-Varshney CSF-weighted regional distortion (Liu's metricChen)"),
    ]
)

#: CDDFuse's 12 ``Evaluator`` metrics, as ``test_IVF.py`` calls them (fused first, A = ir).
CDDFUSE_METRICS: Mapping[str, MetricSpec] = _table(
    [
        ("EN", _fu.en, True, "entropy of F (as paper EN)", "bits"),
        ("SD", _fu.sd, True, "population standard deviation of F (as paper SD)", GREY),
        ("SF", _fu.sf, True, "spatial frequency, each mean over its own count (as paper SF)", GREY),
        ("AG", partial(_fu.ag, plain_mean=True), True, "average gradient, plain mean over H*W", GREY),
        ("MI", partial(_fu.mi, nats=True), True, "I(F;A) + I(F;B), exact histograms, natural log (scikit-learn)", "nats"),
        ("SCD", _fu.scd, True, "r(F-B, A) + r(F-A, B) (as paper SCD)"),
        (
            "VIFF",
            partial(_fu.vif, scipy_convention=True),
            True,
            "paper VIF with scipy's 'valid' convolution (swaps on small images); not Han's VIFF",
        ),
        ("Qabf", _fu.qabf, True, "Xydeas-Petrovic (as paper Qabf)"),
        ("SSIM", _fu.ssim_skimage, True, "SSIM(F,A) + SSIM(F,B), scikit-image 7x7 uniform window, data range 2 (up to 2)"),
        ("MSE", _fu.mse, False, "(MSE(F,A) + MSE(F,B)) / 2", GREY + "^2"),
        ("CC", _fu.cc, True, "(r(A,F) + r(B,F)) / 2 (as paper CC)"),
        ("PSNR", partial(_fu.psnr, peak_from_fused=True), True, "10 log10(max(F)^2 / MSE): peak max(F), not 255", "dB"),
    ]
)

PROFILES: Mapping[str, MetricProfile] = {
    "paper": MetricProfile(
        "paper",
        "the MATLAB code the EGMT paper used (Tang's scripts, Zheng Liu's toolbox, VIFB's SSIM)",
        FUSION_METRICS,
        {
            "paper": PAPER_METRICS,
            "extra": EXTRA_METRICS,
            "default": DEFAULT_METRICS,
            "variants": VARIANT_METRICS,
            "all": list(FUSION_METRICS),
        },
    ),
    "vifb": MetricProfile(
        "vifb",
        "VIFB's MATLAB toolbox (xingchenzhang/VIFB 22b2ea9d)",
        VIFB_METRICS,
        {"default": list(VIFB_METRICS), "all": list(VIFB_METRICS)},
    ),
    "cddfuse": MetricProfile(
        "cddfuse",
        "CDDFuse's Python Evaluator (Zhaozixiang1228/MMIF-CDDFuse fd8da1f3)",
        CDDFUSE_METRICS,
        {"default": list(CDDFUSE_METRICS), "all": list(CDDFUSE_METRICS)},
    ),
}
