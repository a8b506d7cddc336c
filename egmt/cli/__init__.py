"""The ``egmt`` command: one sub-command per module in this package.

Each module ``egmt/cli/NAME.py`` defines ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Modules import their heavy dependencies inside ``run`` so that
``egmt --help`` stays fast. An :class:`~egmt.errors.EGMTError` is printed as one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    # Library warnings (egmt.* loggers: skipped pairs, entities encoded on the fly...) as one line each.
    logging.basicConfig(level=logging.WARNING, format="egmt: warning: %(message)s", stream=sys.stderr)
    try:
        return int(args._run(args) or 0)
    except EGMTError as e:
        print(f"egmt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("egmt: interrupted", file=sys.stderr)
        return 130
