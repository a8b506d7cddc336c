"""A local web demo: upload an infrared and a visible image (or pick a bundled sample), type
entities or leave them empty (caption-free), fuse, and see IR | visible | fused side by side,
a before/after slider, the entity heat maps, a few metrics (EN, SD, SF, MI, seam ratio, target
retention) and a download button for the fused PNG.

It listens on 127.0.0.1 (this machine only) unless --host says otherwise, and prints its
address. Uploads are size-limited and only ever written to a temporary folder, removed after
each fusion. Bad input (not an image, sizes differ, too small or too large) is answered with
a one-line message on the page. Needs the `serve` extra: pip install -e ".[serve]".

  egmt serve                                  # http://127.0.0.1:8000/, the shipped checkpoint
  egmt serve --port 0 --checkpoint runs/mine  # any free port; your own checkpoint
"""

from __future__ import annotations

import argparse

HELP = "local web demo: upload a pair, fuse it, see the result, heat maps and metrics"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port, printed)")
    p.add_argument("--checkpoint", metavar="DIR", help="EGMT checkpoint or run folder (default: the shipped RoadScene model)")
    p.add_argument(
        "--samples",
        metavar="DIR",
        help="folder {ir,vi}/STEM.ext of pairs the page offers (default: the checkout's samples/tno, if present)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=20.0, metavar="MB", help="largest request, both images together (default 20 MB)"
    )
    p.add_argument(
        "--max-pixels", type=int, default=4_000_000, metavar="N", help="largest image accepted, in pixels (default 4000000)"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ...")


def run(args: argparse.Namespace) -> int:
    import socket
    from pathlib import Path

    from egmt.errors import EGMTError

    try:
        import uvicorn

        from egmt.serve.app import create_app
    except ImportError as e:
        raise EGMTError(f'egmt serve needs the serve extra ({e.name} is missing): pip install -e ".[serve]"') from None
    from egmt.infer.fuser import EGMTFuser
    from egmt.infer.run import DEFAULT_CHECKPOINT
    from egmt.serve.pipeline import MIN_SIDE, DemoPipeline

    if not 0 <= args.port <= 65535:
        raise EGMTError(f"--port must be in 0..65535, got {args.port}")
    if args.max_upload_mb <= 0:
        raise EGMTError("--max-upload-mb must be positive")
    if args.max_pixels < MIN_SIDE * MIN_SIDE:
        raise EGMTError(f"--max-pixels must be at least {MIN_SIDE * MIN_SIDE}")
    samples = Path(args.samples) if args.samples else Path(__file__).resolve().parents[2] / "samples" / "tno"
    if args.samples and not (samples / "ir").is_dir():
        raise EGMTError(f"--samples {samples}: expected a folder with ir/ and vi/ inside")
    try:  # listen first: a busy port fails before the checkpoint loads
        sock = socket.create_server((args.host, args.port))
    except OSError as e:
        raise EGMTError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    with sock:
        checkpoint = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT
        fuser = EGMTFuser.from_pretrained(checkpoint, device=args.device)
        app = create_app(
            DemoPipeline(fuser, max_pixels=args.max_pixels),
            samples=samples,
            checkpoint=checkpoint.name,
            max_upload_bytes=int(args.max_upload_mb * 2**20),
        )
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"egmt serve: http://{shown}:{port}/ (checkpoint {checkpoint}; Ctrl+C stops)", flush=True)
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0
