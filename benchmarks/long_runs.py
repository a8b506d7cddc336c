"""The runs at the shipped checkpoint's budget and beyond, side by side, from their committed
validation logs (``docs/training/long/NAME-validation.csv`` with ``NAME-config.json``, and the
shipped run's ``docs/training/egmt-roadscene-validation.csv``).

Each row: the run's recipe (loss weights, target, schedule, length), its checks, how many met
every floor, the best of those, the mean of the second half of its checks, the final check, and
the range of the person boxes on the worst validation source (the floor that decided steps 15 and
17). The bar to beat is the shipped checkpoint's best check.

    python benchmarks/long_runs.py -o docs/long-runs.md
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic
from egmt.floors import log_number

REPO = Path(__file__).resolve().parents[1]
LONG = REPO / "docs" / "training" / "long"
SHIPPED = (
    "shipped run (smoke study, continued)",
    REPO / "docs" / "training" / "egmt-roadscene-validation.csv",
    REPO / "egmt" / "pretrained" / "egmt-roadscene" / "config.json",
)


def recipe(config: dict) -> str:
    """What a run's config sets that matters here: loss weights, target, schedule and length."""
    loss, train = config["loss"], config["train"]
    spread = loss.get("intensity_rebase_spread") or "gaussian"
    schedule = train.get("lr_schedule", "constant") + (f", EMA {train['ema_decay']:g}" if train.get("ema_decay") else "")
    steps = f"{train['max_steps']} steps" if train.get("max_steps") else f"{train['max_cpu_minutes']:g} CPU min"
    return (
        f"int {loss['alpha_int']:g} / edge {loss['alpha_edge']:g} / SSIM {loss['alpha_ssim']:g}; "
        f"kappa {loss['intensity_noise']:g}, re-based {loss['intensity_rebase']:g} ({spread}); {schedule}; {steps}; seed {train['seed']}"
    )


def summarize(rows: list[dict]) -> dict:
    """The numbers of one validation log (``validation.csv`` rows, at least one). The second half:
    the checks past half the last check's step. An empty cell (older logs) is NaN: never the best,
    left out of means and ranges."""
    step = np.array([int(r["step"]) for r in rows])
    score = np.array([log_number(r.get("score")) for r in rows])
    eligible = np.array([r.get("eligible") in ("1", "True", "true") for r in rows]) & ~np.isnan(score)
    person = np.array([log_number(r.get("min_source_person_ir")) for r in rows])
    second = step > step[-1] / 2
    best = int(np.argmax(np.where(eligible, score, -np.inf))) if eligible.any() else None
    person_second = person[second & ~np.isnan(person)]
    return {
        "checks": len(rows),
        "eligible": int(eligible.sum()),
        "best": None if best is None else (int(step[best]), float(score[best])),
        "second_half": float(np.nanmean(score[second])) if (~np.isnan(score[second])).any() else float("nan"),
        "final": (int(step[-1]), float(score[-1]), bool(eligible[-1])),
        "person": (float(person_second.min()), float(person_second.max())) if person_second.size else (float("nan"),) * 2,
    }


def runs() -> list[tuple[str, Path, Path]]:
    """``(name, validation log, config)``: the shipped run, then every committed long run by name."""
    found = [
        (p.name.removesuffix("-validation.csv"), p, p.with_name(p.name.replace("-validation.csv", "-config.json")))
        for p in sorted(LONG.glob("*-validation.csv"))
    ]
    return [SHIPPED, *found]


def read_run(log: Path, config: Path) -> tuple[dict, dict]:
    """A run's summarised validation log and its config; a one-line error naming the file."""
    try:
        with log.open(newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise EGMTError(f"{log}: no checks in this validation log")
        return summarize(rows), json.loads(config.read_text())
    except (OSError, KeyError, ValueError) as error:
        raise EGMTError(
            f"{log.name if isinstance(error, KeyError) else error}: cannot be read ({type(error).__name__})"
        ) from None


def table(items: list[tuple[str, Path, Path]]) -> tuple[str, set[float]]:
    """The Markdown table, and the person floors of the runs' configs."""
    lines = [
        "| Run | Recipe | Checks | Meeting every floor | Best of those (step: score) | 2nd-half mean | Final check (step: score) | Person boxes, worst source (2nd half) |",
        "|:---|:---|---:|---:|---:|---:|---:|---:|",
    ]
    floors = set()
    for name, log, config in items:
        s, cfg = read_run(log, config)
        floors.add(cfg["train"].get("val_min_person_ir"))
        best = "–" if s["best"] is None else f"{s['best'][0]}: {s['best'][1]:.4f}"
        step, score, ok = s["final"]
        final = f"{step}: {score:.4f}" + ("" if ok else " (below a floor)")
        lines.append(
            f"| {name} | {recipe(cfg)} | {s['checks']} | {s['eligible']} | {best} | "
            f"{s['second_half']:.4f} | {final} | {s['person'][0]:.3f}–{s['person'][1]:.3f} |"
        )
    return "\n".join(lines), floors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", help="Markdown file to write")
    args = ap.parse_args(argv)
    try:
        body, floors = table(runs())
    except EGMTError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    floor = ", ".join(f"{f:g}" for f in sorted(f for f in floors if f is not None)) or "none"
    text = (
        "# Runs at the shipped budget and beyond (validation)\n\n"
        + body
        + "\n\nFrom each run's validation log (`docs/training/long/`, and the shipped run's "
        "`docs/training/egmt-roadscene-validation.csv`), scored by the validation rule (1.0 = plain averaging; "
        "`docs/training.md`). Meeting every floor: checks a run may ship (warm targets, seams, people on each "
        "validation source, halos, balance). 2nd-half mean: the mean score of the checks past half the last "
        "check's step. Person boxes: the IR correlation inside the hand-drawn person boxes on the worst "
        f"validation source, lowest and highest over those checks (the floor: {floor}; "
        "[person-boxes.md](person-boxes.md) gives it box by box). Each run's rule, written before it, is in "
        "`docs/training/egmt-roadscene.sh`.\n\n"
        "Made by: `python benchmarks/long_runs.py -o docs/long-runs.md`\n"
    )
    if args.output:
        write_text_atomic(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
