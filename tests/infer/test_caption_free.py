"""Caption-free entity selection against an independent entity-free pass, with a threshold
strictly between 0 and 1 (thresholds 0 and 1 cannot tell p from 1 - p), on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from egmt.infer.fuser import EGMTFuser

CLASSES = ["person", "tree", "house", "road"]  # the checkpoint fixture's vocabulary


def _image(seed: int) -> np.ndarray:
    x = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(64, 96)), 3)
    return ((x - x.min()) / np.ptp(x)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_selection_is_the_sigmoid_of_an_entity_free_pass(checkpoint, seed):
    # a checkpoint whose validation shows its classifier above the label prior: predictions are used
    validated = {"classification": {"map": 0.9, "prior_map": 0.5}}
    fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu", validation=validated)
    ir, vi = _image(2 * seed), _image(2 * seed + 1)
    with torch.no_grad():
        out = fuser.model(
            torch.from_numpy(ir)[None, None],
            torch.from_numpy(vi)[None, None],
            entities=torch.zeros(1, 0, fuser.model.config.entity_dim),
            entity_mask=torch.zeros(1, 0, dtype=torch.bool),
        )
    probs = torch.sigmoid(out.logits[0]).tolist()
    ranked = sorted(probs, reverse=True)
    assert ranked[1] > ranked[2]  # distinct, so a threshold can split them 2 / 2
    threshold = (ranked[1] + ranked[2]) / 2
    assert 0 < threshold < 1
    result = fuser(ir, vi, threshold=threshold)
    assert result.entity_source == "classifier"
    assert result.entities == [c for c, p in zip(CLASSES, probs) if p > threshold]
    assert len(result.entities) == 2
    assert list(result.probabilities) == CLASSES
    assert np.allclose([result.probabilities[c] for c in CLASSES], probs, rtol=1e-5, atol=1e-7)
