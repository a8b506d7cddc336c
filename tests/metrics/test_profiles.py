"""The vifb and cddfuse metric profiles against their toolboxes' golden values, on every
case (tests/data/reference/profiles, copies of the shared reference fixtures).

Tolerances as the fixtures' README gives them: VIFB 1e-6 relative; CDDFuse's float64 run
1e-9 and its float32 run (what its own script prints) 2e-6."""

from __future__ import annotations

import json
import math

import pytest

from egmt.cli import main
from egmt.errors import EGMTError
from egmt.metrics import PROFILES, compute_fusion_metrics, get_profile, resolve_metric_names
from tests.metrics.reference_cases import CASES, PROFILE_VALUES, triple
from tests.shared_data import REFERENCE, need_shared

VARIANTS = [("vifb", "values", 1e-6), ("cddfuse", "values_float64", 1e-9), ("cddfuse", "values", 2e-6)]
GOLDEN = [(p, v, tol, case, key) for p, v, tol in VARIANTS for case in CASES for key in PROFILE_VALUES[p][case][v]]


def test_fixtures_equal_the_shared_reference():
    for name, values in PROFILE_VALUES.items():
        shared = need_shared(REFERENCE / "profiles" / f"{name}.json", f"shared {name} golden values")
        assert json.loads(shared.read_text()) == values


def test_profiles_compute_exactly_the_toolboxes_keys():
    assert list(PROFILES) == ["paper", "vifb", "cddfuse"]
    for name in ("vifb", "cddfuse"):
        keys = list(PROFILE_VALUES[name]["synthetic64"]["values"])
        assert resolve_metric_names(None, name) == keys
    assert resolve_metric_names(None, "vifb") == [
        "CE",
        "EN",
        "MI",
        "PSNR",
        "AG",
        "EI",
        "Qabf",
        "SD",
        "SF",
        "RMSE",
        "SSIM",
        "Qcb",
        "Qcv",
    ]
    assert len(resolve_metric_names(None, "paper")) == 15


@pytest.mark.parametrize("profile,variant,tol,case,key", GOLDEN, ids=[f"{p}-{v}-{c}-{k}" for p, v, _, c, k in GOLDEN])
def test_matches_toolbox(profile, variant, tol, case, key):
    expected = PROFILE_VALUES[profile][case][variant][key]
    got = get_profile(profile).metrics[key].fn(*triple(case))
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=tol, abs=1e-12)


@pytest.mark.parametrize("profile", ["vifb", "cddfuse"])
@pytest.mark.parametrize("case", ["synthetic64", "saturation"])
def test_public_entry_point(profile, case):
    """compute_fusion_metrics(profile=...) on two threads gives the golden values too."""
    variant, tol = ("values", 1e-6) if profile == "vifb" else ("values_float64", 1e-9)
    expected = PROFILE_VALUES[profile][case][variant]
    got = compute_fusion_metrics(*triple(case), profile=profile, threads=2)
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=tol, abs=1e-12), key


def test_same_name_different_definition():
    """What the toolboxes' differences amount to on one case (all three are golden values)."""
    paper = compute_fusion_metrics(*triple("synthetic64"), names="all", threads=1)
    vifb = compute_fusion_metrics(*triple("synthetic64"), profile="vifb", threads=1)
    cdd = compute_fusion_metrics(*triple("synthetic64"), profile="cddfuse", threads=1)
    assert vifb["SSIM"] == pytest.approx(2 * paper["SSIM"], rel=1e-12)  # summed, not averaged
    assert cdd["MI"] == pytest.approx(paper["MI"] * math.log(2), rel=1e-12)  # nats, not bits
    assert cdd["AG"] == pytest.approx(paper["AG"] * 63 * 63 / 64**2, rel=1e-12)  # plain mean
    assert vifb["SF"] < paper["SF"] == cdd["SF"]
    assert get_profile("vifb").metrics["MI"].unit == "nats" and get_profile("paper").metrics["MI"].unit == "bits"


def test_unknown_profile_and_metric():
    with pytest.raises(EGMTError, match="unknown metric profile 'matlab'"):
        get_profile("matlab")
    with pytest.raises(EGMTError, match="unknown metric 'PC' in profile 'vifb'"):
        resolve_metric_names("PC", "vifb")


def test_cli_profile(tmp_path, capsys):
    for d in ("ir", "vi", "f"):
        (tmp_path / d).mkdir()
    from PIL import Image

    for name, img in zip(("ir", "vi", "f"), triple("synthetic64")):
        Image.fromarray(img).save(tmp_path / name / "s64.png")
    args = [
        "evaluate",
        "--ir",
        str(tmp_path / "ir"),
        "--vi",
        str(tmp_path / "vi"),
        "--fused",
        f"m={tmp_path / 'f'}",
        "--profile",
        "cddfuse",
        "-o",
        str(tmp_path / "out"),
        "--workers",
        "1",
        "--no-progress",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Profile: `cddfuse`" in out and "MI [nats] ↑" in out and "MSE [grey levels^2] ↓" in out
    header = (tmp_path / "out" / "per_image.csv").read_text().splitlines()[0]
    assert header.split(",") == ["method", "image", *PROFILE_VALUES["cddfuse"]["synthetic64"]["values"]]
    row = (tmp_path / "out" / "per_image.csv").read_text().splitlines()[1].split(",")
    expected = PROFILE_VALUES["cddfuse"]["synthetic64"]["values_float64"]
    assert float(row[2 + list(expected).index("VIFF")]) == pytest.approx(expected["VIFF"], rel=1e-9)
