"""benchmarks/loss_path.py: the heads it trains on frozen features start at the network, its line
runs from the network's image to the loss's target, and its table reads the numbers it is given
(the script is loaded from its path)."""

from __future__ import annotations

import torch

from egmt.config import EGMTConfig, ModelConfig
from egmt.losses import FusionLoss
from egmt.model.heads import FusionHead
from egmt.model.network import EGMT
from tests.helpers import load_benchmark


def tiny_setup():
    config = EGMTConfig(
        model=ModelConfig(layout="patch", channels=4, token_dim=8, token_heads=1, fusion_output="weights", ir_rebase=4.0)
    )
    config.loss.intensity_target, config.loss.intensity_rebase = "contrast", 4.0
    torch.manual_seed(0)
    model = EGMT(config.model).eval()
    # off the 16-pixel grid, so the padded outputs must be cut back
    crops = [{"ir": torch.rand(1, 40, 52), "vi": torch.rand(1, 40, 52), "name": f"p{i}"} for i in range(3)]
    return config, model, crops


def test_dilated_front_starts_as_the_head_and_can_leave_it():
    loss_path = load_benchmark("loss_path")
    torch.manual_seed(0)
    head = FusionHead(8, output="weights", rebase=4.0)
    front = loss_path.DilatedFront(head, blocks=2)
    x, ir, vi = torch.randn(2, 8, 32, 32), torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    assert torch.equal(front(x, ir, vi), head(x, ir, vi))  # zero-started blocks: the identity
    with torch.no_grad():
        front.blocks[1][2].weight.normal_()
    assert not torch.allclose(front(x, ir, vi), head(x, ir, vi))  # and a trained block changes it
    assert [b[0].dilation for b in front.blocks] == [(2, 2), (4, 4)]


def test_the_refit_heads_start_at_the_network():
    loss_path = load_benchmark("loss_path")
    _, model, crops = tiny_setup()
    ir, vi = torch.stack([c["ir"] for c in crops]), torch.stack([c["vi"] for c in crops])
    shared, (ir_p, vi_p) = loss_path.frozen_features(model, None, ir, vi, ["p0", "p1", "p2"])
    assert shared.shape[-2:] == ir_p.shape[-2:] == (48, 64)  # the padded grid
    front = loss_path.DilatedFront(model.fusion_head, 2)
    with torch.no_grad():
        fused = front(shared, ir_p, vi_p)[..., :40, :52]
        assert torch.allclose(fused, model(ir, vi).fused, atol=1e-6)


def test_the_line_runs_from_the_network_to_the_target():
    loss_path = load_benchmark("loss_path")
    config, model, crops = tiny_setup()
    rows = loss_path.crop_losses(model, None, config, crops, [0.0, 1.0])
    ir, vi = torch.stack([c["ir"] for c in crops]), torch.stack([c["vi"] for c in crops])
    with torch.no_grad():
        network = FusionLoss(config.loss)(model(ir, vi).fused, ir, vi)
    assert abs(rows[0.0]["loss_fusion"] - float(network["fusion"])) < 1e-5
    assert rows[0.0]["loss_int"] > 1e-3  # an untrained network is not at its target ...
    assert rows[1.0]["loss_int"] < 1e-6  # ... and the line's end is


def test_table_reports_each_point_of_the_line():
    loss_path = load_benchmark("loss_path")
    row = {"loss_fusion": 3.5, "loss_int": 0.02, "loss_edge": 0.05, "loss_ssim": 0.5}
    rows = {
        0.0: {**row, "score": 1.01, "information": 1.2, "fidelity": 0.85, "eligible": True},
        1.0: {**row, "loss_fusion": 3.25, "score": 1.03, "information": 1.25, "fidelity": 0.849, "eligible": False},
    }
    fit = {"val_network": 1.01, "val_target": 1.03, "fit_network": 1.0, "fit_target": 1.02}
    text = loss_path.table(rows, fit, [], 0, "ck", "cmd", 12)
    assert "| 0 | 3.5000 | 0.0200 | 0.0500 | 0.5000 | 1.0100 | 1.2000 | 0.8500 | yes |" in text
    assert "| 1 | 3.2500 |" in text and "| 1.0300 | 1.2500 | 0.8490 | no |" in text
    assert "| training pairs (a subset) | 1.0000 | 1.0200 | +0.0200 |" in text
    assert "frozen features" not in text  # no refit asked for, no section
    refit = [{"name": "the head, trained on", "loss": 3.4, "score": 1.005, "eligible": True}]
    assert "| the head, trained on | 3.4000 | 1.0050 | yes |" in loss_path.table(rows, fit, refit, 5, "ck", "cmd", 12)
