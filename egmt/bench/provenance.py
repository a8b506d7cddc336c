"""Where the benchmark's numbers come from: the checkout's commit, file hashes, and the
:class:`Provenance` (date, commit, weights, machine) that heads the results file."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from egmt.errors import EGMTError

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Provenance:
    """Where the numbers come from: when, which code, which weights, which machine."""

    date: str
    commit: str
    checkpoint: str | None
    checkpoint_sha: str | None
    machine: dict[str, str]
    scope: str = ""  # what the run computed
    guidance: float = 0.0  # the checkpoint's model.entity_guidance (inference only; not in the weights' hash)

    def markdown(self) -> str:
        m = self.machine
        lines = [f"- Date: {self.date}", f"- egmt commit: `{self.commit}`"]
        if self.scope:
            lines.append(f"- Computed: {self.scope}")
        if self.checkpoint:
            guided = f", entity guidance {self.guidance:g}" if self.guidance else ""
            lines.append(f"- Checkpoint: `{self.checkpoint}` (model.safetensors sha256 `{self.checkpoint_sha}`{guided})")
        lines.append(f"- Machine: {m['cpu']}; torch {m['torch']}; torch threads: {m['threads']}; device {m['device']}")
        return "\n".join(lines) + "\n"

    def run_line(self) -> str:
        ckpt = f" · checkpoint sha256 {self.checkpoint_sha}" if self.checkpoint_sha else ""
        ckpt += f", guidance {self.guidance:g}" if self.checkpoint_sha and self.guidance else ""
        return f"_Run {self.date} · egmt {self.commit[:12]}{ckpt} · {self.machine['device']}_\n"


def git_commit(repo: Path = REPO) -> str:
    """``git rev-parse HEAD`` of the checkout egmt runs from (+ a note if it has local
    changes to tracked files), or "unknown" outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True, text=True, timeout=20
        )
        lines = head.stdout.split()
        # an installed egmt may sit inside some other repository: only egmt's own checkout counts
        if head.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != Path(repo).resolve():
            return "unknown (not a git checkout)"
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    commit = lines[1]
    return commit + (" (with uncommitted changes)" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def display_path(path: Path) -> str:
    """``path`` relative to the checkout when it lies inside it (portable provenance), else absolute."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def file_hash(path: Path, length: int = 12) -> str:
    """The first ``length`` hex digits of the file's SHA-256."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise EGMTError(f"{path}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()[:length]
