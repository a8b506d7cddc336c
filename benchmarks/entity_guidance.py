"""Entity guidance (``model.entity_guidance``, issue 17): how far do the entities steer the fusion, and
what does it cost, for each guidance factor? Validation only.

Guidance moves the weight map's logits away from the entity-free pass's by a factor of their
difference, as classifier-free guidance does (:meth:`egmt.model.network.EGMT._fuse`). For each
factor the checkpoint is validated exactly as in training (``egmt.train.validation``: the
checkpoint's own validation sources, rule and floors) twice:

- with each pair's own entities: the score, whether every floor is met, the people and halo
  on the worst source, and the entity effect (mean |own - next pair's entities| output, grey levels);
- with each pair's entities replaced by the next pair's (a fixed, content-blind shuffle): the score.

Own above shuffled says the network uses what the entities say, not only that they are there.
Writes a Markdown table (``-o``). With ``--choose`` it also writes the chosen factor into the
checkpoint's config.json (``model.entity_guidance``, what ``egmt fuse`` then uses): the largest
factor whose score is at most ``TOLERANCE`` below the unguided score's and which meets every floor.

    python benchmarks/entity_guidance.py --checkpoint egmt/pretrained/egmt-roadscene \\
        --guidance 0 0.5 1 2 4 -o docs/entity-guidance.md --choose
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
from pathlib import Path

import torch

from egmt.config import EGMTConfig
from egmt.fileio import write_text_atomic
from egmt.infer.run import DEFAULT_CHECKPOINT
from egmt.model.network import EGMT
from egmt.text.features import EntityFeatures
from egmt.train.checkpoint import resolve_checkpoint
from egmt.train.trainer import load_entity_features
from egmt.train.validation import Validator


#: How much validation score guidance may cost before it is not chosen (below the check-to-check
#: swing of a training run, about 0.015).
TOLERANCE = 0.005


class NextPairsEntities:
    """The validation pairs' entity features, each pair given the next pair's (wrapping around)."""

    def __init__(self, features: EntityFeatures, names: list[str]) -> None:
        self.features = features
        self.next = {name: names[(i + 1) % len(names)] for i, name in enumerate(names)}

    def batch(self, names: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.features.batch([self.next[n] for n in names])

    def __getattr__(self, name: str):  # the vocabulary and the rest: the features' own
        return getattr(self.features, name)


def measure(checkpoint: Path, guidances: list[float]) -> list[dict]:
    """One row per guidance factor: own-entity validation numbers, and the shuffled score and people."""
    config = EGMTConfig.load(checkpoint / "config.json")
    features = load_entity_features(config)
    if features is None:
        raise SystemExit(f"{checkpoint}: trained without entities; nothing to guide")
    own = Validator(config, features)
    shuffled = copy.copy(own)  # the same pairs and baseline scores, loaded and computed once
    shuffled.features = NextPairsEntities(features, [p.name for p in own.pairs])  # type: ignore[assignment]
    model = EGMT.from_pretrained(checkpoint)
    device = torch.device("cpu")
    rows = []
    for g in guidances:
        model.config.entity_guidance = g
        r = own(model, device)
        s = shuffled(model, device)
        rows.append(
            {
                "guidance": g,
                "score": r["score"],
                "shuffled": s["score"],
                "eligible": r["eligible"],
                "min_source_person_ir": r["min_source_person_ir"],
                "person_ir": r["person_ir"],
                "shuffled_person_ir": s["person_ir"],
                "max_source_person_halo": r["max_source_person_halo"],
                "max_source_seam": r["max_source_seam"],
                "SSIM_min": r["fusion"].get("SSIM_min", float("nan")),
                "entity_effect": r["entity_effect"],
            }
        )
        print(f"guidance {g:g}: score {r['score']:.4f} shuffled {s['score']:.4f} effect {r['entity_effect']:.2f}", flush=True)
    return rows


def choose(rows: list[dict]) -> float:
    """The largest factor within TOLERANCE of the unguided score that meets every floor (0: none)."""
    unguided = next(r["score"] for r in rows if r["guidance"] == 0)
    allowed = [r["guidance"] for r in rows if r["eligible"] and r["score"] >= unguided - TOLERANCE]
    return max(allowed, default=0.0)


def table(rows: list[dict], checkpoint: Path, command: str) -> str:
    lines = [
        "# Entity guidance: how far the entities steer the fusion (validation only)",
        "",
        "| Guidance | Score, own entities | Score, next pair's | Own − next | Every floor met | Person boxes, worst source"
        " | Person boxes, all: own | next pair's | Halo, worst source | Seams, worst source | SSIM_min"
        " | Entity effect (grey levels) |",
        "|---:|---:|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['guidance']:g} | {r['score']:.4f} | {r['shuffled']:.4f} | {r['score'] - r['shuffled']:+.4f}"
            f" | {'yes' if r['eligible'] else 'no'} | {r['min_source_person_ir']:.3f} | {r['person_ir']:.3f}"
            f" | {r['shuffled_person_ir']:.3f} | {r['max_source_person_halo']:.1f}"
            f" | {r['max_source_seam']:.3f} | {r['SSIM_min']:.4f} | {r['entity_effect']:.2f} |"
        )
    lines += [
        "",
        f"Checkpoint `{checkpoint}`, validated as in training (its config's validation sources, rule and"
        " floors; egmt.train.validation). Guidance g: the weight map's logits l_0 + (1 + g)(l_E − l_0), l_0 the"
        " entity-free pass, l_E the pass with the entities (model.entity_guidance; 0 = the network as trained)."
        " Score, next pair's: every pair fused with the next pair's entities instead of its own. Entity effect:"
        " mean |own − next pair's| output. Person boxes: the fused image's IR correlation in the hand-drawn"
        " person boxes (worst source: with own entities; all: every box pooled, with own and with the next"
        " pair's entities); halo: how much darker than the visible image it is around them.",
        "",
        f"The rule's choice (what `--choose` writes into config.json): the largest factor whose score is at"
        f" most {TOLERANCE:g} below the unguided score and which meets every floor: **{choose(rows):g}**."
        " Look at the fused images before shipping it (docs/training.md, entity guidance).",
        "",
        f"Made by: `{command}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="checkpoint folder (default: the shipped one)")
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0], help="factors to measure")
    parser.add_argument("-o", "--output", type=Path, help="Markdown table to write")
    parser.add_argument("--choose", action="store_true", help="write the chosen factor into the checkpoint's config.json")
    args = parser.parse_args(argv)
    if 0.0 not in args.guidance:
        parser.error("--guidance must include 0 (the unguided score the others are held to)")
    checkpoint = resolve_checkpoint(args.checkpoint)
    torch.set_grad_enabled(False)
    rows = measure(checkpoint, args.guidance)
    command = shlex.join(["python", "benchmarks/entity_guidance.py", *(argv if argv is not None else sys.argv[1:])])
    shown = Path(args.checkpoint).resolve()
    text = table(rows, shown.relative_to(Path.cwd()) if shown.is_relative_to(Path.cwd()) else shown, command)
    if args.output:
        write_text_atomic(args.output, text)
    if args.choose:
        config = EGMTConfig.load(checkpoint / "config.json")
        config.model.entity_guidance = choose(rows)
        config.save(checkpoint / "config.json")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
