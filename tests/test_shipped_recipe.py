"""The shipped checkpoint is what its documented commands make: the study's base config plus the
chosen recipe (docs/study/smoke.json, on docs/study/base-smoke.json), the seed the run was continued from, and the continued
CPU budget (docs/training/egmt-roadscene.sh); and the shipped preset (configs/patch-fast.json)
is its network."""

from __future__ import annotations

import json
from pathlib import Path

from egmt.bench.study import load_recipes, plan_runs
from egmt.config import EGMTConfig

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "egmt" / "pretrained" / "egmt-roadscene"
RECIPE, SEED, STUDY_MINUTES, SHIPPED_MINUTES = "contrast-k20-rebase16", 0, 10.0, 20.0


def test_the_documented_commands_reproduce_the_shipped_config(tmp_path):
    recipes = load_recipes(REPO / "docs" / "study" / "smoke.json")
    base = EGMTConfig.load(REPO / "docs" / "study" / "base-smoke.json")
    (run,) = plan_runs(base, {RECIPE: recipes[RECIPE]}, tmp_path, None, [SEED], STUDY_MINUTES)
    run.config.train.max_cpu_minutes = SHIPPED_MINUTES  # egmt train --resume --set train.max_cpu_minutes=20
    assert run.config.to_dict() == EGMTConfig.load(SHIPPED / "config.json").to_dict()
    script = (REPO / "docs" / "training" / "egmt-roadscene.sh").read_text()
    assert "docs/study/smoke.json" in script and f"{RECIPE}-s{SEED}" in script
    assert f"train.max_cpu_minutes={SHIPPED_MINUTES:g}" in script


def test_the_shipped_preset_is_the_shipped_network():
    preset = json.loads((REPO / "configs" / "patch-fast.json").read_text())["model"]
    shipped = EGMTConfig.load(SHIPPED / "config.json").model
    assert {k: getattr(shipped, k) for k in preset} == preset
