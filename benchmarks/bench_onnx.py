"""ONNX Runtime against PyTorch on caption-free fusion, interleaved in one run, and where ORT spends its time.

    python benchmarks/bench_onnx.py [--export DIR] [--rounds 5] [--threads 2]

Both backends fuse the same 640x480 MSRS pair caption-free (classifier pass, then the fusion
pass), alternating pair by pair so that a load change on a shared machine hits both alike;
prints medians, their ratio and the 1-minute load before and after. ORT runs as
``egmt fuse --backend onnxruntime`` does (threads as torch, no spinning), plus the same with
spinning on and with one thread. Then ORT's own profiler: the fusion graph's kernel time by
operator type, and its costliest Transpose nodes (the export's layout moves).
--export DIR: use (or first write) this ``egmt export`` folder of the shipped model (default: a temp one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from egmt.data.pairs import find_pairs, load_pair  # noqa: E402
from egmt.infer.fuser import EGMTFuser  # noqa: E402
from egmt.infer.onnx_model import OnnxEGMT, export_checkpoint  # noqa: E402
from egmt.infer.run import DEFAULT_CHECKPOINT  # noqa: E402

MSRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "msrs"


def caption_free(fuser: EGMTFuser, ir: torch.Tensor, vi: torch.Tensor) -> None:
    entities, _ = fuser.predict_entities(ir, vi)
    fuser.fuse_y(ir, vi, entities)
    fuser._encoded = None


def _ort_variant(folder: Path, threads: int, spinning: bool) -> EGMTFuser:
    fuser = EGMTFuser.from_pretrained(folder, backend="onnxruntime")
    model = OnnxEGMT.load(folder, threads)
    if spinning:  # rebuild the sessions with ORT's default (spinning) thread pool
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
        model.fusion = ort.InferenceSession(str(folder / "fusion.onnx"), options, providers=["CPUExecutionProvider"])
        model.classifier = ort.InferenceSession(str(folder / "classifier.onnx"), options, providers=["CPUExecutionProvider"])
    fuser.model = model
    return fuser


def profile_fusion_graph(folder: Path, ir: torch.Tensor, vi: torch.Tensor, threads: int, runs: int = 3) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = threads, 3
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "egmt-ort-profile")
    session = ort.InferenceSession(str(folder / "fusion.onnx"), options, providers=["CPUExecutionProvider"])
    model = OnnxEGMT.load(folder, threads)
    padded = model.encode(ir, vi)
    feed = {"ir": padded.ir, "vi": padded.vi}
    feed["entities"], feed["entity_mask"] = model._entity_inputs(torch.randn(1, 3, model.config.entity_dim), None)
    for _ in range(runs):
        session.run(None, feed)
    path = Path(session.end_profiling())
    by_op, transposes = defaultdict(float), defaultdict(float)
    shapes = {}
    for event in json.loads(path.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"].get("op_name", "?")
            by_op[op] += event["dur"] / runs / 1e3
            if op == "Transpose":
                transposes[event["name"]] += event["dur"] / runs / 1e3
                shapes[event["name"]] = event["args"].get("input_type_shape")
    path.unlink()
    total = sum(by_op.values())
    print(f"\nORT profile of fusion.onnx, {ir.shape[-1]}x{ir.shape[-2]}, {threads} threads: {total:.0f} ms kernel time per run")
    for op, ms in sorted(by_op.items(), key=lambda x: -x[1])[:10]:
        print(f"  {op:22s} {ms:8.1f} ms  {100 * ms / total:5.1f}%")
    print("  costliest Transpose nodes:")
    for name, ms in sorted(transposes.items(), key=lambda x: -x[1])[:5]:
        print(f"    {ms:7.1f} ms  {name[:-12]:28s} input {shapes[name]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", type=Path, help="egmt export folder of the shipped model (written if it has no fusion.onnx)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pair = load_pair(find_pairs(MSRS)[0])
    ir, vi = pair.ir[None], pair.vi[None]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.export or Path(tmp)
        if not (folder / "fusion.onnx").is_file():
            export_checkpoint(DEFAULT_CHECKPOINT, folder, progress=False)
        variants = {
            "pytorch (reuse)": EGMTFuser.from_pretrained(DEFAULT_CHECKPOINT, device="cpu"),
            f"onnxruntime ({args.threads} threads, no spinning)": _ort_variant(folder, args.threads, False),
            f"onnxruntime ({args.threads} threads, spinning)": _ort_variant(folder, args.threads, True),
            "onnxruntime (1 thread, no spinning)": _ort_variant(folder, 1, False),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        load = os.getloadavg()[0]
        for fuser in variants.values():
            caption_free(fuser, ir, vi)  # warm-up
        for _ in range(args.rounds):
            for name, fuser in variants.items():
                t = time.perf_counter()
                caption_free(fuser, ir, vi)
                times[name].append(time.perf_counter() - t)
        print(f"caption-free, one {ir.shape[-1]}x{ir.shape[-2]} MSRS pair, {args.rounds} interleaved rounds; "
              f"torch threads {args.threads}; 1-min load {load:.2f} -> {os.getloadavg()[0]:.2f}")
        base = statistics.median(times["pytorch (reuse)"])
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:36s} median {med:6.3f} s  min {min(ts):6.3f} s  {med / base:5.2f}x PyTorch's time")
        profile_fusion_graph(folder, ir, vi, args.threads)


if __name__ == "__main__":
    main()
