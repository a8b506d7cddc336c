"""`egmt study`: equal-budget runs per recipe, resumable, tabulated from validation only."""

from __future__ import annotations

import dataclasses
import json

import pytest

from egmt.bench.study import budget_row, load_recipes, plan_runs, study_rows
from egmt.cli import main as cli_main
from egmt.config import DataSource
from egmt.errors import EGMTError
from tests.train.conftest import make_tiny_config, tiny_dataset  # noqa: F401  (a fixture)


def test_plan_applies_overrides_seeds_and_budget(tmp_path):
    from egmt.config import EGMTConfig

    base = EGMTConfig()
    base.data.val_sources = [DataSource("v")]
    runs = plan_runs(base, {"a": [], "b": ["loss.alpha_int=20"]}, tmp_path, steps=7, seeds=[0, 3])
    assert [(r.recipe, r.seed) for r in runs] == [("a", 0), ("a", 3), ("b", 0), ("b", 3)]
    assert all(r.config.train.max_steps == 7 for r in runs)
    assert [r.config.loss.alpha_int for r in runs] == [1.0, 1.0, 20.0, 20.0]
    assert runs[1].folder == tmp_path / "a-s3" and runs[1].config.train.seed == 3
    with pytest.raises(EGMTError, match="recipe 'c'"):
        plan_runs(base, {"c": ["loss.nope=1"]}, tmp_path, 7, [0])
    base.data.val_sources = []
    with pytest.raises(EGMTError, match="val_sources"):
        plan_runs(base, {"a": []}, tmp_path, 7, [0])


def test_cpu_budget_is_compared_at_the_first_validation_past_it(tmp_path):
    from egmt.config import EGMTConfig

    base = EGMTConfig()
    base.data.val_sources = [DataSource("v")]
    with pytest.raises(EGMTError, match="one budget"):
        plan_runs(base, {"a": []}, tmp_path, steps=7, seeds=[0], cpu_minutes=1.0)
    with pytest.raises(EGMTError, match="one budget"):
        plan_runs(base, {"a": []}, tmp_path, steps=None, seeds=[0])
    (run,) = plan_runs(base, {"a": []}, tmp_path, steps=None, seeds=[0], cpu_minutes=2.0)
    assert run.config.train.max_cpu_minutes == 2.0 and run.config.train.max_steps is None
    run.folder.mkdir()
    (run.folder / "validation.csv").write_text("step,cpu_seconds,score\n100,70.0,1.0\n")
    assert budget_row(run) is None  # the budget (120 s) is not spent yet
    with (run.folder / "validation.csv").open("a") as f:
        f.write("200,119.9,1.1\n230,121.5,1.2\n300,150.0,1.3\n")
    assert budget_row(run)["step"] == "230"
    rows = study_rows([run])
    assert rows["a"]["steps"] == {0: 230} and rows["a"]["values"]["score"] == 1.2
    assert rows["a"]["late"] == {0: pytest.approx((1.0 + 1.1 + 1.2) / 3)}  # rows past 60 CPU s, up to the budget row


def test_bad_recipes_file_names_the_file(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"a": "loss.alpha_int=2"}))
    with pytest.raises(EGMTError, match="r.json"):
        load_recipes(bad)


@pytest.mark.slow
def test_study_trains_each_recipe_once_and_tabulates(tiny_dataset, tmp_path):  # noqa: F811  (the fixture imported above)
    cfg = make_tiny_config(tiny_dataset, save_every=100)
    cfg.data.val_sources = [DataSource(str(tiny_dataset), "train.txt", cfg.data.annotations)]
    cfg.train.val_crop = 48
    cfg.train.val_metrics = ["MI", "SSIM"]
    cfg.train.val_max_seam = None  # untrained on 48-pixel crops: seams are no subject here
    cfg.save(tmp_path / "base.json")
    (tmp_path / "recipes.json").write_text(json.dumps({"plain": [], "drop": ["train.entity_drop_all=1.0"]}))
    args = [
        "study",
        "--base",
        str(tmp_path / "base.json"),
        "--recipes",
        str(tmp_path / "recipes.json"),
        "-o",
        str(tmp_path / "runs"),
        "--steps",
        "2",
        "--table",
        str(tmp_path / "study.md"),
    ]
    assert cli_main(args) == 0
    table = (tmp_path / "study.md").read_text()
    assert "| plain | 1 | 2 |" in table and "| drop | 1 | 2 |" in table
    # fusions without a network, by the same rule: the average scores 1 by definition
    assert "| *copy visible* |" in table and "| *max(IR, VI)* |" in table and "| *average* | – | – | *1.0000* |" in table
    assert "| *16x16 block max (mosaic)* |" in table
    # each run's contact sheet at the budget, copied beside the table and linked
    assert "[s0](figures/study/plain-s0.png)" in table and (tmp_path / "figures" / "study" / "plain-s0.png").is_file()
    assert (tmp_path / "study.csv").read_text().count("\n") == 3
    first = (tmp_path / "runs" / "plain-s0" / "validation.csv").stat().st_mtime_ns
    assert cli_main(args) == 0  # complete runs are not trained again
    assert (tmp_path / "runs" / "plain-s0" / "validation.csv").stat().st_mtime_ns == first
    from egmt.bench.study import plan_runs as plan
    from egmt.config import EGMTConfig

    rows = study_rows(
        plan(EGMTConfig.load(tmp_path / "base.json"), load_recipes(tmp_path / "recipes.json"), tmp_path / "runs", 2, [0])
    )
    assert set(rows) == {"plain", "drop"} and all(len(r["seeds"]) == 1 for r in rows.values())


def test_recipes_that_hide_warm_targets_rank_after_the_rest():
    from egmt.bench.study import TABLE_COLUMNS, study_markdown
    from egmt.floors import Floors

    def entry(score, worst):
        values = dict.fromkeys(TABLE_COLUMNS, 0.5) | {"score": score, "min_source_retention": worst, "late": score}
        return {"seeds": {0: values}, "values": values, "steps": {0: 100}, "late": {0: score}, "floors": Floors(0.5)}

    rows = {"copies-visible": entry(1.5, 0.1), "keeps-targets": entry(1.2, 0.6), "weaker": entry(1.1, 0.8)}
    table = study_markdown(rows, dict.fromkeys(rows, []), "egmt study ...")
    order = [line.split("|")[1].strip() for line in table.splitlines()[2:5]]
    assert order == ["keeps-targets", "weaker", "copies-visible (below floor)"]
    rows["one-seed-copies"] = entry(1.6, 0.6)  # mean retention over seeds above the floor ...
    rows["one-seed-copies"]["seeds"] = {0: entry(1.5, 1.0)["values"], 1: entry(1.7, 0.0)["values"]}
    assert "| one-seed-copies (below floor) |" in study_markdown(rows, dict.fromkeys(rows, []), "x")  # ... one seed not
    del rows["one-seed-copies"]
    rows["mosaic"] = entry(1.4, 0.9)  # keeps the targets, but draws the patch grid
    rows["mosaic"]["floors"] = Floors(0.5, max_seam=1.03)
    rows["mosaic"]["seeds"] = {0: entry(1.4, 0.9)["values"] | {"max_source_seam": 1.2}}
    assert "| mosaic (below floor) |" in study_markdown(rows, dict.fromkeys(rows, []), "x")
    rows["mosaic"]["seeds"][0]["max_source_seam"] = 1.01
    assert "| mosaic |" in study_markdown(rows, dict.fromkeys(rows, []), "x")
    del rows["mosaic"]
    # people kept on the pooled boxes but lost on one source, or kept by cutting a halo around them
    rows["smoke"] = entry(1.4, 0.9)
    rows["smoke"]["floors"] = Floors(0.5, min_person_ir=0.75, max_halo=10.0)
    rows["smoke"]["seeds"] = {0: entry(1.4, 0.9)["values"] | {"person_ir": 0.8, "min_source_person_ir": 0.6}}
    rows["smoke"]["seeds"][0] |= {"person_halo": 5.0, "max_source_person_halo": 5.0}
    assert "| smoke |" in study_markdown(rows, dict.fromkeys(rows, []), "x")  # pooled: above the floor
    rows["smoke"]["floors"] = dataclasses.replace(rows["smoke"]["floors"], person_floor="each_source")
    assert "| smoke (below floor) |" in study_markdown(rows, dict.fromkeys(rows, []), "x")  # its worst source is not
    rows["smoke"]["seeds"][0] |= {"min_source_person_ir": 0.8, "max_source_person_halo": 20.0}
    assert "| smoke (below floor) |" in study_markdown(rows, dict.fromkeys(rows, []), "x")  # the halo on one source
    rows["smoke"]["seeds"][0]["max_source_person_halo"] = 9.0
    assert "| smoke |" in study_markdown(rows, dict.fromkeys(rows, []), "x")
    del rows["smoke"]
    assert Floors(0.5).met_by({"min_source_retention": ""})  # an empty cell of an older log: undefined
    rows["copies-visible"]["floors"] = Floors()  # runs without a floor rank by score alone
    assert study_markdown(rows, dict.fromkeys(rows, []), "x").splitlines()[2].startswith("| copies-visible |")


def test_the_study_table_loads_no_torch():
    """`egmt study --no-train --table` reads logs only: importing it (and the floors) stays torch-free."""
    import subprocess
    import sys

    code = "import sys, egmt.bench.study, egmt.floors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
