"""Cost of the EGMT network on this machine: parameters, FLOPs, forward and forward+backward time.

Prints a Markdown table, one row per (input size, classifier on/off). FLOPs come from
torch.utils.flop_counter.FlopCounterMode (1 multiply-add = 2 FLOPs; many papers, likely
including EGMT's 111.9 "GFLOPs", count multiply-adds, so GMACs are printed too). Times are
the median of ``--runs`` runs after one warm-up; forward-only runs under torch.no_grad.

    python benchmarks/bench_model.py                       # paper sizes, default config
    python benchmarks/bench_model.py --channels 16 --blocks 2 --runs 5
    python benchmarks/bench_model.py --grid                # params / GMACs only, many widths
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from egmt.config import ModelConfig  # noqa: E402
from egmt.model import EGMT  # noqa: E402


def parse_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def count_flops(model: EGMT, h: int, w: int, entities: int, classify: bool, backward: bool = False) -> int:
    """FLOPs of one forward (and backward) on meta tensors: no real computation."""
    with torch.device("meta"):
        meta = EGMT(model.config).train(backward)
    ir = torch.empty(1, 1, h, w, device="meta")
    e = torch.empty(1, entities, model.config.entity_dim, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.set_grad_enabled(backward):
        out = meta(ir, ir, e, classify=classify)
        if backward:
            loss = out.fused.sum() + (out.logits.sum() if out.logits is not None else 0)
            loss.backward()
    return counter.get_total_flops()


def median_time(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["448x448", "640x480"], help="WxH input sizes")
    ap.add_argument("--channels", type=int, default=ModelConfig.channels)
    ap.add_argument("--blocks", type=int, default=ModelConfig.num_blocks)
    ap.add_argument("--heads", type=int, default=ModelConfig.num_heads)
    ap.add_argument("--ffn-ratio", type=float, default=ModelConfig.ffn_ratio)
    ap.add_argument("--entity-dim", type=int, default=ModelConfig.entity_dim)
    ap.add_argument("--entities", type=int, default=8, help="entities per image (paper: 2-8)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--relative-position-bias", action="store_true")
    ap.add_argument("--no-backward", action="store_true", help="skip the forward+backward timing")
    ap.add_argument("--grid", action="store_true", help="params and GMACs for several widths/depths, no timing")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    base = ModelConfig(
        channels=args.channels,
        num_blocks=args.blocks,
        num_heads=args.heads,
        ffn_ratio=args.ffn_ratio,
        entity_dim=args.entity_dim,
        relative_position_bias=args.relative_position_bias,
    )
    if args.grid:
        grid(base, [parse_size(s) for s in args.sizes], args.entities)
        return

    torch.manual_seed(0)
    model = EGMT(base)
    n_all = sum(p.numel() for p in model.parameters())
    n_cls = sum(p.numel() for p in model.classifier.parameters()) if model.classifier is not None else 0
    print(
        f"EGMT channels={base.channels} blocks={base.num_blocks} heads={base.num_heads} ffn_ratio={base.ffn_ratio} "
        f"entity_dim={base.entity_dim} entities={args.entities} batch={args.batch} threads={torch.get_num_threads()} "
        f"torch={torch.__version__}"
    )
    print(f"parameters: {n_all:,} ({n_all / 1e6:.3f} M); without the classifier: {n_all - n_cls:,}\n")
    print("| input (WxH) | classifier | GFLOPs fwd | GMACs fwd | forward s (no_grad) | fwd+bwd s |")
    print("|---|---|---|---|---|---|")
    for h, w in (parse_size(s) for s in args.sizes):
        ir = torch.rand(args.batch, 1, h, w)
        vi = torch.rand(args.batch, 1, h, w)
        e = torch.randn(args.batch, args.entities, base.entity_dim)
        for classify in (True, False):
            flops = count_flops(model, h, w, args.entities, classify)

            def forward() -> None:
                with torch.no_grad():
                    model.eval()(ir, vi, e, classify=classify)

            def train_step() -> None:
                model.train()
                out = model(ir, vi, e, classify=classify)
                loss = out.fused.mean() + (out.logits.mean() if out.logits is not None else 0)
                loss.backward()
                model.zero_grad(set_to_none=True)

            t_fwd = median_time(forward, args.runs)
            t_bwd = "-" if args.no_backward else f"{median_time(train_step, args.runs):.3f}"
            print(
                f"| {w}x{h} | {'on' if classify else 'off'} | {flops / 1e9:.2f} | {flops / 2e9:.2f} | "
                f"{t_fwd:.3f} | {t_bwd} |",
                flush=True,
            )


def grid(base: ModelConfig, sizes: list[tuple[int, int]], entities: int) -> None:
    """Parameter count and multiply-adds (classifier off) over widths and depths."""
    h, w = sizes[0]
    print(f"classifier off, input {w}x{h}, ffn_ratio={base.ffn_ratio}, heads={base.num_heads}\n")
    print("| channels | blocks | params (M) | GMACs |")
    print("|---|---|---|---|")
    for channels in (16, 32, 64, 128, 256):
        for blocks in (1, 2, 4, 8):
            cfg = dataclasses.replace(base, channels=channels, num_blocks=blocks)
            with torch.device("meta"):
                model = EGMT(cfg)
            params = sum(p.numel() for p in model.parameters())
            macs = count_flops(model, h, w, entities, classify=False) / 2
            print(f"| {channels} | {blocks} | {params / 1e6:.3f} | {macs / 1e9:.1f} |", flush=True)


if __name__ == "__main__":
    main()
