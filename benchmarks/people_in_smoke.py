"""People walking through smoke (M3SVD clip 0117_1605): are they as plain in the fused image as
in the infrared? (issue 16)

The clip's frames 90-170 (``../shared/data/m3svd``, every 20th video frame) show two or three
people, plain in the infrared and hidden by smoke in the visible image. With the hand-drawn
person boxes of ``annotations/boxes-m3svd-0117_1605.json`` (drawn on the infrared; never used for
training or choosing anything), each method's fused image is scored inside the boxes:

- **IR correlation**: Pearson correlation of the fused image with the infrared inside each box,
  averaged over the boxes (1 = the person's infrared appearance kept up to contrast and offset;
  the issue's yardstick is max-abs's value);
- **smoke darkened around them**: how much darker than the visible image the fused image is in a
  16-pixel ring around each box (``egmt.metrics.retention.surround_darkening``, grey levels): a
  fusion that keeps the person by pasting his dark infrared background into the smoke (a halo)
  scores high here although its correlation inside the box is high;
- **seam ratio** of each frame (``egmt.metrics.seams``);
- **fusion loss**: eq. 11's L_fus with the shipped checkpoint's loss config (its contrast target,
  noise floor and re-base) on the whole frames. The contrast rule with that re-base, a row of its
  own, is that target itself: a network
  whose loss stays well above the rule's on these (training) frames has not learnt what it is
  asked for. The same rule with the infrared re-based (``--rebase``, ``loss.intensity_rebase``)
  is a row too.

Writes a Markdown table (``-o``) and a figure of one frame with the boxes drawn (``--figure``).
The clip is training data for checkpoints trained on ``splits/m3svd-fit.txt`` and held out
(validation) for those trained on ``splits/m3svd-fit-nosmoke.txt`` (the smoke study); the table's
"Clip" column says which, read from each checkpoint's config.

    python benchmarks/people_in_smoke.py --checkpoint egmt/pretrained/egmt-roadscene \\
        -o docs/people-in-smoke.md --figure docs/figures/people-in-smoke.png
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from egmt.baselines import get_baseline
from egmt.bench.figures import grey
from egmt.fileio import write_text_atomic
from egmt.config import DataSource, EGMTConfig
from egmt.data.boxes import read_boxes
from egmt.data.pairs import find_pairs
from egmt.infer.fuser import EGMTFuser
from egmt.infer.run import DEFAULT_CHECKPOINT
from egmt.losses import FusionLoss
from egmt.model.prior import contrast_target
from egmt.metrics.retention import box_correlation, surround_darkening
from egmt.metrics.seams import seam_ratio
from egmt.text.annotations import read_annotations

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "m3svd"
BOXES = REPO / "annotations" / "boxes-m3svd-0117_1605.json"


def clip_role(folder: str, frames: list[str]) -> str:
    """"trained on" when any of ``frames`` is in the checkpoint's training pairs, else "held out"."""
    data = EGMTConfig.load(Path(folder) / "config.json").data
    sources = [DataSource(data.root, data.split), *data.extra_sources]
    trained = {pair.name for source in sources for pair in find_pairs(source.root, source.split)}
    return "trained on" if trained & set(frames) else "held out"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", action="append", default=[], metavar="[NAME=]DIR",
                   help="EGMT checkpoint(s) to score (repeat; NAME is the table row)")
    p.add_argument("-o", "--out", type=Path, help="Markdown table to write")
    p.add_argument("--figure", type=Path, help="PNG of one frame, every method, boxes drawn")
    p.add_argument("--frame", default="m3svd_0117_1605_0130", help="the frame of the figure")
    p.add_argument("--annotations", type=Path,
                   help="also fuse each frame with its own entities from this annotation file (a second row per checkpoint)")
    p.add_argument("--rebase", type=float, default=16.0, help="loss.intensity_rebase of the re-based rule's row (0: none)")
    args = p.parse_args(argv)

    boxes = read_boxes(BOXES)
    frames = sorted(boxes)
    ir = {f: np.round(grey(DATA / "ir" / f"{f}.png") * 255).astype(np.uint8) for f in frames}
    vi = {f: np.round(grey(DATA / "vi" / f"{f}.png") * 255).astype(np.uint8) for f in frames}
    methods: dict[str, dict[str, np.ndarray]] = {}
    roles: dict[str, str] = {}
    own = {}
    if args.annotations:
        own = {name: a.entities for name, a in read_annotations(args.annotations).items() if name in frames}
    for spec in args.checkpoint:
        name, _, folder = spec.rpartition("=")
        name = name or f"EGMT ({Path(folder).name})"
        fuser = EGMTFuser.from_pretrained(folder)
        role = clip_role(folder, frames)
        for label, entities in [(name, {})] + ([(f"{name}, own entities", own)] if own else []):
            out = {}
            for f in frames:
                image = fuser(ir[f].astype(np.float32) / 255, vi[f].astype(np.float32) / 255, entities=entities.get(f)).image
                luma = image.mean(axis=-1) if image.ndim == 3 else image
                out[f] = np.round(np.clip(luma, 0, 1) * 255).astype(np.uint8)
            methods[label] = out
            roles[label] = role
    loss_config = EGMTConfig.load(DEFAULT_CHECKPOINT / "config.json").loss
    as_tensor = {f: (torch.from_numpy(ir[f] / 255.0).float()[None, None], torch.from_numpy(vi[f] / 255.0).float()[None, None])
                 for f in frames}
    rebases = [0.0] + ([args.rebase] if args.rebase > 0 else [])
    for rebase in rebases:
        rule = {f: contrast_target(*as_tensor[f], loss_config.intensity_sigma, loss_config.intensity_power,
                                   loss_config.intensity_noise, rebase)[0, 0].numpy() for f in frames}
        label = f"Contrast rule (kappa {loss_config.intensity_noise:g}" + (f", re-based {rebase:g})" if rebase else ")")
        methods[label] = {f: np.round(np.clip(rule[f], 0, 1) * 255).astype(np.uint8) for f in frames}
    for name, label in (("max_abs", "Max-abs"), ("average", "Average")):
        fn = get_baseline(name)
        methods[label] = {f: np.round(np.clip(fn(ir[f] / 255.0, vi[f] / 255.0), 0, 1) * 255).astype(np.uint8)
                          for f in frames}

    lines = ["| Method | Clip | IR correlation in the person boxes (per frame) | mean | Smoke darkened around them | "
             "Seam ratio (mean, worst) | Fusion loss |",
             "|:---|:---|:---|---:|---:|---:|---:|"]
    fusion_loss = FusionLoss(loss_config)
    for name, fused in methods.items():
        per_frame = [np.nanmean([box_correlation(ir[f], fused[f], b.corners) for b in boxes[f]]) for f in frames]
        darkening = [surround_darkening(vi[f], fused[f], b.corners) for f in frames for b in boxes[f]]
        seams = [seam_ratio(ir[f], vi[f], fused[f]) for f in frames]
        losses = [float(fusion_loss(torch.from_numpy(fused[f] / 255.0).float()[None, None], *as_tensor[f])["fusion"])
                  for f in frames]
        lines.append(f"| {name} | {roles.get(name, '–')} | {', '.join(f'{v:.2f}' for v in per_frame)} | **{np.mean(per_frame):.3f}** "
                     f"| {np.nanmean(darkening):.1f} | {np.mean(seams):.2f}, {max(seams):.2f} | {np.mean(losses):.2f} |")
    command = "python benchmarks/people_in_smoke.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    text = ("\n".join(lines) + "\n\nFrames " + ", ".join(f.rsplit("_", 1)[1] for f in frames)
            + f" of M3SVD clip 0117_1605 ({len(frames)} frames, {sum(len(boxes[f]) for f in frames)} person boxes "
            "drawn by hand on the infrared: `annotations/boxes-m3svd-0117_1605.json`). IR correlation: Pearson "
            "correlation of the fused image with the infrared inside each person box, averaged over a frame's boxes "
            "(1 = the person's infrared appearance kept). A checkpoint's row fuses caption-free, as `egmt fuse` does when "
            "given no entities: the checkpoint's caption-free policy decides (its classifier's entities where its validation "
            "showed them above the label prior, none otherwise); its \"own entities\" row with the frame's annotation entities (as validation does). Smoke darkened around them: the mean over the boxes of max(VI - F, 0) "
            "in a 16-pixel ring around each box, grey levels (a dark halo cut into the smoke). Fusion loss: eq. 11 with the shipped checkpoint's loss config "
            f"(its contrast target) on the whole frames, mean over the frames; the contrast rule re-based "
            f"{loss_config.intensity_rebase:g} is that target (re-based 0: as it is). Clip: "
            "whether the checkpoint trained on these frames (splits/m3svd-fit.txt) or held the clip out "
            "(splits/m3svd-fit-nosmoke.txt, the smoke study, whose rule validates on these frames).\n\n"
            f"Made by: `{command}`\n")
    print(text)
    if args.out:
        write_text_atomic(args.out, "# People in smoke (M3SVD 0117_1605)\n\n" + text
                          + (f"\n![frame]({args.figure.relative_to(args.out.parent).as_posix()})\n" if args.figure else ""))
    if args.figure:
        f = args.frame
        tiles = [("IR", ir[f]), ("VIS", vi[f])] + [(n, m[f]) for n, m in methods.items()]
        h, w = ir[f].shape
        cols = 4  # a grid, so that many rows stay readable
        rows = -(-len(tiles) // cols)
        sheet = Image.new("RGB", (w * min(cols, len(tiles)), (h + 18) * rows), "white")
        draw = ImageDraw.Draw(sheet)
        for k, (label, img) in enumerate(tiles):
            x, y = (k % cols) * w, (k // cols) * (h + 18)
            sheet.paste(Image.fromarray(img).convert("RGB"), (x, y + 18))
            draw.text((x + 4, y + 3), label, fill="black")
            for b in boxes[f]:
                x0, y0, x1, y1 = b.corners
                draw.rectangle([x + x0, y + 18 + y0, x + x1 - 1, y + 18 + y1 - 1], outline=(255, 0, 0))
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
