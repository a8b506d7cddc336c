"""Checkpoint folders, written atomically, and the training state that makes a run resumable.

A checkpoint is a folder (see docs/formats.md)::

    model.safetensors        network weights
    config.json              the full EGMTConfig of the run
    vocabulary.json          label vocabulary       (when the run used entities)
    entity_bank.safetensors  entity text -> vector  (when the run used entities)
    training_state.pt        optimizer, task weights, step, epoch, RNG (resuming only)

A run folder keeps ``checkpoints/step-NNNNNNN/`` folders and a ``checkpoints/latest`` file
naming the newest one. A folder is assembled under a temporary name and renamed into place,
and ``latest`` is replaced atomically, so a crash mid-write never leaves a half checkpoint
that resuming would pick.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic
from egmt.files import FUSION_FILE, MODEL_FILE, TRAINING_STATE_FILE


def save_checkpoint(
    run_dir: Path,
    step: int,
    write_files,
    keep: int = 2,
) -> Path:
    """Create ``run_dir/checkpoints/step-{step}`` by calling ``write_files(tmp_folder)``.

    The folder is renamed into place only once every file is written, then ``latest`` is
    pointed at it and all but the newest ``keep`` checkpoints are removed.
    """
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step-{step:07d}"
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=f".step-{step:07d}."))
    try:
        write_files(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text_atomic(ckpt_root / "latest", final.name + "\n")
    done = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in done[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint folder that ``run_dir/checkpoints/latest`` names, or None."""
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    folder = pointer.parent / pointer.read_text().strip()
    if not (folder / TRAINING_STATE_FILE).is_file():
        raise EGMTError(f"{pointer}: names {folder.name}, which has no {TRAINING_STATE_FILE}")
    return folder


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from a checkpoint folder or a run folder (its latest checkpoint)."""
    path = Path(path)
    if (path / MODEL_FILE).is_file():
        return path
    if (path / "checkpoints" / "latest").is_file():
        folder = path / "checkpoints" / (path / "checkpoints" / "latest").read_text().strip()
        if (folder / MODEL_FILE).is_file():
            return folder
    if (path / FUSION_FILE).is_file():
        raise EGMTError(f"{path}: an `egmt export` folder (ONNX graphs): read it with --backend onnxruntime")
    raise EGMTError(f"{path}: not an egmt checkpoint (no {MODEL_FILE}, no checkpoints/latest)")


def save_training_state(folder: Path, state: dict[str, Any]) -> None:
    torch.save(state, folder / TRAINING_STATE_FILE)


def load_training_state(folder: Path) -> dict[str, Any]:
    """Load ``training_state.pt`` safely (tensors and plain Python values only)."""
    path = folder / TRAINING_STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated or not a training state
        raise EGMTError(f"{path}: cannot load training state ({type(e).__name__}: {e})".splitlines()[0]) from None
