"""How far a checkpoint's weight map runs into its sigmoid, on the validation pairs.

The weight-map head fuses ``w S + (1 - w) VI`` with ``w = sigmoid(logit)``. Where the logit's size
passes about 15, ``w`` is 0 or 1 to float32 precision: the fusion is one source there, and no
gradient flows back through it. A run whose logits run there everywhere fuses one source for good
(step 19 of ``docs/training/egmt-roadscene.sh``: the SSIM term dropped). For each checkpoint,
fused as validation fuses it (the first checkpoint's validation pairs and entity features): the
share of pairs on which more than half of the logits are saturated, the median over pairs of the
largest logit's size, and the validation score.

    python benchmarks/logit_saturation.py --method shipped=egmt/pretrained/egmt-roadscene -o docs/logit-saturation.md
"""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np
import torch

from egmt.bench.checkpoints import named_checkpoints
from egmt.bench.provenance import display_path
from egmt.config import EGMTConfig
from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic
from egmt.model.network import EGMT
from egmt.train.trainer import load_entity_features
from egmt.train.validation import Validator

SATURATED = 15.0  # |logit| beyond which sigmoid(logit) is 0 or 1 within float32's resolution near 1


def saturation(model: EGMT, validator: Validator) -> tuple[list[float], list[float], list[torch.Tensor]]:
    """Per validation pair (its entities, as validation gives them): the share of the weight map's
    logits beyond :data:`SATURATED` in size and the largest size (on the pair's pixels), and the
    fused ``[1, h, w]`` image those logits make, as validation fuses it."""
    if model.config.fusion_output != "weights":
        raise EGMTError(f"fusion_output={model.config.fusion_output!r}: no weight map to read")
    if model.config.entity_guidance != 0:
        raise EGMTError("entity guidance mixes two passes' logits; this reads one (set model.entity_guidance=0)")
    shares, largest, fused = [], [], []
    model.eval()
    with torch.no_grad():
        for pair in validator.pairs:
            entities = mask = None
            if validator.features is not None:
                entities, mask, _ = validator.features.batch([pair.name])
            shared, sources = model.head_inputs(model.encode(pair.ir[None], pair.vi[None]), entities, mask)
            h, w = pair.ir.shape[-2:]
            logits = model.fusion_head.logits(shared, *sources)
            size = logits[..., :h, :w].abs()
            shares.append(float((size > SATURATED).float().mean()))
            largest.append(float(size.max()))
            fused.append(model.fusion_head.compose(logits, *sources)[0, :, :h, :w])
    return shares, largest, fused


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", action="append", required=True, metavar="NAME=DIR", help="a checkpoint (repeatable)")
    ap.add_argument("-o", "--output", help="Markdown file to write")
    args = ap.parse_args(argv)
    lines = [
        "| Checkpoint | Score | Pairs mostly saturated | Largest logit (median over pairs) |",
        "|:---|---:|---:|---:|",
    ]
    try:
        validator = None
        for name, path in named_checkpoints(args.method).items():
            if validator is None:
                config = EGMTConfig.load(path / "config.json")
                validator = Validator(config, load_entity_features(config))
            shares, largest, fused = saturation(EGMT.from_pretrained(path), validator)
            score = validator.summarize(fused)["score"]
            mostly = sum(s > 0.5 for s in shares)
            lines.append(
                f"| {name} (`{display_path(path)}`) | {score:.4f} | {mostly} of {len(shares)} | {np.median(largest):.1f} |"
            )
            print(lines[-1], flush=True)
    except EGMTError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    command = "python benchmarks/logit_saturation.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    text = (
        "# How far the weight map runs into its sigmoid (validation)\n\n"
        + "\n".join(lines)
        + f"\n\nThe weight map's logits (before its sigmoid) on each validation pair, fused with the pair's entities as "
        f"validation fuses it. Pairs mostly saturated: pairs on which more than half of the logits exceed {SATURATED:g} in "
        "size, where the weight is 0 or 1 to float32 precision (one source copied, and no gradient back). Largest "
        "logit: the median over pairs of the largest size. Score: the validation rule's (1.0 = plain averaging).\n\n"
        f"Made by: `{command}`\n"
    )
    if args.output:
        write_text_atomic(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
