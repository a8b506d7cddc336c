"""``egmt fuse`` on videos: frame count, rate and size kept; frame k of the output is the
image fusion of frame k of the sources (exactly with lossless .mkv, within a stated
tolerance with H.264 .mp4); entities once per clip; mismatched sources named; the stability
report. Clips are short crops of the real M3SVD videos (../shared), cut into tmp_path."""

from __future__ import annotations

import csv
import itertools
import json
import math
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from egmt.cli import main
from egmt.data.io import to_uint8
from egmt.data.video import VideoWriter, probe_video, read_frames
from egmt.infer import EGMTFuser
from egmt.infer.temporal import DEFAULT_BETA, StaticSmoother
from egmt.infer.video import ENTITY_FRAMES, ClipResult, fuse_clip
from egmt.metrics.temporal import TemporalChange, temporal_change

CLIP = "0111_1716"  # 30 fps
FRAMES = 4
CROP = (slice(200, 264), slice(300, 396))  # 64 x 96 around people on the pier


def cut(src: Path, dst: Path, frames: int = FRAMES, rate: Fraction | None = None, crop=CROP) -> Path:
    """The first ``frames`` frames of ``src``, cropped (None: whole), losslessly into ``dst`` (.mkv)."""
    info = probe_video(src)
    kept = [f if crop is None else f[crop] for f in itertools.islice(read_frames(src), frames)]
    h, w = kept[0].shape[:2]
    with VideoWriter(dst, rate or info.rate, w, h) as writer:
        for f in kept:
            writer.write(f)
    return dst


@pytest.fixture(scope="module")
def clips(data_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    video = data_dir / "m3svd_video"
    return {m: cut(video / m / f"{CLIP}.mp4", root / m / f"{CLIP}.mkv") for m in ("ir", "vi")}


def test_temporal_change_is_the_mean_absolute_frame_difference():
    a, b = np.full((4, 5), 10.0), np.full((4, 5), 13.0)
    assert temporal_change([a, b, a]) == pytest.approx(3.0)
    assert temporal_change([a, a, a]) == 0.0
    assert np.isnan(temporal_change([a]))
    rgb = np.stack([np.full((4, 5), 255, np.uint8)] * 3, axis=-1)  # white: grey 255
    acc = TemporalChange()
    acc.add(rgb)
    acc.add(np.zeros((4, 5), np.uint8))
    assert acc.value == pytest.approx(255.0, abs=1e-6) and acc.steps == 1


def test_stable_is_no_livelier_than_the_livelier_source():
    def clip(fused: float, ir: float, vi: float) -> ClipResult:
        return ClipResult(Path("f.mkv"), 3, 25.0, [], "none", 0.0, {"fused": fused, "ir": ir, "vi": vi})

    assert clip(2.0, 3.0, 1.0).stable is True  # under the IR's
    assert clip(2.0, 1.0, 3.0).stable is True  # under the VIS's, over the IR's
    assert clip(3.0, 3.0, 1.0).stable is True  # as lively: not more
    assert clip(3.5, 3.0, 1.0).stable is False
    assert clip(0.0, 0.0, 0.0).stable is True  # still clips
    assert clip(math.nan, math.nan, math.nan).stable is None  # one frame: nothing to compare
    # the console line says so when the fused clip is livelier, and only then
    assert "more than its livelier source" in clip(3.5, 3.0, 1.0).describe()
    assert "livelier" not in clip(2.0, 3.0, 1.0).describe() and "livelier" not in clip(math.nan, math.nan, math.nan).describe()


def moving_squares(folder: Path) -> dict[str, Path]:
    """Two 3-frame 32 x 32 clips on black: in the IR an 8 x 8 square of grey 200 steps right by 8
    and back (128 pixels change by 200 per step: mean change 25); in the VIS an 8 x 16 one does, by
    16, elsewhere (256 pixels: 50)."""
    clips = {}
    for role, (rows, width, step) in {"ir": (slice(0, 8), 8, 8), "vi": (slice(16, 24), 16, 16)}.items():
        path = folder / role / "c.mkv"
        path.parent.mkdir(parents=True)
        with VideoWriter(path, Fraction(25), 32, 32) as writer:
            for x in (0, step, 0):
                frame = np.zeros((32, 32), np.uint8)
                frame[rows, x : x + width] = 200
                writer.write(frame)
        clips[role] = path
    return clips


@pytest.mark.parametrize(
    "method, fused, stable",
    [
        # both squares at half grey (100): 25 x 100 / 200 + 50 x 100 / 200, under the VIS's 50
        ("average", 37.5, True),
        # both squares at 200: the motion of both sources, 25 + 50, over either alone
        ("max_abs", 75.0, False),
    ],
)
def test_stability_report_of_known_clips(tmp_path, method, fused, stable):
    clips = moving_squares(tmp_path)
    out = tmp_path / method / "f.mkv"
    assert main(["fuse", "--ir", str(clips["ir"]), "--vi", str(clips["vi"]), "-o", str(out), "--method", method]) == 0
    report = json.loads((tmp_path / method / "f.stability.json").read_text())
    assert report["frames"] == 3
    # the sources are RGB grey frames, read through rgb2gray (weights summing to 0.9999)
    assert report["change"] == pytest.approx({"fused": fused, "ir": 25.0, "vi": 50.0}, rel=2e-4)
    assert report["no_more_than_sources"] is stable


def test_a_video_paired_with_an_image_is_one_line(tmp_path, capsys):
    clips = moving_squares(tmp_path)
    image = tmp_path / "still.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
    capsys.readouterr()
    assert main(["fuse", "--ir", str(clips["ir"]), "--vi", str(image), "-o", str(tmp_path / "f.mkv"), "--method", "average"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--vi {image} image: give two videos or two images" in err
    assert main(["fuse", "--ir", str(image), "--vi", str(clips["vi"]), "-o", str(tmp_path / "f.png"), "--method", "average"]) == 2
    assert "is image, --vi" in capsys.readouterr().err and not (tmp_path / "f.png").exists()


def test_a_one_frame_clip_has_no_stability(tmp_path):
    for role in ("ir", "vi"):
        (tmp_path / role).mkdir()
        with VideoWriter(tmp_path / role / "c.mkv", Fraction(25), 16, 16) as writer:
            writer.write(np.full((16, 16), 50 if role == "ir" else 90, np.uint8))
    out = tmp_path / "f.mkv"
    assert (
        main(
            [
                "fuse",
                "--ir",
                str(tmp_path / "ir" / "c.mkv"),
                "--vi",
                str(tmp_path / "vi" / "c.mkv"),
                "-o",
                str(out),
                "--method",
                "average",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "f.stability.json").read_text())
    assert report["frames"] == 1 and report["change"] == {"fused": None, "ir": None, "vi": None}
    assert report["no_more_than_sources"] is None


def _frame_pngs(clips: dict[str, Path], folder: Path) -> list[tuple[Path, Path]]:
    folder.mkdir()
    out = []
    for k, (a, b) in enumerate(zip(read_frames(clips["ir"]), read_frames(clips["vi"]))):
        pair = folder / f"ir{k}.png", folder / f"vi{k}.png"
        Image.fromarray(a).save(pair[0])
        Image.fromarray(b).save(pair[1])
        out.append(pair)
    return out


@pytest.mark.parametrize("temporal", [None, "0"])
def test_lossless_video_is_frame_by_frame_image_fusion(clips, checkpoint, tmp_path, temporal):
    """--temporal 0: frame k is the image fusion of frame k; by default (0.5) it is that fusion
    through the static-region smoother, fed in order."""
    out = tmp_path / "fused.mkv"
    assert (
        main(
            [
                "fuse",
                "--ir",
                str(clips["ir"]),
                "--vi",
                str(clips["vi"]),
                "-o",
                str(out),
                "--checkpoint",
                str(checkpoint),
                "--device",
                "cpu",
                "--entities",
                "person, road",
                *(["--temporal", temporal] if temporal else []),
            ]
        )
        == 0
    )
    info = probe_video(out)
    src = probe_video(clips["vi"])
    assert (info.rate, info.width, info.height) == (Fraction(30), 96, 64) == (src.rate, src.width, src.height)
    fused = list(read_frames(out))
    assert len(fused) == FRAMES
    fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu")
    smoother = StaticSmoother(0.0 if temporal else DEFAULT_BETA)
    for k, (ir_png, vi_png) in enumerate(_frame_pngs(clips, tmp_path / "frames")):
        expected = to_uint8(fuser(ir_png, vi_png, entities=["person", "road"]).image)
        expected = smoother(expected, np.asarray(Image.open(ir_png)), np.asarray(Image.open(vi_png)))
        assert np.array_equal(fused[k], expected), k  # colour from the visible: RGB, exact
    report = json.loads((tmp_path / "fused.stability.json").read_text())
    assert report["temporal"] == (0.0 if temporal else DEFAULT_BETA)
    assert report["frames"] == FRAMES and report["fps"] == 30 and report["entity_source"] == "typed"
    assert report["change"]["fused"] == pytest.approx(temporal_change(fused))
    assert report["change"]["ir"] == pytest.approx(temporal_change(read_frames(clips["ir"])))
    assert isinstance(report["no_more_than_sources"], bool)  # its value on known clips: below


def test_caption_free_entities_are_chosen_once_from_the_first_frames(data_dir, checkpoint, tmp_path):
    from egmt.data.pairs import pair_from_arrays
    from egmt.infer.run import FuseJob

    video = data_dir / "m3svd_video"
    n = ENTITY_FRAMES + 2
    ir, vi = (cut(video / m / f"{CLIP}.mp4", tmp_path / m / "c.mkv", frames=n) for m in ("ir", "vi"))
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoint, ckpt)
    (ckpt / "validation.json").write_text(json.dumps({"classification": {"map": 0.9, "prior_map": 0.5}}))
    fuser = EGMTFuser.from_pretrained(ckpt, device="cpu")
    probs = []
    for a, b in itertools.islice(zip(read_frames(ir), read_frames(vi)), ENTITY_FRAMES):
        p = pair_from_arrays("f", a / np.float32(255), b / np.float32(255))
        probs.append(list(fuser.predict_entities(p.ir[None], p.vi[None])[1].values()))
    mean = np.mean(probs, axis=0)
    threshold = float(np.sort(mean)[len(mean) // 2])  # so that some classes are in, some out
    expected = [c for c, m in zip(fuser.vocabulary.classes, mean) if m > threshold]
    assert 0 < len(expected) < len(mean)
    clip = fuse_clip(FuseJob("egmt", fuser, threshold=threshold), ir, vi, tmp_path / "f.mkv", temporal=0.0)
    assert clip.entities == expected and clip.entity_source == f"classifier (first {ENTITY_FRAMES} frames)"
    last = list(read_frames(tmp_path / "f.mkv"))[-1]  # a frame after the first ones: same entities
    a, b = (list(read_frames(p))[-1] for p in (ir, vi))
    assert np.array_equal(last, to_uint8(fuser(a / np.float32(255), b / np.float32(255), entities=expected).image))


def test_mp4_output_keeps_rate_and_count_within_stated_tolerance(clips, tmp_path):
    lossless, h264 = tmp_path / "f.mkv", tmp_path / "f.mp4"
    for out in (lossless, h264):
        assert main(["fuse", "--ir", str(clips["ir"]), "--vi", str(clips["vi"]), "-o", str(out), "--method", "average"]) == 0
    info = probe_video(h264)
    assert (info.frames, info.rate, info.width, info.height) == (FRAMES, Fraction(30), 96, 64)
    for a, b in zip(read_frames(lossless), read_frames(h264), strict=True):
        # H.264 at CRF 18 in 4:2:0: mean error under 3 grey levels (docs/design.md)
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3.0


@pytest.mark.parametrize("what", ["rate", "size", "count"])
def test_mismatched_sources_are_named(clips, tmp_path, capsys, what):
    vi = tmp_path / "vi.mkv"
    if what == "rate":
        cut(clips["vi"], vi, rate=Fraction(25), crop=None)
    elif what == "size":
        cut(clips["vi"], vi, crop=(slice(0, 32), slice(0, 96)))
    else:
        cut(clips["vi"], vi, frames=FRAMES - 1, crop=None)  # .mkv: counts known only by decoding
    out = tmp_path / "o.mkv"
    assert main(["fuse", "--ir", str(clips["ir"]), "--vi", str(vi), "-o", str(out), "--method", "average"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(clips["ir"]) in err and str(vi) in err
    assert {"rate": "frame rates 30 vs 25", "size": "sizes 96x64 vs 96x32", "count": "ends after 3 frames"}[what] in err
    assert not out.exists() and not any(tmp_path.glob(".o.*"))  # nothing half-written


def test_a_temporal_blend_outside_0_1_is_refused_before_anything_is_written(clips, tmp_path, capsys):
    out = tmp_path / "o.mkv"
    argv = ["fuse", "--ir", str(clips["ir"]), "--vi", str(clips["vi"]), "-o", str(out), "--method", "average"]
    assert main([*argv, "--temporal", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--temporal 1.0" in err and "[0, 1)" in err
    assert not out.exists()


def test_folders_of_videos(clips, tmp_path, capsys):
    ir, vi = tmp_path / "ir", tmp_path / "vi"
    for d in (ir, vi):
        d.mkdir()
    for name in ("a", "b"):
        shutil.copy(clips["ir"], ir / f"{name}.mkv")
        shutil.copy(clips["vi"], vi / f"{name}.mkv")
    shutil.copy(clips["ir"], ir / "lonely.mkv")
    out = tmp_path / "out"
    assert main(["fuse", "--ir", str(ir), "--vi", str(vi), "-o", str(out), "--method", "average", "--video-ext", ".mkv"]) == 1
    assert "lonely.mkv: no visible partner" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["a.mkv", "a.stability.json", "b.mkv", "b.stability.json", "manifest.csv"]
    assert np.array_equal(np.stack(list(read_frames(out / "a.mkv"))), np.stack(list(read_frames(out / "b.mkv"))))
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert [(r["name"], r["status"], r["frames"]) for r in rows] == [("a", "fused", "4"), ("b", "fused", "4")]
