"""Thermal-target retention (:mod:`egmt.metrics.retention`) and seam ratio
(:mod:`egmt.metrics.seams`) of a folder of fused images.

The benchmark's fusion tables give them beside the metrics ("Targets kept", "Seams"), because
the metrics reward copying either source and cannot tell whether the warm targets survived, nor
see a mosaic of copied patches.
"""

from __future__ import annotations

from pathlib import Path

from egmt.bench.evaluate import list_images
from egmt.bench.figures import grey
from egmt.metrics.retention import target_retention
from egmt.metrics.seams import PATCH_PERIOD, seam_ratio


def folder_retention(ir_dir: Path, vi_dir: Path, fused_dir: Path, stems: set[str] | None = None) -> tuple[float, int]:
    """``(retention, pairs used)`` over the stems present in all three folders (only those in
    ``stems`` when given); images read grey, as the metrics read them."""
    problems: list[str] = []
    irs, vis, fused = (list_images(d, label, problems) for d, label in ((ir_dir, "ir"), (vi_dir, "vi"), (fused_dir, "fused")))
    chosen = [s for s in sorted(set(irs) & set(vis) & set(fused)) if stems is None or s in stems]
    return target_retention((grey(irs[s]), grey(vis[s]), grey(fused[s])) for s in chosen), len(chosen)


def folder_seams(ir_dir: Path, vi_dir: Path, fused_dir: Path, period: int = PATCH_PERIOD) -> dict[str, float]:
    """``{stem: seam ratio}`` of every stem present in all three folders (images read grey)."""
    problems: list[str] = []
    irs, vis, fused = (list_images(d, label, problems) for d, label in ((ir_dir, "ir"), (vi_dir, "vi"), (fused_dir, "fused")))
    return {s: seam_ratio(grey(irs[s]), grey(vis[s]), grey(fused[s]), period) for s in sorted(set(irs) & set(vis) & set(fused))}
