"""Video fusion: frames per second, peak memory against clip length, and temporal stability.

Cuts the first ``--frames`` frames (and a quarter of them) of the 640x480 M3SVD clip
``0111_1716`` (30 fps) losslessly into a temporary folder, then runs ``egmt fuse`` on each cut
in a fresh process (2 threads; caption-free with the shipped checkpoint, H.264 .mp4 out) and
reports frames per second (decode, entities, fusion, encode: the whole clip over the whole
command's fusion time) and that process's peak RSS: memory should not grow with the clip.
On the longer cut, the stability JSON's ``mean |F_t - F_{t-1}|`` of the fused clip against its
sources, for EGMT and, as references, the per-frame average and max-abs rules.

    python benchmarks/bench_video.py                     # writes its section of docs/speed-batch-video.md
    python benchmarks/bench_video.py --frames 8 --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_batch import DOC, load_average, replace_section  # noqa: E402

from egmt.bench.profile import machine_description  # noqa: E402
from egmt.data.video import VideoWriter, probe_video, read_frames  # noqa: E402

CLIP = REPO.parent / "shared" / "data" / "m3svd_video"
NAME = "0111_1716"
THREADS = 2


def cut(src: Path, dst: Path, frames: int) -> Path:
    info = probe_video(src)
    with VideoWriter(dst, info.rate, info.width, info.height) as w:
        for f in itertools.islice(read_frames(src), frames):
            w.write(f)
    return dst


def child(argv: list[str]) -> None:
    """Run ``egmt fuse argv`` in this process; print its peak RSS (GiB) and fusion seconds."""
    from egmt.cli import main

    t0 = time.perf_counter()
    rc = main(argv)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"rc": rc, "peak_gib": peak, "seconds": seconds}))


def fuse(ir: Path, vi: Path, out: Path, method: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "fuse", "--ir", str(ir), "--vi", str(vi), "-o", str(out),
           "--device", "cpu", "--method", method]
    load = load_average()
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(THREADS)))
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    stability = json.loads(out.with_name(f"{out.stem}.stability.json").read_text())
    return r | {"stability": stability, "load": (load, load_average())}


def markdown(speed: list[dict], stability: dict[str, dict], started: str) -> str:
    m = machine_description("cpu")
    lines = ["## Video fusion: frames per second, memory, stability", "",
             "Made by `python benchmarks/bench_video.py` (do not edit by hand).", "",
             f"- Date: {started}; machine: {m['cpu']}; torch {m['torch']}; {THREADS} threads. The machine was shared "
             "with a model training run and other jobs, and this ran under `nice -n 19`: it got the CPU they left, "
             "so seconds vary several-fold with the load (1-minute load average in the table; the shorter cut ran "
             "at the higher load). Peak memory does not depend on it.",
             f"- Work: `egmt fuse --ir ir.mkv --vi vi.mkv -o fused.mp4`, caption-free with the shipped checkpoint "
             f"(entities from the classifier over the first frames), on the first frames of M3SVD `{NAME}` "
             "(640×480, 30 fps), in a fresh process; frames per second over the whole clip (decode, entities, "
             "fusion, H.264 encode, stability) after the model is loaded; peak RSS of that process.", "",
             "| Frames | Seconds | Frames/s | Peak RSS (GiB) | Load |", "|---:|---:|---:|---:|:---|"]
    for r in speed:
        frames = r["stability"]["frames"]
        fuse_s = r["stability"]["seconds"]
        lines.append(f"| {frames} | {fuse_s:.1f} | {frames / fuse_s:.2f} | {r['peak_gib']:.2f} | "
                     f"{r['load'][0]:.2f} → {r['load'][1]:.2f} |")
    n = next(iter(stability.values()))["frames"]
    lines += ["", f"Temporal stability on the {n}-frame cut: mean |F_t − F_t−1| of the grey frames (0..255) "
              "of the fused clip and of its sources (`NAME.stability.json`); EGMT, and the per-frame average and "
              "max-abs rules as references.", "",
              "| Method | Fused | Infrared | Visible | Fused / livelier source |", "|:---|---:|---:|---:|---:|"]
    for method, s in stability.items():
        c = s["change"]
        lines.append(f"| {method} | {c['fused']:.3f} | {c['ir']:.3f} | {c['vi']:.3f} | {c['fused'] / max(c['ir'], c['vi']):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1:])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=40, help="frames of the longer cut (default 40; the shorter: a quarter)")
    p.add_argument("--out", type=Path, default=DOC, help=f"Markdown doc whose section is rewritten (default {DOC.relative_to(REPO)})")
    args = p.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    speed, stability = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for frames in (max(2, args.frames // 4), args.frames):
            ir, vi = (cut(CLIP / m / f"{NAME}.mp4", work / f"{m}{frames}.mkv", frames) for m in ("ir", "vi"))
            r = fuse(ir, vi, work / f"egmt{frames}.mp4", "egmt")
            print(f"{frames} frames: {r}", flush=True)
            speed.append(r)
        stability["EGMT (shipped)"] = speed[-1]["stability"]
        for method in ("average", "max_abs"):
            stability[method] = fuse(ir, vi, work / f"{method}.mp4", method)["stability"]
    replace_section(args.out, "bench_video", markdown(speed, stability, started))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
