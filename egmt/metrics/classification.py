"""Multi-label classification metrics of the paper's Table V: HL, RL, mAP, AUC, JI, F1.

Computed with scikit-learn on numpy arrays (torch tensors are accepted and converted).
Conventions (paper: not given; chosen to match Table V and multi-label practice):

* predictions for HL, JI and F1 are ``probs >= threshold`` (default 0.5);
* HL  = hamming loss, the fraction of wrong label decisions over all N*K entries;
* RL  = label ranking loss (sklearn ``label_ranking_loss``) on the scores;
* mAP = macro mean over classes of average precision (area under the PR curve, sklearn
  ``average_precision_score``), over the classes that have at least one positive;
* AUC = macro mean over classes of ROC AUC, over the classes that have both positives
  and negatives (AUC is undefined otherwise);
* JI and F1 are **micro**-averaged (global TP, FP, FN over all entries). Table V's pairs
  satisfy F1 = 2 JI / (1 + JI), which holds exactly for micro averaging only.
Classes left out of mAP/AUC are reported in the result under ``"skipped_classes"``.
"""

from __future__ import annotations

import numpy as np

from egmt.errors import EGMTError

#: Table V's columns and whether higher is better.
CLASSIFICATION_METRICS: dict[str, bool] = {"HL": False, "RL": False, "mAP": True, "AUC": True, "JI": True, "F1": True}


def _as_array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise EGMTError(f"{name} must be [N, K], got shape {arr.shape}")
    return arr


def classification_metrics(probs, labels, threshold: float = 0.5) -> dict:
    """Multi-label metrics of scores ``probs`` [N, K] (probabilities in 0..1) against
    multi-hot ``labels`` [N, K] (0/1).

    Returns {"HL", "RL", "mAP", "AUC", "JI", "F1": float, "skipped_classes": {"mAP": [...],
    "AUC": [...]}}. Raises EGMTError on shape mismatch, non-binary labels, NaN scores, or
    when no class allows mAP/AUC (e.g. all labels 0)."""
    from sklearn import metrics as skm

    scores = _as_array(probs, "probs").astype(np.float64)
    truth = _as_array(labels, "labels")
    if scores.shape != truth.shape:
        raise EGMTError(f"probs {scores.shape} and labels {truth.shape} differ in shape")
    if scores.shape[0] == 0:
        raise EGMTError("no samples to score")
    if not np.all(np.isfinite(scores)):
        raise EGMTError("probs contain NaN or infinite values")
    if not np.all((truth == 0) | (truth == 1)):
        raise EGMTError("labels must be 0/1 multi-hot")
    truth = truth.astype(np.int64)
    pred = (scores >= threshold).astype(np.int64)

    positives = truth.sum(axis=0)
    has_pos = positives > 0
    has_both = has_pos & (positives < truth.shape[0])
    if not has_pos.any():
        raise EGMTError("mAP/AUC undefined: no class has a positive label")
    if not has_both.any():
        raise EGMTError("AUC undefined: no class has both positive and negative labels")

    ap = [skm.average_precision_score(truth[:, k], scores[:, k]) for k in np.flatnonzero(has_pos)]
    auc = [skm.roc_auc_score(truth[:, k], scores[:, k]) for k in np.flatnonzero(has_both)]
    return {
        "HL": float(skm.hamming_loss(truth, pred)),
        "RL": float(skm.label_ranking_loss(truth, scores)),
        "mAP": float(np.mean(ap)),
        "AUC": float(np.mean(auc)),
        "JI": float(skm.jaccard_score(truth, pred, average="micro", zero_division=0.0)),
        "F1": float(skm.f1_score(truth, pred, average="micro", zero_division=0.0)),
        "skipped_classes": {
            "mAP": np.flatnonzero(~has_pos).tolist(),
            "AUC": np.flatnonzero(~has_both).tolist(),
        },
    }
