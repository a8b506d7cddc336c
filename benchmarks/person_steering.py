"""Does naming people keep them? Each validation pair whose entities name a person, fused with its
own entities and with the same entities less every person ("man", "people"... through the
vocabulary's synonyms): how far the output moves, and the fused image's IR correlation inside the
hand-drawn person boxes either way (issue 17's steering, for the entity-conditioned target of
``loss.entity_target_classes``). Validation only; the boxes are never used for training.

    python benchmarks/person_steering.py --checkpoint NAME=DIR [--checkpoint ...] -o docs/person-steering.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from egmt.data.boxes import read_boxes
from egmt.data.pairs import find_pairs, load_pair
from egmt.fileio import write_text_atomic
from egmt.infer.fuser import EGMTFuser
from egmt.metrics.retention import box_correlation
from egmt.text.features import EntityFeatures

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
ANNOTATIONS = [REPO / "annotations" / "roadscene.jsonl", REPO / "annotations" / "m3svd.jsonl"]
BOXES = [REPO / "annotations" / "boxes-val.json", REPO / "annotations" / "boxes-m3svd-0117_1605.json"]
SOURCES = {  # the smoke study's validation sources
    "RoadScene validation": (DATA / "roadscene", REPO / "splits" / "roadscene-val.txt"),
    "M3SVD validation clips": (DATA / "m3svd", REPO / "splits" / "m3svd-val.txt"),
    "M3SVD smoke clip": (DATA / "m3svd", REPO / "splits" / "m3svd-smoke.txt"),
}
CLASS = "person"


def steer(fuser: EGMTFuser, features: EntityFeatures, boxes: dict, root: Path, split: Path) -> dict[str, float]:
    """Mean |own - own less people| (grey levels) over the pairs that name a person, and the mean
    IR correlation in their person boxes with and without the people named."""
    moved, named, unnamed = [], [], []
    for pair in find_pairs(root, split):
        own = features.entities(pair.name)
        is_person = features.class_mask([pair.name], [CLASS])[0].tolist()
        if not any(is_person):
            continue
        rest = [e for e, person in zip(own, is_person) if not person]
        loaded = load_pair(pair)
        ir, vi = loaded.ir[0].numpy(), loaded.vi[0].numpy()
        with_people = fuser(ir, vi, entities=own).luma
        without = fuser(ir, vi, entities=rest or ["tree"]).luma  # never E = 0: that is another pass
        moved.append(float(np.abs(with_people - without).mean()) * 255)
        for box in boxes.get(pair.name, []):
            if box.entity == CLASS:
                named.append(box_correlation(ir, with_people, box.corners))
                unnamed.append(box_correlation(ir, without, box.corners))
    nan = float("nan")
    return {
        "pairs": len(moved),
        "moved": float(np.mean(moved)) if moved else nan,
        "boxes": len(named),
        "named": float(np.nanmean(named)) if named else nan,
        "unnamed": float(np.nanmean(unnamed)) if unnamed else nan,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", action="append", required=True, metavar="NAME=DIR", help="checkpoint(s) (repeat)")
    p.add_argument("-o", "--out", type=Path, help="Markdown table to write")
    args = p.parse_args(argv)
    features = EntityFeatures.from_annotation_files(ANNOTATIONS)
    boxes: dict = {}
    for path in BOXES:
        boxes.update(read_boxes(path))
    lines = [
        "| Checkpoint | Validation source | Pairs naming a person | Output moved (grey levels) "
        "| Person boxes, IR correlation: people named | not named |",
        "|:---|:---|---:|---:|---:|---:|",
    ]
    for spec in args.checkpoint:
        name, _, folder = spec.rpartition("=")
        fuser = EGMTFuser.from_pretrained(folder, device="cpu")
        for source, (root, split) in SOURCES.items():
            r = steer(fuser, features, boxes, root, split)
            lines.append(
                f"| {name or folder} | {source} | {r['pairs']} | {r['moved']:.2f} | {r['named']:.3f} | {r['unnamed']:.3f} |"
            )
            print(lines[-1], flush=True)
    command = "python benchmarks/person_steering.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    text = (
        "# Naming people: own entities against the same less every person (validation only)\n\n"
        + "\n".join(lines)
        + "\n\nEach validation pair whose annotation entities name a person (through the vocabulary's synonyms: "
        "man, people, pedestrian...), fused with its own entities and with the same less every person ('tree' "
        "where nothing is left). Output moved: the mean |difference| of the two fused images. Person boxes: "
        "the fused image's Pearson correlation with the infrared inside the hand-drawn person boxes "
        "(`annotations/boxes-val.json`, `annotations/boxes-m3svd-0117_1605.json`; never used for training), "
        f"whole images.\n\nMade by: `{command}`\n"
    )
    if args.out:
        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
