"""The results file (``docs/results.md``): its blocks between ``<!-- egmt-benchmark:KEY -->``
markers, read back and merged with a run's new blocks under the sections' headings."""

from __future__ import annotations

import re
from pathlib import Path

from egmt.bench.datasets import DATASETS
from egmt.bench.provenance import Provenance
from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic as write_atomic

TITLE = "# EGMT benchmark results"
_BLOCK = re.compile(r"<!-- egmt-benchmark:([\w-]+) -->\n.*?<!-- /egmt-benchmark:\1 -->\n", re.S)
_HEADINGS = {  # the results file's sections, in their order
    "fusion": "## Fusion quality (paper Tables I, II, IV)",
    "figure": "## Comparison figures (paper Fig. 4)",
    "entities": "## Entity effect: own, unrelated and no entities",
    "heatmaps": "## Entity heat maps (paper Fig. 5)",
    "steering": "## Entity steering (validation pairs with boxes)",
    "classification": "## Multi-label classification (paper Table V)",
    "efficiency": "## Efficiency (paper Table VII)",
    "ablation": "## Ablations (paper Table VIII)",
}


def _block_order(key: str) -> tuple[int, int, str]:
    table, _, dataset = key.partition("-")
    sections = list(_HEADINGS)
    t = sections.index(table) if table in sections else len(sections)
    d = list(DATASETS).index(dataset) if dataset in DATASETS else len(DATASETS)
    return t, d, key


def read_blocks(path: Path) -> dict[str, str]:
    """The blocks of an existing results file (``{}`` if there is none); EGMTError for a file
    that `egmt benchmark` did not write, so that it is never overwritten."""
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EGMTError(f"{path}: cannot read the results file ({e})") from None
    if text.strip() and not text.startswith(TITLE):
        raise EGMTError(f"{path}: exists and was not written by `egmt benchmark`; refusing to overwrite it (choose another -o)")
    return {m.group(1): m.group(0) for m in _BLOCK.finditer(text)}


def update_results(path: Path, blocks: dict[str, str], provenance: Provenance) -> None:
    """Write ``path``: a header with this run's provenance, then every block, the new ones
    (``{key: markdown}``, key ``TABLE-DATASET`` or ``efficiency``) replacing old ones of the
    same key and the others kept as they were."""
    merged = read_blocks(path)
    for key, text in blocks.items():
        merged[key] = f"<!-- egmt-benchmark:{key} -->\n{text.rstrip()}\n\n{provenance.run_line()}<!-- /egmt-benchmark:{key} -->\n"
    parts = [
        TITLE + "\n",
        "Made by `egmt benchmark` (regenerate with it; each block below is replaced when its table is recomputed, "
        "and carries its own run line). Latest run:\n",
        provenance.markdown(),
    ]
    heading = None
    for key in sorted(merged, key=_block_order):
        table = key.partition("-")[0]
        if table != heading and table in _HEADINGS:
            parts.append(_HEADINGS[table] + "\n")
            heading = table
        parts.append(merged[key])
    write_atomic(path, "\n".join(parts))
