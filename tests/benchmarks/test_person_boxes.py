"""benchmarks/person_boxes.py: each box's IR correlation and each source's mean (the person floor's
reading), worked out by hand on fused images that copy or invert the infrared."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tests.helpers import load_benchmark


def _validator() -> SimpleNamespace:
    """Two sources: source 0 with two boxes in one pair (left and right half), source 1 with one."""
    g = torch.Generator().manual_seed(0)
    ir = [torch.rand(1, 32, 64, generator=g) for _ in range(2)]
    pairs = [
        SimpleNamespace(name="a", source=0, ir=ir[0], persons=[(4, 4, 28, 28), (36, 4, 60, 28)]),
        SimpleNamespace(name="b", source=1, ir=ir[1], persons=[(0, 0, 16, 16)]),
    ]
    return SimpleNamespace(pairs=pairs)


def test_boxes_and_source_means_by_hand():
    module = load_benchmark("person_boxes")
    validator = _validator()
    half = torch.cat([validator.pairs[0].ir[..., :32], 1 - validator.pairs[0].ir[..., 32:]], -1)
    fused = {
        "half inverted": [half, 1 - validator.pairs[1].ir],
        "copy": [p.ir for p in validator.pairs],
    }
    rows, means = module.box_table(validator, fused)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (0, "a", (4, 4, 28, 28), 576),
        (0, "a", (36, 4, 60, 28), 576),
        (1, "b", (0, 0, 16, 16), 256),
    ]
    assert [r[4] for r in rows] == pytest.approx([1, -1, -1])
    assert [r[5] for r in rows] == pytest.approx([1, 1, 1])
    assert [m[:2] for m in means] == [[0, 2], [1, 1]]
    assert [m[2] for m in means] == pytest.approx([0, -1])  # the mean over source 0's two boxes
    assert [m[3] for m in means] == pytest.approx([1, 1])

    text = module.markdown(rows, means, list(fused), ["rs", "m3"], floor=0.75)
    assert "| rs | 2 | **0.000** | 1.000 |" in text  # below the floor: bold
    assert "| m3 | 1 | **-1.000** | 1.000 |" in text
    boxes = [line for line in text.splitlines() if line.startswith("| rs | a |")]
    assert boxes == ["| rs | a | (36, 4, 60, 28) | 576 | -1.000 | 1.000 |", "| rs | a | (4, 4, 28, 28) | 576 | 1.000 | 1.000 |"]


@pytest.mark.parametrize("method", ["no-equals-sign", "name=/no/such/folder"])
def test_bad_method_is_a_one_line_error(method, capsys):
    assert load_benchmark("person_boxes").main(["--method", method]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_a_constant_box_is_a_dash_first_and_left_out_of_the_mean():
    module = load_benchmark("person_boxes")
    validator = _validator()
    flat_left = validator.pairs[0].ir.clone()
    flat_left[..., :32] = 0.5  # constant inside the left box: no correlation there
    fused = {"flat": [flat_left, validator.pairs[1].ir]}
    rows, means = module.box_table(validator, fused)
    assert means[0][2] == pytest.approx(1.0)  # the right box alone
    text = module.markdown(rows, means, ["flat"], ["rs", "m3"], floor=0.75)
    boxes = [line for line in text.splitlines() if line.startswith("| rs | a |")]
    assert boxes == ["| rs | a | (4, 4, 28, 28) | 576 | – |", "| rs | a | (36, 4, 60, 28) | 576 | 1.000 |"]


@pytest.mark.parametrize("names", [["a=x", "a=y"], ["average=x"], ["contrast target (kappa 20)=x"]])
def test_taken_names_are_refused(names):
    from egmt.errors import EGMTError

    with pytest.raises(EGMTError, match="is taken"):
        load_benchmark("person_boxes").parse_methods(names)
