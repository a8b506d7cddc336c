"""``egmt serve``'s command line: a clear --help, one-line errors before anything starts."""

from __future__ import annotations

import socket

import pytest

from egmt.cli import main as cli_main


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as done:
        cli_main(["serve", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in ("--host", "--port", "--checkpoint", "--samples", "--max-upload-mb", "--max-pixels", "127.0.0.1"):
        assert option in text


def test_a_busy_port_is_one_line(capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert cli_main(["serve", "--port", str(port), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"egmt: error: cannot listen on 127.0.0.1:{port}: ") and "\n" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "70000"], "--port must be in 0..65535"),
        (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
        (["--samples", "no/such/folder"], "expected a folder with ir/ and vi/ inside"),
    ],
)
def test_bad_options_are_one_line(capsys, argv, message):
    assert cli_main(["serve", *argv]) == 2
    assert message in capsys.readouterr().err
