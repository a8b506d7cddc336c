"""egmt.data.video: tiny clips made here, checked against PyAV itself where egmt writes or reads
them; frame count, rate and size, the lossless (FFV1) and H.264 round trips, the codec each
extension promises, atomic writes, and one error naming the file for what cannot be read,
truncated or partly corrupted clips included (cut or damaged bytes of a clip made here)."""

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


def noise_clip(path: Path, n: int = 6) -> list[np.ndarray]:
    """``n`` frames of noise (each coded to about the same size) written by egmt to ``path``."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)]
    with VideoWriter(path, Fraction(25), W, H) as w:
        for f in frames:
            w.write(f)
    return frames


def damaged(path: Path, name: str, edit) -> Path:
    """A copy of ``path`` with its bytes changed by ``edit``."""
    bad = path.with_name(name)
    bad.write_bytes(edit(path.read_bytes()))
    return bad


def read_until_error(path: Path) -> tuple[list[np.ndarray], str]:
    """The frames ``read_frames`` yields before it raises, and its message."""
    got: list[np.ndarray] = []
    with pytest.raises(EGMTError) as e:
        for f in read_frames(path):
            got.append(f)
    return got, str(e.value)


def test_a_truncated_mkv_raises_after_its_good_frames_naming_the_file_and_what_is_missing(tmp_path):
    # Matroska declares no frame count; a cut FFV1 file used to decode silently with fewer frames
    frames = noise_clip(tmp_path / "x.mkv")
    bad = damaged(tmp_path / "x.mkv", "cut.mkv", lambda d: d[: len(d) * 2 // 5])
    got, message = read_until_error(bad)
    assert message == f"{bad}: broken video (truncated: 2 of 6 frames, 0.080 s of 0.240 s)"
    assert len(got) == 2 and all(np.array_equal(a, b) for a, b in zip(got, frames))  # the good frames came first


@pytest.mark.parametrize("keep", [0.15, 0.3, 0.5, 0.7, 0.85, 0.95])
def test_an_mkv_cut_anywhere_is_truncated_by_as_many_frames_as_it_lost(tmp_path, keep):
    noise_clip(tmp_path / "x.mkv")
    bad = damaged(tmp_path / "x.mkv", "cut.mkv", lambda d: d[: int(len(d) * keep)])
    got, message = read_until_error(bad)
    assert message.startswith(f"{bad}: broken video (truncated: {len(got)} of 6 frames, ") and len(got) < 6
    assert "\n" not in message


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda d: d[: len(d) // 3] + bytes(2000) + d[len(d) // 3 + 2000 :], id="zeros over frames"),
        pytest.param(lambda d: d[: len(d) // 2] + d[len(d) // 2 + 3000 :], id="bytes cut out"),
    ],
)
def test_a_partly_corrupted_mkv_that_loses_frames_is_a_broken_video(tmp_path, edit):
    noise_clip(tmp_path / "x.mkv")
    bad = damaged(tmp_path / "x.mkv", "bad.mkv", edit)
    got, message = read_until_error(bad)
    assert message.startswith(f"{bad}: broken video (truncated: {len(got)} of 6 frames") and len(got) < 6


def test_a_truncated_mp4_with_its_index_first_is_short_of_the_header_count(tmp_path):
    # moov before mdat (faststart): the header survives a cut, and says 6 frames
    path = tmp_path / "x.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        rng = np.random.default_rng(0)
        for k, a in enumerate(rng.integers(0, 256, (6, H, W, 3), dtype=np.uint8)):
            vf = av.VideoFrame.from_ndarray(a, format="rgb24")
            vf.pts = k
            container.mux(stream.encode(vf))
        container.mux(stream.encode(None))
    assert len(list(read_frames(path))) == 6
    bad = damaged(path, "cut.mp4", lambda d: d[: len(d) * 9 // 10])
    assert probe_video(bad).frames == 6
    got, message = read_until_error(bad)
    assert message == f"{bad}: broken video (truncated: {len(got)} of 6 frames)" and len(got) < 6


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".mov"])
def test_whole_clips_egmt_writes_read_back_every_frame_without_error(tmp_path, suffix):
    frames = noise_clip(tmp_path / f"x{suffix}", n=7)
    back = list(read_frames(tmp_path / f"x{suffix}"))
    assert len(back) == 7
    if suffix == ".mkv":
        assert all(np.array_equal(a, b) for a, b in zip(back, frames, strict=True))


def test_an_mkv_with_a_longer_sound_track_reads_whole(tmp_path):
    # the file lasts 1 s (the sound), the video 0.24 s: the video's own DURATION tag is what counts
    path = tmp_path / "av.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("ffv1", rate=Fraction(25))
        video.width, video.height, video.pix_fmt = W, H, "bgr0"
        sound = container.add_stream("pcm_s16le", rate=8000)
        for k, a in enumerate(smooth_frames(6)):
            vf = av.VideoFrame.from_ndarray(a, format="rgb24")
            vf.pts = k
            container.mux(video.encode(vf))
        container.mux(video.encode(None))
        af = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        af.sample_rate, af.pts = 8000, 0
        container.mux(sound.encode(af))
        container.mux(sound.encode(None))
    with av.open(str(path)) as container:
        assert container.duration >= 0.99 * av.time_base
    assert len(list(read_frames(path))) == 6


class _Pipe:
    """A write-only sink: a muxer that cannot seek back leaves the length out (a live recording)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b) -> int:
        self.data += b
        return len(b)


def test_an_mkv_of_unknown_length_reads_as_far_as_it_goes(tmp_path):
    pipe = _Pipe()
    with av.open(pipe, "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        for k, a in enumerate(smooth_frames(6)):
            vf = av.VideoFrame.from_ndarray(a, format="rgb24")
            vf.pts = k
            container.mux(stream.encode(vf))
        container.mux(stream.encode(None))
    whole, cut = tmp_path / "live.mkv", tmp_path / "live-cut.mkv"
    whole.write_bytes(bytes(pipe.data))
    with av.open(str(whole)) as container:
        assert container.duration is None and "DURATION" not in container.streams.video[0].metadata
    cut.write_bytes(bytes(pipe.data[: len(pipe.data) // 2]))
    assert len(list(read_frames(whole))) == 6
    assert 0 < len(list(read_frames(cut))) < 6  # nothing says how long it was: no error
