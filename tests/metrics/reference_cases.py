"""The golden reference cases, read from the committed fixtures (tests/data/reference), so
that the case lists never depend on ../shared. The small synthetic cases' images are
committed too; the images of the real-data cases come from ../shared/reference/metrics
(a test on them skips with the reason, or fails under EGMT_REQUIRE_SHARED=1)."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
from PIL import Image

from tests.shared_data import FIXTURES, REFERENCE, need_shared


def _load(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


#: {case: {"size", "recipe", "values": {key: float}}}: the paper profile's golden values.
VALUES = _load("metrics/values.json")
#: VIFB's and CDDFuse's golden values, {case: {...}} plus "_" keys describing the call.
PROFILE_VALUES = {name: _load(f"profiles/{name}.json") for name in ("vifb", "cddfuse")}
CASES = list(VALUES)
COMMITTED_CASES = sorted(p.name for p in (FIXTURES / "metrics").iterdir() if p.is_dir())


@cache
def triple(case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ir, vi, fused) uint8 [H, W] of a case: committed, or from ../shared."""
    folder = FIXTURES / "metrics" / case
    if not folder.is_dir():
        folder = need_shared(REFERENCE / "metrics" / case, f"images of reference case {case!r}")
    imgs = tuple(np.array(Image.open(folder / f"{name}.png")) for name in ("ir", "vi", "fused"))
    for img in imgs:
        assert img.dtype == np.uint8 and img.ndim == 2
    return imgs
