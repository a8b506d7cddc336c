"""Entity heat maps (paper Fig. 5): for each entity, where CGHA's attention lands on a pair.

The pair is fused once with the entities; CGHA's eq. 5 weights (tokens -> entities; a token is
a pixel in the pixel layout, a 16x16 patch, interpolated to pixels, in the patch layout) are recorded, averaged over heads, both modalities and every ECIM block,
and drawn per entity in a colour map over the fused image (blue: little weight, red: the
largest weight of any entity; one scale for all, so colours compare). Writes
OUT/STEM_ENTITY.png per entity and OUT/STEM_heatmaps.csv (mean / min / max weight per entity).
With --boxes (a file of hand-drawn entity boxes, annotations/boxes-val.json), the pair's boxes are
outlined in white on their entity's map and the pointing game is printed: 1 where the map's
maximum lies inside a box of its entity, 0 where not, against chance (the boxes' area share).

  egmt heatmap --ir ir.png --vi vi.png --entities "person, tree, house" -o heatmaps
  egmt heatmap --ir DATA/ir/07.png --vi DATA/vi/07.png --annotations annotations/tno.jsonl -o heatmaps
  egmt heatmap --ir ../shared/data/roadscene/ir/FLIR_05697.jpg --vi ../shared/data/roadscene/vi/FLIR_05697.jpg \
      --entities "person, car, tree" --boxes annotations/boxes-val.json -o heatmaps
"""

from __future__ import annotations

import argparse
import logging

HELP = "entity heat maps: where CGHA's attention to each entity lands on a pair (paper Fig. 5)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ir", required=True, metavar="FILE", help="infrared image")
    p.add_argument("--vi", required=True, metavar="FILE", help="visible image")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for STEM_ENTITY.png and STEM_heatmaps.csv")
    p.add_argument("--checkpoint", metavar="DIR", help="EGMT checkpoint or run folder (default: the shipped RoadScene model)")
    e = p.add_argument_group("entities (one of)")
    e.add_argument("--entities", metavar="LIST", help='comma-separated entities, e.g. "person, car, road"')
    e.add_argument("--annotations", metavar="JSONL", help="annotation file from `egmt annotate`: the pair's own entities")
    p.add_argument(
        "--boxes", metavar="JSON", help="entity boxes {pair: [{entity, box}]}: drawn on the maps, pointing game printed"
    )
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the colour map over the fused image (default 0.5)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ...")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from egmt.bench.steering import boxes_for_entities, pointing_game
    from egmt.data.boxes import box_mask, read_boxes
    from egmt.errors import EGMTError
    from egmt.fileio import check_outputs
    from egmt.infer.entities import parse_entity_list
    from egmt.infer.fuser import EGMTFuser
    from egmt.infer.heatmaps import entity_file_name, entity_heatmaps, one_entity_note, write_heatmaps
    from egmt.infer.run import DEFAULT_CHECKPOINT
    from egmt.text.annotations import read_annotations

    ir, vi = Path(args.ir), Path(args.vi)
    if (args.entities is None) == (args.annotations is None):
        raise EGMTError("give the entities with exactly one of --entities and --annotations")
    if not 0.0 <= args.alpha <= 1.0:
        raise EGMTError("--alpha must be in [0, 1]")
    if args.entities is not None:
        entities = parse_entity_list(args.entities)
    else:
        annotations = read_annotations(args.annotations)
        if ir.stem not in annotations:
            raise EGMTError(f"{args.annotations}: no annotation for pair {ir.stem!r}")
        entities = annotations[ir.stem].tokens("entities")
    if note := one_entity_note(entities):
        logging.getLogger(__name__).warning(note)
    out = Path(args.out)
    check_outputs(
        inputs={
            "--ir": ir,
            "--vi": vi,
            "--checkpoint": args.checkpoint,
            "--annotations": args.annotations,
            "--boxes": args.boxes,
        },
        outputs={"-o": out},
        writes={"-o": [out / f"{ir.stem}_heatmaps.csv"] + [out / f"{ir.stem}_{entity_file_name(e)}.png" for e in entities]},
    )
    fuser = EGMTFuser.from_pretrained(Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT, device=args.device)
    boxes = read_boxes(args.boxes).get(ir.stem, []) if args.boxes else []
    if args.boxes and not boxes:
        logging.getLogger(__name__).warning("%s: no boxes for pair %r", args.boxes, ir.stem)
    result = entity_heatmaps(fuser, ir, vi, entities)
    mine = boxes_for_entities(result.entities, boxes, fuser.vocabulary)
    paths = write_heatmaps(result, out, prefix=f"{ir.stem}_", alpha=args.alpha, boxes=mine)
    hits, areas = [], []
    for entity, path, weights in zip(result.entities, paths, result.maps):
        line = f"{path}: {entity} (mean weight {weights.mean():.3f}, max {weights.max():.3f})"
        if entity in mine:
            mask = box_mask(mine[entity], weights.shape)
            hits.append(pointing_game(weights, mask))
            areas.append(float(mask.mean()))
            line += f"; pointing game {hits[-1]:.2f} (chance {areas[-1]:.2f})"
        print(line)
    if hits:
        print(
            f"pointing game: {sum(hits) / len(hits):.2f} over {len(hits)} boxed entities (chance {sum(areas) / len(areas):.2f})"
        )
    return 0
