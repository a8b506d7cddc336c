"""How much the entities matter: EGMT's output and scores with the pair's own entities, with
unrelated entities, with none, and caption-free (one table per test set in the results file).

Each pair is fused four ways (by :mod:`egmt.bench.benchmark`, into one folder per condition):

* ``own``: the pair's annotation entities (the reference);
* ``unrelated``: :data:`UNRELATED_ENTITIES` (entities absent from these scenes and from the
  label vocabulary), less any of the pair's own, encoded by the checkpoint's entity bank
  (its encoder adds the ones it lacks);
* ``shuffled``: another pair's own entities, by a derangement of the set's pairs with the
  fixed seed :data:`SHUFFLE_SEED` (:func:`derangement`): plausible entities of the same kind of
  scene, only not this one's, so it asks whether *which* entities matter, not only *whether*;
* ``none``: no entity (E = 0: the CGHA stage is skipped);
* ``caption_free``: no entity given: the fuser's caption-free policy (its classifier's
  entities where the checkpoint's validation allows them, else E = 0).

This module measures the folders: per pair, the 8-bit grey output's absolute difference to
the ``own`` output in grey levels of 255 (mean over pixels, and max), and the scores of
:data:`EFFECT_METRICS` from :func:`egmt.bench.evaluate.evaluate`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from egmt.bench.evaluate import EvaluationSummary
from egmt.bench.evaluate import read_grey_u8
from egmt.bench.tables import markdown_table
from egmt.errors import EGMTError
from egmt.metrics import FUSION_METRICS

UNRELATED_ENTITIES: tuple[str, ...] = ("boat", "sky", "water", "dog", "ocean")
EFFECT_METRICS: tuple[str, ...] = ("MI", "Qabf", "FMI_w", "SSIM")
CONDITIONS: tuple[str, ...] = ("own", "unrelated", "shuffled", "none", "caption_free")
SHUFFLE_SEED = 0
TITLES = {
    "own": "Own entities (annotations)",
    "unrelated": "Unrelated entities",
    "shuffled": "Another pair's entities (shuffled)",
    "none": "No entities (E = 0)",
    "caption_free": "Caption-free",
}


def unrelated_entities(own: Sequence[str]) -> list[str]:
    """:data:`UNRELATED_ENTITIES` less those among the pair's ``own`` (case-insensitive)."""
    mine = {e.strip().lower() for e in own}
    return [e for e in UNRELATED_ENTITIES if e not in mine]


def derangement(own: Mapping[str, Sequence[str]], seed: int = SHUFFLE_SEED, tries: int = 1000) -> dict[str, str]:
    """``{pair: donor}``: every pair of ``own`` (``{pair: entities}``, two or more pairs) gets
    another pair as its donor, never itself, and, where the seed's tries allow it, never a
    pair whose entities are the same set as its own. Deterministic in ``seed`` and the pair
    names (the order of ``own`` does not matter): Sattolo's shuffle of the sorted names, so
    the donors form one cycle and every pair donates exactly once."""
    names = sorted(own)
    if len(names) < 2:
        raise EGMTError("shuffled entities need at least two pairs with entities")
    key = {n: frozenset(e.strip().lower() for e in own[n]) for n in names}
    rng = random.Random(seed)
    best: dict[str, str] = {}
    best_same = len(names) + 1
    for _ in range(tries):
        order = names[:]
        for i in range(len(order) - 1, 0, -1):  # Sattolo: a single cycle, so no fixed point
            j = rng.randrange(i)
            order[i], order[j] = order[j], order[i]
        donors = {names[i]: order[i] for i in range(len(names))}
        same = sum(key[n] == key[d] for n, d in donors.items())
        if same < best_same:
            best, best_same = donors, same
        if same == 0:
            break
    return best


class ConditionEntities:
    """An entity resolver (``name -> (entities, source)``, as :class:`~egmt.infer.run.FuseJob`
    takes) for one condition, from the pairs' own entities ``{name: [entity, ...]}``."""

    def __init__(self, condition: str, own: dict[str, list[str]], seed: int = SHUFFLE_SEED):
        if condition not in CONDITIONS:
            raise EGMTError(f"unknown entity condition {condition!r}; choose from {', '.join(CONDITIONS)}")
        self.condition, self.own = condition, own
        self.donors = derangement(own, seed) if condition == "shuffled" else {}

    def __call__(self, name: str) -> tuple[list[str] | None, str]:
        if self.condition == "own":
            return list(self.own[name]), "annotations"
        if self.condition == "unrelated":
            return unrelated_entities(self.own[name]), "typed"
        if self.condition == "shuffled":
            return list(self.own[self.donors[name]]), "typed"
        if self.condition == "none":
            return [], "typed"
        return None, "none"


@dataclass
class EntityEffect:
    """One test set: per condition, the output's difference to ``own`` and the mean scores."""

    dataset: str
    pairs: int
    difference: dict[str, tuple[float, float]]  # condition -> (mean over pairs of mean |Δ|, max |Δ|), grey levels
    scores: dict[str, dict[str, float]]  # condition -> metric -> mean
    counts: dict[str, int]  # condition -> pairs scored
    caption_free_source: str = ""  # how caption-free fusion chose its entities
    problems: list[str] = field(default_factory=list)


def output_difference(reference: Path, other: Path, stems: Sequence[str]) -> tuple[float, float, int]:
    """``(mean over stems of the mean |Δ|, max |Δ|, stems compared)`` between two folders of
    fused images, on the 8-bit grey images the metrics score (levels of 255). Stems missing
    from either folder are skipped."""
    means, top, n = [], 0.0, 0
    for stem in stems:
        a, b = Path(reference) / f"{stem}.png", Path(other) / f"{stem}.png"
        if not (a.is_file() and b.is_file()):
            continue
        d = np.abs(read_grey_u8(a).astype(np.int16) - read_grey_u8(b).astype(np.int16))
        means.append(float(d.mean()))
        top = max(top, float(d.max()))
        n += 1
    return (float(np.mean(means)) if means else float("nan")), (top if n else float("nan")), n


def measure_entity_effect(
    dataset: str, folders: dict[str, Path], stems: Sequence[str], summary: EvaluationSummary, caption_free_source: str = ""
) -> EntityEffect:
    """Combine the per-condition folders (``{condition: folder}``, ``own`` among them) and their
    :func:`evaluate` summary into an :class:`EntityEffect`."""
    if "own" not in folders:
        raise EGMTError("entity effect: the 'own' condition is the reference and must be given")
    difference = {}
    for condition, folder in folders.items():
        mean, top, _ = output_difference(folders["own"], folder, stems)
        difference[condition] = (mean, top)
    scores = {c: {m: summary.mean[c][m] for m in summary.metrics} for c in folders}
    return EntityEffect(
        dataset,
        len(stems),
        difference,
        scores,
        {c: summary.counts[c] for c in folders},
        caption_free_source,
        list(summary.problems),
    )


def entity_effect_markdown(effect: EntityEffect, title: str, total_pairs: int) -> str:
    """The table of one test set: a row per condition, |Δ| against own entities, then the scores."""
    rows = [TITLES.get(c, c) for c in effect.scores]
    metrics = list(next(iter(effect.scores.values())))
    values = {TITLES.get(c, c): effect.scores[c] for c in effect.scores}
    hib = {m: FUSION_METRICS[m].higher_is_better for m in metrics}

    def cell(v: float) -> str:
        return "–" if np.isnan(v) else f"{v:.2f}"

    extra = {
        "Pairs": {TITLES.get(c, c): str(n) for c, n in effect.counts.items()},
        "mean abs Δ": {TITLES.get(c, c): cell(effect.difference[c][0]) for c in effect.scores},
        "max abs Δ": {TITLES.get(c, c): cell(effect.difference[c][1]) for c in effect.scores},
    }
    text = f"### {title}: {effect.pairs} of {total_pairs} pairs (those with annotation entities)\n\n"
    text += markdown_table(rows, metrics, values, hib, first_header="EGMT fused with", extra_columns=extra)
    text += (
        "\nΔ: the 8-bit grey output minus the same pair's output with its own entities, in grey levels (of 255); "
        "mean abs Δ = mean over pairs of the mean over pixels, max abs Δ = largest over all pixels and pairs. "
        f"Unrelated entities: {', '.join(UNRELATED_ENTITIES)} (less any of the pair's own), encoded like the others "
        "by the checkpoint's entity bank and its encoder. "
        f"Shuffled: each pair fused with another pair's own entities (a derangement of this set's pairs, seed {SHUFFLE_SEED}). "
        "No entities: E = 0, the CGHA stage is skipped. "
        f"Caption-free: no entity given, so the checkpoint's caption-free policy decides; here: "
        f"`{effect.caption_free_source or 'unknown'}`. "
        "Scores: mean over pairs, the same metric code as the fusion tables; best in bold."
    )
    if effect.problems:
        text += f" {len(effect.problems)} problem(s) were reported and skipped (see the log)."
    return text + "\n"
