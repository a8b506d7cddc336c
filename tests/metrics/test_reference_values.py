"""Every metric against the golden values of the MATLAB references, on every case.

Golden values: ../shared/reference/metrics/values.json (see that README for how they
were produced). Tolerance as the README suggests: rel 1e-6 with abs 1e-12 (the absolute
part only for a Nabf of exactly 0), FMI_edge rel 1e-3 (edge-map ties decided by Octave's
rounding).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from egmt.metrics import FUSION_METRICS, compute_fusion_metrics

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
VALUES_FILE = REFERENCE / "metrics" / "values.json"
VALUES = json.loads(VALUES_FILE.read_text()) if VALUES_FILE.is_file() else {}
CASES = [(case, key) for case, entry in VALUES.items() for key in entry["values"]]
TOLERANCE = {"FMI_edge": 1e-3}


@lru_cache(maxsize=None)
def triple(case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    folder = REFERENCE / "metrics" / case
    imgs = tuple(np.array(Image.open(folder / f"{name}.png")) for name in ("ir", "vi", "fused"))
    for img in imgs:
        assert img.dtype == np.uint8 and img.ndim == 2
    return imgs


def test_reference_present(reference_dir):
    assert VALUES, f"no golden values at {VALUES_FILE}"


def test_every_reference_key_is_a_registered_metric(reference_dir):
    keys = {key for entry in VALUES.values() for key in entry["values"]}
    assert keys - set(FUSION_METRICS) == set()


@pytest.mark.parametrize("case,key", CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_matches_reference(reference_dir, case, key):
    expected = VALUES[case]["values"][key]
    ir, vi, fused = triple(case)
    got = FUSION_METRICS[key].fn(ir, vi, fused)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=TOLERANCE.get(key, 1e-6), abs=1e-12)


@pytest.mark.parametrize("case", list(VALUES))
def test_compute_fusion_metrics_matches_reference(reference_dir, case):
    """The public entry point (threads, shared preparation, PC split into tasks) gives the
    same numbers as the single metric functions."""
    expected = VALUES[case]["values"]
    ir, vi, fused = triple(case)
    names = [k for k in FUSION_METRICS if k in expected]
    got = compute_fusion_metrics(ir, vi, fused, names=names, threads=2)
    assert list(got) == names
    for key in names:
        assert got[key] == pytest.approx(expected[key], rel=TOLERANCE.get(key, 1e-6), abs=1e-12), key


def test_float_input_gives_the_same_values(reference_dir):
    ir, vi, fused = triple("synthetic64")
    as_uint8 = compute_fusion_metrics(ir, vi, fused, names="all", threads=1)
    as_float = compute_fusion_metrics(*(x.astype(np.float64) for x in (ir, vi, fused)), names="all", threads=1)
    assert as_float == as_uint8
