"""Score fused images against their infrared and visible sources.

Images are matched by file name stem across the folders. Every (ir, vi, fused) triple
is scored with the reference-exact fusion metrics (egmt.metrics), in parallel, and
OUT receives per_image.csv (one row per method and image, full precision) and
summary.csv / summary.md (one row per method, mean of each metric, best in bold, as in
the paper's Tables I-IV). Missing or mismatched files are reported and skipped.

Profiles (--profile): whose definitions the metrics follow. The same name can mean
different numbers in different toolboxes (MI in bits or nats, SSIM averaged or summed,
PSNR's peak ...); docs/metrics.md lists every difference.
  paper    (default) the MATLAB code the EGMT paper used; metrics (default: the fifteen;
           groups: paper, extra, default, variants, all):
             paper:    PC SSIM MI Qabf PSNR FMI_w Nabf NCIE   (the paper's table columns)
             extra:    EN SD SF AG CC SCD VIF
             variants: MI_tang PSNR_tang SSIM_sum_vifb Nabf_tang2023 FMI_pixel FMI_dct FMI_edge
             egmt's own: SSIM_min (the less kept source), Seam (16x16 patch grid), Glow (above both
                         sources; e.g. --metrics default Seam Glow)
  vifb     VIFB's MATLAB toolbox: CE EN MI PSNR AG EI Qabf SD SF RMSE SSIM Qcb Qcv
  cddfuse  CDDFuse's Python Evaluator: EN SD SF AG MI SCD VIFF Qabf SSIM MSE CC PSNR

example:
  egmt evaluate --ir data/tno/ir --vi data/tno/vi \\
      --fused egmt=out/egmt --fused densefuse=out/densefuse --metrics paper -o results/tno
  egmt evaluate --ir data/tno/ir --vi data/tno/vi --fused egmt=out/egmt --profile vifb -o results/tno-vifb
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from egmt.errors import EGMTError
from egmt.files import PER_IMAGE_FILE, SUMMARY_CSV_FILE, SUMMARY_MD_FILE

HELP = "score fused images with the reference fusion metrics (CSV + Markdown tables)"


def _method(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name.strip(), Path(folder.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ir", type=Path, required=True, metavar="DIR", help="folder of infrared source images")
    parser.add_argument("--vi", type=Path, required=True, metavar="DIR", help="folder of visible source images")
    parser.add_argument(
        "--fused",
        type=_method,
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a method's fused images (repeat for several methods; NAME is the table row)",
    )
    parser.add_argument(
        "--profile",
        choices=["paper", "vifb", "cddfuse"],
        default="paper",
        help="whose metric set and conventions: the EGMT paper's MATLAB code (default), VIFB's toolbox, "
        "or CDDFuse's Python evaluator",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        metavar="NAME",
        help="metric names or groups of the profile, space or comma separated (default: the fifteen "
        "for paper, all for vifb and cddfuse)",
    )
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="output folder")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from egmt.bench.evaluate import evaluate
    from egmt.fileio import check_outputs

    fused: dict[str, Path] = {}
    for name, folder in args.fused:
        if name in fused:
            raise EGMTError(f"method name {name!r} given twice in --fused")
        fused[name] = folder
    if args.workers is not None and args.workers < 1:
        raise EGMTError("--workers must be at least 1")

    check_outputs(
        inputs={"--ir": args.ir, "--vi": args.vi, **{f"--fused {name}": folder for name, folder in fused.items()}},
        outputs={"-o": args.out},
        writes={"-o": [args.out / name for name in (PER_IMAGE_FILE, SUMMARY_CSV_FILE, SUMMARY_MD_FILE)]},
    )

    log = logging.getLogger(__name__).warning  # "egmt: warning: ..." on stderr (egmt.cli._configure_logging)

    summary = evaluate(
        args.ir,
        args.vi,
        fused,
        args.out,
        metrics=args.metrics,
        workers=args.workers,
        profile=args.profile,
        progress=not args.no_progress,
        log=log,
    )
    assert summary.summary_md is not None  # evaluate() writes it
    print(summary.summary_md.read_text(encoding="utf-8"), end="")
    print(f"\nwrote {summary.per_image_csv}, {summary.summary_csv}, {summary.summary_md}")
    return 0
