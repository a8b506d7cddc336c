"""`egmt export` + the onnxruntime backend against PyTorch on real pairs: the fused images (and
caption-free entities) agree, max abs difference <= 1e-4 on [0, 1] outputs, in both layouts."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from egmt.cli import main
from egmt.config import EGMTConfig
from egmt.data.pairs import Pair, load_pair
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.infer.run import DEFAULT_CHECKPOINT
from egmt.model import EGMT

pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install 'egmt[onnx]'")
pytest.importorskip("onnxscript", reason="onnxscript not installed: pip install 'egmt[onnx]'")

PAIRS = [("tno", "07.png"), ("roadscene", "FLIR_00006.jpg")]  # 256x256 grey, 505x328 colour (odd sizes pad)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def shipped_export_run(tmp_path_factory) -> SimpleNamespace:
    """The shipped model exported by the CLI: its folder, the warnings and torch log records it raised."""
    out = tmp_path_factory.mktemp("onnx")
    logs = _Records()
    loggers = [logging.getLogger(n) for n in ("torch", "torch.onnx")]  # torch.onnx does not propagate
    for logger in loggers:
        logger.addHandler(logs)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["export", "--checkpoint", str(DEFAULT_CHECKPOINT), "-o", str(out)]) == 0
    finally:
        for logger in loggers:
            logger.removeHandler(logs)
    return SimpleNamespace(
        folder=out, warnings=[f"{w.category.__name__}: {w.message}" for w in caught], logs=[r.getMessage() for r in logs.records]
    )


@pytest.fixture(scope="module")
def shipped_export(shipped_export_run):
    return shipped_export_run.folder


def _small_checkpoint(folder, **model):
    """A small untrained checkpoint with the shipped model's entity bank and vocabulary."""
    cfg = EGMTConfig.load(DEFAULT_CHECKPOINT / "config.json")
    cfg.model = dataclasses.replace(cfg.model, token_dim=32, token_heads=2, **model)
    torch.manual_seed(0)
    EGMT(cfg.model).save_pretrained(folder, cfg)
    for name in ("entity_bank.safetensors", "vocabulary.json"):
        (folder / name).write_bytes((DEFAULT_CHECKPOINT / name).read_bytes())
    return folder


@pytest.fixture(scope="module")
def patch_checkpoint(tmp_path_factory):
    return _small_checkpoint(tmp_path_factory.mktemp("patch"), layout="patch")


def _compare(checkpoint, exported, data_dir, threshold: float, pairs=PAIRS, **kwargs) -> None:
    """Caption-free on both backends; kwargs (validation=...) override what each folder holds."""
    torch_fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu", **kwargs)
    onnx_fuser = EGMTFuser.from_pretrained(exported, backend="onnxruntime", **kwargs)
    for dataset, name in pairs:
        ir, vi = data_dir / dataset / "ir" / name, data_dir / dataset / "vi" / name
        a = torch_fuser(ir, vi, threshold=threshold)  # caption-free: classifier graph, then fusion graph
        b = onnx_fuser(ir, vi, threshold=threshold)
        assert a.entity_source == b.entity_source  # the same caption-free policy
        assert a.entities == b.entities
        assert a.entities or a.entity_source != "classifier"  # predicted entities guide the fusion pass
        assert list(a.probabilities.values()) == pytest.approx(list(b.probabilities.values()), abs=1e-4)
        assert np.abs(a.image - b.image).max() <= 1e-4
    # No entity at all (the graph gets one masked-out row).
    y = load_pair(Pair("p", ir, vi))
    none = onnx_fuser.fuse_y(y.ir[None], y.vi[None], []) - torch_fuser.fuse_y(y.ir[None], y.vi[None], [])
    assert none.abs().max() <= 1e-4


def test_shipped_model_onnx_equals_pytorch_on_real_pairs(shipped_export, data_dir):
    """Each backend reads its own folder's caption-free policy: the export carries validation.json."""
    assert (shipped_export / "validation.json").read_bytes() == (DEFAULT_CHECKPOINT / "validation.json").read_bytes()
    _compare(DEFAULT_CHECKPOINT, shipped_export, data_dir, threshold=0.5)


def test_export_raises_no_warning_a_user_cannot_act_on(shipped_export_run):
    assert shipped_export_run.warnings == []
    assert shipped_export_run.logs == []


@pytest.mark.slow
def test_patch_layout_onnx_equals_pytorch_on_a_real_pair(patch_checkpoint, tmp_path, data_dir):
    assert main(["export", "--checkpoint", str(patch_checkpoint), "-o", str(tmp_path)]) == 0
    _compare(
        patch_checkpoint,
        tmp_path,
        data_dir,
        threshold=0.0,
        pairs=PAIRS[1:],
        validation={"classification": {"map": 0.9, "prior_map": 0.5}},
    )  # untrained: no validation.json


def test_fuse_cli_with_onnxruntime(shipped_export, data_dir, tmp_path, capsys):
    ir, vi = data_dir / "tno" / "ir" / "07.png", data_dir / "tno" / "vi" / "07.png"
    assert (
        main(
            [
                "fuse",
                "--checkpoint",
                str(shipped_export),
                "--backend",
                "onnxruntime",
                "--ir",
                str(ir),
                "--vi",
                str(vi),
                "-o",
                str(tmp_path / "f.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "f.png").is_file()


def test_a_folder_without_graphs_is_a_one_line_error(tmp_path):
    (tmp_path / "config.json").write_text((DEFAULT_CHECKPOINT / "config.json").read_text())
    with pytest.raises(EGMTError, match="fusion.onnx: not found"):
        EGMTFuser.from_pretrained(tmp_path, backend="onnxruntime")


@pytest.mark.slow
@pytest.mark.parametrize(
    "head",
    [
        dict(fusion_output="weights", weight_prior="contrast"),
        dict(fusion_output="residual"),
        dict(fusion_output="weights", ir_rebase_spread="guided"),
    ],
    ids=["prior", "residual", "guided"],
)
def test_the_contrast_prior_and_the_rebased_infrared_export(tmp_path, data_dir, head):
    """``weight_prior="contrast"`` and ``fusion_output="residual"`` compute the rule inside the graph
    (blurs, a median for the noise level), ``ir_rebase`` the re-based infrared (blurs, or the
    guided filter's box means): the exported model fuses as PyTorch does."""
    checkpoint = _small_checkpoint(tmp_path / "ckpt", layout="patch", ir_rebase=16.0, **head)
    assert main(["export", "--checkpoint", str(checkpoint), "-o", str(tmp_path / "onnx")]) == 0
    _compare(
        checkpoint,
        tmp_path / "onnx",
        data_dir,
        threshold=0.0,
        pairs=PAIRS[:1],
        validation={"classification": {"map": 0.9, "prior_map": 0.5}},
    )
