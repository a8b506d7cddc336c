"""The Markdown blocks of the results file: one per (table, dataset), each a heading, its
table and its caption."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

from egmt.bench.classification import ENTITY_ROWS, ClassificationResult, classification_markdown, prior_comparison, reference_row
from egmt.bench.datasets import DISPLAY, dataset_spec
from egmt.bench.evaluate import EvaluationSummary
from egmt.bench.figures import grey, labelled_grid
from egmt.bench.paper import PAPER_CLASSIFICATION, PAPER_FUSION
from egmt.bench.provenance import display_path
from egmt.bench.steering import boxes_for_entities, pointing_game
from egmt.bench.tables import markdown_table
from egmt.data.boxes import Box, box_mask
from egmt.data.pairs import Pair
from egmt.infer.entities import EntityResolver
from egmt.infer.fuser import EGMTFuser
from egmt.infer.heatmaps import entity_heatmaps, overlays
from egmt.metrics import FUSION_METRICS
from egmt.metrics.glow import GLOW_LEVELS


def fusion_markdown(
    name: str,
    summary: EvaluationSummary,
    total_pairs: int,
    entity_note: str,
    out_dir: Path,
    paper: bool = True,
    peer_note: str = "",
    retention: dict[str, float] | None = None,
    seams: dict[str, dict[str, float]] | None = None,
    glow: dict[str, dict[str, float]] | None = None,
) -> str:
    """One dataset's table in the layout of Tables I-IV: a row per method, the metrics with
    ↑/↓, best of our rows in bold, the paper's EGMT row in italics below (not ranked).
    ``retention`` (method -> thermal-target retention) adds a "Targets kept" column, ``seams``
    (method -> {pair: seam ratio}) a "Seams (worst pair)" column, ``glow`` (method -> {pair: glow
    share}) a "Glow (worst pair)" column."""
    spec = dataset_spec(name)
    methods = summary.methods
    rows = [DISPLAY.get(m, m) for m in methods]
    values = {DISPLAY.get(m, m): summary.mean[m] for m in methods}
    counts = {DISPLAY.get(m, m): str(summary.counts[m]) for m in methods}
    hib = {n: FUSION_METRICS[n].higher_is_better for n in summary.metrics}
    scored = max(summary.counts.values(), default=0)
    split = f" (split {spec.split})" if spec.split else ""
    text = f"### {spec.title}{split} (cf. paper {spec.paper_table}): {scored} of {total_pairs} pairs scored\n\n"
    extra = {"Pairs": counts}
    if retention:
        extra["Targets kept"] = {DISPLAY.get(m, m): "–" if math.isnan(v) else f"{v:.2f}" for m, v in retention.items()}
    if seams:
        extra["Seams (worst pair)"] = {DISPLAY.get(m, m): _seam_cell(v) for m, v in seams.items()}
    if glow:
        extra["Glow (worst pair)"] = {DISPLAY.get(m, m): _glow_cell(v) for m, v in glow.items()}
    text += markdown_table(rows, summary.metrics, values, hib, extra_columns=extra)
    ref = PAPER_FUSION.get(name) if paper else None
    if ref is not None:
        text += reference_row(
            f"EGMT, paper ({ref.table})",
            ref.values,
            summary.metrics,
            5,
            extra=[str(ref.pairs)] + ([""] if retention else []) + ([""] if seams else []) + ([""] if glow else []),
        )
    caption = (
        "\nMean over each method's pairs; ↑ higher is better, ↓ lower is better; best of our rows "
        "(EGMT, learned peers, baselines) in bold. "
        + (
            "Targets kept: the share of the infrared's excess over the visible image, at the IR's hottest 1 % "
            "of pixels, that the fused image keeps (`egmt.metrics.retention`; 1 = max-abs, 0.5 = averaging, "
            "0 = the visible image there; not ranked: above 1 overshoots). "
            if retention
            else ""
        )
        + (
            "Seams: the mean seam ratio over the pairs, the worst pair and its value (`egmt.metrics.seams`: "
            "contrast across the 16×16 patch grid over the sources', 1 = no grid beyond the sources', a 16×16 "
            "mosaic scores well above; not ranked). "
            if seams
            else ""
        )
        + (
            f"Glow: the mean share of pixels more than {GLOW_LEVELS:g} grey levels brighter than both sources "
            "(`egmt.metrics.glow`; 0 for any mix of the sources), the worst pair and its share; not ranked. "
            if glow
            else ""
        )
        + (
            "Contrast target: the shipped recipe's eq. 12 intensity target used as the fusion "
            "(`egmt.baselines.contrast`): what the network is trained towards, not a published method. "
            if "contrast" in methods
            else ""
        )
        + f"{entity_note} {peer_note} Per-image scores: `{out_dir / 'per_image.csv'}`."
    ).replace("  ", " ")
    if ref is not None:
        caption += (
            f" The paper's row (italics) is the authors' own measurement ({ref.table}, {ref.pairs} pairs, "
            "their checkpoint and metric code), for reference; it is not ranked."
        )
    if summary.problems:
        caption += f" {len(summary.problems)} problem(s) were reported and skipped (see the log)."
    return text + caption + "\n"


def _glow_cell(per_pair: dict[str, float]) -> str:
    """``mean % (PAIR: worst %)`` of a method's glow shares; ``0 %`` when no pair glows."""
    if not per_pair:
        return "–"
    worst = max(per_pair, key=lambda k: per_pair[k])
    mean = sum(per_pair.values()) / len(per_pair)
    if per_pair[worst] == 0:
        return "0 %"
    return f"{100 * mean:.2f} % ({worst}: {100 * per_pair[worst]:.2f} %)"


def _seam_cell(per_pair: dict[str, float]) -> str:
    """``mean (worst: PAIR value)`` of a method's seam ratios, "–" when none is defined."""
    defined = {k: v for k, v in per_pair.items() if not math.isnan(v)}
    if not defined:
        return "–"
    worst = max(defined, key=lambda k: defined[k])
    return f"{sum(defined.values()) / len(defined):.2f} ({worst}: {defined[worst]:.2f})"


def peer_note(peers_root: Path | None, peers: dict[str, Path]) -> str:
    """The fusion caption's sentence on the learned peers' rows (or on their absence)."""
    if peers:
        root = display_path(peers_root)  # type: ignore[arg-type]  # peers were found under it: not None
        return (
            f"Learned peers ({', '.join(peers)}): fused images made with their authors' released weights, "
            f"from `{root}` (see its README), scored by the same code on the same pairs as EGMT."
        )
    if peers_root is None:
        return "No learned peers' rows (no peers folder given)."
    if not Path(peers_root).is_dir():
        return f"No learned peers' rows: no peers folder at `{display_path(peers_root)}` (give one with --peers)."
    return f"No learned peers' rows: no peer in `{display_path(peers_root)}` has images of this dataset."


def figure_block(name: str, figure: Path, results: Path, pairs: Sequence[Pair], columns: Sequence[str]) -> str:
    """The results file's link to a comparison figure, and what it shows."""
    spec = dataset_spec(name)
    link = Path(os.path.relpath(Path(figure).resolve(), Path(results).resolve().parent)).as_posix()
    stems = ", ".join(p.name for p in pairs)
    return (
        f"### {spec.title}: pairs {stems}\n\n![{spec.title}: sources, EGMT, peers and baselines]({link})\n\n"
        f"Columns: IR, VIS, {', '.join(columns)}. Rows: the first {len(pairs)} pairs of the set by name "
        "(a fixed rule, not chosen by quality). Grey, as the metrics read the images; downscaled.\n"
    )


def heatmap_block(
    name: str,
    fuser: EGMTFuser,
    pairs: Sequence[Pair],
    resolver: EntityResolver,
    figure: Path,
    results: Path,
    boxes: dict[str, list[Box]] | None = None,
) -> str:
    """Fig. 5 for one test set: per pair (the figure's rows rule), IR, VIS, the fused image and
    one heat map per own entity (:func:`egmt.infer.heatmaps.entity_heatmaps`), as one PNG; the
    ``boxes`` of a pair, where it has some, outlined on their entity's map, with its pointing game."""
    spec = dataset_spec(name)
    rows, shown, hits = [], [], []
    for pair in pairs:
        entities, _ = resolver(pair.name)
        if not entities:
            continue
        maps = entity_heatmaps(fuser, pair.ir, pair.vi, entities)
        mine = boxes_for_entities(maps.entities, (boxes or {}).get(pair.name, []), fuser.vocabulary)
        hits += [pointing_game(m, box_mask(mine[e], m.shape)) for e, m in zip(maps.entities, maps.maps) if e in mine]
        rows.append(
            [("IR", grey(pair.ir)), ("VIS", grey(pair.vi)), ("EGMT", maps.fused), *zip(maps.entities, overlays(maps, boxes=mine))]
        )
        shown.append(pair.name)
    if not rows:
        return f"### {spec.title}\n\nNo pair among the first {len(pairs)} has entities of its own: no heat maps.\n"
    labelled_grid(rows, figure)
    link = Path(os.path.relpath(Path(figure).resolve(), Path(results).resolve().parent)).as_posix()
    return (
        f"### {spec.title}: pairs {', '.join(shown)}\n\n![{spec.title}: entity heat maps]({link})\n\n"
        "Per pair: IR, VIS, EGMT's fused image with the pair's own entities, then for each entity where CGHA's "
        "eq. 5 attention lands (averaged over heads, both modalities and blocks; blue: little weight, red: the "
        "largest weight of any entity of the pair; one token per pixel in the pixel layout, per 16×16 patch in "
        "the patch layout). The same rule picks the pairs as the comparison figures. One PNG per entity at full "
        "size: `egmt heatmap`."
        + (
            f" White: hand-drawn boxes of the entity; pointing game (the map's maximum inside a box) "
            f"{sum(hits) / len(hits):.2f} over {len(hits)} (pair, entity)."
            if hits
            else ""
        )
        + "\n"
    )


def ablation_markdown(
    name: str, summary: EvaluationSummary, total_pairs: int, models: dict[str, tuple[EGMTFuser, Path, str]], out_dir: Path
) -> str:
    """Table VIII for one dataset: the full EGMT, then each ablation, the fusion metrics, best in bold."""
    spec = dataset_spec(name)
    split = f" (split {spec.split})" if spec.split else ""
    rows = ["EGMT (full)" if m == "egmt" else m for m in summary.methods]
    values = {r: summary.mean[m] for r, m in zip(rows, summary.methods)}
    counts = {r: str(summary.counts[m]) for r, m in zip(rows, summary.methods)}
    hib = {n: FUSION_METRICS[n].higher_is_better for n in summary.metrics}
    text = f"### {spec.title}{split}: {max(summary.counts.values(), default=0)} of {total_pairs} pairs scored\n\n"
    text += markdown_table(rows, summary.metrics, values, hib, extra_columns={"Pairs": counts})
    checkpoints = "; ".join(
        f"{'EGMT (full)' if m == 'egmt' else m}: `{display_path(ckpt)}` (sha256 {digest})"
        for m, (_, ckpt, digest) in models.items()
    )
    text += (
        "\nEach checkpoint fused exactly like EGMT (same pairs, entity sources and caption-free rule) and "
        f"scored by the same code; best in bold. Checkpoints: {checkpoints}. "
        f"Per-image scores: `{out_dir / 'per_image.csv'}`."
    )
    if summary.problems:
        text += f" {len(summary.problems)} problem(s) were reported and skipped (see the log)."
    return text + "\n"


def classification_block(result: ClassificationResult) -> str:
    spec = dataset_spec(result.dataset)
    split = f" (split {spec.split})" if spec.split else ""
    single = (
        "the single modality fed to both inputs, (IR, IR) and (VI, VI)"
        if result.single_source == "duplicate"
        else "the single modality paired with a black image, (IR, 0) and (0, VI)"
    )
    paper = PAPER_CLASSIFICATION if result.dataset == "msrs" else None
    cf = " (cf. paper Table V)" if paper else ""
    text = f"### {spec.title}{split}{cf}: {result.pairs} pairs\n\n"
    text += classification_markdown(result, paper, paper_label="paper, Table V, 361 MSRS test pairs")
    caption = (
        f"\nEGMT's classifier, sigmoid scores, decisions at 0.5, against {result.label_source} "
        f"(classes: {', '.join(result.classes)}). Inputs: Fused (IR+VIS) = the network's two inputs (IR, VI); "
        f"Only_IR / Only_VIS = {single} (our network always takes two sources). "
        "Caption-free: no entity features (E = 0). "
        + (
            "With entities: the pair's own annotation entities, from which its labels are made and which the "
            "classifier reads (eq. 8), so those rows see the answer. "
            if ENTITY_ROWS[-1] in result.rows
            else ""
        )
        + "Label prior (italics): every pair scored with the training positive ratios of the checkpoint's vocabulary, "
        "what a classifier that ignores the image gets. " + prior_comparison(result)
    )
    skipped = {k: v for k, v in result.skipped_classes.items() if v}
    if skipped:
        caption += (
            " Left out (no positive, or no negative, in this set): "
            + "; ".join(f"{k}: {', '.join(v)}" for k, v in skipped.items())
            + "."
        )
    caption += " Best of each group's modality rows in bold; HL and RL lower is better."
    if paper:
        caption += " The paper's rows (italics) are its own numbers on the full MSRS test set."
    return text + caption + "\n"
