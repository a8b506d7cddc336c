"""Thermal-target retention (:mod:`egmt.metrics.retention`) of folders of fused images.

1.0: the infrared's excess over the visible image, at the IR's hottest 1 % of pixels, is kept
in full (max-abs); 0.5: halved (plain averaging); 0: the visible image there, warm targets gone.

    python benchmarks/target_retention.py --ir ../shared/data/msrs/ir --vi ../shared/data/msrs/vi \\
        --fused egmt=runs/benchmark/msrs/egmt --fused average=runs/benchmark/msrs/average
    python benchmarks/target_retention.py --ir DATA/ir --vi DATA/vi --split splits/m3svd-val.txt --fused ...

Prints a Markdown table (one row per method). Images are read as the metrics read them (grey).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from egmt.bench.retention import folder_retention  # noqa: E402
from egmt.data.pairs import read_split  # noqa: E402
from egmt.errors import EGMTError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ir", type=Path, required=True)
    p.add_argument("--vi", type=Path, required=True)
    p.add_argument("--fused", action="append", required=True, metavar="NAME=DIR")
    p.add_argument("--split", type=Path, help="only the stems of this split file (a path, or relative to the dataset folder)")
    args = p.parse_args(argv)
    stems = None
    if args.split:
        split = args.split if args.split.is_file() else args.ir.parent / args.split
        try:
            stems = set(read_split(split))
        except EGMTError as e:
            raise SystemExit(f"target_retention: {e}") from None
    print("| Method | Pairs | Hot-target retention |\n|:---|---:|---:|")
    for item in args.fused:
        name, _, folder = item.partition("=")
        value, used = folder_retention(args.ir, args.vi, Path(folder), stems)
        print(f"| {name} | {used} | {value:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
