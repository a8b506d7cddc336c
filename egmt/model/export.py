"""The fusion network as ONNX graphs for ONNX Runtime (``egmt export``).

Two graphs, both with dynamic height and width (multiples of ``window_size``: the caller pads
to the window grid with :func:`~egmt.model.network.pad_to_grid` and crops back, so the graph
never branches on the image size):

* ``fusion.onnx``: ``ir, vi [1, 1, H, W]``, ``entities [1, E, D]`` (E >= 1, dynamic) and
  ``entity_mask [1, E]`` bool -> ``fused [1, 1, H, W]`` (classifier off). An image without
  entities is fed one all-zero row with a False mask, which the network treats as E = 0.
  Without text interaction the graph has no entity inputs.
* ``classifier.onnx`` (multi-task models): ``ir, vi`` and ``valid [1, 1, H, W]`` bool (True on
  the image, False on the padding) -> ``logits [1, K]`` of the entity-free classifier-only pass
  that caption-free inference starts with (its global max pool skips the padding).

Needs the ``onnx`` extra (``pip install "egmt[onnx]"``: onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from egmt.errors import EGMTError
from egmt.fileio import atomic_path
from egmt.model.network import EGMT

FUSION_FILE = "fusion.onnx"
CLASSIFIER_FILE = "classifier.onnx"
OPSET = 18


class FusionGraph(nn.Module):
    """``(ir, vi, entities, entity_mask) -> fused``, inputs already on the window grid."""

    def __init__(self, model: EGMT) -> None:
        super().__init__()
        self.model = model

    def forward(self, ir: torch.Tensor, vi: torch.Tensor, entities: torch.Tensor | None = None,
                entity_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(ir, vi, entities, entity_mask, classify=False).fused


class ClassifierGraph(nn.Module):
    """``(ir, vi, valid) -> logits`` of the classifier-only pass without entities: eq. 8 with no
    entity is ``FC(MP(Phi_f^sr))``, the max pool taken where ``valid`` (the unpadded image)."""

    def __init__(self, model: EGMT) -> None:
        super().__init__()
        self.model = model

    def forward(self, ir: torch.Tensor, vi: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        shared = self.model.shared_features(self.model.encode(ir, vi), None, None)
        return self.model.classifier.fc(shared.masked_fill(~valid, float("-inf")).amax(dim=(2, 3)))


def export_onnx(model: EGMT, folder: str | Path, opset: int = OPSET) -> list[Path]:
    """Write ``folder/fusion.onnx`` (and ``classifier.onnx`` for a multi-task model), each
    atomically; returns the files written."""
    try:
        import onnxscript  # noqa: F401  (the exporter needs it; fail early with a clear message)
    except ImportError:
        raise EGMTError('ONNX export needs the onnx extra: pip install "egmt[onnx]"') from None
    cfg = model.config
    model = model.eval().cpu()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    s = cfg.window_size
    size = torch.export.Dim("h", min=1, max=4096 // s) * s, torch.export.Dim("w", min=1, max=4096 // s) * s
    image = {2: size[0], 3: size[1]}
    # Two distinct example tensors: the same tensor passed twice is traced as one input.
    ir, vi = torch.rand(1, cfg.in_channels, 3 * s, 4 * s), torch.rand(1, cfg.in_channels, 3 * s, 4 * s)
    jobs = []
    if cfg.text_interaction:
        e = torch.export.Dim("entities", min=1, max=64)
        ents, mask = torch.randn(1, 3, cfg.entity_dim), torch.tensor([[True, True, False]])
        jobs.append((FusionGraph(model), (ir, vi, ents, mask), ["ir", "vi", "entities", "entity_mask"], ["fused"],
                     {"ir": image, "vi": image, "entities": {1: e}, "entity_mask": {1: e}}, FUSION_FILE))
    else:
        jobs.append((FusionGraph(model), (ir, vi), ["ir", "vi"], ["fused"], {"ir": image, "vi": image}, FUSION_FILE))
    if cfg.multi_task:
        valid = torch.ones(1, 1, 3 * s, 4 * s, dtype=torch.bool)
        jobs.append((ClassifierGraph(model), (ir, vi, valid), ["ir", "vi", "valid"], ["logits"],
                     {"ir": image, "vi": image, "valid": image}, CLASSIFIER_FILE))
    written = []
    for graph, args, inputs, outputs, dynamic, name in jobs:
        with atomic_path(folder / name) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, args, dynamo=True, opset_version=opset, input_names=inputs,
                                        output_names=outputs, dynamic_shapes=dynamic, verbose=False)
            program.save(str(tmp), external_data=False)
        written.append(folder / name)
    return written
