"""How the selection rule ranks a sharper weight map (issue 16's rule): validation only.

The fusion head mixes the sources by a weight map ``w = sigmoid(l)``. Scaling its logits by a
temperature ``T`` keeps every decision (which source leads where) and only makes it harder:
``T = 1`` is the network as trained, ``T -> inf`` a binary choice of one source per pixel (the
visible image or the head's infrared, re-based with ``model.ir_rebase``), the
copying the rule is meant not to reward. For each ``T`` the checkpoint is validated exactly as in
training (``egmt.train.validation``: its config's validation sources, rule and floors) and the
table says what the rule would make of it. This is a probe of the rule, not a model option: the
scale is applied here, around the head's ``compose``.

    python benchmarks/weight_sharpness.py --checkpoint egmt/pretrained/egmt-roadscene \\
        --temperature 1 1.5 2 3 10 -o docs/weight-sharpness.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from egmt.bench.provenance import display_path
from egmt.config import EGMTConfig
from egmt.fileio import write_text_atomic
from egmt.infer.run import DEFAULT_CHECKPOINT
from egmt.model.network import EGMT
from egmt.train.checkpoint import resolve_checkpoint
from egmt.train.trainer import load_entity_features
from egmt.train.validation import Validator


class Sharpened:
    """A fusion head's ``compose`` with its logits scaled by ``temperature`` (the method itself unchanged)."""

    def __init__(self, compose: Callable[..., torch.Tensor], temperature: float) -> None:
        self.compose, self.temperature = compose, temperature

    def __call__(self, logits: torch.Tensor, ir: torch.Tensor | None = None, vi: torch.Tensor | None = None) -> torch.Tensor:
        return self.compose(self.temperature * logits, ir, vi)


def measure(checkpoint: Path, temperatures: list[float]) -> list[dict]:
    """One row per temperature: the validation numbers the rule reads."""
    config = EGMTConfig.load(checkpoint / "config.json")
    if config.model.fusion_output != "weights":
        raise SystemExit(f"{checkpoint}: its head outputs the image, not a weight map")
    validator = Validator(config, load_entity_features(config))
    model = EGMT.from_pretrained(checkpoint)
    head = model.fusion_head
    plain = head.compose
    rows = []
    for t in temperatures:
        head.compose = Sharpened(plain, t)  # type: ignore[method-assign]
        r = validator(model, torch.device("cpu"))
        fusion = r["fusion"]
        rows.append(
            {
                "T": t,
                **{k: r[k] for k in ("score", "information", "fidelity", "eligible", "min_source_person_ir")},
                **{k: r[k] for k in ("max_source_person_halo", "max_source_seam", "min_source_retention")},
                **{k: fusion.get(k, float("nan")) for k in ("MI", "Qabf", "SSIM_min", "PSNR")},
            }
        )
        print(f"T {t:g}: score {r['score']:.4f} (information {r['information']:.4f}, fidelity {r['fidelity']:.4f})", flush=True)
    head.compose = plain  # type: ignore[method-assign]
    return rows


def table(rows: list[dict], checkpoint: str, command: str) -> str:
    lines = [
        "# A sharper weight map under the selection rule (validation only)",
        "",
        "| T | Score | Information | Fidelity | MI | Qabf | SSIM_min | PSNR | Every floor met"
        " | Person boxes, worst source | Halo, worst source | Seams, worst source | Targets kept, worst source |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['T']:g} | {r['score']:.4f} | {r['information']:.4f} | {r['fidelity']:.4f} | {r['MI']:.3f}"
            f" | {r['Qabf']:.4f} | {r['SSIM_min']:.4f} | {r['PSNR']:.3f} | {'yes' if r['eligible'] else 'no'}"
            f" | {r['min_source_person_ir']:.3f} | {r['max_source_person_halo']:.1f} | {r['max_source_seam']:.3f}"
            f" | {r['min_source_retention']:.3f} |"
        )
    lines += [
        "",
        f"Checkpoint `{checkpoint}`, validated as in training (its config's validation sources, rule and floors;"
        " egmt.train.validation). T: the weight map's logits scaled by T before the sigmoid (1: the network as"
        " trained; larger: the same decisions, made harder, towards choosing one source per pixel: the visible"
        " image or the infrared the head mixes, re-based when the config's model.ir_rebase is set). Score: the"
        " geometric mean of the information group (MI, Qabf, FMI_w, VIF) and the fidelity group (SSIM_min, PSNR),"
        " each as a ratio to plain averaging.",
        "",
        f"Made by: `{command}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="checkpoint folder (default: the shipped one)")
    parser.add_argument(
        "--temperature", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0, 10.0], help="logit scales to measure"
    )
    parser.add_argument("-o", "--output", type=Path, help="Markdown table to write")
    args = parser.parse_args(argv)
    if any(t <= 0 for t in args.temperature):
        parser.error("--temperature: every scale must be positive")
    checkpoint = resolve_checkpoint(args.checkpoint)
    torch.set_grad_enabled(False)
    rows = measure(checkpoint, args.temperature)
    command = shlex.join(["python", "benchmarks/weight_sharpness.py", *(argv if argv is not None else sys.argv[1:])])
    text = table(rows, display_path(Path(args.checkpoint)), command)
    if args.output:
        write_text_atomic(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
