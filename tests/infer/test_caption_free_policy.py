"""Caption-free fusion uses the classifier's entities only where the checkpoint's validation.json
shows its mAP above the label prior's; otherwise E = 0, and the result says why."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from egmt.cli import main as cli_main
from egmt.errors import EGMTError
from egmt.infer.fuser import VALIDATION_FILE, EGMTFuser, caption_free_policy


def _with_validation(checkpoint, tmp_path, validation):
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint, folder)
    if validation is not None:
        (folder / VALIDATION_FILE).write_text(json.dumps(validation) if not isinstance(validation, str) else validation)
    return folder


def _validation(map_, prior):
    return {
        "step": 100,
        "rule": "max mean validation Qabf",
        "fusion": {"Qabf": 0.5},
        "classification": {"map": map_, "prior_map": prior, "auc": 0.6},
    }


@pytest.fixture
def pair(data_dir):
    return data_dir / "tno" / "ir" / "07.png", data_dir / "tno" / "vi" / "07.png"


def test_classifier_above_the_prior_gives_predicted_entities(checkpoint, tmp_path, pair):
    fuser = EGMTFuser.from_pretrained(_with_validation(checkpoint, tmp_path, _validation(0.61, 0.42)), device="cpu")
    assert fuser.validation["classification"]["map"] == 0.61
    out = fuser(*pair, threshold=0.0)
    assert out.entity_source == "classifier" and out.entities == list(fuser.vocabulary.classes)
    assert set(out.probabilities) == set(out.entities)
    # the predicted entities guide the fusion: not the same as E = 0
    empty = fuser(*pair, entities=[])
    assert not np.allclose(out.image, empty.image)


@pytest.mark.parametrize(
    "validation, reason",
    [
        (None, "none (no validation.json"),
        (_validation(0.42, 0.42), "none (validation mAP 0.420 <= label prior 0.420)"),
        (_validation(0.30, 0.45), "none (validation mAP 0.300 <= label prior 0.450)"),
        ({"step": 1, "rule": "r", "fusion": {}}, "none (validation.json has no classification"),
    ],
)
def test_classifier_not_above_the_prior_fuses_with_no_entity(checkpoint, tmp_path, pair, validation, reason):
    fuser = EGMTFuser.from_pretrained(_with_validation(checkpoint, tmp_path, validation), device="cpu")
    out = fuser(*pair, threshold=0.0)  # a threshold that would pick every class
    assert out.entities == [] and out.entity_source.startswith(reason) and out.probabilities == {}
    assert np.array_equal(out.image, fuser(*pair, entities=[]).image)  # exactly E = 0


def test_entities_csv_says_which_policy_applied(checkpoint, tmp_path, data_dir):
    folder = _with_validation(checkpoint, tmp_path, _validation(0.2, 0.4))
    for modality in ("ir", "vi"):
        (tmp_path / modality).mkdir()
        shutil.copy(data_dir / "tno" / modality / "07.png", tmp_path / modality)
    assert (
        cli_main(
            [
                "fuse",
                "--ir",
                str(tmp_path / "ir"),
                "--vi",
                str(tmp_path / "vi"),
                "-o",
                str(tmp_path / "folder"),
                "--checkpoint",
                str(folder),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    with open(tmp_path / "folder" / "entities.csv") as f:
        row = next(csv.DictReader(f))
    assert row["entity_source"] == "none (validation mAP 0.200 <= label prior 0.400)" and row["entities"] == ""


def test_a_broken_validation_file_is_a_one_line_error(checkpoint, tmp_path):
    folder = _with_validation(checkpoint, tmp_path, "{not json")
    with pytest.raises(EGMTError, match="validation.json: cannot read validation file") as e:
        EGMTFuser.from_pretrained(folder, device="cpu")
    assert "\n" not in str(e.value)


def test_policy_rule():
    assert caption_free_policy(_validation(0.5, 0.4)) == (True, "classifier")
    assert caption_free_policy(_validation(float("nan"), 0.4))[0] is False
    assert caption_free_policy({"classification": {"map": "x", "prior_map": 0.1}})[0] is False
