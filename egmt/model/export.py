"""The fusion network as ONNX graphs for ONNX Runtime (``egmt export``).

Two graphs, both with dynamic height and width (multiples of ``window_size``, at least
:func:`~egmt.model.network.fusion_min_side`: the caller pads with
:func:`~egmt.model.network.pad_to_grid` as the network's encoder does, and crops back, so the
graph never branches on the image size):

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

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from egmt.errors import EGMTError
from egmt.fileio import atomic_path
from egmt.files import CLASSIFIER_FILE, FUSION_FILE
from egmt.model.network import EGMT, fusion_min_side, padded_side

OPSET = 18


class FusionGraph(nn.Module):
    """``(ir, vi, entities, entity_mask) -> fused``, inputs already on the window grid."""

    def __init__(self, model: EGMT) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, ir: torch.Tensor, vi: torch.Tensor, entities: torch.Tensor | None = None, entity_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.model(ir, vi, entities, entity_mask, classify=False).fused


class ClassifierGraph(nn.Module):
    """``(ir, vi, valid) -> logits`` of the classifier-only pass without entities: eq. 8 with no
    entity is ``FC(MP(Phi_f^sr))``, the max pool taken where ``valid`` (the unpadded image)."""

    def __init__(self, model: EGMT) -> None:
        super().__init__()
        self.model = model

    def forward(self, ir: torch.Tensor, vi: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        shared = self.model.shared_features(self.model.encode(ir, vi), None, None)
        return self.model.classifier.caption_free(shared, valid)


class _DropMessages(logging.Filter):
    """Drop log records whose message starts with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's notices a user cannot act on, and only those, while it runs:
    "torchvision is not installed. Skipping torchvision::nms" (4 per graph; EGMT uses no
    torchvision op), a dynamic axis name shared by ir and vi, and torch's internal pytree
    deprecation. Anything else still reaches the user."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    drop = _DropMessages("torchvision is not installed")
    registration.addFilter(drop)
    try:
        with warnings.catch_warnings():
            # Each named dynamic axis used twice (ir and vi share H and W): names are kept anyway.
            warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used", category=UserWarning)
            # torch's own pytree deprecation, raised inside the exporter.
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
            yield
    finally:
        registration.removeFilter(drop)


def export_onnx(model: EGMT, folder: str | Path, opset: int = OPSET, progress: bool = True, check: bool = True) -> list[Path]:
    """Write ``folder/fusion.onnx`` (and ``classifier.onnx`` for a multi-task model), each
    atomically; returns the files written. ``check``: run each graph once in ONNX Runtime on
    another image size than the traced one and compare with PyTorch (EGMTError past 1e-4).
    ``progress``: a tqdm bar over the stages (a minute or more on a 2-core CPU)."""
    try:
        import onnxscript  # noqa: F401  (the exporter needs it; fail early with a clear message)
    except ImportError:
        raise EGMTError('ONNX export needs the onnx extra: pip install "egmt[onnx]"') from None
    cfg = model.config
    model = model.eval().cpu()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    s = cfg.window_size
    least = _min_cells(cfg)
    size = torch.export.Dim("h", min=least, max=4096 // s) * s, torch.export.Dim("w", min=least, max=4096 // s) * s
    image = {2: size[0], 3: size[1]}
    jobs = []
    if cfg.text_interaction:
        e = torch.export.Dim("entities", min=1, max=64)
        jobs.append(
            (
                "fusion graph",
                FusionGraph(model),
                ["ir", "vi", "entities", "entity_mask"],
                ["fused"],
                {"ir": image, "vi": image, "entities": {1: e}, "entity_mask": {1: e}},
                FUSION_FILE,
            )
        )
    else:
        jobs.append(("fusion graph", FusionGraph(model), ["ir", "vi"], ["fused"], {"ir": image, "vi": image}, FUSION_FILE))
    if cfg.multi_task:
        jobs.append(
            (
                "classifier graph",
                ClassifierGraph(model),
                ["ir", "vi", "valid"],
                ["logits"],
                {"ir": image, "vi": image, "valid": image},
                CLASSIFIER_FILE,
            )
        )
    written = []
    stages = [job[0] for job in jobs] + (["checks"] if check else [])
    with tqdm(total=len(stages), desc="export", unit="stage", disable=not progress, dynamic_ncols=True) as bar:
        for stage, graph, inputs, outputs, dynamic, name in jobs:
            bar.set_postfix_str(stage)
            graph.eval()  # the wrapper too (a module is built in training mode)
            # Two distinct example tensors: the same tensor passed twice is traced as one input.
            args = _example_inputs(cfg, inputs, max(3, least) * s, max(4, least + 1) * s, torch.Generator().manual_seed(0))
            with atomic_path(folder / name) as tmp, _quiet_exporter():
                program = torch.onnx.export(
                    graph,
                    args,
                    dynamo=True,
                    opset_version=opset,
                    input_names=inputs,
                    output_names=outputs,
                    dynamic_shapes=dynamic,
                    verbose=False,
                )
                program.save(str(tmp), external_data=False)
            written.append(folder / name)
            bar.update()
        if check:
            bar.set_postfix_str("checks")
            for _, graph, inputs, _, _, name in jobs:
                check_graph(graph, folder / name, inputs, cfg)
            bar.update()
    return written


def _example_inputs(cfg, names: list[str], height: int, width: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Inputs for a graph with these input names: random images, 3 entities (the last one
    masked out), a valid mask True on all but the last row and column."""
    made = {
        "ir": lambda: torch.rand(1, cfg.in_channels, height, width, generator=gen),
        "vi": lambda: torch.rand(1, cfg.in_channels, height, width, generator=gen),
        "entities": lambda: torch.randn(1, 3, cfg.entity_dim, generator=gen),
        "entity_mask": lambda: torch.tensor([[True, True, False]]),
        "valid": lambda: torch.ones(1, 1, height, width, dtype=torch.bool),
    }
    return tuple(made[n]() for n in names)


def _min_cells(cfg) -> int:
    """Window-grid cells a side of a graph's input has at least: the encoder pads to them."""
    return padded_side(1, cfg.window_size, fusion_min_side(cfg)) // cfg.window_size


def check_graph(graph: nn.Module, path: Path, inputs: list[str], cfg, tolerance: float = 1e-4) -> float:
    """Run the ONNX graph at ``path`` on ONNX Runtime at another size than the traced one and
    compare with PyTorch; returns the max abs difference, EGMTError past ``tolerance``."""
    import onnxruntime as ort

    s = cfg.window_size
    least = _min_cells(cfg)
    args = list(_example_inputs(cfg, inputs, max(2, least) * s, max(5, least + 2) * s, torch.Generator().manual_seed(1)))
    if "valid" in inputs:
        args[inputs.index("valid")][..., -3:, :] = False  # padding rows: the max pool skips them
    with torch.no_grad():
        expected = graph(*args).numpy()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {n: a.numpy() for n, a in zip(inputs, args)})[0]
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= tolerance:
        raise EGMTError(f"{path}: ONNX Runtime differs from PyTorch by {diff:.2g} (> {tolerance:g}) on a {2 * s}x{5 * s} input")
    return diff
