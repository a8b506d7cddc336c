"""Validation during training: held-out training-distribution pairs, never a test set.

Each validation pair (``data.val_sources``) is cut once to its central ``val_crop`` square
(whole image when 0 or when the image is smaller), so a validation pass costs the same at
every step. The network fuses it with the pair's own entities; the fused Y, rounded to 8
bits as it would be saved, is scored with egmt's metrics (``train.val_metrics``).

The selection rule (``RULE``). Each metric's ratio ``mean(metric of the network) / mean(metric
of average fusion)`` on the same crops counts alike whatever its scale (1.0 = as good as
averaging the sources). Two groups of ratios:

- *information* (``train.val_metrics``: MI, Qabf, FMI_w, VIF): what was carried over from
  the sources; these reward copying a source or selecting one per pixel;
- *fidelity* (``train.val_fidelity_metrics``: SSIM_min, PSNR): how close the fused image stays
  to **both** sources; these reward blending (any per-pixel selection has the same PSNR, half
  the MSE of averaging).

The **score** is the geometric mean of the two groups' mean ratios, so neither can be traded
away for the other (an empty fidelity group gives the information mean: the rule before).
The best checkpoint of a run is the one with the highest score among the **eligible**
validations: those where every validation source keeps at least ``train.val_min_retention`` of
the infrared's warm targets (``egmt.metrics.retention``; 0.5 is what plain averaging keeps) and
whose mean seam ratio (``egmt.metrics.seams``, period = the window size) is at most
``train.val_max_seam`` on every source (no patch mosaic), and, with hand-drawn boxes
(``train.val_boxes``), whose fused image keeps the infrared's people: the mean Pearson correlation
with the infrared inside the person boxes (``person_ir``, boxes moved into the crops) at least
``train.val_min_person_ir`` (pooled over every box, or on each source with boxes:
``train.val_person_floor``) and, with ``train.val_max_person_halo``, cuts no dark halo around them
(``person_halo``: how much darker than the visible image the fusion is in a 16-pixel ring around
the boxes, read the same way); and, with ``train.val_min_ssim_min``, whose mean SSIM_min (the SSIM
with the less kept source) is at least that *balance floor*: a fusion that nearly copies one
source keeps its information metrics high and fails it. A source with no warm targets (retention
NaN), or no boxes, does not count against a validation. Fusions without a network, scored by the
same rule (``REFERENCE_FUSIONS``), say what copying or selecting would get.

Whether entities steer: ``entity_effect`` is the mean |difference| in grey levels between the
output with the pair's own entities and with the next validation pair's entities.

Classification is scored caption-free (no entities, as at inference without captions,
since the pseudo-labels are made from the entities): macro mAP of the sigmoid scores,
against the mAP of the label prior (every pair scored with the training positive ratios).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from egmt.config import EGMTConfig, LossConfig
from egmt.data.boxes import Box, read_boxes
from egmt.data.pairs import find_pairs, load_pair
from egmt.errors import EGMTError
from egmt.floors import Floors
from egmt.model.prior import contrast_target
from egmt.metrics import FUSION_METRICS, compute_fusion_metrics, resolve_metric_names
from egmt.metrics.classification import classification_metrics
from egmt.metrics.retention import box_correlation, surround_darkening, target_retention
from egmt.metrics.seams import seam_ratio
from egmt.text.features import EntityFeatures

RULE = (
    "score = sqrt(mean ratio over val_metrics x mean ratio over val_fidelity_metrics), each ratio "
    "mean(model) / mean(average fusion) on the validation crops; best = highest score among validations "
    "whose every source keeps >= val_min_retention of the warm targets and has a mean seam ratio <= val_max_seam, "
    "and whose IR correlation in the person boxes is >= val_min_person_ir, halo around them <= val_max_person_halo "
    "(pooled or on each source: val_person_floor) and mean SSIM_min >= val_min_ssim_min"
)


#: Fusions without a network, scored by the same rule for reference (``Validator.reference_scores``).
#: The score's metrics reward copying a source: copying the visible image outscores most models,
#: and only the retention floor rules it out.
def block_max(ir: torch.Tensor, vi: torch.Tensor, period: int = 16) -> torch.Tensor:
    """A synthetic mosaic: each ``period``-square block copies the source that is brighter on
    average there (``[1, H, W]`` each); what a patch-wise selecting network does at its worst."""
    brighter = torch.nn.functional.avg_pool2d((ir - vi)[None], period, ceil_mode=True)[0] > 0
    w = brighter.to(ir.dtype).repeat_interleave(period, -2).repeat_interleave(period, -1)
    w = w[..., : ir.shape[-2], : ir.shape[-1]]
    return w * ir + (1 - w) * vi


REFERENCE_FUSIONS = {
    "copy visible": lambda ir, vi: vi,
    "copy infrared": lambda ir, vi: ir,
    "max(IR, VI)": torch.maximum,
    "16x16 block max (mosaic)": block_max,
    "average": lambda ir, vi: (ir + vi) / 2,
}


def target_fusion(loss: LossConfig) -> tuple[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] | None:
    """The loss's contrast intensity target (eq. 12's term, ``loss.intensity_*``) as a fusion of
    ``[1, H, W]`` sources, named by its parameters (its window and power only where they are not the
    defaults, 8 and 4); None for the other targets (max(IR, VI) is a reference of its own)."""
    if loss.intensity_target != "contrast":
        return None
    shape = (
        ""
        if (loss.intensity_sigma, loss.intensity_power) == (8.0, 4.0)
        else (f"sigma {loss.intensity_sigma:g}, power {loss.intensity_power:g}, ")
    )
    guided = ", guided" if loss.intensity_rebase > 0 and loss.intensity_rebase_spread == "guided" else ""
    name = f"contrast target ({shape}kappa {loss.intensity_noise:g}, re-based {loss.intensity_rebase:g}{guided})"
    args = (loss.intensity_sigma, loss.intensity_power, loss.intensity_noise, loss.intensity_rebase)
    spread = loss.intensity_rebase_spread
    return name, lambda ir, vi: contrast_target(ir[None], vi[None], *args, rebase_spread=spread)[0]


@dataclass
class _ValPair:
    name: str
    source: int  # index into data.val_sources
    ir: torch.Tensor  # [1, h, w] in [0, 1]
    vi: torch.Tensor
    persons: list[tuple[int, int, int, int]]  # person boxes (train.val_boxes) in crop pixels, half-open


def _crop_window(h: int, w: int, size: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the central ``size`` square of an ``h x w`` image
    (the whole image when ``size`` <= 0; a side smaller than ``size`` is kept whole)."""
    if size <= 0:
        return 0, 0, h, w
    ch, cw = min(size, h), min(size, w)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def _center_crop(y: torch.Tensor, size: int) -> torch.Tensor:
    top, left, ch, cw = _crop_window(*y.shape[-2:], size)
    return y[..., top : top + ch, left : left + cw].contiguous()


def _boxes_in_crop(boxes: list[Box], window: tuple[int, int, int, int], min_side: int = 8) -> list[tuple[int, int, int, int]]:
    """Person boxes moved into the crop ``window`` = (top, left, h, w): those with at least half
    their area inside it, clipped to it, each side at least ``min_side`` pixels."""
    top, left, h, w = window
    kept = []
    for b in boxes:
        x0, y0 = max(b.x0 - left, 0), max(b.y0 - top, 0)
        x1, y1 = min(b.x1 - left, w), min(b.y1 - top, h)
        if b.entity == "person" and x1 - x0 >= min_side and y1 - y0 >= min_side and 2 * (x1 - x0) * (y1 - y0) >= b.area():
            kept.append((x0, y0, x1, y1))
    return kept


def defined_mean(values: list[float]) -> float:
    """Mean of the defined values (NaN when none is)."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def _nanmin(values: list[float]) -> float:
    return min((v for v in values if not math.isnan(v)), default=math.nan)


def _nanmax(values: list[float]) -> float:
    return max((v for v in values if not math.isnan(v)), default=math.nan)


def _to_u8(y: torch.Tensor) -> np.ndarray:
    """``[1, h, w]`` in [0, 1] -> ``[h, w]`` uint8, rounded as a saved PNG would be."""
    return (y[0].clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


class Validator:
    """Scores a model on the validation pairs of ``config.data.val_sources``."""

    def __init__(self, config: EGMTConfig, features: EntityFeatures | None) -> None:
        if not config.data.val_sources:
            raise EGMTError("validation needs data.val_sources")
        self.information = resolve_metric_names(config.train.val_metrics)
        self.fidelity = resolve_metric_names(config.train.val_fidelity_metrics) if config.train.val_fidelity_metrics else []
        self.metrics = self.information + [m for m in self.fidelity if m not in self.information]
        self.floors = Floors.from_config(config.train)
        if self.floors.min_ssim_min is not None and "SSIM_min" not in self.metrics:
            self.metrics.append("SSIM_min")  # the balance floor's measure, logged beside the score
        lower = [m for m in self.metrics if not FUSION_METRICS[m].higher_is_better]
        if lower:
            raise EGMTError(
                f"train.val_metrics: {lower} are lower-is-better; the validation score takes higher-is-better metrics"
            )
        self.features = features
        self.loss = config.loss  # its intensity target is a reference (reference_scores)
        self.period = config.model.window_size
        box_files = config.train.val_boxes or []
        box_files = [box_files] if isinstance(box_files, str) else box_files
        if not isinstance(box_files, list) or not all(isinstance(f, str) for f in box_files):
            raise EGMTError(f"train.val_boxes: expected a box file or a list of them, got {config.train.val_boxes!r}")
        boxes: dict[str, list[Box]] = {}
        for path in box_files:  # a box in two files (the same entity and corners) counts once
            for name, items in read_boxes(path).items():
                known = boxes.setdefault(name, [])
                for box in items:
                    if box not in known:
                        known.append(box)
        self.pairs: list[_ValPair] = []
        for i, source in enumerate(config.data.val_sources):
            crop = config.train.val_crop if source.val_crop is None else source.val_crop
            for pair in find_pairs(source.root, source.split):
                loaded = load_pair(pair)
                window = _crop_window(*loaded.ir.shape[-2:], crop)
                persons = _boxes_in_crop(boxes.get(pair.name, []), window)
                self.pairs.append(_ValPair(pair.name, i, _center_crop(loaded.ir, crop), _center_crop(loaded.vi, crop), persons))
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
        fused, probs, labels, moved = [], [], [], []
        steer = self.features is not None and model.config.text_interaction and len(self.pairs) > 1
        try:
            for k, p in enumerate(self.pairs):
                # The entity-free part of the pass is computed once and serves every decode.
                encoded = model.encode(p.ir[None].to(device), p.vi[None].to(device))
                entities = mask = None
                if self.features is not None:
                    e, m, y = self.features.batch([p.name])
                    entities, mask = e.to(device), m.to(device)
                fused.append(model.decode(encoded, entities, mask, classify=False).fused[0].float().cpu())
                if steer and mask is not None and mask.any():
                    # own vs another pair's entities (the next pair's: a fixed, content-blind shuffle)
                    e2, m2, _ = self.features.batch([self.pairs[(k + 1) % len(self.pairs)].name])
                    other = model.decode(encoded, e2.to(device), m2.to(device), classify=False).fused[0].float().cpu()
                    moved.append(float((fused[-1] - other).abs().mean()) * 255.0)
                if self.features is not None and model.config.multi_task:
                    logits = model.decode(encoded, fuse=False).logits  # caption-free: no entities
                    probs.append(torch.sigmoid(logits[0]).float().cpu())
                    labels.append(y[0])
        finally:
            model.train(was_training)
        self.last_fused = fused
        result = {"pairs": len(self.pairs), **self.summarize(fused)}
        # mean |own - shuffled| output difference in grey levels (issue 17's "≥ 1 grey level")
        result["entity_effect"] = float(np.mean(moved)) if moved else math.nan
        if probs:
            result["classification"] = self._classification(torch.stack(probs), torch.stack(labels))
        return result

    def summarize(self, fused: list[torch.Tensor]) -> dict:
        """The rule's numbers for one fused ``[1, h, w]`` image per validation pair: metric means,
        score, retention (pooled and per source) and eligibility."""
        means = self._fusion_means(fused)
        triples = [(p.ir[0].numpy(), p.vi[0].numpy(), f[0].numpy()) for p, f in zip(self.pairs, fused)]
        per_source = [target_retention(t for p, t in zip(self.pairs, triples) if p.source == i) for i in range(self.num_sources)]
        seams = [seam_ratio(*t, period=self.period) for t in triples]
        source_seam = self._by_source([(p.source, s) for p, s in zip(self.pairs, seams)])
        worst = int(np.nanargmax(seams)) if not all(math.isnan(s) for s in seams) else None
        boxed = [(p.source, ir, vi, f, b) for p, (ir, vi, f) in zip(self.pairs, triples) for b in p.persons]
        correlations = [(s, box_correlation(ir, f, b)) for s, ir, _, f, b in boxed]
        # grey levels by which the fusion darkens the visible image around the people (a halo)
        halos = [(s, 255 * surround_darkening(vi, f, b)) for s, _, vi, f, b in boxed]
        person_ir, person_halo = defined_mean([c for _, c in correlations]), defined_mean([h for _, h in halos])
        source_person_ir, source_halo = self._by_source(correlations), self._by_source(halos)
        floors = self.floors
        result = {
            "fusion": means,
            "baseline_average": self.baseline,
            "score": self.score(means),
            "information": self._group(means, self.information),
            "fidelity": self._group(means, self.fidelity),
            "rule": RULE,
            "target_retention": target_retention(triples),  # all sources pooled
            "source_retention": per_source,  # one per data.val_sources entry
            "min_source_retention": _nanmin(per_source),
            "min_retention": floors.min_retention,
            "source_seam": source_seam,  # mean seam ratio, one per data.val_sources entry
            "max_source_seam": _nanmax(source_seam),
            "worst_seam": {"pair": self.pairs[worst].name, "seam": seams[worst]} if worst is not None else None,
            "max_seam": floors.max_seam,
            "person_ir": person_ir,  # IR correlation inside the person boxes (NaN: no boxes)
            "source_person_ir": source_person_ir,  # the same, one per data.val_sources entry
            "min_source_person_ir": _nanmin(source_person_ir),
            "person_halo": person_halo,  # the visible image darkened around them, grey levels
            "source_person_halo": source_halo,  # the same, one per data.val_sources entry
            "max_source_person_halo": _nanmax(source_halo),
            "person_boxes": len(boxed),
            "min_person_ir": floors.min_person_ir,
            "max_person_halo": floors.max_halo,
            "person_floor": floors.person_floor,
            "min_ssim_min": floors.min_ssim_min,
        }
        result["eligible"] = floors.met_by({**result, "SSIM_min": means.get("SSIM_min", math.nan)})
        return result

    def _by_source(self, values: list[tuple[int, float]]) -> list[float]:
        """``(source, value)`` pairs -> the mean defined value of each validation source (NaN: none)."""
        return [defined_mean([v for s, v in values if s == i]) for i in range(self.num_sources)]

    def _group(self, means: dict[str, float], names: list[str]) -> float:
        """Mean ratio to average fusion over ``names`` (NaN for an empty group or no defined ratio)."""
        ratios = [means[m] / self.baseline[m] for m in names if self.baseline[m] and not math.isnan(means[m])]
        return float(np.mean(ratios)) if ratios else math.nan

    def score(self, means: dict[str, float]) -> float:
        """The rule's score from the metric means: the geometric mean of the information and
        fidelity groups' mean ratios, or the information mean alone without a fidelity group."""
        info = self._group(means, self.information)
        if not self.fidelity:
            return info
        fidelity = self._group(means, self.fidelity)
        return math.sqrt(info * fidelity) if info > 0 and fidelity > 0 else math.nan

    def reference_scores(self, losses: Sequence[LossConfig] | None = None) -> dict[str, dict]:
        """:meth:`summarize` for each of ``REFERENCE_FUSIONS``: what the rule gives fusions that
        need no network, so a model's score can be read against copying a source. Also each
        contrast intensity target of ``losses`` (default: this config's loss) as a fusion
        (:func:`target_fusion`): what a network that fitted eq. 12's term exactly would give."""
        fusions = dict(REFERENCE_FUSIONS)
        for loss in [self.loss] if losses is None else losses:
            target = target_fusion(loss)
            if target is not None:
                fusions.setdefault(*target)
        return {name: self.summarize([fuse(p.ir, p.vi) for p in self.pairs]) for name, fuse in fusions.items()}

    def contact_sheet(self, fused: list[torch.Tensor], per_source: int = 3) -> np.ndarray:
        """IR | VIS | fused rows for ``per_source`` evenly spaced pairs of each validation source,
        at full resolution (a seam or a lost target must be visible): ``[rows * h, 3 * w]`` uint8,
        each row padded to the largest crop. A fixed choice of pairs, so sheets of one run compare."""
        picks = []
        for i in range(self.num_sources):
            idx = [k for k, p in enumerate(self.pairs) if p.source == i]
            picks += [idx[j] for j in sorted({round(x) for x in np.linspace(0, len(idx) - 1, min(per_source, len(idx)))})]
        h = max(self.pairs[k].ir.shape[-2] for k in picks)
        w = max(self.pairs[k].ir.shape[-1] for k in picks)
        sheet = np.zeros((len(picks) * h, 3 * w), dtype=np.uint8)
        for row, k in enumerate(picks):
            for col, img in enumerate((self.pairs[k].ir, self.pairs[k].vi, fused[k])):
                tile = _to_u8(img)
                sheet[row * h : row * h + tile.shape[0], col * w : col * w + tile.shape[1]] = tile
        return sheet

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
