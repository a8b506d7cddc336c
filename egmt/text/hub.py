"""Load Hugging Face models from disk only, with one-line errors when a folder is wrong.

Every text model (BLIP-2, FACTUAL, CLIP, MiniLM) is read with ``local_files_only=True``:
``path`` is either a model folder or a hub id already in the user's Hugging Face cache.
No hub is ever contacted. A folder holding a different kind of model than the one asked for
("a T5 folder passed as CLIP") is an :class:`EGMTError`, not a confusing traceback later.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from egmt.errors import EGMTError

T = TypeVar("T")

#: A Hugging Face model folder's config (transformers' format, not egmt's ``egmt.files.CONFIG_FILE``).
HF_CONFIG_FILE = "config.json"


def describe(path: str | os.PathLike) -> str:
    """How to name ``path`` in an error: a folder or a cached hub id."""
    return f"model folder {path}" if Path(path).exists() else f"model {path!r} (not a folder; looked in the Hugging Face cache)"


def load_config(path: str | os.PathLike, what: str, model_types: Iterable[str]):
    """Read ``config.json`` of ``path`` and check its ``model_type`` is one of ``model_types``.

    ``what`` names the expected model in messages ("a BLIP-2 captioner", ...).
    """
    from transformers import AutoConfig

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise EGMTError(f"{path}: expected a model folder for {what}, got a file")
    if p.is_dir() and not (p / HF_CONFIG_FILE).is_file():
        raise EGMTError(f"{path}: no config.json, not a Hugging Face model folder ({what} expected)")
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        hint = "" if p.exists() else "; hubs are not contacted: download it where there is internet and pass its folder"
        raise EGMTError(f"{describe(path)}: cannot load config for {what} ({_first_line(e)}){hint}") from None
    types = tuple(model_types)
    if config.model_type not in types:
        raise EGMTError(
            f"{describe(path)}: holds a {config.model_type!r} model, not {what} (expected model_type {' or '.join(types)})"
        )
    return config


def load_pretrained(loader: Callable[..., T], path: str | os.PathLike, what: str, **kwargs: Any) -> T:
    """``loader.from_pretrained(path, local_files_only=True, **kwargs)`` with errors as EGMTError."""
    try:
        return loader(str(path), local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise EGMTError(f"{describe(path)}: cannot load {what} ({_first_line(e)})") from None


def load_model(loader: Callable[..., Any], path: str | os.PathLike, what: str, **kwargs: Any) -> Any:
    """Like :func:`load_pretrained` for model weights, and an error if any weight is missing.

    transformers only warns when a checkpoint lacks weights the model needs (it fills them
    with random values); here that is an EGMTError, since a model with random layers would
    write plausible-looking but wrong captions, entities or features. Unused extra weights
    (the vision tower of a full CLIP checkpoint) are fine.
    """
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the per-key load report is noise here; we check below
    hf_logging.disable_progress_bar()
    try:
        model, info = load_pretrained(loader, path, what, output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
    bad = sorted(info.get("missing_keys", ())) + sorted(str(k) for k in info.get("mismatched_keys", ()))
    if bad:
        raise EGMTError(f"{describe(path)}: weights do not fit {what} ({len(bad)} missing or mismatched, e.g. {bad[0]})")
    return model


def fingerprint(path: str | os.PathLike) -> str:
    """A short id of a model folder's contents (config text and weight-file sizes).

    Stored in entity banks so that vectors from two different checkpoints of the same
    encoder family are never mixed. Hub ids resolve to their snapshot folder when cached.
    """
    folder = resolve_folder(path)
    h = hashlib.sha1()
    if folder is None:
        h.update(str(path).encode())
    else:
        cfg = folder / HF_CONFIG_FILE
        if cfg.is_file():
            h.update(cfg.read_bytes())
        for f in sorted(folder.iterdir()):
            if f.suffix in (".safetensors", ".bin"):
                h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:12]


def resolve_folder(path: str | os.PathLike) -> Path | None:
    """The folder holding ``path``'s files: ``path`` itself, or its cached hub snapshot."""
    p = Path(path)
    if p.is_dir():
        return p
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(path), local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached / not a hub id: no folder
        return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
