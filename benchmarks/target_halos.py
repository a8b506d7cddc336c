"""Where a fusion glows: pixels brighter than both sources, on whole validation images.

The selection rule scores the central 256² of each validation pair (the smoke clip whole), and its
halo ceiling reads a ring around the people only. Bright skies lie mostly outside those crops. The
contrast target (``egmt.baselines.contrast``, the loss's eq. 12 target) re-bases the infrared's
structure onto the brighter source's local mean. Beside a warm roof or tree under a bright visible
sky, that structure comes out as a glow brighter than either source: a defect neither the score
nor a floor sees. For each validation pair of the checkpoint's config (whole images, entities
from the source's annotations), each method's *glow* is the share of pixels more than 30 grey
levels brighter than max(IR, VI). The people of the smoke clip are meant to stand out brighter
than the smoke, so that source counts them too. The figure shows the pair where the contrast rule
glows most: IR | VIS | each method.

    python benchmarks/target_halos.py --method shipped=egmt/pretrained/egmt-roadscene \\
        -o docs/target-halos.md --figure docs/figures/target-halos.png
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from egmt.baselines import contrast, max_abs
from egmt.bench.provenance import display_path
from egmt.config import EGMTConfig
from egmt.data.io import to_uint8
from egmt.data.pairs import find_pairs, load_pair
from egmt.fileio import write_text_atomic
from egmt.infer.entities import EntityResolver
from egmt.infer.fuser import EGMTFuser
from egmt.metrics.glow import GLOW_LEVELS, glow_share
from egmt.train.checkpoint import resolve_checkpoint

Fusion = Callable[[np.ndarray, np.ndarray, str], np.ndarray]  # (ir, vi, pair name) -> fused luma in [0, 1]


def network(folder: Path, annotations: list[str]) -> Fusion:
    """A checkpoint's fusion of a pair with its annotated entities (caption-free where none)."""
    fuser = EGMTFuser.from_pretrained(folder, device="cpu")
    resolvers = [EntityResolver(annotations=a) for a in annotations]

    def fuse(ir: np.ndarray, vi: np.ndarray, name: str) -> np.ndarray:
        entities = next((r(name)[0] for r in resolvers if name in r.annotations), None)
        return np.asarray(fuser(ir, vi, entities=entities).image, dtype=np.float32)

    return fuse


def measure(config: EGMTConfig, methods: dict[str, Fusion]) -> tuple[list[dict], dict]:
    """One row per (validation source, method): mean glow, worst pair; and the worst pair of the
    contrast rule on the first source ``{"name", "ir", "vi", name: fused}`` for the figure."""
    rows, figure, worst_rule = [], {}, -1.0
    for index, source in enumerate(config.data.val_sources):
        pairs = find_pairs(source.root, source.split)
        scores: dict[str, list[tuple[float, str]]] = {m: [] for m in methods}
        for pair in pairs:
            loaded = load_pair(pair)  # the sources' luma (BT.601 Y), as the network and validation read them
            ir, vi = loaded.ir[0].numpy(), loaded.vi[0].numpy()
            fused = {m: fuse(ir, vi, pair.name) for m, fuse in methods.items()}
            for m, f in fused.items():
                scores[m].append((glow_share(ir, vi, f), pair.name))
            if index == 0 and scores["contrast rule"][-1][0] > worst_rule:
                worst_rule = scores["contrast rule"][-1][0]
                figure = {"name": pair.name, "ir": ir, "vi": vi, **fused}
        label = f"{Path(source.root).name} ({Path(source.split).name}, {len(pairs)} pairs)" if source.split else source.root
        for m, values in scores.items():
            worst = max(values)
            rows.append({"source": label, "method": m, "mean": float(np.mean([v for v, _ in values])), "worst": worst})
        print(f"{label}: " + ", ".join(f"{m} {np.mean([v for v, _ in s]):.4f}" for m, s in scores.items()), flush=True)
    return rows, figure


def table(rows: list[dict], figure: str | None, checkpoints: str, command: str) -> str:
    lines = [
        "# Glow: a fusion brighter than both sources, on whole validation images",
        "",
        "| Validation source | Method | Glow, mean share of pixels | Worst pair |",
        "|:---|:---|---:|:---|",
    ]
    for r in rows:
        share, name = r["worst"]
        worst = f"{name}: {share:.4f}" if share > 0 else "–"
        lines.append(f"| {r['source']} | {r['method']} | {r['mean']:.4f} | {worst} |")
    lines += [
        "",
        f"Glow: the share of a fused image's pixels more than {GLOW_LEVELS:g} grey levels (of 255) brighter than"
        " max(IR, VI), on whole images (the selection rule reads central crops). Entities: each pair's annotations."
        f" Checkpoints: {checkpoints}. Contrast rule: `egmt.baselines.contrast`, the shipped recipe's intensity target"
        " used as the fusion. On the smoke clip the people are meant to stand out brighter than the smoke, and"
        " count as glow too.",
    ]
    if figure:
        lines += ["", f"![IR, VIS and each method on the contrast rule's worst RoadScene pair]({figure})"]
    lines += ["", f"Made by: `{command}`", ""]
    return "\n".join(lines)


def write_figure(path: Path, figure: dict, methods: list[str]) -> None:
    panels = [figure["ir"], figure["vi"], *(figure[m] for m in methods)]
    gap = np.ones((figure["ir"].shape[0], 6), dtype=np.float32)
    row = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(row)).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--method", action="append", required=True, metavar="NAME=DIR", help="a checkpoint to measure (repeatable); "
        "the first one's config gives the validation sources"
    )
    parser.add_argument("-o", "--output", type=Path, help="Markdown table to write")
    parser.add_argument("--figure", type=Path, help="PNG: the contrast rule's worst RoadScene pair, IR | VIS | each method")
    args = parser.parse_args(argv)
    folders = {}
    for item in args.method:
        name, sep, folder = item.partition("=")
        if not sep:
            parser.error(f"--method {item}: expected NAME=DIR")
        folders[name] = resolve_checkpoint(folder)
    config = EGMTConfig.load(next(iter(folders.values())) / "config.json")
    annotations = [s.annotations for s in config.data.val_sources if s.annotations]
    methods: dict[str, Fusion] = {n: network(f, annotations) for n, f in folders.items()}
    methods["contrast rule"] = lambda ir, vi, _: contrast(ir, vi)
    methods["max(IR, VI)"] = lambda ir, vi, _: max_abs(ir, vi)
    rows, figure = measure(config, methods)
    if args.figure and figure:
        write_figure(args.figure, figure, list(methods))
    figure_link = os.path.relpath(args.figure, args.output.parent) if args.figure and args.output else None
    command = shlex.join(["python", "benchmarks/target_halos.py", *(argv if argv is not None else sys.argv[1:])])
    checkpoints = ", ".join(f"{n} `{display_path(Path(f))}`" for n, f in folders.items())
    text = table(rows, figure_link, checkpoints, command)
    if args.output:
        write_text_atomic(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
