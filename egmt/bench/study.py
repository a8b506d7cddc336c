"""Recipe study: several training recipes at an equal budget, compared on validation only.

A study is a base config (``config.json`` format: data, validation sources, crop, learning
rate...) and a recipes file ``{"NAME": ["section.key=value", ...], ...}``: each recipe is
the base plus its overrides. Every (recipe, seed) trains for the same budget, as
``egmt train`` in its own process (``jobs`` side by side, ``threads`` torch threads each)
into ``OUT/NAME-sSEED``, with its config, log, validation log and best checkpoint kept
there. A run that is already complete is not trained again, and an interrupted one
resumes, so the command can be re-run after a stop.

The budget is a number of steps, or minutes of CPU time spent in training steps
(``train.max_cpu_minutes``: every thread of the run's process, validation excluded), the fair
budget between models of different cost: a cheaper network takes more steps in the same time.

The table ranks recipes by their validation score (see :mod:`egmt.train.validation`) at the
budget (the validation at the budget step, or the first one after the CPU budget ran out), the
mean over seeds, with each seed's value, so a difference can be read against the spread between
seeds. Test sets play no part.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from egmt.bench.tables import csv_text
from egmt.config import EGMTConfig, LossConfig, apply_override
from egmt.errors import EGMTError
from egmt.fileio import read_json, write_text_atomic
from egmt.files import VALIDATION_FLOOR_COLUMNS, VALIDATION_LOG_FILE
from egmt.floors import Floors

#: Validation columns of the study table (validation.csv names; target_retention: see
#: egmt.metrics.retention, 0.5 = as plain averaging; older runs lack it).
#: SSIM, SSIM_min, PSNR: logged only by the rules that score them (the others show –);
#: max_source_seam: the worst source's mean seam ratio (egmt.metrics.seams; older runs lack it).
TABLE_COLUMNS = (
    "score",
    "MI",
    "Qabf",
    "FMI_w",
    "SSIM",
    "VIF",
    "SSIM_min",
    "PSNR",
    *VALIDATION_FLOOR_COLUMNS,
    "entity_effect",
    "cls_map",
    "cls_prior_map",
)


@dataclass
class StudyRun:
    recipe: str
    seed: int
    folder: Path
    config: EGMTConfig


def load_recipes(path: str | os.PathLike) -> dict[str, list[str]]:
    """``{name: [override, ...]}`` from a JSON file; EGMTError naming the file on a bad shape."""
    recipes = read_json(path, "recipes")
    if (
        not isinstance(recipes, dict)
        or not recipes
        or not all(isinstance(v, list) and all(isinstance(o, str) for o in v) for v in recipes.values())
    ):
        raise EGMTError(f"{path}: recipes must be a non-empty mapping of name -> list of 'section.key=value' strings")
    return recipes


def plan_runs(
    base: EGMTConfig,
    recipes: dict[str, list[str]],
    out_dir: Path,
    steps: int | None,
    seeds: list[int],
    cpu_minutes: float | None = None,
) -> list[StudyRun]:
    """One config per (recipe, seed): the base, the recipe's overrides, the seed and the budget
    (``steps``, or ``cpu_minutes`` of training CPU time with no step limit; exactly one)."""
    if (steps is None) == (cpu_minutes is None):
        raise EGMTError("a study needs one budget: a number of steps or CPU minutes")
    runs = []
    for name, overrides in recipes.items():
        for seed in seeds:
            cfg = EGMTConfig.from_dict(base.to_dict())
            for assignment in overrides:
                try:
                    apply_override(cfg, assignment)
                except EGMTError as e:
                    raise EGMTError(f"recipe {name!r}: {e}") from None
            cfg.train.seed = seed
            cfg.train.max_steps = steps
            cfg.train.max_cpu_minutes = cpu_minutes
            if not cfg.data.val_sources:
                raise EGMTError(f"recipe {name!r}: the study compares on validation, but data.val_sources is empty")
            runs.append(StudyRun(name, seed, out_dir / f"{name}-s{seed}", cfg))
    return runs


def rows_to_budget(run: StudyRun) -> list[dict]:
    """The rows of the run's ``validation.csv`` up to its budget row, or [] before the budget is
    reached. The budget row is the one at the budget step, or the first whose training CPU time
    reached the CPU budget; a run trained past the budget (e.g. continued for the shipped model)
    is still compared at the budget."""
    path = run.folder / VALIDATION_LOG_FILE
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    train = run.config.train
    if train.max_cpu_minutes is not None:
        spent = [float(r["cpu_seconds"]) if r.get("cpu_seconds") else math.nan for r in rows]
        end = next((i for i, c in enumerate(spent) if c >= 60 * train.max_cpu_minutes), None)
    else:
        end = next((i for i, r in enumerate(rows) if int(r["step"]) == train.max_steps), None)
    return [] if end is None else rows[: end + 1]


def budget_row(run: StudyRun) -> dict | None:
    """The validation row at the run's budget (see :func:`rows_to_budget`), or None."""
    rows = rows_to_budget(run)
    return rows[-1] if rows else None


def second_half(run: StudyRun, rows: list[dict]) -> list[dict]:
    """The rows of the budget's second half (CPU time, or steps, past half the budget): their
    mean score is less noisy than the single budget row when validation swings between checks."""
    train = run.config.train
    if train.max_cpu_minutes is not None:
        return [r for r in rows if float(r["cpu_seconds"]) > 60 * train.max_cpu_minutes / 2]
    return [r for r in rows if int(r["step"]) > train.max_steps / 2]


def is_complete(run: StudyRun) -> bool:
    return budget_row(run) is not None


def train_run(run: StudyRun, threads: int) -> int:
    """Train (or resume) one run in a child process; returns its exit code."""
    if is_complete(run):
        return 0
    run.folder.mkdir(parents=True, exist_ok=True)
    config_path = run.folder / "study-config.json"
    write_text_atomic(config_path, json.dumps(run.config.to_dict(), indent=2) + "\n")
    resume = (run.folder / "checkpoints" / "latest").is_file()
    cmd = [sys.executable, "-m", "egmt", "train", "-o", str(run.folder)]
    cmd += ["--resume"] if resume else ["--config", str(config_path)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with (run.folder / "train-output.txt").open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        return subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def run_study(runs: list[StudyRun], jobs: int = 1, threads: int = 1, progress=print) -> list[tuple[StudyRun, int]]:
    """Train every run, ``jobs`` at a time; returns (run, exit code) pairs."""

    def one(run: StudyRun) -> tuple[StudyRun, int]:
        code = train_run(run, threads)
        progress(f"{run.folder.name}: {'done' if code == 0 else f'failed (exit {code}), see train-output.txt'}")
        return run, code

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, runs))


def study_rows(runs: list[StudyRun]) -> dict[str, dict]:
    """Per recipe: mean validation values over its complete seeds, and each seed's score."""
    out: dict[str, dict] = {}
    for run in runs:
        rows = rows_to_budget(run)
        entry = out.setdefault(
            run.recipe,
            {
                "seeds": {},
                "values": {},
                "steps": {},
                "late": {},
                "sheets": {},
                "floors": Floors.from_config(run.config.train),
            },
        )
        if not rows:
            continue
        row = rows[-1]
        entry["seeds"][run.seed] = {k: float(row[k]) if row.get(k) not in (None, "") else math.nan for k in TABLE_COLUMNS}
        entry["steps"][run.seed] = int(row["step"])
        sheet = run.folder / "validation" / f"step-{int(row['step']):06d}.png"
        if sheet.is_file():
            entry["sheets"][run.seed] = sheet
        late = [float(r["score"]) for r in second_half(run, rows)]
        entry["late"][run.seed] = sum(late) / len(late)
    for entry in out.values():
        seeds = list(entry["seeds"].values())
        entry["values"] = {k: sum(s[k] for s in seeds) / len(seeds) if seeds else math.nan for k in TABLE_COLUMNS}
        late = list(entry["late"].values())
        entry["values"]["late"] = sum(late) / len(late) if late else math.nan
    return out


def below_floor(entry: dict) -> bool:
    """Whether any seed of a recipe, at the budget, misses a floor of its runs' selection rule
    (:class:`~egmt.floors.Floors`: warm targets, seams, people, halos, balance): such a recipe
    hides warm targets or people, cuts holes around them, draws a patch mosaic or nearly copies a
    source (a seed that does is not excused by one that does not) and ranks after the rest."""
    floors = entry.get("floors", Floors())
    return any(not floors.met_by(seed) for seed in entry["seeds"].values())


def reference_rows(base: EGMTConfig, losses: Sequence[LossConfig] | None = None) -> dict[str, dict[str, float]]:
    """The table columns of the fusions without a network (copy a source, max, average, and the
    contrast intensity targets of ``losses``, default the base's) on the base config's validation
    pairs, scored by the same rule (``Validator.reference_scores``)."""
    from egmt.train.validation import Validator

    out = {}
    for name, r in Validator(base, None).reference_scores(losses).items():
        out[name] = {**r["fusion"], **{k: r[k] for k in ("score", *VALIDATION_FLOOR_COLUMNS)}}
    return out


def study_markdown(
    rows: dict[str, dict],
    recipes: dict[str, list[str]],
    command: str,
    references: dict[str, dict[str, float]] | None = None,
    sheets: dict[str, dict[int, str]] | None = None,
) -> str:
    """The study table (recipes above both floors first, then by validation score), in italics
    under it the ``references`` (:func:`reference_rows`), each recipe's overrides, and the
    command. ``sheets``: per recipe and seed, a link to the contact sheet at the budget."""

    def rank(name: str) -> tuple[bool, float]:
        score = rows[name]["values"]["score"]
        return below_floor(rows[name]), -score if not math.isnan(score) else math.inf

    order = sorted(rows, key=rank)
    header = [
        "Recipe",
        "Seeds",
        "Steps (per seed)",
        "Score (per seed)",
        "2nd-half mean (per seed)",
        *(c for c in TABLE_COLUMNS if c != "score"),
    ] + (["Sheets"] if sheets else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name in order:
        r = rows[name]
        per_seed = ", ".join(f"{r['seeds'][s]['score']:.4f}" for s in sorted(r["seeds"]))
        score = r["values"]["score"]
        steps = ", ".join(str(r["steps"][s]) for s in sorted(r["steps"])) or "–"
        late = ", ".join(f"{r['late'][s]:.4f}" for s in sorted(r["late"]))
        cells = [
            f"{name} (below floor)" if below_floor(r) else name,
            str(len(r["seeds"])),
            steps,
            f"**{score:.4f}** ({per_seed})" if not math.isnan(score) else "–",
            f"{r['values']['late']:.4f} ({late})" if not math.isnan(r["values"]["late"]) else "–",
        ]
        cells += [f"{r['values'][c]:.4f}" if not math.isnan(r["values"][c]) else "–" for c in TABLE_COLUMNS if c != "score"]
        if sheets:
            cells.append(", ".join(f"[s{seed}]({link})" for seed, link in sorted(sheets.get(name, {}).items())) or "–")
        lines.append("| " + " | ".join(cells) + " |")
    for name, values in (references or {}).items():
        cells = [f"*{name}*", "–", "–", f"*{values['score']:.4f}*", "–"]
        cells += [f"*{values[c]:.4f}*" if not math.isnan(values.get(c, math.nan)) else "–" for c in TABLE_COLUMNS if c != "score"]
        cells += ["–"] if sheets else []
        lines.append("| " + " | ".join(cells) + " |")
    recipe_lines = [f"- `{name}`: " + (", ".join(f"`{o}`" for o in recipes[name]) or "the base config") for name in recipes]
    return (
        "\n".join(lines) + "\n\n"
        "Validation only (the runs' data.val_sources: RoadScene train.txt minus every 9th pair, and whole M3SVD clips; see `splits/`). "
        "Score: each metric's ratio to plain averaging on the same crops (1.0 = as good as the average of the "
        "sources); the rule of the runs' config (egmt.train.validation: the geometric mean of the information "
        "group MI, Qabf, FMI_w, VIF and the fidelity group SSIM_min, PSNR; runs of the earlier rule: the mean over "
        "MI, Qabf, FMI_w, SSIM and VIF), at the budget (the rank); 2nd-half mean: the mean score "
        "of the validations in the second half of the budget, less noisy than one check. "
        "The metric columns are at the budget. target_retention: the share of the IR's warm targets kept "
        "(egmt.metrics.retention; 1 = max-abs, 0.5 = averaging, 0 = the visible image; runs before it was "
        "logged show –); min_source_retention: the same on the worst validation source (RoadScene or M3SVD). "
        "max_source_seam: the mean seam ratio of the worst validation source (egmt.metrics.seams; 1 = no "
        "patch grid beyond the sources'). A recipe with a seed whose min_source_retention is below the runs' "
        "train.val_min_retention, whose max_source_seam is above train.val_max_seam, whose person_ir is below "
        "train.val_min_person_ir, whose halo is above train.val_max_person_halo, or whose SSIM_min is below train.val_min_ssim_min (the floors the best checkpoint must meet) is marked *below floor* and ranked "
        "after the others. person_ir: the fused image's correlation with the IR inside the hand-drawn person "
        "boxes of the validation crops (train.val_boxes; do people plain in the IR stay plain?), pooled; "
        "min_source_person_ir: the same on the worst validation source with boxes (the floor's measure with "
        "train.val_person_floor = each_source; runs before it was logged show –). "
        "person_halo: how much darker than the visible image the fusion is in a 16-pixel ring around those boxes, "
        "grey levels (egmt.metrics.retention.surround_darkening: a dark halo of the infrared's background cut "
        "around them; runs before it was logged show –); max_source_person_halo: the same on the worst source "
        "(the ceiling train.val_max_person_halo reads it with train.val_person_floor = each_source, else the pooled one). "
        "entity_effect: mean |output with own entities - output with the next pair's entities|, grey levels. Sheets: IR | VIS | fused "
        "of six validation crops at the budget, per seed. "
        + (
            "Rows in italics: fusions without a network on the same crops, scored by the same rule; the score "
            "rewards copying a source, so read a recipe's score against them. A contrast target's row is a "
            "recipe's own eq. 12 target (loss.intensity_*) used as the fusion: what a network that fitted that "
            "term exactly would give. "
            if references
            else ""
        )
        + "cls_map: caption-free classification mAP; "
        "cls_prior_map: the mAP of the label prior on the same pairs.\n\n"
        "Recipes (overrides of the base config):\n\n" + "\n".join(recipe_lines) + "\n\n"
        f"Made by: `{command}`\n"
    )


def study_csv(rows: dict[str, dict]) -> str:
    header = ["recipe", "seed", "step", *TABLE_COLUMNS, "second_half_mean_score"]
    body = [
        [name, seed, r["steps"][seed], *(vals[c] for c in TABLE_COLUMNS), r["late"][seed]]
        for name, r in rows.items()
        for seed, vals in sorted(r["seeds"].items())
    ]
    return csv_text(header, body)
