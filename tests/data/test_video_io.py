"""egmt.data.video: tiny clips made here, checked against PyAV itself where egmt writes or reads
them; frame count, rate and size, the lossless (FFV1) and H.264 round trips, the codec each
extension promises, atomic writes, and one error naming the file for what cannot be read."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from egmt.data.video import VideoWriter, probe_video, read_frames
from egmt.errors import EGMTError

H, W = 32, 48


def smooth_frames(n: int, height: int = H, width: int = W) -> list[np.ndarray]:
    """A horizontal grey ramp with a bright square moving right: what H.264 codes well."""
    out = []
    for k in range(n):
        f = np.repeat(np.tile((np.arange(width) * 4 + 20).astype(np.uint8)[None, :, None], (height, 1, 1)), 3, axis=2)
        f[8:16, 4 * k : 4 * k + 8] = 220
        out.append(f)
    return out


def encode_with_pyav(path: Path, frames: list[np.ndarray], rate: Fraction, codec: str = "libx264") -> Path:
    """A clip written by PyAV directly (not by egmt), to read back with egmt."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for k, a in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(a, format="rgb24")
            vf.pts = k
            container.mux(stream.encode(vf))
        container.mux(stream.encode(None))
    return path


def decode_with_pyav(path: Path) -> tuple[str, str, Fraction, list[np.ndarray]]:
    """Codec name, pixel format, average rate and RGB frames of ``path``, read by PyAV directly."""
    with av.open(str(path)) as container:
        s = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(s)]
        return s.codec_context.name, s.codec_context.pix_fmt, Fraction(s.average_rate), frames


def test_reads_a_pyav_h264_clip_frame_by_frame_within_codec_tolerance(tmp_path):
    frames = smooth_frames(6)
    clip = encode_with_pyav(tmp_path / "c.mp4", frames, Fraction(25))
    info = probe_video(clip)
    assert (info.path, info.frames, info.rate, info.width, info.height) == (clip, 6, Fraction(25), W, H)
    back = read_frames(clip)
    assert not isinstance(back, list)  # a generator: one frame decoded at a time
    back = list(back)
    assert len(back) == 6 and all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in back)
    for a, b in zip(frames, back, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3.0  # lossy, but by a few grey levels
    # the moving square is where it was put: the decoded frames are in order
    assert [int(np.argmax(f[12, :, 0] > 150)) for f in back] == [4 * k for k in range(6)]


def test_mkv_is_lossless_ffv1_rgb(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (18, 22, 3), dtype=np.uint8) for _ in range(3)]  # noise: only lossless keeps it
    with VideoWriter(tmp_path / "x.mkv", Fraction(25, 2), 22, 18) as w:
        for f in frames:
            w.write(f)
    assert w.frames == 3
    codec, pix_fmt, rate, decoded = decode_with_pyav(tmp_path / "x.mkv")
    assert (codec, pix_fmt, rate) == ("ffv1", "bgr0", Fraction(25, 2))
    assert all(np.array_equal(a, b) for a, b in itertools.zip_longest(decoded, frames))
    info = probe_video(tmp_path / "x.mkv")
    assert (info.rate, info.width, info.height) == (Fraction(25, 2), 22, 18)  # frames: 0, Matroska does not say
    assert all(np.array_equal(a, b) for a, b in itertools.zip_longest(read_frames(tmp_path / "x.mkv"), frames))


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_mp4_and_mov_are_h264_at_the_given_rate_and_close_to_the_frames(tmp_path, suffix):
    frames = smooth_frames(5)
    with VideoWriter(tmp_path / f"x{suffix}", Fraction(30000, 1001), W, H) as w:
        for f in frames:
            w.write(f)
    codec, pix_fmt, rate, decoded = decode_with_pyav(tmp_path / f"x{suffix}")
    assert (codec, pix_fmt, rate, len(decoded)) == ("h264", "yuv420p", Fraction(30000, 1001), 5)
    assert probe_video(tmp_path / f"x{suffix}").frames == 5
    for a, b in zip(frames, decoded, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3.0  # CRF 18 (docs/design.md: within 3 grey levels)


def test_odd_sides_are_written_in_444(tmp_path):
    frames = [f[:31, :47] for f in smooth_frames(3)]
    with VideoWriter(tmp_path / "odd.mp4", Fraction(25), 47, 31) as w:
        for f in frames:
            w.write(f)
    codec, pix_fmt, _, decoded = decode_with_pyav(tmp_path / "odd.mp4")
    assert (codec, pix_fmt) == ("h264", "yuv444p") and [f.shape for f in decoded] == [(31, 47, 3)] * 3


def test_a_grey_frame_is_written_as_rgb_grey(tmp_path):
    grey = np.arange(H * W, dtype=np.uint8).reshape(H, W)
    with VideoWriter(tmp_path / "g.mkv", Fraction(25), W, H) as w:
        w.write(grey)
    (back,) = read_frames(tmp_path / "g.mkv")
    assert all(np.array_equal(back[..., c], grey) for c in range(3))


@pytest.mark.parametrize(
    "frame, got",
    [
        (np.zeros((H, W, 3), np.float64), "float64 (32, 48, 3)"),
        (np.zeros((H, W - 2, 3), np.uint8), "uint8 (32, 46, 3)"),
        (np.zeros((H, W, 4), np.uint8), "uint8 (32, 48, 4)"),
    ],
)
def test_a_bad_frame_is_named_and_no_file_is_left(tmp_path, frame, got):
    out = tmp_path / "x.mp4"
    with pytest.raises(EGMTError) as e:
        with VideoWriter(out, Fraction(30), W, H) as w:
            w.write(np.zeros((H, W, 3), np.uint8))
            w.write(frame)
    assert str(e.value) == f"{out}: frame 1 is {got}, want uint8 (32, 48, 3)"
    assert list(tmp_path.iterdir()) == []  # neither the clip nor its temporary file


def test_an_interrupted_write_leaves_no_file(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(tmp_path / "x.mkv", Fraction(30), W, H) as w:
            w.write(np.zeros((H, W, 3), np.uint8))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_extension_is_refused_naming_the_file(tmp_path):
    with pytest.raises(EGMTError) as e:
        VideoWriter(tmp_path / "x.avi", Fraction(30), W, H)
    assert str(e.value) == f"{tmp_path / 'x.avi'}: cannot write a video with extension '.avi' (use .mkv, .mp4, .mov)"


def not_a_video(folder: Path, kind: str) -> Path:
    """A path that is no readable video, of the given kind."""
    if kind == "missing":
        return folder / "missing.mp4"
    if kind == "folder":
        (folder / "folder.mp4").mkdir()
        return folder / "folder.mp4"
    if kind in ("text", "empty"):
        path = folder / f"{kind}.mkv"
        path.write_bytes(b"not a video at all" * 10 if kind == "text" else b"")
        return path
    path = folder / "sound.wav"  # audio only
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    "kind, cause",
    [
        ("missing", "no such file"),
        ("folder", "not a file"),
        ("text", "not a video file FFmpeg can read"),
        ("empty", "not a video file FFmpeg can read"),
        ("audio", "no video stream"),
    ],
)
def test_what_is_not_a_readable_video_is_one_line_naming_it(tmp_path, kind, cause):
    path = not_a_video(tmp_path, kind)
    for read in (probe_video, lambda p: next(read_frames(p))):
        with pytest.raises(EGMTError) as e:
            read(path)
        assert str(e.value).startswith(f"{path}: {cause}") and "\n" not in str(e.value)


def test_a_damaged_h264_stream_is_a_broken_video_naming_the_file(tmp_path):
    out = tmp_path / "x.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(out, Fraction(25), W, H) as w:
        for _ in range(6):
            w.write(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    data = bytearray(out.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 2000] = bytes(2000)  # zeros over the coded frames (the index is at the end)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    assert probe_video(bad).frames == 6  # the container is intact
    with pytest.raises(EGMTError) as e:
        list(read_frames(bad))
    assert str(e.value).startswith(f"{bad}: broken video") and "\n" not in str(e.value)
