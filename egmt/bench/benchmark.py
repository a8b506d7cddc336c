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

This module holds the options, the result and the run; the parts live beside it:
:mod:`~egmt.bench.provenance` (commit, hashes, run line), :mod:`~egmt.bench.datasets` (test
sets, sources, peers), :mod:`~egmt.bench.fuse_cache` (fusion with the cache),
:mod:`~egmt.bench.blocks` (each table's Markdown) and :mod:`~egmt.bench.results_file` (the
results file's blocks and headings). Their public names are importable from here too.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from egmt.baselines import BASELINES
from egmt.bench.blocks import (
    ablation_markdown,
    classification_block,
    figure_block,
    fusion_markdown,
    heatmap_block,
    peer_note,
)
from egmt.bench.classification import ClassificationResult, classification_table
from egmt.bench.datasets import (
    DATASETS,
    DISPLAY,
    METHODS,
    DatasetSpec,
    annotation_file,
    dataset_pairs,
    dataset_spec,
    find_peers,
    link_files,
    peer_folders,
    source_folders,
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
from egmt.bench.figures import comparison_figure, figure_pairs
from egmt.bench.fuse_cache import SCORE_CACHE, STAMP_FILE, FuseStats, egmt_cache_key, fuse_cached
from egmt.bench.paper import PAPER_EFFICIENCY
from egmt.bench.profile import EfficiencyResult, efficiency_markdown, machine_description, profile
from egmt.bench.provenance import REPO, Provenance, display_path, file_hash, git_commit
from egmt.bench.results_file import TITLE, read_blocks, update_results
from egmt.bench.retention import folder_checks
from egmt.bench.steering import STEERING_SETS, SteeringResult, measure_steering, steering_markdown
from egmt.data.boxes import Box, read_boxes
from egmt.data.pairs import Pair, find_pairs
from egmt.errors import EGMTError
from egmt.infer.entities import EntityResolver
from egmt.infer.fuser import EGMTFuser, caption_free_policy
from egmt.infer.run import DEFAULT_CHECKPOINT, FuseJob
from egmt.metrics import resolve_metric_names
from egmt.train.checkpoint import MODEL_FILE, resolve_checkpoint

__all__ = [
    "DATASETS",
    "DEFAULT_ANNOTATIONS",
    "DEFAULT_BOXES",
    "DEFAULT_CHECKPOINT",
    "DEFAULT_DATA",
    "DEFAULT_FIGURES",
    "DEFAULT_OUT",
    "DEFAULT_PEERS",
    "DEFAULT_RESULTS",
    "DISPLAY",
    "METHODS",
    "REPO",
    "SCORE_CACHE",
    "STAMP_FILE",
    "TABLES",
    "TITLE",
    "BenchmarkOptions",
    "BenchmarkResult",
    "DatasetSpec",
    "EntityResolver",
    "FuseStats",
    "Provenance",
    "ablation_markdown",
    "annotation_file",
    "classification_block",
    "dataset_pairs",
    "figure_block",
    "figure_pairs",
    "file_hash",
    "find_peers",
    "fuse_cached",
    "fusion_markdown",
    "git_commit",
    "heatmap_block",
    "link_files",
    "load_fuser",
    "peer_folders",
    "peer_note",
    "read_blocks",
    "run_benchmark",
    "source_folders",
    "update_results",
]

DEFAULT_ANNOTATIONS = REPO / "annotations"  # the checkout's bundled annotation files
DEFAULT_DATA = Path("../shared/data")
DEFAULT_OUT = Path("runs/benchmark")
DEFAULT_RESULTS = Path("docs/results.md")
DEFAULT_PEERS = Path("../shared/peers")
DEFAULT_FIGURES = Path("docs/figures")
DEFAULT_BOXES = DEFAULT_ANNOTATIONS / "boxes-val.json"  # hand-drawn boxes on validation pairs (steering table)
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
class BenchmarkResult:
    results: Path
    provenance: Provenance
    fusion: dict[str, EvaluationSummary] = field(default_factory=dict)
    fuse_stats: dict[tuple[str, str], FuseStats] = field(default_factory=dict)
    classification: dict[str, ClassificationResult] = field(default_factory=dict)
    efficiency: EfficiencyResult | None = None
    entity_effect: dict[str, EntityEffect] = field(default_factory=dict)
    steering: SteeringResult | None = None
    ablation: dict[str, EvaluationSummary] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)  # dataset -> pairs in its split


# --------------------------------------------------------------------------- the run


def _check_options(o: BenchmarkOptions) -> None:
    for d in o.datasets:
        dataset_spec(d)
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


def load_fuser(checkpoint: Path | None, device: str, progress: bool = True) -> tuple[EGMTFuser, Path, str]:
    """The fuser, its checkpoint folder, and the short hash of its weights."""
    if checkpoint is None:
        if not (DEFAULT_CHECKPOINT / MODEL_FILE).is_file():
            raise EGMTError(f"{DEFAULT_CHECKPOINT}: the shipped checkpoint is not there; give one with --checkpoint")
        checkpoint = DEFAULT_CHECKPOINT
    folder = resolve_checkpoint(checkpoint)
    fuser = EGMTFuser.from_pretrained(folder, device=device, progress=progress)
    return fuser, folder, file_hash(folder / MODEL_FILE)


@dataclass
class _Run:
    """What each table's step reads (the options, the pairs and entity sources of every dataset,
    the model, the boxes) and where it records what it computed (``result``, ``emit``)."""

    o: BenchmarkOptions
    datasets: list[str]
    methods: list[str]
    pairs: dict[str, list[Pair]]
    ann_files: dict[str, Path | None]
    resolvers: dict[str, EntityResolver]
    fuser: EGMTFuser | None
    folder: Path | None
    sha: str | None
    boxes: dict[str, list[Box]]
    result: BenchmarkResult
    emit: Callable[[str], None]

    def model(self) -> tuple[EGMTFuser, Path, str]:
        """The checkpoint's fuser, folder and weights hash: :func:`run_benchmark` loads them for
        every table that uses the model."""
        assert self.fuser is not None and self.folder is not None and self.sha is not None, "no checkpoint loaded"
        return self.fuser, self.folder, self.sha

    def fuse(
        self,
        d: str,
        key: str,
        job: FuseJob,
        pairs: Sequence[Pair],
        target: Path,
        newer_than: float | None,
        stamp: dict | None,
        force: bool,
        desc: str,
        label: str | None = None,
    ) -> FuseStats:
        """:func:`fuse_cached`, then its failures logged (as ``d/label``) and its stats kept under ``(d, key)``."""
        stats = fuse_cached(
            job, pairs, target, newer_than=newer_than, stamp=stamp, force=force, progress=self.o.progress, desc=desc
        )
        for line in stats.failures:
            self.emit(f"{d}/{label or key}: {line}")
        self.result.fuse_stats[(d, key)] = stats
        return stats

    def score(
        self, ir_dir: Path, vi_dir: Path, fused_dirs: dict[str, Path], out: Path, metrics, cache_dir: Path
    ) -> EvaluationSummary:
        """:func:`evaluate` with the run's workers, progress and log, scores cached in ``cache_dir/scores.csv``."""
        o = self.o
        return evaluate(
            ir_dir,
            vi_dir,
            fused_dirs,
            out,
            metrics=metrics,
            workers=o.workers,
            progress=o.progress,
            log=self.emit,
            cache=cache_dir / SCORE_CACHE,
        )


def _fusion_blocks(r: _Run) -> dict[str, str]:
    """Tables I, II, IV: each dataset fused by every method (and the peers' images linked), scored
    by one :func:`evaluate` call, with its comparison figure."""
    o, blocks = r.o, {}
    for d in r.datasets:
        work = Path(o.out) / d
        fused_dirs: dict[str, Path] = {}
        for m in r.methods:
            if m == "egmt":
                fuser, folder, sha = r.model()
                job = FuseJob("egmt", fuser, r.resolvers[d], o.threshold, o.progress)
                newer, stamp = egmt_cache_key(fuser, folder, sha, r.ann_files[d], o.threshold)
            else:
                job, newer, stamp = FuseJob(m, progress=o.progress), None, None
            r.fuse(d, m, job, r.pairs[d], work / m, newer, stamp, o.force, f"fuse {m} ({d})")
            fused_dirs[m] = work / m
        peers = find_peers(o.peers, d)
        # rows: EGMT, the learned peers, the classical baselines
        fused_dirs = {
            **{m: fused_dirs[m] for m in r.methods if m == "egmt"},
            **peer_folders(peers, r.pairs[d], work),
            **{m: fused_dirs[m] for m in r.methods if m != "egmt"},
        }
        ir_dir, vi_dir = source_folders(o.data, d, r.pairs[d], work)
        summary = r.score(ir_dir, vi_dir, fused_dirs, work, o.metrics, work)
        r.result.fusion[d] = summary
        note = ""
        if "egmt" in r.methods:
            ann_file, total = r.ann_files[d], len(r.pairs[d])
            free = f"caption-free, entities: {caption_free_policy(r.model()[0].validation)[1]}"
            with_ann = sum(p.name in r.resolvers[d].annotations for p in r.pairs[d])
            note = (
                f"EGMT's entities: {free} (no annotation file)."
                if ann_file is None
                else f"EGMT's entities: from `{ann_file.name}` for {with_ann} of {total} pairs"
                + (f", the others {free}." if with_ann < total else ".")
            )
        checks = folder_checks(ir_dir, vi_dir, fused_dirs)
        blocks[f"fusion-{d}"] = fusion_markdown(
            d,
            summary,
            len(r.pairs[d]),
            note,
            work,
            peer_note=peer_note(o.peers, peers),
            retention={m: c.retention for m, c in checks.items()},
            seams={m: c.seams for m, c in checks.items()},
            glow={m: c.glow for m, c in checks.items()},
        )
        if o.figures is not None and o.figure_pairs > 0:
            columns = [(DISPLAY.get(m, m).replace(" (ours)", ""), f) for m, f in fused_dirs.items()]
            shown = figure_pairs(r.pairs[d], o.figure_pairs)
            figure = comparison_figure(shown, columns, Path(o.figures) / f"{d}.png")
            blocks[f"figure-{d}"] = figure_block(d, figure, Path(o.results), shown, [c for c, _ in columns])
    return blocks


def _entity_blocks(r: _Run) -> dict[str, str]:
    """The entity-effect table of each dataset that has an annotation file."""
    blocks = {}
    for d in r.datasets:
        ann_file = r.ann_files[d]
        if ann_file is None:
            r.emit(
                f"{d}: no annotation file {d}.jsonl in {r.o.annotations}; entity-effect table skipped for it (no own entities)"
            )
            continue
        text = _entity_effect_block(r, d, ann_file)
        if text:
            blocks[f"entities-{d}"] = text
    return blocks


def _entity_effect_block(r: _Run, d: str, ann_file: Path) -> str:
    """Fuse the pairs that have annotation entities under each condition of
    :mod:`egmt.bench.entity_effect` (cached like egmt's images), score them, return the block."""
    o, pairs, resolver = r.o, r.pairs[d], r.resolvers[d]
    fuser, folder, sha = r.model()
    own = {
        p.name: list(resolver.annotations[p.name].entities)
        for p in pairs
        if p.name in resolver.annotations and resolver.annotations[p.name].entities
    }
    chosen = [p for p in pairs if p.name in own]
    if not chosen:
        r.emit(f"{d}: no pair has annotation entities; entity-effect table skipped for it")
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
            job = FuseJob("egmt", fuser, resolver, o.threshold, o.progress)
            newer, stamp = egmt_cache_key(fuser, folder, sha, ann_file, o.threshold)
        else:
            job = FuseJob("egmt", fuser, ConditionEntities(condition, own), o.threshold, o.progress)
            newer, stamp = egmt_cache_key(
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
        again = (condition == "own" and (d, "egmt") in r.result.fuse_stats) or (condition == "caption_free" and not use_predicted)
        force = o.force and not again
        r.fuse(d, f"entity-effect/{condition}", job, chosen, target, newer, stamp, force, f"fuse egmt, {condition} ({d})")
        folders[condition] = link_files(
            [target / f"{p.name}.png" for p in chosen if (target / f"{p.name}.png").is_file()], work / condition
        )
    ir_dir = link_files([p.ir for p in chosen], work / "sources" / "ir")
    vi_dir = link_files([p.vi for p in chosen], work / "sources" / "vi")
    summary = r.score(ir_dir, vi_dir, folders, work, list(EFFECT_METRICS), work)
    effect = measure_entity_effect(d, folders, [p.name for p in chosen], summary, policy)
    r.result.entity_effect[d] = effect
    spec = dataset_spec(d)
    title = spec.title + (f" (split {spec.split})" if spec.split else "")
    return entity_effect_markdown(effect, title, len(pairs))


def _heatmap_blocks(r: _Run) -> dict[str, str]:
    """Fig. 5: each dataset's entity heat maps, on the comparison figures' pairs."""
    o, blocks = r.o, {}
    for d in r.datasets:
        if r.ann_files[d] is None or o.figures is None or o.figure_pairs == 0:
            r.emit(f"{d}: heat maps need the pairs' own entities ({d}.jsonl in {o.annotations}) and a figures folder; skipped")
            continue
        blocks[f"heatmaps-{d}"] = heatmap_block(
            d,
            r.model()[0],
            figure_pairs(r.pairs[d], o.figure_pairs),
            r.resolvers[d],
            Path(o.figures) / f"heatmaps-{d}.png",
            Path(o.results),
            r.boxes,
        )
    return blocks


def _steering_blocks(r: _Run) -> dict[str, str]:
    """The steering table (:mod:`egmt.bench.steering`) on the validation pairs
    (:data:`STEERING_SETS`, never a test set) that have boxes in ``o.boxes``."""
    o, boxes = r.o, r.boxes
    if not boxes or o.boxes is None:  # (boxes come from the file o.boxes)
        r.emit(f"steering: no box file at {o.boxes}; steering table skipped")
        return {}
    pairs, own = {}, {}
    for d, split in STEERING_SETS.items():
        root = Path(o.data) / d
        if not root.is_dir():
            r.emit(f"steering: {root} not found; its validation pairs skipped")
            continue
        pairs[d] = [p for p in find_pairs(root, REPO / split) if p.name in boxes]
        ann = annotation_file(o.annotations, d)
        if ann is not None:
            res = EntityResolver(annotations=ann)
            own.update({p.name: list(res.annotations[p.name].entities) for p in pairs[d] if p.name in res.annotations})
    if not any(pairs.values()):
        r.emit("steering: no validation pair has boxes; steering table skipped")
        return {}
    r.result.steering = measure_steering(r.model()[0], pairs, boxes, own, progress=o.progress, log=r.emit)
    text = steering_markdown(r.result.steering, display_path(Path(o.boxes)))
    return {"steering": text} if text else {}


def _classification_blocks(r: _Run) -> dict[str, str]:
    """Table V for each dataset that has an annotation file (its labels)."""
    o, blocks = r.o, {}
    for d in r.datasets:
        ann_file = r.ann_files[d]
        if ann_file is None:
            r.emit(f"{d}: no annotation file {d}.jsonl in {o.annotations}; Table V skipped for it (no labels)")
            continue
        cls = classification_table(
            r.model()[0],
            d,
            r.pairs[d],
            r.resolvers[d].annotations,
            ann_file.parent,
            entities=o.cls_entities,
            single_source=o.cls_single,
            threshold=o.threshold,
            progress=o.progress,
        )
        r.result.classification[d] = cls
        blocks[f"classification-{d}"] = classification_block(cls)
    return blocks


def _efficiency_blocks(r: _Run) -> dict[str, str]:
    """Table VII: every method's time per pair, EGMT's parameters and FLOPs."""
    o, egmt = r.o, "egmt" in r.methods
    eff = profile(
        r.pairs,
        r.methods,
        r.fuser if egmt else None,
        r.resolvers,
        max_pairs=o.max_time_pairs,
        flop_entities=o.flop_entities,
        threshold=o.threshold,
        progress=o.progress,
    )
    r.result.efficiency = eff
    titles = {d: DATASETS[d].title for d in r.datasets}
    return {"efficiency": efficiency_markdown(eff, DISPLAY, titles, PAPER_EFFICIENCY if egmt else None)}


def _ablation_folder(name: str) -> str:
    """The folder (under OUT/DATASET/ablation/) of an ablation's images: ``"w/o CA"`` -> ``"w_o_CA"``."""
    return re.sub(r"[^\w.+()-]", "_", name)


def _ablation_blocks(r: _Run) -> dict[str, str]:
    """Table VIII: every ablation checkpoint fused exactly like EGMT (same pairs, entity sources,
    threshold, cache rule) and scored with EGMT's images by one :func:`evaluate` call per dataset."""
    o = r.o
    models = {"egmt": r.model()}
    for name, path in o.ablations.items():
        models[name] = load_fuser(Path(path), o.device, o.progress)
    blocks = {}
    for d in r.datasets:
        work = Path(o.out) / d
        fused_dirs = {}
        for name, (f, ckpt, digest) in models.items():
            target = work / "egmt" if name == "egmt" else work / "ablation" / _ablation_folder(name)
            newer, stamp = egmt_cache_key(f, ckpt, digest, r.ann_files[d], o.threshold)
            tokens = f.model.config.text_tokens  # a w/o ENT checkpoint reads the captions
            resolver = r.resolvers[d] if tokens == "entities" else EntityResolver(annotations=r.ann_files[d], tokens=tokens)
            job = FuseJob("egmt", f, resolver, o.threshold, o.progress)
            key = name if name == "egmt" else f"ablation/{name}"
            r.fuse(d, key, job, r.pairs[d], target, newer, stamp, o.force, f"fuse {name} ({d})", label=name)
            fused_dirs[name] = target
        ir_dir, vi_dir = source_folders(o.data, d, r.pairs[d], work)
        summary = r.score(ir_dir, vi_dir, fused_dirs, work / "ablation", o.metrics, work)
        r.result.ablation[d] = summary
        blocks[f"ablation-{d}"] = ablation_markdown(d, summary, len(r.pairs[d]), models, work / "ablation")
    return blocks


# Each table's step, in the order a run computes them (the entity-effect table reuses the images
# the fusion table has just made); Table VIII runs last, when ablation checkpoints are given.
_TABLE_STEPS: dict[str, Callable[[_Run], dict[str, str]]] = {
    "fusion": _fusion_blocks,
    "entities": _entity_blocks,
    "heatmaps": _heatmap_blocks,
    "steering": _steering_blocks,
    "classification": _classification_blocks,
    "efficiency": _efficiency_blocks,
}
assert set(_TABLE_STEPS) == set(TABLES)


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
        ("egmt" in methods and bool({"fusion", "efficiency"} & set(tables)))
        or bool({"classification", "entities", "heatmaps", "steering"} & set(tables))
        or bool(o.ablations)
    )
    fuser = folder = sha = None
    if need_model:
        fuser, folder, sha = load_fuser(o.checkpoint, o.device, o.progress)
    device = fuser.device if fuser is not None else "cpu"
    prov = Provenance(
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        git_commit(),
        display_path(folder) if folder else None,
        sha,
        machine_description(device),
        f"tables {', '.join(tables)}; datasets {', '.join(datasets)}; methods {', '.join(methods)}",
        fuser.model.config.entity_guidance if fuser is not None else 0.0,
    )
    result = BenchmarkResult(Path(o.results), prov, pairs={d: len(p) for d, p in pairs.items()})
    resolvers = {d: EntityResolver(annotations=ann_files[d]) for d in datasets}
    boxes = read_boxes(o.boxes) if o.boxes is not None and Path(o.boxes).is_file() else {}
    run = _Run(o, datasets, methods, pairs, ann_files, resolvers, fuser, folder, sha, boxes, result, emit)

    blocks: dict[str, str] = {}
    for table, step in _TABLE_STEPS.items():
        if table in tables:
            blocks.update(step(run))
    if o.ablations:
        blocks.update(_ablation_blocks(run))

    update_results(Path(o.results), blocks, prov)
    return result
