"""egmt.baselines: classical fusion rules (average, max-abs, Laplacian pyramid, DWT)."""

from __future__ import annotations

import numpy as np
import pytest

from egmt.baselines import BASELINES, average, dwt, get_baseline, laplacian_pyramid, max_abs
from egmt.data.io import read_image
from egmt.errors import EGMTError

RNG = np.random.default_rng(3)
MULTISCALE = {"laplacian_pyramid": laplacian_pyramid, "dwt": dwt}


def test_registry_names():
    assert {"average", "max_abs", "laplacian_pyramid", "dwt"} <= set(BASELINES)


def test_average_is_the_mean():
    a, b = RNG.random((17, 23)), RNG.random((17, 23))
    np.testing.assert_allclose(average(a, b), (a + b) / 2, atol=1e-7)


def test_max_abs_on_intensities_is_choose_max():
    a, b = RNG.random((9, 10)), RNG.random((9, 10))
    np.testing.assert_allclose(max_abs(a, b), np.maximum(a, b), atol=1e-7)
    # A hot target only the IR sees keeps its full brightness (average would halve it).
    ir = np.zeros((20, 20))
    ir[5:10, 5:10] = 1.0
    vi = np.full((20, 20), 0.3)
    f = max_abs(ir, vi)
    assert f[7, 7] == 1.0 and f[0, 0] == pytest.approx(0.3)


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (31, 47), (65, 33), (301, 496)])
def test_shapes_dtype_range_for_any_size(name, shape):
    a, b = RNG.random(shape), RNG.random(shape)
    f = BASELINES[name](a, b)
    assert f.shape == shape and f.dtype == np.float32
    assert np.isfinite(f).all() and f.min() >= 0.0 and f.max() <= 1.0


@pytest.mark.parametrize("name", sorted(MULTISCALE))
@pytest.mark.parametrize("shape", [(64, 64), (31, 47), (301, 496)])
def test_fusing_an_image_with_itself_gives_it_back(name, shape):
    x = RNG.random(shape)
    np.testing.assert_allclose(MULTISCALE[name](x, x), x, atol=1e-5)


def test_multiscale_options_still_reconstruct():
    x = RNG.random((50, 70))
    for levels in (1, 2, 6, 50):  # 50: more than the image allows, lowered silently
        np.testing.assert_allclose(laplacian_pyramid(x, x, levels=levels), x, atol=1e-5)
        np.testing.assert_allclose(dwt(x, x, levels=levels), x, atol=1e-5)
    for wavelet in ("haar", "sym4", "bior2.2"):
        np.testing.assert_allclose(dwt(x, x, wavelet=wavelet), x, atol=1e-5)


def _edge_pair(h=64, w=65):
    """IR: a vertical step (0.2 | 0.8) at column 32; visible: a horizontal step (0.3 / 0.7) at row 20."""
    ir = np.where(np.arange(w)[None, :] < 32, 0.2, 0.8) * np.ones((h, 1))
    vi = np.where(np.arange(h)[:, None] < 20, 0.3, 0.7) * np.ones((1, w))
    return ir, vi


@pytest.mark.parametrize("name", sorted(MULTISCALE))
def test_max_abs_details_keep_the_edge_each_source_alone_has(name):
    ir, vi = _edge_pair()
    f = MULTISCALE[name](ir, vi)
    avg = average(ir, vi)
    # Vertical edge (IR only), measured in a row away from the visible edge.
    ir_jump = abs(f[45, 32] - f[45, 31])
    # Horizontal edge (visible only), measured in a column away from the IR edge.
    vi_jump = abs(f[20, 10] - f[19, 10])
    assert ir_jump > 0.85 * 0.6, ir_jump  # nearly the IR's full 0.6 step
    assert vi_jump > 0.85 * 0.4, vi_jump  # nearly the visible's full 0.4 step
    # The average keeps only half of each: the detail rule is doing the work.
    assert abs(avg[45, 32] - avg[45, 31]) == pytest.approx(0.3, abs=1e-6)
    assert abs(avg[20, 10] - avg[19, 10]) == pytest.approx(0.2, abs=1e-6)


def test_real_pair(data_dir):
    ir = read_image(data_dir / "tno" / "ir" / "01.png")[..., 0]
    vi = read_image(data_dir / "tno" / "vi" / "01.png")[..., 0]
    for name, fn in BASELINES.items():
        f = fn(ir, vi)
        assert f.shape == ir.shape, name
        # every rule is a blend of the two sources: strongly correlated with their mean
        assert np.corrcoef(f.ravel(), ((ir + vi) / 2).ravel())[0, 1] > 0.8, name


def test_errors():
    with pytest.raises(EGMTError, match="sizes differ"):
        average(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(EGMTError, match=r"\[H, W\]"):
        dwt(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
    with pytest.raises(EGMTError, match="unknown wavelet"):
        dwt(np.zeros((8, 8)), np.zeros((8, 8)), wavelet="nope")
    with pytest.raises(EGMTError, match="unknown fusion method 'median'"):
        get_baseline("median")
    with pytest.raises(EGMTError, match="takes no option"):
        get_baseline("average", levels=3)


def test_get_baseline_binds_options():
    x, y = RNG.random((40, 40)), RNG.random((40, 40))
    np.testing.assert_array_equal(get_baseline("dwt", wavelet="haar", levels=2)(x, y), dwt(x, y, "haar", 2))
    assert get_baseline("average") is average


def test_the_contrast_rule_is_the_shipped_recipes_intensity_target(data_dir):
    """``contrast``: the shipped checkpoint's loss target (its config's ``loss.intensity_*``) used as
    a fusion; on TNO's smoke pair it is not max(IR, VI) (the man in smoke keeps his IR structure)."""
    import inspect
    from pathlib import Path

    import torch

    from egmt.baselines import contrast
    from egmt.config import EGMTConfig
    from egmt.model.prior import contrast_target

    loss = EGMTConfig.load(Path(__file__).parents[1] / "egmt" / "pretrained" / "egmt-roadscene" / "config.json").loss
    assert loss.intensity_target == "contrast"
    defaults = {k: p.default for k, p in inspect.signature(contrast).parameters.items() if k not in ("ir", "vi")}
    assert defaults == {
        "sigma": loss.intensity_sigma,
        "power": loss.intensity_power,
        "noise": loss.intensity_noise,
        "rebase": loss.intensity_rebase,
        "rebase_spread": loss.intensity_rebase_spread,
    }
    ir = read_image(data_dir / "tno" / "ir" / "02.png")[..., 0]
    vi = read_image(data_dir / "tno" / "vi" / "02.png")[..., 0]
    f = contrast(ir, vi)
    t = contrast_target(*(torch.from_numpy(x).float()[None, None] for x in (ir, vi)), **defaults)[0, 0].numpy()
    np.testing.assert_allclose(f, t, atol=1e-6)
    assert np.abs(f - max_abs(ir, vi)).mean() > 1 / 255
