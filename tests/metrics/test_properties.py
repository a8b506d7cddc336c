"""Properties the metrics must have whatever the reference numbers: symmetry in the two
sources, known values when F equals a source, constant images (a clear error or a defined
value, never a silent NaN), and checks on the input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from egmt.errors import EGMTError
from egmt.metrics import (
    DEFAULT_METRICS,
    FUSION_METRICS,
    PAPER_METRICS,
    VARIANT_METRICS,
    MetricUndefinedError,
    compute_fusion_metrics,
    resolve_metric_names,
    rgb2gray,
)
from egmt.metrics import fusion as fu
from egmt.metrics.fmi import fmi

# Exactly symmetric in (A, B) by construction; PC, NCIE and the FMI family up to rounding
# (eigenvalues of a permuted matrix, strict pcA > pcB ties, the F-window overwrite).
EXACT_SYMMETRIC = [
    "SSIM",
    "MI",
    "Qabf",
    "PSNR",
    "Nabf",
    "EN",
    "SD",
    "SF",
    "AG",
    "CC",
    "SCD",
    "VIF",
    "MI_tang",
    "PSNR_tang",
    "SSIM_sum_vifb",
]
NEAR_SYMMETRIC = ["PC", "NCIE", "FMI_w", "FMI_pixel", "FMI_dct", "FMI_edge"]


def smooth_image(seed: int, size=(48, 56)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.normal(size=size), 1.5) + 0.3 * rng.normal(size=size)
    return np.round((x - x.min()) / np.ptp(x) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def triple():
    a, b = smooth_image(1), smooth_image(2)
    f = np.clip(np.round(0.55 * a + 0.45 * b + np.random.default_rng(3).normal(0, 4, a.shape)), 0, 255).astype(np.uint8)
    return a, b, f


def test_registry_layout():
    assert PAPER_METRICS == ["PC", "SSIM", "MI", "Qabf", "PSNR", "FMI_w", "Nabf", "NCIE"]
    assert list(FUSION_METRICS)[:8] == PAPER_METRICS
    assert len(DEFAULT_METRICS) == 15 and set(DEFAULT_METRICS) <= set(FUSION_METRICS)
    assert not set(VARIANT_METRICS) & set(DEFAULT_METRICS)
    lower_better = {n for n, s in FUSION_METRICS.items() if not s.higher_is_better}
    assert lower_better == {"Nabf", "Nabf_tang2023", "Seam", "Glow"}
    assert FUSION_METRICS["Nabf"].arrow == "↓" and FUSION_METRICS["PC"].arrow == "↑"


def test_resolve_metric_names():
    assert resolve_metric_names(None) == DEFAULT_METRICS
    assert resolve_metric_names("paper") == PAPER_METRICS
    assert resolve_metric_names(["ssim,fmi_w", "PSNR", "SSIM"]) == ["SSIM", "FMI_w", "PSNR"]
    assert resolve_metric_names("all") == list(FUSION_METRICS)
    with pytest.raises(EGMTError, match="unknown metric 'QAB'"):
        resolve_metric_names("QAB")


@pytest.mark.parametrize("name", EXACT_SYMMETRIC + NEAR_SYMMETRIC)
def test_symmetric_in_the_sources(triple, name):
    a, b, f = triple
    fn = FUSION_METRICS[name].fn
    ab, ba = fn(a, b, f), fn(b, a, f)
    if name in EXACT_SYMMETRIC:
        assert ab == ba
    else:
        assert ab == pytest.approx(ba, rel=1e-12, abs=1e-15)


def test_nabf_tang2023_is_not_symmetric(triple):
    a, b, f = triple
    assert fu.nabf_tang2023(a, b, f) != pytest.approx(fu.nabf_tang2023(b, a, f), rel=1e-3)


# ----------------------------------------------------------------- fused image = a source


def test_fused_equal_to_a_source(triple):
    a, b, _ = triple
    assert fu.ssim(a, a, a) == pytest.approx(1.0, abs=1e-12)
    assert fu.ssim_sum_vifb(a, b, a) == pytest.approx(1.0 + fu.ssim_sum_vifb(b, b, a) / 2, abs=1e-12)
    assert fu.cc(a, a, a) == pytest.approx(1.0, abs=1e-12)
    assert fu.psnr(a, a, a) == math.inf
    mse = np.mean((a.astype(float) - b) ** 2)
    assert fu.psnr(a, b, a) == pytest.approx(10 * math.log10(255**2 / (mse / 2)), rel=1e-12)
    assert fu.psnr_tang(a, b, a) - fu.psnr(a, b, a) == pytest.approx(20 * math.log10(255), rel=1e-12)
    # MI(A, B; F=A) = I(A;A) + I(A;B) = H(A) + MI(B, B; A) / 2
    assert fu.mi(a, b, a) == pytest.approx(fu.en(a, b, a) + fu.mi(b, b, a) / 2, rel=1e-12)
    # F never has a stronger gradient than itself: no artifacts.
    assert fu.nabf(a, b, a) == 0.0
    # vifp(A, A) = 1 up to the 1e-10 floor on the noise variance
    assert fu.vif(a, a, a) == pytest.approx(2.0, rel=1e-8)
    # every window of F equals A's: fmi_AF = 1 everywhere
    assert fmi(a, a, a, "none") == 1.0
    assert fmi(a, b, a, "none") == pytest.approx((1 + fmi(b, b, a, "none")) / 2, rel=1e-12)
    assert fmi(a, b, a, "wavelet") > 0.5
    with pytest.raises(MetricUndefinedError, match="SCD"):
        fu.scd(a, b, a)


def test_qabf_keeps_the_equal_strength_quirk(triple):
    """The reference sets G = gF (not 1) where gA == gF, so F = A does not score 1."""
    a, b, _ = triple
    assert 0.5 < fu.qabf(a, a, a) < 0.99


def test_saturation_variant_only_differs_on_254_255():
    rng = np.random.default_rng(7)
    a, b = rng.integers(0, 254, (32, 32)).astype(np.uint8), rng.integers(0, 254, (32, 32)).astype(np.uint8)
    f = ((a.astype(int) + b) // 2).astype(np.uint8)
    assert fu.mi_tang(a, b, f) == pytest.approx(fu.mi(a, b, f), rel=1e-12)
    a[:4, :4] = 254
    a[:4, :2] = 255
    f[:4, :4] = 200
    assert fu.mi_tang(a, b, f) > fu.mi(a, b, f) + 1e-3


# ----------------------------------------------------------------- constant images

CONSTANT_CASES = {
    "constant fused": lambda a, b: (a, b, np.full_like(a, 90)),
    "constant sources": lambda a, b: (np.full_like(a, 40), np.full_like(a, 200), a),
    "all zero": lambda a, b: (np.zeros_like(a),) * 3,
    "all constant": lambda a, b: (np.full_like(a, 7),) * 3,
}


@pytest.mark.parametrize("case", list(CONSTANT_CASES))
@pytest.mark.parametrize("name", list(FUSION_METRICS))
def test_constant_images_never_give_nan(triple, case, name):
    a, b, _ = triple
    images = CONSTANT_CASES[case](a, b)
    try:
        value = FUSION_METRICS[name].fn(*images)
    except MetricUndefinedError as e:
        assert name in str(e) and "undefined" in str(e)
        return
    assert not math.isnan(value)


def test_constant_images_defined_values(triple):
    a, b, _ = triple
    flat = np.full_like(a, 90)
    assert fu.en(a, b, flat) == 0.0
    assert fu.sd(a, b, flat) == 0.0
    assert fu.sf(a, b, flat) == 0.0 and fu.ag(a, b, flat) == 0.0
    assert fu.mi(a, b, flat) == pytest.approx(0.0, abs=1e-12)
    assert fu.nabf(a, b, flat) == 0.0
    assert fu.psnr(flat, flat, flat) == math.inf
    with pytest.raises(MetricUndefinedError, match="CC"):
        fu.cc(a, b, flat)
    with pytest.raises(MetricUndefinedError, match="NCIE"):
        fu.ncie(a, b, flat)
    # Qabf's zero padding gives a constant image gradients at its border; only two
    # all-zero sources leave its denominator at 0.
    assert math.isfinite(fu.qabf(flat, flat, a))
    with pytest.raises(MetricUndefinedError, match="Qabf"):
        fu.qabf(np.zeros_like(a), np.zeros_like(a), a)
    with pytest.raises(MetricUndefinedError, match="VIF"):
        fu.vif(flat, b, a)


def test_undefined_metrics_reported_not_raised_when_asked(triple):
    a, b, _ = triple
    errors: dict[str, str] = {}
    got = compute_fusion_metrics(a, b, a, names=["SCD", "PSNR", "Nabf"], threads=1, errors=errors)
    assert math.isnan(got["SCD"]) and "SCD" in errors["SCD"]
    assert got["Nabf"] == 0.0 and set(errors) == {"SCD"}
    with pytest.raises(MetricUndefinedError):
        compute_fusion_metrics(a, b, a, names=["SCD"], threads=1)


# ----------------------------------------------------------------- input handling


def test_rgb_fused_is_converted_with_matlab_weights(triple):
    a, b, _ = triple
    rng = np.random.default_rng(11)
    rgb = rng.integers(0, 256, a.shape + (3,)).astype(np.uint8)
    w = (0.298936021293775, 0.587043074451121, 0.114020904255103)
    expected = np.floor(rgb[..., 0] * w[0] + rgb[..., 1] * w[1] + rgb[..., 2] * w[2] + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(rgb2gray(rgb), expected)
    grey_rgb = np.repeat(a[..., None], 3, axis=2)
    np.testing.assert_array_equal(rgb2gray(grey_rgb), a)
    names = ["SSIM", "MI", "Qabf", "PSNR", "Nabf", "EN"]
    assert compute_fusion_metrics(a, b, rgb, names, threads=1) == compute_fusion_metrics(a, b, expected, names, threads=1)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda a: a[:-1], "size mismatch"),
        (lambda a: np.dstack([a, a, a, a]), "RGBA"),
        (lambda a: a.astype(np.float64) / 255, r"\[0, 1\]"),
        (lambda a: a.astype(np.uint16) * 256, "outside 0..255"),
        (lambda a: np.where(a > 100, np.nan, a.astype(float)), "NaN"),
        (lambda a: a[None], "shape"),
    ],
    ids=["size", "rgba", "unit-float", "16-bit", "nan", "4d"],
)
def test_bad_input_raises_egmt_error(triple, make, match):
    a, b, f = triple
    with pytest.raises(EGMTError, match=match):
        compute_fusion_metrics(a, b, make(f), names=["PSNR"], threads=1)


@pytest.mark.parametrize("name,size", [("SSIM", 10), ("VIF", 16), ("FMI_pixel", 2), ("SF", 1), ("PC", 1)])
def test_image_smaller_than_the_window(name, size):
    tiny = np.arange(size * size, dtype=np.uint8).reshape(size, size)
    with pytest.raises(EGMTError, match="smaller than"):
        FUSION_METRICS[name].fn(tiny, tiny, tiny)
    with pytest.raises(EGMTError, match="smaller than"):
        compute_fusion_metrics(tiny, tiny, tiny, names=[name, "MI"], threads=2)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (2, 2), (3, 5), (11, 11), (17, 23)])
def test_tiny_images_give_a_value_or_a_clear_error(shape):
    rng = np.random.default_rng(sum(shape))
    a, b, f = (rng.integers(0, 256, shape).astype(np.uint8) for _ in range(3))
    for name, spec in FUSION_METRICS.items():
        try:
            with np.errstate(all="raise"):
                value = spec.fn(a, b, f)
        except EGMTError:
            continue
        assert not math.isnan(value), name


def test_import_does_not_pull_torch():
    import subprocess
    import sys

    code = "import sys, egmt.metrics, egmt.metrics.classification; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
