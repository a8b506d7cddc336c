"""The per-source caches (phase-congruency maps, FMI features) are keyed by content: a
hit gives exactly the uncached value, and another image of the same size is not a hit."""

from __future__ import annotations

import numpy as np

from egmt.metrics import compute_fusion_metrics, fmi, phase
from egmt.metrics._common import SourceCache
from tests.metrics.reference_cases import triple


def test_cached_sources_give_the_uncached_values():
    a, b, f = triple("synthetic64")
    names = ["PC", "FMI_w", "FMI_dct", "FMI_edge"]
    phase.clear_cache()
    fmi.clear_cache()
    cold = compute_fusion_metrics(a, b, f, names=names, threads=1)
    warm = compute_fusion_metrics(a, b, f, names=names, threads=2)  # sources cached now
    assert warm == cold
    other = np.ascontiguousarray(a[::-1])  # same size and histogram, other content
    cached = compute_fusion_metrics(other, b, f, names=names, threads=1)
    phase.clear_cache()
    fmi.clear_cache()
    assert compute_fusion_metrics(other, b, f, names=names, threads=1) == cached
    assert cached != cold


def test_source_cache_lru():
    calls = []
    cache = SourceCache(lambda x: calls.append(x.sum()) or float(x.sum()), size=2)
    x, y, z = (np.full((2, 2), v, np.float64) for v in (1.0, 2.0, 3.0))
    assert [cache(x), cache(y), cache(x), cache(z), cache(y)] == [4.0, 8.0, 4.0, 12.0, 8.0]
    assert calls == [4.0, 8.0, 12.0, 8.0]  # y was evicted by z (x used more recently)
    assert cache(x.astype(np.float32)) == 4.0 and len(calls) == 5  # dtype is part of the key
