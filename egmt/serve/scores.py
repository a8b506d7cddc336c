"""The demo's few fast metrics of one fused pair, on the 8-bit grey images ``egmt evaluate`` reads.

EN, SD, SF and MI (the paper's definitions, :mod:`egmt.metrics`), the seam ratio
(:mod:`egmt.metrics.seams`: a patch mosaic the sources do not have) and the thermal-target
retention (:mod:`egmt.metrics.retention`: the share of the infrared's warm targets kept). All
take well under a second at 640x480; the slow ones (VIF, FMI, PC...) are left to ``egmt evaluate``.
"""

from __future__ import annotations

import math

import numpy as np

from egmt.bench.evaluate import grey_u8
from egmt.metrics import compute_fusion_metrics
from egmt.metrics.retention import target_retention
from egmt.metrics.seams import seam_ratio

#: Metrics from :func:`compute_fusion_metrics`, in the order the page lists them.
FAST_METRICS = ("EN", "SD", "SF", "MI")


def quick_scores(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> dict[str, float]:
    """``{EN, SD, SF, MI, seam_ratio, target_retention}`` of one pair (images in [0, 1]); a
    value that is undefined for these images (e.g. a flat source) is NaN."""
    a, b, f = (grey_u8(x) for x in (ir, vi, fused))
    scores = compute_fusion_metrics(a, b, f, names=list(FAST_METRICS), threads=1, errors={})
    scores["seam_ratio"] = seam_ratio(a, b, f)
    scores["target_retention"] = target_retention([(a, b, f)])
    return {k: (float(v) if v is not None else math.nan) for k, v in scores.items()}
