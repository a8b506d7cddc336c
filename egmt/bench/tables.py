"""Result tables as the field publishes them: CSV at full float precision, and Markdown
with ↑/↓ in the header and the best value per column in bold (the paper's Tables I-IV).
Files are written atomically (temp file in the same folder, then os.replace).
"""

from __future__ import annotations

import csv
import io
import math
from typing import Iterable, Mapping, Sequence


def format_float(value: float) -> str:
    """Full precision for CSV: the shortest repr that reads back to the same double;
    an empty cell for NaN (undefined), 'inf'/'-inf' for infinities."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """CSV text; floats at full precision (see :func:`format_float`)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([format_float(v) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def format_cell(value: float, decimals: int = 5) -> str:
    """``decimals`` places as the paper prints; values too small to show that way (e.g.
    Nabf ~ 1e-7 for an average) keep 3 significant digits in scientific notation."""
    if value != 0 and math.isfinite(value) and abs(value) < 0.5 * 10.0 ** (-decimals + 2):
        return f"{value:.2e}"
    return f"{value:.{decimals}f}"


def best_rows(values: Sequence[float], higher_is_better: bool) -> set[int]:
    """Indices of the best finite-or-infinite value (ties all count); NaN never wins."""
    valid = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if not valid:
        return set()
    target = max(v for _, v in valid) if higher_is_better else min(v for _, v in valid)
    return {i for i, v in valid if v == target}


def markdown_table(
    row_names: Sequence[str],
    columns: Sequence[str],
    values: Mapping[str, Mapping[str, float]],
    higher_is_better: Mapping[str, bool],
    *,
    first_header: str = "Method",
    decimals: int = 5,
    extra_columns: Mapping[str, Mapping[str, str]] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Markdown table, one row per name: header "PC ↑", best value per column in bold,
    values rounded to ``decimals`` (the paper prints 5). ``extra_columns`` are plain text
    columns inserted after the first (e.g. the number of images); ``labels`` replace column
    names in the header (e.g. "MI [nats]")."""
    extra_columns = extra_columns or {}
    labels = labels or {}
    header = [first_header, *extra_columns, *(f"{labels.get(c, c)} {'↑' if higher_is_better[c] else '↓'}" for c in columns)]
    best = {c: best_rows([values[r].get(c, math.nan) for r in row_names], higher_is_better[c]) for c in columns}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for i, name in enumerate(row_names):
        cells = [name, *(extra_columns[e].get(name, "") for e in extra_columns)]
        for c in columns:
            v = values[name].get(c, math.nan)
            text = "–" if v is None or math.isnan(v) else format_cell(v, decimals)
            cells.append(f"**{text}**" if i in best[c] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
