"""Run a folder written by ``egmt export`` with ONNX Runtime, behind the part of the
:class:`~egmt.model.EGMT` interface that :class:`~egmt.infer.fuser.EGMTFuser` uses
(``config``, ``encode``, ``decode``), so ``egmt fuse --backend onnxruntime`` is the same fuser.

``encode`` only pads the pair to the window grid (the graphs are whole passes: there is no
entity-free state to share between the classifier graph and the fusion graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from egmt.config import EGMTConfig, ModelConfig
from egmt.errors import EGMTError
from egmt.files import BANK_FILE, CLASSIFIER_FILE, CONFIG_FILE, FUSION_FILE, VALIDATION_FILE, VOCABULARY_FILE
from egmt.model.network import EGMTOutput, fusion_min_side, pad_to_grid

#: Beside the graphs, the checkpoint files the fuser reads: the config, the entity bank and
#: vocabulary, and validation.json (the caption-free policy: without it ONNX Runtime would
#: fuse caption-free pairs with no entity where PyTorch uses the classifier's).
CHECKPOINT_FILES = (CONFIG_FILE, BANK_FILE, VOCABULARY_FILE, VALIDATION_FILE)


def export_checkpoint(checkpoint: str | Path, out: str | Path, opset: int | None = None, progress: bool = True) -> list[Path]:
    """``egmt export``: a checkpoint (or run) folder's graphs and :data:`CHECKPOINT_FILES`
    (those it has) in ``out``, each written atomically; returns the paths written."""
    from egmt.fileio import write_bytes_atomic
    from egmt.model import EGMT
    from egmt.model.export import OPSET, export_onnx
    from egmt.train.checkpoint import resolve_checkpoint

    folder = resolve_checkpoint(checkpoint)
    out = Path(out)
    written = export_onnx(EGMT.from_pretrained(folder), out, opset or OPSET, progress=progress)
    for name in CHECKPOINT_FILES:
        if (folder / name).is_file():
            write_bytes_atomic(out / name, (folder / name).read_bytes())
            written.append(out / name)
    return written


@dataclass
class PaddedPair:
    """A pair on the window grid (numpy, as ONNX Runtime takes it) and its size before padding."""

    ir: np.ndarray
    vi: np.ndarray
    size: tuple[int, int]


class OnnxEGMT:
    """The exported graphs of one checkpoint on ONNX Runtime's CPU provider."""

    def __init__(self, folder: str | Path, config: ModelConfig, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise EGMTError('the onnxruntime backend needs the onnx extra: pip install "egmt[onnx]"') from None
        folder = Path(folder)
        self.config = config
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: on a CPU shared with other jobs the
        # spinning took cores from the working threads (fusion graph 1.31 s -> 1.03 s at load 5).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3

        def session(name: str):
            path = folder / name
            if not path.is_file():
                raise EGMTError(
                    f"{path}: not found; --backend onnxruntime reads a folder written by `egmt export` "
                    f"(`egmt export --checkpoint CKPT -o EXPORTED`, then `--checkpoint EXPORTED`)"
                )
            try:
                return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as e:  # noqa: BLE001 - onnxruntime raises its own error types
                raise EGMTError(f"{path}: cannot load ONNX graph ({' '.join(str(e).split())[:200]})") from None

        self.fusion = session(FUSION_FILE)
        self.classifier = session(CLASSIFIER_FILE) if config.multi_task else None
        self._fusion_inputs = {i.name for i in self.fusion.get_inputs()}

    @classmethod
    def load(cls, folder: str | Path, threads: int | None = None) -> OnnxEGMT:
        """From an ``egmt export`` folder (its config.json and graphs)."""
        config = Path(folder) / CONFIG_FILE
        if not config.is_file():
            raise EGMTError(f"{config}: not found (is {folder} a folder written by `egmt export`?)")
        return cls(folder, EGMTConfig.load(config).model, threads)

    # The parts of nn.Module's interface the fuser calls.
    def to(self, device: torch.device | str) -> OnnxEGMT:
        if torch.device(device).type != "cpu":
            raise EGMTError("the onnxruntime backend runs on the CPU only (use --device cpu)")
        return self

    def eval(self) -> OnnxEGMT:
        return self

    def encode(self, ir: torch.Tensor, vi: torch.Tensor) -> PaddedPair:
        if ir.shape[0] != 1:
            raise EGMTError("the onnxruntime backend fuses one pair at a time")
        s = self.config.window_size
        least = fusion_min_side(self.config)
        grid = lambda x: pad_to_grid(x.detach().cpu().float(), s, least).numpy()  # noqa: E731
        return PaddedPair(grid(ir), grid(vi), (int(ir.shape[-2]), int(ir.shape[-1])))

    def decode(
        self,
        encoded: PaddedPair,
        entities: torch.Tensor | None = None,
        entity_mask: torch.Tensor | None = None,
        classify: bool = True,
        fuse: bool = True,
    ) -> EGMTOutput:
        """Fused image from the fusion graph (``fuse``), logits from the classifier graph
        (``classify``: the entity-free pass only)."""
        h, w = encoded.size
        fused = logits = None
        if fuse:
            feed = {"ir": encoded.ir, "vi": encoded.vi}
            if "entities" in self._fusion_inputs:
                feed["entities"], feed["entity_mask"] = self._entity_inputs(entities, entity_mask)
            fused = torch.from_numpy(self.fusion.run(None, feed)[0][..., :h, :w])
        if classify and self.classifier is not None:
            if entities is not None and entities.shape[1] and (entity_mask is None or entity_mask.any()):
                raise EGMTError("the exported classifier runs without entities only (caption-free inference)")
            valid = np.zeros((1, 1, *encoded.ir.shape[-2:]), dtype=bool)
            valid[..., :h, :w] = True
            logits = torch.from_numpy(self.classifier.run(None, {"ir": encoded.ir, "vi": encoded.vi, "valid": valid})[0])
        return EGMTOutput(fused=fused, logits=logits)

    def _entity_inputs(self, entities: torch.Tensor | None, mask: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
        """Entities ``[1, E, D]`` and mask ``[1, E]``; no entity -> one zero row, masked out."""
        if entities is None or entities.shape[1] == 0:
            return np.zeros((1, 1, self.config.entity_dim), np.float32), np.zeros((1, 1), bool)
        if mask is None:
            mask = torch.ones(entities.shape[:2], dtype=torch.bool)
        # Padding rows are zeroed, as the network does (a NaN there must not reach the graph).
        entities = entities.detach().cpu().float().masked_fill(~mask.cpu()[..., None], 0.0)
        return entities.numpy(), mask.cpu().numpy().astype(bool)
