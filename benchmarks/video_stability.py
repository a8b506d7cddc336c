"""Flicker of fused videos against their sources: a table from the ``NAME.stability.json`` files
that ``egmt fuse`` writes beside each fused clip (mean |F_t - F_{t-1}| of the grey frames).

Fuse the two aligned M3SVD validation clips with each method first, e.g.

    for m in egmt max_abs average; do
        egmt fuse --ir ../shared/data/m3svd_video/ir --vi ../shared/data/m3svd_video/vi \\
            -o runs/flicker/$m --method $m --video-ext .mkv --temporal 0
    done
    egmt fuse --ir ../shared/data/m3svd_video/ir --vi ../shared/data/m3svd_video/vi \\
        -o runs/flicker/egmt-temporal --video-ext .mkv          # the default, --temporal 0.5
    python benchmarks/video_stability.py runs/flicker/egmt runs/flicker/egmt-temporal runs/flicker/max_abs \\
        runs/flicker/average -o docs/video-stability.md

The "Temporal" column is the clip's ``--temporal`` (``egmt.infer.temporal``; 0: every frame
fused alone; clips fused before the option existed read 0).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from egmt.fileio import write_text_atomic


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="fused-video folders (one per method; the folder name is the row)")
    p.add_argument("-o", "--out", type=Path, help="Markdown file to write")
    args = p.parse_args(argv)
    lines = ["| Method | Clip | Temporal | Frames | Fused | IR | VIS | Fused / livelier source |",
             "|:---|:---|---:|---:|---:|---:|---:|---:|"]
    for folder in args.folders:
        for path in sorted(folder.glob("*.stability.json")):
            d = json.loads(path.read_text())
            c = d["change"]
            ratio = c["fused"] / max(c["ir"], c["vi"])
            lines.append(f"| {folder.name} | {path.name.split('.')[0]} | {d.get('temporal', 0):g} | {d['frames']} | {c['fused']:.3f} | {c['ir']:.3f} "
                         f"| {c['vi']:.3f} | {'**' if ratio > 1 else ''}{ratio:.2f}{'**' if ratio > 1 else ''} |")
    command = "python benchmarks/video_stability.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    text = ("\n".join(lines) + "\n\nMean |F_t − F_{t−1}| of the grey frames (grey levels of 255) of each fused clip and of "
            "its sources (the M3SVD validation clips, `../shared/data/m3svd_video`); a fused clip should change no more "
            "than its livelier source (ratio ≤ 1; above 1 in bold). Temporal: `egmt fuse --temporal`, the blend with the "
            "previous output where neither source moved (0: every frame fused alone; `egmt.infer.temporal`). From the `NAME.stability.json` that `egmt fuse` "
            f"writes beside each clip.\n\nMade by: `{command}`\n")
    print(text)
    if args.out:
        write_text_atomic(args.out, "# Video stability (flicker)\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
