"""Why a network falls short of its own intensity target: the loss, not the fit (issues 16, 17).

The contrast target of eq. 12 (``loss.intensity_*``), used as a fusion, scores well above the
network trained towards it (docs/training.md, "what the network leaves on the table"). This probe
asks whether that is a network that cannot fit its target, or a loss that does not ask it to:

- **the loss along the line** from the network's image F to the target's T, F + λ(T − F) for each
  ``--lambdas`` λ: the fusion loss and its terms (eq. 11-14, the checkpoint's ``loss`` section) on
  ``--crops`` training crops (the config's training data, fixed positions, no flips), and the
  validation score of the same blend (``egmt.train.validation``: the config's validation pairs,
  rule and floors). λ = 0 is the network, λ = 1 the target;
- **the score on training pairs**, network against target, on a subset of the training sources
  read like validation (about 19 pairs of each): a network that scores as far below its target
  there as on validation pairs does not generalise worse, it fits to something else;
- with ``--refit-steps N``, **fresh heads on the network's frozen features**: the fusion head
  trained on for N steps (Adam, 2e-4, 8 crops a step) from its weights, as it is and with two
  zero-started dilated residual blocks in front of it (more reach and width at the pixels). If the
  head were what fell short, these would move towards the target.

    python benchmarks/loss_path.py --checkpoint egmt/pretrained/egmt-roadscene --refit-steps 800 \\
        -o docs/loss-path.md
"""

from __future__ import annotations

import argparse
import copy
import random
import shlex
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from egmt.bench.provenance import display_path
from egmt.config import DataSource, EGMTConfig
from egmt.data.crops import PairCropDataset
from egmt.data.pairs import find_pairs
from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic
from egmt.infer.run import DEFAULT_CHECKPOINT
from egmt.losses import FusionLoss
from egmt.model.heads import FusionHead
from egmt.model.network import EGMT
from egmt.text.features import EntityFeatures
from egmt.train.checkpoint import resolve_checkpoint
from egmt.train.trainer import load_entity_features
from egmt.train.validation import Validator, target_fusion

TERMS = ("fusion", "int", "edge", "ssim")  # FusionLoss's terms, kept as "loss_" + term
BATCH = 8  # crops a batch, for the losses and the head training
REFIT_LR = 2e-4
REFIT_BLOCKS = 2  # dilated blocks in front of the head in the second refit
PER_SOURCE = 19  # training pairs of each training source scored like validation


def training_crops(config: EGMTConfig, count: int, seed: int) -> list[dict]:
    """``count`` training crops (``{"ir", "vi": [1, s, s], "name"}``) at seeded positions, unflipped."""
    crops = PairCropDataset.from_config(replace(config.data, flips=False))
    picked = random.Random(seed).sample(range(len(crops)), min(count, len(crops)))
    return [crops[i] for i in picked]


def batches(crops: list[dict]) -> list[tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """The crops in batches of :data:`BATCH`: ``(ir [b, 1, s, s], vi [b, 1, s, s], names)``."""
    return [
        (
            torch.stack([c["ir"] for c in crops[i : i + BATCH]]),
            torch.stack([c["vi"] for c in crops[i : i + BATCH]]),
            [c["name"] for c in crops[i : i + BATCH]],
        )
        for i in range(0, len(crops), BATCH)
    ]


def entities_of(
    model: EGMT, features: EntityFeatures | None, names: list[str]
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Each pair's own entities ``[b, E, D]`` and mask ``[b, E]``, or None where the model reads none."""
    if features is None or not model.config.text_interaction:
        return None, None
    entities, mask, _ = features.batch(names)
    return entities, mask


@torch.no_grad()
def crop_losses(
    model: EGMT, features: EntityFeatures | None, config: EGMTConfig, crops: list[dict], lambdas: list[float]
) -> dict:
    """``{λ: {"loss_" + term: mean over the crops}}`` of the fusion loss of F + λ(T − F) on the crops
    (each batch's mean weighted by its size)."""
    loss, target = FusionLoss(config.loss), _target(config)
    sums = {lam: {f"loss_{t}": 0.0 for t in TERMS} for lam in lambdas}
    for ir, vi, names in tqdm(batches(crops), desc="loss along the line", unit="batch"):
        fused = model(ir, vi, *entities_of(model, features, names), classify=False).fused
        aim = torch.stack([target(a, b) for a, b in zip(ir, vi)])
        for lam in lambdas:
            terms = loss((fused + lam * (aim - fused)).clamp(0, 1), ir, vi)
            for t in TERMS:
                sums[lam][f"loss_{t}"] += float(terms[t]) * len(names) / len(crops)
    return sums


def _target(config: EGMTConfig):
    """The loss's eq. 12 contrast target as a fusion of ``[1, H, W]`` sources (SystemExit for another target)."""
    found = target_fusion(config.loss)
    if found is None:
        raise SystemExit(f"loss.intensity_target={config.loss.intensity_target!r}: only the contrast target is a fusion")
    return found[1]


def training_validator(config: EGMTConfig, features: EntityFeatures | None, folder: Path) -> Validator:
    """A validator over :data:`PER_SOURCE` evenly spaced pairs of each training source (the pairs
    training reads, ``find_pairs``), read like validation: central crops, and no person boxes, which
    only the validation frames have. The subsets' split files are written into ``folder``."""
    fit = copy.deepcopy(config)
    sources = [DataSource(config.data.root, config.data.split, config.data.annotations), *config.data.extra_sources]
    fit.data.val_sources = []
    for i, source in enumerate(sources):
        names = [p.name for p in find_pairs(source.root, source.split)]
        picked = sorted({names[int(k)] for k in np.linspace(0, len(names) - 1, min(PER_SOURCE, len(names)))})
        subset = folder / f"fit-{i}.txt"
        subset.write_text("\n".join(picked) + "\n")
        fit.data.val_sources.append(replace(source, split=str(subset), val_crop=None))
    fit.train.val_boxes = None
    return Validator(fit, features)


class DilatedFront(nn.Module):
    """``blocks`` residual ``Conv3x3 (dilation 2, 4, ...) -> LeakyReLU -> Conv1x1`` blocks on the
    shared features ``[B, 2C, H, W]`` in front of a fusion head; the 1x1 starts at zero, so the
    front starts as the identity and the whole as the head it was given."""

    def __init__(self, head: FusionHead, blocks: int) -> None:
        super().__init__()
        self.head = head
        width = head.conv1.in_channels
        self.blocks = nn.ModuleList()
        for k in range(blocks):
            d = 2 ** (k + 1)
            out = nn.Conv2d(width, width, 1)
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
            self.blocks.append(
                nn.Sequential(nn.Conv2d(width, width, 3, padding=d, dilation=d, padding_mode="reflect"), nn.LeakyReLU(0.2), out)
            )

    def forward(self, x: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return self.head(x, ir, vi)


@torch.no_grad()
def frozen_features(
    model: EGMT, features: EntityFeatures | None, ir: torch.Tensor, vi: torch.Tensor, names: list[str]
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """What the fusion head reads for a batch ``ir, vi [b, 1, H, W]`` with each pair's own entities:
    the shared representation ``[b, 2C, Hp, Wp]`` and the sources padded to that grid (``[b, 1, Hp,
    Wp]`` each), as :meth:`EGMT.decode` hands them to the head."""
    return model.head_inputs(model.encode(ir, vi), *entities_of(model, features, names))


def refit(
    model: EGMT,
    features: EntityFeatures | None,
    config: EGMTConfig,
    crops: list[dict],
    validator: Validator,
    steps: int,
    seed: int,
) -> list[dict]:
    """Each head variant (the network's head, and :data:`REFIT_BLOCKS` dilated blocks in front of
    it) trained ``steps`` steps on the frozen features of the crops (:func:`frozen_features`,
    float32); one row each: ``name``, ``loss`` (its mean fusion loss on the crops after) and its
    validation numbers (``Validator.summarize``)."""
    train = [frozen_features(model, features, ir, vi, names) for ir, vi, names in batches(crops)]
    samples = [(s[i], a[i], b[i]) for s, (a, b) in train for i in range(s.shape[0])]
    size = crops[0]["ir"].shape[-2:]  # every crop's; the head's padded outputs are cut back to it
    held = []
    for p in validator.pairs:
        shared, (a, b) = frozen_features(model, features, p.ir[None], p.vi[None], [p.name])
        held.append((shared, a, b, p.ir.shape[-2:]))
    loss = FusionLoss(config.loss)

    def crop_loss(head: nn.Module, shared: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        h, w = size
        return loss(head(shared, ir, vi)[..., :h, :w], ir[..., :h, :w], vi[..., :h, :w])["fusion"]

    rows = []
    for name, blocks in (("the head, trained on", 0), (f"{REFIT_BLOCKS} dilated blocks + the head, trained on", REFIT_BLOCKS)):
        torch.manual_seed(seed)
        head = DilatedFront(copy.deepcopy(model.fusion_head), blocks).train()
        optimiser = torch.optim.Adam(head.parameters(), lr=REFIT_LR)
        draw = torch.Generator().manual_seed(seed)
        for _ in tqdm(range(steps), desc=name, unit="step"):
            picked = [samples[j] for j in torch.randint(len(samples), (BATCH,), generator=draw).tolist()]
            value = crop_loss(head, *(torch.stack([s[k] for s in picked]) for k in range(3)))
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
        head.eval()
        with torch.no_grad():
            on_crops = sum(float(crop_loss(head, s, a, b)) * s.shape[0] for s, (a, b) in train) / len(samples)
            fused = [head(s, a, b)[0, :, : hw[0], : hw[1]] for s, a, b, hw in held]
        rows.append({"name": name, "loss": on_crops, **validator.summarize(fused)})
    return rows


def table(path_rows: dict, fit: dict, refits: list[dict], steps: int, checkpoint: str, command: str, count: int) -> str:
    lines = [
        "# The loss along the line from the network's image to its target (validation and training crops)",
        "",
        "| λ | Fusion loss | Intensity | Edge | SSIM | Validation score | Information | Fidelity | Every floor met |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for lam, row in path_rows.items():
        lines.append(
            f"| {lam:g} | {row['loss_fusion']:.4f} | {row['loss_int']:.4f} | {row['loss_edge']:.4f} | {row['loss_ssim']:.4f}"
            f" | {row['score']:.4f} | {row['information']:.4f} | {row['fidelity']:.4f} | {'yes' if row['eligible'] else 'no'} |"
        )
    lines += [
        "",
        f"F + λ(T − F), F the network's image, T its loss's eq. 12 target: λ = 0 is the network, 1 the"
        f" target. Losses: eq. 11-14 with the checkpoint's weights (α_int × intensity + α_edge × edge +"
        f" α_ssim × SSIM), mean over {count} training crops at fixed positions. Validation: the"
        " checkpoint's validation pairs, rule and floors (`egmt.train.validation`).",
        "",
        "## Network against target on training pairs",
        "",
        "| Pairs read like validation | Network | Target | Target − network |",
        "|:---|---:|---:|---:|",
        f"| validation pairs | {fit['val_network']:.4f} | {fit['val_target']:.4f} | {fit['val_target'] - fit['val_network']:+.4f} |",
        f"| training pairs (a subset) | {fit['fit_network']:.4f} | {fit['fit_target']:.4f} | {fit['fit_target'] - fit['fit_network']:+.4f} |",
        "",
        f"Training pairs: {PER_SOURCE} evenly spaced pairs of each training source, central crops as"
        " in validation, no person boxes (the person floor is not read). The scores are ratios to plain"
        " averaging on each set's own pairs, so the two rows are not comparable with each other; each row's"
        " gap is.",
    ]
    if refits:
        lines += [
            "",
            f"## Heads trained on the network's frozen features ({steps} steps)",
            "",
            "| Head | Fusion loss on the crops | Validation score | Every floor met |",
            "|:---|---:|---:|:---|",
            f"| the network's (not trained on) | {path_rows[min(path_rows)]['loss_fusion']:.4f} | {path_rows[min(path_rows)]['score']:.4f} | "
            f"{'yes' if path_rows[min(path_rows)]['eligible'] else 'no'} |",
        ]
        for r in refits:
            lines.append(f"| {r['name']} | {r['loss']:.4f} | {r['score']:.4f} | {'yes' if r['eligible'] else 'no'} |")
        lines += [
            "",
            f"Adam at {REFIT_LR:g}, {BATCH} crops a step drawn from the same crops, the shared features computed"
            " once by the checkpoint (with each crop's own entities) and not trained. The dilated blocks"
            f" (dilations {', '.join(str(2 ** (k + 1)) for k in range(REFIT_BLOCKS))}, 2C wide) start at zero,"
            " so both heads start at the network.",
        ]
    lines += ["", f"Checkpoint `{checkpoint}`. Made by: `{command}`", ""]
    return "\n".join(lines)


def measure(
    checkpoint_path: str, lambdas: list[float], count: int, refit_steps: int, seed: int
) -> tuple[dict, dict, list[dict], int]:
    """The three parts of the table for one checkpoint: ``{λ: losses and validation numbers}``, the
    network and its target scored on validation and on training pairs, the refit heads' rows (none
    when ``refit_steps`` is 0); and how many training crops were read."""
    checkpoint = resolve_checkpoint(checkpoint_path)
    config = EGMTConfig.load(checkpoint / "config.json")
    target = _target(config)
    if config.model.entity_guidance != 0 or config.loss.entity_target_classes:
        raise SystemExit(
            f"{checkpoint}: entity guidance or an entity-conditioned target; the line and the refit read the plain"
            " network and target only"
        )
    features = load_entity_features(config)
    model = EGMT.from_pretrained(checkpoint)
    crops = training_crops(config, count, seed)
    validator = Validator(config, features)
    losses = crop_losses(model, features, config, crops, lambdas)
    network = validator(model, torch.device("cpu"))
    with torch.no_grad():
        fused, aims = validator.last_fused, [target(p.ir, p.vi) for p in validator.pairs]
        path_rows = {
            lam: {**losses[lam], **validator.summarize([(f + lam * (t - f)).clamp(0, 1) for f, t in zip(fused, aims)])}
            for lam in lambdas
        }
        with tempfile.TemporaryDirectory() as folder:
            on_training = training_validator(config, features, Path(folder))
            fit_network = on_training(model, torch.device("cpu"))["score"]
            fit_target = on_training.summarize([target(p.ir, p.vi) for p in on_training.pairs])["score"]
    fit = {
        "val_network": network["score"],
        "val_target": path_rows[1.0]["score"],
        "fit_network": fit_network,
        "fit_target": fit_target,
    }
    refits = refit(model, features, config, crops, validator, refit_steps, seed) if refit_steps > 0 else []
    return path_rows, fit, refits, len(crops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="checkpoint folder (default: the shipped one)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0], help="points on the line")
    parser.add_argument("--crops", type=int, default=480, help="training crops for the losses (default 480)")
    parser.add_argument("--refit-steps", type=int, default=0, help="train heads on the frozen features this long (0: skip)")
    parser.add_argument("--seed", type=int, default=0, help="crop positions and head training")
    parser.add_argument("-o", "--output", type=Path, help="Markdown file to write")
    args = parser.parse_args(argv)
    if not {0.0, 1.0} <= set(args.lambdas) or any(not 0 <= lam <= 1 for lam in args.lambdas):
        parser.error("--lambdas: values in [0, 1], 0 and 1 among them")
    if args.crops < 1:
        parser.error("--crops: at least 1")
    if args.refit_steps < 0:
        parser.error("--refit-steps: 0 (skip) or more")
    try:
        path_rows, fit, refits, count = measure(args.checkpoint, sorted(args.lambdas), args.crops, args.refit_steps, args.seed)
    except EGMTError as e:
        raise SystemExit(f"loss_path: {e}") from None
    command = shlex.join(["python", "benchmarks/loss_path.py", *(argv if argv is not None else sys.argv[1:])])
    text = table(path_rows, fit, refits, args.refit_steps, display_path(Path(args.checkpoint)), command, count)
    if args.output:
        write_text_atomic(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
