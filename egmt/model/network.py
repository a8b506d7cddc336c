"""The EGMT network (paper Sec. III, Fig. 2): shallow features -> ECIM -> task heads.

``EGMT(cfg)(ir, vi, entities, entity_mask)`` returns the fused image and the multi-label
logits. Inputs of any size are padded to a multiple of the window size (16) and cropped back.
Checkpoints are folders with ``model.safetensors`` + ``config.json`` (:meth:`EGMT.save_pretrained`).

ECIM comes in two token layouts (``ModelConfig.layout``; docs/design.md, "Two token layouts"),
driven alike through :class:`~egmt.model.layout.ECIMLayoutBlock`; everything outside ECIM is shared:

- "pixel" (:mod:`egmt.model.ecim`, ``ModelConfig()``'s default): every pixel of a 16x16 window
  is a C-wide token; MSA and CGHA attend inside the window;
- "patch" (:mod:`egmt.model.patch_ecim`, the shipped model): each 16x16 patch becomes one
  D-wide token (``token_dim``); MSA and CGHA attend globally over all patch tokens, and the
  tokens' updates return to the pixels. Two switches remove the patch grid that this can draw
  into the fused image: ``token_unembed="smooth"`` (the updates are interpolated between patch
  centres instead of one pattern per patch) and ``channel_attention_scope="image"`` (one MCA
  channel map per image instead of one per window; this one applies to both layouts).

Where the paper is silent, we chose (each choice is also written where it is made):
- shallow features: two Conv3x3 + LeakyReLU(0.2) per modality, reflection padding;
- heads: ``num_heads`` = 2 for every attention (16 channels each); ECIM blocks: ``num_blocks`` = 1;
- transformer layout: pre-LayerNorm, residual, FFN (Linear-GELU-Linear, ratio 2) after
  each attention stage (MCA, MSA, CGHA);
- MCA normalisation: Restormer-style L2-normalised Q/K with a learnable temperature;
- MSA: no position encoding (optional Swin relative bias, ``relative_position_bias``);
- token layout (``layout``): "pixel" or "patch", above;
- CGHA eq. 6: in the pixel layout the entity-guided queries attend to the tokens of their own
  16x16 window, in the patch layout to all patch tokens; one FC (D -> C, or D -> ``token_dim``)
  aligns the entities, shared by both modalities and all blocks; an image without entities
  skips the CGHA stage;
- fusion head: LeakyReLU(0.2) between convs, sigmoid output; widths 2C:C, C:C/2, C/2:1;
- classifier (eq. 8): see :class:`~egmt.model.heads.EntityClassifier` (or, with
  ``classifier="tokens"``, the multiple-instance :class:`~egmt.model.heads.TokenClassifier`);
- any input size: reflect-pad right/bottom to the window (patch) grid (replicate when the image is
  smaller than the pad), crop the outputs back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from egmt.config import EGMTConfig, ModelConfig
from egmt.errors import EGMTError
from egmt.fileio import atomic_path
from egmt.files import CONFIG_FILE, MODEL_FILE
from egmt.model.attention import window_partition, window_reverse
from egmt.data.pairs import MODALITIES
from egmt.model.ecim import ECIMBlock, PixelState
from egmt.model.heads import EntityClassifier, FusionHead, TokenClassifier
from egmt.model.prior import blur_margin
from egmt.model.layout import ECIMLayoutBlock, LayoutBlock, Passthrough
from egmt.model.patch_ecim import PatchECIMBlock, PatchState

_FORMAT_KEY = "egmt_format"
_FORMAT = "egmt-model-v1"

#: ``ModelConfig.layout`` -> the ECIM block of that token layout (docs/design.md).
BLOCKS: dict[str, type[LayoutBlock]] = {"pixel": ECIMBlock, "patch": PatchECIMBlock}

#: What the first ECIM block's ``visual`` hands to its ``entity`` (:class:`~egmt.model.layout.ECIMLayoutBlock`):
#: the pixel layout's per-modality features, the patch layout's :class:`PatchState`, or with
#: ``num_blocks = 0`` (:class:`~egmt.model.layout.Passthrough`) the features ``(ir, vi)`` themselves.
EncodedState = PixelState | PatchState | tuple[torch.Tensor, torch.Tensor]


@dataclass
class EGMTOutput:
    """``fused: [B, 1, H, W]`` in [0, 1] (None only from ``decode(..., fuse=False)``);
    ``logits: [B, K]`` or None (multi-task off or ``classify=False``)."""

    fused: torch.Tensor | None
    logits: torch.Tensor | None = None


@dataclass
class Encoded:
    """The part of a forward pass that does not depend on the entities (:meth:`EGMT.encode`):
    the first ECIM block's state after its visual stages, the input size and the padded size."""

    state: EncodedState
    sources: tuple[torch.Tensor, torch.Tensor]  # ir, vi padded to the grid: the weight-map output mixes them
    size: tuple[int, int]
    padded: tuple[int, int]
    batch: int
    dtype: torch.dtype


class ShallowFeatures(nn.Module):
    """Shallow visual features of one modality: two "vanilla" conv blocks (paper: layer count and
    activation not given; we use ``Conv3x3 -> LeakyReLU(0.2)`` twice). ``[B, 1, H, W] -> [B, C, H, W]``."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.act(self.conv1(x))))


class EGMT(nn.Module):
    """Entity-guided multi-task fusion network.

    Modules (each built only when its switch is on, so no parameter is left without use):
    ``shallow.{ir,vi}``, ``entity_align`` (FC D -> C of Sec. III-B-2, when CGHA and text
    interaction are on), ``blocks`` (ECIM), ``fusion_head`` (eq. 7), ``classifier`` (eq. 8,
    when multi-task is on; its entity projection only with text interaction).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else ModelConfig()
        if cfg.layout not in BLOCKS:
            raise ValueError(f"model.layout must be one of {sorted(BLOCKS)}, got {cfg.layout!r}")
        if cfg.entity_guidance < 0:
            raise ValueError(f"model.entity_guidance must be 0 or more, got {cfg.entity_guidance}")
        self.config = cfg
        c = cfg.channels
        self.shallow = nn.ModuleDict({m: ShallowFeatures(cfg.in_channels, c) for m in MODALITIES})
        use_cgha = cfg.cgha and cfg.text_interaction
        # Sec. III-B-2: "a fully-connected layer to the entity features so that they share the
        # same dimension as the visual features"; one layer shared by both modalities and blocks.
        # The visual features are C-wide pixel tokens, or token_dim-wide patch tokens.
        width = c if cfg.layout == "pixel" else cfg.token_dim
        self.entity_align = nn.Linear(cfg.entity_dim, width) if use_cgha else None
        self.blocks = nn.ModuleList(BLOCKS[cfg.layout](cfg) for _ in range(cfg.num_blocks))
        self.fusion_head = FusionHead(
            2 * c,
            cfg.in_channels,
            cfg.fusion_output,
            cfg.weight_prior,
            (cfg.prior_sigma, cfg.prior_power, cfg.prior_noise),
            cfg.ir_rebase,
            cfg.ir_rebase_ceiling,
            cfg.ir_rebase_spread,
        )
        self.classifier: EntityClassifier | TokenClassifier | None = None
        if cfg.multi_task and cfg.classifier == "tokens":
            self.classifier = TokenClassifier(2 * c, cfg.entity_dim, cfg.num_classes)
        elif cfg.multi_task:
            self.classifier = EntityClassifier(
                2 * c, cfg.entity_dim, cfg.num_classes, cfg.entity_mask_ratio, cfg.text_interaction
            )

    def forward(
        self,
        ir: torch.Tensor,
        vi: torch.Tensor,
        entities: torch.Tensor | None = None,
        entity_mask: torch.Tensor | None = None,
        classify: bool = True,
    ) -> EGMTOutput:
        """``ir, vi: [B, 1, H, W]`` in [0, 1]; ``entities: [B, E, D]`` or None; ``entity_mask: [B, E]``
        bool (True = real entity) or None (all real). ``classify=False`` skips the classifier
        (inference timing, as the paper measures). Entities are ignored without text interaction."""
        entities, entity_mask = self._check_inputs(ir, vi, entities, entity_mask)
        return self._decode(self.encode(ir, vi), entities, entity_mask, classify=classify)

    def encode(self, ir: torch.Tensor, vi: torch.Tensor) -> Encoded:
        """Everything before the first entity-dependent stage: padding to the window grid,
        shallow features, and the first block's MCA and MSA. A caption-free second pass (or
        several entity sets on one pair) reuses it through :meth:`decode`."""
        self._check_inputs(ir, vi, None, None)
        height, width = ir.shape[-2:]
        s = self.config.window_size
        least = fusion_min_side(self.config)
        ir_p, vi_p = pad_to_grid(ir, s, least), pad_to_grid(vi, s, least)
        x_ir = window_partition(self.shallow["ir"](ir_p), s)  # [B, nW, T, C]
        x_vi = window_partition(self.shallow["vi"](vi_p), s)
        grid = (ir_p.shape[-2] // s, ir_p.shape[-1] // s)
        state = self._first_block().visual(x_ir, x_vi, grid)
        return Encoded(state, (ir_p, vi_p), (height, width), (ir_p.shape[-2], ir_p.shape[-1]), ir.shape[0], ir.dtype)

    def decode(
        self,
        encoded: Encoded,
        entities: torch.Tensor | None = None,
        entity_mask: torch.Tensor | None = None,
        classify: bool = True,
        fuse: bool = True,
    ) -> EGMTOutput:
        """The rest of the forward pass from :meth:`encode`'s result, with these entities.
        ``fuse=False`` skips the reconstructor (a classifier-only pass)."""
        entities, entity_mask = self._check_entities(encoded.batch, encoded.dtype, entities, entity_mask)
        return self._decode(encoded, entities, entity_mask, classify, fuse)

    def _decode(
        self,
        encoded: Encoded,
        entities: torch.Tensor | None,
        entity_mask: torch.Tensor | None,
        classify: bool = True,
        fuse: bool = True,
    ) -> EGMTOutput:
        if not self.config.text_interaction:
            entities = entity_mask = None
        height, width = encoded.size
        shared = self.shared_features(encoded, entities, entity_mask)
        fused = self._fuse(encoded, shared, entity_mask)[..., :height, :width] if fuse else None
        logits = None
        if self.classifier is not None and classify:
            logits = self.classifier(shared[..., :height, :width], entities, entity_mask)
        return EGMTOutput(fused=fused, logits=logits)

    def _fuse(self, encoded: Encoded, shared: torch.Tensor, entity_mask: torch.Tensor | None) -> torch.Tensor:
        """The reconstructor on the shared representation ``[B, 2C, Hp, Wp]`` -> ``[B, 1, Hp, Wp]``.

        With ``entity_guidance = g > 0`` (inference only, not in training) its logits are pushed
        away from the entity-free pass's, as classifier-free guidance does: ``l_0 + (1 + g) (l_E -
        l_0)``. Entity dropout trains both passes, so the difference is what the entities change,
        and g scales it; a sample without entities gets the plain output (``l_E = l_0``).
        """
        head, sources = self.fusion_head, encoded.sources
        guidance = self.config.entity_guidance
        if guidance == 0 or self.training or entity_mask is None or not entity_mask.any():
            return head(shared, *sources)  # nothing to guide: no second pass
        free = head.logits(self.shared_features(encoded, None, None), *sources)
        given = head.logits(shared, *sources)
        return head.compose(free + (1 + guidance) * (given - free), *sources)

    def shared_features(self, encoded: Encoded, entities: torch.Tensor | None, entity_mask: torch.Tensor | None) -> torch.Tensor:
        """Phi_f^sr, the shared representation both heads read: ``[B, 2C, Hp, Wp]`` on the padded
        grid (entities already checked; None when there are none)."""
        (hp, wp), s = encoded.padded, self.config.window_size
        aligned = self.entity_align(entities) if self.entity_align is not None and entities is not None else None
        x_ir, x_vi = self._first_block().entity(encoded.state, aligned, entity_mask)
        for block in self.blocks[1:]:
            x_ir, x_vi = block(x_ir, x_vi, aligned, entity_mask, grid=(hp // s, wp // s))
        return torch.cat([window_reverse(x_ir, s, hp, wp), window_reverse(x_vi, s, hp, wp)], dim=1)

    def head_inputs(
        self, encoded: Encoded, entities: torch.Tensor | None = None, entity_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """What the fusion head reads for these entities (checked as :meth:`decode` checks them,
        ignored without text interaction): the shared representation ``[B, 2C, Hp, Wp]`` and the
        sources padded to that grid, ``([B, 1, Hp, Wp], [B, 1, Hp, Wp])``. ``fusion_head.logits``
        on them is the weight map's logit before its sigmoid, the entity-given pass's (no guidance)."""
        entities, entity_mask = self._check_entities(encoded.batch, encoded.dtype, entities, entity_mask)
        if not self.config.text_interaction:
            entities = entity_mask = None
        return self.shared_features(encoded, entities, entity_mask), encoded.sources

    def _first_block(self) -> ECIMLayoutBlock:
        """The first ECIM block, whose state :meth:`encode` keeps (num_blocks = 0: a pass-through)."""
        return cast(ECIMLayoutBlock, self.blocks[0]) if len(self.blocks) else Passthrough()

    def _check_inputs(
        self, ir: torch.Tensor, vi: torch.Tensor, entities: torch.Tensor | None, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        cfg = self.config
        if ir.ndim != 4 or ir.shape[1] != cfg.in_channels or ir.shape != vi.shape:
            raise EGMTError(
                f"model input: expected ir and vi of equal shape [B, {cfg.in_channels}, H, W], "
                f"got {tuple(ir.shape)} and {tuple(vi.shape)}"
            )
        return self._check_entities(ir.shape[0], ir.dtype, entities, mask)

    def _check_entities(
        self, b: int, dtype: torch.dtype, entities: torch.Tensor | None, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Entities ``[b, E, D]`` and mask ``[b, E]`` (padding rows zeroed, cast to ``dtype``)."""
        cfg = self.config
        if entities is None:
            return None, None
        if entities.ndim != 3 or entities.shape[0] != b or entities.shape[2] != cfg.entity_dim:
            raise EGMTError(f"model input: expected entities [{b}, E, {cfg.entity_dim}], got {tuple(entities.shape)}")
        if mask is None:
            mask = torch.ones(entities.shape[:2], dtype=torch.bool, device=entities.device)
        elif mask.shape != entities.shape[:2]:
            raise EGMTError(f"model input: entity_mask {tuple(mask.shape)} does not match entities {tuple(entities.shape)}")
        mask = mask.to(dtype=torch.bool, device=entities.device)
        # Padding rows never reach the output (they are masked everywhere); zeroing them also
        # keeps a NaN in a padding row from leaking through a 0 * NaN product.
        entities = entities.masked_fill(~mask[:, :, None], 0.0).to(dtype)
        return entities, mask

    # ------------------------------------------------------------------ checkpoints

    def save_pretrained(self, directory: str | os.PathLike, config: EGMTConfig | None = None) -> None:
        """Write ``directory/model.safetensors`` and ``directory/config.json`` (the full
        EGMTConfig; default ``EGMTConfig(model=self.config)``), each atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        full = config if config is not None else EGMTConfig(model=self.config)
        if full.model != self.config:
            raise EGMTError(f"{directory}: the config's model section does not match this model")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_path(directory / MODEL_FILE) as tmp:
            save_file(state, str(tmp), metadata={_FORMAT_KEY: _FORMAT})
        with atomic_path(directory / CONFIG_FILE) as tmp:
            tmp.write_text(json.dumps(full.to_dict(), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> EGMT:
        """Build the model from ``directory/config.json`` and load ``directory/model.safetensors``.

        The model is returned in eval mode. Raises :class:`EGMTError` (one line) for a missing folder or file, a file that is not an
        egmt checkpoint, or weights that do not fit the configured model.
        """
        directory = Path(directory)
        weights, config_path = directory / MODEL_FILE, directory / CONFIG_FILE
        for path in (weights, config_path):
            if not path.is_file():
                raise EGMTError(f"{path}: checkpoint file not found")
        try:
            model = cls(EGMTConfig.load(config_path).model)
        except EGMTError as e:
            raise EGMTError(e if str(config_path) in str(e) else f"{config_path}: {e}") from None
        except (TypeError, ValueError) as e:  # a config section of the wrong type, impossible sizes
            raise EGMTError(f"{config_path}: invalid model config ({_one_line(e)})") from None
        device = str(torch.device(map_location))
        try:
            with safe_open(str(weights), framework="pt", device=device) as f:
                metadata = f.metadata() or {}
                if metadata.get(_FORMAT_KEY) != _FORMAT:
                    raise EGMTError(f"{weights}: not an egmt model checkpoint (no '{_FORMAT_KEY}' metadata)")
                state = {k: f.get_tensor(k) for k in f.keys()}
        except EGMTError:
            raise
        except Exception as e:  # safetensors raises its own error types for a corrupt file
            raise EGMTError(f"{weights}: cannot read safetensors file ({_one_line(e)})") from None
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise EGMTError(
                f"{weights}: weights do not match {CONFIG_FILE} (missing {_few(missing)}; unexpected {_few(unexpected)})"
            )
        wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape]
        if wrong:
            raise EGMTError(f"{weights}: tensor shapes do not match {CONFIG_FILE} ({_few(wrong)})")
        model.load_state_dict(state)
        return model.to(map_location).eval()


def fusion_min_side(cfg: ModelConfig) -> int:
    """The fewest pixels a side of the padded image needs for the fusion head's blurs (the rule's
    Gaussians of the weight prior or the residual head, ``prior_sigma``; the re-based infrared's,
    ``ir_rebase``: a Gaussian, or a guided filter reaching less far) to reflect at their borders:
    1 without either."""
    margins = [0]
    if cfg.weight_prior != "none" or cfg.fusion_output == "residual":
        margins.append(blur_margin(cfg.prior_sigma))
    if cfg.ir_rebase > 0:
        margins.append(blur_margin(cfg.ir_rebase))
    return 1 + max(margins)


def padded_side(n: int, size: int, min_side: int = 1) -> int:
    """A side of ``n`` pixels padded to the window grid (a multiple of ``size``) and to at least
    ``min_side`` (:func:`fusion_min_side`)."""
    return max(-(-n // size), -(-min_side // size)) * size


def pad_to_grid(x: torch.Tensor, size: int, min_side: int = 1) -> torch.Tensor:
    """Pad ``[..., H, W]`` right/bottom to :func:`padded_side` (the window grid, and at least
    ``min_side``): reflect when the image is large enough, else replicate; unchanged when it
    already fits."""
    h, w = x.shape[-2:]
    pad = (0, padded_side(w, size, min_side) - w, 0, padded_side(h, size, min_side) - h)
    if not any(pad):
        return x
    mode = "reflect" if pad[1] < x.shape[-1] and pad[3] < x.shape[-2] else "replicate"
    return F.pad(x, pad, mode=mode)


def _few(items: list[str], n: int = 3) -> str:
    if not items:
        return "none"
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__
