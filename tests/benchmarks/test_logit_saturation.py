"""benchmarks/logit_saturation.py: the weight map's logits read per pair, saturated where the head
is set to run into its sigmoid, and the head left as it was."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from egmt.config import ModelConfig
from egmt.errors import EGMTError
from egmt.model.network import EGMT
from tests.helpers import load_benchmark


def _tiny(output: str = "weights") -> EGMT:
    torch.manual_seed(0)
    return EGMT(ModelConfig(layout="patch", channels=4, token_dim=8, token_heads=1, fusion_output=output)).eval()


def _validator() -> SimpleNamespace:
    pairs = [SimpleNamespace(name=f"p{i}", ir=torch.rand(1, 32, 48), vi=torch.rand(1, 32, 48)) for i in range(2)]
    return SimpleNamespace(pairs=pairs, features=None)


def test_a_head_set_past_the_sigmoid_reads_saturated_and_a_zero_head_does_not():
    module = load_benchmark("logit_saturation")
    model, validator = _tiny(), _validator()
    with torch.no_grad():
        model.fusion_head.conv3.weight.zero_()
        model.fusion_head.conv3.bias.fill_(100.0)
    shares, largest, _ = module.saturation(model, validator)
    assert shares == [1.0, 1.0] and largest == pytest.approx([100.0, 100.0])
    with torch.no_grad():
        model.fusion_head.conv3.bias.fill_(3.0)
    shares, largest, _ = module.saturation(model, validator)
    assert shares == [0.0, 0.0] and largest == pytest.approx([3.0, 3.0])


def test_the_fused_images_are_the_models_own():
    """The logits read are the ones the model fuses with: their images equal its forward pass."""
    model, validator = _tiny(), _validator()
    _, _, fused = load_benchmark("logit_saturation").saturation(model, validator)
    with torch.no_grad():
        for pair, image in zip(validator.pairs, fused):
            assert torch.allclose(image, model(pair.ir[None], pair.vi[None], classify=False).fused[0], atol=1e-6)


def test_no_weight_map_is_an_error():
    with pytest.raises(EGMTError, match="no weight map"):
        load_benchmark("logit_saturation").saturation(_tiny("image"), _validator())
