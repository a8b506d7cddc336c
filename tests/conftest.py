"""Shared test fixtures: paths to the real data beside the checkout (../shared).

Tests that need ../shared skip with the reason listed by ``pytest -ra`` when it is absent,
and fail instead when EGMT_REQUIRE_SHARED=1 (CI, see .ci/run and tests/shared_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_data import DATA, REFERENCE, REPO, SHARED, need_shared  # noqa: F401


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return need_shared(DATA, "real data")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return need_shared(REFERENCE, "reference values")
