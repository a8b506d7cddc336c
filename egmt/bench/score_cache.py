"""Scores of fused images kept between runs, reused while the three images are unchanged.

Scoring dominates a benchmark (about 2 s per 640x480 triple for the paper's metrics), and most
of its rows, the baselines and the learned peers, do not change from one run to the next. A
:class:`ScoreCache` is a CSV: method, image, a stamp (the caller's; :func:`egmt.bench.evaluate.evaluate`
writes the metric profile and the size and modification time of the fused image and its two
sources), then one column per metric. A row is reused only when the stamp matches and it holds
every metric asked for; anything else is scored again. A cache file that cannot be read is
ignored (and rewritten): it only ever saves time.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from egmt.fileio import write_text_atomic

STAMP_COLUMNS = ("method", "image", "stamp")


def file_stamp(*paths: str | os.PathLike) -> str:
    """``size:mtime_ns`` of each file, joined by ``|``: changes whenever one of them is rewritten."""
    parts = []
    for p in paths:
        st = os.stat(p)
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


class ScoreCache:
    """``{(method, image): (stamp, {metric: value})}`` backed by the CSV at ``path``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.rows: dict[tuple[str, str], tuple[str, dict[str, float]]] = {}
        if self.path.is_file():
            try:
                with self.path.open(newline="") as f:
                    for row in csv.DictReader(f):
                        # "" = not computed for this row; "nan" = computed and undefined for this image
                        values = {k: float(v) for k, v in row.items() if k not in STAMP_COLUMNS and v != ""}
                        self.rows[(row["method"], row["image"])] = (row["stamp"], values)
            except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError):
                self.rows = {}  # a damaged cache: score everything again

    def get(self, method: str, image: str, stamp: str, metrics: list[str]) -> dict[str, float] | None:
        """The cached values of ``metrics``, or None when the stamp differs or one is missing."""
        hit = self.rows.get((method, image))
        if hit is None or hit[0] != stamp or any(m not in hit[1] for m in metrics):
            return None
        return {m: hit[1][m] for m in metrics}

    def put(self, method: str, image: str, stamp: str, values: dict[str, float]) -> None:
        """Record ``values``; other metrics of the same row are kept while its stamp is the same."""
        old = self.rows.get((method, image))
        merged = {**old[1], **values} if old is not None and old[0] == stamp else dict(values)
        self.rows[(method, image)] = (stamp, merged)

    def save(self) -> None:
        """Write the CSV atomically (metric columns: the union over all rows, sorted)."""
        from egmt.bench.tables import csv_text

        metrics = sorted({m for _, values in self.rows.values() for m in values})
        body = [
            [method, image, stamp, *(repr(float(values[m])) if m in values else "" for m in metrics)]
            for (method, image), (stamp, values) in sorted(self.rows.items())
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, csv_text([*STAMP_COLUMNS, *metrics], body))
