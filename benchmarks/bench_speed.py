"""Caption-free fusion speed and memory on this CPU: the shipped model and the other layout presets.

Times one 640x480 MSRS pair **caption-free** (the classifier picks the entities, which then guide
the fusion pass), the Y channels already in memory (reading, colour and writing excluded), with
2 torch threads; the median over the first ``--pairs`` MSRS pairs, after one untimed warm-up pair.
Every variant of a model is timed in the same run, so the ratio against the first row ("two full
passes", the fuser before the entity-free reuse) holds even when the machine is shared; the
1-minute load average is reported before and after each row.

Variants (levers of issue 9):
  two full passes    a full forward without entities (classifier + unused reconstructor), then a
                     full forward with the chosen entities (what `egmt fuse` did before)
  reuse              EGMT.encode once (shallow features, MCA, MSA: nothing depends on the entities),
                     a classifier-only decode, then the fusion decode (what EGMTFuser does now)
  reuse, channels-last   the same with channels-last convolution weights
  reuse, torch.compile   encode and decode compiled by inductor (compile time reported apart)
  onnxruntime        `egmt export` graphs on ONNX Runtime: classifier graph, then fusion graph

Peak RSS (VmHWM of a fresh process that loads the model and fuses one pair): a 640x480 pair
caption-free, and a 3840x2160 pair (an MSRS pair resized) fused in the fuser's tiles with given
entities (the caption-free classifier pass runs over the same tiles, so it needs no more memory).

    python benchmarks/bench_speed.py                    # writes docs/speed.md
    python benchmarks/bench_speed.py --pairs 5 --skip 4k --out /tmp/speed.md
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from egmt.bench.profile import machine_description  # noqa: E402
from egmt.config import EGMTConfig  # noqa: E402
from egmt.data.pairs import find_pairs, load_pair  # noqa: E402
from egmt.fileio import write_text_atomic  # noqa: E402
from egmt.infer.fuser import EGMTFuser  # noqa: E402
from egmt.infer.run import DEFAULT_CHECKPOINT  # noqa: E402
from egmt.model import EGMT  # noqa: E402

MSRS = REPO.parent / "shared" / "data" / "msrs"
TARGET_S = 1.0
THREADS = 2
GIVEN = ["person", "car", "road"]  # entities of the 3840x2160 memory run


PRESETS = ["configs/pixel.json", "configs/patch-small.json", "configs/patch-fast.json"]


def preset_checkpoint(preset: Path, folder: Path) -> Path:
    """A model preset (``configs/*.json``), untrained (seed 0), with the shipped checkpoint's other
    settings, entity bank and vocabulary: speed does not depend on the weights (only on the number
    of entities the classifier picks, which untrained weights choose differently)."""
    cfg = EGMTConfig.load(DEFAULT_CHECKPOINT / "config.json")
    cfg.model = dataclasses.replace(EGMTConfig.load(preset).model, fusion_output=cfg.model.fusion_output)
    torch.manual_seed(0)
    EGMT(cfg.model).save_pretrained(folder, cfg)
    for name in ("entity_bank.safetensors", "vocabulary.json"):
        (folder / name).write_bytes((DEFAULT_CHECKPOINT / name).read_bytes())
    return folder


def two_full_passes(fuser: EGMTFuser, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """The caption-free path before the reuse: two complete forwards."""
    model = fuser.model
    with torch.no_grad():
        probs = torch.sigmoid(model(ir, vi).logits[0]).tolist()
        chosen = [c for c, p in zip(fuser.vocabulary.classes, probs) if p > 0.5]
        feats = fuser.entity_features(chosen)[None] if chosen else None
        return model(ir, vi, feats, classify=False).fused


def caption_free(fuser: EGMTFuser, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """What EGMTFuser does: predict the entities (classifier-only pass), then fuse with them."""
    entities, _ = fuser.predict_entities(ir, vi)
    out = fuser.fuse_y(ir, vi, entities)
    fuser._encoded = None
    return out


def time_variant(name: str, make, run, pairs) -> dict:
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    fuser = make()
    run(fuser, *pairs[0])  # warm-up (and compilation)
    setup = time.perf_counter() - t0
    times = []
    for ir, vi in pairs:
        t = time.perf_counter()
        run(fuser, ir, vi)
        times.append(time.perf_counter() - t)
    return {"variant": name, "median": statistics.median(times), "min": min(times), "setup": setup,
            "load": (load_before, os.getloadavg()[0]), "n": len(times)}


def speed_rows(checkpoint: Path, pairs, variants: list[str], work: Path) -> list[dict]:
    torch_fuser = lambda: EGMTFuser.from_pretrained(checkpoint, device="cpu")  # noqa: E731
    table = {
        "two full passes": (torch_fuser, two_full_passes),
        "reuse": (torch_fuser, caption_free),
        "reuse, channels-last": (lambda: _channels_last(torch_fuser()), caption_free),
        "reuse, torch.compile": (lambda: torch_fuser().compile(), caption_free),
        "onnxruntime": (lambda: _onnx_fuser(checkpoint, work), caption_free),
    }
    rows = []
    for name in variants:
        make, run = table[name]
        try:
            rows.append(time_variant(name, make, run, pairs))
        except Exception as e:  # noqa: BLE001 - a lever that does not work here is a result too
            rows.append({"variant": name, "error": " ".join(str(e).split())[:160]})
        print(rows[-1], flush=True)
    return rows


def _channels_last(fuser: EGMTFuser) -> EGMTFuser:
    fuser.model.to(memory_format=torch.channels_last)
    return fuser


def _onnx_fuser(checkpoint: Path, work: Path) -> EGMTFuser:
    out = work / f"onnx-{checkpoint.name}"
    if not (out / "fusion.onnx").is_file():
        from egmt.infer.onnx_model import export_checkpoint

        export_checkpoint(checkpoint, out, progress=False)
    return EGMTFuser.from_pretrained(out, backend="onnxruntime")


# ----------------------------------------------------------------------------- memory


def rss_child(checkpoint: str, size: str, ir_path: str, vi_path: str) -> None:
    """In a fresh process: load the fuser, fuse one pair at ``size`` (WxH), print JSON."""
    from PIL import Image

    from egmt.data.pairs import pair_from_arrays

    torch.set_num_threads(THREADS)
    w, h = (int(v) for v in size.split("x"))
    load = lambda p: Image.open(p).convert("RGB").resize((w, h), Image.BICUBIC)  # noqa: E731
    import numpy as np

    ir = np.asarray(load(ir_path), dtype=np.float32) / 255
    vi = np.asarray(load(vi_path), dtype=np.float32) / 255
    fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu")
    t = time.perf_counter()
    big = h * w > 640 * 480
    result = fuser(ir, vi, entities=GIVEN if big else None)
    seconds = time.perf_counter() - t
    tiled = fuser._tile(h, w)
    print(json.dumps({"peak_gib": peak_rss_gib(), "seconds": seconds, "tile": tiled, "shape": list(result.image.shape[:2]),
                      "entities": "given" if big else "caption-free"}))


def peak_rss_gib() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux keeps that across
    fork + exec, so a child would report the parent's peak."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rss_row(checkpoint: Path, size: str, pair) -> dict:
    cmd = [sys.executable, __file__, "--rss-child", str(checkpoint), size, str(pair.ir), str(pair.vi)]
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"size": size, "error": (done.stderr.strip().splitlines() or ["?"])[-1][:160]}
    return {"size": size} | json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report


def markdown(models: dict[str, list[dict]], memory: dict[str, list[dict]], n_pairs: int, started: str) -> str:
    m = machine_description("cpu")
    lines = ["# Speed and memory of caption-free fusion on this CPU", "",
             "Made by `python benchmarks/bench_speed.py` (do not edit by hand).", "",
             f"- Date: {started}; machine: {m['cpu']}; torch {m['torch']}; torch threads: {THREADS}",
             f"- Time: seconds per 640×480 MSRS pair, caption-free (classifier pass, then the fusion pass with "
             f"the classes above 0.5), Y channels in memory; median (and min) over {n_pairs} pairs after one warm-up pair.",
             "- Load: 1-minute load average before → after the row (2 cores; other jobs share the machine, "
             "so compare rows of one model by their ratio to its first row).",
             f"- Target: ≤ {TARGET_S:.1f} s per pair for the shipped model.", ""]
    for model, rows in models.items():
        lines += [f"## {model}", "", "| Variant | Median (s) | Min (s) | vs two full passes | Warm-up + setup (s) | Load | Target ≤ 1 s |",
                  "|:---|---:|---:|---:|---:|:---|:---|"]
        base = next((r["median"] for r in rows if "median" in r), None)
        for r in rows:
            if "error" in r:
                lines.append(f"| {r['variant']} | – | – | – | – | – | does not run here: {r['error']} |")
                continue
            ratio = f"{base / r['median']:.2f}× faster" if base else "–"
            met = "yes" if r["median"] <= TARGET_S else "no"
            lines.append(f"| {r['variant']} | {r['median']:.3f} | {r['min']:.3f} | {ratio} | {r['setup']:.1f} | "
                         f"{r['load'][0]:.2f} → {r['load'][1]:.2f} | {met} |")
        lines.append("")
    if memory:
        lines += ["## Peak memory", "",
                  "Peak RSS of a fresh process that loads the model and fuses one pair (2 threads). 3840×2160: an MSRS pair "
                  f"resized, entities given ({', '.join(GIVEN)}), fused in the fuser's tiles; the machine has 24 GiB.", "",
                  "| Model | Pair | Entities | Tiles | Peak RSS (GiB) | Seconds |", "|:---|:---|:---|:---|---:|---:|"]
        for model, rows in memory.items():
            for r in rows:
                if "error" in r:
                    lines.append(f"| {model} | {r['size']} | – | – | failed: {r['error']} | – |")
                    continue
                tiles = f"{r['tile']}×{r['tile']}" if r["tile"] else "one piece"
                lines.append(f"| {model} | {r['size']} | {r['entities']} | {tiles} | {r['peak_gib']:.2f} | {r['seconds']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=5, help="MSRS pairs timed (default 5; at least 5 for the table)")
    p.add_argument("--variants", nargs="+", default=["two full passes", "reuse", "reuse, channels-last", "reuse, torch.compile", "onnxruntime"])
    p.add_argument("--presets", nargs="*", type=Path, default=[REPO / f for f in PRESETS],
                   help="model presets timed untrained beside the shipped model (one equal to it is left out)")
    p.add_argument("--skip", nargs="*", default=[], choices=["speed", "4k", "memory"], help="parts to skip")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "speed.md", help="Markdown table (default docs/speed.md)")
    p.add_argument("--rss-child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    torch.set_num_threads(THREADS)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    msrs = find_pairs(MSRS)[: args.pairs]
    pairs = [(lp.ir[None], lp.vi[None]) for lp in map(load_pair, msrs)]
    if any(ir.shape[-2:] != (480, 640) for ir, _ in pairs):
        raise SystemExit("expected 640x480 MSRS pairs")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shipped = EGMTConfig.load(DEFAULT_CHECKPOINT / "config.json").model
        checkpoints = {f"{DEFAULT_CHECKPOINT.name} (shipped, {shipped.layout} layout)": DEFAULT_CHECKPOINT}
        for preset in args.presets:
            model = EGMTConfig.load(preset).model
            if dataclasses.replace(model, fusion_output=shipped.fusion_output, entity_dim=shipped.entity_dim,
                                   num_classes=shipped.num_classes) == shipped:
                continue  # the shipped model's own architecture
            checkpoints[f"{preset.stem} preset (untrained, {model.layout} layout)"] = preset_checkpoint(preset, work / preset.stem)
        models, memory = {}, {}
        for name, ckpt in checkpoints.items():
            if "speed" not in args.skip:
                models[name] = speed_rows(ckpt, pairs, args.variants, work)
            if "memory" not in args.skip:
                sizes = ["640x480"] + ([] if "4k" in args.skip else ["3840x2160"])
                memory[name] = [rss_row(ckpt, s, msrs[0]) for s in sizes]
                print(memory[name], flush=True)
        text = markdown(models, memory, len(pairs), started)
    write_text_atomic(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
