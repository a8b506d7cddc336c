"""Table V: multi-label classification by the EGMT classifier, scored against pseudo-labels.

The paper's Table V compares input modalities ("Only_IR", "Only_VIS", "Fused (IR+VIS)").
Our network always takes two sources through two modality-specific branches, so a single
modality is given to both (``single_source="duplicate"``: ``(IR, IR)`` / ``(VI, VI)``), or
paired with a black image (``"blank"``: ``(IR, 0)`` / ``(0, VI)``); the paper does not say
how it fed one modality. The fused row feeds ``(IR, VI)``.

Entities at test time: the classifier reads the entity features (eq. 8), and the pseudo-labels
are made from the same entities, so giving it the pair's own entities leaks the answer. The
table therefore has two groups of the three rows: caption-free (no entity: ``E = 0``), and,
with ``entities="annotations"``, the same rows fed the pair's own annotation entities. Both
are set beside the label prior: every pair scored with the training positive ratios (the
checkpoint vocabulary's ``positive_ratio``), what a classifier that ignores the image gets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from egmt.data.pairs import Pair, load_pair
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.metrics.classification import CLASSIFICATION_METRICS, classification_metrics
from egmt.text.annotations import PairAnnotation
from egmt.files import VOCABULARY_FILE
from egmt.text.labels import Vocabulary

#: Table V's rows, in its order, and which source goes to the (IR, VI) inputs.
MODALITY_ROWS = ("Only_IR", "Only_VIS", "Fused (IR+VIS)")
ENTITY_ROWS = tuple(f"{r}, own entities" for r in MODALITY_ROWS)  # the same inputs with the pair's entities
PRIOR_ROW = "Label prior (training positive ratios)"
SINGLE_SOURCE_MODES = ("duplicate", "blank")


@dataclass
class ClassificationResult:
    """Table V for one dataset: metrics per row, how many pairs, and how labels were made."""

    dataset: str
    pairs: int
    rows: dict[str, dict[str, float]]  # row -> HL RL mAP AUC JI F1 (MODALITY_ROWS, ENTITY_ROWS, PRIOR_ROW)
    classes: list[str]
    label_source: str  # where the labels came from, for the caption
    single_source: str
    skipped_classes: dict[str, list[str]] = field(default_factory=dict)  # mAP / AUC: classes left out


def _inputs(row: str, ir: torch.Tensor, vi: torch.Tensor, single_source: str) -> tuple[torch.Tensor, torch.Tensor]:
    if row == "Only_IR":
        return (ir, ir) if single_source == "duplicate" else (ir, torch.zeros_like(vi))
    if row == "Only_VIS":
        return (vi, vi) if single_source == "duplicate" else (torch.zeros_like(ir), vi)
    return ir, vi


def pair_labels(
    annotations: dict[str, PairAnnotation], names: Sequence[str], vocabulary: Vocabulary, annotation_vocabulary: Vocabulary | None
) -> tuple[np.ndarray, str]:
    """Multi-hot labels ``[N, K]`` in the checkpoint vocabulary's class order, and a note on their source.

    The annotation file's ``labels`` are used as they are when they were made with the same
    classes as the checkpoint's; otherwise every pair is relabelled from its entities with the
    checkpoint's vocabulary (same synonym rules), so column k always means class k of the model.
    """
    missing = [n for n in names if n not in annotations]
    if missing:
        raise EGMTError(f"no annotation (pseudo-label) for pair(s) {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    same = annotation_vocabulary is not None and annotation_vocabulary.classes == vocabulary.classes
    if same:
        rows = [annotations[n].labels for n in names]
        bad = [n for n, r in zip(names, rows) if len(r) != len(vocabulary.classes)]
        if bad:
            raise EGMTError(
                f"annotation of {bad[0]!r}: {len(annotations[bad[0]].labels)} labels, the checkpoint has {len(vocabulary.classes)} classes"
            )
        return np.asarray(rows, dtype=np.int64), "the annotation file's pseudo-labels"
    rows = [vocabulary.labels(annotations[n].entities) for n in names]
    return np.asarray(rows, dtype=np.int64), "pseudo-labels remade from the annotation entities with the checkpoint's vocabulary"


@torch.no_grad()
def classification_table(
    fuser: EGMTFuser,
    dataset: str,
    pairs: Sequence[Pair],
    annotations: dict[str, PairAnnotation],
    annotation_folder: Path | None = None,
    *,
    entities: str = "none",
    single_source: str = "duplicate",
    threshold: float = 0.5,
    progress: bool = True,
) -> ClassificationResult:
    """Run the classifier on every pair for each Table V row and score it (HL RL mAP AUC JI F1).

    ``entities``: "none" (caption-free rows only, E = 0) or "annotations" (adds
    :data:`ENTITY_ROWS`, the same inputs with the pair's annotation entities). The label
    prior's row (:data:`PRIOR_ROW`) is added when the vocabulary has positive ratios.
    Raises EGMTError if the checkpoint has no classifier or vocabulary, or labels are missing.
    """
    if entities not in ("none", "annotations"):
        raise EGMTError(f"classification entities must be 'none' or 'annotations', got {entities!r}")
    if single_source not in SINGLE_SOURCE_MODES:
        raise EGMTError(f"single-source mode must be one of {SINGLE_SOURCE_MODES}, got {single_source!r}")
    model = fuser.model
    if model.classifier is None or fuser.vocabulary is None:
        raise EGMTError("the checkpoint has no classifier (trained without multi-task learning) or no vocabulary.json")
    if not pairs:
        raise EGMTError(f"{dataset}: no pairs to classify")
    ann_vocab = None
    if annotation_folder is not None and (annotation_folder / VOCABULARY_FILE).is_file():
        ann_vocab = Vocabulary.load(annotation_folder / VOCABULARY_FILE)
    names = [p.name for p in pairs]
    labels, label_source = pair_labels(annotations, names, fuser.vocabulary, ann_vocab)

    rows = list(MODALITY_ROWS) + (list(ENTITY_ROWS) if entities == "annotations" else [])
    probs: dict[str, list[np.ndarray]] = {r: [] for r in rows}
    device = fuser.device
    dim = model.config.entity_dim
    empty = torch.zeros(1, 0, dim, device=device)
    no_mask = torch.zeros(1, 0, dtype=torch.bool, device=device)
    model.eval()
    for pair in tqdm(pairs, desc=f"classify ({dataset})", unit="pair", disable=not progress):
        loaded = load_pair(pair)
        ir, vi = loaded.ir[None].to(device), loaded.vi[None].to(device)
        encoded = {}  # input modality -> its entity-free features, shared by the rows with and without entities
        for row in rows:
            if row in ENTITY_ROWS and model.config.text_interaction:
                feats = fuser.entity_features(annotations[pair.name].entities)[None].to(device)
                mask = torch.ones(1, feats.shape[1], dtype=torch.bool, device=device)
            else:
                feats, mask = empty, no_mask
            modality = row.split(",")[0]
            if modality not in encoded:
                encoded[modality] = model.encode(*_inputs(modality, ir, vi, single_source))
            logits = model.decode(encoded[modality], feats, mask, fuse=False).logits  # classifier only
            assert logits is not None  # the model has a classifier (checked above)
            probs[row].append(torch.sigmoid(logits[0]).float().cpu().numpy())

    classes = list(fuser.vocabulary.classes)
    prior = fuser.vocabulary.positive_ratio
    if prior:
        rows.append(PRIOR_ROW)
        probs[PRIOR_ROW] = [np.asarray(prior, dtype=np.float64)] * len(pairs)
    out: dict[str, dict[str, float]] = {}
    skipped: dict[str, list[str]] = {}
    for row in rows:
        scores = classification_metrics(np.stack(probs[row]), labels, threshold=threshold)
        skipped = {k: [classes[i] for i in v] for k, v in scores.pop("skipped_classes").items()}
        out[row] = {k: float(scores[k]) for k in CLASSIFICATION_METRICS}
    return ClassificationResult(dataset, len(pairs), out, classes, label_source, single_source, skipped)


def reference_row(name: str, values: dict[str, float], columns: Sequence[str], decimals: int, extra: Sequence[str] = ()) -> str:
    """A Markdown row in italics, outside the bold ranking (a leak row, a published row);
    ``extra`` cells go after the name (e.g. a pair count)."""
    cells = [f"*{name}*", *extra]
    for c in columns:
        v = values.get(c, math.nan)
        cells.append("–" if v is None or math.isnan(v) else f"*{v:.{decimals}f}*")
    return "| " + " | ".join(cells) + " |\n"


def classification_markdown(
    result: ClassificationResult, paper: dict[str, dict[str, float]] | None = None, paper_label: str = "paper"
) -> str:
    """Table V in the paper's layout (rows by input modality, HL RL mAP AUC JI F1, 3 decimals,
    best of the three modality rows in bold): the caption-free rows, then (if computed) the rows
    with the pair's own entities, a table each, with the label prior in italics under each and
    the ``paper`` rows in italics at the end, all outside the ranking."""
    from egmt.bench.tables import markdown_table

    columns = list(CLASSIFICATION_METRICS)
    groups = [
        ("Without entities (caption-free, E = 0)", MODALITY_ROWS),
        ("With the pair's own entities (the labels are made from them)", ENTITY_ROWS),
    ]
    text = ""
    for title, names in groups:
        ranked = [r for r in names if r in result.rows]
        if not ranked:
            continue
        if text:
            text += "\n"
        text += f"{title}:\n\n"
        text += markdown_table(ranked, columns, result.rows, CLASSIFICATION_METRICS, first_header="Input modality", decimals=3)
        if PRIOR_ROW in result.rows:
            text += reference_row(PRIOR_ROW, result.rows[PRIOR_ROW], columns, 3)
    for row, values in (paper or {}).items():
        text += reference_row(f"{row} ({paper_label})", values, columns, 3)
    return text


def prior_comparison(result: ClassificationResult) -> str:
    """One sentence: the caption-free fused classifier's mAP against the label prior's."""
    fused, prior = result.rows.get(MODALITY_ROWS[-1]), result.rows.get(PRIOR_ROW)
    if fused is None or prior is None or math.isnan(fused["mAP"]) or math.isnan(prior["mAP"]):
        return ""
    verdict = "above" if fused["mAP"] > prior["mAP"] else "not above"
    return (
        f"Caption-free classification (Fused, E = 0) reaches mAP {fused['mAP']:.3f} against the label prior's "
        f"{prior['mAP']:.3f}: {verdict} the prior on this set."
    )
