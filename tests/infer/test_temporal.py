"""egmt.infer.temporal: the static-region smoother of fused video."""

import numpy as np
import pytest

from egmt.errors import EGMTError
from egmt.infer.temporal import DEFAULT_BETA, StaticSmoother
from egmt.metrics.temporal import temporal_change


def _clip(frames: int = 12, seed: int = 0):
    """A static scene whose fusion flickers (a decision jittering between two sources that
    differ by 60 grey levels on the left half), and a bright square that moves on the right."""
    rng = np.random.default_rng(seed)
    ir = np.full((frames, 48, 64), 100, np.uint8)
    vi = np.full((frames, 48, 64), 160, np.uint8)
    fused = np.where(rng.random((frames, 48, 64)) < 0.5, 100, 160).astype(np.uint8)
    fused[:, :, 32:] = 160
    for t in range(frames):
        x = 34 + 2 * t
        for src in (ir, vi, fused):
            src[t, 10:30, x : x + 8] = 250
    return ir, vi, fused


def test_flicker_in_a_static_scene_is_smoothed_and_motion_is_left_alone():
    ir, vi, fused = _clip()
    smoother = StaticSmoother(0.5, 16)
    out = np.stack([smoother(f, a, b) for f, a, b in zip(fused, ir, vi)])
    assert np.array_equal(out[0], fused[0])  # nothing to blend with yet
    assert temporal_change(list(out[:, :, :30])) < 0.6 * temporal_change(list(fused[:, :, :30]))
    # where the square moved, every frame is its own fusion (no trail)
    for t in range(1, len(out)):
        x = 34 + 2 * t
        assert np.array_equal(out[t, 12:28, x + 2 : x + 6], fused[t, 12:28, x + 2 : x + 6])
    # colour frames: the same blend on every channel
    rgb = StaticSmoother(0.5, 16)
    coloured = [rgb(np.repeat(f[..., None], 3, -1), a, b) for f, a, b in zip(fused, ir, vi)]
    assert all(np.array_equal(c[..., 1], o) for c, o in zip(coloured, out))


def test_beta_zero_is_the_per_frame_fusion_and_bad_values_are_refused():
    ir, vi, fused = _clip()
    smoother = StaticSmoother(0.0)
    assert all(np.array_equal(smoother(f, a, b), f) for f, a, b in zip(fused, ir, vi))
    with pytest.raises(EGMTError, match="beta"):
        StaticSmoother(1.0)
    with pytest.raises(EGMTError, match="tau"):
        StaticSmoother(0.5, 0)


def test_the_cli_default_is_the_smoother_default():
    from egmt.cli import build_parser

    args = build_parser().parse_args(["fuse", "--ir", "a.mp4", "--vi", "b.mp4", "-o", "c.mp4"])
    assert args.temporal == DEFAULT_BETA
