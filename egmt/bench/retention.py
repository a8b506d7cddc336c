"""Thermal-target retention (:mod:`egmt.metrics.retention`) of a folder of fused images.

The benchmark's fusion tables give it beside the metrics ("Targets kept"), because the metrics
reward copying either source and cannot tell whether the warm targets survived.
"""

from __future__ import annotations

from pathlib import Path

from egmt.bench.evaluate import list_images
from egmt.bench.figures import grey
from egmt.metrics.retention import target_retention


def folder_retention(ir_dir: Path, vi_dir: Path, fused_dir: Path, stems: set[str] | None = None) -> tuple[float, int]:
    """``(retention, pairs used)`` over the stems present in all three folders (only those in
    ``stems`` when given); images read grey, as the metrics read them."""
    problems: list[str] = []
    irs, vis, fused = (list_images(d, label, problems) for d, label in ((ir_dir, "ir"), (vi_dir, "vi"), (fused_dir, "fused")))
    chosen = [s for s in sorted(set(irs) & set(vis) & set(fused)) if stems is None or s in stems]
    return target_retention((grey(irs[s]), grey(vis[s]), grey(fused[s])) for s in chosen), len(chosen)
