"""All of egmt's settings, as typed dataclasses in one place.

An :class:`EGMTConfig` is saved as ``config.json`` beside every checkpoint and run, and
read back with :meth:`EGMTConfig.load`, so a run can always be reproduced from its folder.
Defaults are the paper's (Sec. IV-A) unless a comment says why not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

# The string choices of the settings: checked when a config is loaded or changed with --set
# (an unknown value is a one-line error listing these), and the stages' own lists come from here.
SmallImages = Literal["error", "skip"]
Captioner = Literal["file", "blip2"]
Extractor = Literal["spacy", "factual"]
Encoder = Literal["minilm", "clip"]
FusionOutput = Literal["image", "weights", "residual"]
Layout = Literal["pixel", "patch"]
TaskWeighting = Literal["softmax", "uncertainty", "fixed"]
SsimForm = Literal["sum", "grad_weighted"]
LrSchedule = Literal["constant", "cosine"]
TokenUnembed = Literal["patch", "smooth"]
ChannelScope = Literal["window", "image"]
IntensityTarget = Literal["max", "base_detail", "contrast"]
IntensityBase = Literal["max", "mean"]
Classifier = Literal["entity", "tokens"]
WeightPrior = Literal["none", "contrast"]
RebaseSpread = Literal["gaussian", "guided"]
TextTokens = Literal["entities", "captions"]

from egmt.errors import EGMTError
from egmt.fileio import read_json, write_json_atomic


@dataclass
class DataSource:
    """One dataset folder and the pairs of it to use (beside or instead of ``DataConfig.root``)."""

    root: str  # ROOT/{ir,vi}/STEM.ext
    split: str | None = None  # a file of stems (relative to root, else to the working folder, or absolute); None: all pairs
    annotations: str | None = None  # DATASET.jsonl from `egmt annotate`; all of a run's files share one folder
    # As a validation source: its own central crop (0: whole images); None: train.val_crop.
    val_crop: int | None = None


@dataclass
class DataConfig:
    """Where training (and validation) pairs come from and how they are cropped."""

    root: str = "../shared/data/roadscene"  # ROOT/{ir,vi}/STEM.ext
    split: str | None = (
        "train.txt"  # a file of stems, relative to root (else to the working folder, or absolute); None: all pairs
    )
    annotations: str | None = None  # DATASET.jsonl from `egmt annotate` (vocabulary + entity bank beside it)
    # More training data beside root (e.g. m3svd next to RoadScene); each with its own annotations.
    extra_sources: list[DataSource] = field(default_factory=list)
    # Validation pairs, scored during training (never a test set); empty: no validation.
    val_sources: list[DataSource] = field(default_factory=list)
    crop_size: int = 448  # paper: 448x448 training crops
    # paper: "a fixed sliding step", value not given; 1086 MSRS pairs (640x480) -> 10563 patches.
    # 10563/1086 = 9.73 is not a whole number, so no single stride gives it exactly. With our grid
    # (last window flush with the border) strides 48..63 give 10 crops per 640x480 image
    # (5 across x 2 down; 10860 in all, +2.8%), the nearest count any stride gives. We use 48,
    # which tiles 640 exactly (0, 48, ..., 192).
    crop_stride: int = 48
    flips: bool = True  # random horizontal / vertical flips of a crop (paper: not given)
    # A pair smaller than the crop in either dimension: "error" (default) or "skip" (with a warning).
    # RoadScene: 220 of its 221 images (161..459 high) are smaller than 448: train on it with a smaller crop_size.
    small_images: SmallImages = "error"
    num_workers: int = 0


@dataclass
class TextConfig:
    """Captions -> entities -> entity features -> pseudo-labels (paper Sec. III-A)."""

    captioner: Captioner = "file"  # "file" (JSON Lines captions) or "blip2"
    captioner_path: str | None = None  # local BLIP-2 folder for captioner="blip2"
    extractor: Extractor = "spacy"  # "spacy" (offline default) or "factual" (paper: FACTUAL Flan-T5)
    extractor_path: str | None = None  # local FACTUAL folder for extractor="factual"
    encoder: Encoder = "minilm"  # "minilm" (offline default, 384-d) or "clip" (paper: CLIP ViT-L/14, 768-d)
    encoder_path: str | None = None  # local model folder; None: the encoder's default
    max_entities: int = 8  # paper: 2-8 entities per pair
    num_classes: int = 9  # paper: nine pseudo-label classes
    synonyms: str | None = None  # JSON {word: class} over egmt.text.labels.DEFAULT_SYNONYMS; None: the defaults
    device: str = "cpu"  # where BLIP-2 / FACTUAL / the encoder run: "cpu", "cuda", "auto"
    batch_size: int = 16  # captions (or images) per model call


@dataclass
class ModelConfig:
    """The EGMT network (Sec. III-B/C) and the ablation switches of Table VIII."""

    in_channels: int = 1  # the Y channel of each source
    channels: int = 32  # paper: 32 shallow-feature channels per modality
    window_size: int = 16  # paper: 16x16 non-overlapping windows
    # Paper: not given. 2 heads of 16 channels: PyTorch's CPU flash attention is about 3x
    # slower with 8-channel heads (4 heads) for the same FLOPs; keep channels/num_heads >= 16 on CPU.
    num_heads: int = 2
    # ECIM blocks; paper: not given. At 448x448 (classifier off) channels=32 costs 32 GMACs
    # with 1 block, 104 with 4 (the paper's 111.9 G); its 53.62 M params are out of reach at
    # that cost (channels=256, 8 blocks: 31 M params, 6.8 TMACs). See benchmarks/bench_model.py.
    num_blocks: int = 1
    ffn_ratio: float = 2.0  # feed-forward hidden width / channels; paper: not given
    relative_position_bias: bool = False  # Swin-style bias in the window MSA; paper: none mentioned (8x slower on CPU)
    entity_dim: int = 384  # text encoder width: 384 MiniLM, 768 CLIP ViT-L/14
    num_classes: int = 9
    # Reconstructor output (eq. 7). "image": the last conv gives the fused image through a sigmoid,
    # as the paper writes it. "weights": it gives a per-pixel weight map w = sigmoid(.), and the
    # fused image is w * I_ir + (1 - w) * I_vi (a decision map, as many fusion networks use; not the
    # paper's). "residual" (issue 16, not the paper's): it gives a correction to the contrast rule's
    # image (egmt.model.prior.contrast_target with prior_* and ir_rebase), F = clamp(T + out, 0, 1);
    # the last conv starts at zero, so an untrained network fuses as the rule does (exactly when the
    # image needs no padding to the token grid). Same
    # parameters in all three.
    fusion_output: FusionOutput = "image"
    # "weights" only: the weight map the network starts from (issue 16, not the paper's). "none": the
    # sigmoid of the reconstructor's output. "contrast": the contrast rule (egmt.model.prior:
    # the infrared where only it has structure, the visible where only it has, the brighter source
    # elsewhere), corrected by the network: w = sigmoid(logit(m) + out), m the rule's mixing weight
    # of the sources; the last convolution starts at zero, so an untrained network fuses as the rule
    # does, and what training learns is where and how to depart from it. prior_*: the rule's
    # Gaussian window, contrast power and noise floor; set them to loss.intensity_* (the trainer warns
    # when they differ from a contrast target's).
    weight_prior: WeightPrior = "none"
    # "weights": the weight map mixes the visible image with the infrared re-based onto the
    # brighter source's local mean (egmt.model.prior.rebase_ir, spread over ir_rebase pixels), so
    # that it can give what loss.intensity_rebase asks for: a person's infrared contrast at the
    # smoke's brightness, without his dark background. "residual": the rule's image is made with it.
    # 0: the infrared as it is (the default).
    ir_rebase: float = 0.0
    # With ir_rebase (weight-map head): the re-based infrared is capped at max(IR, VI) plus this many
    # grey levels (of 255), an inference-time cap (the weights are unchanged). Why: beside a warm
    # roof or tree under a bright sky the re-based structure glows far above both sources (TNO 24: a
    # white band along the treeline; docs/target-halos.md, egmt.metrics.glow). 0: no cap.
    ir_rebase_ceiling: float = 0.0
    # With ir_rebase: how the lift max(I_ir, I_vi) - I_ir is spread around each pixel
    # (egmt.model.prior.rebase_ir). "gaussian": a Gaussian of sigma ir_rebase (the re-base as first
    # made; it spills a bright sky's lift onto a warm roof or treeline beside it, a glow band).
    # "guided": a guided filter steered by the visible image (window 2 round(ir_rebase) + 1), which
    # spreads the lift over what the visible image shows as one region (flat smoke around a person)
    # and not across its edges (a roof or a treeline against the sky). Keep it equal to
    # loss.intensity_rebase_spread.
    ir_rebase_spread: RebaseSpread = "gaussian"
    prior_sigma: float = 8.0
    prior_power: float = 4.0
    prior_noise: float = 12.0
    # Entity guidance at inference (issue 17, not the paper's; egmt.model.network.EGMT._fuse): the
    # output's logits moved away from the entity-free pass's by this factor of their difference, as
    # classifier-free guidance does, so that the entities given steer the fusion more. Costs a second
    # decoder pass when entities are given. 0: off (the paper). Training steps never use it; the
    # trainer's validation fuses in eval mode, so a run configured with it validates guided.
    entity_guidance: float = 0.0
    entity_mask_ratio: float = 0.6  # paper eq. 8: 60% of flattened entity features zeroed in training
    # The classifier (egmt.model.heads). "entity": eq. 8, which reads the (masked) entity features,
    # so the labels made from those entities can be read from its input. "tokens": a
    # multiple-instance classifier (issue 17, not the paper's): each class scores the best match of
    # any pixel of the shared representation with the class's text embedding, and reads no entity,
    # so the tokens must come to resemble the entities that are in them.
    classifier: Classifier = "entity"
    # Ablation switches (Table VIII).
    channel_attention: bool = True  # MCA, "CA"
    token_attention: bool = True  # MSA, "TA"
    cgha: bool = True  # cross-modal guided hybrid attention
    text_interaction: bool = True  # "TI": entity features enter the network at all
    multi_task: bool = True  # "MT": the classification head exists and is trained
    # "ENT": the text the network reads. "entities" (the paper): the pair's extracted entities, one
    # token each. "captions" (Table VIII's w/o ENT, "the model relies on raw LVLM-generated
    # captions"): the pair's two captions, each encoded as one text by the text encoder (after the
    # bank's normalisation: lower case, no punctuation or leading article; one token when they are
    # the same text). The pseudo-labels are made from entities, so training refuses captions with
    # multi_task on (docs/design.md).
    text_tokens: TextTokens = "entities"
    # Token layout (docs/design.md, "Two token layouts"). "pixel": every pixel of a 16x16 window
    # is a C-wide token and every attention stays inside its window (the first reading).
    # "patch": each window_size^2 patch is one token (its p*p*C values projected to token_dim),
    # MSA and CGHA attend across all patch tokens of the image (Sec. III-B-1 "token-wise global
    # features"; Table VII's 53.62 M params / 111.9 GFLOPs). Old configs without the key are "pixel".
    layout: Layout = "pixel"
    token_dim: int = 768  # patch layout: token width D (paper: not given; ViT-B's 768)
    token_heads: int = 12  # patch layout: heads of the token MSA and CGHA (64 channels each)
    token_ffn_ratio: float = 4.0  # patch layout: FFN hidden width / token_dim (ViT's 4)
    # Patch layout: how the tokens' updates return to the pixels. "patch": one Linear D -> p*p*C per
    # patch (each patch gets its own pixel pattern; patch borders show as a 16x16 grid in the fused
    # image). "smooth": one Linear D -> C per token, interpolated bilinearly between patch centres
    # (no patch border exists in the output). Old configs without the key are "patch".
    token_unembed: TokenUnembed = "patch"
    # MCA (eq. 1-2): one C x C channel attention map per 16x16 window ("window", the first reading),
    # or one per image ("image": channel attention sums over tokens, so it needs no window; a
    # per-window map mixes the channels differently in each window, which also draws the grid).
    channel_attention_scope: ChannelScope = "window"


@dataclass
class LossConfig:
    """Multi-task loss (eq. 9-15)."""

    alpha_int: float = 1.0
    alpha_edge: float = 15.0
    alpha_ssim: float = 5.0
    edge_abs_fused: bool = True  # |lap F| in eq. 13 as SwinFusion does; False: the paper's literal signed lap F
    ssim_window: int = 11  # paper: not given; the usual Gaussian 11x11, sigma 1.5
    focal_gamma: float = 2.0
    temperature: float = 1.0  # tau of the softmax task weighting
    # Legacy switch (kept so old configs load): False forces task_weighting="fixed".
    learn_task_weights: bool = True
    # How L_fus and L_cla are combined (eq. 9-10):
    #   "softmax": eq. 10 as written, lambda = softmax(-w / tau), w learnable, no regulariser;
    #   "uncertainty": Kendall et al. (the paper's [51]): sum_i exp(-s_i) L_i + s_i, s_i = log sigma_i^2 learnable;
    #   "fixed": lambda = fixed_task_weights.
    task_weighting: TaskWeighting = "softmax"
    fixed_task_weights: list[float] = field(default_factory=lambda: [0.5, 0.5])
    # eq. 14: "sum" = (1 - SSIM(F, ir)) + (1 - SSIM(F, vi)) as the paper writes it;
    # "grad_weighted" = 1 - (w_ir SSIM(F, ir) + w_vi SSIM(F, vi)), w from the mean Sobel gradient
    # magnitude of each source (SwinFusion's L_SSIM, which the paper says it follows).
    ssim_form: SsimForm = "sum"
    # eq. 12's target. "max": |F - max(I_ir, I_vi)| as the paper writes it (asks for the brighter
    # source per pixel, e.g. bright smoke over a cooler person). "base_detail": split each image into
    # a base (Gaussian blur, sigma intensity_sigma) and a detail layer (image - base) and ask for the
    # brighter base and the stronger detail (max-abs): |G*F - max(G*I_ir, G*I_vi)| +
    # |(F - G*F) - maxabs(I_ir - G*I_ir, I_vi - G*I_vi)|, so a source's structure is kept where the
    # other is brighter but flat (docs/design.md).
    intensity_target: IntensityTarget = "max"
    intensity_sigma: float = 8.0
    # base_detail's base target: "max" = the brighter source's base (keeps warm regions whole, but asks
    # for bright smoke over a cooler person); "mean" = the mean of the two bases (balanced brightness; the
    # detail term still keeps each source's stronger structure, small warm targets included).
    intensity_base: IntensityBase = "max"
    # "contrast": max(I_ir, I_vi) blended towards the infrared where the infrared has the stronger
    # local contrast: target = w I_ir + (1 - w) max(I_ir, I_vi), w = c_ir^p / (c_ir^p + c_vi^p),
    # c the local standard deviation (Gaussian window, sigma intensity_sigma), p intensity_power,
    # w smoothed by the same Gaussian. A person in smoke (infrared structure, a bright but flat
    # visible image) is then asked for as the infrared shows it, not as the smoke's brightness.
    intensity_power: float = 4.0
    # "contrast" only: count a source's local contrast above intensity_noise times its own noise level
    # (egmt.model.prior.noise_level), and ask for max(I_ir, I_vi) where neither has any: an infrared
    # sky's sensor noise and stripes then no longer pull a flat visible sky towards the infrared.
    # 0: off (every contrast counts; w = 1/2 where neither source has any).
    intensity_noise: float = 0.0
    # "contrast" only: where the target takes the infrared's structure, take it re-based onto the
    # brighter source's local mean, I_ir - G*I_ir + G*max(I_ir, I_vi) (G a Gaussian of sigma
    # intensity_rebase, or a guided filter: intensity_rebase_spread): the person's contrast
    # against his background, at the smoke's brightness, instead of the infrared's dark background
    # cut into the smoke around him (halos). 0: off.
    intensity_rebase: float = 0.0
    # "contrast" with intensity_rebase: how the lift is spread, "gaussian" or "guided" by the
    # visible image (model.ir_rebase_spread says why).
    intensity_rebase_spread: RebaseSpread = "gaussian"
    # Shuffled-entity negatives (issue 17): with weight entity_negative > 0, each training batch is
    # decoded a second time with another sample's entities (the batch rolled by one), and
    # relu(L_fus(own) - L_fus(shuffled) + entity_margin) is added: the pair's own entities must give
    # the better fusion. 0: off (the paper).
    entity_negative: float = 0.0
    entity_margin: float = 0.05
    # Token-entity contrast (issue 17), on the same shuffled pass: for each entity, the maximum over
    # the image's tokens of CGHA's eq. 5 logit (mean over heads, every CGHA) must exceed that of the
    # other pair's entities absent from this one by entity_contrast_margin (a hinge, weight
    # entity_contrast): tokens must match the entities that are in their image, so the entity
    # maps (egmt heatmap) have a reason to peak on them. 0: off.
    entity_contrast: float = 0.0
    entity_contrast_margin: float = 1.0
    # Entity-conditioned target (issue 17; "contrast" only; not in the paper): the contrast target's
    # infrared weight is kept only for a pair whose given entities name one of these vocabulary
    # classes (or that is given none, e.g. entity dropout hid them all); for the others eq. 12 asks
    # for max(I_ir, I_vi) as the paper writes it. "person" makes the text say whether the infrared's
    # people are to be kept where the visible image is brighter (smoke), so which entities are
    # given changes what the network is asked for. Empty: off (the target depends on the images only).
    entity_target_classes: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping."""

    lr: float = 1e-4  # paper: Adam, 1e-4
    batch_size: int = 4  # paper: 4
    epochs: int = 20  # paper: 20
    max_steps: int | None = None  # stop after this many steps (CPU budgets); None: run all epochs
    max_minutes: float | None = None  # also stop (with a checkpoint) once this much training time has passed
    # Also stop once the training steps have used this much CPU time of this process (all its
    # threads; data loading included, validation and checkpoints not): an equal-compute budget
    # that other jobs on the machine do not shorten (`egmt study --cpu-minutes`).
    max_cpu_minutes: float | None = None
    lr_schedule: LrSchedule = "constant"  # paper: constant; "cosine" decays to 0 at the last step (short CPU runs)
    warmup_steps: int = 0  # linear warm-up from 0 (paper: none)
    seed: int = 0
    # Start from these weights (a checkpoint folder, or a run folder's newest checkpoint) instead of
    # a random initialisation: fine-tuning, or going on from a finished run with a new recipe (a lower
    # learning rate, weight averaging). The model config must match; the optimizer, the task weights,
    # the step and the budget start afresh. `--resume` instead continues a run exactly. None: random.
    init_from: str | None = None
    # Exponential moving average of the weights (Polyak averaging; torch.optim.swa_utils): after each
    # step avg <- decay * avg + (1 - decay) * weights. Validation, the checkpoints' model.safetensors
    # and RUN_DIR/best hold the average (the weights a user gets); the trained weights go on in the
    # resuming state. The decay ramps up, min(ema_decay, (1 + n) / (10 + n)) at the n-th step, so the
    # first steps do not linger in a short run's average. init_from on such a run starts from the
    # average. With a constant learning rate the weights wander from step to step (the validation
    # score and the people in the boxes swing with them); their average does not. 0: off (the paper).
    ema_decay: float = 0.0
    device: str = "auto"  # "auto" (CUDA if available), "cpu", "cuda", "cuda:1"...
    log_every: int = 10  # steps between CSV / TensorBoard rows
    save_every: int = 200  # steps between checkpoints (and one at the end)
    grad_clip: float | None = None
    # Entity dropout (training only): each real entity of a sample is hidden with p = entity_drop,
    # and all of a sample's entities with p = entity_drop_all, so the classifier must read the image
    # and the entity-free (caption-free) path is trained. Paper: none (0, 0).
    entity_drop: float = 0.0
    entity_drop_all: float = 0.0
    # With loss.entity_target_classes: hide all of a sample's target-class entities (e.g. every
    # "person", "man"...) with p = entity_target_drop, so the same image is seen both with them
    # (the contrast target) and without (max(I_ir, I_vi)): what they change is then all the
    # network can learn from them. A sample left with no entity at all (the target-class ones were
    # its only ones, or entity_drop / entity_drop_all took the rest) gets the contrast target like
    # any sample given none: its input cannot say which target it was meant for. 0: off.
    entity_target_drop: float = 0.0
    # Validation (data.val_sources): every val_every steps (0: only at the end) the network fuses the
    # central val_crop x val_crop of every validation pair (0: whole images); see egmt.train.validation.
    val_every: int = 0
    val_crop: int = 256
    # The score (egmt.train.validation): the geometric mean of the mean ratio to average fusion over
    # val_metrics (information carried over) and over val_fidelity_metrics (closeness to both
    # sources); an empty fidelity list gives the mean over val_metrics alone (the earlier rule).
    val_metrics: list[str] = field(default_factory=lambda: ["MI", "Qabf", "FMI_w", "VIF"])
    val_fidelity_metrics: list[str] = field(default_factory=lambda: ["SSIM_min", "PSNR"])
    # The best checkpoint must keep, on every validation source, at least this share of the
    # infrared's warm targets (egmt.metrics.retention: 1 = max-abs, 0.5 = plain averaging, 0 = the
    # visible image); the score alone rewards hiding them. None: no floor (the rule before 0.5).
    val_min_retention: float | None = 0.5
    # ... and have a mean seam ratio (egmt.metrics.seams: 1 = no patch grid beyond the sources')
    # of at most this on every validation source: a patch mosaic is never the best. None: no floor.
    val_max_seam: float | None = 1.03
    # Hand-drawn boxes of the validation pairs (a box file, egmt.data.boxes; never used for training):
    # validation logs the fused image's IR correlation inside the person boxes ("person_ir": do people
    # plain in the infrared stay plain?), and with val_min_person_ir the best checkpoint must reach it.
    # Several files (a list) are read together, e.g. the validation crops' boxes and a smoke clip's.
    val_boxes: str | list[str] | None = None
    val_min_person_ir: float | None = None
    # Where the person floor is read: "pooled" over every box of every validation source, or on
    # "each_source" alone (every source with boxes must reach it: a source of people in smoke is
    # not outvoted by the boxes of an easier one).
    val_person_floor: Literal["pooled", "each_source"] = "pooled"
    # ... and cut no dark halo around them: the fused image at most this many grey levels darker
    # than the visible image in a 16-pixel ring around the person boxes ("person_halo",
    # egmt.metrics.retention.surround_darkening), read like the person floor. None: no ceiling.
    val_max_person_halo: float | None = None
    # ... and keep both sources' structure: a mean SSIM_min (the SSIM of the fused image with the
    # less kept source) of at least this. Copying a source, or nearly copying the infrared, scores
    # well on the information metrics and fails it. None: no floor.
    val_min_ssim_min: float | None = None


@dataclass
class EGMTConfig:
    """Everything a run needs; saved as ``config.json`` with every checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EGMTConfig:
        return _from_dict(cls, d, "config")

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> EGMTConfig:
        try:
            return cls.from_dict(read_json(path, "config"))
        except EGMTError as e:
            if str(e).startswith(str(path)):
                raise
            raise EGMTError(f"{path}: {e}") from None


def _choices(hint: Any) -> tuple | None:
    """The allowed values of a ``Literal[...]`` hint (also inside ``Literal[...] | None``), else None."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        for arg in typing.get_args(hint):
            if typing.get_origin(arg) is Literal:
                return typing.get_args(arg) + ((None,) if type(None) in typing.get_args(hint) else ())
    return None


def _from_dict(cls: type, d: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a plain dict, recursing into nested sections.

    Unknown keys are an error (a typo in a config must not be silently ignored), and so is a
    value outside a ``Literal`` field's choices (the message lists them).
    """
    if not isinstance(d, dict):
        raise EGMTError(f"{where}: expected a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise EGMTError(f"{where}: unknown key(s) {sorted(unknown)}")
    kwargs = {}
    for name, value in d.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = _from_dict(hint, value, f"{where}.{name}")
        elif typing.get_origin(hint) is list and typing.get_args(hint) and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            if not isinstance(value, list):
                raise EGMTError(f"{where}.{name}: expected a list, got {type(value).__name__}")
            item = typing.get_args(hint)[0]
            value = [_from_dict(item, v, f"{where}.{name}[{i}]") for i, v in enumerate(value)]
        elif hint is float and isinstance(value, int):
            value = float(value)
        elif isinstance(hint, types.UnionType) and float in typing.get_args(hint) and isinstance(value, int):
            value = float(value)
        choices = _choices(hint)
        if choices is not None and value not in choices:
            raise EGMTError(f"{where}.{name}: {value!r} is not one of {', '.join(map(repr, choices))}")
        kwargs[name] = value
    return cls(**kwargs)


def apply_override(config: EGMTConfig, assignment: str) -> None:
    """Set one field from ``"section.key=value"`` (value parsed as JSON, else kept as a string)."""
    key, sep, raw = assignment.partition("=")
    section_name, dot, name = key.strip().partition(".")
    if not sep or not dot:
        raise EGMTError(f"--set {assignment!r}: expected SECTION.KEY=VALUE, e.g. model.channels=16")
    section = getattr(config, section_name, None)
    if section is None or not dataclasses.is_dataclass(section):
        raise EGMTError(f"--set {assignment!r}: no config section {section_name!r}")
    if name not in {f.name for f in dataclasses.fields(section)}:
        raise EGMTError(f"--set {assignment!r}: section {section_name!r} has no key {name!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    d = dataclasses.asdict(section)
    d[name] = value
    setattr(config, section_name, _from_dict(type(section), d, section_name))
