"""Motion from video: the AV-Align flow trajectory, motion statistics and the motion control."""

import types

import cv2
import numpy as np
import pytest

from foleykit.controls import MOTION_FEATURE_NAMES, flow_trajectory, motion, motion_features
from foleykit.controls.motion import resize_frames
from foleykit.errors import ControlError
from foleykit.testing import make_moving_square_frames, make_moving_square_video

MOVES = (10, 30)


@pytest.fixture(scope="module")
def square():
    return make_moving_square_frames(50, size=(128, 96), move_frames=MOVES)


def av_align_reference(frames_rgb, reduce="abs"):
    """AV-Align's video branch as its script runs it: frames as OpenCV reads them (BGR), BGR2GRAY, Farneback."""
    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames_rgb]

    def of(a, b):
        flow = cv2.calcOpticalFlowFarneback(
            cv2.cvtColor(a, cv2.COLOR_BGR2GRAY),
            cv2.cvtColor(b, cv2.COLOR_BGR2GRAY),
            None,
            0.5,
            3,
            15,
            3,
            5,
            1.2,
            0,
        )
        if reduce == "abs":
            return float(np.mean(np.abs(flow)))
        return cv2.mean(cv2.magnitude(flow[..., 0], flow[..., 1]))[0]

    return np.array([of(bgr[0], bgr[1])] + [of(bgr[i - 1], bgr[i]) for i in range(1, len(bgr))])


def video_peaks(traj):
    """AV-Align's video peaks (HEAD): local maxima >= 0.1."""
    return [i for i in range(1, len(traj) - 1) if traj[i - 1] < traj[i] > traj[i + 1] and traj[i] >= 0.1]


def smooth_texture(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def test_trajectory_equals_av_align_reference(square):
    traj = flow_trajectory(square)
    assert traj.shape == (50,) and traj.dtype == np.float64
    np.testing.assert_allclose(traj, av_align_reference(square), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        flow_trajectory(square[:12], reduction="magnitude"),
        av_align_reference(square[:12], "magnitude"),
        rtol=1e-5,
        atol=1e-7,
    )


def test_motion_peaks_at_the_move_frames(square):
    traj = flow_trajectory(square)
    assert video_peaks(traj) == list(MOVES)
    still = np.delete(traj, MOVES)
    assert still.max() < 0.05 and traj[list(MOVES)].min() > 10 * still.max()
    early = make_moving_square_frames(6, move_frames=(1,))
    t = flow_trajectory(early)
    assert t[0] == t[1] and t[1] > 0.3 and t[2:].max() < 0.05  # frame 0 repeats the pair (f0, f1)


def test_known_translation():
    base = smooth_texture()
    frames = np.stack([base, np.roll(base, 2, axis=1), np.roll(base, 4, axis=1)])  # 2 px right per frame
    traj = flow_trajectory(frames)
    assert traj[1:] == pytest.approx([1.0, 1.0], abs=0.15)  # mean |flow| over dx = 2 and dy = 0
    feats = motion_features(frames)
    assert feats[1, 1] == pytest.approx(2.0, abs=0.3)  # Euclidean magnitude
    assert feats[1, 3] == pytest.approx(2.0, abs=0.3) and abs(feats[1, 4]) < 0.2  # dx, dy
    assert feats[1, 5] > 0.8  # nearly every pixel moves > 0.5 px
    down = np.stack([base, np.roll(base, 3, axis=0)])
    assert motion_features(down)[1, 4] == pytest.approx(3.0, abs=0.4)  # +dy = downwards


def test_static_video_has_no_motion():
    frames = np.repeat(smooth_texture()[None], 5, axis=0)
    assert flow_trajectory(frames).max() < 0.01  # Farneback leaves ~1e-3 px of numerical flow
    feats = motion_features(frames)
    col = {name: i for i, name in enumerate(MOTION_FEATURE_NAMES)}
    assert np.all(feats[:, col["moving_fraction"]] == 0) and np.all(feats[:, col["frame_diff"]] == 0)
    flat = np.full((3, 32, 32, 3), 100, np.uint8)
    np.testing.assert_array_equal(motion_features(flat), 0.0)  # centroids are 0 when nothing moves


def test_motion_features_columns(square):
    feats = motion_features(square)
    assert feats.shape == (50, len(MOTION_FEATURE_NAMES)) == (50, 11) and feats.dtype == np.float32
    np.testing.assert_allclose(feats[:, 0], flow_trajectory(square), rtol=1e-5, atol=1e-7)
    col = {name: i for i, name in enumerate(MOTION_FEATURE_NAMES)}
    assert feats[10, col["flow_dx_mean"]] > 0.5 and feats[30, col["flow_dx_mean"]] < -0.5  # right, then back
    assert feats[10, col["frame_diff"]] > 0.01 and feats[20, col["frame_diff"]] < 1e-3
    assert feats[11, col["mag_change"]] < -0.5  # motion stops after the jump
    assert feats[10, col["mag_change"]] == pytest.approx(
        feats[10, col["flow_mag_mean"]] - feats[9, col["flow_mag_mean"]]
    )
    assert 0 < feats[10, col["moving_fraction"]] < 1
    assert abs(feats[10, col["centroid_y"]]) < 0.3  # the square sits in the vertical middle
    assert feats[10, col["flow_mag_p90"]] > feats[10, col["flow_mag_mean"]]


@pytest.mark.parametrize(
    "frames,match",
    [
        (np.zeros((5, 32, 32), np.uint8), r"\(T, H, W, 3\)"),
        (np.zeros((5, 32, 32, 3), np.float32), "uint8"),
        (np.zeros((1, 32, 32, 3), np.uint8), "at least 2 frames"),
        (np.zeros((3, 4, 4, 3), np.uint8), "too small"),
    ],
)
def test_bad_frames(frames, match):
    with pytest.raises(ControlError, match=match):
        flow_trajectory(frames)
    with pytest.raises(ControlError, match=match):
        motion_features(frames)


def test_motion_control_from_array_clip_and_file(tmp_path, square):
    c = motion(square, fps=25)
    assert c.kind == "motion" and c.rate == 25 and c.num_frames == 50 and c.values.dtype == np.float32
    assert np.flatnonzero(c.values > 0.3).tolist() == list(MOVES)
    small = motion(square, fps=25, size=48)
    assert small.meta["frame_size"] == [64, 48] and np.argsort(small.values)[-2:].tolist() in (
        [10, 30],
        [30, 10],
    )
    clip = types.SimpleNamespace(frames=square, fps=25.0, timestamps=np.arange(50) / 25 + 2.0)
    from_clip = motion(clip)
    assert from_clip.start == 2.0 and from_clip.allclose(c.replace(start=2.0))
    path = make_moving_square_video(tmp_path / "sq.mp4", fps=25, duration=2.0, move_frames=MOVES)
    from_file = motion(path)
    assert from_file.rate == 25 and from_file.num_frames == 50 and from_file.meta["source"] == str(path)
    assert video_peaks(from_file.values) == list(MOVES)
    with pytest.raises(ControlError, match="pass fps"):
        motion(square)
    with pytest.raises(ControlError, match="decode it again"):
        motion(clip, fps=10)
    with pytest.raises(ControlError, match="unknown reduction"):
        motion(square, fps=25, reduction="max")


def test_resize_frames():
    frames = np.zeros((2, 96, 128, 3), np.uint8)
    assert resize_frames(frames, 48).shape == (2, 48, 64, 3)
    assert resize_frames(frames, 96) is frames
    with pytest.raises(ControlError, match=">= 8"):
        resize_frames(frames, 4)
