"""Table VII on this machine: FLOPs, parameters and inference time of EGMT and the baselines.

* FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` over one fusion forward
  (classification branch off) of a single pair, on meta tensors (nothing is computed). It
  counts a multiply-add as 2 FLOPs; many papers count multiply-adds (GMACs = FLOPs / 2).
  The paper's 111.9 G is at an unstated input size, so we report at 448x448 (its training
  crop) and at each dataset's mean image size, with ``entities`` entity features (default
  8, the paper's maximum; with none the CGHA stage is skipped and the count drops).
* Parameters: every parameter of the checkpoint (classifier included), in millions.
* Time: mean seconds per pair over a dataset, fusion only: the Y channels are already in
  memory and the pair's entities already resolved (image reading, colour conversion,
  entity lookup by the classifier and writing are excluded); classification branch off as
  the paper measures; after 1 untimed warm-up pair; CUDA is synchronised before each stop.
  Baselines are timed the same way on the luma arrays (they have no parameters; FLOPs are
  not counted for them).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from egmt.baselines import get_baseline
from egmt.config import ModelConfig
from egmt.data.pairs import Pair, load_pair
from egmt.errors import EGMTError
from egmt.infer.entities import EntityResolver
from egmt.infer.fuser import EGMTFuser
from egmt.model import EGMT

#: The paper's training crop, where we also report FLOPs.
REFERENCE_SIZE = (448, 448)  # (H, W)
FLOP_ENTITIES = 8  # entity features in the FLOP count (paper: 2-8 per pair)


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (every tensor in ``model.parameters()``)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(config: ModelConfig, height: int, width: int, entities: int = FLOP_ENTITIES) -> int:
    """FLOPs of one fusion forward (batch 1, classifier off) at ``height x width`` with
    ``entities`` entity features; a multiply-add counts 2. Runs on meta tensors."""
    if height < 1 or width < 1:
        raise EGMTError(f"FLOP count: image size must be positive, got {width}x{height}")
    return int(_count_on_meta(config, height, width, entities)[1].get_total_flops())


def _count_on_meta(config: ModelConfig, height: int, width: int, entities: int) -> tuple[EGMT, FlopCounterMode]:
    """A meta-tensor model and the FLOP counter of its fusion forward (batch 1, classifier off)."""
    with torch.device("meta"):
        model = EGMT(config).eval()
        ir = torch.empty(1, config.in_channels, height, width)
        ents = torch.empty(1, entities, config.entity_dim)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(ir, ir, ents if entities > 0 else None, classify=False)
    return model, counter


def image_size(path) -> tuple[int, int]:
    """(H, W) of an image file from its header (no decoding)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad files
        raise EGMTError(f"{path}: cannot read image size ({e})") from None
    return h, w


def mean_image_size(pairs: Sequence[Pair]) -> tuple[int, int]:
    """Mean (H, W) of the pairs' infrared images, rounded to whole pixels."""
    if not pairs:
        raise EGMTError("mean image size of no pairs")
    sizes = np.array([image_size(p.ir) for p in pairs], dtype=np.float64)
    h, w = np.rint(sizes.mean(axis=0)).astype(int)
    return int(h), int(w)


def machine_description(device: torch.device | str | None = None) -> dict[str, str]:
    """CPU model, torch version, torch threads and the device (GPU name when CUDA)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "cpu": f"{cpu} ({cores} cores available)",
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "device": "cpu",
    }
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and torch.cuda.is_available():
        info["device"] = f"{dev} ({torch.cuda.get_device_name(dev)})"
    elif dev.type != "cpu":
        info["device"] = str(dev)
    return info


def _timed(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


@dataclass
class EfficiencyResult:
    """Everything Table VII reports for this machine."""

    methods: list[str]
    datasets: list[str]
    seconds: dict[str, dict[str, float]]  # method -> dataset -> mean s per pair
    pairs_timed: dict[str, int]  # dataset -> pairs timed (after the warm-up)
    machine: dict[str, str]
    params: int | None = None  # EGMT parameters
    classifier_params: int | None = None
    flops_reference: int | None = None  # at REFERENCE_SIZE
    flops_by_dataset: dict[str, tuple[tuple[int, int], int]] = field(default_factory=dict)  # ds -> ((H, W), FLOPs)
    flop_entities: int = FLOP_ENTITIES
    entity_sources: dict[str, str] = field(default_factory=dict)  # dataset -> how egmt's entities were chosen


def profile(
    datasets: Mapping[str, Sequence[Pair]],
    methods: Sequence[str],
    fuser: EGMTFuser | None = None,
    resolvers: dict[str, EntityResolver] | None = None,
    *,
    max_pairs: int | None = None,
    flop_entities: int = FLOP_ENTITIES,
    threshold: float = 0.5,
    progress: bool = True,
) -> EfficiencyResult:
    """Measure Table VII: FLOPs and parameters of ``fuser``'s model, and the mean fusion time
    per pair of every method on every dataset (``{name: pairs}``; the first ``max_pairs``
    + 1 pairs, the first being the warm-up). ``"egmt"`` in ``methods`` needs ``fuser``; its
    entities per pair come from ``resolvers[dataset]`` (annotations), else from the
    classifier (caption-free; chosen before timing)."""
    methods = list(methods)
    if "egmt" in methods and fuser is None:
        raise EGMTError("profiling egmt needs a checkpoint")
    if max_pairs is not None and max_pairs < 1:
        raise EGMTError("--max-pairs must be at least 1")
    resolvers = resolvers or {}
    device = fuser.device if fuser is not None else torch.device("cpu")
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    result = EfficiencyResult(
        methods, list(datasets), {m: {} for m in methods}, {}, machine_description(device), flop_entities=flop_entities
    )
    if fuser is not None:
        cfg = fuser.model.config
        result.params = count_parameters(fuser.model)
        result.classifier_params = count_parameters(fuser.model.classifier) if fuser.model.classifier is not None else 0
        result.flops_reference = count_flops(cfg, *REFERENCE_SIZE, flop_entities)

    for name, pairs in datasets.items():
        if not pairs:
            raise EGMTError(f"{name}: no pairs to profile")
        if fuser is not None:
            size = mean_image_size(pairs)
            result.flops_by_dataset[name] = (size, count_flops(fuser.model.config, *size, flop_entities))
        chosen = list(pairs[: max_pairs + 1] if max_pairs else pairs)
        result.pairs_timed[name] = max(len(chosen) - 1, 1)
        loaded = [load_pair(p) for p in tqdm(chosen, desc=f"load ({name})", unit="pair", disable=not progress)]
        for method in methods:
            if method == "egmt":
                assert fuser is not None  # checked above
                resolver = resolvers.get(name) or EntityResolver()
                inputs, sources = [], set()
                for pair in loaded:
                    ir, vi = pair.ir[None].to(device), pair.vi[None].to(device)
                    ents, source = resolver(pair.name)
                    if ents is None:
                        ents, source, _ = fuser.caption_free_entities(ir, vi, threshold)
                        source = f"caption-free: {source}"
                    sources.add(source)
                    inputs.append((ir, vi, ents))
                result.entity_sources[name] = ", ".join(sorted(sources))
                calls = [(lambda a=a, b=b, e=e: fuser.fuse_y(a, b, e)) for a, b, e in inputs]
            else:
                rule = get_baseline(method)
                arrays = [(p.ir[0].numpy(), p.vi[0].numpy()) for p in loaded]
                calls = [(lambda a=a, b=b, rule=rule: rule(a, b)) for a, b in arrays]
            _timed(calls[0], sync)  # warm-up
            timed = calls[1:] or calls  # a one-pair dataset: time that pair again
            times = [_timed(c, sync) for c in tqdm(timed, desc=f"time {method} ({name})", unit="pair", disable=not progress)]
            result.seconds[method][name] = float(np.mean(times))
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def efficiency_markdown(
    result: EfficiencyResult,
    display: dict[str, str] | None = None,
    dataset_titles: dict[str, str] | None = None,
    paper: dict | None = None,
) -> str:
    """Table VII (Method | FLOPs (G) at 448x448 | Params (M) | time per dataset) and a second
    table of EGMT's FLOPs at each dataset's mean image size, with their captions."""
    display = display or {}
    titles = dataset_titles or {}
    h, w = REFERENCE_SIZE
    header = ["Method", f"FLOPs (G) @ {w}×{h}", "Params (M)"] + [f"{titles.get(d, d)} time (s)" for d in result.datasets]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for m in result.methods:
        is_egmt = m == "egmt"
        flops = result.flops_reference / 1e9 if is_egmt and result.flops_reference is not None else None
        params = result.params / 1e6 if is_egmt and result.params is not None else (None if is_egmt else 0.0)
        cells = [display.get(m, m), _fmt(flops, ".4g"), _fmt(params, ".4g")]
        cells += [_fmt(result.seconds[m].get(d), ".4g") for d in result.datasets]
        lines.append("| " + " | ".join(cells) + " |")
    if paper:
        cells = ["*EGMT, paper (Table VII, RTX 4090)*", f"*{paper['flops_g']}*", f"*{paper['params_m']}*"]
        cells += [f"*{paper['seconds'][d]}*" if d in paper["seconds"] else "–" for d in result.datasets]
        lines.append("| " + " | ".join(cells) + " |")
    machine = result.machine
    timed = ", ".join(f"{titles.get(d, d)} {n}" for d, n in result.pairs_timed.items())
    caption = (
        f"\nTime: mean seconds per pair, fusion only (images already in memory as Y channels; reading, "
        f"colour conversion and writing excluded), classification branch off as the paper measures, "
        f"after 1 warm-up pair; pairs timed: {timed}. Machine: {machine['cpu']}, torch {machine['torch']}, "
        f"torch threads: {machine['threads']}, device {machine['device']}. "
    )
    if "egmt" in result.methods and result.params is not None and result.classifier_params is not None:
        caption += (
            f"FLOPs by torch.utils.flop_counter.FlopCounterMode, a multiply-add counted as 2 FLOPs "
            f"(GMACs = FLOPs / 2), one pair, classifier off, {result.flop_entities} entity features. "
            f"Params: all of the checkpoint's parameters, the classifier's {result.classifier_params / 1e6:.3f} M included. "
        )
        if result.entity_sources:
            caption += (
                "EGMT's entities: " + "; ".join(f"{titles.get(d, d)}: {s}" for d, s in result.entity_sources.items()) + ". "
            )
    caption += "Baselines: no parameters; their FLOPs are not counted. No bold: the rows are not ranked."
    if paper:
        caption += " The paper's row (italics) is its own measurement on an RTX 4090 GPU, at an unstated input size."
    text = "\n".join(lines) + "\n" + caption + "\n"

    if result.flops_by_dataset and result.flops_reference is not None:
        rows = ["| Input | Size (W×H) | FLOPs (G) | GMACs |", "|:---|---:|---:|---:|"]
        rows.append(
            f"| {w}×{h} (training crop) | {w}×{h} | {result.flops_reference / 1e9:.4g} | {result.flops_reference / 2e9:.4g} |"
        )
        for d, ((dh, dw), flops) in result.flops_by_dataset.items():
            rows.append(f"| {titles.get(d, d)} mean image | {dw}×{dh} | {flops / 1e9:.4g} | {flops / 2e9:.4g} |")
        text += "\nEGMT's FLOPs by input size (one pair, classifier off):\n\n" + "\n".join(rows) + "\n"
    return text


# --------------------------------------------------------------------------- cost of a config

#: Parts of the network for the cost breakdown: part -> module names (a component of the path).
PARTS = {
    "shallow features": ("shallow",),
    "MCA + FFN (eq. 1-2)": ("channel_attention", "channel_ffn"),
    "patch tokens M_t and back": ("embed", "unembed"),
    "MSA + FFN (eq. 3)": ("token_attention", "token_ffn"),
    "CGHA + FFN + entity FC (eq. 4-6)": ("entity_align", "cgha", "cgha_ffn"),
    "reconstructor (eq. 7)": ("fusion_head",),
    "classifier (eq. 8)": ("classifier",),
}


def _part_of(path: list[str]) -> tuple[str, int] | None:
    for i, name in enumerate(path):
        for part, names in PARTS.items():
            if name in names:
                return part, i
    return None


def cost_breakdown(
    config: ModelConfig, height: int = REFERENCE_SIZE[0], width: int = REFERENCE_SIZE[1], entities: int = FLOP_ENTITIES
) -> dict[str, tuple[int, int]]:
    """``{part: (parameters, FLOPs)}`` of one fusion forward (classifier off, so its FLOPs are 0;
    a multiply-add counts 2), on meta tensors; the parts sum to the model's totals."""
    model, counter = _count_on_meta(config, height, width, entities)
    out = {part: [0, 0] for part in [*PARTS, "other"]}
    for name, p in model.named_parameters():
        found = _part_of(name.split("."))
        out[found[0] if found else "other"][0] += p.numel()
    counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    taken = set()
    for key in counts:
        path = key.split(".")[1:]  # drop the root module's class name
        found = _part_of(path)
        if found is None:
            continue
        part, i = found
        # The topmost module of the part (a ModuleDict is never called: then its children).
        top = ".".join(key.split(".")[: i + 2])
        top = top if top in counts else ".".join(key.split(".")[: i + 3])
        if top not in taken and top in counts:
            taken.add(top)
            out[part][1] += counts[top]
    return {k: (v[0], v[1]) for k, v in out.items() if v != [0, 0]}


def config_cost_markdown(configs: dict[str, ModelConfig], paper: dict | None = None, entities: int = FLOP_ENTITIES) -> str:
    """Parameters and FLOPs at 448x448 of each named config (no weights needed), against the
    paper's Table VII when given, then a per-part breakdown of every patch-layout config."""
    h, w = REFERENCE_SIZE
    lines = [
        f"| Config | Layout | Params (M) | FLOPs (G) @ {w}×{h} | GMACs |"
        + (" Params vs paper | FLOPs vs paper |" if paper else ""),
        "|:---|:---|---:|---:|---:|" + ("---:|---:|" if paper else ""),
    ]
    breakdowns = {}
    for name, cfg in configs.items():
        parts = cost_breakdown(cfg, h, w, entities)
        params, flops = sum(p for p, _ in parts.values()), sum(f for _, f in parts.values())
        row = f"| {name} | {cfg.layout} | {params / 1e6:.4g} | {flops / 1e9:.4g} | {flops / 2e9:.4g} |"
        if paper:
            row += (
                f" {100 * (params / 1e6 / paper['params_m'] - 1):+.1f} % | {100 * (flops / 1e9 / paper['flops_g'] - 1):+.1f} % |"
            )
        lines.append(row)
        if cfg.layout == "patch":
            breakdowns[name] = parts
    text = "\n".join(lines) + "\n"
    text += (
        f"\nFLOPs by torch.utils.flop_counter.FlopCounterMode over one fusion forward at {w}×{h} "
        f"(batch 1, classifier off, {entities} entity features), a multiply-add counted as 2 FLOPs "
        "(GMACs = FLOPs / 2). Params: every parameter, the classifier's included."
        + (f" Paper (Table VII): {paper['params_m']} M, {paper['flops_g']} G." if paper else "")
        + "\n"
    )
    for name, parts in breakdowns.items():
        rows = ["| Part | Params (M) | FLOPs (G) |", "|:---|---:|---:|"]
        rows += [f"| {part} | {p / 1e6:.4g} | {f / 1e9:.4g} |" for part, (p, f) in parts.items()]
        text += f"\n{name}, by part:\n\n" + "\n".join(rows) + "\n"
    return text
