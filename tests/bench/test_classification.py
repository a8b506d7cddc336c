"""Table V on the tiny data: six metrics in [0, 1], caption-free and with entities, the label
prior beside them, labels in the model's order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egmt.bench import benchmark as bench
from egmt.bench.classification import (
    ENTITY_ROWS,
    MODALITY_ROWS,
    PRIOR_ROW,
    classification_markdown,
    classification_table,
    pair_labels,
)
from egmt.bench.paper import PAPER_CLASSIFICATION
from egmt.data.pairs import load_pair
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.metrics.classification import CLASSIFICATION_METRICS, classification_metrics
from egmt.text.annotations import read_annotations
from egmt.text.labels import Vocabulary


@pytest.fixture(scope="module")
def fuser(tiny_checkpoint):
    return EGMTFuser.from_pretrained(tiny_checkpoint, device="cpu")


def test_table_v_rows_and_metrics(fuser, tiny_root):
    ann = tiny_root / "annotations"
    pairs = bench.dataset_pairs(tiny_root / "data", "tno")
    annotations = read_annotations(ann / "tno.jsonl")
    result = classification_table(fuser, "tno", pairs, annotations, ann, entities="annotations", progress=False)
    assert list(result.rows) == [*MODALITY_ROWS, *ENTITY_ROWS, PRIOR_ROW]
    for row in result.rows.values():
        assert list(row) == list(CLASSIFICATION_METRICS)
        assert all(0.0 <= v <= 1.0 for v in row.values())
    assert result.pairs == 3 and result.label_source == "the annotation file's pseudo-labels"

    # The fused row is the caption-free classifier: the same scores as the fuser's own entity-free pass.
    labels = np.array([annotations[p.name].labels for p in pairs])
    for row, pick in (("Fused (IR+VIS)", lambda p: (p.ir, p.vi)), ("Only_IR", lambda p: (p.ir, p.ir))):
        probs = []
        for pair in pairs:
            a, b = pick(load_pair(pair))
            _, by_class = fuser.predict_entities(a[None], b[None])
            probs.append([by_class[c] for c in fuser.vocabulary.classes])
        expected = classification_metrics(np.array(probs), labels)
        assert result.rows[row] == pytest.approx({k: expected[k] for k in CLASSIFICATION_METRICS})

    # with entities: the same inputs fed the pair's own annotation entities
    probs = []
    for pair in pairs:
        loaded = load_pair(pair)
        feats = fuser.entity_features(annotations[pair.name].entities)[None]
        logits = fuser.model(loaded.ir[None], loaded.vi[None], entities=feats).logits
        probs.append(torch.sigmoid(logits[0]).tolist())
    expected = classification_metrics(np.array(probs), labels)
    assert result.rows["Fused (IR+VIS), own entities"] == pytest.approx({k: expected[k] for k in CLASSIFICATION_METRICS})
    assert result.rows["Fused (IR+VIS), own entities"] != result.rows["Fused (IR+VIS)"]

    # the label prior: every pair scored with the training positive ratios
    ratios = fuser.vocabulary.positive_ratio
    expected = classification_metrics(np.tile(ratios, (len(pairs), 1)), labels)
    assert result.rows[PRIOR_ROW] == pytest.approx({k: expected[k] for k in CLASSIFICATION_METRICS})
    # a constant score per class: its AP is the class's positive rate, so the prior mAP is their mean
    assert result.rows[PRIOR_ROW]["mAP"] == pytest.approx(labels.mean(axis=0)[labels.std(axis=0) > 0].mean())

    text = classification_markdown(result, PAPER_CLASSIFICATION, "paper")
    assert text.count("| Input modality | HL ↓ | RL ↓ | mAP ↑ | AUC ↑ | JI ↑ | F1 ↑ |") == 2
    assert text.index("Without entities (caption-free, E = 0)") < text.index("With the pair's own entities")
    assert text.count(f"| *{PRIOR_ROW}* |") == 2 and "*Fused (IR+VIS) (paper)* | *0.184*" in text
    prior_line = next(line for line in text.splitlines() if PRIOR_ROW in line)
    assert "**" not in prior_line  # the prior is not ranked


def test_labels_follow_the_checkpoint_vocabulary(tiny_root):
    annotations = read_annotations(tiny_root / "annotations" / "tno.jsonl")
    model_vocab = Vocabulary(classes=["house", "person", "tree"])
    same = Vocabulary(classes=["person", "tree", "house"])
    stored, note = pair_labels(annotations, ["01", "02"], same, same)
    assert stored.tolist() == [[1, 1, 1], [1, 1, 0]] and "annotation file" in note
    remade, note = pair_labels(annotations, ["01", "02"], model_vocab, same)
    assert remade.tolist() == [[1, 1, 1], [0, 1, 1]] and "remade" in note
    with pytest.raises(EGMTError, match="no annotation"):
        pair_labels(annotations, ["01", "99"], same, same)


def test_benchmark_writes_table_v_with_and_without_entities(tiny_root, tiny_checkpoint, tmp_path):
    options = bench.BenchmarkOptions(
        data=tiny_root / "data",
        datasets=["roadscene"],
        methods=["egmt"],
        checkpoint=tiny_checkpoint,
        annotations=tiny_root / "annotations",
        out=tmp_path / "out",
        results=tmp_path / "r.md",
        tables=["classification"],
        device="cpu",
        progress=False,
        cls_single="blank",
        peers=None,
        figures=None,
    )
    result = bench.run_benchmark(options)
    assert list(result.classification["roadscene"].rows) == [*MODALITY_ROWS, *ENTITY_ROWS, PRIOR_ROW]
    text = options.results.read_text(encoding="utf-8")
    assert "## Multi-label classification (paper Table V)" in text
    assert "### RoadScene (split test.txt): 2 pairs" in text
    assert "(E = 0)" in text and "(IR, 0) and (0, VI)" in text
    assert "own entities |" in text and f"*{PRIOR_ROW}*" in text  # both groups by default, and the prior
    fused, prior = (result.classification["roadscene"].rows[r]["mAP"] for r in ("Fused (IR+VIS)", PRIOR_ROW))
    verdict = "above" if fused > prior else "not above"
    assert f"reaches mAP {fused:.3f} against the label prior's {prior:.3f}: {verdict} the prior" in text


def test_a_model_without_classifier_is_a_clear_error(tiny_root):
    from egmt.config import ModelConfig
    from egmt.model import EGMT

    fuser = EGMTFuser(EGMT(ModelConfig(channels=8, num_heads=2, window_size=8, multi_task=False)), device="cpu")
    pairs = bench.dataset_pairs(tiny_root / "data", "tno")
    with pytest.raises(EGMTError, match="no classifier"):
        classification_table(fuser, "tno", pairs, read_annotations(tiny_root / "annotations" / "tno.jsonl"))
