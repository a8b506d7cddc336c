"""Table V on the tiny data: six metrics in [0, 1], caption-free by default, labels in the model's order."""

from __future__ import annotations

import numpy as np
import pytest

from egmt.bench import benchmark as bench
from egmt.bench.classification import LEAK_ROW, MODALITY_ROWS, classification_markdown, classification_table, pair_labels
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
    assert list(result.rows) == [*MODALITY_ROWS, LEAK_ROW]
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

    text = classification_markdown(result, PAPER_CLASSIFICATION, "paper")
    assert "| Input modality | HL ↓ | RL ↓ | mAP ↑ | AUC ↑ | JI ↑ | F1 ↑ |" in text
    assert f"*{LEAK_ROW}*" in text and "*Fused (IR+VIS) (paper)* | *0.184*" in text
    leak_line = next(line for line in text.splitlines() if LEAK_ROW in line)
    assert "**" not in leak_line  # the leak row is not ranked


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


def test_benchmark_writes_table_v_caption_free(tiny_root, tiny_checkpoint, tmp_path):
    options = bench.BenchmarkOptions(
        data=tiny_root / "data", datasets=["roadscene"], methods=["egmt"], checkpoint=tiny_checkpoint,
        annotations=tiny_root / "annotations", out=tmp_path / "out", results=tmp_path / "r.md",
        tables=["classification"], device="cpu", progress=False, cls_single="blank",
        peers=None, figures=None,
    )
    result = bench.run_benchmark(options)
    assert list(result.classification["roadscene"].rows) == list(MODALITY_ROWS)
    text = options.results.read_text(encoding="utf-8")
    assert "## Multi-label classification (paper Table V)" in text
    assert "### RoadScene (split test.txt): 2 pairs" in text
    assert "(E = 0)" in text and "(IR, 0) and (0, VI)" in text
    assert LEAK_ROW not in text


def test_a_model_without_classifier_is_a_clear_error(tiny_root):
    from egmt.config import ModelConfig
    from egmt.model import EGMT

    fuser = EGMTFuser(EGMT(ModelConfig(channels=8, num_heads=2, window_size=8, multi_task=False)), device="cpu")
    pairs = bench.dataset_pairs(tiny_root / "data", "tno")
    with pytest.raises(EGMTError, match="no classifier"):
        classification_table(fuser, "tno", pairs, read_annotations(tiny_root / "annotations" / "tno.jsonl"))
