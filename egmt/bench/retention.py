"""Thermal-target retention (:mod:`egmt.metrics.retention`), seam ratio
(:mod:`egmt.metrics.seams`) and glow (:mod:`egmt.metrics.glow`) of a folder of fused images.

The benchmark's fusion tables give them beside the metrics ("Targets kept", "Seams", "Glow"),
because the metrics reward copying either source and cannot tell whether the warm targets
survived, nor see a mosaic of copied patches or a glow above both sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from egmt.bench.evaluate import list_images
from egmt.bench.figures import grey
from egmt.metrics.glow import glow_share
from egmt.metrics.retention import target_retention
from egmt.metrics.seams import PATCH_PERIOD, seam_ratio


def _grey_triples(ir_dir: Path, vi_dir: Path, fused_dir: Path, stems: set[str] | None = None):
    """``(stem, ir, vi, fused)`` for the stems present in all three folders (only those in
    ``stems`` when given), in name order; images read grey in [0, 1], as the metrics read them."""
    problems: list[str] = []
    irs, vis, fused = (list_images(d, label, problems) for d, label in ((ir_dir, "ir"), (vi_dir, "vi"), (fused_dir, "fused")))
    for s in sorted(set(irs) & set(vis) & set(fused)):
        if stems is None or s in stems:
            yield s, grey(irs[s]), grey(vis[s]), grey(fused[s])


def folder_retention(ir_dir: Path, vi_dir: Path, fused_dir: Path, stems: set[str] | None = None) -> tuple[float, int]:
    """``(retention, pairs used)`` over the stems present in all three folders (only those in
    ``stems`` when given)."""
    triples = [t[1:] for t in _grey_triples(ir_dir, vi_dir, fused_dir, stems)]
    return target_retention(triples), len(triples)


class FolderChecks(NamedTuple):
    """One method's checks over a folder: the benchmark's "Targets kept", "Seams" and "Glow" columns."""

    retention: float
    seams: dict[str, float]  # stem -> seam ratio
    glow: dict[str, float]  # stem -> glow share


def folder_checks(ir_dir: Path, vi_dir: Path, fused_dirs: dict[str, Path], period: int = PATCH_PERIOD) -> dict[str, FolderChecks]:
    """Per method of ``fused_dirs`` (``{method: folder}``): its :class:`FolderChecks` over the stems
    present in the source folders and in its folder. The sources are listed and read once for all
    methods."""
    problems: list[str] = []
    irs, vis = list_images(ir_dir, "ir", problems), list_images(vi_dir, "vi", problems)
    sources: dict[str, tuple] = {}
    out = {}
    for method, folder in fused_dirs.items():
        fused = list_images(folder, "fused", problems)
        triples = []
        for s in sorted(set(irs) & set(vis) & set(fused)):
            if s not in sources:
                sources[s] = (grey(irs[s]), grey(vis[s]))
            triples.append((s, *sources[s], grey(fused[s])))
        out[method] = FolderChecks(
            target_retention(t[1:] for t in triples),
            {s: seam_ratio(ir, vi, f, period) for s, ir, vi, f in triples},
            {s: glow_share(ir, vi, f) for s, ir, vi, f in triples},
        )
    return out
