"""egmt.metrics.glow: the share of pixels brighter than both sources by more than 30 grey levels."""

from __future__ import annotations

import numpy as np
import pytest

from egmt.baselines import average, contrast, max_abs
from egmt.data.io import read_image
from egmt.metrics.glow import GLOW_LEVELS, glow_share

RNG = np.random.default_rng(3)


def test_any_mix_of_the_sources_has_none_and_a_bright_patch_is_counted():
    ir, vi = RNG.random((60, 80)), RNG.random((60, 80))
    for fused in (ir, vi, average(ir, vi), max_abs(ir, vi), 0.3 * ir + 0.7 * vi):
        assert glow_share(ir, vi, fused) == 0.0
    fused = np.maximum(ir, vi).copy()
    fused[10:20, 30:40] += (GLOW_LEVELS + 1) / 255  # 100 pixels just above the margin
    fused[40:45, 0:10] += (GLOW_LEVELS - 1) / 255  # 50 just below it
    assert glow_share(ir, vi, fused) == pytest.approx(100 / (60 * 80))
    # a share: the same pattern tiled four times over an image four times the size gives the same
    big = [np.tile(x, (2, 2)) for x in (ir, vi, fused)]
    assert glow_share(*big) == pytest.approx(glow_share(ir, vi, fused))
    with pytest.raises(ValueError, match="sizes differ"):
        glow_share(ir, vi, fused[:-1])


def test_the_contrast_target_glows_beside_a_warm_roof_under_a_bright_sky(data_dir):
    """TNO 01 (a house under a bright sky): the re-based infrared of the shipped recipe's target
    comes out above both sources along the roof (docs/target-halos.md); max-abs does not."""
    ir = read_image(data_dir / "tno" / "ir" / "01.png")[..., 0]
    vi = read_image(data_dir / "tno" / "vi" / "01.png")[..., 0]
    assert glow_share(ir, vi, contrast(ir, vi)) > 0.002  # 0.32 %
    assert glow_share(ir, vi, max_abs(ir, vi)) == 0.0


def test_the_registry_metric_reads_grey_levels():
    """``egmt evaluate --metrics Glow``: the registry passes 0..255 images; lower is better."""
    from egmt.metrics import FUSION_METRICS, compute_fusion_metrics

    ir, vi = RNG.random((40, 50)), RNG.random((40, 50))
    fused = np.maximum(ir, vi).copy()
    fused[:10, :10] = np.minimum(fused[:10, :10] + 0.5, 1.0)
    scores = compute_fusion_metrics(ir * 255, vi * 255, fused * 255, names=["Glow"])
    assert scores["Glow"] == pytest.approx(glow_share(ir, vi, fused)) and scores["Glow"] > 0
    assert not FUSION_METRICS["Glow"].higher_is_better
