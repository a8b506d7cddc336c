"""Train EGMT on a folder of infrared-visible pairs (paper defaults: Adam 1e-4, batch 4, 20 epochs).

Entities come from an annotation file made by `egmt annotate` (its vocabulary.json and
entity_bank.safetensors must lie beside it). The run folder gets config.json, log.csv,
tensorboard/ and checkpoints/ (atomic; `--resume` continues from the newest).
Multi-GPU / multi-node: launch the same command under torchrun, e.g.
  torchrun --nproc_per_node 2 -m egmt train ...   (batch size is per process)
"""

from __future__ import annotations

import argparse

HELP = "train EGMT (resumable; torchrun for several GPUs or nodes)"

# flag -> (config field, type); None keeps the config's value.
_OVERRIDES = {
    "crop_size": ("data.crop_size", int),
    "crop_stride": ("data.crop_stride", int),
    "batch_size": ("train.batch_size", int),
    "epochs": ("train.epochs", int),
    "max_steps": ("train.max_steps", int),
    "max_minutes": ("train.max_minutes", float),
    "max_cpu_minutes": ("train.max_cpu_minutes", float),
    "lr": ("train.lr", float),
    "init_from": ("train.init_from", str),
    "seed": ("train.seed", int),
    "device": ("train.device", str),
    "save_every": ("train.save_every", int),
    "log_every": ("train.log_every", int),
    "channels": ("model.channels", int),
    "blocks": ("model.num_blocks", int),
}
_ABLATIONS = {
    "no_channel_attention": "model.channel_attention",
    "no_token_attention": "model.token_attention",
    "no_cgha": "model.cgha",
    "no_text": "model.text_interaction",
    "no_multi_task": "model.multi_task",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="ROOT", help="dataset folder ROOT/{ir,vi}/STEM.ext (default: config's data.root)")
    p.add_argument(
        "--split", metavar="FILE", help="file of stems to train on, relative to ROOT (default: train.txt); 'all' for every pair"
    )
    p.add_argument("--annotations", metavar="JSONL", help="annotation file from `egmt annotate`")
    p.add_argument(
        "--source",
        nargs=3,
        action="append",
        default=[],
        metavar=("ROOT", "SPLIT", "JSONL"),
        help="one more training dataset beside --data: its folder, split file ('all' for every pair) "
        "and annotation file (repeatable; sets data.extra_sources)",
    )
    p.add_argument(
        "--val-source",
        nargs=3,
        action="append",
        default=[],
        metavar=("ROOT", "SPLIT", "JSONL"),
        help="validation pairs, scored every train.val_every steps and at the end; the best checkpoint "
        "is copied to RUN_DIR/best (repeatable; sets data.val_sources; never a test set)",
    )
    p.add_argument("-o", "--out", required=True, metavar="RUN_DIR", help="run folder (created)")
    p.add_argument("--config", metavar="JSON", help="start from this config.json instead of the defaults")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its newest checkpoint, with its config.json")
    g = p.add_argument_group("common settings (override the config)")
    for flag, (field, typ) in _OVERRIDES.items():
        g.add_argument("--" + flag.replace("_", "-"), type=typ, metavar=typ.__name__.upper(), help=f"sets {field}")
    a = p.add_argument_group("ablations (paper Table VIII)")
    for flag, field in _ABLATIONS.items():
        a.add_argument("--" + flag.replace("_", "-"), action="store_true", help=f"sets {field}=false")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="set any config field, e.g. --set model.num_heads=8 (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from egmt.config import DataSource, EGMTConfig, apply_override
    from egmt.files import CONFIG_FILE
    from egmt.train.trainer import train

    run_dir = Path(args.out)
    if args.resume:
        config = EGMTConfig.load(run_dir / CONFIG_FILE)
        from egmt.errors import EGMTError

        # What may change when a run continues: its budget and bookkeeping, nothing it learns from.
        allowed = {"epochs", "max_steps", "max_minutes", "max_cpu_minutes", "device", "save_every", "log_every"}
        if args.source or args.val_source:
            raise EGMTError("--source / --val-source cannot change when resuming")
        for flag in _OVERRIDES:
            if getattr(args, flag) is not None and flag not in allowed:
                raise EGMTError(f"--{flag.replace('_', '-')} cannot change when resuming (only {sorted(allowed)})")
        settable = sorted(f"train.{k}" for k in allowed | {"val_every"})
        for assignment in args.set:
            key = assignment.split("=", 1)[0].strip()
            if key not in settable:
                raise EGMTError(f"--set {key} cannot change when resuming (only {', '.join(settable)})")
            apply_override(config, assignment)
    else:
        config = EGMTConfig.load(args.config) if args.config else EGMTConfig()
        if args.data:
            config.data.root = args.data
        if args.split:
            config.data.split = None if args.split == "all" else args.split
        if args.annotations:
            config.data.annotations = args.annotations
        for flag, field in (("source", "extra_sources"), ("val_source", "val_sources")):
            given = [DataSource(root, None if split == "all" else split, jsonl) for root, split, jsonl in getattr(args, flag)]
            if given:
                setattr(config.data, field, given)
        for flag, field in _ABLATIONS.items():
            if getattr(args, flag):
                apply_override(config, f"{field}=false")
        for assignment in args.set:
            apply_override(config, assignment)
    for flag, (field, _) in _OVERRIDES.items():
        value = getattr(args, flag)
        if value is not None:
            section, key = field.split(".")
            setattr(getattr(config, section), key, value)
    final = train(config, run_dir, resume=args.resume)
    if final is not None:
        print(f"checkpoint: {final}")
    return 0
