"""`egmt benchmark` on the tiny data root: tables, paper rows, counts, cache, kept blocks."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from egmt.bench import benchmark as bench
from egmt.bench.paper import PAPER_FUSION
from egmt.cli import benchmark as cli_benchmark
from egmt.cli import main
from egmt.errors import EGMTError
from egmt.metrics import FUSION_METRICS

METRICS = ["SSIM", "MI", "PSNR", "Nabf"]  # fast, with both ↑ and ↓


def _options(root: Path, tmp: Path, checkpoint: Path, **kw) -> bench.BenchmarkOptions:
    base = dict(
        data=root / "data",
        datasets=["tno", "roadscene"],
        methods=["egmt", "average", "max_abs"],
        checkpoint=checkpoint,
        annotations=root / "annotations",
        out=tmp / "out",
        results=tmp / "results.md",
        tables=["fusion"],
        metrics=METRICS,
        device="cpu",
        workers=1,
        progress=False,
        peers=None,
        figures=None,
    )
    base.update(kw)
    return bench.BenchmarkOptions(**base)


def _table(text: str, title: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table under the heading that starts with ``title``."""
    block = text[text.index(f"### {title}") :]
    lines = [ln for ln in block.splitlines()[1:] if ln.strip()]
    rows = []
    for ln in lines:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("*.png"))}


@pytest.fixture(scope="module")
def fusion_run(tiny_root, tiny_checkpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fusion")
    options = _options(tiny_root, tmp, tiny_checkpoint, methods=["egmt", "average", "max_abs", "contrast"])
    return options, bench.run_benchmark(options)


def test_results_file_has_a_table_per_dataset_in_the_papers_layout(fusion_run, tiny_checkpoint):
    options, result = fusion_run
    text = options.results.read_text(encoding="utf-8")
    assert text.count("<!-- egmt-benchmark:fusion-tno -->") == 1
    assert text.count("<!-- egmt-benchmark:fusion-roadscene -->") == 1
    assert "Tables I, II, IV" in text
    # provenance: date, commit, checkpoint and the hash of its weights, machine
    assert re.search(r"Date: \d{4}-\d\d-\d\d", text)
    assert "egmt commit: `" in text
    assert str(tiny_checkpoint) in text and bench.file_hash(tiny_checkpoint / "model.safetensors") in text
    assert "torch " in text and "threads" in text

    for title, dataset, n in (("TNO", "tno", 3), ("RoadScene", "roadscene", 2)):
        assert f"### {title}" in text and f"{n} of {n} pairs scored" in text
        rows = _table(text, title)
        header = rows[0]
        assert header[:5] == ["Method", "Pairs", "Targets kept", "Seams (worst pair)", "Glow (worst pair)"]
        assert header[5:] == [f"{m} {FUSION_METRICS[m].arrow}" for m in METRICS]
        body = {r[0]: r for r in rows[2:]}
        # glow: a mix of the sources never leaves their range
        assert body["Average"][4] == body["Max-abs"][4] == "0 %"
        assert list(body)[:3] == ["EGMT (ours)", "Average", "Max-abs"]
        assert "Contrast target" in body  # the shipped recipe's loss target, said in the caption
        assert all(body[m][1] == str(n) for m in ("EGMT (ours)", "Average", "Max-abs"))
        # thermal-target retention: averaging halves the warm targets, max-abs keeps them; the TNO
        # crops' hottest IR pixels are no warmer than the visible image, so there is nothing to keep
        kept = {m: body[m][2] for m in ("Average", "Max-abs")}
        assert kept == ({"Average": "0.50", "Max-abs": "1.00"} if dataset == "roadscene" else {"Average": "–", "Max-abs": "–"})
        # seams: the mean over the pairs and the worst pair, by name (averaging draws no grid: near 1 on these small crops)
        seam = re.fullmatch(r"(\d\.\d\d) \((\S+): (\d\.\d\d)\)", body["Average"][3])
        assert seam and 0.5 < float(seam[1]) < 1.2 and float(seam[3]) >= float(seam[1])
        # the paper's EGMT row, in italics, with its own pair count and values
        paper = body[f"*EGMT, paper ({PAPER_FUSION[dataset].table})*"]
        assert paper[1] == str(PAPER_FUSION[dataset].pairs)
        assert paper[2] == paper[3] == paper[4] == "" and paper[5] == f"*{PAPER_FUSION[dataset].values['SSIM']:.5f}*"
        # best of our rows in bold, per column, matching the computed means
        summary = result.fusion[dataset]
        for j, metric in enumerate(METRICS, start=5):
            bold = {name for name, r in body.items() if r[j].startswith("**")}
            expected = {bench.DISPLAY[m] for m in summary.best(metric)}
            assert bold == expected, (dataset, metric)
            assert not paper[j].startswith("**")
    assert text.count("Contrast target: the shipped recipe's eq. 12 intensity target used as the fusion") == 2
    assert result.pairs == {"tno": 3, "roadscene": 2}
    assert (options.out / "tno" / "summary.csv").is_file() and (options.out / "roadscene" / "per_image.csv").is_file()


def test_split_only_is_scored_without_missing_file_reports(fusion_run):
    _, result = fusion_run
    summary = result.fusion["roadscene"]
    assert summary.counts == {"egmt": 2, "average": 2, "max_abs": 2, "contrast": 2}
    assert summary.problems == []  # FLIR_01130 (not in test.txt) is not reported missing


def test_cache_skips_fresh_images_and_force_recomputes(tiny_root, tiny_checkpoint, tmp_path):
    options = _options(tiny_root, tmp_path, tiny_checkpoint, datasets=["tno"], methods=["egmt", "average"])
    first = bench.run_benchmark(options)
    assert first.fuse_stats[("tno", "egmt")].fused == 3
    egmt_dir, avg_dir = options.out / "tno" / "egmt", options.out / "tno" / "average"
    before = _mtimes(egmt_dir), _mtimes(avg_dir)
    assert len(before[0]) == 3

    again = bench.run_benchmark(options)
    assert again.fuse_stats[("tno", "egmt")].fused == 0 and again.fuse_stats[("tno", "egmt")].cached == 3
    assert (_mtimes(egmt_dir), _mtimes(avg_dir)) == before

    # an image older than the checkpoint is stale: only it is fused again
    stale = egmt_dir / "02.png"
    weights = (tiny_checkpoint / "model.safetensors").stat().st_mtime
    os.utime(stale, (weights - 10, weights - 10))
    partial = bench.run_benchmark(options)
    assert partial.fuse_stats[("tno", "egmt")].fused == 1
    after = _mtimes(egmt_dir)
    assert after["01.png"] == before[0]["01.png"] and after["02.png"] != before[0]["02.png"]

    forced = bench.run_benchmark(
        _options(tiny_root, tmp_path, tiny_checkpoint, datasets=["tno"], methods=["egmt", "average"], force=True)
    )
    assert forced.fuse_stats[("tno", "egmt")].fused == 3 and forced.fuse_stats[("tno", "average")].fused == 3
    assert all(_mtimes(egmt_dir)[k] != after[k] for k in after)
    assert all(_mtimes(avg_dir)[k] != before[1][k] for k in before[1])


def test_another_checkpoint_invalidates_the_cache(tiny_root, tiny_checkpoint, tmp_path):
    options = _options(tiny_root, tmp_path, tiny_checkpoint, datasets=["tno"], methods=["egmt"])
    bench.run_benchmark(options)
    stamp = options.out / "tno" / "egmt" / bench.STAMP_FILE
    stamp.write_text(stamp.read_text().replace('"sha256": "', '"sha256": "0'))  # as if made by other weights
    assert bench.run_benchmark(options).fuse_stats[("tno", "egmt")].fused == 3
    # the same weights with entity guidance (config.json only): fused again, then cached
    import shutil

    from egmt.config import EGMTConfig

    guided = tmp_path / "guided"
    shutil.copytree(tiny_checkpoint, guided)
    config = EGMTConfig.load(guided / "config.json")
    config.model.entity_guidance = 1.0
    config.save(guided / "config.json")
    options = _options(tiny_root, tmp_path, guided, datasets=["tno"], methods=["egmt"])
    assert bench.run_benchmark(options).fuse_stats[("tno", "egmt")].fused == 3
    assert bench.run_benchmark(options).fuse_stats[("tno", "egmt")].fused == 0
    config.model.channel_attention_scope = "image"  # any other field of the model config the output depends on
    config.save(guided / "config.json")
    assert bench.run_benchmark(options).fuse_stats[("tno", "egmt")].fused == 3


def test_a_run_keeps_the_blocks_it_did_not_compute(fusion_run, tiny_root, tiny_checkpoint, tmp_path):
    options, _ = fusion_run
    results = tmp_path / "results.md"
    results.write_text(options.results.read_text(encoding="utf-8"), encoding="utf-8")
    tno_block = re.search(
        r"<!-- egmt-benchmark:fusion-tno -->.*?<!-- /egmt-benchmark:fusion-tno -->", results.read_text(), re.S
    ).group(0)
    bench.run_benchmark(
        _options(
            tiny_root,
            tmp_path,
            tiny_checkpoint,
            datasets=["tno"],
            methods=["average"],
            tables=["efficiency"],
            results=results,
            max_time_pairs=1,
        )
    )
    text = results.read_text(encoding="utf-8")
    assert tno_block in text  # untouched
    assert "<!-- egmt-benchmark:fusion-roadscene -->" in text
    assert "<!-- egmt-benchmark:efficiency -->" in text
    assert text.index("## Fusion quality") < text.index("## Efficiency")


def test_cli_runs_and_reports_counts(tiny_root, tiny_checkpoint, tmp_path, capsys):
    args = [
        "benchmark",
        "--data",
        str(tiny_root / "data"),
        "--datasets",
        "tno",
        "--methods",
        "egmt",
        "dwt",
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
        str(tmp_path / "no-peers"),
        "--figures",
        str(tmp_path / "figures"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "tno/egmt: fused 3, cached 0" in out and "tno: scored 3 of 3 pairs" in out
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| DWT | 3 |" in text
    assert "from `tno.jsonl` for 3 of 3 pairs" in text
    assert "No learned peers' rows: no peers folder at" in text
    assert (tmp_path / "figures" / "tno.png").is_file() and "](figures/tno.png)" in text


def test_bad_input_is_one_line_errors(tiny_root, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    with pytest.raises(EGMTError, match="unknown dataset"):
        bench.run_benchmark(_options(tiny_root, tmp_path, tiny_checkpoint, datasets=["m3fd"]))
    with pytest.raises(EGMTError, match="dataset folder not found"):
        bench.run_benchmark(_options(tiny_root, tmp_path, tiny_checkpoint, datasets=["msrs"]))
    with pytest.raises(EGMTError, match="unknown metric"):
        bench.run_benchmark(_options(tiny_root, tmp_path, tiny_checkpoint, metrics=["nope"]))
    monkeypatch.setattr(bench, "DEFAULT_CHECKPOINT", tmp_path / "not-shipped")
    assert (
        main(
            [
                "benchmark",
                "--data",
                str(tiny_root / "data"),
                "--datasets",
                "tno",
                "--out",
                str(tmp_path / "o"),
                "-o",
                str(tmp_path / "r.md"),
                "--no-progress",
                "--figures",
                str(tmp_path / "f"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("egmt: error:") and "--checkpoint" in err and len(err.strip().splitlines()) == 1


def test_cli_choices_match_the_bench_module():
    assert cli_benchmark.DATASETS == tuple(bench.DATASETS)
    assert cli_benchmark.METHODS == bench.METHODS
    assert cli_benchmark.TABLES == bench.TABLES
    assert cli_benchmark.DEFAULT_ANNOTATIONS == bench.DEFAULT_ANNOTATIONS
    assert (cli_benchmark.DEFAULT_OUT, cli_benchmark.DEFAULT_RESULTS) == (bench.DEFAULT_OUT, bench.DEFAULT_RESULTS)
    for name in ("DEFAULT_DATA", "DEFAULT_PEERS", "DEFAULT_FIGURES", "DEFAULT_BOXES"):
        assert getattr(cli_benchmark, name) == getattr(bench, name), name


def test_git_commit_names_only_egmts_own_checkout(tmp_path):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    assert bench.git_commit(tmp_path) == "unknown (not a git checkout)"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "pkg").mkdir()
    assert bench.git_commit(tmp_path / "pkg") == "unknown (not a git checkout)"  # inside another repository
    head = subprocess.run(["git", "-C", str(bench.REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert bench.git_commit().split()[0] == head.stdout.strip()


def test_a_foreign_results_file_is_not_overwritten(tiny_root, tiny_checkpoint, tmp_path):
    results = tmp_path / "notes.md"
    results.write_text("# My notes\n", encoding="utf-8")
    with pytest.raises(EGMTError, match="not written by `egmt benchmark`"):
        bench.run_benchmark(
            _options(tiny_root, tmp_path, tiny_checkpoint, datasets=["tno"], methods=["average"], results=results)
        )
    assert results.read_text(encoding="utf-8") == "# My notes\n"
    assert not (tmp_path / "out").exists()  # refused before any work


def test_heatmap_figure_per_dataset_linked_from_the_results(tiny_root, tiny_checkpoint, tmp_path):
    from PIL import Image

    from egmt.bench.figures import TILE_WIDTH

    figures = tmp_path / "figures"
    bench.run_benchmark(
        _options(tiny_root, tmp_path, tiny_checkpoint, datasets=["tno"], tables=["heatmaps"], figures=figures, figure_pairs=2)
    )
    text = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "## Entity heat maps (paper Fig. 5)" in text
    assert "](figures/heatmaps-tno.png)" in text
    resolver = bench.EntityResolver(annotations=tiny_root / "annotations" / "tno.jsonl")
    shown = bench.figure_pairs(bench.dataset_pairs(tiny_root / "data", "tno"), 2)
    counts = [len(resolver(p.name)[0]) for p in shown]
    with Image.open(figures / "heatmaps-tno.png") as im:
        # one row per pair; IR, VIS, fused, then one tile per entity: the widest row sets the width
        assert im.mode == "RGB" and im.width == (3 + max(counts)) * TILE_WIDTH + (2 + max(counts)) * 2
        assert im.height > len(shown) * 20


def test_the_results_header_names_the_checkpoints_entity_guidance():
    """The guidance factor lives in config.json, not in the weights' hash: the header says it."""
    from egmt.bench.provenance import Provenance

    machine = {"cpu": "x", "torch": "2", "threads": "1", "device": "cpu"}
    plain = Provenance("2026-12-06", "abc", "ckpt", "5a33d0ab40e5", machine)
    guided = Provenance("2026-12-06", "abc", "ckpt", "5a33d0ab40e5", machine, guidance=2.0)
    assert "guidance" not in plain.markdown() + plain.run_line()
    assert "sha256 `5a33d0ab40e5`, entity guidance 2)" in guided.markdown()
    assert "sha256 5a33d0ab40e5, guidance 2 ·" in guided.run_line()
