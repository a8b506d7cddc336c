"""Multi-label metrics (Table V) on a small example worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from egmt.errors import EGMTError
from egmt.metrics.classification import CLASSIFICATION_METRICS, classification_metrics

LABELS = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
PROBS = np.array([[0.9, 0.2, 0.4], [0.3, 0.8, 0.1], [0.6, 0.45, 0.7], [0.2, 0.1, 0.65]])


def test_hand_computed_values():
    got = classification_metrics(PROBS, LABELS)
    # predictions at 0.5: [[1,0,0],[0,1,0],[1,0,1],[0,0,1]] -> 3 wrong of 12; TP 4, FP 1, FN 2
    assert got["HL"] == pytest.approx(3 / 12)
    assert got["JI"] == pytest.approx(4 / 7)
    assert got["F1"] == pytest.approx(8 / 11)
    # only sample 2 misorders its pairs (both positives below the negative 0.7)
    assert got["RL"] == pytest.approx(1 / 4)
    # AP: classes 0 and 1 perfect, class 2 ranks (0.7 neg, 0.65 pos, 0.4 pos) -> (1/2 + 2/3)/2
    assert got["mAP"] == pytest.approx((1 + 1 + 7 / 12) / 3)
    # AUC: classes 0 and 1 perfect, class 2 has 2 of 4 pairs right
    assert got["AUC"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert set(CLASSIFICATION_METRICS) <= set(got)
    assert got["skipped_classes"] == {"mAP": [], "AUC": []}


def test_micro_jaccard_and_f1_follow_table_v_relation():
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 9)) < 0.3).astype(int)
    probs = np.clip(0.35 * labels + rng.random((200, 9)) * 0.7, 0, 1)
    got = classification_metrics(probs, labels)
    assert got["F1"] == pytest.approx(2 * got["JI"] / (1 + got["JI"]), rel=1e-12)
    assert 0 < got["HL"] < 0.5 and 0.5 < got["AUC"] < 1


def test_threshold_moves_the_decisions():
    strict = classification_metrics(PROBS, LABELS, threshold=0.95)  # nothing predicted
    assert strict["HL"] == pytest.approx(LABELS.sum() / LABELS.size)
    assert strict["JI"] == 0.0 and strict["F1"] == 0.0
    assert strict["mAP"] == classification_metrics(PROBS, LABELS)["mAP"]  # threshold-free


def test_classes_without_both_outcomes_are_skipped_and_reported():
    labels = LABELS.copy()
    labels[:, 1] = 0  # no positive: no AP, no AUC
    labels[:, 2] = 1  # no negative: AP defined, AUC not
    got = classification_metrics(PROBS, labels)
    assert got["skipped_classes"] == {"mAP": [1], "AUC": [1, 2]}
    assert got["AUC"] == pytest.approx(1.0)  # class 0 only


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    got = classification_metrics(torch.tensor(PROBS), torch.tensor(LABELS))
    assert got["HL"] == pytest.approx(3 / 12)


@pytest.mark.parametrize(
    "probs,labels,match",
    [
        (PROBS[:3], LABELS, "differ in shape"),
        (PROBS, LABELS * 2, "0/1"),
        (np.where(PROBS > 0.8, np.nan, PROBS), LABELS, "NaN"),
        (PROBS[:, 0], LABELS[:, 0], r"\[N, K\]"),
        (PROBS, np.zeros_like(LABELS), "no class has a positive"),
    ],
)
def test_bad_input(probs, labels, match):
    with pytest.raises(EGMTError, match=match):
        classification_metrics(probs, labels)
