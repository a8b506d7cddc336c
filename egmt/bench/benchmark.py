"""``egmt benchmark``: fuse the bundled test sets with EGMT and the classical baselines, score
them, and write the paper's tables (I, II, IV; V; VII) into one Markdown file.

The stage is wiring only: fusion is :class:`egmt.infer.run.FuseJob`, scoring is
:func:`egmt.bench.evaluate.evaluate`, classification is :mod:`egmt.bench.classification`,
cost is :mod:`egmt.bench.profile`. On disk (``OUT`` = ``--out``)::

    OUT/DATASET/METHOD/STEM.png      fused images (cached, see below)
    OUT/DATASET/sources/{ir,vi}/     links to the split's source images (datasets with a split)
    OUT/DATASET/peers/METHOD/       links to the learned peers' images of the split's pairs
    OUT/DATASET/per_image.csv, summary.csv, summary.md    evaluate's outputs
    OUT/DATASET/scores.csv           every triple's scores, reused while its three files are
                                    unchanged (the baselines and peers are scored once)
    OUT/DATASET/entity-effect/CONDITION/   links to egmt's images per entity condition (fused in
                                    entity-effect/fused/, or egmt's own), with their scores
    OUT/DATASET/ablation/NAME/      Table VIII: each ablation checkpoint's images (scores beside)
    FIGURES/DATASET.png             the comparison figure (paper Fig. 4), linked from the results

Learned peers (``--peers``, default ``../shared/peers``): ``PEERS/METHOD/DATASET/STEM.png``,
fused images that other networks made with their authors' weights; they are scored by the
same :func:`evaluate` call as egmt's own outputs, on the same pairs, and get their own rows.

Cache: a fused image is reused when it exists and is newer than the checkpoint's weights
(and than the annotation file that gave its entities), and the checkpoint it was made with
(its hash, recorded in ``METHOD/fused_with.json``) is the current one; ``force`` recomputes.
Scores are kept in ``scores.csv`` (:mod:`egmt.bench.score_cache`) and reused while the fused
image and its sources are unchanged.

The results file is made of blocks, one per (table, dataset) and one for Table VII, each
between ``<!-- egmt-benchmark:KEY -->`` markers with its own run line; a run replaces the
blocks it computed and keeps the others, so ``--tables efficiency`` does not erase Table I.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tqdm.auto import tqdm

from egmt.baselines import BASELINES, DISPLAY_NAMES
from egmt.bench.classification import (
    ENTITY_ROWS,
    ClassificationResult,
    classification_markdown,
    classification_table,
    prior_comparison,
    reference_row,
)
from egmt.bench.entity_effect import (
    CONDITIONS,
    EFFECT_METRICS,
    SHUFFLE_SEED,
    UNRELATED_ENTITIES,
    ConditionEntities,
    EntityEffect,
    entity_effect_markdown,
    measure_entity_effect,
)
from egmt.bench.evaluate import EvaluationSummary, evaluate
from egmt.bench.figures import comparison_figure, figure_pairs, grey, labelled_grid
from egmt.bench.paper import PAPER_CLASSIFICATION, PAPER_EFFICIENCY, PAPER_FUSION
from egmt.bench.profile import EfficiencyResult, efficiency_markdown, machine_description, profile
from egmt.bench.retention import folder_retention, folder_seams
from egmt.bench.steering import STEERING_SETS, boxes_for_entities, measure_steering, pointing_game, steering_markdown
from egmt.bench.tables import markdown_table
from egmt.fileio import write_text_atomic as write_atomic
from egmt.data.boxes import Box, box_mask, read_boxes
from egmt.data.io import write_image
from egmt.data.pairs import Pair, find_pairs
from egmt.errors import EGMTError
from egmt.infer.entities import EntityResolver
from egmt.infer.fuser import EGMTFuser, caption_free_policy
from egmt.infer.heatmaps import entity_heatmaps, overlays
from egmt.infer.run import DEFAULT_CHECKPOINT, FuseJob
from egmt.metrics import FUSION_METRICS, resolve_metric_names
from egmt.train.checkpoint import MODEL_FILE, resolve_checkpoint

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ANNOTATIONS = REPO / "annotations"  # the checkout's bundled annotation files
DEFAULT_DATA = Path("../shared/data")
DEFAULT_OUT = Path("runs/benchmark")
DEFAULT_RESULTS = Path("docs/results.md")
DEFAULT_PEERS = Path("../shared/peers")
DEFAULT_FIGURES = Path("docs/figures")
DEFAULT_BOXES = DEFAULT_ANNOTATIONS / "boxes-val.json"  # hand-drawn boxes on validation pairs (steering table)
STAMP_FILE = "fused_with.json"


SCORE_CACHE = "scores.csv"  # per dataset (and per entity-effect folder): see egmt.bench.score_cache


@dataclass(frozen=True)
class DatasetSpec:
    """A bundled test set: folder under the data root, split file (None: every pair), titles."""

    folder: str
    title: str
    split: str | None
    paper_table: str  # the paper's table for its fusion results


DATASETS: dict[str, DatasetSpec] = {
    "tno": DatasetSpec("tno", "TNO", None, "Table I"),
    "roadscene": DatasetSpec("roadscene", "RoadScene", "test.txt", "Table II"),
    "msrs": DatasetSpec("msrs", "MSRS", None, "Table IV"),
}
METHODS: tuple[str, ...] = ("egmt", *BASELINES)
DISPLAY: dict[str, str] = {"egmt": "EGMT (ours)", **DISPLAY_NAMES}
TABLES: tuple[str, ...] = ("fusion", "entities", "heatmaps", "classification", "efficiency", "steering")


@dataclass
class BenchmarkOptions:
    """What ``egmt benchmark`` runs; the defaults are the CLI's."""

    data: Path = DEFAULT_DATA
    datasets: Sequence[str] = tuple(DATASETS)
    methods: Sequence[str] = METHODS
    checkpoint: Path | None = None  # None: the shipped model (egmt/pretrained/egmt-roadscene)
    annotations: Path | None = DEFAULT_ANNOTATIONS  # folder of DATASET.jsonl (+ vocabulary, bank)
    out: Path = DEFAULT_OUT
    results: Path = DEFAULT_RESULTS
    tables: Sequence[str] = TABLES
    metrics: str | Sequence[str] | None = "paper"
    device: str = "auto"
    workers: int | None = None  # evaluate's processes (None: all cores)
    force: bool = False
    progress: bool = True
    peers: Path | None = DEFAULT_PEERS  # PEERS/METHOD/DATASET/STEM.png; None or missing: no peer rows
    figures: Path | None = DEFAULT_FIGURES  # comparison figures (None: none)
    figure_pairs: int = 2  # rows of a comparison figure: the first N stems in natural order
    ablations: dict[str, Path] = field(default_factory=dict)  # Table VIII: name -> checkpoint or run folder
    threshold: float = 0.5  # caption-free entities and Table V decisions
    cls_entities: str = "annotations"  # Table V: "none" (caption-free rows only) or "annotations" (also with entities)
    cls_single: str = "duplicate"  # Table V single-modality rows: "duplicate" or "blank"
    max_time_pairs: int | None = None  # Table VII: time at most this many pairs per dataset (None: all)
    flop_entities: int = 8
    boxes: Path | None = DEFAULT_BOXES  # steering table and heat-map boxes (None or missing: none)
    log: Callable[[str], None] | None = None


@dataclass
class FuseStats:
    """One (dataset, method): pairs fused now, reused from the cache, and failures by name."""

    fused: int = 0
    cached: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class Provenance:
    """Where the numbers come from: when, which code, which weights, which machine."""

    date: str
    commit: str
    checkpoint: str | None
    checkpoint_sha: str | None
    machine: dict[str, str]
    scope: str = ""  # what the run computed

    def markdown(self) -> str:
        m = self.machine
        lines = [f"- Date: {self.date}", f"- egmt commit: `{self.commit}`"]
        if self.scope:
            lines.append(f"- Computed: {self.scope}")
        if self.checkpoint:
            lines.append(f"- Checkpoint: `{self.checkpoint}` (model.safetensors sha256 `{self.checkpoint_sha}`)")
        lines.append(f"- Machine: {m['cpu']}; torch {m['torch']}; torch threads: {m['threads']}; device {m['device']}")
        return "\n".join(lines) + "\n"

    def run_line(self) -> str:
        ckpt = f" · checkpoint sha256 {self.checkpoint_sha}" if self.checkpoint_sha else ""
        return f"_Run {self.date} · egmt {self.commit[:12]}{ckpt} · {self.machine['device']}_\n"


@dataclass
class BenchmarkResult:
    results: Path
    provenance: Provenance
    fusion: dict[str, EvaluationSummary] = field(default_factory=dict)
    fuse_stats: dict[tuple[str, str], FuseStats] = field(default_factory=dict)
    classification: dict[str, ClassificationResult] = field(default_factory=dict)
    efficiency: EfficiencyResult | None = None
    entity_effect: dict[str, EntityEffect] = field(default_factory=dict)
    steering: object | None = None  # egmt.bench.steering.SteeringResult
    ablation: dict[str, EvaluationSummary] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)  # dataset -> pairs in its split


# --------------------------------------------------------------------------- provenance


def git_commit(repo: Path = REPO) -> str:
    """``git rev-parse HEAD`` of the checkout egmt runs from (+ a note if it has local
    changes to tracked files), or "unknown" outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True, text=True, timeout=20
        )
        lines = head.stdout.split()
        # an installed egmt may sit inside some other repository: only egmt's own checkout counts
        if head.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != Path(repo).resolve():
            return "unknown (not a git checkout)"
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    commit = lines[1]
    return commit + (" (with uncommitted changes)" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def _display_path(path: Path) -> str:
    """``path`` relative to the checkout when it lies inside it (portable provenance), else absolute."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def file_hash(path: Path, length: int = 12) -> str:
    """The first ``length`` hex digits of the file's SHA-256."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise EGMTError(f"{path}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()[:length]


# --------------------------------------------------------------------------- datasets


def dataset_pairs(data: Path, name: str) -> list[Pair]:
    """The pairs of bundled dataset ``name`` under the data root (its split only, if it has one)."""
    spec = _spec(name)
    root = Path(data) / spec.folder
    if not root.is_dir():
        raise EGMTError(f"{root}: dataset folder not found (give the data root with --data)")
    return find_pairs(root, spec.split)


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise EGMTError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]


def annotation_file(annotations: Path | None, name: str) -> Path | None:
    """``annotations/DATASET.jsonl`` if that file exists, else None (EGMT then runs caption-free)."""
    if annotations is None:
        return None
    path = Path(annotations) / f"{name}.jsonl"
    return path if path.is_file() else None


def link_files(paths: Sequence[Path], folder: Path) -> Path:
    """``folder`` made afresh, holding a link to each of ``paths`` (a copy where links are not allowed)."""
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for path in paths:
        src = Path(path).resolve()
        dst = folder / src.name
        try:
            os.symlink(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    return folder


def source_folders(data: Path, name: str, pairs: Sequence[Pair], work: Path) -> tuple[Path, Path]:
    """Folders of the pairs' sources for :func:`evaluate`: the dataset's own ``ir/`` and ``vi/``
    when it has no split, else ``work/sources/{ir,vi}`` holding links to the split's files only
    (so the other pairs are not reported as missing). Copies where links are not allowed."""
    spec = _spec(name)
    if spec.split is None:
        root = Path(data) / spec.folder
        return root / "ir", root / "vi"
    ir = link_files([p.ir for p in pairs], work / "sources" / "ir")
    return ir, link_files([p.vi for p in pairs], work / "sources" / "vi")


def find_peers(peers: Path | None, name: str) -> dict[str, Path]:
    """``{METHOD: PEERS/METHOD/DATASET}`` for each peer that has images of dataset ``name``
    (methods sorted by name); ``{}`` when ``peers`` is None or not a folder."""
    if peers is None or not Path(peers).is_dir():
        return {}
    found = {}
    for method in sorted(p.name for p in Path(peers).iterdir() if p.is_dir() and not p.name.startswith(".")):
        folder = Path(peers) / method / _spec(name).folder
        if folder.is_dir():
            if method in METHODS:
                raise EGMTError(f"{Path(peers) / method}: a peer may not be named like an egmt method ({method})")
            found[method] = folder
    return found


def peer_folders(peers: dict[str, Path], pairs: Sequence[Pair], work: Path) -> dict[str, Path]:
    """Each peer's images of ``pairs`` only (``work/peers/METHOD``, links), so that a peer is
    scored on exactly the pairs egmt is scored on; a pair the peer lacks is left out (and
    reported missing by :func:`evaluate`)."""
    out = {}
    for method, folder in peers.items():
        files = [folder / f"{p.name}.png" for p in pairs]
        out[method] = link_files([f for f in files if f.is_file()], work / "peers" / method)
    return out


# --------------------------------------------------------------------------- fusion with cache


def _fresh(path: Path, newer_than: float | None) -> bool:
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return False
    return newer_than is None or mtime > newer_than


def fuse_cached(
    job: FuseJob,
    pairs: Sequence[Pair],
    out_dir: Path,
    *,
    newer_than: float | None = None,
    stamp: dict | None = None,
    force: bool = False,
    progress: bool = True,
    desc: str = "fuse",
) -> FuseStats:
    """Fuse ``pairs`` into ``out_dir/STEM.png`` with ``job``, skipping every image that is
    already there and newer than ``newer_than`` (a timestamp), unless ``force`` or the
    ``stamp`` recorded in ``out_dir/fused_with.json`` differs from the given one (another
    checkpoint). A pair that fails is reported and its stale image, if any, removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp_path = out_dir / STAMP_FILE
    redo_all = force
    if stamp is not None and not redo_all:
        try:
            redo_all = json.loads(stamp_path.read_text(encoding="utf-8")) != stamp
        except (OSError, ValueError):
            redo_all = True
    todo = [p for p in pairs if redo_all or not _fresh(out_dir / f"{p.name}.png", newer_than)]
    stats = FuseStats(cached=len(pairs) - len(todo))
    for pair in tqdm(todo, desc=desc, unit="pair", disable=not progress or not todo, dynamic_ncols=True):
        target = out_dir / f"{pair.name}.png"
        try:
            write_image(target, job.fuse_pair(pair).image)
            stats.fused += 1
        except EGMTError as e:
            stats.failures.append(f"{pair.name}: {e}")
            target.unlink(missing_ok=True)
    if stamp is not None:
        write_atomic(stamp_path, json.dumps(stamp, indent=2) + "\n")
    return stats


# --------------------------------------------------------------------------- tables


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
) -> str:
    """One dataset's table in the layout of Tables I-IV: a row per method, the metrics with
    ↑/↓, best of our rows in bold, the paper's EGMT row in italics below (not ranked).
    ``retention`` (method -> thermal-target retention) adds a "Targets kept" column, ``seams``
    (method -> {pair: seam ratio}) a "Seams (worst pair)" column."""
    spec = _spec(name)
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
    text += markdown_table(rows, summary.metrics, values, hib, extra_columns=extra)
    ref = PAPER_FUSION.get(name) if paper else None
    if ref is not None:
        text += reference_row(
            f"EGMT, paper ({ref.table})",
            ref.values,
            summary.metrics,
            5,
            extra=[str(ref.pairs)] + ([""] if retention else []) + ([""] if seams else []),
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


def _seam_cell(per_pair: dict[str, float]) -> str:
    """``mean (worst: PAIR value)`` of a method's seam ratios, "–" when none is defined."""
    defined = {k: v for k, v in per_pair.items() if not math.isnan(v)}
    if not defined:
        return "–"
    worst = max(defined, key=defined.get)
    return f"{sum(defined.values()) / len(defined):.2f} ({worst}: {defined[worst]:.2f})"


def peer_note(peers_root: Path | None, peers: dict[str, Path]) -> str:
    """The fusion caption's sentence on the learned peers' rows (or on their absence)."""
    if peers:
        return (
            f"Learned peers ({', '.join(peers)}): fused images made with their authors' released weights, "
            f"from `{_display_path(peers_root)}` (see its README), scored by the same code on the same pairs as EGMT."
        )
    if peers_root is None:
        return "No learned peers' rows (no peers folder given)."
    if not Path(peers_root).is_dir():
        return f"No learned peers' rows: no peers folder at `{_display_path(peers_root)}` (give one with --peers)."
    return f"No learned peers' rows: no peer in `{_display_path(peers_root)}` has images of this dataset."


def figure_block(name: str, figure: Path, results: Path, pairs: Sequence[Pair], columns: Sequence[str]) -> str:
    """The results file's link to a comparison figure, and what it shows."""
    spec = _spec(name)
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
    spec = _spec(name)
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
    spec = _spec(name)
    split = f" (split {spec.split})" if spec.split else ""
    rows = ["EGMT (full)" if m == "egmt" else m for m in summary.methods]
    values = {r: summary.mean[m] for r, m in zip(rows, summary.methods)}
    counts = {r: str(summary.counts[m]) for r, m in zip(rows, summary.methods)}
    hib = {n: FUSION_METRICS[n].higher_is_better for n in summary.metrics}
    text = f"### {spec.title}{split}: {max(summary.counts.values(), default=0)} of {total_pairs} pairs scored\n\n"
    text += markdown_table(rows, summary.metrics, values, hib, extra_columns={"Pairs": counts})
    checkpoints = "; ".join(
        f"{'EGMT (full)' if m == 'egmt' else m}: `{_display_path(ckpt)}` (sha256 {digest})"
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
    spec = _spec(result.dataset)
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


# --------------------------------------------------------------------------- results file

TITLE = "# EGMT benchmark results"
_BLOCK = re.compile(r"<!-- egmt-benchmark:([\w-]+) -->\n.*?<!-- /egmt-benchmark:\1 -->\n", re.S)
_HEADINGS = {  # the results file's sections, in their order
    "fusion": "## Fusion quality (paper Tables I, II, IV)",
    "figure": "## Comparison figures (paper Fig. 4)",
    "entities": "## Entity effect: own, unrelated and no entities",
    "heatmaps": "## Entity heat maps (paper Fig. 5)",
    "steering": "## Entity steering (validation pairs with boxes)",
    "classification": "## Multi-label classification (paper Table V)",
    "efficiency": "## Efficiency (paper Table VII)",
    "ablation": "## Ablations (paper Table VIII)",
}


def _block_order(key: str) -> tuple[int, int, str]:
    table, _, dataset = key.partition("-")
    sections = list(_HEADINGS)
    t = sections.index(table) if table in sections else len(sections)
    d = list(DATASETS).index(dataset) if dataset in DATASETS else len(DATASETS)
    return t, d, key


def read_blocks(path: Path) -> dict[str, str]:
    """The blocks of an existing results file (``{}`` if there is none); EGMTError for a file
    that `egmt benchmark` did not write, so that it is never overwritten."""
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EGMTError(f"{path}: cannot read the results file ({e})") from None
    if text.strip() and not text.startswith(TITLE):
        raise EGMTError(f"{path}: exists and was not written by `egmt benchmark`; refusing to overwrite it (choose another -o)")
    return {m.group(1): m.group(0) for m in _BLOCK.finditer(text)}


def update_results(path: Path, blocks: dict[str, str], provenance: Provenance) -> None:
    """Write ``path``: a header with this run's provenance, then every block, the new ones
    (``{key: markdown}``, key ``TABLE-DATASET`` or ``efficiency``) replacing old ones of the
    same key and the others kept as they were."""
    merged = read_blocks(path)
    for key, text in blocks.items():
        merged[key] = f"<!-- egmt-benchmark:{key} -->\n{text.rstrip()}\n\n{provenance.run_line()}<!-- /egmt-benchmark:{key} -->\n"
    parts = [
        TITLE + "\n",
        "Made by `egmt benchmark` (regenerate with it; each block below is replaced when its table is recomputed, "
        "and carries its own run line). Latest run:\n",
        provenance.markdown(),
    ]
    heading = None
    for key in sorted(merged, key=_block_order):
        table = key.partition("-")[0]
        if table != heading and table in _HEADINGS:
            parts.append(_HEADINGS[table] + "\n")
            heading = table
        parts.append(merged[key])
    write_atomic(path, "\n".join(parts))


# --------------------------------------------------------------------------- the run


def _check_options(o: BenchmarkOptions) -> None:
    for d in o.datasets:
        _spec(d)
    for m in o.methods:
        if m != "egmt" and m not in BASELINES:
            raise EGMTError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    for t in o.tables:
        if t not in TABLES:
            raise EGMTError(f"unknown table {t!r}; choose from {', '.join(TABLES)}")
    for name in o.ablations:
        if not re.fullmatch(r"[\w .+/()-]+", name) or name in ("egmt", *METHODS):
            raise EGMTError(f"ablation name {name!r}: use letters, digits, spaces and . + / ( ) - (not an egmt method name)")
    folders = [_ablation_folder(n) for n in o.ablations]
    if len(set(folders)) < len(folders):
        raise EGMTError(f"ablation names {', '.join(o.ablations)}: two of them share a folder name; rename one")
    if not o.datasets or not o.methods or not o.tables:
        raise EGMTError("nothing to do: give at least one dataset, method and table")
    if o.figure_pairs < 0:
        raise EGMTError("--figure-pairs must be 0 or more")
    if o.workers is not None and o.workers < 1:
        raise EGMTError("--workers must be at least 1")
    resolve_metric_names(o.metrics)  # unknown names fail before any work
    read_blocks(Path(o.results))  # so does a results file we may not overwrite


def load_fuser(checkpoint: Path | None, device: str) -> tuple[EGMTFuser, Path, str]:
    """The fuser, its checkpoint folder, and the short hash of its weights."""
    if checkpoint is None:
        if not (DEFAULT_CHECKPOINT / MODEL_FILE).is_file():
            raise EGMTError(f"{DEFAULT_CHECKPOINT}: the shipped checkpoint is not there; give one with --checkpoint")
        checkpoint = DEFAULT_CHECKPOINT
    folder = resolve_checkpoint(checkpoint)
    fuser = EGMTFuser.from_pretrained(folder, device=device)
    return fuser, folder, file_hash(folder / MODEL_FILE)


def _egmt_cache_key(
    fuser: EGMTFuser, folder: Path, sha: str, ann_file: Path | None, threshold: float, **extra
) -> tuple[float, dict]:
    """What egmt's fused images depend on: a time they must be newer than (the weights, the
    annotation file) and a stamp (the weights' hash, where the entities came from, the
    caption-free threshold and policy, and ``extra``; not paths: a moved checkpoint is the same)."""
    newer = (folder / MODEL_FILE).stat().st_mtime
    if ann_file is not None:
        newer = max(newer, ann_file.stat().st_mtime)
    stamp = {
        "sha256": sha,
        "annotations": ann_file.name if ann_file else None,
        "threshold": threshold,
        "caption_free": caption_free_policy(fuser.validation)[1],
        **extra,
    }
    return newer, stamp


def _entity_effect_block(
    o: BenchmarkOptions,
    d: str,
    pairs: Sequence[Pair],
    resolver: EntityResolver,
    ann_file: Path,
    fuser: EGMTFuser,
    folder: Path,
    sha: str,
    result: BenchmarkResult,
    emit,
) -> str:
    """Fuse the pairs that have annotation entities under each condition of
    :mod:`egmt.bench.entity_effect` (cached like egmt's images), score them, return the block."""
    own = {
        p.name: list(resolver.annotations[p.name].entities)
        for p in pairs
        if p.name in resolver.annotations and resolver.annotations[p.name].entities
    }
    chosen = [p for p in pairs if p.name in own]
    if not chosen:
        emit(f"{d}: no pair has annotation entities; entity-effect table skipped for it")
        return ""
    work = Path(o.out) / d / "entity-effect"
    use_predicted, policy = caption_free_policy(fuser.validation)
    # Images that another folder already holds are linked, not fused again: "own" is egmt's own
    # output (the same annotation entities, the same cache key), and caption-free fusion that
    # uses no entity is the "none" condition.
    fused_in = {
        "own": Path(o.out) / d / "egmt",
        "unrelated": work / "fused" / "unrelated",
        "shuffled": work / "fused" / "shuffled",
        "none": work / "fused" / "none",
        "caption_free": work / "fused" / ("caption_free" if use_predicted else "none"),
    }
    folders = {}
    for condition in [c for c in CONDITIONS if c != "shuffled" or len(own) >= 2]:  # a shuffle needs two pairs
        target = fused_in[condition]
        if condition == "own":
            job = FuseJob("egmt", fuser, resolver, o.threshold)
            newer, stamp = _egmt_cache_key(fuser, folder, sha, ann_file, o.threshold)
        else:
            job = FuseJob("egmt", fuser, ConditionEntities(condition, own), o.threshold)
            newer, stamp = _egmt_cache_key(
                fuser,
                folder,
                sha,
                ann_file,
                o.threshold,
                condition=target.name,
                unrelated=list(UNRELATED_ENTITIES),
                shuffle_seed=SHUFFLE_SEED,
            )
        # --force re-fuses a folder once per run: not egmt's if the fusion table just did, not "none" twice
        again = (condition == "own" and (d, "egmt") in result.fuse_stats) or (condition == "caption_free" and not use_predicted)
        stats = fuse_cached(
            job,
            chosen,
            target,
            newer_than=newer,
            stamp=stamp,
            force=o.force and not again,
            progress=o.progress,
            desc=f"fuse egmt, {condition} ({d})",
        )
        for line in stats.failures:
            emit(f"{d}/entity-effect/{condition}: {line}")
        result.fuse_stats[(d, f"entity-effect/{condition}")] = stats
        folders[condition] = link_files(
            [target / f"{p.name}.png" for p in chosen if (target / f"{p.name}.png").is_file()], work / condition
        )
    ir_dir = link_files([p.ir for p in chosen], work / "sources" / "ir")
    vi_dir = link_files([p.vi for p in chosen], work / "sources" / "vi")
    summary = evaluate(
        ir_dir,
        vi_dir,
        folders,
        work,
        metrics=list(EFFECT_METRICS),
        workers=o.workers,
        progress=o.progress,
        log=emit,
        cache=work / SCORE_CACHE,
    )
    effect = measure_entity_effect(d, folders, [p.name for p in chosen], summary, policy)
    result.entity_effect[d] = effect
    spec = _spec(d)
    title = spec.title + (f" (split {spec.split})" if spec.split else "")
    return entity_effect_markdown(effect, title, len(pairs))


def _steering_block(o: BenchmarkOptions, fuser: EGMTFuser, boxes: dict[str, list[Box]], result: BenchmarkResult, emit) -> str:
    """The steering table (:mod:`egmt.bench.steering`) on the validation pairs
    (:data:`STEERING_SETS`, never a test set) that have boxes in ``o.boxes``."""
    if not boxes:
        emit(f"steering: no box file at {o.boxes}; steering table skipped")
        return ""
    pairs, own = {}, {}
    for d, split in STEERING_SETS.items():
        root = Path(o.data) / d
        if not root.is_dir():
            emit(f"steering: {root} not found; its validation pairs skipped")
            continue
        pairs[d] = [p for p in find_pairs(root, REPO / split) if p.name in boxes]
        ann = annotation_file(o.annotations, d)
        if ann is not None:
            res = EntityResolver(annotations=ann)
            own.update({p.name: list(res.annotations[p.name].entities) for p in pairs[d] if p.name in res.annotations})
    if not any(pairs.values()):
        emit("steering: no validation pair has boxes; steering table skipped")
        return ""
    result.steering = measure_steering(fuser, pairs, boxes, own, progress=o.progress, log=emit)
    return steering_markdown(result.steering, _display_path(Path(o.boxes)))


def _ablation_folder(name: str) -> str:
    """The folder (under OUT/DATASET/ablation/) of an ablation's images: ``"w/o CA"`` -> ``"w_o_CA"``."""
    return re.sub(r"[^\w.+()-]", "_", name)


def _ablation_blocks(
    o: BenchmarkOptions,
    datasets: Sequence[str],
    pairs: dict[str, list[Pair]],
    ann_files: dict[str, Path | None],
    resolvers: dict[str, EntityResolver],
    fuser: EGMTFuser,
    folder: Path,
    sha: str,
    result: BenchmarkResult,
    emit,
) -> dict[str, str]:
    """Table VIII: every ablation checkpoint fused exactly like EGMT (same pairs, entity sources,
    threshold, cache rule) and scored with EGMT's images by one :func:`evaluate` call per dataset."""
    models = {"egmt": (fuser, folder, sha)}
    for name, path in o.ablations.items():
        models[name] = load_fuser(Path(path), o.device)
    blocks = {}
    for d in datasets:
        work = Path(o.out) / d
        fused_dirs = {}
        for name, (f, ckpt, digest) in models.items():
            target = work / "egmt" if name == "egmt" else work / "ablation" / _ablation_folder(name)
            newer, stamp = _egmt_cache_key(f, ckpt, digest, ann_files[d], o.threshold)
            stats = fuse_cached(
                FuseJob("egmt", f, resolvers[d], o.threshold),
                pairs[d],
                target,
                newer_than=newer,
                stamp=stamp,
                force=o.force,
                progress=o.progress,
                desc=f"fuse {name} ({d})",
            )
            for line in stats.failures:
                emit(f"{d}/{name}: {line}")
            result.fuse_stats[(d, name if name == "egmt" else f"ablation/{name}")] = stats
            fused_dirs[name] = target
        ir_dir, vi_dir = source_folders(o.data, d, pairs[d], work)
        summary = evaluate(
            ir_dir,
            vi_dir,
            fused_dirs,
            work / "ablation",
            metrics=o.metrics,
            workers=o.workers,
            progress=o.progress,
            log=emit,
            cache=work / SCORE_CACHE,
        )
        result.ablation[d] = summary
        blocks[f"ablation-{d}"] = ablation_markdown(d, summary, len(pairs[d]), models, work / "ablation")
    return blocks


def run_benchmark(o: BenchmarkOptions) -> BenchmarkResult:
    """Run every table asked for and write the results file; returns what was computed."""
    _check_options(o)
    emit = o.log or (lambda msg: None)
    datasets = list(dict.fromkeys(o.datasets))
    methods = list(dict.fromkeys(o.methods))
    tables = list(dict.fromkeys(o.tables))
    pairs = {d: dataset_pairs(o.data, d) for d in datasets}
    ann_files = {d: annotation_file(o.annotations, d) for d in datasets}

    need_model = (
        ("fusion" in tables and "egmt" in methods)
        or bool({"classification", "entities", "heatmaps", "steering"} & set(tables))
        or ("efficiency" in tables and "egmt" in methods)
        or bool(o.ablations)
    )
    fuser = folder = sha = None
    if need_model:
        fuser, folder, sha = load_fuser(o.checkpoint, o.device)
    device = fuser.device if fuser is not None else "cpu"
    prov = Provenance(
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        git_commit(),
        _display_path(folder) if folder else None,
        sha,
        machine_description(device),
        f"tables {', '.join(tables)}; datasets {', '.join(datasets)}; methods {', '.join(methods)}",
    )
    result = BenchmarkResult(Path(o.results), prov, pairs={d: len(p) for d, p in pairs.items()})
    resolvers = {d: EntityResolver(annotations=ann_files[d]) for d in datasets}
    blocks: dict[str, str] = {}
    boxes = read_boxes(o.boxes) if o.boxes is not None and Path(o.boxes).is_file() else {}

    if "fusion" in tables:
        for d in datasets:
            work = Path(o.out) / d
            fused_dirs: dict[str, Path] = {}
            for m in methods:
                if m == "egmt":
                    job = FuseJob("egmt", fuser, resolvers[d], o.threshold)
                    newer, stamp = _egmt_cache_key(fuser, folder, sha, ann_files[d], o.threshold)
                else:
                    job, newer, stamp = FuseJob(m), None, None
                stats = fuse_cached(
                    job,
                    pairs[d],
                    work / m,
                    newer_than=newer,
                    stamp=stamp,
                    force=o.force,
                    progress=o.progress,
                    desc=f"fuse {m} ({d})",
                )
                for line in stats.failures:
                    emit(f"{d}/{m}: {line}")
                result.fuse_stats[(d, m)] = stats
                fused_dirs[m] = work / m
            peers = find_peers(o.peers, d)
            # rows: EGMT, the learned peers, the classical baselines
            fused_dirs = {
                **{m: fused_dirs[m] for m in methods if m == "egmt"},
                **peer_folders(peers, pairs[d], work),
                **{m: fused_dirs[m] for m in methods if m != "egmt"},
            }
            ir_dir, vi_dir = source_folders(o.data, d, pairs[d], work)
            summary = evaluate(
                ir_dir,
                vi_dir,
                fused_dirs,
                work,
                metrics=o.metrics,
                workers=o.workers,
                progress=o.progress,
                log=emit,
                cache=work / SCORE_CACHE,
            )
            result.fusion[d] = summary
            note = ""
            if "egmt" in methods:
                free = f"caption-free, entities: {caption_free_policy(fuser.validation)[1]}"
                with_ann = sum(p.name in resolvers[d].annotations for p in pairs[d])
                note = (
                    f"EGMT's entities: {free} (no annotation file)."
                    if ann_files[d] is None
                    else f"EGMT's entities: from `{ann_files[d].name}` for {with_ann} of {len(pairs[d])} pairs"
                    + (f", the others {free}." if with_ann < len(pairs[d]) else ".")
                )
            kept = {m: folder_retention(ir_dir, vi_dir, f)[0] for m, f in fused_dirs.items()}
            seams = {m: folder_seams(ir_dir, vi_dir, f) for m, f in fused_dirs.items()}
            blocks[f"fusion-{d}"] = fusion_markdown(
                d, summary, len(pairs[d]), note, work, peer_note=peer_note(o.peers, peers), retention=kept, seams=seams
            )
            if o.figures is not None and o.figure_pairs > 0:
                columns = [(DISPLAY.get(m, m).replace(" (ours)", ""), f) for m, f in fused_dirs.items()]
                shown = figure_pairs(pairs[d], o.figure_pairs)
                figure = comparison_figure(shown, columns, Path(o.figures) / f"{d}.png")
                blocks[f"figure-{d}"] = figure_block(d, figure, Path(o.results), shown, [c for c, _ in columns])

    if "entities" in tables:
        for d in datasets:
            if ann_files[d] is None:
                emit(
                    f"{d}: no annotation file {d}.jsonl in {o.annotations}; entity-effect table skipped for it (no own entities)"
                )
                continue
            text = _entity_effect_block(o, d, pairs[d], resolvers[d], ann_files[d], fuser, folder, sha, result, emit)
            if text:
                blocks[f"entities-{d}"] = text

    if "heatmaps" in tables:
        for d in datasets:
            if ann_files[d] is None or o.figures is None or o.figure_pairs == 0:
                emit(f"{d}: heat maps need the pairs' own entities ({d}.jsonl in {o.annotations}) and a figures folder; skipped")
                continue
            blocks[f"heatmaps-{d}"] = heatmap_block(
                d,
                fuser,
                figure_pairs(pairs[d], o.figure_pairs),
                resolvers[d],
                Path(o.figures) / f"heatmaps-{d}.png",
                Path(o.results),
                boxes,
            )

    if "steering" in tables:
        text = _steering_block(o, fuser, boxes, result, emit)
        if text:
            blocks["steering"] = text

    if "classification" in tables:
        for d in datasets:
            if ann_files[d] is None:
                emit(f"{d}: no annotation file {d}.jsonl in {o.annotations}; Table V skipped for it (no labels)")
                continue
            cls = classification_table(
                fuser,
                d,
                pairs[d],
                resolvers[d].annotations,
                ann_files[d].parent,
                entities=o.cls_entities,
                single_source=o.cls_single,
                threshold=o.threshold,
                progress=o.progress,
            )
            result.classification[d] = cls
            blocks[f"classification-{d}"] = classification_block(cls)

    if "efficiency" in tables:
        eff = profile(
            pairs,
            methods,
            fuser if "egmt" in methods else None,
            resolvers,
            max_pairs=o.max_time_pairs,
            flop_entities=o.flop_entities,
            threshold=o.threshold,
            progress=o.progress,
        )
        result.efficiency = eff
        titles = {d: DATASETS[d].title for d in datasets}
        blocks["efficiency"] = efficiency_markdown(eff, DISPLAY, titles, PAPER_EFFICIENCY if "egmt" in methods else None)

    if o.ablations:
        blocks.update(_ablation_blocks(o, datasets, pairs, ann_files, resolvers, fuser, folder, sha, result, emit))

    update_results(Path(o.results), blocks, prov)
    return result
