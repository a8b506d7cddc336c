"""The patch layout's paper preset against Table VII (53.62 M parameters, 111.9 GFLOPs at 448x448,
a multiply-add counted as 2 FLOPs), counted on meta tensors; and `egmt profile --config`."""

from __future__ import annotations

from pathlib import Path

from egmt.bench.paper import PAPER_EFFICIENCY
from egmt.bench.profile import config_cost_markdown, cost_breakdown, count_flops, count_parameters
from egmt.cli import main
from egmt.config import EGMTConfig, ModelConfig
from egmt.model import EGMT

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_patch_paper_preset_is_within_ten_percent_of_table_vii():
    cfg = EGMTConfig.load(CONFIGS / "patch-paper.json").model
    assert cfg.layout == "patch" and cfg.entity_dim == 768  # CLIP ViT-L/14 entities, as in the paper
    parts = cost_breakdown(cfg)
    params, flops = sum(p for p, _ in parts.values()), sum(f for _, f in parts.values())
    assert params == count_parameters(EGMT(cfg))  # the breakdown accounts for every parameter ...
    assert flops == count_flops(cfg, 448, 448)  # ... and every FLOP
    assert abs(params / 1e6 / PAPER_EFFICIENCY["params_m"] - 1) < 0.10
    assert abs(flops / 1e9 / PAPER_EFFICIENCY["flops_g"] - 1) < 0.10


def test_small_preset_is_cheaper_than_the_pixel_layout():
    small = EGMTConfig.load(CONFIGS / "patch-small.json").model
    assert small.layout == "patch"
    assert count_flops(small, 448, 448) < count_flops(ModelConfig(), 448, 448)


def test_profile_config_prints_and_writes_the_table(tmp_path, capsys):
    results = tmp_path / "results.md"
    assert main(["profile", "--config", str(CONFIGS / "patch-small.json"), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "| patch-small | patch |" in out and "patch tokens M_t and back" in out
    assert "<!-- egmt-benchmark:efficiency-layouts -->" in results.read_text()
    assert "patch-small" in config_cost_markdown({"patch-small": EGMTConfig.load(CONFIGS / "patch-small.json").model})
