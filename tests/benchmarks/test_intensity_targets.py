"""benchmarks/intensity_targets.py: one re-based row per noise floor and re-base, each the loss's
target (egmt.model.prior.contrast_target) with those settings."""

from __future__ import annotations

import torch

from egmt.model.prior import contrast_target
from tests.helpers import load_benchmark


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Textured sources with a little sensor noise: the infrared's texture (local std about 0.1)
    lies between the two noise floors (8 and 20 times its noise level, 0.01)."""
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(0, 12, 112)
    ir = 0.4 + 0.15 * torch.sin(x)[None, None, :] * torch.cos(x)[None, :, None]
    ir[:, 40:72, 50:62] += 0.4  # a warm person the visible image does not show
    vi = 0.6 + 0.1 * torch.sin(2 * x)[None, None, :].expand(1, 112, 112)
    noise = 0.01 * torch.randn(2, 1, 112, 112, generator=g)
    return (ir + noise[0]).clamp(0, 1), (vi + noise[1]).clamp(0, 1)


def test_one_rebased_row_per_floor_and_rebase_each_the_loss_target():
    module = load_benchmark("intensity_targets")
    rules = module.targets([], [20.0, 8.0], [16.0], guided=True)
    rebased = [name for name in rules if "re-based" in name]
    assert rebased == [
        "contrast, noise floor 20, re-based 16",
        "contrast, noise floor 20, re-based 16, guided",
        "contrast, noise floor 8, re-based 16",
        "contrast, noise floor 8, re-based 16, guided",
    ]
    ir, vi = _pair()
    for kappa in (20.0, 8.0):
        for spread, suffix in (("gaussian", ""), ("guided", ", guided")):
            expected = contrast_target(ir[None], vi[None], noise=kappa, rebase=16.0, rebase_spread=spread)[0]
            got = rules[f"contrast, noise floor {kappa:g}, re-based 16{suffix}"](ir, vi)
            assert torch.equal(got, expected)
    # the floors and the spreads give different targets (a rule keyed wrongly would repeat one)
    gaussian, guided = rules["contrast, noise floor 20, re-based 16"], rules["contrast, noise floor 20, re-based 16, guided"]
    assert not torch.equal(gaussian(ir, vi), guided(ir, vi))
    assert not torch.equal(
        rules["contrast, noise floor 20, re-based 16"](ir, vi), rules["contrast, noise floor 8, re-based 16"](ir, vi)
    )
