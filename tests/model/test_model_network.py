"""EGMT network: shapes, ablation switches, gradients, entity handling, determinism."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from egmt.config import LossConfig, ModelConfig
from egmt.errors import EGMTError
from egmt.losses import MultiTaskLoss
from egmt.model import EGMT, EGMTOutput
from egmt.model.attention import window_partition, window_reverse

D = 384


def make(seed: int = 0, **overrides) -> EGMT:
    torch.manual_seed(seed)
    return EGMT(dataclasses.replace(ModelConfig(), **overrides))


def pair(b: int, h: int, w: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g)


def ents(b: int, e: int, d: int = D, seed: int = 2) -> torch.Tensor:
    return torch.randn(b, e, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (100, 131), (9, 11), (16, 17)])
def test_output_shapes_and_range(size):
    h, w = size
    model = make().eval()
    ir, vi = pair(2, h, w)
    with torch.no_grad():
        out = model(ir, vi, ents(2, 3))
    assert isinstance(out, EGMTOutput)
    assert out.fused.shape == (2, 1, h, w)
    assert out.logits.shape == (2, ModelConfig().num_classes)
    assert torch.isfinite(out.fused).all() and torch.isfinite(out.logits).all()
    assert out.fused.min() >= 0 and out.fused.max() <= 1


def test_window_partition_round_trip():
    x = torch.randn(2, 5, 32, 48)
    win = window_partition(x, 16)
    assert win.shape == (2, 6, 256, 5)
    # The first window holds the top-left 16x16 block, row by row.
    assert torch.equal(win[0, 0, :, 0], x[0, 0, :16, :16].reshape(-1))
    assert torch.equal(win[1, 1, :, 3], x[1, 3, :16, 16:32].reshape(-1))
    assert torch.equal(window_reverse(win, 16, 32, 48), x)
    # The same layout as the one 6-D permute they replace (that exported to slow transposes).
    ref = x.view(2, 5, 2, 16, 3, 16).permute(0, 2, 4, 3, 5, 1).reshape(2, 6, 256, 5)
    assert torch.equal(win, ref)


ABLATIONS = {
    "full": {},
    "no_ca": {"channel_attention": False},
    "no_ta": {"token_attention": False},
    "no_cgha": {"cgha": False},
    "no_ti": {"text_interaction": False},
    "no_mt": {"multi_task": False},
    "no_mt_ti": {"multi_task": False, "text_interaction": False},
    "no_ca_ta": {"channel_attention": False, "token_attention": False},
    "narrow_deep_bias": {"channels": 16, "num_heads": 4, "num_blocks": 2, "relative_position_bias": True},
    "token_classifier": {"classifier": "tokens"},
}


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_ablation_forward_backward_reaches_every_parameter(name):
    cfg = dataclasses.replace(ModelConfig(), **ABLATIONS[name])
    model = make(**ABLATIONS[name]).train()
    if cfg.classifier == "tokens":  # the trainer fills the class texts from the entity bank
        model.classifier.class_text.copy_(torch.randn(cfg.num_classes, cfg.entity_dim))
    ir, vi = pair(2, 32, 40)
    labels = torch.tensor([[1.0, 0, 0, 1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 1, 1]])
    crit = MultiTaskLoss(LossConfig(), torch.full((cfg.num_classes,), 0.3))
    out = model(ir, vi, ents(2, 3), torch.tensor([[True, True, False], [True, False, False]]))
    assert (out.logits is None) == (not cfg.multi_task)
    terms = crit(out.fused, ir, vi, out.logits, labels if cfg.multi_task else None)
    terms["total"].backward()
    names = dict(model.named_parameters())
    without = [n for n, p in names.items() if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert without == []
    # Modules of switched-off parts do not exist at all (so nothing is left untrained).
    has = lambda part: any(part in n for n in names)  # noqa: E731
    assert has("classifier.") == cfg.multi_task
    assert has("classifier.entity_proj") == (cfg.multi_task and cfg.text_interaction and cfg.classifier == "entity")
    assert has("classifier.text_proj") == (cfg.classifier == "tokens")
    assert has("entity_align") == (cfg.cgha and cfg.text_interaction)
    assert has(".cgha.") == (cfg.cgha and cfg.text_interaction)
    assert has(".channel_attention.") == cfg.channel_attention
    assert has(".token_attention.") == cfg.token_attention
    assert has("bias_table") == cfg.relative_position_bias


def test_no_entities_e0_all_padding_and_none_agree():
    model = make().eval()
    ir, vi = pair(2, 40, 33)
    with torch.no_grad():
        none = model(ir, vi)
        empty = model(ir, vi, torch.zeros(2, 0, D), torch.zeros(2, 0, dtype=torch.bool))
        padded = model(ir, vi, ents(2, 4), torch.zeros(2, 4, dtype=torch.bool))
        real = model(ir, vi, ents(2, 4))
    for other in (empty, padded):
        torch.testing.assert_close(other.fused, none.fused, rtol=0, atol=1e-6)
        torch.testing.assert_close(other.logits, none.logits, rtol=0, atol=1e-6)
    # ... and real entities do change the output (otherwise the checks above prove nothing).
    assert (real.fused - none.fused).abs().max() > 1e-4
    assert (real.logits - none.logits).abs().max() > 1e-4


def test_e0_trains():
    model = make().train()
    ir, vi = pair(1, 24, 24)
    out = model(ir, vi, torch.zeros(1, 0, D))
    (out.fused.mean() + out.logits.sum()).backward()
    assert torch.isfinite(out.fused).all() and model.fusion_head.conv1.weight.grad is not None


def test_padded_entities_have_no_effect():
    model = make().eval()
    ir, vi = pair(2, 48, 37)
    e = ents(2, 4)
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    with torch.no_grad():
        batched = model(ir, vi, e, mask)
        garbage = e.clone()
        garbage[~mask] = 1e4 * torch.randn(int((~mask).sum()), D)
        garbage[1, 3] = float("nan")
        batched_garbage = model(ir, vi, garbage, mask)
        alone = [model(ir[i : i + 1], vi[i : i + 1], e[i : i + 1, : int(mask[i].sum())]) for i in range(2)]
    torch.testing.assert_close(batched_garbage.fused, batched.fused, rtol=0, atol=1e-6)
    torch.testing.assert_close(batched_garbage.logits, batched.logits, rtol=0, atol=1e-6)
    for i in range(2):
        torch.testing.assert_close(batched.fused[i : i + 1], alone[i].fused, rtol=0, atol=1e-5)
        torch.testing.assert_close(batched.logits[i : i + 1], alone[i].logits, rtol=0, atol=1e-5)


def test_entity_order_does_not_matter():
    model = make().eval()
    ir, vi = pair(1, 32, 32)
    e = ents(1, 3)
    with torch.no_grad():
        a = model(ir, vi, e)
        b = model(ir, vi, e[:, [2, 0, 1]])
    torch.testing.assert_close(a.fused, b.fused, rtol=0, atol=1e-6)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-6)


def test_entity_mask_is_random_in_training_only():
    model = make()
    ir, vi = pair(1, 32, 32)
    e = ents(1, 3)
    with torch.no_grad():
        model.eval()
        ev1, ev2 = model(ir, vi, e), model(ir, vi, e)
        model.train()
        tr1, tr2 = model(ir, vi, e), model(ir, vi, e)
    assert torch.equal(ev1.logits, ev2.logits)
    assert not torch.equal(tr1.logits, tr2.logits)  # a fresh 60% mask each call
    assert torch.equal(tr1.fused, tr2.fused)  # the mask touches the classifier only


def test_classify_switch_and_multi_task_off():
    ir, vi = pair(1, 20, 20)
    model = make().eval()
    with torch.no_grad():
        full = model(ir, vi)
        fused_only = model(ir, vi, classify=False)
    assert fused_only.logits is None
    assert torch.equal(full.fused, fused_only.fused)
    assert make(multi_task=False)(ir, vi).logits is None


def test_text_interaction_off_ignores_entities():
    model = make(text_interaction=False).eval()
    ir, vi = pair(1, 20, 20)
    with torch.no_grad():
        assert torch.equal(model(ir, vi).fused, model(ir, vi, ents(1, 2)).fused)


def test_deterministic_for_a_seed():
    ir, vi = pair(2, 33, 47)
    e = ents(2, 2)
    outs = []
    for _ in range(2):
        model = make(seed=7).train()
        torch.manual_seed(3)
        out = model(ir, vi, e)
        (out.fused.mean() + out.logits.mean()).backward()
        outs.append((out.fused, out.logits, model.shallow["ir"].conv1.weight.grad))
    for a, b in zip(*outs, strict=True):
        assert torch.equal(a, b)


def test_clip_width_entities():
    model = make(entity_dim=768).eval()
    ir, vi = pair(1, 20, 20)
    with torch.no_grad():
        assert model(ir, vi, ents(1, 5, 768)).logits.shape == (1, 9)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vi": torch.rand(1, 1, 20, 21)},
        {"ir": torch.rand(1, 3, 20, 20), "vi": torch.rand(1, 3, 20, 20)},
        {"entities": torch.randn(1, 2, 768)},
        {"entities": torch.randn(2, 2, D)},
        {"entities": torch.randn(1, 2, D), "entity_mask": torch.ones(1, 3, dtype=torch.bool)},
    ],
)
def test_bad_inputs_raise(kwargs):
    model = make()
    args = {"ir": torch.rand(1, 1, 20, 20), "vi": torch.rand(1, 1, 20, 20)} | kwargs
    with pytest.raises(EGMTError, match="model input"):
        model(**args)


def test_runs_on_another_device_without_cpu_tensors():
    """Forward+backward in training mode on the meta device: any tensor created on the CPU
    instead of the inputs' device (which would break CUDA) raises a device mismatch."""
    with torch.device("meta"):
        model = EGMT(dataclasses.replace(ModelConfig(), relative_position_bias=True)).train()
        ir = torch.empty(2, 1, 37, 53)
        e = torch.empty(2, 3, D)
        mask = torch.empty(2, 3, dtype=torch.bool)
    out = model(ir, ir, e, mask)
    (out.fused.sum() + out.logits.sum()).backward()
    assert out.fused.device.type == "meta" and model.fusion_head.conv1.weight.grad.device.type == "meta"


def test_token_classifier_scores_the_best_matching_pixel_and_reads_no_entity():
    """model.classifier="tokens": a class's logit is its best pixel's cosine with the class text
    (scaled, plus a bias), so a pixel made to match class 2 raises class 2 alone; entities change
    nothing; caption_free masks out the padding (a matching pixel outside ``valid`` does not count)."""
    from egmt.model.heads import TokenClassifier

    torch.manual_seed(0)
    head = TokenClassifier(in_channels=8, entity_dim=D, num_classes=4)
    head.class_text.copy_(torch.randn(4, D))
    shared = torch.rand(1, 8, 6, 7) * 0.01 - 0.005
    base = head(shared)
    target = head.text_proj(head.class_text[2]).detach()
    shared[0, :, 3, 4] = target
    logits = head(shared)
    assert float(logits[0, 2]) == pytest.approx(float((head.scale + head.bias[2]).detach()), abs=1e-4)  # cosine 1
    assert int(logits.argmax()) == 2 and float(logits[0, 2]) > float(base[0, 2]) + 1
    assert torch.equal(head(shared, ents(1, 3), torch.ones(1, 3, dtype=torch.bool)), logits)
    valid = torch.ones(1, 1, 6, 7, dtype=torch.bool)
    assert torch.allclose(head.caption_free(shared, valid), logits)
    valid[0, 0, 3, 4] = False
    assert float(head.caption_free(shared, valid)[0, 2]) < float(logits[0, 2]) - 1
