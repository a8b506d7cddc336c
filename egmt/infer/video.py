"""``egmt fuse`` on videos: an infrared and a visible clip in, one fused clip out, streamed.

Frame k of the fusion is what ``egmt fuse`` gives on frame k of the two sources (as images),
with the clip's entities: chosen once per clip, from the same sources as for images
(annotations, captions, typed), or caption-free from the classifier's mean probabilities
over the clip's first :data:`ENTITY_FRAMES` frames. Frames are decoded, fused and encoded one
at a time (only those first frames are held), so memory stays flat with the clip's length.

With ``temporal`` = beta > 0 (``egmt fuse --temporal``, default 0.5) each fused frame is then
blended with the previous output where neither source moved (:mod:`egmt.infer.temporal`): the
per-frame decision's jitter no longer makes the clip flicker more than its sources.

Sources must agree: same frame rate, size and frame count, else an error names both files
(no resampling or cropping is guessed). The output keeps the rate and the count; colour comes
from the visible frames as for images. Beside each output, ``NAME.stability.json`` reports
``mean |F_t - F_{t-1}|`` of the fused frames (as encoded, before any lossy codec) against the
same for each source (:mod:`egmt.metrics.temporal`): a fused clip should not flicker more.
"""

from __future__ import annotations

import itertools
import math
import time
import typing
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from egmt.data.io import to_uint8
from egmt.data.pairs import Pair, match_folders, pair_from_arrays
from egmt.data.video import VIDEO_EXTENSIONS, VideoInfo, VideoWriter, probe_video, read_frames
from egmt.errors import EGMTError
from egmt.fileio import write_json_atomic
from egmt.infer.temporal import DEFAULT_BETA, StaticSmoother
from egmt.metrics.temporal import TemporalChange

#: Caption-free: how many first frames the classifier looks at to pick the clip's entities.
ENTITY_FRAMES = 8
#: The extension of a folder run's outputs unless told (``.mkv``: lossless FFV1).
DEFAULT_VIDEO_EXTENSION = ".mp4"


@dataclass
class ClipResult:
    """One fused clip: where, how many frames at what rate, its entities, its stability."""

    output: Path
    frames: int
    fps: float
    entities: list[str]
    entity_source: str
    seconds: float
    change: dict[str, float] = field(default_factory=dict)  # mean |F_t - F_{t-1}|: fused, ir, vi

    @property
    def stable(self) -> bool | None:
        """The fused clip changes between frames no more than the livelier of its sources (None for
        a clip of one frame, where there is no change to compare)."""
        if any(math.isnan(v) for v in self.change.values()):
            return None
        return bool(self.change["fused"] <= max(self.change["ir"], self.change["vi"]))

    def describe(self) -> str:
        c = self.change
        return (
            f"{self.output}: {self.frames} frames at {self.fps:g} fps, entities ({self.entity_source}): "
            f"{', '.join(self.entities) or '(none)'}; frame-to-frame change mean |F_t - F_t-1| "
            f"(grey levels): fused {c['fused']:.3f}, ir {c['ir']:.3f}, vi {c['vi']:.3f}"
            + ("; more than its livelier source (a higher --temporal damps it)" if self.stable is False else "")
        )

    def row(self) -> dict:
        """Columns for a manifest / summary table."""
        return {
            "frames": self.frames,
            "fps": f"{self.fps:g}",
            "entity_source": self.entity_source,
            "entities": "; ".join(self.entities),
            **{f"change_{k}": f"{v:.4f}" for k, v in self.change.items()},
        }


def is_video_input(path: Path) -> bool:
    """A video file, or a folder holding videos and no images."""
    from egmt.data.io import IMAGE_EXTENSIONS

    if not path.is_dir():
        return path.suffix.lower() in VIDEO_EXTENSIONS
    suffixes = {p.suffix.lower() for p in path.iterdir() if p.is_file() and not p.name.startswith(".")}
    return bool(suffixes & set(VIDEO_EXTENSIONS)) and not suffixes & set(IMAGE_EXTENSIONS)


def stability_path(output: Path) -> Path:
    """``fused.mp4`` -> ``fused.stability.json`` (beside it)."""
    return output.with_name(f"{output.stem}.stability.json")


def check_sources(ir: VideoInfo, vi: VideoInfo) -> None:
    """EGMTError naming both files when their rates, sizes or (known) frame counts differ."""
    problems = []
    if ir.rate != vi.rate:
        problems.append(f"frame rates {float(ir.rate):g} vs {float(vi.rate):g} fps")
    if (ir.width, ir.height) != (vi.width, vi.height):
        problems.append(f"sizes {ir.width}x{ir.height} vs {vi.width}x{vi.height}")
    if ir.frames and vi.frames and ir.frames != vi.frames:
        problems.append(f"frame counts {ir.frames} vs {vi.frames}")
    if problems:
        raise EGMTError(f"{ir.path} and {vi.path} do not match: {'; '.join(problems)}")


def frame_pairs(ir: Path, vi: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Frame k of each source, together; EGMTError naming both when one clip ends first."""
    sentinel = object()
    for k, (a, b) in enumerate(itertools.zip_longest(read_frames(ir), read_frames(vi), fillvalue=sentinel)):
        if a is sentinel or b is sentinel:
            short, long_ = (ir, vi) if a is sentinel else (vi, ir)
            raise EGMTError(f"{ir} and {vi} do not match: {short} ends after {k} frames, {long_} has more")
        yield typing.cast(np.ndarray, a), typing.cast(np.ndarray, b)


def clip_entities(job, name: str, first: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list[str] | None, str]:
    """The entities that guide every frame of a clip: from the job's entity sources for ``name``,
    else caption-free from ``first`` frames (mean class probability above the job's threshold)."""
    if job.baseline is not None:
        return [], "none"
    entities, source = job.resolver(name)
    if entities is not None:
        return entities, source
    fuser = job.fuser
    if not fuser.model.config.text_interaction:
        return [], "none"
    probs = []
    for ir, vi in first:
        pair = pair_from_arrays(name, ir / np.float32(255), vi / np.float32(255))
        _, source, p = fuser.caption_free_entities(pair.ir[None].to(fuser.device), pair.vi[None].to(fuser.device), job.threshold)
        if not p:  # the checkpoint's policy (or its lack of a classifier) says no predicted entities
            return [], source
        probs.append(list(p.values()))
    classes = list(p)
    mean = np.mean(probs, axis=0)
    return [c for c, m in zip(classes, mean) if m > job.threshold], f"{source} (first {len(first)} frames)"


def fuse_clip(job, ir: Path, vi: Path, out: Path, name: str | None = None, temporal: float = DEFAULT_BETA) -> ClipResult:
    """Fuse two clips into ``out`` (codec by extension, :mod:`egmt.data.video`) and write its
    stability JSON beside it. ``job``: an :class:`egmt.infer.run.FuseJob`; ``temporal``: the
    :class:`~egmt.infer.temporal.StaticSmoother`'s beta (0: every frame fused alone)."""
    t0 = time.perf_counter()
    ir_info, vi_info = probe_video(ir), probe_video(vi)
    check_sources(ir_info, vi_info)
    frames = frame_pairs(ir, vi)
    first = list(itertools.islice(frames, ENTITY_FRAMES))
    entities, source = clip_entities(job, name or ir.stem, first)
    change = {k: TemporalChange() for k in ("fused", "ir", "vi")}
    smoother = StaticSmoother(temporal)
    with (
        VideoWriter(out, ir_info.rate, ir_info.width, ir_info.height) as writer,
        tqdm(total=ir_info.frames or None, desc=f"fuse {out.name}", unit="frame", leave=False, disable=not job.progress) as bar,
    ):
        for a, b in itertools.chain(first, frames):
            result = job.fuse_arrays(a / np.float32(255), b / np.float32(255), entities=entities, labels=(ir, vi))
            fused = smoother(to_uint8(result.image, out), a, b)
            writer.write(fused)
            for key, frame in (("fused", fused), ("ir", a), ("vi", b)):
                change[key].add(frame)
            bar.update()
    clip = ClipResult(
        out,
        writer.frames,
        float(ir_info.rate),
        entities or [],
        source,
        time.perf_counter() - t0,
        {k: v.value for k, v in change.items()},
    )
    # strict JSON: an undefined change (one frame) is null, not NaN
    change_json = {k: None if math.isnan(v) else v for k, v in clip.change.items()}
    write_json_atomic(
        stability_path(out),
        {
            "ir": str(ir),
            "vi": str(vi),
            **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(clip).items()},
            "change": change_json,
            "no_more_than_sources": clip.stable,
            "temporal": temporal,
            "metric": "mean |F_t - F_{t-1}| of the grey frames, grey levels 0..255",
        },
    )
    return clip


def output_for(out: Path, name: str, extension: str) -> Path:
    """The output of one clip: ``out`` itself if it has a video extension, else ``out/NAME.ext``."""
    return out if out.suffix.lower() in VIDEO_EXTENSIONS else out / f"{name}{extension}"


def video_pairs(ir_dir: Path, vi_dir: Path, split: str | None = None) -> tuple[list[Pair], list[str]]:
    """Clips of two folders matched by stem (as image folders are), and one message per problem."""
    return match_folders(ir_dir, vi_dir, split, extensions=VIDEO_EXTENSIONS)


def fuse_videos(
    job,
    ir: Path,
    vi: Path,
    out: Path,
    split: str | None = None,
    extension: str = DEFAULT_VIDEO_EXTENSION,
    info=None,
    temporal: float = DEFAULT_BETA,
):
    """``egmt fuse`` on two clips, or on two folders of clips matched by stem.

    Folders go through :func:`egmt.infer.batch.run_sharded` (``info``: torchrun's rank, None
    for one process): a clip already fused in ``out`` is skipped, ``out/manifest.csv`` lists
    every clip. Returns a report with ``failures`` and ``summary()``.
    """
    from egmt.infer.batch import run_sharded
    from egmt.infer.run import FuseReport
    from egmt.train.distributed import DistInfo

    if not ir.is_dir():
        clip = fuse_clip(job, ir, vi, output_for(out, ir.stem, extension), temporal=temporal)
        print(clip.describe())
        return FuseReport(written=[clip.output], seconds=[clip.seconds], unit="clip")

    def process(pair: Pair, target: Path) -> dict:
        clip = fuse_clip(job, pair.ir, pair.vi, target, pair.name, temporal)
        print(clip.describe())
        return clip.row()

    pairs, problems = video_pairs(ir, vi, split)
    return run_sharded(
        pairs,
        problems,
        out,
        lambda p: out / f"{p.name}{extension}",
        process,
        info or DistInfo(),
        unit="clip",
        progress=job.progress,
    )
