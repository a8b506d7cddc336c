"""Table VIII: `egmt benchmark --ablation NAME=DIR` scores ablation checkpoints like EGMT."""

from __future__ import annotations

import shutil

import pytest

from egmt.bench import benchmark as bench
from egmt.cli import main
from egmt.config import EGMTConfig
from egmt.errors import EGMTError
from egmt.model import EGMT
from egmt.train.checkpoint import resolve_checkpoint
from tests.bench.test_benchmark import METRICS, _options, _table


def _ablated(tiny_checkpoint, folder, **switches):
    """An untrained model of the tiny checkpoint's config with some stages switched off, with its bank and vocabulary."""
    src = resolve_checkpoint(tiny_checkpoint)
    cfg = EGMTConfig.load(src / "config.json")
    for key, value in switches.items():
        setattr(cfg.model, key, value)
    EGMT(cfg.model).save_pretrained(folder, cfg)
    for name in ("entity_bank.safetensors", "vocabulary.json"):
        if (src / name).is_file():
            shutil.copy(src / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def ablation_run(tiny_root, tiny_checkpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ablation")
    ablations = {
        "w/o CGHA": _ablated(tiny_checkpoint, tmp / "no-cgha", cgha=False),
        "w/o TI": _ablated(tiny_checkpoint, tmp / "no-ti", text_interaction=False),
        "same": tiny_checkpoint,  # the full model again, as a run folder: must score exactly like EGMT
    }
    options = _options(tiny_root, tmp, tiny_checkpoint, methods=["egmt", "average"], tables=["fusion"], ablations=ablations)
    return options, bench.run_benchmark(options)


def test_ablations_are_scored_like_egmt(ablation_run):
    options, result = ablation_run
    for d in ("tno", "roadscene"):
        summary = result.ablation[d]
        assert summary.methods == ["egmt", "w/o CGHA", "w/o TI", "same"]
        assert summary.mean["same"] == summary.mean["egmt"] == result.fusion[d].mean["egmt"]
        assert summary.mean["w/o CGHA"] != summary.mean["egmt"]
        assert set(summary.counts.values()) == {result.pairs[d]}
        # egmt's images are those of the fusion table (cached, not fused twice)
        assert result.fuse_stats[(d, "egmt")].cached == result.pairs[d]
        assert result.fuse_stats[(d, "ablation/w/o TI")].fused == result.pairs[d]
    assert (options.out / "tno" / "ablation" / "w_o_CGHA" / "01.png").is_file()


def test_results_file_has_table_viii(ablation_run):
    options, result = ablation_run
    text = options.results.read_text(encoding="utf-8")
    assert "## Ablations (paper Table VIII)" in text
    assert text.index("## Fusion quality") < text.index("## Ablations")
    section = text[text.index("## Ablations") :]
    rows = _table(section, "TNO")
    assert [r[0] for r in rows[2:]] == ["EGMT (full)", "w/o CGHA", "w/o TI", "same"]
    assert rows[2][2:] == rows[5][2:] and len(rows[2]) == 2 + len(METRICS)
    assert bench.file_hash(options.ablations["w/o CGHA"] / "model.safetensors") in section


def test_ablations_from_the_cli(tiny_root, tiny_checkpoint, tmp_path, capsys):
    no_ca = _ablated(tiny_checkpoint, tmp_path / "no-ca", channel_attention=False)
    args = [
        "benchmark",
        "--data",
        str(tiny_root / "data"),
        "--datasets",
        "tno",
        "--methods",
        "average",
        "--checkpoint",
        str(tiny_checkpoint),
        "--annotations",
        str(tiny_root / "annotations"),
        "--out",
        str(tmp_path / "out"),
        "-o",
        str(tmp_path / "r.md"),
        "--tables",
        "fusion",
        "--metrics",
        "PSNR",
        "--device",
        "cpu",
        "--workers",
        "1",
        "--no-progress",
        "--peers",
        str(tmp_path / "none"),
        "--figure-pairs",
        "0",
        "--ablation",
        f"w/o CA={no_ca}",
    ]
    assert main(args) == 0
    assert "tno/ablation/w/o CA: fused 3" in capsys.readouterr().out
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| w/o CA | 3 |" in text
    assert main(args[:-1] + ["no-equals-sign"]) == 2
    assert "expected NAME=DIR" in capsys.readouterr().err
    assert main(args + ["--ablation", f"w/o CA={no_ca}"]) == 2
    assert "given twice" in capsys.readouterr().err


def test_bad_ablation_names(tiny_root, tiny_checkpoint, tmp_path):
    with pytest.raises(EGMTError, match="not an egmt method name"):
        bench.run_benchmark(_options(tiny_root, tmp_path, tiny_checkpoint, ablations={"average": tiny_checkpoint}))
    with pytest.raises(EGMTError, match="share a folder name"):
        bench.run_benchmark(
            _options(tiny_root, tmp_path, tiny_checkpoint, ablations={"a/b": tiny_checkpoint, "a b": tiny_checkpoint})
        )
