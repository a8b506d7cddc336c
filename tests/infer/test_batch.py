"""``torchrun -m egmt fuse`` on folders: two CPU ranks (gloo) fuse disjoint shards covering the
folder, byte for byte as one process does; a run killed half way (SIGKILL) resumes and ends
with every pair fused exactly once. Pairs: 64x64 crops of the bundled TNO samples."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from egmt.data.pairs import Pair
from egmt.infer.batch import shard

REPO = Path(__file__).resolve().parents[2]
SIZE = 64


def _fuse_cmd(ranks: int | None, data: Path, out: Path, *extra: str) -> list[str]:
    launch = [] if ranks is None else ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)]
    # --visible, not --vi: torchrun's parser takes "--vi" for its --virtual-local-rank
    return [
        sys.executable,
        *launch,
        "-m",
        "egmt",
        "fuse",
        "--ir",
        str(data / "ir"),
        "--visible",
        str(data / "vi"),
        "-o",
        str(out),
        "--device",
        "cpu",
        *extra,
    ]


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """40 pairs: 64x64 crops of the four TNO sample pairs at ten places each."""
    root = tmp_path_factory.mktemp("pairs")
    for m in ("ir", "vi"):
        (root / m).mkdir()
        for src in sorted((REPO / "samples" / "tno" / m).glob("*.png")):
            a = np.asarray(Image.open(src))
            for k in range(10):
                y, x = 20 * k % (a.shape[0] - SIZE), 37 * k % (a.shape[1] - SIZE)
                Image.fromarray(a[y : y + SIZE, x : x + SIZE]).save(root / m / f"{src.stem}_{k}.png")
    return root


def _manifest(out: Path) -> list[dict]:
    with (out / "manifest.csv").open() as f:
        return list(csv.DictReader(f))


def _complete(out: Path) -> list[Path]:
    """The fused PNGs in ``out`` (not the temporary ``.NAME.*.png`` of one being written)."""
    return sorted(p for p in out.glob("*.png") if not p.name.startswith("."))


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in _complete(out)}


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux /proc): torchrun starts each rank in a session of its own,
    so killing torchrun's process group does not reach them."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found += kids
        todo += kids
    return found


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_shards_are_disjoint_and_cover_the_pairs(world):
    pairs = [Pair(n, Path(n), Path(n)) for n in "qwertyuiopasdfg"]
    shards = [shard(pairs, r, world) for r in range(world)]
    names = [p.name for s in shards for p in s]
    assert sorted(names) == sorted(p.name for p in pairs) and len(set(names)) == len(names)
    assert shards == [shard(list(reversed(pairs)), r, world) for r in range(world)]  # by name, not by order given


@pytest.fixture(scope="module")
def single(folder, checkpoint, tmp_path_factory) -> Path:
    """The reference: one process, no torchrun."""
    out = tmp_path_factory.mktemp("single") / "out"
    _run(_fuse_cmd(None, folder, out, "--checkpoint", str(checkpoint)))
    return out


@pytest.mark.slow
def test_two_ranks_fuse_disjoint_shards_as_one_process_does(folder, checkpoint, single, tmp_path):
    out = tmp_path / "out"
    proc = _run(_fuse_cmd(2, folder, out, "--checkpoint", str(checkpoint)))
    rows = _manifest(out)
    names = sorted(p.stem for p in (folder / "ir").iterdir())
    assert [r["name"] for r in rows] == names  # every pair once
    assert {r["status"] for r in rows} == {"fused"}
    pairs = [Pair(n, Path(n), Path(n)) for n in names]
    for rank in (0, 1):  # each rank fused exactly its shard
        assert [r["name"] for r in rows if r["rank"] == str(rank)] == [p.name for p in shard(pairs, rank, 2)]
    assert _outputs(out) == _outputs(single) and len(_outputs(out)) == 40  # byte for byte
    assert "2 rank(s): fused 40 pair(s), 0 already there, 0 failed, of 40" in proc.stdout


@pytest.mark.slow
def test_a_killed_run_resumes_and_fuses_every_pair_exactly_once(folder, checkpoint, single, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(
        _fuse_cmd(2, folder, out, "--checkpoint", str(checkpoint)),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600  # a safety net only: start-up alone can take minutes on a loaded machine
    while not _complete(out) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first run ended before it could be killed"
    for pid in [first.pid, *_descendants(first.pid)]:  # torchrun and both ranks, mid-way
        os.kill(pid, signal.SIGKILL)
    first.wait()
    time.sleep(0.5)  # the ranks' deaths are reaped by nobody we wait on: let the kernel finish them
    done = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _complete(out)}
    assert 0 < len(done) < 40 and not (out / "manifest.csv").exists()

    _run(_fuse_cmd(2, folder, out, "--checkpoint", str(checkpoint)))
    rows = _manifest(out)
    assert len(rows) == 40 and len({r["name"] for r in rows}) == 40
    assert {f"{r['name']}.png" for r in rows if r["status"] == "exists"} == set(done)
    assert {f"{r['name']}.png" for r in rows if r["status"] == "fused"} == {
        f"{p.stem}.png" for p in (folder / "ir").iterdir()
    } - set(done)
    assert {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in ((n, out / n) for n in done)} == done  # untouched
    assert _outputs(out) == _outputs(single)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left over


def test_one_process_run_skips_existing_removes_stale_temporaries_and_reports_failures(tmp_path):
    from egmt.errors import EGMTError
    from egmt.infer.batch import run_sharded
    from egmt.train.distributed import DistInfo

    pairs = [Pair(n, Path(n), Path(n)) for n in ("b", "a", "c", "d")]
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("from an earlier run")
    (out / ".b.k2j4h_x9.txt").write_text("half-written by a killed run")
    (out / ".b.x.k2j4h_x9.txt").write_text("another pair's (b.x) temporary, perhaps being written now")
    fused = []

    def process(pair: Pair, target: Path) -> dict:
        if pair.name == "d":
            raise EGMTError(f"{pair.ir}: unreadable")
        fused.append(pair.name)
        target.write_text(pair.name)
        return {"entities": pair.name.upper()}

    report = run_sharded(pairs, ["x.png: no visible partner"], out, lambda p: out / f"{p.name}.txt", process, DistInfo())
    assert fused == ["b", "c"] and (out / "a.txt").read_text() == "from an earlier run"
    assert not (out / ".b.k2j4h_x9.txt").exists() and (out / ".b.x.k2j4h_x9.txt").exists()
    assert report.failures == ["x.png: no visible partner", "d: d: unreadable"]
    rows = _manifest(out)
    assert [(r["name"], r["status"], r["entities"]) for r in rows] == [
        ("a", "exists", ""),
        ("b", "fused", "B"),
        ("c", "fused", "C"),
        ("d", "failed", ""),
    ]
    assert report.summary().startswith("1 rank(s): fused 2 pair(s), 1 already there, 1 failed, of 4")
