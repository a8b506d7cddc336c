"""Print Table VII for this machine: FLOPs, parameters and inference time (Markdown).

FLOPs: torch.utils.flop_counter.FlopCounterMode over one fusion forward (classifier off),
a multiply-add counted as 2 FLOPs, at 448x448 and at each dataset's mean image size.
Params: all of the checkpoint's parameters, in millions. Time: mean seconds per pair of each
dataset, fusion only (images already in memory, entities already resolved; reading and
writing excluded), classification branch off as the paper measures, after 1 warm-up pair.
Baselines are timed the same way (no parameters; FLOPs not counted).

  egmt profile --checkpoint runs/egmt-roadscene
  egmt profile --datasets tno --max-pairs 5 --device cuda

With --config, only the parameters and FLOPs of model configs (JSON files: presets in configs/,
or a checkpoint's config.json; no weights, no timing), against the paper's Table VII, with a
per-part breakdown of patch-layout configs; --results writes them into docs/results.md:

  egmt profile --config egmt/pretrained/egmt-roadscene/config.json configs/patch-paper.json configs/patch-small.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from egmt.cli.benchmark import add_source_arguments

HELP = "FLOPs, parameters and seconds per pair of EGMT and the baselines (paper Table VII)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, verb="time")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--max-pairs", type=int, default=None, metavar="N", help="time at most N pairs per dataset (default: all)")
    p.add_argument(
        "--flop-entities",
        type=int,
        default=8,
        metavar="E",
        help="entity features in the FLOP count (default 8, the paper's maximum)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    c = p.add_argument_group("model cost only (no checkpoint, no timing)")
    c.add_argument("--config", nargs="+", type=Path, metavar="JSON", help="config files to count (presets: configs/*.json)")
    c.add_argument(
        "--results", type=Path, metavar="FILE", help="also write the table into this results file (e.g. docs/results.md)"
    )


def run_config_cost(args: argparse.Namespace) -> int:
    """``--config``: parameters and FLOPs of each config file, printed (and written to --results)."""
    import datetime

    from egmt.bench.benchmark import Provenance, git_commit, update_results
    from egmt.bench.paper import PAPER_EFFICIENCY
    from egmt.bench.profile import config_cost_markdown, machine_description
    from egmt.config import EGMTConfig
    from egmt.files import CONFIG_FILE

    configs = {}
    for path in args.config:
        name = path.parent.name if path.name == CONFIG_FILE else path.stem
        configs[name] = EGMTConfig.load(path).model
    text = config_cost_markdown(configs, PAPER_EFFICIENCY, args.flop_entities)
    print(text, end="")
    if args.results:
        files = " ".join(str(p) for p in args.config)
        prov = Provenance(
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            git_commit(),
            None,
            None,
            machine_description("cpu"),
            f"`egmt profile --config {files}`",
        )
        update_results(
            args.results, {"efficiency-layouts": "Model cost of the token layouts (`egmt profile --config`):\n\n" + text}, prov
        )
        print(f"wrote {args.results}")
    return 0


def run(args: argparse.Namespace) -> int:
    import torch

    if args.config:
        return run_config_cost(args)

    from egmt.bench.benchmark import DATASETS as SPECS, DISPLAY, annotation_file, dataset_pairs, load_fuser
    from egmt.bench.paper import PAPER_EFFICIENCY
    from egmt.bench.profile import efficiency_markdown, profile
    from egmt.errors import EGMTError
    from egmt.infer.entities import EntityResolver

    if args.threads is not None:
        if args.threads < 1:
            raise EGMTError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    datasets = list(dict.fromkeys(args.datasets))
    methods = list(dict.fromkeys(args.methods))
    pairs = {d: dataset_pairs(args.data, d) for d in datasets}
    fuser = None
    if "egmt" in methods:
        fuser, folder, sha = load_fuser(args.checkpoint, args.device)
        print(f"checkpoint: {folder} (model.safetensors sha256 {sha})\n")
    tokens = fuser.model.config.text_tokens if fuser is not None else "entities"
    resolvers = {d: EntityResolver(annotations=annotation_file(args.annotations, d), tokens=tokens) for d in datasets}
    result = profile(
        pairs,
        methods,
        fuser,
        resolvers,
        max_pairs=args.max_pairs,
        flop_entities=args.flop_entities,
        progress=not args.no_progress,
    )
    titles = {d: SPECS[d].title for d in datasets}
    print(efficiency_markdown(result, DISPLAY, titles, PAPER_EFFICIENCY if fuser is not None else None), end="")
    return 0
