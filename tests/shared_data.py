"""Where the real data and the full reference fixtures live (../shared beside the checkout),
and the one rule for tests that need them: skip with the reason shown (pytest -ra), or,
when EGMT_REQUIRE_SHARED=1 (set by .ci/run), fail, so that a CI run without ../shared
cannot pass by silently running fewer tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
REFERENCE = SHARED / "reference"
#: Golden values of every case and the images of the small synthetic cases, committed.
FIXTURES = REPO / "tests" / "data" / "reference"


def require_shared() -> bool:
    """True when the environment says ../shared must be present (EGMT_REQUIRE_SHARED=1)."""
    return os.environ.get("EGMT_REQUIRE_SHARED", "") == "1"


def need_shared(path: Path, what: str) -> Path:
    """``path`` if it exists; otherwise skip the test with a visible reason or, when
    EGMT_REQUIRE_SHARED=1, fail it with the same message."""
    if path.exists():
        return path
    message = f"{what} not found at {path} (../shared beside the checkout)"
    if require_shared():
        pytest.fail(f"{message}; EGMT_REQUIRE_SHARED=1 requires it", pytrace=False)
    pytest.skip(message)
