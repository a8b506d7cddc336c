"""The person floor box by box: the IR correlation inside each hand-drawn person box of the
validation crops, for checkpoints, their eq. 12 targets and reference rules.

The selection rule's person floor (``train.val_min_person_ir``) reads, with
``train.val_person_floor = each_source``, the mean of this correlation over each validation
source's boxes. On a source with few boxes one box can decide it: this table shows which. Every
checkpoint is fused as validation fuses it (``egmt.train.validation.Validator``) on the first
checkpoint's validation pairs, boxes and entity features; its target is its loss's
(``target_fusion``), each target named once.

    python benchmarks/person_boxes.py --method shipped=egmt/pretrained/egmt-roadscene -o docs/person-boxes.md
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

import torch

from egmt.bench.checkpoints import named_checkpoints
from egmt.bench.provenance import display_path
from egmt.config import EGMTConfig
from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic
from egmt.metrics.retention import box_correlation
from egmt.model.network import EGMT
from egmt.train.trainer import load_entity_features
from egmt.train.validation import REFERENCE_FUSIONS, Validator, defined_mean, target_fusion

RULES = ("max(IR, VI)", "average")  # the reference rules of every table


def box_table(validator: Validator, fused: dict[str, list[torch.Tensor]]) -> tuple[list[list], list[list]]:
    """``(rows, means)``: one row per person box ``[source, pair, box, area, corr per method]``, and
    one per validation source with boxes ``[source, boxes, mean corr per method]`` (NaN-free
    means, as the floor reads them). ``fused``: per method, one ``[1, h, w]`` image per validation
    pair. Boxes are ``(x0, y0, x1, y1)``, half-open."""
    rows: list[list] = []
    by_source: dict[int, list[list[float]]] = {}
    for k, pair in enumerate(validator.pairs):
        ir = pair.ir[0].numpy()
        for box in pair.persons:
            values = [box_correlation(ir, images[k][0].numpy(), box) for images in fused.values()]
            area = (box[2] - box[0]) * (box[3] - box[1])
            rows.append([pair.source, pair.name, box, area, *values])
            by_source.setdefault(pair.source, []).append(values)
    means = [[s, len(v), *(defined_mean(list(column)) for column in zip(*v))] for s, v in sorted(by_source.items())]
    return rows, means


def markdown(rows: list[list], means: list[list], methods: list[str], sources: list[str], floor: float | None) -> str:
    """The two tables: per-source means first, then every box, worst first by the first method
    within each source (boxes where it is NaN, a constant image in the box, first of all)."""
    head = " | ".join(methods)
    out = [f"| Source | Boxes | {head} |", "|:---|---:|" + "---:|" * len(methods)]
    for s, n, *values in means:
        out.append(f"| {sources[s]} | {n} | " + " | ".join(_cell(v, floor) for v in values) + " |")
    out += ["", f"| Source | Pair | Box (x0, y0, x1, y1) | Pixels | {head} |"]
    out.append("|:---|:---|:---|---:|" + "---:|" * len(methods))
    for s, name, box, area, *values in sorted(
        rows, key=lambda r: (r[0], not math.isnan(r[4]), r[4] if not math.isnan(r[4]) else 0.0)
    ):
        out.append(f"| {sources[s]} | {name} | {tuple(box)} | {area} | " + " | ".join(_cell(v, None) for v in values) + " |")
    return "\n".join(out)


def _cell(value: float, floor: float | None) -> str:
    """A correlation ("–" where NaN), in bold where it is below ``floor``."""
    if math.isnan(value):
        return "–"
    text = f"{value:.3f}"
    return f"**{text}**" if floor is not None and value < floor else text


def fuse_all(checkpoints: dict[str, Path], validator: Validator) -> dict[str, list[torch.Tensor]]:
    """Per column, one fused ``[1, h, w]`` image per validation pair: each checkpoint, its loss's
    target (once per distinct target), then the reference rules."""
    fused: dict[str, list[torch.Tensor]] = {}
    for name, folder in checkpoints.items():
        try:
            validator(EGMT.from_pretrained(folder), torch.device("cpu"))
        except (RuntimeError, ValueError) as error:  # e.g. entity features of another width
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise EGMTError(f"{display_path(folder)}: cannot be fused on the first checkpoint's validation ({first})") from None
        fused[name] = validator.last_fused
        target = target_fusion(EGMTConfig.load(folder / "config.json").loss)
        if target is not None and target[0] not in fused:
            fused[target[0]] = [target[1](p.ir, p.vi) for p in validator.pairs]
    for rule in RULES:
        fused[rule] = [REFERENCE_FUSIONS[rule](p.ir, p.vi) for p in validator.pairs]
    return fused


def parse_methods(items: list[str]) -> dict[str, Path]:
    """``NAME=DIR`` -> ``{NAME: checkpoint folder}``; names unique and not a reference column's."""
    for item in items:
        if item.startswith("contrast target"):  # the targets' columns are named so
            raise EGMTError(f"--method {item}: the name is taken (a column's of its own)")
    return named_checkpoints(items, taken=RULES)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--method",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a checkpoint (repeatable); the first one's config gives the validation pairs, boxes and entity features",
    )
    ap.add_argument("-o", "--output", help="Markdown file to write")
    args = ap.parse_args(argv)
    try:
        checkpoints = parse_methods(args.method)
        first = next(iter(checkpoints.values()))
        config = EGMTConfig.load(first / "config.json")
        validator = Validator(config, load_entity_features(config))
        if not any(p.persons for p in validator.pairs):
            raise EGMTError(f"{display_path(first)}: no person boxes in its validation (train.val_boxes)")
        fused = fuse_all(checkpoints, validator)
    except EGMTError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows, means = box_table(validator, fused)
    sources = [Path(s.split or s.root).stem for s in config.data.val_sources]
    floor = config.train.val_min_person_ir
    boxes = config.train.val_boxes or []
    box_files = ", ".join(f"`{b}`" for b in ([boxes] if isinstance(boxes, str) else boxes))
    reads = "each source's mean" if config.train.val_person_floor == "each_source" else "the mean over all boxes, pooled"
    floor_text = (
        f"`train.val_min_person_ir` = {floor:g}, read on {reads}; means below it in bold"
        if floor is not None
        else "no person floor in this config"
    )
    command = "python benchmarks/person_boxes.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    text = (
        "# The person floor box by box (validation crops)\n\n"
        + markdown(rows, means, list(fused), sources, floor)
        + "\n\nThe IR correlation inside each hand-drawn person box (`egmt.metrics.retention.box_correlation`; "
        f"boxes {box_files}, in the validation crops of `{display_path(first)}`'s config). First table: the mean "
        f"over each validation source's boxes ({floor_text}). Second table: every box, worst first by the "
        f"{next(iter(fused))} column within each source. Checkpoints are fused as validation fuses them (their "
        "entities); a contrast target column is a checkpoint's eq. 12 intensity target used as the fusion; "
        "max(IR, VI) and average are reference rules.\n\n"
        f"Made by: `{command}`\n"
    )
    if args.output:
        write_text_atomic(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
