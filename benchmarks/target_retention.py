"""Thermal-target retention of fused images: how much of the infrared's hottest pixels survives.

For each pair, take the hottest 1 % of the IR image's pixels; over all pairs and those pixels,

    retention = sum(F - VI) / sum(IR - VI)

1.0: the infrared's excess over the visible image is kept in full (max-abs selection does this);
0.5: it is halved (plain averaging); 0: the fused image shows the visible image there, i.e. the
thermal targets are gone. The paper's metrics, MI above all, reward copying one source whichever
it is; this number says whether the warm targets that infrared is there for survive.

    python benchmarks/target_retention.py --ir ../shared/data/msrs/ir --vi ../shared/data/msrs/vi \\
        --fused egmt=runs/benchmark/msrs/egmt --fused average=runs/benchmark/msrs/average
    python benchmarks/target_retention.py --ir DATA/ir --vi DATA/vi --split splits/m3svd-val.txt --fused ...

Prints a Markdown table (one row per method). Images are read as the metrics read them (grey).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from egmt.bench.evaluate import list_images  # noqa: E402
from egmt.bench.figures import grey  # noqa: E402
from egmt.data.pairs import read_split  # noqa: E402
from egmt.errors import EGMTError  # noqa: E402

HOT_PERCENT = 1.0


def retention(ir_dir: Path, vi_dir: Path, fused_dir: Path, stems: set[str] | None = None) -> tuple[float, int]:
    """(retention, pairs used) of the fused images in ``fused_dir`` (see the module doc)."""
    problems: list[str] = []
    irs, vis, fused = (list_images(d, label, problems) for d, label in ((ir_dir, "ir"), (vi_dir, "vi"), (fused_dir, "fused")))
    num = den = 0.0
    used = 0
    for stem in sorted(set(irs) & set(vis) & set(fused)):
        if stems is not None and stem not in stems:
            continue
        ir, vi, f = grey(irs[stem]), grey(vis[stem]), grey(fused[stem])
        hot = ir >= np.percentile(ir, 100 - HOT_PERCENT)
        num += float((f - vi)[hot].sum())
        den += float((ir - vi)[hot].sum())
        used += 1
    return (num / den if den else float("nan")), used


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
        value, used = retention(args.ir, args.vi, Path(folder), stems)
        print(f"| {name} | {used} | {value:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
