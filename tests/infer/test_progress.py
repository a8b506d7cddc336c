"""``egmt fuse --no-progress``: no progress bar on stderr, the same images written."""

from __future__ import annotations

from pathlib import Path

import pytest

from egmt.cli import main as cli_main
from tests.helpers import write_random_pairs


@pytest.fixture
def pairs(tmp_path) -> Path:
    """DATA/{ir,vi}/{a,b}.png: two grey pairs of 96x160 (8 tiles with --tile 64 and its 32-pixel overlap)."""
    return write_random_pairs(tmp_path / "data", ("a", "b"), (96, 160))


@pytest.mark.parametrize("method", ["average", "egmt"])
def test_no_progress_silences_the_pair_and_tile_bars(pairs, tmp_path, capsys, method):
    args = ["fuse", "--ir", str(pairs / "ir"), "--vi", str(pairs / "vi"), "--method", method]
    if method == "egmt":
        args += ["--tile", "64", "--entities", "person"]
    capsys.readouterr()
    assert cli_main([*args, "-o", str(tmp_path / "bars")]) == 0
    err = capsys.readouterr().err
    assert f"fuse ({method})" in err
    assert method != "egmt" or "fuse tiles" in err
    assert cli_main([*args, "-o", str(tmp_path / "quiet"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "fuse (" not in err and "tiles" not in err and "it/s" not in err and "pair/s" not in err, err
    for stem in ("a", "b"):
        assert (tmp_path / "bars" / f"{stem}.png").read_bytes() == (tmp_path / "quiet" / f"{stem}.png").read_bytes()
