"""Read and write videos frame by frame (PyAV: FFmpeg's libraries, shipped inside its wheel).

Frames are streamed: :func:`read_frames` decodes one frame at a time and :class:`VideoWriter`
encodes each frame as it is given, so memory does not grow with the clip's length. A frame is
``uint8 [H, W, 3]`` RGB, as a PNG of it would hold, so a decoded frame fused as an array gives
what ``egmt fuse`` gives on that frame saved as an image.

Output codec by extension: ``.mkv`` is FFV1 in RGB (bgr0) (lossless: decoding gives back the
exact RGB frames written); ``.mp4`` / ``.mov`` is H.264 (libx264, yuv420p, CRF 18: visually
near-lossless and playable everywhere; yuv444p where a side is odd). The output is written
at the source's average frame rate, one frame per tick (constant frame rate), atomically.
A file that is missing, not a video or broken raises :class:`EGMTError` naming it.
"""

from __future__ import annotations

import os
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


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames of ``path``'s first video stream, one at a time, as ``uint8 [H, W, 3]`` RGB."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise EGMTError(f"{path}: broken video ({e.strerror or type(e).__name__})") from None


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
