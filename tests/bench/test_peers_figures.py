"""`egmt benchmark`: the learned peers' rows (scored like egmt) and the comparison figures."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from PIL import Image

from egmt.bench import benchmark as bench
from egmt.bench.figures import TILE_WIDTH, figure_pairs
from egmt.data.pairs import Pair
from egmt.errors import EGMTError
from tests.bench.test_benchmark import METRICS, _options, _table


@pytest.fixture(scope="module")
def peer_run(tiny_root, tiny_checkpoint, tmp_path_factory):
    """A first run gives egmt's and the average's images; peers are made from them: "Copy"
    (egmt's images, plus one of a pair outside RoadScene's split) and "Half" (one TNO image)."""
    tmp = tmp_path_factory.mktemp("peers")
    first = bench.run_benchmark(_options(tiny_root, tmp, tiny_checkpoint, results=tmp / "first.md"))
    peers = tmp / "peers"
    for d in ("tno", "roadscene"):
        shutil.copytree(tmp / "out" / d / "egmt", peers / "Copy" / d, ignore=shutil.ignore_patterns("*.json"))
    shutil.copy(tmp / "out" / "roadscene" / "average" / "FLIR_00211.png", peers / "Copy" / "roadscene" / "FLIR_01130.png")
    (peers / "Half" / "tno").mkdir(parents=True)
    shutil.copy(tmp / "out" / "tno" / "average" / "01.png", peers / "Half" / "tno" / "01.png")
    options = _options(
        tiny_root, tmp, tiny_checkpoint, peers=peers, figures=tmp / "docs" / "figures", results=tmp / "docs" / "results.md"
    )
    return options, first, bench.run_benchmark(options)


def test_peers_are_scored_like_egmt_on_the_same_pairs(peer_run):
    options, first, result = peer_run
    for d in ("tno", "roadscene"):
        summary = result.fusion[d]
        assert summary.mean["Copy"] == pytest.approx(summary.mean["egmt"], rel=0, abs=0)
        assert summary.mean["egmt"] == first.fusion[d].mean["egmt"]  # egmt's own row is unchanged
    # RoadScene: only the split's pairs count; the extra file is not scored nor reported
    assert result.fusion["roadscene"].counts["Copy"] == 2
    assert not any("FLIR_01130" in p for p in result.fusion["roadscene"].problems)
    assert "Half" not in result.fusion["roadscene"].methods
    # a peer without some pairs is scored on those it has, with its own count
    tno = result.fusion["tno"]
    assert tno.counts["Half"] == 1
    with open(first.fusion["tno"].per_image_csv) as f:
        row = next(r for r in csv.DictReader(f) if r["method"] == "average" and r["image"] == "01")
    assert all(tno.mean["Half"][m] == pytest.approx(float(row[m]), rel=1e-12) for m in METRICS)
    text = options.results.read_text(encoding="utf-8")
    rows = _table(text, "TNO")
    assert [r[0] for r in rows[2:5]] == ["EGMT (ours)", "Copy", "Half"]  # ours, the peers, then baselines
    assert rows[3][2:] == rows[2][2:] and rows[4][1] == "1"
    assert "Learned peers (Copy, Half)" in text


def test_without_a_peers_folder_the_table_says_so(tiny_root, tiny_checkpoint, tmp_path):
    options = _options(tiny_root, tmp_path, tiny_checkpoint, datasets=["tno"], peers=tmp_path / "missing")
    result = bench.run_benchmark(options)
    text = options.results.read_text(encoding="utf-8")
    assert set(result.fusion["tno"].methods) == {"egmt", "average", "max_abs"}
    assert "No learned peers' rows: no peers folder at" in text


def test_comparison_figure_per_dataset_linked_from_results(peer_run, tiny_root):
    options, _, _ = peer_run
    text = options.results.read_text(encoding="utf-8")
    assert "## Comparison figures (paper Fig. 4)" in text
    assert text.index("## Fusion quality") < text.index("## Comparison figures")
    for d, first_stems in (("tno", "01, 02"), ("roadscene", "FLIR_00211, FLIR_00977")):
        figure = options.figures / f"{d}.png"
        assert f"](figures/{d}.png)" in text and f"pairs {first_stems}" in text
        with Image.open(figure) as im:
            # columns: IR, VIS, EGMT, Copy, (Half: TNO only), Average, Max-abs; 2 rows of tiles
            columns = 7 if d == "tno" else 6
            assert im.width == columns * TILE_WIDTH + (columns - 1) * 2
            assert im.height == 14 + 2 * (round(TILE_WIDTH * 64 / 80) + 2)
        assert figure.stat().st_size < 100_000
    assert "Columns: IR, VIS, EGMT, Copy, Half, Average, Max-abs" in text


def test_figure_rows_are_the_first_stems_in_natural_order():
    pairs = [Pair(n, Path(f"{n}.png"), Path(f"{n}.png")) for n in ("img10", "img9", "a", "img1")]
    assert [p.name for p in figure_pairs(pairs, 3)] == ["a", "img1", "img9"]


def test_a_peer_named_like_a_method_is_an_error(tiny_root, tiny_checkpoint, tmp_path):
    (tmp_path / "peers" / "average" / "tno").mkdir(parents=True)
    with pytest.raises(EGMTError, match="named like an egmt method"):
        bench.run_benchmark(_options(tiny_root, tmp_path, tiny_checkpoint, datasets=["tno"], peers=tmp_path / "peers"))
