"""Compare training recipes at an equal budget, on validation pairs only.

Each recipe of RECIPES (JSON: {"name": ["section.key=value", ...]}) is the BASE config plus
its overrides; each (recipe, seed) trains as `egmt train` in OUT/NAME-sSEED (config, log,
validation.csv, best/ kept there) for --steps steps, or for --cpu-minutes of CPU time in
training steps (the fair budget between networks of different cost: validation excluded, and
other jobs on the machine do not shorten it). Runs already complete are skipped and
interrupted ones resume, so the same command can be run again after a stop. The table
(Markdown, and CSV beside it) ranks recipes by the validation score at the budget, recipes
that hide the warm targets (below train.val_min_retention) last, and gives under them what the
same rule scores for copying a source, max(IR, VI) and the average.

Example (the study behind docs/recipe-study.md):
  egmt study --base docs/study/base.json --recipes docs/study/recipes.json \\
      -o runs/study --steps 200 --seeds 0 --jobs 2 --threads 1 --table docs/recipe-study.md
"""

from __future__ import annotations

import argparse

HELP = "train several recipes at an equal budget and tabulate their validation scores"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", required=True, metavar="JSON", help="base config (config.json format) with data.val_sources")
    p.add_argument("--recipes", required=True, metavar="JSON", help='{"name": ["section.key=value", ...], ...}')
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="one run folder per recipe and seed goes here")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, help="training steps of every run (the equal budget)")
    budget.add_argument(
        "--cpu-minutes",
        type=float,
        metavar="MIN",
        help="CPU minutes of training steps per run (the equal budget; set train.val_every so that "
        "validation is frequent enough, the run also validates where the budget ends)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to run each recipe with (default: 0)")
    p.add_argument(
        "--only", nargs="+", metavar="NAME", help="train only these recipes (the table still lists every complete run)"
    )
    p.add_argument("--jobs", type=int, default=1, help="runs side by side (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--table", metavar="MD", help="write the Markdown table here (and a .csv beside it)")
    p.add_argument("--title", default="Recipe study", help="the table's heading (default: Recipe study)")
    p.add_argument("--no-train", action="store_true", help="only tabulate the runs already in OUT")


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys
    from pathlib import Path

    from egmt.bench.study import load_recipes, plan_runs, reference_rows, run_study, study_csv, study_markdown, study_rows
    from egmt.config import EGMTConfig
    from egmt.errors import EGMTError
    from egmt.fileio import write_bytes_atomic, write_text_atomic

    if (args.steps is not None and args.steps <= 0) or (args.cpu_minutes is not None and args.cpu_minutes <= 0):
        raise EGMTError(f"the budget must be positive, got {args.steps if args.steps is not None else args.cpu_minutes}")
    recipes = load_recipes(args.recipes)
    unknown = sorted(set(args.only or []) - set(recipes))
    if unknown:
        raise EGMTError(f"{args.recipes}: no recipe named {unknown[0]!r}")
    base = EGMTConfig.load(args.base)
    runs = plan_runs(base, recipes, Path(args.out), args.steps, args.seeds, args.cpu_minutes)
    if not args.no_train:
        todo = [r for r in runs if not args.only or r.recipe in args.only]
        failed = [r for r, code in run_study(todo, jobs=args.jobs, threads=args.threads) if code != 0]
        if failed:
            print(f"egmt study: {len(failed)} run(s) failed: {', '.join(r.folder.name for r in failed)}", file=sys.stderr)
    rows = study_rows(runs)
    command = "egmt study " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else "egmt study"
    sheets: dict[str, dict[int, str]] | None = None
    if args.table:  # the contact sheets at the budget, copied beside the table and linked from it
        table = Path(args.table)
        folder = table.parent / "figures" / table.stem
        sheets = {}
        for name, r in rows.items():
            for seed, path in r["sheets"].items():
                target = folder / f"{name}-s{seed}.png"
                write_bytes_atomic(target, Path(path).read_bytes())
                sheets.setdefault(name, {})[seed] = target.relative_to(table.parent).as_posix()
    # the references are scored by the runs' own rule (a recipe may set train.val_*), else by the base's
    # and each recipe's own contrast intensity target is a reference too (what fitting it exactly gives)
    references = reference_rows(runs[0].config if runs else base, [r.config.loss for r in runs] or None)
    text = study_markdown(rows, recipes, command, references=references, sheets=sheets)
    print(text)
    if args.table:
        write_text_atomic(args.table, f"# {args.title} (validation only)\n\n" + text)
        write_text_atomic(Path(args.table).with_suffix(".csv"), study_csv(rows))
    return 0
