"""eq. 12's intensity targets used as fusion rules on the validation crops (issue 16).

A target the network is trained towards is itself a fusion: scored by the validation rule
(``egmt.train.validation``) on the validation pairs and person boxes of a run's config, it says
what the network is asked for before any training.
Each row: the rule's score (1.0 = plain averaging), its two groups, SSIM_min (the balance floor's
measure: the SSIM with the less kept source), SSIM with each source, and ``person_ir`` (the IR
correlation inside the person boxes, pooled and on the worst source). The smoke clip 0117_1605's
boxed frames give the people-in-smoke column, and how much darker than the visible smoke the rule
leaves a ring around those people (its halo), and its glow: the share of pixels far brighter than
both sources, on the cropped sources' pairs read whole. ``--guided`` adds each re-based row with the lift spread by the
guided filter (``loss.intensity_rebase_spread``). Writes a Markdown table (``-o``) and a contact
sheet of validation crops (``--figure``: IR | VIS | the chosen target | contrast without the noise
floor | re-based (the first of ``--rebase-kappa`` and ``--rebases``) | max(IR, VI)).

    python benchmarks/intensity_targets.py --config docs/training/balance-study-config.json \\
        -o docs/intensity-targets.md --figure docs/figures/intensity-targets.png

(the balance study's validation, two sources, with which the noise floor and the re-base were
chosen; the shipped config adds the smoke clip as a third source).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import kornia
import numpy as np
import torch
from PIL import Image

from egmt.bench.figures import grey
from egmt.bench.provenance import display_path
from egmt.config import EGMTConfig, RebaseSpread
from egmt.data.pairs import find_pairs, load_pair, read_split
from egmt.fileio import write_text_atomic
from egmt.metrics.glow import GLOW_LEVELS, glow_share
from egmt.metrics.retention import box_correlation, surround_darkening
from egmt.model.prior import contrast_target
from egmt.train.validation import REFERENCE_FUSIONS, Validator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from people_in_smoke import BOXES, DATA  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
Rule = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _contrast(noise: float, rebase: float = 0.0, spread: RebaseSpread = "gaussian") -> Rule:
    return lambda ir, vi: contrast_target(ir[None], vi[None], noise=noise, rebase=rebase, rebase_spread=spread)[0]


def targets(kappas: list[float], rebase_kappas: list[float], rebases: list[float], guided: bool = False) -> dict[str, Rule]:
    """``[1, H, W]`` rules: the paper's max, the contrast target without and with noise floors, and
    with each floor of ``rebase_kappas`` and the infrared re-based (``loss.intensity_rebase``; with
    ``guided``, also with the lift spread by the guided filter, ``loss.intensity_rebase_spread``)."""
    rules: dict[str, Rule] = {"max(IR, VI) (the paper)": torch.maximum, "contrast": _contrast(0.0)}
    rules.update({f"contrast, noise floor {k:g}": _contrast(k) for k in kappas})
    for k, s in itertools.product(rebase_kappas, rebases):
        rules[f"contrast, noise floor {k:g}, re-based {s:g}"] = _contrast(k, s)
        if guided:
            rules[f"contrast, noise floor {k:g}, re-based {s:g}, guided"] = _contrast(k, s, "guided")
    rules["average"] = REFERENCE_FUSIONS["average"]
    return rules


def whole_pairs(cfg: EGMTConfig) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    """The cropped validation sources' pairs read whole, ``(ir [1, H, W], vi [1, H, W], name)``: a
    glow beside a bright sky lies mostly outside the central crops the rule scores. Sources
    validated whole (the smoke clip, whose people are meant to stand out of the smoke) are left out."""
    pairs = []
    for source in cfg.data.val_sources:
        if (cfg.train.val_crop if source.val_crop is None else source.val_crop) == 0:
            continue
        for pair in find_pairs(source.root, source.split):
            loaded = load_pair(pair)
            pairs.append((loaded.ir, loaded.vi, pair.name))
    return pairs


def glow_cells(rule: Rule, pairs: list[tuple[torch.Tensor, torch.Tensor, str]]) -> str:
    """The table's two glow cells: the mean glow (:func:`egmt.metrics.glow.glow_share`) over
    ``pairs``, and the worst pair's ("–" where no pair glows, or there are none)."""
    shares = [(glow_share(ir[0].numpy(), vi[0].numpy(), rule(ir, vi)[0].numpy()), name) for ir, vi, name in pairs]
    if not shares:
        return "– | –"
    worst, name = max(shares)
    return f"{100 * np.mean([s for s, _ in shares]):.2f} % | " + (f"{name}: {100 * worst:.2f} %" if worst > 0 else "–")


def _ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(kornia.metrics.ssim(a[None], b[None], 11).mean())


def smoke_frames() -> list[tuple[torch.Tensor, torch.Tensor, list]]:
    """The smoke clip's boxed frames, read once: ``(ir [1, H, W], vi [1, H, W], boxes)``."""
    frames = []
    for frame, boxes in json.loads(BOXES.read_text()).items():
        ir = torch.from_numpy(grey(DATA / "ir" / f"{frame}.png"))[None]
        vi = torch.from_numpy(grey(DATA / "vi" / f"{frame}.png"))[None]
        frames.append((ir, vi, [b["box"] if isinstance(b, dict) else b for b in boxes]))
    return frames


def smoke_scores(rule: Rule, frames: list[tuple[torch.Tensor, torch.Tensor, list]]) -> tuple[float, float]:
    """Mean IR correlation inside the smoke clip's person boxes, and the mean darkening of the
    smoke around them (:func:`egmt.metrics.retention.surround_darkening`, grey levels)."""
    correlation, darkening = [], []
    for ir, vi, boxes in frames:
        fused = rule(ir, vi)[0].numpy()
        correlation += [box_correlation(ir[0].numpy(), fused, b) for b in boxes]
        darkening += [255 * surround_darkening(vi[0].numpy(), fused, b) for b in boxes]
    return float(np.nanmean(correlation)), float(np.nanmean(darkening))


def _sources(cfg: EGMTConfig) -> str:
    """The config's validation sources, as the caption names them."""
    crop = f"central {cfg.train.val_crop} px crops" if cfg.train.val_crop else "whole images"
    parts = []
    for source in cfg.data.val_sources:
        size = "whole" if source.val_crop == 0 else crop
        parts.append(f"`{source.split}` ({len(read_split(REPO / source.split))}, {size})")
    return ", ".join(parts)


def _box_files(cfg: EGMTConfig) -> list[str]:
    files = cfg.train.val_boxes or []
    return [f"`{f}`" for f in ([files] if isinstance(files, str) else files)]


def _smoke_status(cfg: EGMTConfig) -> str:
    """Whether the smoke clip is trained on, validated on, or neither under ``cfg``."""
    training = [cfg.data.split, *(s.split for s in cfg.data.extra_sources)]
    if any(
        stem.startswith("m3svd_0117_1605")
        for split in training
        if split and split.endswith(".txt")
        for stem in read_split(REPO / split)
    ):
        return "a training clip under this config: reported, never chosen on"
    if any(s.split.endswith("m3svd-smoke.txt") for s in cfg.data.val_sources):
        return "held out of training and validated on under this config"
    return "held out of training under this config"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--config",
        default=str(REPO / "docs" / "training" / "egmt-roadscene-config.json"),
        help="config with the validation sources and rule (default: the shipped run's)",
    )
    ap.add_argument("--boxes", nargs="+", help="person box files (default: the config's train.val_boxes)")
    ap.add_argument("--kappas", type=float, nargs="*", default=[4.0, 8.0, 12.0, 16.0], help="loss.intensity_noise values")
    ap.add_argument("--rebase-kappa", type=float, nargs="+", default=[12.0], help="the noise floors of the re-based rows")
    ap.add_argument("--rebases", type=float, nargs="+", default=[16.0, 32.0], help="loss.intensity_rebase values")
    ap.add_argument("--guided", action="store_true", help="also each re-based row with loss.intensity_rebase_spread=guided")
    ap.add_argument("--show", type=float, default=8.0, help="the noise floor drawn in the figure")
    ap.add_argument("-o", "--out", help="Markdown table")
    ap.add_argument("--figure", help="contact sheet PNG")
    args = ap.parse_args(argv)

    cfg = EGMTConfig.load(args.config)
    if args.boxes:
        cfg.train.val_boxes = args.boxes
    validator = Validator(cfg, None)
    pairs = validator.pairs
    frames = smoke_frames()
    whole = whole_pairs(cfg)
    header = (
        "| Target | Score | Information | Fidelity | SSIM_min | SSIM(F, IR) | SSIM(F, VI) | person_ir "
        "| person_ir, worst source | People in smoke | Smoke darkened around them | Glow, whole images | Glow, worst pair |"
    )
    lines = [header, "|:---|" + "---:|" * 12]
    for name, rule in targets(args.kappas, args.rebase_kappa, args.rebases, args.guided).items():
        fused = [rule(p.ir, p.vi) for p in pairs]
        r = validator.summarize(fused)
        ssim_ir = np.mean([_ssim(f, p.ir) for f, p in zip(fused, pairs)])
        ssim_vi = np.mean([_ssim(f, p.vi) for f, p in zip(fused, pairs)])
        values = (
            *(r["score"], r["information"], r["fidelity"], r["fusion"]["SSIM_min"], ssim_ir, ssim_vi),
            *(r["person_ir"], r["min_source_person_ir"]),
        )
        smoke = smoke_scores(rule, frames)
        lines.append(
            f"| {name} | "
            + " | ".join(f"{v:.4f}" for v in values)
            + f" | {smoke[0]:.3f} | {smoke[1]:.1f} | {glow_cells(rule, whole)} |"
        )
        print(lines[-1], flush=True)
    command = "python benchmarks/intensity_targets.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    text = (
        "# eq. 12's intensity targets as fusion rules (validation crops)\n\n" + "\n".join(lines) + "\n\n"
        f"{len(pairs)} validation pairs ({_sources(cfg)}; config `{display_path(args.config)}`), scored by the "
        "validation rule (egmt.train.validation; 1.0 = plain averaging). SSIM_min: the metric's SSIM (egmt.metrics) "
        "with the less kept source (the balance floor's measure). SSIM(F, IR), SSIM(F, VI): kornia's SSIM (11-pixel "
        "Gaussian window, images in [0, 1], same padding), so SSIM_min is not the smaller of the two. person_ir: the "
        f"IR correlation inside the person boxes of {', '.join(_box_files(cfg))}, pooled and on the worst validation "
        "source (the floor train.val_person_floor = each_source reads). People in smoke: the same inside the "
        f"boxes of the smoke clip 0117_1605's five boxed frames, whole ({_smoke_status(cfg)}). Smoke darkened around "
        "them: how much darker than the visible image the fusion is in a 16-pixel ring around those boxes (grey "
        "levels; egmt.metrics.retention.surround_darkening), the dark halo of a rule that keeps a person in smoke by "
        f"taking his infrared background with him. Glow: the share of pixels more than {GLOW_LEVELS:g} grey levels brighter "
        "than max(IR, VI) (egmt.metrics.glow), on the cropped sources' pairs read whole (a glow beside a bright sky lies "
        "mostly outside the crops), the mean and the worst pair. Noise floor kappa: `loss.intensity_noise`, contrast counted above "
        "kappa times each image's noise level (egmt.model.prior.noise_level). Re-based s: `loss.intensity_rebase`, "
        "the infrared's structure taken on the brighter source's local mean (Gaussian of sigma s; guided: the lift "
        "spread by a guided filter steered by the visible image, window 2s + 1, loss.intensity_rebase_spread).\n\n"
        f"Made by: `{command}`\n"
    )
    if args.out:
        write_text_atomic(args.out, text)
    if args.figure:
        picks = np.linspace(0, len(pairs) - 1, 8).round().astype(int)
        chosen, plain, rebased = _contrast(args.show), _contrast(0.0), _contrast(args.rebase_kappa[0], args.rebases[0])
        rows = [
            torch.cat([p.ir, p.vi, chosen(p.ir, p.vi), plain(p.ir, p.vi), rebased(p.ir, p.vi), torch.maximum(p.ir, p.vi)], -1)[0]
            for p in (pairs[i] for i in picks)
        ]
        h = max(row.shape[0] for row in rows)
        w = max(row.shape[1] for row in rows)
        sheet = np.zeros((len(rows) * h, w), dtype=np.uint8)
        for i, row in enumerate(rows):
            sheet[i * h : i * h + row.shape[0], : row.shape[1]] = (row.clamp(0, 1) * 255).round().byte().numpy()
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet).save(args.figure)


if __name__ == "__main__":
    main()
