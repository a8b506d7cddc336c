"""Validation during training: held-out training-distribution pairs, never a test set.

Each validation pair (``data.val_sources``) is cut once to its central ``val_crop`` square
(whole image when 0 or when the image is smaller), so a validation pass costs the same at
every step. The network fuses it with the pair's own entities; the fused Y, rounded to 8
bits as it would be saved, is scored with egmt's metrics (``train.val_metrics``).

The selection rule (``RULE``): the **score** is the mean over the metrics of
``mean(metric of the network) / mean(metric of average fusion)`` on the same crops, so each
metric counts alike whatever its scale, and 1.0 means "as good as averaging the sources".
The best checkpoint of a run is the one with the highest score (all metrics used here are
higher-is-better) among the **eligible** validations: those where every validation source keeps
at least ``train.val_min_retention`` of the infrared's warm targets (``egmt.metrics.retention``;
0.5 is what plain averaging keeps). The score's metrics reward copying either source, and a
model can raise it by showing the visible image over the warm targets; the floor rules that out.
A source with no warm targets (retention NaN) does not count against a validation.

Classification is scored caption-free (no entities, as at inference without captions,
since the pseudo-labels are made from the entities): macro mAP of the sigmoid scores,
against the mAP of the label prior (every pair scored with the training positive ratios).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from egmt.config import EGMTConfig
from egmt.data.pairs import find_pairs, load_pair
from egmt.errors import EGMTError
from egmt.metrics import FUSION_METRICS, compute_fusion_metrics, resolve_metric_names
from egmt.metrics.classification import classification_metrics
from egmt.metrics.retention import target_retention
from egmt.text.features import EntityFeatures

RULE = ("score = mean over val_metrics of mean(model) / mean(average fusion) on the validation crops; "
        "best = highest score among validations whose every source keeps >= val_min_retention of the warm targets")
VALIDATION_FILE = "validation.json"

#: Fusions without a network, scored by the same rule for reference (``Validator.reference_scores``).
#: The score's metrics reward copying a source: copying the visible image outscores most models,
#: and only the retention floor rules it out.
REFERENCE_FUSIONS = {
    "copy visible": lambda ir, vi: vi,
    "copy infrared": lambda ir, vi: ir,
    "max(IR, VI)": torch.maximum,
    "average": lambda ir, vi: (ir + vi) / 2,
}


@dataclass
class _ValPair:
    name: str
    source: int  # index into data.val_sources
    ir: torch.Tensor  # [1, h, w] in [0, 1]
    vi: torch.Tensor


def _center_crop(y: torch.Tensor, size: int) -> torch.Tensor:
    h, w = y.shape[-2:]
    if size <= 0:
        return y
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return y[..., top : top + ch, left : left + cw].contiguous()


def _to_u8(y: torch.Tensor) -> np.ndarray:
    """``[1, h, w]`` in [0, 1] -> ``[h, w]`` uint8, rounded as a saved PNG would be."""
    return (y[0].clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


class Validator:
    """Scores a model on the validation pairs of ``config.data.val_sources``."""

    def __init__(self, config: EGMTConfig, features: EntityFeatures | None) -> None:
        if not config.data.val_sources:
            raise EGMTError("validation needs data.val_sources")
        self.metrics = resolve_metric_names(config.train.val_metrics)
        lower = [m for m in self.metrics if not FUSION_METRICS[m].higher_is_better]
        if lower:
            raise EGMTError(f"train.val_metrics: {lower} are lower-is-better; the validation score takes higher-is-better metrics")
        self.features = features
        self.min_retention = config.train.val_min_retention
        self.pairs: list[_ValPair] = []
        crop = config.train.val_crop
        for i, source in enumerate(config.data.val_sources):
            for pair in find_pairs(source.root, source.split):
                loaded = load_pair(pair)
                self.pairs.append(_ValPair(pair.name, i, _center_crop(loaded.ir, crop), _center_crop(loaded.vi, crop)))
        self.num_sources = len(config.data.val_sources)
        self.baseline = self._fusion_means([(p.ir + p.vi) / 2 for p in self.pairs])

    def _fusion_means(self, fused: list[torch.Tensor]) -> dict[str, float]:
        rows = [
            compute_fusion_metrics(_to_u8(p.ir), _to_u8(p.vi), _to_u8(f), self.metrics, threads=1, errors={})
            for p, f in zip(self.pairs, fused)
        ]
        return {m: float(np.nanmean([r[m] for r in rows])) for m in self.metrics}

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module, device: torch.device) -> dict:
        """``{"fusion": {metric: mean}, "baseline_average": {...}, "score": float, "target_retention":
        float, "source_retention": [float per source], "min_source_retention": float (NaN-free minimum),
        "eligible": bool, "classification": {...}}``."""
        was_training = model.training
        model.eval()
        fused, probs, labels = [], [], []
        try:
            for p in self.pairs:
                # The entity-free part of the pass is computed once and serves both decodes.
                encoded = model.encode(p.ir[None].to(device), p.vi[None].to(device))
                entities = mask = None
                if self.features is not None:
                    e, m, y = self.features.batch([p.name])
                    entities, mask = e.to(device), m.to(device)
                fused.append(model.decode(encoded, entities, mask, classify=False).fused[0].float().cpu())
                if self.features is not None and model.config.multi_task:
                    logits = model.decode(encoded, fuse=False).logits  # caption-free: no entities
                    probs.append(torch.sigmoid(logits[0]).float().cpu())
                    labels.append(y[0])
        finally:
            model.train(was_training)
        result = {"pairs": len(self.pairs), **self.summarize(fused)}
        if probs:
            result["classification"] = self._classification(torch.stack(probs), torch.stack(labels))
        return result

    def summarize(self, fused: list[torch.Tensor]) -> dict:
        """The rule's numbers for one fused ``[1, h, w]`` image per validation pair: metric means,
        score, retention (pooled and per source) and eligibility."""
        means = self._fusion_means(fused)
        ratios = [means[m] / self.baseline[m] for m in self.metrics if self.baseline[m] and not math.isnan(means[m])]
        triples = [(p.ir[0].numpy(), p.vi[0].numpy(), f[0].numpy()) for p, f in zip(self.pairs, fused)]
        per_source = [target_retention(t for p, t in zip(self.pairs, triples) if p.source == i)
                      for i in range(self.num_sources)]
        return {
            "fusion": means,
            "baseline_average": self.baseline,
            "score": float(np.mean(ratios)) if ratios else math.nan,
            "rule": RULE,
            "target_retention": target_retention(triples),  # all sources pooled
            "source_retention": per_source,  # one per data.val_sources entry
            "min_source_retention": min((r for r in per_source if not math.isnan(r)), default=math.nan),
            "min_retention": self.min_retention,
            "eligible": self.is_eligible(per_source),
        }

    def reference_scores(self) -> dict[str, dict]:
        """:meth:`summarize` for each of ``REFERENCE_FUSIONS``: what the rule gives fusions that
        need no network, so a model's score can be read against copying a source."""
        return {name: self.summarize([fuse(p.ir, p.vi) for p in self.pairs]) for name, fuse in REFERENCE_FUSIONS.items()}

    def is_eligible(self, source_retention: list[float]) -> bool:
        """Whether every source keeps at least ``val_min_retention`` (None: no floor; NaN: a
        source without warm targets, not held against the validation)."""
        if self.min_retention is None:
            return True
        return all(math.isnan(r) or r >= self.min_retention for r in source_retention)

    def _classification(self, probs: torch.Tensor, labels: torch.Tensor) -> dict:
        prior = torch.tensor(self.features.vocabulary.positive_ratio, dtype=torch.float32).expand_as(probs)
        try:
            scores = classification_metrics(probs.numpy(), labels.numpy())
            prior_scores = classification_metrics(prior.numpy(), labels.numpy())
        except EGMTError as e:  # e.g. a validation set where no class has a positive
            return {"error": str(e)}
        return {
            "input": "caption-free (no entities)",
            "map": scores["mAP"],
            "auc": scores["AUC"],
            "prior_map": prior_scores["mAP"],
        }
