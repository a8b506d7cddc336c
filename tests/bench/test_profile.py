"""`egmt profile`: parameters and FLOPs against independent counts; the printed Table VII."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from egmt.bench.benchmark import dataset_pairs
from egmt.bench.profile import count_flops, count_parameters, profile
from egmt.cli import main
from egmt.config import ModelConfig
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser

SMALL = dict(channels=8, num_heads=2, window_size=8, entity_dim=12, num_classes=3)


def test_parameters_are_the_checkpoints_tensor_elements(tiny_checkpoint):
    model = EGMTFuser.from_pretrained(tiny_checkpoint, device="cpu").model
    on_disk = sum(t.numel() for t in load_file(str(tiny_checkpoint / "model.safetensors")).values())
    assert count_parameters(model) == on_disk > 0


def test_flops_count_a_multiply_add_as_two():
    # No ECIM block and no entity: only convolutions, whose cost we can write down.
    cfg = ModelConfig(num_blocks=0, **SMALL)
    h, w, c = 64, 80, 8
    macs_per_pixel = 2 * (1 * c * 9 + c * c * 9) + 2 * c * c * 9 + c * (c // 2) * 9 + (c // 2) * 1
    assert count_flops(cfg, h, w, entities=0) == 2 * macs_per_pixel * h * w


def test_flops_scale_with_pixels():
    cfg = ModelConfig(**SMALL)
    one, two = count_flops(cfg, 64, 80), count_flops(cfg, 128, 80)
    assert one > 0
    assert two / one == pytest.approx(2.0, rel=0.1)
    assert count_flops(cfg, 64, 80, entities=0) < one  # without entities the CGHA stage is skipped


def test_profile_times_every_method_on_every_dataset(tiny_root, tiny_checkpoint):
    fuser = EGMTFuser.from_pretrained(tiny_checkpoint, device="cpu")
    pairs = {d: dataset_pairs(tiny_root / "data", d) for d in ("tno", "roadscene")}
    result = profile(pairs, ["egmt", "average", "dwt"], fuser, max_pairs=1, progress=False)
    assert result.pairs_timed == {"tno": 1, "roadscene": 1}
    assert all(result.seconds[m][d] > 0 for m in ("egmt", "average", "dwt") for d in pairs)
    assert result.flops_by_dataset["tno"] == ((64, 80), count_flops(fuser.model.config, 64, 80))
    # no resolver given: caption-free, and without validation.json the checkpoint uses no entity
    assert result.entity_sources["tno"].startswith("caption-free: none (no validation.json")
    with pytest.raises(EGMTError, match="needs a checkpoint"):
        profile(pairs, ["egmt"], None)


def test_cli_prints_table_vii(tiny_root, tiny_checkpoint, capsys):
    args = [
        "profile",
        "--data",
        str(tiny_root / "data"),
        "--datasets",
        "tno",
        "--methods",
        "egmt",
        "average",
        "--checkpoint",
        str(tiny_checkpoint),
        "--annotations",
        str(tiny_root / "annotations"),
        "--device",
        "cpu",
        "--max-pairs",
        "2",
        "--no-progress",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    model = EGMTFuser.from_pretrained(tiny_checkpoint, device="cpu").model
    rows = {
        r.split("|")[1].strip(): [c.strip() for c in r.strip().strip("|").split("|")]
        for r in out.splitlines()
        if r.startswith("| ")
    }
    egmt = rows["EGMT (ours)"]
    assert egmt[1] == f"{count_flops(model.config, 448, 448) / 1e9:.4g}"
    assert egmt[2] == f"{sum(p.numel() for p in model.parameters()) / 1e6:.4g}"
    assert float(egmt[3]) > 0
    assert rows["Average"][1:3] == ["–", "0"]
    assert "*EGMT, paper (Table VII, RTX 4090)*" in rows
    assert "multiply-add counted as 2 FLOPs" in out and "after 1 warm-up pair" in out
    assert "TNO: annotations" in out  # entities came from the annotation file
    assert "| TNO mean image | 80×64 |" in out
