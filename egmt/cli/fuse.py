"""Fuse infrared-visible pairs: two files, or two folders matched by file stem.

With EGMT (the default method), each pair's entities come, in order of preference, from
--annotations (a file from `egmt annotate`), --captions (run through the entity pipeline),
--entities (typed, the same for every pair), or else from the model's own classifier
(caption-free: a first pass predicts the classes, which guide the second pass).
Colour is restored from the visible image. Classical baselines: --method average,
max_abs, laplacian_pyramid, dwt. A bad pair is reported and the rest are still fused.

  egmt fuse --ir ir.png --vi vi.png -o fused.png --entities "person, car"
  egmt fuse --ir DATA/ir --vi DATA/vi -o OUT            (OUT/STEM.png + OUT/entities.csv)

Videos (files or folders of .mp4/.mkv/...): streamed frame by frame, same frame count and
rate, entities once per clip; -o fused.mkv is lossless (FFV1), fused.mp4 is H.264 (CRF 18).
Where neither source moved, each fused frame is blended with the previous one (--temporal,
default 0.5; 0: every frame fused alone), to damp flicker where the scene is still.
Beside each output, NAME.stability.json: mean |F_t - F_t-1| of the fused and source clips,
and whether the fused clip changes more than its livelier source (said on the console too).

  egmt fuse --ir ir.mp4 --vi vi.mp4 -o fused.mp4 --entities "person, car"

Large folders, several processes (or machines: --nnodes): each rank fuses its share (by
RANK / WORLD_SIZE, sorted names), outputs already in OUT are skipped (a killed run resumes),
OUT/manifest.csv lists every pair (status, seconds, rank):

  torchrun --nproc_per_node 4 -m egmt fuse --ir DATA/ir --visible DATA/vi -o OUT
  (--visible: torchrun takes "--vi" for an abbreviation of its own --virtual-local-rank)
"""

from __future__ import annotations

import argparse

from egmt.baselines import BASELINES

HELP = "fuse pairs of images (EGMT checkpoint or a classical baseline)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ir", "--infrared", required=True, metavar="PATH", help="infrared image or video, or a folder of them")
    # --visible: under torchrun, whose parser reads "--vi" as an abbreviation of its --virtual-local-rank
    p.add_argument(
        "--vi", "--visible", required=True, metavar="PATH", help="visible image or video, or a folder of them (same stems)"
    )
    p.add_argument(
        "-o", "--out", required=True, metavar="PATH", help="output PNG (or .mp4 / .mkv video) for one pair, or a folder"
    )
    p.add_argument("--method", default="egmt", help=f"egmt (default), or a baseline: {', '.join(BASELINES)}")
    p.add_argument("--checkpoint", metavar="DIR", help="EGMT checkpoint or run folder (default: the shipped RoadScene model)")
    e = p.add_argument_group("entities (EGMT)")
    e.add_argument("--annotations", metavar="JSONL", help="annotation file from `egmt annotate`")
    e.add_argument("--captions", metavar="JSONL", help="captions file {name, ir, vi}; entities extracted with --extractor")
    e.add_argument(
        "--extractor", default="spacy", choices=["spacy", "factual"], help="entity extractor for --captions (default: spacy)"
    )
    e.add_argument("--entities", metavar="LIST", help='comma-separated entities for every pair, e.g. "person, car, road"')
    e.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="caption-free mode: class probability above which a class becomes an entity (default 0.5)",
    )
    e.add_argument(
        "--guidance",
        type=float,
        metavar="G",
        help="entity guidance: how much more the given entities steer the fusion than the network learnt, "
        "at one more decoder pass (0: as trained; default: the checkpoint's model.entity_guidance)",
    )
    r = p.add_argument_group("running")
    r.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    r.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "onnxruntime"],
        help="torch (default), or onnxruntime: --checkpoint is then a folder from `egmt export`",
    )
    r.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network (about 2x faster per pair on a CPU after a 1-2 minute compilation; for folders)",
    )
    r.add_argument(
        "--tile",
        type=int,
        metavar="N",
        help="fuse in overlapping N x N tiles, N at least 64 (default: only images over 1 Mpixel, 4 for the pixel "
        "layout, in 1024 tiles)",
    )
    r.add_argument("--split", metavar="FILE", help="with folders: only the stems listed in FILE")
    r.add_argument(
        "--video-ext",
        default=".mp4",
        choices=[".mp4", ".mkv", ".mov"],
        help="folders of videos: the outputs' container (.mkv: lossless FFV1; default .mp4: H.264)",
    )
    r.add_argument(
        "--temporal",
        type=float,
        default=0.5,  # egmt.infer.temporal.DEFAULT_BETA (not imported here: the parser loads no torch)
        metavar="BETA",
        help="videos, every method: blend each fused frame with the previous one by BETA where neither source "
        "moved, to damp flicker where the scene is still (default 0.5; 0: every frame fused alone)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bars (pairs, frames, tiles) on stderr")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from egmt.errors import EGMTError
    from egmt.fileio import check_outputs
    from egmt.files import ENTITY_TABLE_FILE
    from egmt.infer.batch import fuse_image_folders, rank_device
    from egmt.infer.run import FuseJob, pair_output
    from egmt.infer.video import fuse_videos, is_video_input
    from egmt.train.distributed import DistInfo

    ir, vi, out = Path(args.ir), Path(args.vi), Path(args.out)
    for flag, path in (("--ir", ir), ("--vi", vi)):
        if not path.exists():
            raise EGMTError(f"{flag} {path}: no such file or folder")
    if ir.is_dir() != vi.is_dir():
        raise EGMTError(f"--ir {ir} and --vi {vi}: give two files or two folders")
    video = is_video_input(ir)
    if video != is_video_input(vi):
        kind = {True: "video", False: "image"}
        raise EGMTError(f"--ir {ir} is {kind[video]}, --vi {vi} {kind[not video]}: give two videos or two images")
    single = out if video else pair_output(ir, out)  # a video, or one pair's PNG
    check_outputs(
        inputs={
            "--ir": ir,
            "--vi": vi,
            "--checkpoint": args.checkpoint,
            "--annotations": args.annotations,
            "--captions": args.captions,
            "--split": args.split,
        },
        outputs={"-o": out},
        writes={"-o": [out / ENTITY_TABLE_FILE] if ir.is_dir() else [single]},
    )
    rank = DistInfo.from_env()  # started by torchrun: this process fuses its share of the folder
    if rank is not None:
        args.device = rank_device(args.device, rank)
    job = FuseJob.from_args(args)
    if video:
        if not 0.0 <= args.temporal < 1.0:
            raise EGMTError(f"--temporal {args.temporal}: expected a blend in [0, 1)")
        report = fuse_videos(job, ir, vi, out, args.split, args.video_ext, rank, temporal=args.temporal)
    elif ir.is_dir() and rank is not None:
        report = fuse_image_folders(job, ir, vi, out, args.split, rank)
    else:
        report = job.run_folders(ir, vi, out, split=args.split) if ir.is_dir() else job.run_pair(ir, vi, out)
    for line in report.failures:
        print(f"egmt: skipped {line}")
    print(report.summary())
    return 1 if report.failures else 0
