"""Contact evidence: drops, reversals, and feet / hands contacts from keypoint tracks (INTERFACES.md json)."""

from __future__ import annotations

import numpy as np
import pytest

from foleykit.errors import ConfigError
from foleykit.vision import contacts

W, H = 640, 360
FPS = 25.0
COL = {n: i for i, n in enumerate(contacts.POSE_CHANNELS)}
NAMES = list(contacts.KEYPOINT_NAMES)


def walker(
    *, seconds: float = 4.0, fps: float = 25.0, speed: float = 64.0, period: float = 1.0, pan: float = 0.0
) -> tuple[dict, dict[str, list[float]]]:
    """A walker seen from the side in the INTERFACES.md keypoint structure, and its true heel-strike times.

    The hips move right at ``speed`` px/s; each foot stands for 60 % of ``period`` and swings (lifted) for
    40 %, the right foot half a period after the left; the camera pans right at ``pan`` px/s (everything
    moves left in the picture).
    """
    n = round(seconds * fps)
    leg = 72.0
    stride = speed * period
    strikes: dict[str, list[float]] = {"left": [], "right": []}
    frames = []
    for i in range(n):
        t = i / fps
        hip = np.array([100 + speed * t, 150.0])
        pts = {}
        for side, offset in (("left", 0.0), ("right", 0.5 * period)):
            phase = ((t - offset) % period) / period  # 0 = heel strike, 0.6 = toe off
            k = np.floor((t - offset) / period)
            stand_x = 100 + speed * (offset + k * period) + 0.3 * stride
            if phase < 0.6:
                x, lift = stand_x, 0.0
            else:
                s = (phase - 0.6) / 0.4
                x, lift = stand_x + stride * s, 10.0 * np.sin(np.pi * s)
            foot = np.array([x, hip[1] + leg - lift])
            pts[f"{side}_ankle"] = foot
            pts[f"{side}_heel"] = foot + (-4.0, 2.0)
            pts[f"{side}_foot_index"] = foot + (8.0, 3.0)
            pts[f"{side}_hip"] = hip + (3.0 if side == "left" else -3.0, 0.0)
            pts[f"{side}_wrist"] = hip + (10 * np.sin(2 * np.pi * (t - offset) / period), -10.0)
        for i_s, side in enumerate(("left", "right")):
            off = 0.5 * period * i_s
            if i == 0:
                strikes[side] = [
                    off + k * period for k in range(int(seconds / period) + 1) if off + k * period < seconds
                ]
        row = []
        for name in NAMES:
            x, y = pts[name]
            row.append([(x - pan * t) / W, y / H, 1.0])
        frames.append(row)
    return {"fps": fps, "names": NAMES, "people": [{"points": frames}]}, strikes


def camera_track(n: int, pan: float, fps: float = FPS) -> np.ndarray:
    """Per-frame background motion of a camera panning right at ``pan`` px/s (units: the 360 px short side)."""
    cam = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (n, 1, 1))
    cam[1:, 0, 2] = -pan / fps / H
    return cam


def detected(track: np.ndarray, fps: float = FPS) -> list[float]:
    return [i / fps for i in np.flatnonzero(track > 0.2)]


def match(found: list[float], truth: list[float], tol: float) -> int:
    return sum(any(abs(f - t) <= tol for f in found) for t in truth)


def run(kp: dict, *, every: int = 1, camera=None, seconds: float = 4.0) -> np.ndarray:
    n = round(seconds * FPS)
    tracks = contacts.tracks_from_json(kp, fps=FPS, size=(W, H), num_frames=n, every=every)
    return contacts.pose_contacts(tracks, fps=FPS, num_frames=n, unit=float(H), camera=camera)


def test_velocity_drop_and_direction_reversal():
    speed = np.array([0, 0, 4, 4, 4, 0, 0, 0, 2, 0.0])
    drop = contacts.velocity_drop(speed, 2)
    assert int(np.argmax(drop)) in (5, 6) and drop.max() == pytest.approx(4.0)
    assert drop[:4].max() == 0.0
    vel = np.zeros((10, 2))
    vel[:5, 1], vel[5:, 1] = 2.0, -1.0
    rev = contacts.direction_reversal(vel, 2)
    assert int(np.argmax(rev)) == 5 and rev[5] == pytest.approx(1.0)
    same = np.tile([1.0, 0.0], (10, 1))
    assert contacts.direction_reversal(same, 2).max() == 0.0


@pytest.mark.parametrize("every", [1, 3])
def test_foot_contacts_at_the_heel_strikes(every):
    kp, strikes = walker()
    out = run(kp, every=every)
    for side in ("left", "right"):
        found = detected(out[:, COL[f"{side}_foot_contact"]])
        truth = [t for t in strikes[side] if 0.5 <= t <= 3.6]  # a full swing before, a little stance after
        assert match(found, truth, tol=0.1 if every == 1 else 0.13) == len(truth), (side, found, truth)
        assert len(found) <= len(truth) + 1  # no extra contacts in stance or swing
    assert out[:, COL["person_present"]].min() == 1.0
    assert out[10:90, COL["body_speed"]].mean() == pytest.approx(64.0 / 72.0, rel=0.1)
    assert out[:, COL["feet_speed"]].max() > contacts.FOOT_FAST


def test_camera_motion_is_removed_from_the_feet():
    pan = 150.0  # the standing foot slides left at 2 leg lengths / s in the picture
    kp, strikes = walker(pan=pan)
    truth = [t for t in strikes["left"] if 0.5 <= t <= 3.6]
    with_cam = detected(run(kp, camera=camera_track(100, pan))[:, COL["left_foot_contact"]])
    assert match(with_cam, truth, tol=0.1) == len(truth)
    without = detected(run(kp)[:, COL["left_foot_contact"]])
    assert match(without, truth, tol=0.1) < len(truth)


def test_keypoints_at_their_own_frame_rate_are_resampled_by_time():
    kp, strikes = walker(fps=12.0)
    out = run(kp, every=3)
    truth = [t for t in strikes["right"] if 0.5 <= t <= 3.6]
    assert match(detected(out[:, COL["right_foot_contact"]]), truth, tol=0.15) == len(truth)


def test_hand_strikes_are_contacts():
    n = 100
    kp, _ = walker()
    pts = np.asarray(kp["people"][0]["points"], np.float64)
    wrist = NAMES.index("right_wrist")
    hits = [30, 60, 90]
    y = np.full(n, 0.3)
    for h in hits:  # 0.3 s down at 3 leg lengths / s, then still on the table
        for j in range(h - 8, h):
            y[j] = 0.3 + (j - (h - 8)) * (3.0 * 72.0 / FPS) / H
        y[h : h + 12] = y[h - 1]
    pts[:, wrist, 1] = y
    pts[:, wrist, 0] = 0.5
    kp["people"][0]["points"] = pts.tolist()
    out = run(kp)
    found = detected(out[:, COL["hands_contact"]])
    assert match(found, [h / FPS for h in hits], tol=0.1) == len(hits), found


def test_invisible_keypoints_are_not_interpolated_over_long_gaps():
    kp, _ = walker()
    pts = np.asarray(kp["people"][0]["points"], np.float64)
    pts[40:70, :, 2] = 0.0  # hidden for 1.2 s
    kp["people"][0]["points"] = pts.tolist()
    out = run(kp)
    assert out[45:65, COL["person_present"]].max() == 0.0
    assert out[45:65, COL["feet_contact"]].max() == 0.0
    assert out[10:35, COL["person_present"]].min() == 1.0


def test_tracks_from_json_checks_names_and_shapes():
    kp, _ = walker()
    with pytest.raises(ConfigError, match="left_heel"):
        contacts.tracks_from_json({**kp, "names": [n.replace("left_heel", "heel") for n in NAMES]},
                                  fps=FPS, size=(W, H), num_frames=10)  # fmt: skip
    with pytest.raises(ConfigError, match="frames"):
        contacts.tracks_from_json({**kp, "people": [{"points": [[0.1, 0.2, 1.0]]}]}, fps=FPS, size=(W, H),
                                  num_frames=10)  # fmt: skip
    tracks = contacts.tracks_from_json(kp, fps=FPS, size=(W, H), num_frames=100, every=4)
    assert tracks[0].frames.tolist() == list(range(0, 100, 4))
    assert tracks[0].points.shape == (25, 10, 3)


def test_tracks_from_pose_results_pick_the_blazepose_points():
    lm = np.zeros((33, 4), np.float32)
    lm[:, 0] = np.arange(33)
    lm[:, 2] = 1.0
    tracks = contacts.tracks_from_results([0, 3], [[(7, lm)], [(7, lm), (9, lm)]])
    assert [len(t.frames) for t in tracks] == [2, 1]
    assert tracks[0].points[0, :, 0].tolist() == list(contacts.BLAZEPOSE_INDEX)


def test_a_strike_that_rebounds_is_a_hand_contact():
    kp, _ = walker()
    pts = np.asarray(kp["people"][0]["points"], np.float64)
    wrist = NAMES.index("left_wrist")
    step = 3.0 * 72.0 / FPS / H  # 3 leg lengths / s
    y = np.full(100, 0.3)
    for h in (40, 75):  # 0.2 s down, 0.2 s straight back up: a drum stick
        for j in range(5):
            y[h - 5 + j] = 0.3 + j * step
            y[h + j] = 0.3 + (5 - j) * step
    pts[:, wrist, 1] = y
    pts[:, wrist, 0] = 0.5
    kp["people"][0]["points"] = pts.tolist()
    out = run(kp)
    assert match(detected(out[:, COL["hands_contact"]]), [40 / FPS, 75 / FPS], tol=0.1) == 2
    assert out[38:43, COL["hands_reversal"]].max() > contacts.HAND_FAST


def test_contacts_survive_landmark_jitter():
    """Real landmarks of small people jitter by ~0.1 leg length from key to key; the smoothing over keys and the
    noise-floor thresholds keep the landings (with neither, 55 of 75 were found here, and 11 extra ones)."""
    kp, strikes = walker(seconds=8.0)
    pts = np.asarray(kp["people"][0]["points"])
    hit = truth = found = 0
    for seed in range(3):
        rng = np.random.RandomState(seed)
        noisy = pts.copy()
        noisy[..., 0] += rng.standard_normal(pts[..., 0].shape) * 0.1 * 72 / W
        noisy[..., 1] += rng.standard_normal(pts[..., 1].shape) * 0.1 * 72 / H
        out = run({**kp, "people": [{"points": noisy.tolist()}]}, every=3, seconds=8.0)
        for side in ("left", "right"):
            f = [t for t in detected(out[:, COL[f"{side}_foot_contact"]]) if 0.4 <= t <= 7.7]
            tr = [t for t in strikes[side] if 0.5 <= t <= 7.6]
            hit, truth, found = hit + match(f, tr, 0.13), truth + len(tr), found + len(f)
    assert hit >= 0.9 * truth and found <= 1.1 * truth, (hit, found, truth)
