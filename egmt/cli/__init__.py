"""The ``egmt`` command: one sub-command per module in this package.

Each module ``egmt/cli/NAME.py`` defines ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Modules import their heavy dependencies inside ``run`` so that
``egmt --help`` stays fast. An :class:`~egmt.errors.EGMTError` is printed as one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from egmt import __version__
from egmt.errors import EGMTError

# Order in `egmt --help`; a module not listed here is appended alphabetically.
_ORDER = ["annotate", "train", "fuse", "heatmap", "evaluate", "benchmark", "profile"]


def _commands() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [n for n in _ORDER if n in found] + sorted(found - set(_ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="egmt",
        description="Entity-guided multi-task infrared-visible image fusion (EGMT).",
    )
    parser.add_argument("--version", action="version", version=f"egmt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _commands():
        module = importlib.import_module(f"egmt.cli.{name}")
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


class _InfoToStdout(logging.Handler):
    """egmt.* INFO records (what a command did: "resumed from ...", a pair's entities) as plain
    lines on stdout; warnings go to stderr (:func:`_configure_logging`). ``sys.stdout`` is looked
    up at each record, so a redirected or captured stdout gets them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(lambda record: record.levelno < logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stdout)
        except Exception:
            self.handleError(record)


def _configure_logging() -> None:
    """Library code reports through ``logging`` (and tqdm bars), never ``print``: warnings of
    any logger (egmt.*: skipped pairs, entities encoded on the fly...) as one line each,
    ``egmt: warning: ...`` on stderr; INFO of the egmt.* loggers as plain lines on stdout."""
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)  # the egmt.* INFO records reach the root too: not here
    warnings.setFormatter(logging.Formatter("egmt: warning: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[warnings])
    egmt_log = logging.getLogger("egmt")
    egmt_log.setLevel(logging.INFO)
    if not any(isinstance(h, _InfoToStdout) for h in egmt_log.handlers):
        egmt_log.addHandler(_InfoToStdout())


def os_error_line(e: OSError) -> str:
    """What the file system refused, as one line naming the path: an output folder that is a
    file, a path through a file, a file that is a folder, a full disk."""
    why = {
        FileExistsError: "exists and is not a folder (give a folder path, or remove the file)",
        NotADirectoryError: "part of this path is a file, not a folder",
        IsADirectoryError: "is a folder, where a file is needed",
    }.get(type(e), e.strerror or type(e).__name__)
    if isinstance(e, FileExistsError) and e.filename and os.path.isdir(e.filename):
        why = "already exists (remove it, or give another path)"  # a folder made without exist_ok
    return f"{e.filename}: {why}" if e.filename else f"{why}: {e}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    _configure_logging()
    try:
        return int(args._run(args) or 0)
    except EGMTError as e:
        print(f"egmt: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system refused (an output path that is a file...): one line, no traceback
        print(f"egmt: error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("egmt: interrupted", file=sys.stderr)
        return 130
