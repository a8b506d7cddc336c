"""Checkpoints named on a command line (``--method NAME=DIR``, repeatable), as the benchmark
scripts that set several trained runs side by side take them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from egmt.errors import EGMTError
from egmt.train.checkpoint import resolve_checkpoint


def named_checkpoints(items: Iterable[str], flag: str = "--method", taken: Iterable[str] = ()) -> dict[str, Path]:
    """``["NAME=DIR", ...]`` -> ``{NAME: checkpoint folder}`` in the given order, each DIR a
    checkpoint or a run folder (:func:`egmt.train.checkpoint.resolve_checkpoint`: its latest).
    Every name is checked before any folder is read: a malformed item, a name given twice or one in
    ``taken`` (a column the caller adds itself) is an :class:`EGMTError` naming the item."""
    folders: dict[str, str] = {}
    reserved = set(taken)
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise EGMTError(f"{flag} {item}: expected NAME=DIR")
        if name in folders or name in reserved:
            raise EGMTError(f"{flag} {item}: the name {name!r} is taken (a name given twice, or a column's of its own)")
        folders[name] = folder
    return {name: resolve_checkpoint(Path(folder)) for name, folder in folders.items()}
