"""`egmt evaluate` / egmt.bench.evaluate.evaluate on small folders written on the fly."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from egmt.bench.evaluate import evaluate
from egmt.cli import main
from egmt.errors import EGMTError
from egmt.metrics import DEFAULT_METRICS, compute_fusion_metrics, rgb2gray

FAST = ["PSNR", "MI", "Nabf", "SSIM", "SCD", "EN"]


def _image(seed: int, size=(40, 48)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.normal(size=size), 1.5) + 0.2 * rng.normal(size=size)
    return np.round((x - x.min()) / np.ptp(x) * 255).astype(np.uint8)


@pytest.fixture
def dataset(tmp_path: Path) -> dict:
    """ir/vi with stems 1, 2, 10; methods 'avg' (mean) and 'ir' (a copy of the infrared)."""
    arrays = {}
    for d in ("ir", "vi", "avg", "ir_copy"):
        (tmp_path / d).mkdir()
    for k, stem in enumerate(["1", "2", "10"]):
        a, b = _image(2 * k), _image(2 * k + 1)
        f = ((a.astype(int) + b) // 2).astype(np.uint8)
        Image.fromarray(a).save(tmp_path / "ir" / f"{stem}.png")
        Image.fromarray(np.dstack([b, b, b])).save(tmp_path / "vi" / f"{stem}.jpg", quality=100)
        Image.fromarray(f).save(tmp_path / "avg" / f"{stem}.png")
        Image.fromarray(a).save(tmp_path / "ir_copy" / f"{stem}.png")
        vi_read = rgb2gray(np.array(Image.open(tmp_path / "vi" / f"{stem}.jpg")))
        arrays[stem] = (a, vi_read, f)
    return {"root": tmp_path, "arrays": arrays}


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_tables_and_values(dataset):
    root = dataset["root"]
    summary = evaluate(
        root / "ir",
        root / "vi",
        {"avg": root / "avg", "ir": root / "ir_copy"},
        root / "out",
        metrics=FAST,
        workers=1,
        progress=False,
    )
    assert summary.methods == ["avg", "ir"] and summary.metrics == FAST
    assert summary.counts == {"avg": 3, "ir": 3}

    rows = _read_csv(summary.per_image_csv)
    assert [(r["method"], r["image"]) for r in rows] == [
        ("avg", "1"),
        ("avg", "2"),
        ("avg", "10"),
        ("ir", "1"),
        ("ir", "2"),
        ("ir", "10"),
    ]
    for r in rows:
        a, b, f = dataset["arrays"][r["image"]]
        fused = f if r["method"] == "avg" else a
        errors: dict = {}
        expected = compute_fusion_metrics(a, b, fused, FAST, threads=1, errors=errors)
        for name in FAST:
            if math.isnan(expected[name]):
                assert r[name] == ""  # undefined: an empty cell, reported
            else:
                assert float(r[name]) == expected[name]  # full precision round-trip
    # F = IR: SCD undefined on every image, reported by name; PSNR finite; Nabf exactly 0
    assert sum("ir/" in p and "SCD" in p for p in summary.problems) == 3
    assert summary.mean["ir"]["Nabf"] == 0.0 and math.isnan(summary.mean["ir"]["SCD"])

    means = _read_csv(summary.summary_csv)
    assert [m["method"] for m in means] == ["avg", "ir"]
    for name in FAST[:4]:
        per = [float(r[name]) for r in rows if r["method"] == "avg"]
        assert float(means[0][name]) == pytest.approx(np.mean(per), rel=1e-15)

    md = summary.summary_md.read_text()
    assert md.splitlines()[0].startswith("Profile: `paper`")
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    assert "PSNR [dB] ↑" in header and "MI [bits] ↑" in header and "Nabf ↓" in header and "Images" in header
    ir_row = next(line for line in md.splitlines() if line.startswith("| ir |"))
    avg_row = next(line for line in md.splitlines() if line.startswith("| avg |"))
    nabf_col = header.split("|").index(" Nabf ↓ ")
    assert ir_row.split("|")[nabf_col].strip() == "**0.00000**"  # lower is better: 0 wins
    assert "**" not in avg_row.split("|")[nabf_col]
    assert summary.best("PSNR") == (["avg"] if summary.mean["avg"]["PSNR"] > summary.mean["ir"]["PSNR"] else ["ir"])


def test_problems_are_reported_and_skipped(dataset):
    root = dataset["root"]
    (root / "avg" / "2.png").unlink()  # missing
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "ir_copy" / "1.png")  # size mismatch
    (root / "ir_copy" / "10.png").write_bytes((root / "avg" / "10.png").read_bytes()[:60])  # truncated
    Image.fromarray(np.zeros((40, 48, 4), np.uint8)).save(root / "avg" / "10.png")  # RGBA: alpha dropped, scored
    Image.fromarray(_image(9)).save(root / "avg" / "99.png")  # no source pair
    Image.fromarray(_image(9)).save(root / "ir" / "5.png")  # no visible pair
    seen: list[str] = []
    summary = evaluate(
        root / "ir",
        root / "vi",
        {"avg": root / "avg", "ir": root / "ir_copy"},
        root / "out",
        metrics=["PSNR"],
        workers=1,
        progress=False,
        log=seen.append,
    )
    text = "\n".join(summary.problems)
    assert seen == summary.problems
    assert "fused avg: '2' missing" in text
    assert "vi: '5' missing" in text
    assert "fused avg: '99' has no ir/vi pair" in text
    assert "1.png: size 10x10 differs" in text
    assert "10.png: unreadable image" in text
    assert "avg/10" not in text and "avg/10.png" not in text
    assert summary.counts == {"avg": 2, "ir": 1}
    assert len(_read_csv(summary.per_image_csv)) == 3
    # the summary table says what was left out (there is no log file to look in), the first five by name
    md = summary.summary_md.read_text()
    assert f"{len(summary.problems)} problem(s), left out of the means: {summary.problems[0]}" in md
    assert f"and {len(summary.problems) - 5} more" in md if len(summary.problems) > 5 else "more." not in md
    assert all(p in md for p in summary.problems[:5]) and not any(p in md for p in summary.problems[5:])


def test_rgb_fused_images_are_scored_as_grey(dataset, tmp_path):
    root = dataset["root"]
    (root / "rgb").mkdir()
    rng = np.random.default_rng(5)
    for stem in ("1", "2", "10"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)).save(root / "rgb" / f"{stem}.png")
    summary = evaluate(root / "ir", root / "vi", {"rgb": root / "rgb"}, root / "out", metrics=FAST[:3], workers=1, progress=False)
    row = _read_csv(summary.per_image_csv)[0]
    a, b, _ = dataset["arrays"]["1"]
    grey = rgb2gray(np.array(Image.open(root / "rgb" / "1.png")))
    assert float(row["MI"]) == compute_fusion_metrics(a, b, grey, ["MI"], threads=1)["MI"]


def test_workers_give_the_same_results(dataset):
    root = dataset["root"]
    fused = {"avg": root / "avg", "ir": root / "ir_copy"}
    one = evaluate(root / "ir", root / "vi", fused, root / "one", metrics=DEFAULT_METRICS, workers=1, progress=False)
    two = evaluate(root / "ir", root / "vi", fused, root / "two", metrics=DEFAULT_METRICS, workers=2, progress=False)
    assert one.per_image_csv.read_text() == two.per_image_csv.read_text()
    assert one.summary_md.read_text() == two.summary_md.read_text()


def test_bad_folders_raise(dataset, tmp_path):
    root = dataset["root"]
    with pytest.raises(EGMTError, match="ir folder not found"):
        evaluate(root / "nope", root / "vi", {"avg": root / "avg"}, root / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EGMTError, match="no images"):
        evaluate(tmp_path / "empty", root / "vi", {"avg": root / "avg"}, root / "out", progress=False)
    with pytest.raises(EGMTError, match="fused avg folder not found"):
        evaluate(root / "ir", root / "vi", {"avg": root / "missing"}, root / "out", progress=False)
    with pytest.raises(EGMTError, match="no .* triple"):
        evaluate(root / "ir", root / "vi", {"e": tmp_path / "empty"}, root / "out", progress=False)


def test_cli(dataset, capsys):
    root = dataset["root"]
    args = [
        "evaluate",
        "--ir",
        str(root / "ir"),
        "--vi",
        str(root / "vi"),
        "--fused",
        f"avg={root / 'avg'}",
        "--fused",
        f"ir={root / 'ir_copy'}",
        "--metrics",
        "PSNR,MI",
        "Nabf",
        "-o",
        str(root / "cli"),
        "--workers",
        "1",
        "--no-progress",
    ]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "| Method | Images | PSNR [dB] ↑ | MI [bits] ↑ | Nabf ↓ |" in out.out
    assert (root / "cli" / "summary.md").is_file() and (root / "cli" / "per_image.csv").is_file()

    assert (
        main(
            [
                "evaluate",
                "--ir",
                str(root / "nope"),
                "--vi",
                str(root / "vi"),
                "--fused",
                f"avg={root / 'avg'}",
                "-o",
                str(root / "x"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("egmt: error: ir folder not found") and err.count("\n") == 1
    assert (
        main(
            [
                "evaluate",
                "--ir",
                str(root / "ir"),
                "--vi",
                str(root / "vi"),
                "--fused",
                f"avg={root / 'avg'}",
                "--metrics",
                "QQ",
                "-o",
                str(root / "x"),
            ]
        )
        == 2
    )
    assert "unknown metric 'QQ'" in capsys.readouterr().err


def test_score_cache_reuses_unchanged_triples_only(dataset, monkeypatch):
    import os

    import egmt.bench.evaluate as ev

    root = dataset["root"]
    folders = {"avg": root / "avg", "ir": root / "ir_copy"}
    cache = root / "scores.csv"
    first = evaluate(root / "ir", root / "vi", folders, root / "out", metrics=FAST, workers=1, progress=False, cache=cache)
    scored = []
    real = ev._score_stem
    monkeypatch.setattr(
        ev,
        "_score_stem",
        lambda stem, ir, vi, todo, *a: scored.append((stem, [m for m, _ in todo])) or real(stem, ir, vi, todo, *a),
    )
    again = evaluate(root / "ir", root / "vi", folders, root / "out2", metrics=FAST, workers=1, progress=False, cache=cache)
    assert scored == []  # nothing changed: every value read back, NaN (undefined) included
    assert _read_csv(again.per_image_csv) == _read_csv(first.per_image_csv)
    # a rewritten fused image is scored again, alone; a metric not in the cache rescores its rows
    stat = os.stat(root / "avg" / "2.png")
    Image.fromarray(dataset["arrays"]["2"][0]).save(root / "avg" / "2.png")
    os.utime(root / "avg" / "2.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = evaluate(root / "ir", root / "vi", folders, root / "out3", metrics=FAST, workers=1, progress=False, cache=cache)
    assert scored == [("2", ["avg"])]
    assert changed.mean["avg"]["MI"] != first.mean["avg"]["MI"]
    scored.clear()
    evaluate(root / "ir", root / "vi", folders, root / "out4", metrics=[*FAST, "AG"], workers=1, progress=False, cache=cache)
    assert sorted(scored) == [("1", ["avg", "ir"]), ("10", ["avg", "ir"]), ("2", ["avg", "ir"])]
    # the AG run kept the other metrics: asking for the first set again scores nothing
    scored.clear()
    evaluate(root / "ir", root / "vi", folders, root / "out6", metrics=FAST, workers=1, progress=False, cache=cache)
    assert scored == []
    # a damaged cache file is ignored, not an error
    cache.write_text("not,a\ncache")
    evaluate(root / "ir", root / "vi", folders, root / "out7", metrics=["MI"], workers=1, progress=False, cache=cache)
    assert len(scored) == 3
    # another profile never reads this profile's values
    scored.clear()
    evaluate(
        root / "ir", root / "vi", folders, root / "out5", metrics=["MI"], workers=1, progress=False, cache=cache, profile="vifb"
    )
    assert len(scored) == 3


def test_everything_cached_with_several_workers(dataset):
    """A second run whose every triple is in the cache scores nothing and starts no pool (it
    crashed with workers > 1: a pool of zero processes)."""
    root = dataset["root"]
    folders = {"avg": root / "avg"}
    cache = root / "scores.csv"
    first = evaluate(root / "ir", root / "vi", folders, root / "out", metrics=["MI"], workers=1, progress=False, cache=cache)
    again = evaluate(root / "ir", root / "vi", folders, root / "out2", metrics=["MI"], workers=2, progress=False, cache=cache)
    assert _read_csv(again.per_image_csv) == _read_csv(first.per_image_csv)
