"""Export a checkpoint's fusion network as ONNX graphs for ONNX Runtime.

Writes OUT/fusion.onnx (ir, vi, entities, entity_mask -> fused image; dynamic height and width,
multiples of the window size, and a dynamic number of entities), OUT/classifier.onnx (the
entity-free classifier pass of caption-free inference) and copies config.json, the entity bank,
the vocabulary and validation.json (the caption-free policy) beside them, so OUT is all
`egmt fuse --backend onnxruntime` needs:

  egmt export -o exports/egmt-roadscene
  egmt fuse --checkpoint exports/egmt-roadscene --backend onnxruntime --ir ir.png --vi vi.png -o fused.png

Needs the onnx extra: pip install "egmt[onnx]".
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export the fusion network as ONNX (for egmt fuse --backend onnxruntime)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", type=Path, metavar="DIR", help="EGMT checkpoint or run folder (default: the shipped RoadScene model)"
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the graphs and the checkpoint's config, entity bank and vocabulary",
    )
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")


def run(args: argparse.Namespace) -> int:
    from egmt.fileio import check_outputs
    from egmt.infer.onnx_model import CHECKPOINT_FILES, export_checkpoint
    from egmt.infer.run import DEFAULT_CHECKPOINT
    from egmt.files import CLASSIFIER_FILE, FUSION_FILE
    from egmt.train.checkpoint import resolve_checkpoint

    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    folder = resolve_checkpoint(checkpoint)
    check_outputs(
        inputs={"--checkpoint": checkpoint, "the checkpoint": folder},
        outputs={"-o": args.out},
        writes={"-o": [args.out / name for name in (FUSION_FILE, CLASSIFIER_FILE, *CHECKPOINT_FILES)]},
    )
    for path in export_checkpoint(folder, args.out, args.opset):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
