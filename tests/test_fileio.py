"""egmt.fileio.check_outputs: an output never is, lies inside, or replaces one of the inputs."""

from __future__ import annotations

import os

import pytest

from egmt.errors import EGMTError
from egmt.fileio import check_outputs


@pytest.fixture
def data(tmp_path):
    for side in ("ir", "vi"):
        (tmp_path / "data" / side).mkdir(parents=True)
        (tmp_path / "data" / side / "a.png").write_bytes(b"x")
    return tmp_path / "data"


def test_file_output_equal_to_an_input_file(data):
    with pytest.raises(EGMTError, match=r"^-o .*a\.png: is the input --ir .*a\.png; write the output elsewhere$"):
        check_outputs({"--ir": data / "ir" / "a.png", "--vi": data / "vi" / "a.png"}, {"-o": data / "ir" / "a.png"})


def test_same_file_through_dotdot_and_a_symlink(data, tmp_path):
    with pytest.raises(EGMTError, match="is the input --vi"):
        check_outputs({"--vi": data / "vi" / "a.png"}, {"-o": data / "ir" / ".." / "vi" / "a.png"})
    (tmp_path / "link").symlink_to(data / "ir")
    with pytest.raises(EGMTError, match="is the input --ir"):
        check_outputs({"--ir": data / "ir"}, {"-o": tmp_path / "link"})


def test_hard_link_to_an_input_is_the_input(data):
    os.link(data / "ir" / "a.png", data / "b.png")
    with pytest.raises(EGMTError, match="is the input --ir"):
        check_outputs({"--ir": data / "ir" / "a.png"}, {"-o": data / "b.png"})


def test_folder_output_equal_to_or_inside_an_input_folder(data):
    with pytest.raises(EGMTError, match="is the input --ir"):
        check_outputs({"--ir": data / "ir"}, {"-o": data / "ir"})
    with pytest.raises(EGMTError, match=r"lies inside the input folder --vi"):
        check_outputs({"--ir": data / "ir", "--vi": data / "vi"}, {"-o": data / "vi" / "fused" / "deeper"})


def test_output_folder_containing_an_input_is_refused_only_where_a_write_replaces_it(data):
    # -o DATA with --ir DATA/ir: writes DATA/entities.csv, replaces nothing
    check_outputs({"--ir": data / "ir", "--vi": data / "vi"}, {"-o": data}, {"-o": [data / "entities.csv"]})
    # a pair fused into the folder of its infrared file: DATA/ir/a.png would be the source itself
    with pytest.raises(EGMTError, match=r"^-o .*ir: would replace the input --ir .*a\.png; write the output elsewhere$"):
        check_outputs({"--ir": data / "ir" / "a.png"}, {"-o": data / "ir"}, {"-o": [data / "ir" / "a.png"]})
    with pytest.raises(EGMTError, match=r"would write .*tno inside the input folder --peers"):
        check_outputs({"--peers": data / "vi"}, {"--out": data}, {"--out": [data / "vi" / "tno"]})


def test_unrelated_and_missing_paths_pass(data, tmp_path):
    check_outputs(
        {"--ir": data / "ir", "--vi": data / "vi", "--checkpoint": None, "--split": tmp_path / "nope.txt"},
        {"-o": tmp_path / "out", "--figures": None},
        {"-o": [tmp_path / "out" / "a.png"]},
    )
    # a sibling whose name starts like the input folder is not inside it
    check_outputs({"--ir": data / "ir"}, {"-o": data / "ir2"})
