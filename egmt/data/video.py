"""Read and write videos frame by frame (PyAV: FFmpeg's libraries, shipped inside its wheel).

Frames are streamed: :func:`read_frames` decodes one frame at a time and :class:`VideoWriter`
encodes each frame as it is given, so memory does not grow with the clip's length. A frame is
``uint8 [H, W, 3]`` RGB, as a PNG of it would hold, so a decoded frame fused as an array gives
what ``egmt fuse`` gives on that frame saved as an image.

Output codec by extension: ``.mkv`` is FFV1 in RGB (bgr0) (lossless: decoding gives back the
exact RGB frames written); ``.mp4`` / ``.mov`` is H.264 (libx264, yuv420p, CRF 18: visually
near-lossless and playable everywhere; yuv444p where a side is odd). The output is written
at the source's average frame rate, one frame per tick (constant frame rate), atomically.
A file that is missing, not a video or broken raises :class:`EGMTError` naming it. Broken
includes truncated: where the container declares the stream's length (its duration in
MP4/MOV/AVI, the ``DURATION`` tag or segment duration in Matroska), :func:`read_frames` raises
once the frames run out short of it (a cut or damaged Matroska file otherwise decodes
silently with fewer frames); a stream of unknown length is read as far as it goes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from egmt.errors import EGMTError
from egmt.fileio import atomic_path

#: Extensions read as videos (lower case, with the dot).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".m4v", ".webm")
#: Extensions written: codec, pixel format and options for each.
_ENCODERS = {
    ".mkv": ("ffv1", "bgr0", {}),
    ".mp4": ("libx264", "yuv420p", {"crf": "18"}),
    ".mov": ("libx264", "yuv420p", {"crf": "18"}),
}
WRITABLE_EXTENSIONS = tuple(_ENCODERS)


@dataclass(frozen=True)
class VideoInfo:
    """A video stream's frame count (0 when the container does not say), frame rate and size."""

    path: Path
    frames: int
    rate: Fraction
    width: int
    height: int


def _open(path: Path):
    if not path.is_file():
        raise EGMTError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise EGMTError(f"{path}: not a video file FFmpeg can read ({e.strerror or type(e).__name__})") from None
    if not container.streams.video:
        container.close()
        raise EGMTError(f"{path}: no video stream")
    return container


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, rate and size of the first video stream of ``path`` (nothing decoded)."""
    path = Path(path)
    with _open(path) as container:
        s = container.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        if not rate:
            raise EGMTError(f"{path}: the video stream has no frame rate")
        return VideoInfo(path, int(s.frames or 0), Fraction(rate), s.codec_context.width, s.codec_context.height)


def _tag_seconds(text: str) -> float | None:
    """``HH:MM:SS.fraction`` (Matroska's ``DURATION`` tag) in seconds, None if it is not that."""
    m = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*", text)
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None


def _declared_end(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """Where the container says ``stream`` ends, in seconds; None where it does not say.

    In order: the stream's own duration (MP4, MOV, AVI: from its header), its ``DURATION`` tag
    (Matroska, as FFmpeg and mkvmerge write it), and the file's duration where the video is its
    only stream (Matroska without tags: another stream may well run longer).
    """
    if stream.duration and stream.time_base:
        return float((stream.duration + (stream.start_time or 0)) * stream.time_base)
    tag = next((v for k, v in stream.metadata.items() if k.upper() == "DURATION"), None)
    if tag is not None and (seconds := _tag_seconds(tag)):
        return seconds
    if len(container.streams) == 1 and container.duration:
        return container.duration / av.time_base
    return None


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames of ``path``'s first video stream, one at a time, as ``uint8 [H, W, 3]`` RGB.

    Raises :class:`EGMTError` (after the last good frame) where decoding fails or the frames end
    short of the length the container declares: ``truncated: 2 of 6 frames``.
    """
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared = _declared_end(container, stream)
        rate = stream.average_rate or stream.guessed_rate
        interval = float(1 / rate) if rate else 0.0
        frames, timed = 0, True  # frames decoded; whether each said how long it lasts
        reached: float | None = None  # where the decoded frames end (s), from their timestamps
        try:
            for frame in container.decode(stream):
                if frame.pts is not None and frame.time_base:
                    timed &= bool(frame.duration)
                    end = float((frame.pts + (frame.duration or 0)) * frame.time_base) + (0.0 if frame.duration else interval)
                    reached = end if reached is None else max(reached, end)
                frames += 1
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise EGMTError(f"{path}: broken video ({e.strerror or type(e).__name__})") from None
        if frames == 0:
            reached = 0.0
        if declared is None or not interval or reached is None:
            return  # a stream of unknown length (or frames without timestamps): read as far as it goes
        # half a frame when every frame says how long it lasts (one lost frame shows), one and a
        # half when the last one's length is a guess from the average rate; 2 ms for rounding
        # (Matroska's timestamps are in milliseconds)
        slack = (0.5 if timed else 1.5) * interval + 0.002
        if declared - reached > slack:
            if stream.frames > frames:  # the header's count (AVI, MP4)
                cause = f"truncated: {frames} of {stream.frames} frames"
            else:
                expected = frames + round((declared - reached) / interval)
                cause = f"truncated: {frames} of {expected} frames, {reached:.3f} s of {declared:.3f} s"
            raise EGMTError(f"{path}: broken video ({cause})")


class VideoWriter:
    """Encode RGB frames into ``path`` (codec by extension, see the module docstring).

    Use as a context manager: the file appears complete at the end, or not at all if an
    exception (bad frame, interrupted run) leaves the block.
    """

    def __init__(self, path: str | os.PathLike, rate: Fraction, width: int, height: int):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _ENCODERS:
            raise EGMTError(
                f"{self.path}: cannot write a video with extension {self.path.suffix!r} (use {', '.join(WRITABLE_EXTENSIONS)})"
            )
        self.codec, self.pix_fmt, self.options = _ENCODERS[suffix]
        if self.pix_fmt == "yuv420p" and (width % 2 or height % 2):
            self.pix_fmt = "yuv444p"  # 4:2:0 needs even sides
        self.rate, self.width, self.height = Fraction(rate), width, height
        self.frames = 0
        self._stack = ExitStack()

    def __enter__(self) -> VideoWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._container = self._stack.enter_context(av.open(str(tmp), mode="w"))
            s = self._container.add_stream(self.codec, rate=self.rate, options=dict(self.options))
        except (av.FFmpegError, ValueError) as e:
            self._stack.close()
            raise EGMTError(f"{self.path}: cannot write video ({e})") from None
        s.width, s.height, s.pix_fmt = self.width, self.height, self.pix_fmt
        s.time_base = 1 / self.rate
        self._stream = s
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: ``uint8 [H, W, 3]`` RGB, or ``[H, W]`` grey."""
        a = np.asarray(frame)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        if a.dtype != np.uint8 or a.shape != (self.height, self.width, 3):
            raise EGMTError(f"{self.path}: frame {self.frames} is {a.dtype} {a.shape}, want uint8 {(self.height, self.width, 3)}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
        vf.pts = self.frames
        self._container.mux(self._stream.encode(vf))
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._container.mux(self._stream.encode(None))  # flush the encoder
        self._stack.__exit__(exc_type, exc, tb)
