"""Every metric against the golden values of the MATLAB references, on every case.

Golden values: tests/data/reference/metrics/values.json, a copy of the shared reference
fixtures (see reference_cases.py). Tolerance as their README suggests: rel 1e-6 with
abs 1e-12 (the absolute part only for a Nabf of exactly 0), FMI_edge rel 1e-3 (edge-map
ties decided by Octave's rounding).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from egmt.metrics import FUSION_METRICS, compute_fusion_metrics
from tests.metrics.reference_cases import CASES as CASE_NAMES
from tests.metrics.reference_cases import COMMITTED_CASES, VALUES, triple
from tests.shared_data import REFERENCE, need_shared

CASES = [(case, key) for case, entry in VALUES.items() for key in entry["values"]]
TOLERANCE = {"FMI_edge": 1e-3}


def test_fixtures_cover_every_case():
    assert len(CASE_NAMES) == 7 and {"synthetic64", "saturation"} <= set(COMMITTED_CASES) <= set(CASE_NAMES)
    assert all(len(VALUES[c]["values"]) >= 18 for c in CASE_NAMES)


def test_fixtures_equal_the_shared_reference():
    """The committed golden values are an exact copy of ../shared's (when it is there)."""
    shared = need_shared(REFERENCE / "metrics" / "values.json", "shared golden values")
    assert json.loads(shared.read_text()) == VALUES


def test_every_reference_key_is_a_registered_metric():
    keys = {key for entry in VALUES.values() for key in entry["values"]}
    assert keys - set(FUSION_METRICS) == set()


@pytest.mark.parametrize("case,key", CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_matches_reference(case, key):
    expected = VALUES[case]["values"][key]
    ir, vi, fused = triple(case)
    got = FUSION_METRICS[key].fn(ir, vi, fused)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=TOLERANCE.get(key, 1e-6), abs=1e-12)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_compute_fusion_metrics_matches_reference(case):
    """The public entry point (threads, shared preparation, PC split into tasks) gives the
    same numbers as the single metric functions."""
    expected = VALUES[case]["values"]
    ir, vi, fused = triple(case)
    names = [k for k in FUSION_METRICS if k in expected]
    got = compute_fusion_metrics(ir, vi, fused, names=names, threads=2)
    assert list(got) == names
    for key in names:
        assert got[key] == pytest.approx(expected[key], rel=TOLERANCE.get(key, 1e-6), abs=1e-12), key


def test_float_input_gives_the_same_values():
    ir, vi, fused = triple("synthetic64")
    as_uint8 = compute_fusion_metrics(ir, vi, fused, names="all", threads=1)
    as_float = compute_fusion_metrics(*(x.astype(np.float64) for x in (ir, vi, fused)), names="all", threads=1)
    assert as_float == as_uint8
