"""benchmarks/loss_path.py: the heads it trains on frozen features start at the network's head,
and its table reads the loss terms and scores it is given (the script is loaded from its path)."""

from __future__ import annotations

import torch

from egmt.model.heads import FusionHead
from tests.helpers import load_benchmark


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


def test_table_reports_each_point_of_the_line():
    loss_path = load_benchmark("loss_path")
    row = {"loss_fusion": 4.1553, "loss_int": 0.015, "loss_edge": 0.0435, "loss_ssim": 0.6405}
    rows = {
        0.0: {**row, "score": 1.0692, "information": 1.3991, "fidelity": 0.8171, "eligible": True},
        1.0: {**row, "loss_fusion": 4.1224, "score": 1.0948, "information": 1.4546, "fidelity": 0.824, "eligible": False},
    }
    fit = {"val_network": 1.0692, "val_target": 1.0948, "fit_network": 1.0024, "fit_target": 1.0349, "per_source": 19}
    text = loss_path.table(rows, fit, [], 0, "ck", "cmd", 480)
    assert "| 0 | 4.1553 | 0.0150 | 0.0435 | 0.6405 | 1.0692 | 1.3991 | 0.8171 | yes |" in text
    assert "| 1 | 4.1224 |" in text and "| 1.0948 | 1.4546 | 0.8240 | no |" in text
    assert "| training pairs (a subset) | 1.0024 | 1.0349 | +0.0325 |" in text
    assert "frozen features" not in text  # no refit asked for, no section
