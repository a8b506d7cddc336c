"""benchmarks/long_runs.py: a run's checks summarised by hand (best check meeting every floor, the
second half's mean, the final check, the person range), and the recipe read from its config."""

from __future__ import annotations

import pytest

from egmt.config import EGMTConfig
from tests.helpers import load_benchmark


def _row(step: int, score: float, eligible: int, person: float) -> dict:
    return {"step": str(step), "score": str(score), "eligible": str(eligible), "min_source_person_ir": str(person)}


def test_summary_by_hand():
    module = load_benchmark("long_runs")
    rows = [_row(100, 1.10, 0, 0.70), _row(200, 1.05, 1, 0.80), _row(300, 1.07, 1, 0.76), _row(400, 1.02, 0, 0.74)]
    s = module.summarize(rows)
    assert s["checks"] == 4 and s["eligible"] == 2
    assert s["best"] == (300, pytest.approx(1.07))  # 1.10 is higher but below a floor
    assert s["second_half"] == pytest.approx((1.07 + 1.02) / 2)
    assert s["final"] == (400, pytest.approx(1.02), False)
    assert s["person"] == pytest.approx((0.74, 0.76))


def test_no_check_meeting_every_floor():
    s = load_benchmark("long_runs").summarize([_row(100, 1.1, 0, 0.7), _row(200, 1.0, 0, 0.7)])
    assert s["best"] is None and s["eligible"] == 0


def test_recipe_names_the_runs_loss_target_and_schedule():
    config = EGMTConfig()
    config.loss.alpha_edge, config.loss.alpha_ssim, config.loss.intensity_noise = 7.5, 2.5, 16.0
    config.loss.intensity_rebase, config.loss.intensity_rebase_spread = 16.0, "guided"
    config.train.lr_schedule, config.train.ema_decay, config.train.max_steps, config.train.seed = "cosine", 0.999, 2800, 1
    text = load_benchmark("long_runs").recipe(config.to_dict())
    assert "edge 7.5 / SSIM 2.5" in text and "kappa 16, re-based 16 (guided)" in text
    assert "cosine, EMA 0.999; 2800 steps; seed 1" in text


def test_second_half_by_step_and_empty_cells():
    module = load_benchmark("long_runs")
    # five checks, the last at 500: the second half is 300, 400, 500 (past 250); an empty score cell
    # (an older log) is left out of the mean and is never the best
    rows = [
        _row(100, 1.0, 1, 0.8),
        _row(200, 1.0, 1, 0.8),
        _row(300, 1.06, 1, 0.77),
        _row(400, 1.04, 1, 0.79),
        _row(500, 1.0, 1, 0.8),
    ]
    rows[3]["score"] = ""
    s = module.summarize(rows)
    assert s["second_half"] == pytest.approx((1.06 + 1.0) / 2)
    assert s["best"] == (300, pytest.approx(1.06)) and s["eligible"] == 4
    assert s["person"] == pytest.approx((0.77, 0.8))


def test_an_empty_log_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    module = load_benchmark("long_runs")
    (tmp_path / "x-validation.csv").write_text("step,score,eligible\n")
    (tmp_path / "x-config.json").write_text("{}")
    monkeypatch.setattr(module, "LONG", tmp_path)
    assert module.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no checks" in err and "\n" not in err
