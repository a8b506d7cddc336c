"""Fuse infrared-visible pairs with a trained EGMT checkpoint.

>>> fuser = EGMTFuser.from_pretrained("path/to/checkpoint")
>>> result = fuser("ir.png", "vi.png", entities=["person", "car"])
>>> result.image, result.entities, result.entity_source

The network works on the Y channel; a colour visible image gets its Cb/Cr back after fusion.
Without entities, inference is caption-free. The classifier's predicted entities are used
only where the checkpoint's own validation says they are worth it: ``validation.json`` in the
checkpoint folder (written during training; see :func:`caption_free_policy`) must show the
caption-free classifier's mAP above the label prior's. Then a first pass with no entity
predicts the label probabilities, and the classes above ``threshold`` become the entities of
a second pass; otherwise the pair is fused with no entity (E = 0), and ``entity_source`` says why.
The two passes share everything that does not depend on the entities (``EGMT.encode``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from egmt.config import EGMTConfig
from egmt.data.color import merge_luma
from egmt.data.io import read_image
from egmt.data.pairs import MIN_FUSION_SIZE, pair_from_arrays
from egmt.device import resolve_device
from egmt.errors import EGMTError
from egmt.fileio import read_json
from egmt.infer.tiling import fuse_in_tiles, tile_progress, tile_slices
from egmt.model import EGMT
from egmt.model.network import fusion_min_side
from egmt.text.bank import EntityBank
from egmt.files import BANK_FILE, VALIDATION_FILE, VOCABULARY_FILE
from egmt.text.labels import Vocabulary
from egmt.train.checkpoint import resolve_checkpoint

#: A checkpoint folder's validation scores (from training): ``{"step": int, "rule": str,
#: "fusion": {metric: value}, "classification": {"map": float, "prior_map": float, ...}}``.

log = logging.getLogger(__name__)


def caption_free_policy(validation: dict | None) -> tuple[bool, str]:
    """Whether caption-free fusion may use the classifier's predicted entities, and why.

    ``validation``: the checkpoint's ``validation.json`` (None: absent). Predicted entities
    only pay off where the caption-free classifier beats the label prior (the mAP of scoring
    every pair with the training positive ratios) on validation; else E = 0.
    Returns ``(use_predicted, entity_source)``: ``(True, "classifier")`` or
    ``(False, "none (...reason...)")``.
    """
    if validation is None:
        return False, f"none (no {VALIDATION_FILE}: caption-free classifier not validated)"
    cls = validation.get("classification")
    if not isinstance(cls, dict):
        return False, f"none ({VALIDATION_FILE} has no classification map / prior_map)"
    try:
        m, prior = float(cls["map"]), float(cls["prior_map"])
    except (TypeError, KeyError, ValueError):
        return False, f"none ({VALIDATION_FILE} has no classification map / prior_map)"
    if not m > prior:  # NaN never wins
        return False, f"none (validation mAP {m:.3f} <= label prior {prior:.3f})"
    return True, "classifier"


def read_validation(folder: Path) -> dict | None:
    """``folder/validation.json`` as a dict, None if there is none; EGMTError if it is not a JSON object."""
    path = Path(folder) / VALIDATION_FILE
    if not path.is_file():
        return None
    data = read_json(path, "validation file")
    if not isinstance(data, dict):
        raise EGMTError(f"{path}: expected a JSON object")
    return data


@dataclass
class FusionResult:
    """A fused image (float [H, W] grey or [H, W, 3] RGB in [0, 1]) and the entities that guided it;
    ``luma``: the fused Y ``[H, W]`` as the network gave it, before the visible's CbCr and the
    clipping to [0, 1] (the background of the entity heat maps, :mod:`egmt.infer.heatmaps`)."""

    image: np.ndarray
    entities: list[str]
    entity_source: str  # "given", "classifier" (caption-free), or "none" / "none (why caption-free used E = 0)"
    probabilities: dict[str, float] = field(default_factory=dict)  # classifier output, when it ran
    luma: np.ndarray | None = None


class EGMTFuser:
    """A loaded checkpoint: network, entity bank and label vocabulary, ready to fuse pairs."""

    def __init__(
        self,
        model: EGMT,
        bank: EntityBank | None = None,
        vocabulary: Vocabulary | None = None,
        device: str | torch.device = "auto",
        tile_size: int | None = None,
        tile_overlap: int = 32,
        max_pixels: int | None = None,
        encoder_path: str | None = None,
        validation: dict | None = None,
        progress: bool = True,
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.bank = bank
        self.vocabulary = vocabulary
        smallest = max(2 * tile_overlap, fusion_min_side(model.config))
        if tile_size is not None and tile_size < smallest:
            # each tile steps by tile - overlap: a small tile means tens of thousands of passes
            raise EGMTError(f"tile size {tile_size}: at least {smallest} (twice the {tile_overlap}-pixel overlap of neighbours)")
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        # Images above max_pixels are fused in 1024 tiles. The patch layout's global attention is
        # quadratic in the patches: it tiles from 1 Mpixel (4096 patches), the pixel layout from 4.
        if max_pixels is None:
            max_pixels = 2048 * 2048 if model.config.layout == "pixel" else 1024 * 1024
        self.max_pixels = max_pixels
        # (ir, vi, model.encode(ir, vi)) of the pair being fused (an Encoded, or the ONNX backend's PaddedPair)
        self._encoded: tuple[torch.Tensor, torch.Tensor, Any] | None = None
        self.encoder_path = encoder_path
        self.validation = validation  # the checkpoint's validation.json (None: absent)
        self._encoder = None
        self.progress = progress  # a bar over the tiles of a large image (egmt fuse --no-progress: off)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", backend: str = "torch", **kwargs) -> EGMTFuser:
        """Load a checkpoint folder (or a run folder: its newest checkpoint); with
        ``backend="onnxruntime"``, a folder written by ``egmt export``."""
        if backend == "onnxruntime":
            from egmt.infer.onnx_model import OnnxEGMT

            folder = Path(path)
            # a stand-in for EGMT, duck-typed: config, to, eval, encode and decode (what the fuser
            # calls; the torch-only paths check isinstance(model, torch.nn.Module))
            model = cast(EGMT, OnnxEGMT.load(folder))
            device = "cpu"
        elif backend == "torch":
            folder = resolve_checkpoint(path)
            model = EGMT.from_pretrained(folder)
        else:
            raise EGMTError(f"unknown backend {backend!r} (torch or onnxruntime)")
        bank = EntityBank.load(folder / BANK_FILE) if (folder / BANK_FILE).is_file() else None
        vocab = Vocabulary.load(folder / VOCABULARY_FILE) if (folder / VOCABULARY_FILE).is_file() else None
        if model.config.text_interaction and bank is None:
            raise EGMTError(f"{folder}: the model uses entities but the checkpoint has no {BANK_FILE}")
        kwargs.setdefault("validation", read_validation(folder))
        return cls(model, bank, vocab, device=device, **kwargs)

    def compile(self) -> EGMTFuser:
        """Compile the network's two halves (``encode``, ``decode``) with ``torch.compile``:
        about 2x faster per pair on a 2-core CPU (docs/speed.md) after a compilation of a
        minute or two per new image size; worth it for a folder of same-size pairs."""
        if isinstance(self.model, torch.nn.Module):
            model: Any = self.model  # the compiled halves shadow its methods as instance attributes
            model.encode = torch.compile(model.encode)
            model.decode = torch.compile(model.decode)
        return self

    @property
    def config(self) -> EGMTConfig:
        return EGMTConfig(model=self.model.config)

    # -- entities ------------------------------------------------------------------------
    def entity_features(self, entities: list[str]) -> torch.Tensor:
        """``[E, D]`` features; an entity missing from the bank is encoded with the bank's encoder
        (loaded on first use: seconds) and added to the in-memory bank, with one warning on the
        ``egmt.infer`` logger naming it; an error only where that encoder cannot be loaded."""
        assert self.bank is not None
        unknown = list(dict.fromkeys(e for e in entities if e not in self.bank))
        if unknown:
            log.warning(
                "encoding %d %s not in the checkpoint's entity bank with %s: %s",
                len(unknown),
                "entity" if len(unknown) == 1 else "entities",
                self.bank.encoder,
                ", ".join(unknown),
            )
            if self._encoder is None:
                from egmt.text.encoders import load_encoder

                try:
                    self._encoder = load_encoder(self.bank.encoder, self.encoder_path)
                except EGMTError as e:
                    raise EGMTError(
                        f"entity {unknown[0]!r} is not in the checkpoint's entity bank, and its encoder could not be loaded: {e}"
                    ) from None
            self.bank.add(unknown, self._encoder)
        return self.bank.lookup(entities)

    @torch.no_grad()
    def predict_entities(self, ir: torch.Tensor, vi: torch.Tensor, threshold: float = 0.5) -> tuple[list[str], dict[str, float]]:
        """Caption-free entities: classes whose probability from an entity-free pass is > ``threshold``."""
        if not self.model.config.multi_task or self.vocabulary is None:
            return [], {}
        h, w = ir.shape[-2:]
        tile = self._tile(h, w)
        parts = (
            [(ir, vi)]
            if tile is None
            else [(ir[..., r, c], vi[..., r, c]) for r, c in tile_slices(h, w, tile, self.tile_overlap)]
        )

        # A classifier-only pass without entities (no reconstructor); a tiled image: a class is
        # present where any tile sees it (the highest probability over the tiles).
        def classify(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            logits = self.model.decode(self._encode(a, b), fuse=False).logits
            assert logits is not None  # multi-task (checked above)
            return torch.sigmoid(logits[0])

        stacked = torch.stack([classify(a, b) for a, b in tile_progress(parts, "classify tiles", self.progress)])
        probs: list[float] = stacked.amax(dim=0).tolist()
        classes = self.vocabulary.classes
        chosen = [c for c, p in zip(classes, probs) if p > threshold]
        return chosen, dict(zip(classes, probs))

    def caption_free_entities(
        self, ir: torch.Tensor, vi: torch.Tensor, threshold: float = 0.5
    ) -> tuple[list[str], str, dict[str, float]]:
        """Entities for a pair given without any: ``(entities, entity_source, probabilities)``.
        The classifier's predictions where :func:`caption_free_policy` allows them, else none."""
        if not self.model.config.multi_task or self.vocabulary is None:
            return [], "none (no classifier)", {}
        use_predicted, source = caption_free_policy(self.validation)
        if not use_predicted:
            return [], source, {}
        entities, probs = self.predict_entities(ir, vi, threshold)
        return entities, source, probs

    # -- fusion --------------------------------------------------------------------------
    @torch.no_grad()
    def fuse_y(self, ir: torch.Tensor, vi: torch.Tensor, entities: list[str]) -> torch.Tensor:
        """Fuse Y channels ``[1, 1, H, W]`` with the given entities (tiles if the image is large)."""
        feats = mask = None
        if self.model.config.text_interaction:
            feats = self.entity_features(entities)[None].to(self.device)
            mask = torch.ones(1, feats.shape[1], dtype=torch.bool, device=self.device)

        def run(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            fused = self.model.decode(self._encode(a, b), feats, mask, classify=False).fused
            assert fused is not None  # fuse=True
            return fused

        tile = self._tile(*ir.shape[-2:])
        return run(ir, vi) if tile is None else fuse_in_tiles(run, ir, vi, tile, self.tile_overlap, self.progress)

    def _tile(self, height: int, width: int) -> int | None:
        """The tile size for an image of this size, or None to fuse it in one piece."""
        tile = self.tile_size or (1024 if height * width > self.max_pixels else None)
        return tile if tile and (height > tile or width > tile) else None

    def _encode(self, ir: torch.Tensor, vi: torch.Tensor):
        """``model.encode`` of this pair (or tile), computed once: the caption-free classifier
        pass and the fusion pass share it (same tensors -> same result)."""
        if self._encoded is None or self._encoded[0] is not ir or self._encoded[1] is not vi:
            self._encoded = (ir, vi, self.model.encode(ir, vi))
        return self._encoded[2]

    def __call__(
        self,
        ir: str | Path | np.ndarray,
        vi: str | Path | np.ndarray,
        entities: list[str] | None = None,
        threshold: float = 0.5,
    ) -> FusionResult:
        """Fuse one pair (paths or arrays as :func:`egmt.data.io.read_image` returns)."""
        ir_img = read_image(ir) if isinstance(ir, (str, Path)) else ir
        vi_img = read_image(vi) if isinstance(vi, (str, Path)) else vi
        labels = (ir, vi) if isinstance(ir, (str, Path)) else ("infrared", "visible")
        pair = pair_from_arrays("pair", ir_img, vi_img, *labels, min_size=MIN_FUSION_SIZE)
        ir_y, vi_y, vi_cbcr = pair.ir[None].to(self.device), pair.vi[None].to(self.device), pair.vi_cbcr
        probs: dict[str, float] = {}
        if not self.model.config.text_interaction:
            entities, source = [], "none"
        elif entities is not None:
            entities, source = list(entities), "given"
        else:
            entities, source, probs = self.caption_free_entities(ir_y, vi_y, threshold)
        fused = self.fuse_y(ir_y, vi_y, entities).cpu()
        self._encoded = None  # release the pair's features
        rgb = merge_luma(fused, None if vi_cbcr is None else vi_cbcr[None])[0]
        image = rgb[0].numpy() if rgb.shape[0] == 1 else rgb.permute(1, 2, 0).numpy()
        return FusionResult(np.clip(image, 0.0, 1.0), entities, source, probs, luma=fused[0, 0].numpy())
