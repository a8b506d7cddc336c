"""Do the entities steer the fusion? Three measures on pairs with hand-drawn entity boxes.

Whether entities are given at all can change the output a little; these ask whether *which*
entities are given matters, and *where* (boxes: :mod:`egmt.data.boxes`, validation pairs only):

* **own vs shuffled**: each pair fused with its own entities and with another pair's (a
  derangement within the set, fixed seed: :func:`egmt.bench.entity_effect.derangement`); the
  mean |Δ| between the two outputs (grey levels of 255) and the fusion scores of both.
* **pointing game** (heat maps, :mod:`egmt.infer.heatmaps`): the pair is fused with its own
  entities plus any boxed class they lack; for each boxed class, does the maximum of that
  class's attention map (the sum of the maps of its entities) fall inside a box of the class?
  Chance is the share of the image the boxes cover (a map with its maximum anywhere at random).
* **steering**: the pair fused with ``[entity]`` and with ``[contrast]`` (:data:`CONTRASTS`: the
  first not boxed in the pair, e.g. person against tree); the share of |Δ| that falls inside the
  entity's boxes, against the share of the image they cover. A share at the area share means
  the entity changes the image evenly, not where the entity is.

:func:`measure_steering` runs them with a fuser (about 3 + 2 x classes forward passes per pair,
each pair's two images decoded once for all of them) and :func:`steering_markdown` writes the
table of ``egmt benchmark --tables steering``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from egmt.bench.entity_effect import SHUFFLE_SEED, derangement
from egmt.bench.evaluate import grey_u8
from egmt.data.boxes import Box, box_mask
from egmt.data.io import read_image
from egmt.data.pairs import MIN_FUSION_SIZE, Pair, pair_from_arrays
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.infer.heatmaps import entity_heatmaps
from egmt.metrics import compute_fusion_metrics
from egmt.text.labels import Vocabulary

# The validation sets whose pairs have boxes (annotations/boxes-val.json): dataset -> split file.
STEERING_SETS: dict[str, str] = {"roadscene": "splits/roadscene-val.txt", "m3svd": "splits/m3svd-val.txt"}
CONTRASTS: tuple[str, ...] = ("tree", "road", "sky")  # the steering contrast: the first not boxed in the pair
SCORE_METRICS: tuple[str, ...] = ("MI", "Qabf")
ERRORS_SHOWN = 5  # undefined scores named in the table's note (all of them in the log)


def pointing_game(weights: np.ndarray, mask: np.ndarray) -> float:
    """1 if the maximum of ``weights`` (``[H, W]``) lies inside ``mask``, 0 if outside; where
    several pixels share the maximum, the share of them inside (the expected hit of a random
    tie-break, so a flat map scores the mask's area share). NaN for an empty mask."""
    if weights.shape != mask.shape:
        raise EGMTError(f"pointing game: map {weights.shape} and mask {mask.shape} differ in size")
    if not mask.any():
        return math.nan
    top = weights == weights.max()
    return float(mask[top].mean())


def steering_share(delta: np.ndarray, mask: np.ndarray) -> float:
    """The share of ``sum |delta|`` that falls inside ``mask``; NaN where ``delta`` is all zero."""
    if delta.shape != mask.shape:
        raise EGMTError(f"steering share: difference {delta.shape} and mask {mask.shape} differ in size")
    d = np.abs(delta.astype(np.float64))
    total = d.sum()
    return float(d[mask].sum() / total) if total > 0 else math.nan


def class_of(entity: str, vocabulary: Vocabulary | None) -> str:
    """The box class an entity names: its vocabulary class, else the entity in lower case."""
    c = vocabulary.canonical(entity) if vocabulary is not None else None
    return c or entity.strip().lower()


def boxes_for_entities(entities: Sequence[str], boxes: Sequence[Box], vocabulary: Vocabulary | None) -> dict[str, list[Box]]:
    """``{entity: its boxes}`` for each of ``entities`` whose class (:func:`class_of`) has boxes."""
    out = {}
    for e in entities:
        mine = [b for b in boxes if b.entity == class_of(e, vocabulary)]
        if mine:
            out[e] = mine
    return out


def contrast_for(boxed: set[str]) -> str:
    """The steering contrast of a pair whose boxes hold the classes ``boxed``."""
    contrast = next((c for c in CONTRASTS if c not in boxed), None)
    if contrast is None:  # the pair is then listed as skipped, the run goes on
        raise EGMTError(f"no steering contrast: {', '.join(CONTRASTS)} are all boxed")
    return contrast


@dataclass
class EntityRecord:
    """One (pair, boxed class): its boxes' area share, the pointing-game hit, the steering share
    of |Δ| (``[class]`` against ``[contrast]``) and that Δ's mean in grey levels."""

    dataset: str
    pair: str
    entity: str
    contrast: str
    area: float
    hit: float
    share: float
    delta: float


@dataclass
class PairRecord:
    """One pair fused with its own entities and with another pair's: mean |Δ| and the scores;
    ``errors``: each score that is undefined for these images (NaN in ``own`` / ``shuffled``,
    left out of the table's means), as ``"own MI: why"``."""

    dataset: str
    pair: str
    donor: str
    delta: float
    own: dict[str, float]
    shuffled: dict[str, float]
    errors: list[str] = field(default_factory=list)


@dataclass
class SteeringResult:
    entities: list[EntityRecord] = field(default_factory=list)
    pairs: list[PairRecord] = field(default_factory=list)
    seed: int = SHUFFLE_SEED
    skipped: list[str] = field(default_factory=list)  # pairs left out, with the reason


def _scores(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, label: str, errors: list[str]) -> dict[str, float]:
    """:data:`SCORE_METRICS` of one fused image; an undefined one is NaN and appended to ``errors``
    as ``"LABEL NAME: why"``."""
    why: dict[str, str] = {}
    scores = compute_fusion_metrics(ir, vi, fused, list(SCORE_METRICS), threads=1, errors=why)
    errors += [f"{label} {name}: {reason}" for name, reason in why.items()]
    return scores


def read_pair_images(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """``pair``'s infrared and visible images, decoded once (:func:`egmt.data.io.read_image`)
    for every fusion of the pair; their sizes are checked here, so an error names the files."""
    ir, vi = read_image(pair.ir), read_image(pair.vi)
    pair_from_arrays(pair.name, ir, vi, pair.ir, pair.vi, min_size=MIN_FUSION_SIZE)
    return ir, vi


def measure_pair_entities(
    fuser: EGMTFuser,
    dataset: str,
    pair: Pair,
    boxes: Sequence[Box],
    own: Sequence[str],
    images: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[EntityRecord]:
    """The pointing game and the steering share of every boxed class of one pair (``images``:
    the pair's decoded images, :func:`read_pair_images`; read from its files when None)."""
    ir, vi = images if images is not None else read_pair_images(pair)
    vocab = fuser.vocabulary
    classes = list(dict.fromkeys(b.entity for b in boxes))
    have = {class_of(e, vocab) for e in own}
    entities = list(dict.fromkeys([*own, *(c for c in classes if c not in have)]))
    maps = entity_heatmaps(fuser, ir, vi, entities)
    shape = maps.maps.shape[1:]
    contrast = contrast_for(set(classes))
    base = grey_u8(fuser(ir, vi, entities=[contrast]).image).astype(np.int16)
    records = []
    for c in classes:
        mask = box_mask([b for b in boxes if b.entity == c], shape)
        weights = sum(m for e, m in zip(maps.entities, maps.maps) if class_of(e, vocab) == c)
        delta = grey_u8(fuser(ir, vi, entities=[c]).image).astype(np.int16) - base
        records.append(
            EntityRecord(
                dataset,
                pair.name,
                c,
                contrast,
                float(mask.mean()),
                pointing_game(weights, mask),
                steering_share(delta, mask),
                float(np.abs(delta).mean()),
            )
        )
    return records


def measure_steering(
    fuser: EGMTFuser,
    pairs: Mapping[str, Sequence[Pair]],
    boxes: dict[str, list[Box]],
    own: dict[str, list[str]],
    seed: int = SHUFFLE_SEED,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> SteeringResult:
    """All three measures on ``pairs`` (``{dataset: pairs}``) that have boxes; ``own`` gives each
    pair's own entities (a pair without any is measured with its boxed classes only and left
    out of own vs shuffled). The shuffle is a derangement within each dataset."""
    result = SteeringResult(seed=seed)
    for dataset, chosen in pairs.items():
        chosen = [p for p in chosen if boxes.get(p.name)]
        with_own = {p.name: own[p.name] for p in chosen if own.get(p.name)}
        donors = derangement(with_own, seed) if len(with_own) >= 2 else {}
        for pair in tqdm(chosen, desc=f"steering ({dataset})", unit="pair", disable=not progress, dynamic_ncols=True):
            try:
                ir, vi = read_pair_images(pair)  # decoded once for all the pair's fusions
                result.entities += measure_pair_entities(
                    fuser, dataset, pair, boxes[pair.name], own.get(pair.name, []), images=(ir, vi)
                )
                if pair.name in donors:
                    a = grey_u8(fuser(ir, vi, entities=own[pair.name]).image)
                    b = grey_u8(fuser(ir, vi, entities=own[donors[pair.name]]).image)
                    delta = float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
                    ir_u8, vi_u8 = grey_u8(ir), grey_u8(vi)  # as read_grey_u8 reads the files
                    errors: list[str] = []
                    own_scores = _scores(ir_u8, vi_u8, a, "own", errors)
                    shuffled_scores = _scores(ir_u8, vi_u8, b, "shuffled", errors)
                    result.pairs.append(
                        PairRecord(dataset, pair.name, donors[pair.name], delta, own_scores, shuffled_scores, errors)
                    )
                    if log:
                        for e in errors:
                            log(f"steering: {pair.name}: {e} (score undefined, left out of the means)")
            except EGMTError as e:
                result.skipped.append(f"{pair.name}: {e}")
                if log:
                    log(f"steering: {pair.name}: {e}")
    return result


def _mean(values: Sequence[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _cell(v: float, digits: int = 2) -> str:
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def steering_markdown(result: SteeringResult, boxes_file: str) -> str:
    """The steering block: per boxed class (and all), the boxes' area share (the chance of the
    pointing game and the steering share of an even Δ), the pointing game and the steering share;
    then own vs shuffled per validation set, with a count of the scores that were undefined."""
    recs = result.entities
    counts: dict[str, int] = {}
    for r in recs:
        counts[r.entity] = counts.get(r.entity, 0) + 1
    groups = [(c, [r for r in recs if r.entity == c]) for c in sorted(counts, key=lambda c: (-counts[c], c))]
    groups.append(("all", recs))
    text = f"### Validation pairs with boxes: {len({(r.dataset, r.pair) for r in recs})} pairs, {len(recs)} (pair, entity)\n\n"
    text += (
        "| Entity | (pair, entity) | Box area share (chance) | Pointing game | Steering share | Lift | mean abs Δ |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
    )
    for name, rs in groups:
        hit, area, share = _mean([r.hit for r in rs]), _mean([r.area for r in rs]), _mean([r.share for r in rs])
        lift = share / area if area and not math.isnan(share) else math.nan
        text += (
            f"| {name} | {len(rs)} | {_cell(area)} | {_cell(hit)} | {_cell(share)} | "
            f"{_cell(lift)} | {_cell(_mean([r.delta for r in rs]), 3)} |\n"
        )
    text += (
        f"\nBoxes: `{boxes_file}` (drawn by hand on validation pairs; never used for training or choosing). "
        "Box area share: the mean share of the image the entity's boxes cover, what both measures are read against: "
        "the pointing game's chance (a maximum anywhere at random) and the steering share of a Δ spread evenly. "
        "Pointing game: the share of (pair, entity) whose attention map (CGHA eq. 5, `egmt heatmap`; the pair fused "
        "with its own entities plus any boxed class they lack, the maps of entities of one class summed) has its "
        "maximum inside a box of that entity. Steering share: "
        f"the pair fused with `[entity]` and with `[contrast]` (the first of {', '.join(CONTRASTS)} not boxed in the "
        "pair), the share of the summed |Δ| inside the entity's boxes; lift = steering share / box area share "
        "(1: no steering). mean abs Δ: of that difference, grey levels of 255.\n"
    )
    no_share = sum(math.isnan(r.share) for r in recs)
    if no_share:
        text += (
            f"\n{no_share} of {len(recs)} (pair, entity) changed no pixel (Δ = 0 everywhere): they have no steering "
            "share and are left out of its mean (and of the lift).\n"
        )
    if result.pairs:
        text += (
            "\n| Validation set | Pairs | mean abs Δ own vs shuffled | "
            + " | ".join(f"{m} own | {m} shuffled" for m in SCORE_METRICS)
            + " |\n"
            + "|---|---:|---:|"
            + "---:|---:|" * len(SCORE_METRICS)
            + "\n"
        )
        for dataset in dict.fromkeys(r.dataset for r in result.pairs):
            ps = [r for r in result.pairs if r.dataset == dataset]
            cells = " | ".join(
                f"{_cell(_mean([r.own[m] for r in ps]), 3)} | {_cell(_mean([r.shuffled[m] for r in ps]), 3)}"
                for m in SCORE_METRICS
            )
            text += f"| {dataset} | {len(ps)} | {_cell(_mean([r.delta for r in ps]), 3)} | {cells} |\n"
        text += (
            f"\nOwn vs shuffled: each pair fused with its own annotation entities and with another pair's of the "
            f"same set (a derangement, seed {result.seed}); mean over pairs of the mean |Δ| (grey levels) and of "
            "the scores.\n"
        )
        errors = [f"{r.dataset} {r.pair} {e}" for r in result.pairs for e in r.errors]
        if errors:
            shown = "; ".join(errors[:ERRORS_SHOWN]) + (
                f"; and {len(errors) - ERRORS_SHOWN} more" if len(errors) > ERRORS_SHOWN else ""
            )
            text += (
                f"\n**{len(errors)} score(s) undefined** for their images, left out of the means above (see the log): {shown}.\n"
            )
    if result.skipped:
        text += f"\n{len(result.skipped)} pair(s) could not be measured and were left out (see the log).\n"
    return text
