"""Every command that writes images or tables refuses outputs that are, lie inside, or would
replace one of its inputs (one-line error, exit 2, inputs untouched), and writes atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from egmt.cli import main as cli_main
from tests.helpers import write_random_pairs


@pytest.fixture
def pairs(tmp_path) -> Path:
    """DATA/{ir,vi}/{a,b}.png: two small random grey pairs."""
    return write_random_pairs(tmp_path / "data", ("a", "b"), (32, 40))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(argv: list[str], capsys, match: str) -> None:
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("egmt: error: ") and "Traceback" not in err, err
    assert match in err, err


def test_fuse_refuses_to_overwrite_its_sources(pairs, capsys):
    before = _snapshot(pairs)
    ir, vi = str(pairs / "ir" / "a.png"), str(pairs / "vi" / "a.png")
    avg = ["--method", "average"]
    _refused(["fuse", "--ir", ir, "--vi", vi, "-o", ir, *avg], capsys, f"-o {ir}: is the input --ir {ir}")
    # -o the infrared folder: the pair's output would be DATA/ir/a.png, the source itself
    _refused(["fuse", "--ir", ir, "--vi", vi, "-o", str(pairs / "ir"), *avg], capsys, "would replace the input --ir")
    # folders: -o equal to a source folder, inside one
    folders = ["--ir", str(pairs / "ir"), "--vi", str(pairs / "vi")]
    _refused(["fuse", *folders, "-o", str(pairs / "ir"), *avg], capsys, "is the input --ir")
    _refused(["fuse", *folders, "-o", str(pairs / "vi" / "fused"), *avg], capsys, "lies inside the input folder --vi")
    # a split file given as the output table's place
    (pairs / "out").mkdir()
    (pairs / "out" / "entities.csv").write_text("a\n")
    before["out/entities.csv"] = b"a\n"
    _refused(
        ["fuse", *folders, "-o", str(pairs / "out"), "--split", str(pairs / "out" / "entities.csv"), *avg],
        capsys,
        "would replace the input --split",
    )
    assert _snapshot(pairs) == before
    assert not (pairs / "vi" / "fused").exists()


def test_fuse_into_a_folder_that_holds_the_sources_is_fine(pairs, capsys):
    assert cli_main(["fuse", "--ir", str(pairs / "ir"), "--vi", str(pairs / "vi"), "-o", str(pairs), "--method", "average"]) == 0
    assert (pairs / "a.png").is_file() and (pairs / "entities.csv").is_file()


def test_fuse_names_the_missing_path(pairs, capsys):
    missing = pairs / "visible"
    _refused(
        ["fuse", "--ir", str(pairs / "ir"), "--vi", str(missing), "-o", str(pairs / "out"), "--method", "average"],
        capsys,
        f"--vi {missing}: no such file or folder",
    )
    _refused(
        ["fuse", "--ir", str(missing), "--vi", str(pairs / "vi" / "a.png"), "-o", str(pairs / "o.png")],
        capsys,
        f"--ir {missing}: no such file or folder",
    )


def test_heatmap_refuses_its_sources_folder(pairs, capsys):
    ir, vi = str(pairs / "ir" / "a.png"), str(pairs / "vi" / "a.png")
    nowhere = ["--checkpoint", str(pairs / "no-checkpoint")]  # a check that passed would fail on this instead
    _refused(["heatmap", "--ir", ir, "--vi", vi, "--entities", "car", "-o", ir, *nowhere], capsys, "is the input --ir")
    (pairs / "vi" / "a_car.png").write_bytes(b"keep")  # what the car map of pair "a" would be named
    _refused(
        ["heatmap", "--ir", ir, "--vi", str(pairs / "vi" / "a_car.png"), "--entities", "car", "-o", str(pairs / "vi"), *nowhere],
        capsys,
        "would replace the input --vi",
    )
    # a folder holding the sources is fine where no source is replaced: the check passes, the checkpoint fails
    _refused(["heatmap", "--ir", ir, "--vi", vi, "--entities", "car", "-o", str(pairs / "ir"), *nowhere], capsys, "no-checkpoint")
    assert (pairs / "vi" / "a_car.png").read_bytes() == b"keep"


def test_evaluate_refuses_a_fused_folder_as_output(pairs, capsys):
    base = ["evaluate", "--ir", str(pairs / "ir"), "--vi", str(pairs / "vi"), "--fused", f"avg={pairs / 'ir'}"]
    _refused([*base, "-o", str(pairs / "ir")], capsys, "is the input --ir")
    _refused(
        [*base, "--fused", f"x={pairs / 'vi'}", "-o", str(pairs / "vi" / "scores")], capsys, "lies inside the input folder --vi"
    )
    assert not (pairs / "vi" / "scores").exists()


def test_benchmark_refuses_outputs_in_its_data(pairs, tmp_path, capsys):
    base = [
        "benchmark",
        "--data",
        str(pairs),
        "--datasets",
        "tno",
        "--methods",
        "average",
        "--tables",
        "fusion",
        "--peers",
        str(tmp_path / "peers"),
    ]
    _refused([*base, "--out", str(pairs / "bench"), "-o", str(tmp_path / "r.md")], capsys, "lies inside the input folder --data")
    _refused(
        [*base, "--out", str(tmp_path / "b"), "-o", str(pairs / "ir" / "r.md")],
        capsys,
        f"--results {pairs / 'ir' / 'r.md'}: lies inside the input folder --data",
    )
    _refused(
        [*base, "--out", str(tmp_path / "b"), "-o", str(tmp_path / "r.md"), "--figures", str(pairs)],
        capsys,
        f"--figures {pairs}: is the input --data",
    )
    assert not (tmp_path / "b").exists() and not (tmp_path / "r.md").exists()


def test_export_refuses_the_checkpoint_folder(checkpoint, capsys):
    before = _snapshot(checkpoint)
    _refused(["export", "--checkpoint", str(checkpoint), "-o", str(checkpoint)], capsys, "is the input --checkpoint")
    _refused(["export", "--checkpoint", str(checkpoint), "-o", str(checkpoint / "onnx")], capsys, "lies inside the input folder")
    assert _snapshot(checkpoint) == before


def test_an_interrupted_table_write_leaves_the_old_table(pairs, monkeypatch):
    import egmt.fileio

    out = pairs.parent / "out"
    out.mkdir()
    (out / "entities.csv").write_text("old\n")
    real = egmt.fileio.os.replace

    def crash(src, dst):  # the new file is complete under its temporary name; the rename never happens
        if Path(dst).name == "entities.csv":
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(egmt.fileio.os, "replace", crash)
    assert cli_main(["fuse", "--ir", str(pairs / "ir"), "--vi", str(pairs / "vi"), "-o", str(out), "--method", "average"]) == 130
    assert (out / "entities.csv").read_text() == "old\n"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "entities.csv"]  # no temporary file left


def test_an_interrupted_folder_keeps_the_table_of_what_it_wrote(pairs, monkeypatch):
    """Ctrl-C after the first pair: its PNG and its row of entities.csv stay, nothing of the second."""
    import egmt.infer.run

    out = pairs.parent / "out"
    real = egmt.infer.run.write_image
    written = []

    def interrupt_second(path, image):
        if written:
            raise KeyboardInterrupt
        written.append(path)
        return real(path, image)

    monkeypatch.setattr(egmt.infer.run, "write_image", interrupt_second)
    assert cli_main(["fuse", "--ir", str(pairs / "ir"), "--vi", str(pairs / "vi"), "-o", str(out), "--method", "average"]) == 130
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "entities.csv"]
    assert [line.split(",")[0] for line in (out / "entities.csv").read_text().splitlines()] == ["name", "a"]


def test_an_output_folder_that_is_a_file_is_one_line(pairs, capsys):
    """The file system's refusals (an output folder that is a file, a path through a file) are one
    line naming the path, not a traceback."""
    blocker = pairs.parent / "afile.txt"
    blocker.write_text("keep me")
    folders = ["--ir", str(pairs / "ir"), "--vi", str(pairs / "vi"), "--method", "average"]
    _refused(["fuse", *folders, "-o", str(blocker)], capsys, f"{blocker} is a file, where a folder is needed")
    _refused(["fuse", *folders, "-o", str(blocker / "sub")], capsys, f"{blocker} is a file, where a folder is needed")
    assert blocker.read_text() == "keep me"


def test_what_the_file_system_refuses_is_one_line(tmp_path):
    """The CLI's last net for OSError (what check_outputs cannot foresee): the path and the cause."""
    from egmt.cli import os_error_line

    (tmp_path / "out").write_text("a file")
    assert (
        os_error_line(FileExistsError(17, "File exists", str(tmp_path / "out")))
        == f"{tmp_path / 'out'}: exists and is not a folder (give a folder path, or remove the file)"
    )
    assert (
        os_error_line(FileExistsError(17, "File exists", str(tmp_path)))
        == f"{tmp_path}: already exists (remove it, or give another path)"
    )
    assert os_error_line(NotADirectoryError(20, "Not a directory", "a/b")) == "a/b: part of this path is a file, not a folder"
    assert os_error_line(IsADirectoryError(21, "Is a directory", "x.csv")) == "x.csv: is a folder, where a file is needed"
    assert os_error_line(OSError(28, "No space left on device", "big.png")) == "big.png: No space left on device"


@pytest.mark.parametrize(
    "device, match",
    [("gpu", "device 'gpu': not a device name"), ("cuda", "device 'cuda': this machine or torch build has no CUDA")],
)
def test_a_device_that_is_not_there_is_one_line(pairs, capsys, monkeypatch, device, match):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI, whatever the machine
    ir, vi = str(pairs / "ir" / "a.png"), str(pairs / "vi" / "a.png")
    _refused(["fuse", "--ir", ir, "--vi", vi, "-o", str(pairs.parent / "f.png"), "--device", device], capsys, match)
    assert not (pairs.parent / "f.png").exists()


def test_resolve_device():
    import torch

    from egmt.device import resolve_device
    from egmt.errors import EGMTError

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(EGMTError, match="no CUDA device"):
            resolve_device("cuda:0")
    with pytest.raises(EGMTError, match="not a device name"):
        resolve_device("gpu")


def test_entities_given_to_a_baseline_are_said_to_be_unread(pairs, caplog):
    import logging

    ir, vi = str(pairs / "ir" / "a.png"), str(pairs / "vi" / "a.png")
    out = pairs.parent / "f.png"
    with caplog.at_level(logging.WARNING, logger="egmt.infer"):
        assert cli_main(["fuse", "--ir", ir, "--vi", vi, "-o", str(out), "--method", "average", "--entities", "car"]) == 0
    assert "--entities: not read by --method average" in caplog.text and out.is_file()


def test_a_folder_whose_every_pair_fails_leaves_no_output_folder(pairs, capsys):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(pairs / "vi" / "a.png")  # sizes differ from the IR's
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(pairs / "vi" / "b.png")
    out = pairs.parent / "out"
    assert cli_main(["fuse", "--ir", str(pairs / "ir"), "--vi", str(pairs / "vi"), "-o", str(out), "--method", "average"]) == 1
    assert "egmt: skipped a:" in capsys.readouterr().out and not out.exists()
