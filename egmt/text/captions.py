"""Captions of the source images: one sentence for the IR image and one for the VIS image.

* ``file``: JSON Lines ``{"dataset", "name", "ir", "vi"}`` as shipped in
  ``shared/data/captions/`` (the default for the bundled data);
* ``blip2`` (the paper's captioner): BLIP-2 through transformers (``Blip2Processor`` /
  ``Blip2ForConditionalGeneration``) from a local folder or the Hugging Face cache
  (default ``Salesforce/blip2-opt-2.7b``), batched, on CPU or GPU. Each image is captioned
  alone, as in the paper.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from egmt.data.pairs import Pair
from egmt.errors import EGMTError
from egmt.fileio import read_json_lines, write_text_atomic


@dataclass(frozen=True)
class PairCaptions:
    """The IR and the VIS caption of one pair."""

    ir: str
    vi: str


# ------------------------------------------------------------------------------ caption files


def read_caption_file(path: str | os.PathLike, dataset: str | None = None) -> dict[str, PairCaptions]:
    """``{pair name: PairCaptions}`` from a JSON Lines caption file.

    Each line needs ``name``, ``ir`` and ``vi`` (strings); ``dataset`` is optional. When the
    file holds several datasets, ``dataset`` picks one (an error if it is not there).
    :class:`EGMTError` naming file and line on bad JSON, missing keys, repeated names.
    """
    path = Path(path)
    rows: list[tuple[str | None, str, PairCaptions, str]] = []
    for where, d in read_json_lines(path, "caption file"):
        missing = [k for k in ("name", "ir", "vi") if k not in d]
        if missing:
            raise EGMTError(f"{where}: missing key(s) {missing}")
        if not all(isinstance(d[k], str) for k in ("name", "ir", "vi")) or not d["name"]:
            raise EGMTError(f"{where}: 'name', 'ir' and 'vi' must be strings (name non-empty)")
        ds = d.get("dataset")
        rows.append((str(ds) if ds is not None else None, d["name"], PairCaptions(d["ir"].strip(), d["vi"].strip()), where))
    if not rows:
        raise EGMTError(f"{path}: no captions in file")
    datasets = {r[0] for r in rows if r[0] is not None}
    if dataset is not None and len(datasets) > 1:
        if dataset not in datasets:
            raise EGMTError(f"{path}: no captions for dataset {dataset!r} (file has {sorted(datasets)})")
        rows = [r for r in rows if r[0] in (dataset, None)]
    out: dict[str, PairCaptions] = {}
    for _, name, caps, where in rows:
        if name in out:
            raise EGMTError(f"{where}: captions for pair {name!r} appear twice")
        out[name] = caps
    return out


def write_caption_file(path: str | os.PathLike, captions: dict[str, PairCaptions], dataset: str) -> None:
    """Write captions in the same JSON Lines format :func:`read_caption_file` reads (atomic)."""
    lines = [json.dumps({"dataset": dataset, "name": n, "ir": c.ir, "vi": c.vi}, ensure_ascii=False) for n, c in captions.items()]
    write_text_atomic(path, "".join(line + "\n" for line in lines))


# ------------------------------------------------------------------------------ captioners


class FileCaptioner:
    """Captions read from a JSON Lines file (pairs the file lacks are simply not returned)."""

    name = "file"

    def __init__(self, path: str | os.PathLike, dataset: str | None = None):
        self.path = Path(path)
        self.table = read_caption_file(path, dataset)

    def caption_pairs(self, pairs: Sequence[Pair], progress: bool = False) -> dict[str, PairCaptions]:
        return {p.name: self.table[p.name] for p in pairs if p.name in self.table}


def load_rgb(path: str | os.PathLike):
    """An image as 8-bit RGB PIL image (grey, 16-bit and RGBA inputs converted); EGMTError if unreadable."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                a = np.asarray(im, dtype=np.float64)
                lo, hi = float(a.min()), float(a.max())
                a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
                im = Image.fromarray(a.round().astype(np.uint8))
            return im.convert("RGB")
    except FileNotFoundError:
        raise EGMTError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise EGMTError(f"{path}: cannot read image ({e})") from None


class Blip2Captioner:
    """BLIP-2 image captioning from a local folder (or cached hub id), batched.

    ``prompt``: optional text the caption continues (paper: none); it is stripped from the
    output. ``dtype``: ``"auto"`` is float16 on CUDA and float32 on CPU. Greedy decoding,
    at most ``max_new_tokens`` tokens (paper: decoding not given).
    """

    name = "blip2"
    default_path = "Salesforce/blip2-opt-2.7b"

    def __init__(
        self,
        path: str | None = None,
        device: str = "cpu",
        batch_size: int = 8,
        max_new_tokens: int = 30,
        prompt: str | None = None,
        dtype: str = "auto",
    ):
        import torch
        from transformers import Blip2ForConditionalGeneration, Blip2Processor

        from egmt.device import resolve_device
        from egmt.text.hub import load_config, load_model, load_pretrained

        self.path = path or self.default_path
        load_config(self.path, "a BLIP-2 captioner", ("blip-2",))
        self.device = resolve_device(device)
        if dtype == "auto":
            self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        else:
            found = getattr(torch, dtype, None)
            if not isinstance(found, torch.dtype):
                raise EGMTError(f"unknown dtype {dtype!r} for BLIP-2 (float32, float16, bfloat16 or auto)")
            self.dtype = found
        self.processor = load_pretrained(Blip2Processor.from_pretrained, self.path, "the BLIP-2 processor")
        self.model = load_model(Blip2ForConditionalGeneration.from_pretrained, self.path, "the BLIP-2 model", dtype=self.dtype)
        self.model.to(self.device).eval()
        self.batch_size, self.max_new_tokens, self.prompt = batch_size, max_new_tokens, prompt

    def caption_images(self, paths: Sequence[str | os.PathLike], progress: bool = False) -> list[str]:
        """One caption per image file, in order."""
        import torch
        from tqdm.auto import tqdm

        out: list[str] = []
        steps = range(0, len(paths), self.batch_size)
        for i in tqdm(steps, desc="captioning (BLIP-2)", unit="batch", disable=not progress):
            images = [load_rgb(p) for p in paths[i : i + self.batch_size]]
            kwargs = {"images": images, "return_tensors": "pt"}
            if self.prompt:
                kwargs["text"] = [self.prompt] * len(images)
            inputs = self.processor(**kwargs)
            inputs = {
                k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device)) for k, v in inputs.items()
            }
            with torch.inference_mode():
                ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1)
            for text in self.processor.batch_decode(ids, skip_special_tokens=True):
                text = " ".join(text.split())
                if self.prompt and text.lower().startswith(self.prompt.strip().lower()):
                    text = text[len(self.prompt.strip()) :].strip()
                out.append(text)
        return out

    def caption_pairs(self, pairs: Sequence[Pair], progress: bool = False) -> dict[str, PairCaptions]:
        """Caption every IR image and every VIS image, each on its own."""
        paths = [p.ir for p in pairs] + [p.vi for p in pairs]
        caps = self.caption_images(paths, progress=progress)
        n = len(pairs)
        return {p.name: PairCaptions(caps[i], caps[n + i]) for i, p in enumerate(pairs)}


CAPTIONERS = ("file", "blip2")


def load_captioner(
    name: str, path: str | os.PathLike | None = None, dataset: str | None = None, device: str = "cpu", batch_size: int = 8
):
    """``"file"`` (``path``: the JSON Lines file, required) or ``"blip2"`` (``path``: model folder)."""
    if name == "file":
        if path is None:
            raise EGMTError("the file captioner needs a caption file (--captions FILE)")
        return FileCaptioner(path, dataset)
    if name == "blip2":
        return Blip2Captioner(None if path is None else str(path), device=device, batch_size=batch_size)
    raise EGMTError(f"unknown captioner {name!r} (choose from {', '.join(CAPTIONERS)})")


def find_missing(pairs: Iterable[Pair], captions: dict[str, PairCaptions]) -> list[str]:
    """Names of ``pairs`` without captions."""
    return [p.name for p in pairs if p.name not in captions]
