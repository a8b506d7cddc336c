"""Export a checkpoint's fusion network as ONNX graphs for ONNX Runtime.

Writes OUT/fusion.onnx (ir, vi, entities, entity_mask -> fused image; dynamic height and width,
multiples of the window size, and a dynamic number of entities), OUT/classifier.onnx (the
entity-free classifier pass of caption-free inference) and copies config.json, the entity bank
and the vocabulary beside them, so OUT is all `egmt fuse --backend onnxruntime` needs:

  egmt export -o exports/egmt-roadscene
  egmt fuse --checkpoint exports/egmt-roadscene --backend onnxruntime --ir ir.png --vi vi.png -o fused.png

Needs the onnx extra: pip install "egmt[onnx]".
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export the fusion network as ONNX (for egmt fuse --backend onnxruntime)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, metavar="DIR", help="EGMT checkpoint or run folder (default: the shipped RoadScene model)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="folder for the graphs and the checkpoint's config, entity bank and vocabulary")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")


def run(args: argparse.Namespace) -> int:
    import shutil

    from egmt.fileio import atomic_path, check_outputs
    from egmt.infer.run import DEFAULT_CHECKPOINT
    from egmt.model import EGMT
    from egmt.model.export import CLASSIFIER_FILE, FUSION_FILE, export_onnx
    from egmt.files import BANK_FILE, CONFIG_FILE, VOCABULARY_FILE
    from egmt.train.checkpoint import resolve_checkpoint

    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    folder = resolve_checkpoint(checkpoint)
    names = (CONFIG_FILE, BANK_FILE, VOCABULARY_FILE)
    check_outputs(inputs={"--checkpoint": checkpoint, "the checkpoint": folder}, outputs={"-o": args.out},
                  writes={"-o": [args.out / name for name in (FUSION_FILE, CLASSIFIER_FILE, *names)]})
    model = EGMT.from_pretrained(folder)
    written = export_onnx(model, args.out, args.opset)
    for name in names:
        if (folder / name).is_file():
            with atomic_path(args.out / name) as tmp:
                shutil.copyfile(folder / name, tmp)
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
