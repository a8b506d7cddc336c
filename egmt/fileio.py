"""Atomic file writes, used by every stage: readers see the old file or the whole new one.

A file is written to a temporary name in its own folder and renamed over the target with
``os.replace``, so a crash or Ctrl-C mid-write never leaves a half-written image, table,
annotation file or checkpoint, and never clobbers what was already there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


def _new_file_mode(path: Path) -> int:
    """An existing file's permissions, or what ``open()`` would give a new one (mkstemp gives 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix); on success it replaces ``target``.

    For writers that want a path (safetensors, Pillow). Parent folders are created.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def replace_folder_atomic(target: str | os.PathLike, write_files) -> Path:
    """Fill a new folder with ``write_files(tmp_folder)``, then put it in place of ``target``.

    The old folder is moved aside and deleted only after the new one is in place; a crash
    while writing leaves the old folder untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        write_files(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
        os.replace(target, old / target.name)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def read_json_lines(path: str | os.PathLike, what: str, missing_hint: str = "") -> list[tuple[str, dict]]:
    """The JSON objects of a JSON Lines file, each with ``"path:line"`` for error messages.

    Blank lines are skipped. EGMTError naming the file (and line) when it is missing,
    unreadable, or a line is not a JSON object; ``what`` names the kind of file in messages.
    """
    from egmt.errors import EGMTError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EGMTError(f"{path}: {what} not found{missing_hint}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EGMTError(f"{path}: cannot read {what} ({e})") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise EGMTError(f"{where}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise EGMTError(f"{where}: expected a JSON object")
        rows.append((where, obj))
    return rows


def read_json(path: str | os.PathLike, what: str) -> object:
    """The JSON value in ``path``; EGMTError naming the file when it is missing or unreadable."""
    from egmt.errors import EGMTError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EGMTError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EGMTError(f"{path}: cannot read {what} ({e})") from None


def _same(a: Path, b: Path) -> bool:
    """Whether two resolved paths name one file: equal, or the same inode (hard link, case)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def check_outputs(
    inputs: dict[str, str | os.PathLike | None],
    outputs: dict[str, str | os.PathLike | None],
    writes: Mapping[str, Sequence[str | os.PathLike]] | None = None,
) -> None:
    """Refuse outputs that would overwrite or land among a command's inputs, before any work.

    ``inputs``/``outputs`` map a label naming the option (``"--ir"``, ``"-o"``...) to a file
    or folder (None: not given). ``writes`` maps an output's label to the files (or folders)
    the command will write under it, where known. Paths are compared resolved (symlinks,
    ``..``), and as inodes where both exist. Raises EGMTError (one line, naming both options)
    when an output

    * is an input (``-o ir.png`` with ``--ir ir.png``; ``-o DIR`` with ``--ir DIR``);
    * lies inside an input folder (``-o DATA/ir/fused`` with ``--ir DATA/ir``);
    * would, through one of its ``writes``, replace an input or write inside an input folder
      (``-o DATA`` with ``--ir DATA/x.png`` writes ``DATA/x.png``).

    An output folder that merely contains an input folder (``-o DATA`` with ``--ir DATA/ir``)
    is allowed: nothing in it is replaced. A file where one of the ``writes`` needs a folder
    (``-o notes.txt`` for a folder output) is refused too.
    """
    from egmt.errors import EGMTError

    ins = [(label, Path(p), Path(p).resolve()) for label, p in inputs.items() if p is not None]

    def clash(path: Path) -> tuple[str, Path, str] | None:
        resolved = path.resolve()
        for label, given, inp in ins:
            if _same(resolved, inp):
                return label, given, "is"
            if inp.is_dir() and resolved.is_relative_to(inp):
                return label, given, "inside"
        return None

    for out_label, out in outputs.items():
        if out is None:
            continue
        out = Path(out)
        found = clash(out)
        if found is not None:
            label, given, how = found
            what = f"is the input {label} {given}" if how == "is" else f"lies inside the input folder {label} {given}"
            raise EGMTError(f"{out_label} {out}: {what}; write the output elsewhere")
        for w in (writes or {}).get(out_label, ()):
            found = clash(Path(w))
            if found is not None:
                label, given, how = found
                what = (
                    f"replace the input {label} {given}" if how == "is" else f"write {w} inside the input folder {label} {given}"
                )
                raise EGMTError(f"{out_label} {out}: would {what}; write the output elsewhere")
            blocker = next((p for p in Path(w).parents if p.exists() and not p.is_dir()), None)
            if blocker is not None:  # a file where a folder of the output must go: say so before the work
                raise EGMTError(f"{out_label} {out}: {blocker} is a file, where a folder is needed")
