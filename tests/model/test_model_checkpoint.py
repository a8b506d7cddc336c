"""EGMT.save_pretrained / from_pretrained: round trip and clear errors for wrong folders."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import save_file

from egmt.config import EGMTConfig, ModelConfig
from egmt.errors import EGMTError
from egmt.model import EGMT


def small(**overrides) -> EGMT:
    torch.manual_seed(0)
    return EGMT(dataclasses.replace(ModelConfig(), channels=16, num_heads=2, **overrides))


def test_round_trip_identical_outputs(tmp_path):
    model = small(num_blocks=2, relative_position_bias=True).eval()
    with torch.no_grad():  # move off the initial values so a re-initialised model would differ
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    full = EGMTConfig(model=model.config)
    full.train.lr = 3e-4
    model.save_pretrained(tmp_path / "ckpt", full)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    assert EGMTConfig.load(tmp_path / "ckpt" / "config.json") == full

    back = EGMT.from_pretrained(tmp_path / "ckpt").eval()
    assert back.config == model.config and not back.training
    ir, vi = torch.rand(1, 1, 30, 41), torch.rand(1, 1, 30, 41)
    e = torch.randn(1, 3, 384)
    with torch.no_grad():
        a, b = model(ir, vi, e), back(ir, vi, e)
    assert torch.equal(a.fused, b.fused) and torch.equal(a.logits, b.logits)


def test_default_config_written(tmp_path):
    model = small(multi_task=False)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model"]["multi_task"] is False and saved["model"]["channels"] == 16
    assert set(saved) == {"data", "text", "model", "loss", "train"}


def _assert_one_line(err: pytest.ExceptionInfo, *words: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_missing_files(tmp_path):
    with pytest.raises(EGMTError) as err:
        EGMT.from_pretrained(tmp_path / "nowhere")
    _assert_one_line(err, "model.safetensors", "not found")
    small().save_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(EGMTError) as err:
        EGMT.from_pretrained(tmp_path)
    _assert_one_line(err, "config.json", "not found")


def test_wrong_shapes(tmp_path):
    small().save_pretrained(tmp_path)
    cfg = EGMTConfig.load(tmp_path / "config.json")
    cfg.model.channels = 32
    cfg.save(tmp_path / "config.json")
    with pytest.raises(EGMTError) as err:
        EGMT.from_pretrained(tmp_path)
    _assert_one_line(err, "model.safetensors", "shapes")


def test_switch_mismatch(tmp_path):
    small().save_pretrained(tmp_path)
    cfg = EGMTConfig.load(tmp_path / "config.json")
    cfg.model.multi_task = False
    cfg.save(tmp_path / "config.json")
    with pytest.raises(EGMTError) as err:
        EGMT.from_pretrained(tmp_path)
    _assert_one_line(err, "unexpected classifier.")


def test_foreign_safetensors(tmp_path):
    small().save_pretrained(tmp_path)
    save_file({"encoder.weight": torch.zeros(3, 3)}, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(EGMTError) as err:
        EGMT.from_pretrained(tmp_path)
    _assert_one_line(err, "model.safetensors", "not an egmt")


def test_corrupt_safetensors(tmp_path):
    small().save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(EGMTError) as err:
        EGMT.from_pretrained(tmp_path)
    _assert_one_line(err, "model.safetensors", "cannot read")


@pytest.mark.parametrize("text", ['{"foo": 1}', "not json", '{"model": {"channels": "many"}}'])
def test_foreign_config(tmp_path, text):
    small().save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(EGMTError) as err:
        EGMT.from_pretrained(tmp_path)
    _assert_one_line(err, "config.json")


def test_save_leaves_no_temp_files(tmp_path):
    model = small()
    model.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
