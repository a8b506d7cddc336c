"""Fuse the bundled test sets with EGMT and the classical baselines, score them, write the tables.

Datasets (under --data): tno (25 pairs), roadscene (its test.txt, 50 pairs), msrs (9 pairs).
Each method's fused images go to OUT/DATASET/METHOD/STEM.png (reused while newer than the
checkpoint, unless --force), scores to OUT/DATASET/{per_image,summary}.csv, and the tables,
in the paper's layout, to the results file (default docs/results.md):

  fusion          Tables I, II, IV: a row per method, the paper's eight metrics, best in bold,
                  the paper's published EGMT row below for reference
  entities        how far EGMT's output (mean and max |Δ|, grey levels) and MI, Qabf, FMI_w,
                  SSIM move with the pair's own entities, unrelated ones (boat, sky, water,
                  dog, ocean), none (E = 0), and caption-free
  heatmaps        paper Fig. 5: for the figure's pairs, where CGHA's attention to each of the
                  pair's own entities lands, one PNG per dataset (--figures/heatmaps-DATASET.png)
  classification  Table V: the classifier's HL RL mAP AUC JI F1 against the pseudo-labels,
                  rows Only_IR / Only_VIS / Fused (IR+VIS), caption-free (E = 0) and with the
                  pair's own entities (the labels' source), beside the label prior (every pair
                  scored with the training positive ratios); --cls-entities none: caption-free only
  efficiency      Table VII: FLOPs, parameters, seconds per pair (same as `egmt profile`)
  steering        on the validation pairs with hand-drawn boxes (--boxes; never a test set): the heat
                  maps' pointing game against chance, the share of the output's change between
                  [entity] and [tree] inside the entity's boxes against their area, and own vs
                  shuffled entities (the entities table also gets a shuffled row on the test sets)

Table VIII (ablations): each --ablation NAME=DIR (a checkpoint or run folder, repeatable) is
fused exactly like EGMT on the datasets and scored beside it, whatever --tables says.

Learned peers: the fused images under --peers (PEERS/METHOD/DATASET/STEM.png, default
../shared/peers) are scored like EGMT's, on the same pairs, as extra rows of the fusion tables
(no peers folder: no peer rows, and the caption says so). With the fusion table, a comparison
figure per dataset (sources, EGMT, peers, baselines for the first --figure-pairs pairs by
name, paper Fig. 4) is written to --figures/DATASET.png and linked from the results file.

A run replaces only the blocks it computes; the others in the results file are kept.
EGMT's entities come from --annotations/DATASET.jsonl when present, else caption-free.

  egmt benchmark --checkpoint runs/egmt-roadscene
  egmt benchmark --datasets tno --methods egmt average --tables fusion -o results-tno.md
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from egmt.baselines import BASELINES

# Kept here, not imported from egmt.bench.benchmark, so that `egmt --help` does not load torch;
# tests/bench check that they match the bench module's.
DATASETS = ("tno", "roadscene", "msrs")
METHODS = ("egmt", *BASELINES)
TABLES = ("fusion", "entities", "heatmaps", "classification", "efficiency", "steering")
DEFAULT_DATA = Path("../shared/data")
DEFAULT_OUT = Path("runs/benchmark")
DEFAULT_RESULTS = Path("docs/results.md")
DEFAULT_PEERS = Path("../shared/peers")
DEFAULT_FIGURES = Path("docs/figures")
DEFAULT_ANNOTATIONS = Path(__file__).resolve().parents[2] / "annotations"  # the checkout's bundled files
DEFAULT_BOXES = DEFAULT_ANNOTATIONS / "boxes-val.json"

HELP = "fuse + score TNO / RoadScene / MSRS with EGMT and baselines; write the paper's tables"


def add_source_arguments(p: argparse.ArgumentParser, verb: str = "run") -> None:
    """--data, --datasets, --methods, --checkpoint, --annotations (shared with `egmt profile`)."""
    p.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, metavar="ROOT", help=f"data root holding the datasets (default {DEFAULT_DATA})"
    )
    p.add_argument(
        "--datasets",
        nargs="+",
        default=list(DATASETS),
        choices=list(DATASETS),
        metavar="NAME",
        help=f"datasets to {verb} (default: {' '.join(DATASETS)})",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=list(METHODS),
        metavar="NAME",
        help=f"fusion methods (default: {' '.join(METHODS)})",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        metavar="DIR",
        help="EGMT checkpoint or run folder (default: the shipped egmt/pretrained/egmt-roadscene)",
    )
    p.add_argument(
        "--annotations",
        type=Path,
        default=DEFAULT_ANNOTATIONS,
        metavar="DIR",
        help="folder of DATASET.jsonl files giving EGMT's entities (default: the checkout's annotations/; else caption-free)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help=f"fused images and per-dataset CSVs (default {DEFAULT_OUT})"
    )
    p.add_argument(
        "-o",
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        metavar="FILE",
        help=f"Markdown results file (default {DEFAULT_RESULTS})",
    )
    p.add_argument(
        "--tables",
        nargs="+",
        default=list(TABLES),
        choices=list(TABLES),
        metavar="NAME",
        help=f"which tables to compute (default: {' '.join(TABLES)})",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        default=["paper"],
        metavar="NAME",
        help="fusion metrics or groups, as `egmt evaluate` takes them (default: paper = PC SSIM MI Qabf PSNR FMI_w Nabf NCIE)",
    )
    p.add_argument("--force", action="store_true", help="fuse again even where a cached image is up to date")
    p.add_argument(
        "--peers",
        type=Path,
        default=DEFAULT_PEERS,
        metavar="DIR",
        help=f"learned peers' fused images, DIR/METHOD/DATASET/STEM.png (default {DEFAULT_PEERS}; missing: no peer rows)",
    )
    p.add_argument(
        "--boxes",
        type=Path,
        default=DEFAULT_BOXES,
        metavar="JSON",
        help="hand-drawn entity boxes on validation pairs: the steering table, boxes on the heat maps "
        "(default: the checkout's annotations/boxes-val.json)",
    )
    p.add_argument(
        "--ablation",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help='Table VIII: an ablation checkpoint or run folder, e.g. "w/o CGHA=runs/no-cgha" (repeatable)',
    )
    p.add_argument(
        "--figures",
        type=Path,
        default=DEFAULT_FIGURES,
        metavar="DIR",
        help=f"folder for the comparison figures DATASET.png (default {DEFAULT_FIGURES})",
    )
    p.add_argument(
        "--figure-pairs",
        type=int,
        default=2,
        metavar="N",
        help="pairs (rows) per comparison figure: the first N by name (default 2; 0: no figures)",
    )
    r = p.add_argument_group("running")
    r.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    r.add_argument("--workers", type=int, default=None, help="processes scoring the images (default: all cores)")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads for fusion and timing (default: torch's choice)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    c = p.add_argument_group("Table V (classification)")
    c.add_argument(
        "--cls-entities",
        choices=["none", "annotations"],
        default="annotations",
        help="annotations (default): caption-free rows (E = 0) and rows with the pair's own entities; none: caption-free only",
    )
    c.add_argument(
        "--cls-single",
        choices=["duplicate", "blank"],
        default="duplicate",
        help="Only_IR / Only_VIS inputs: the modality given to both inputs (default), or beside a black image",
    )
    c.add_argument(
        "--threshold", type=float, default=0.5, help="class probability threshold (caption-free entities, Table V decisions)"
    )
    e = p.add_argument_group("Table VII (efficiency)")
    e.add_argument("--max-pairs", type=int, default=None, metavar="N", help="time at most N pairs per dataset (default: all)")
    e.add_argument("--flop-entities", type=int, default=8, metavar="E", help="entity features in the FLOP count (default 8)")


def run(args: argparse.Namespace) -> int:
    import torch

    from egmt.bench.benchmark import BenchmarkOptions, run_benchmark
    from egmt.errors import EGMTError
    from egmt.fileio import check_outputs

    if args.threads is not None:
        if args.threads < 1:
            raise EGMTError("--threads must be at least 1")
        torch.set_num_threads(args.threads)

    log = logging.getLogger(__name__).warning  # "egmt: warning: ..." on stderr (egmt.cli._configure_logging)

    ablations = {}
    for item in args.ablation:
        name, sep, folder = item.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise EGMTError(f"--ablation {item!r}: expected NAME=DIR")
        if name.strip() in ablations:
            raise EGMTError(f"--ablation: the name {name.strip()!r} is given twice")
        ablations[name.strip()] = Path(folder.strip())
    check_outputs(
        inputs={
            "--data": args.data,
            "--checkpoint": args.checkpoint,
            "--annotations": args.annotations,
            "--peers": args.peers,
            **{f"--ablation {name}": folder for name, folder in ablations.items()},
        },
        outputs={"--out": args.out, "--results": args.results, "--figures": args.figures},
        writes={
            "--out": [args.out / d for d in args.datasets],
            "--figures": [args.figures / f"{prefix}{d}.png" for d in args.datasets for prefix in ("", "heatmaps-")],
        },
    )
    options = BenchmarkOptions(
        data=args.data,
        datasets=args.datasets,
        methods=args.methods,
        checkpoint=args.checkpoint,
        annotations=args.annotations,
        out=args.out,
        results=args.results,
        tables=args.tables,
        metrics=args.metrics,
        device=args.device,
        workers=args.workers,
        force=args.force,
        peers=args.peers,
        figures=args.figures,
        figure_pairs=args.figure_pairs,
        ablations=ablations,
        progress=not args.no_progress,
        threshold=args.threshold,
        cls_entities=args.cls_entities,
        cls_single=args.cls_single,
        max_time_pairs=args.max_pairs,
        flop_entities=args.flop_entities,
        boxes=args.boxes,
        log=log,
    )
    result = run_benchmark(options)
    for (dataset, method), stats in result.fuse_stats.items():
        print(
            f"{dataset}/{method}: fused {stats.fused}, cached {stats.cached}"
            + (f", failed {len(stats.failures)}" if stats.failures else "")
        )
    for dataset, summary in result.fusion.items():
        print(f"{dataset}: scored {max(summary.counts.values(), default=0)} of {result.pairs[dataset]} pairs")
    print(f"wrote {result.results}")
    failed = any(s.failures for s in result.fuse_stats.values())
    return 1 if failed else 0
