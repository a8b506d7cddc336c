"""The training loop of ``egmt train``: crops + entities -> EGMT -> multi-task loss -> Adam.

One process or many (torchrun, DistributedDataParallel). Every ``save_every`` steps the run
writes an atomic checkpoint; ``resume=True`` continues from the newest one and produces the
same next step as an uninterrupted run (same weights, optimizer state, batch order, flips
and entity masks), because all randomness comes from torch's RNG, whose state is saved per
rank, and the batch order depends only on (seed, epoch).
"""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from egmt.config import EGMTConfig
from egmt.data.crops import PairCropDataset
from egmt.errors import EGMTError
from egmt.data.io import write_image
from egmt.fileio import replace_folder_atomic, write_bytes_atomic, write_json_atomic
from egmt.files import (
    BANK_FILE,
    CONFIG_FILE,
    CONTACT_SHEET_FILE,
    MODEL_FILE,
    TRAIN_LOG_FILE,
    VALIDATION_FILE,
    VALIDATION_FLOOR_COLUMNS,
    VALIDATION_LOG_FILE,
    VOCABULARY_FILE,
)
from egmt.losses import MultiTaskLoss, absent_entities, entity_negative, token_entity_contrast
from egmt.model.cgha import CrossModalGuidedHybridAttention
from egmt.model import EGMT
from egmt.model.heads import TokenClassifier
from egmt.text.features import EntityFeatures
from egmt.text.labels import Vocabulary
from egmt.train.checkpoint import (
    latest_checkpoint,
    load_training_state,
    resolve_checkpoint,
    save_checkpoint,
    save_training_state,
)
from egmt.train.distributed import DistInfo, close_distributed, init_distributed
from egmt.train.validation import Validator
from egmt.train.sampler import ResumableShuffleSampler

log = logging.getLogger(__name__)

LOG_COLUMNS = [
    "step",
    "epoch",
    "seconds",
    "cpu_seconds",
    "lr",
    "total",
    "fusion",
    "int",
    "edge",
    "ssim",
    "cls",
    "lambda_fus",
    "lambda_cls",
    "entity_neg",
    "entity_con",
]


class TrainStep(nn.Module):
    """The network and its loss as one module, so DDP also syncs the learnable task weights.

    With ``loss.entity_negative`` or ``loss.entity_contrast`` > 0 the batch is decoded a second time
    with another sample's entities (the batch rolled by one; the entity-free first stage is shared).
    ``entity_neg`` (:func:`egmt.losses.entity_negative`) compares the two fusion losses over the
    samples that have entities in both passes; ``entity_con``
    (:func:`egmt.losses.token_entity_contrast`) compares CGHA's token-entity logits of the own
    entities with those of the other sample's entities that are not also the own. Both are added
    to the total with their weights."""

    def __init__(self, model: EGMT, criterion: MultiTaskLoss):
        super().__init__()
        self.model = model
        self.criterion = criterion
        self.cgha = [m for m in model.modules() if isinstance(m, CrossModalGuidedHybridAttention)]

    def forward(self, ir, vi, entities=None, entity_mask=None, labels=None, keep_ir=None) -> dict[str, torch.Tensor]:
        cfg = self.criterion.cfg
        shuffle = (cfg.entity_negative > 0 or cfg.entity_contrast > 0) and entities is not None and ir.shape[0] > 1
        contrast = shuffle and cfg.entity_contrast > 0 and bool(self.cgha)
        encoded = self.model.encode(ir, vi)
        out, own_logits = self._decode_logits(encoded, entities, entity_mask, contrast)
        terms = self.criterion(out.fused, ir, vi, logits=out.logits, labels=labels, keep_ir=keep_ir)
        terms["entity_neg"] = terms["entity_con"] = ir.new_zeros(())
        if not shuffle:
            return terms
        mask = entity_mask if entity_mask is not None else entities.new_ones(entities.shape[:2], dtype=torch.bool)
        other = torch.roll(torch.arange(ir.shape[0], device=ir.device), 1)
        both = mask.any(dim=1) & mask[other].any(dim=1)
        if not both.any():
            return terms
        shuffled, other_logits = self._decode_logits(encoded, entities[other], mask[other], contrast, classify=False)
        if cfg.entity_negative > 0:
            keep = keep_ir[both] if keep_ir is not None else None  # both passes against the own entities' target
            own_loss = self.criterion.fusion(out.fused[both], ir[both], vi[both], keep)["fusion"]
            shuffled_loss = self.criterion.fusion(shuffled.fused[both], ir[both], vi[both], keep)["fusion"]
            terms["entity_neg"] = entity_negative(own_loss, shuffled_loss, cfg.entity_margin)
            terms["total"] = terms["total"] + cfg.entity_negative * terms["entity_neg"]
        if contrast and own_logits is not None and other_logits is not None:
            absent = absent_entities(entities, mask, entities[other], mask[other])
            terms["entity_con"] = token_entity_contrast(
                own_logits, mask & both[:, None], other_logits, absent & both[:, None], cfg.entity_contrast_margin
            )
            terms["total"] = terms["total"] + cfg.entity_contrast * terms["entity_con"]
        return terms

    def _decode_logits(self, encoded, entities, mask, keep: bool, classify: bool = True):
        """One decode; with ``keep``, also each entity's maximum over the tokens of CGHA's eq. 5
        logit, averaged over the CGHA modules, ``[B, E]`` (None when no CGHA saw entities)."""
        for m in self.cgha:
            m.keep_logits = keep
        try:
            out = self.model.decode(encoded, entities, mask, classify=classify)
            kept = [m.logits.amax(dim=1) for m in self.cgha if keep and m.logits is not None]
        finally:
            for m in self.cgha:
                m.keep_logits, m.logits = False, None
        return out, (torch.stack(kept).mean(dim=0) if kept else None)


def annotation_files(config: EGMTConfig) -> list[str]:
    """Every annotation file of the run (training, extra and validation sources), each once, in order."""
    files = [config.data.annotations] + [s.annotations for s in config.data.extra_sources + config.data.val_sources]
    return list(dict.fromkeys(f for f in files if f))


def load_entity_features(config: EGMTConfig) -> EntityFeatures | None:
    """The run's entity features, and the model config adjusted to the bank and vocabulary."""
    needs_text = config.model.text_interaction or config.model.multi_task
    classes = config.loss.entity_target_classes
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise EGMTError(f'loss.entity_target_classes: expected a list of class names, e.g. ["person"], got {classes!r}')
    if not config.data.annotations:
        if classes or config.train.entity_target_drop > 0:
            raise EGMTError("loss.entity_target_classes and train.entity_target_drop need --annotations (the entities they read)")
        if needs_text:
            raise EGMTError(
                "training with entities needs --annotations (a DATASET.jsonl from `egmt annotate`); "
                "to train without, turn off text interaction and multi-task learning"
            )
        return None
    missing = [s.root for s in config.data.extra_sources + config.data.val_sources if not s.annotations]
    if missing:
        raise EGMTError(f"{missing[0]}: a data source without annotations in a run that uses entities")
    feats = EntityFeatures.from_annotation_files(annotation_files(config))
    feats.tokens = config.model.text_tokens
    if feats.tokens == "captions" and config.model.multi_task:
        raise EGMTError(
            "model.text_tokens=captions needs model.multi_task=false: the pseudo-labels are made from entities (w/o ENT)"
        )
    unencoded = feats.bank.missing(feats.texts()) if feats.tokens == "captions" and config.model.text_interaction else []
    if unencoded:  # `egmt annotate` encodes the entities, not the captions: encode those into the run's bank
        from egmt.text.encoders import load_encoder

        feats.bank.add(unencoded, load_encoder(feats.bank.encoder, config.text.encoder_path, config.text.device))
    if config.loss.entity_target_classes and (feats.tokens != "entities" or config.loss.intensity_target != "contrast"):
        raise EGMTError(
            "loss.entity_target_classes needs model.text_tokens=entities and loss.intensity_target=contrast "
            f"(got {feats.tokens} and {config.loss.intensity_target})"
        )
    feats.class_mask([], config.loss.entity_target_classes)  # a class the vocabulary lacks: say so now
    if config.train.entity_target_drop > 0 and not config.loss.entity_target_classes:
        raise EGMTError("train.entity_target_drop needs loss.entity_target_classes (the entities it hides)")
    config.model.entity_dim = feats.dim
    config.model.num_classes = feats.num_classes
    return feats


class Trainer:
    """Holds one run's state; :meth:`fit` trains to the end, checkpointing on the way."""

    def __init__(self, config: EGMTConfig, run_dir: str | Path, resume: bool = False):
        self.config = config
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.dist, self.device = init_distributed(config.train.device)
        torch.manual_seed(config.train.seed + self.dist.rank)

        self.features = load_entity_features(config)
        self.dataset = PairCropDataset.from_config(config.data, progress=self.dist.is_main)
        self.sampler = ResumableShuffleSampler(len(self.dataset), config.train.seed, self.dist.rank, self.dist.world_size)
        self.steps_per_epoch = self.sampler.shard_size() // config.train.batch_size
        if self.steps_per_epoch == 0:
            raise EGMTError(
                f"{config.data.root}: {len(self.dataset)} crops give no full batch of {config.train.batch_size} "
                f"per process ({self.dist.world_size} process(es))"
            )
        total = config.train.epochs * self.steps_per_epoch
        self.total_steps = min(total, config.train.max_steps) if config.train.max_steps else total

        torch.manual_seed(config.train.seed)  # same initial weights on every rank (DDP also broadcasts)
        self.model = EGMT(config.model).to(self.device)
        if config.train.init_from and not resume:
            self._init_from(config.train.init_from)
        if self.features is not None and isinstance(self.model.classifier, TokenClassifier):
            self.model.classifier.class_text.copy_(self.features.class_text())  # this run's classes
        starts_at_rule = config.model.weight_prior == "contrast" or config.model.fusion_output == "residual"
        if starts_at_rule and config.loss.intensity_target == "contrast":
            prior = (config.model.prior_sigma, config.model.prior_power, config.model.prior_noise)
            target = (config.loss.intensity_sigma, config.loss.intensity_power, config.loss.intensity_noise)
            if prior != target:
                log.warning(
                    "model.prior_* %s differ from loss.intensity_* %s: the network starts from another rule "
                    "than its intensity target",
                    prior,
                    target,
                )
        rebased_target = config.loss.intensity_target == "contrast" and config.loss.intensity_rebase > 0
        if config.model.ir_rebase > 0 and rebased_target and config.model.ir_rebase_spread != config.loss.intensity_rebase_spread:
            log.warning(
                "model.ir_rebase_spread %s and loss.intensity_rebase_spread %s differ: the head spreads the lift "
                "otherwise than the target it is trained towards",
                config.model.ir_rebase_spread,
                config.loss.intensity_rebase_spread,
            )
        if config.model.ir_rebase != (config.loss.intensity_rebase if config.loss.intensity_target == "contrast" else 0.0):
            log.warning(
                "model.ir_rebase %g and the contrast target's loss.intensity_rebase %g (target %s) differ: the head "
                "mixes another infrared than the one the loss asks for",
                config.model.ir_rebase,
                config.loss.intensity_rebase,
                config.loss.intensity_target,
            )
        # The weights that are validated and saved: their moving average (train.ema_decay; rank 0
        # alone validates and saves), or the trained weights themselves.
        if not 0 <= config.train.ema_decay < 1:
            raise EGMTError(f"train.ema_decay: {config.train.ema_decay} is not in [0, 1)")
        self.ema: AveragedModel | None = None
        if config.train.ema_decay > 0 and self.dist.is_main:
            self.ema = AveragedModel(self.model, multi_avg_fn=ema_with_warmup(config.train.ema_decay))
        self.eval_model: EGMT = self.ema.module if self.ema is not None else self.model  # type: ignore[assignment]
        ratio = None
        if self.features is not None and config.model.multi_task:
            ratio = torch.tensor(self.features.vocabulary.positive_ratio, dtype=torch.float32)
        self.criterion = MultiTaskLoss(config.loss, ratio).to(self.device)
        self.step_module: nn.Module = TrainStep(self.model, self.criterion)
        if self.dist.enabled:
            self.step_module = nn.parallel.DistributedDataParallel(
                self.step_module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,  # e.g. the entity projection when a batch has no entity
            )
        self.optimizer = torch.optim.Adam(self.step_module.parameters(), lr=config.train.lr)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_score = -math.inf
        self.cpu_seconds = 0.0  # CPU time of this process's training steps so far (max_cpu_minutes)
        self.validator = None
        self._val_log = None  # validation.csv, open while fit() runs
        self._sheet: Path | None = None  # the last validation's contact sheet
        if config.data.val_sources and self.dist.is_main:
            self.validator = Validator(config, self.features)
        torch.manual_seed(config.train.seed + 1 + self.dist.rank)  # flips and entity masks differ per rank
        if resume:
            self._restore()

    # -- state ---------------------------------------------------------------------------
    def _init_from(self, path: str) -> None:
        """Load another run's weights (``train.init_from``: a checkpoint folder such as ``RUN/best``,
        or a run folder's newest checkpoint; with weight averaging, the average) into the fresh model."""
        folder = resolve_checkpoint(path)
        saved = EGMTConfig.load(folder / CONFIG_FILE)
        if saved.model != self.config.model:
            differ = sorted(k for k, v in saved.model.__dict__.items() if getattr(self.config.model, k) != v)
            raise EGMTError(f"{folder}: train.init_from has another model config ({', '.join(differ)} differ)")
        if self.features is not None and (folder / VOCABULARY_FILE).is_file():
            classes = Vocabulary.load(folder / VOCABULARY_FILE).classes
            if classes != self.features.vocabulary.classes:
                raise EGMTError(
                    f"{folder / VOCABULARY_FILE}: train.init_from has other classes ({', '.join(classes)}) than this "
                    f"run ({', '.join(self.features.vocabulary.classes)}): the classifier's rows would not match"
                )
        self.model.load_state_dict(load_file(str(folder / MODEL_FILE), device=str(self.device)))
        if self.dist.is_main:
            log.info("initialised from %s", folder)

    def _restore(self) -> None:
        folder = latest_checkpoint(self.run_dir)
        if folder is None:
            raise EGMTError(f"{self.run_dir}: nothing to resume (no checkpoints/latest)")
        saved = EGMTConfig.load(folder / CONFIG_FILE)
        if saved.model != self.config.model:
            raise EGMTError(f"{folder}: was trained with a different model config; resume with the run's config.json")
        weights = load_file(str(folder / MODEL_FILE), device=str(self.device))
        state = load_training_state(folder)
        # With weight averaging the checkpoint's model file holds the average and the resuming
        # state the trained weights.
        self.model.load_state_dict(state.get("train_weights", weights))
        if self.ema is not None:
            self.eval_model.load_state_dict(weights)
            self.ema.n_averaged.fill_(state.get("ema_updates", 1))
        self.optimizer.load_state_dict(state["optimizer"])
        self.criterion.load_state_dict(state["criterion"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.best_score = state.get("best_score", -math.inf)
        self.cpu_seconds = state.get("cpu_seconds", 0.0)
        rng = state["rng_cpu"]
        if len(rng) == self.dist.world_size:
            torch.set_rng_state(rng[self.dist.rank])
        else:
            log.warning(
                "%s: saved with %d process(es), resuming with %d: random streams restart", folder, len(rng), self.dist.world_size
            )
        cuda_rng = state.get("rng_cuda")
        if self.device.type == "cuda" and cuda_rng is not None and len(cuda_rng) == self.dist.world_size:
            torch.cuda.set_rng_state(cuda_rng[self.dist.rank], self.device)
        if self.dist.is_main:
            log.info("resumed from %s at step %d", folder, self.step)

    def _gather(self, t: torch.Tensor) -> list[torch.Tensor]:
        if not self.dist.enabled:
            return [t]
        out: list = [None] * self.dist.world_size
        torch.distributed.all_gather_object(out, t)
        return out

    def save(self, validation: dict | None = None) -> Path | None:
        """Write a checkpoint (rank 0 writes; every rank contributes its RNG state).

        With a validation result, it is written into the checkpoint as ``validation.json``
        and, when it is eligible (egmt.train.validation) and its score beats the run's best so
        far, the checkpoint (without its resuming state) is also copied to ``RUN_DIR/best``
        atomically.
        """
        rng_cpu = self._gather(torch.get_rng_state())
        rng_cuda = self._gather(torch.cuda.get_rng_state(self.device)) if self.device.type == "cuda" else None
        if not self.dist.is_main:
            return None
        state = {
            "optimizer": self.optimizer.state_dict(),
            "criterion": self.criterion.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "cpu_seconds": self.cpu_seconds,
            "rng_cpu": rng_cpu,
            "rng_cuda": rng_cuda,
        }
        if self.ema is not None:
            state["train_weights"] = self.model.state_dict()
            state["ema_updates"] = int(self.ema.n_averaged)
        improved = validation is not None and validation.get("eligible", True) and validation["score"] > self.best_score
        if improved:
            self.best_score = validation["score"]
        state["best_score"] = self.best_score

        def write_model(folder: Path) -> None:
            self.eval_model.save_pretrained(folder, self.config)
            if self.features is not None:
                self.features.bank.save(folder / BANK_FILE)
                self.features.vocabulary.save(folder / VOCABULARY_FILE)
            if validation is not None:
                write_json_atomic(folder / VALIDATION_FILE, {"step": self.step, **validation})
                if self._sheet is not None:  # the images this validation scored
                    write_bytes_atomic(folder / CONTACT_SHEET_FILE, self._sheet.read_bytes())

        def write(folder: Path) -> None:
            write_model(folder)
            save_training_state(folder, state)

        folder = save_checkpoint(self.run_dir, self.step, write)
        if improved:
            replace_folder_atomic(self.run_dir / "best", write_model)
        return folder

    def validate(self) -> dict | None:
        """Score the model on the validation pairs (rank 0; None without validation) and log it."""
        if self.validator is None:
            return None
        result = self.validator(self.eval_model, self.device)
        if self._val_log is not None:
            self._val_log.write(self.step, self.cpu_seconds, result)
        # Look at the images: IR | VIS | fused of a few validation pairs, one sheet per validation.
        self._sheet = self.run_dir / "validation" / f"step-{self.step:06d}.png"
        self._sheet.parent.mkdir(parents=True, exist_ok=True)
        write_image(self._sheet, self.validator.contact_sheet(self.validator.last_fused))
        return result

    # -- loop ----------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * self.config.train.batch_size)
        return DataLoader(
            self.dataset,
            batch_size=self.config.train.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=self.config.data.num_workers,
            # A generator of its own: creating the iterator must not draw from the global RNG,
            # or a resumed run's flips and masks would drift from the uninterrupted run's.
            generator=torch.Generator().manual_seed(self.config.train.seed),
        )

    def _batch(self, batch: dict) -> dict[str, torch.Tensor | None]:
        ir = batch["ir"].to(self.device, non_blocking=True)
        vi = batch["vi"].to(self.device, non_blocking=True)
        entities = mask = labels = keep_ir = None
        if self.features is not None:
            e, m, y = self.features.batch(batch["name"])
            named = self._target_entities(batch["name"], m)
            if self.config.model.text_interaction or named is not None:
                m = self._drop_entities(m, named)  # without text interaction: for the target alone
            if self.config.model.text_interaction:
                entities, mask = e.to(self.device), m.to(self.device)
            if self.config.model.multi_task:
                labels = y.to(self.device)
            if named is not None:
                keep_ir = self._keep_ir(named, m).to(self.device)
        return {"ir": ir, "vi": vi, "entities": entities, "entity_mask": mask, "labels": labels, "keep_ir": keep_ir}

    def _target_entities(self, names: list[str], mask: torch.Tensor) -> torch.Tensor | None:
        """Which of the samples' entities name a target class (``loss.entity_target_classes``),
        ``[B, E]`` bool like ``mask``; None when the target does not depend on the entities."""
        if not self.config.loss.entity_target_classes or self.features is None:
            return None
        return self.features.class_mask(names, self.config.loss.entity_target_classes) & mask

    @staticmethod
    def _keep_ir(named: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
        """The entity-conditioned target's switch per sample, ``[B]`` float (``loss.entity_target_classes``):
        1 where the entities the network is given (``given: [B, E]``, after entity dropout) name a
        target class (``named: [B, E]``), or where it is given none (nothing says the people may
        go); 0 elsewhere. A run without text interaction draws the same dropout and is asked for
        the same targets, from entities it cannot see: Table VIII's w/o TI at an equal loss."""
        return ((named & given).any(dim=1) | ~given.any(dim=1)).float()

    def _drop_entities(self, mask: torch.Tensor, named: torch.Tensor | None = None) -> torch.Tensor:
        """Entity dropout (``train.entity_drop``, ``train.entity_drop_all``): hide real entities
        by clearing their mask ``[B, E]``; labels are kept, so the classifier must find the
        hidden classes in the image. With ``named`` (the target-class entities, ``[B, E]``) and
        ``train.entity_target_drop``, also all of a sample's target-class entities at once. Drawn
        from torch's RNG (resumable)."""
        cfg = self.config.train
        if named is not None and cfg.entity_target_drop > 0:
            mask = mask & ~(named & (torch.rand(mask.shape[0], 1) < cfg.entity_target_drop))
        if cfg.entity_drop > 0:
            mask = mask & (torch.rand(mask.shape) >= cfg.entity_drop)
        if cfg.entity_drop_all > 0:
            mask = mask & (torch.rand(mask.shape[0], 1) >= cfg.entity_drop_all)
        return mask

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based): optional linear warm-up, then constant or cosine."""
        cfg = self.config.train
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "cosine":
            span = max(self.total_steps - cfg.warmup_steps, 1)
            return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup_steps) / span))
        if cfg.lr_schedule != "constant":
            raise EGMTError(f"train.lr_schedule: unknown schedule {cfg.lr_schedule!r} (constant or cosine)")
        return cfg.lr

    def train_step(self, batch: dict) -> dict[str, float]:
        self.step_module.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        terms = self.step_module(**self._batch(batch))
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        if self.config.train.grad_clip:
            nn.utils.clip_grad_norm_(self.step_module.parameters(), self.config.train.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return {k: float(v.detach()) for k, v in terms.items()}

    def fit(self) -> Path | None:
        """Train until ``total_steps``; returns the final checkpoint folder (rank 0)."""
        cfg = self.config.train
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.config.save(self.run_dir / CONFIG_FILE)
        logger = _RunLogger(self.run_dir, self.step) if self.dist.is_main else None
        self._val_log = _ValidationLogger(self.run_dir, self.step, self.validator.metrics) if self.validator else None
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc="train",
            unit="step",
            disable=not self.dist.is_main,
            dynamic_ncols=True,
        )
        sums: dict[str, float] = {}
        count = 0
        last = None
        t0 = time.perf_counter()
        cpu_mark = time.process_time()
        try:
            while self.step < self.total_steps:
                for batch in self._loader():
                    terms = self.train_step(batch)
                    self.cpu_seconds += time.process_time() - cpu_mark
                    self.step += 1
                    self.batch_in_epoch += 1
                    if self.batch_in_epoch >= self.steps_per_epoch:
                        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + v
                    count += 1
                    bar.update(1)
                    bar.set_postfix({k: f"{terms[k]:.3g}" for k in ("total", "int", "edge", "ssim", "cls") if k in terms})
                    if logger and (self.step % cfg.log_every == 0 or self.step == self.total_steps):
                        means = {k: v / count for k, v in sums.items()}
                        logger.write(
                            self.step, self.epoch, time.perf_counter() - t0, self.cpu_seconds, self.lr_at(self.step - 1), means
                        )
                        sums, count = {}, 0
                    if self._out_of_budget(t0):
                        self.total_steps = self.step  # stop here, with a checkpoint
                    at_end = self.step == self.total_steps
                    validate = self.validator is not None and (at_end or (cfg.val_every and self.step % cfg.val_every == 0))
                    if self.step % cfg.save_every == 0 or at_end or validate:
                        last = self.save(self.validate() if validate else None) or last
                    cpu_mark = time.process_time()  # validation and checkpoints are not training time
                    if self.step >= self.total_steps or self.batch_in_epoch == 0:
                        break
        finally:
            bar.close()
            if logger:
                logger.close()
            if self._val_log:
                self._val_log.close()
        return last

    def _out_of_budget(self, t0: float) -> bool:
        """True once ``max_minutes`` of this process's training have passed, or its training
        steps have used ``max_cpu_minutes`` of CPU time (agreed by all ranks)."""
        cfg = self.config.train
        if cfg.max_minutes is None and cfg.max_cpu_minutes is None:
            return False
        late = (cfg.max_minutes is not None and time.perf_counter() - t0 > 60 * cfg.max_minutes) or (
            cfg.max_cpu_minutes is not None and self.cpu_seconds >= 60 * cfg.max_cpu_minutes
        )
        late = torch.tensor(float(late))
        if self.dist.enabled:
            torch.distributed.all_reduce(late, op=torch.distributed.ReduceOp.MAX)
        return bool(late)

    def close(self) -> None:
        close_distributed()


def _reopen_csv_log(path: Path, columns: list[str], start_step: int):
    """Open a per-step CSV log for writing, keeping the rows up to ``start_step`` (a resumed run
    drops the rows past the checkpoint it resumed from). Returns (file, DictWriter)."""
    rows = []
    if path.is_file() and start_step > 0:
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
    file = path.open("w", newline="")
    writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    file.flush()
    return file, writer


class _RunLogger:
    """``log.csv`` (one row per ``log_every`` steps) and TensorBoard scalars under ``tensorboard/``."""

    def __init__(self, run_dir: Path, start_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self._file, self._csv = _reopen_csv_log(run_dir / TRAIN_LOG_FILE, LOG_COLUMNS, start_step)
        self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1 if start_step else None)

    def write(self, step: int, epoch: int, seconds: float, cpu_seconds: float, lr: float, terms: dict[str, float]) -> None:
        row = {"step": step, "epoch": epoch, "seconds": f"{seconds:.1f}", "cpu_seconds": f"{cpu_seconds:.1f}", "lr": lr}
        row.update({k: repr(v) for k, v in terms.items() if not math.isnan(v)})  # full precision
        self._csv.writerow(row)
        self._file.flush()
        for k, v in terms.items():
            self._tb.add_scalar(f"loss/{k}", v, step)

    def close(self) -> None:
        self._file.close()
        self._tb.close()


class _ValidationLogger:
    """``validation.csv``: one row per validation (step, training CPU seconds so far, score, each
    metric, the thermal-target retention pooled and on the worst source, the mean seam ratio of
    the worst source, whether the validation
    could be the best (``eligible``), caption-free mAP and prior)."""

    def __init__(self, run_dir: Path, start_step: int, metrics: list[str]):
        self.columns = [
            "step",
            "cpu_seconds",
            "score",
            *metrics,
            *VALIDATION_FLOOR_COLUMNS,
            "entity_effect",
            "eligible",
            "cls_map",
            "cls_prior_map",
        ]
        self._file, self._csv = _reopen_csv_log(run_dir / VALIDATION_LOG_FILE, self.columns, start_step)

    def write(self, step: int, cpu_seconds: float, result: dict) -> None:
        row = {
            "step": step,
            "cpu_seconds": f"{cpu_seconds:.1f}",
            "score": repr(result["score"]),
            **{k: repr(result.get(k, math.nan)) for k in VALIDATION_FLOOR_COLUMNS},
            "entity_effect": repr(result.get("entity_effect", math.nan)),
            "eligible": int(result.get("eligible", True)),
            **{k: repr(v) for k, v in result["fusion"].items()},
        }
        cls = result.get("classification", {})
        if "map" in cls:
            row.update(cls_map=repr(cls["map"]), cls_prior_map=repr(cls["prior_map"]))
        self._csv.writerow(row)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def ema_with_warmup(decay: float):
    """``AveragedModel``'s update for an exponential moving average whose decay ramps up,
    ``min(decay, (1 + n) / (10 + n))`` at the n-th update (n = 1, 2, ...), so the first steps'
    weights do not linger in the average of a short run (0.999^2000 = 13 % of it otherwise)."""

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = int(num_averaged)
        get_ema_multi_avg_fn(min(decay, (1 + n) / (10 + n)))(averaged, current, num_averaged)

    return update


def train(config: EGMTConfig, run_dir: str | Path, resume: bool = False) -> Path | None:
    """Train EGMT as ``config`` says, into ``run_dir``; returns the final checkpoint folder."""
    trainer = Trainer(config, run_dir, resume=resume)
    try:
        return trainer.fit()
    finally:
        trainer.close()


__all__ = ["Trainer", "TrainStep", "train", "DistInfo"]
