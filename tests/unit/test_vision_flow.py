"""Camera-compensated flow and its robustness: pans, moving objects, repeated frames, cuts, fades, bars, fps."""

from __future__ import annotations

import numpy as np
import pytest

from foleykit.vision import flow

H, W = 144, 256
FPS = 25.0
COL = {n: i for i, n in enumerate(flow.MOTION_CHANNELS)}


def texture(seed: int, h: int = 3 * H, w: int = 3 * W) -> np.ndarray:
    """A photo-like textured RGB picture (blurred noise at two scales)."""
    import cv2

    rng = np.random.RandomState(seed)
    big = cv2.resize(rng.rand(h // 16, w // 16, 3).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.rand(h, w, 3).astype(np.float32), (0, 0), 1.5)
    return np.clip((0.6 * big + 0.8 * fine - 0.2) * 255, 0, 255).astype(np.uint8)


def render(
    n: int, *, pan: float = 0.0, obj_speed: float = 0.0, seed: int = 0, fps: float = FPS, hold: int = 1
):
    """``n`` frames: a window panning right over a picture at ``pan`` px/s, a disc moving right at ``obj_speed``
    px/s in the frame; ``hold`` repeats every picture that many times (a lower source frame rate)."""
    import cv2

    pic = texture(seed)
    out = []
    for i in range(n):
        t = (i // hold) * hold / fps
        x0 = round(W + pan * t)
        f = np.ascontiguousarray(pic[H : 2 * H, x0 : x0 + W])
        if obj_speed:
            cv2.circle(f, (int(40 + obj_speed * t), H // 2), 14, (255, 255, 255), -1)
            cv2.circle(f, (int(40 + obj_speed * t), H // 2), 7, (0, 0, 0), -1)
        out.append(f)
    return np.stack(out)


def analyse(frames, fps=FPS):
    prep = flow.prepare(frames, fps, flow_size=72)
    sf = flow.scene_flow(prep)
    return prep, sf, flow.motion_channels(prep, sf)


def test_pure_pan_is_camera_motion_and_an_object_over_it_is_residual():
    _, _, pan = analyse(render(30, pan=100.0))
    expected = -100.0 / H  # the picture moves left by 100 px/s, in short sides per second
    mid = slice(3, 27)
    assert pan[mid, COL["camera_dx"]].mean() == pytest.approx(expected, rel=0.1)
    assert np.abs(pan[mid, COL["camera_dy"]]).max() < 0.1 * abs(expected)
    assert pan[mid, COL["residual_p99"]].mean() < 0.15 * abs(expected)
    assert pan[mid, COL["flow_mag"]].mean() == pytest.approx(abs(expected), rel=0.15)

    _, _, obj = analyse(render(30, pan=100.0, obj_speed=150.0))
    assert obj[mid, COL["camera_dx"]].mean() == pytest.approx(expected, rel=0.1)
    relative = 150.0 / H  # the disc moves 150 px/s against the background
    assert obj[mid, COL["residual_p99"]].mean() > 0.5 * relative
    assert obj[mid, COL["residual_dx"]].mean() > 0.3 * relative  # rightwards
    assert obj[mid, COL["residual_p99"]].mean() > 5 * pan[mid, COL["residual_p99"]].mean()


def test_a_still_camera_leaves_a_moving_object_alone():
    _, _, m = analyse(render(30, obj_speed=150.0))
    assert np.abs(m[3:27, COL["camera_dx"]]).max() < 0.05
    # the disc starts on the left: the motion is left of the centre at first, then moves right
    assert m[3, COL["centroid_x"]] < m[26, COL["centroid_x"]]
    assert m[3:27, COL["residual_p99"]].mean() > 0.5 * 150.0 / H


def test_repeated_frames_spread_motion_instead_of_zero_then_spike():
    frames = render(40, obj_speed=100.0, hold=2)  # a 12.5 fps source at 25 fps
    prep, _, m = analyse(frames)
    assert prep.duplicate[1:].sum() >= 18 and not prep.duplicate[::2][1:].any()
    speed = m[4:36, COL["residual_p99"]]
    assert speed.min() > 0.6 * speed.max()  # no zeros at the repeats, no doubled values after them
    _, _, native = analyse(render(40, obj_speed=100.0))
    assert speed.mean() == pytest.approx(native[4:36, COL["residual_p99"]].mean(), rel=0.15)
    assert (
        flow.find_duplicates(np.repeat(prep.gray[:1], 10, axis=0)).sum() == 0
    )  # a still picture stays still


def test_duplicate_test_ignores_codec_noise_but_not_a_small_moving_object():
    rng = np.random.RandomState(0)
    g = np.tile(rng.randint(0, 255, (1, 72, 128)).astype(np.uint8), (3, 1, 1))
    noisy = g.copy()
    noisy[1] = np.clip(g[1].astype(int) + rng.choice([-1, 0, 0, 0, 1], g[1].shape), 0, 255)
    assert flow.find_duplicates(noisy)[1]
    moved = g.copy()
    moved[1, 30:36, 60:66] = 255 - moved[1, 30:36, 60:66]  # a 6 x 6 object: 0.4 % of the pixels
    assert not flow.find_duplicates(moved)[1]


def test_scene_cut_is_flagged_not_reported_as_motion_and_strobes_merge():
    a = render(20, pan=60.0, seed=1)
    b = (render(40, pan=60.0, seed=2)[..., ::-1] * 0.6).astype(np.uint8)  # another place, other colours
    frames = np.concatenate([a, b])
    prep, _, m = analyse(frames)
    assert np.flatnonzero(prep.cut).tolist() == [20]
    assert m[20, COL["flow_mag"]] == pytest.approx(m[21, COL["flow_mag"]], rel=0.3)
    assert m[20, COL["frame_diff"]] < 2 * m[22, COL["frame_diff"]]
    assert m[20:23, COL["drop"]].max() == 0.0  # no drop across the cut (0.12 s after it)
    strobe = frames.copy()
    strobe[40:46:2] = a[:3]  # a flash of the other shot, 3 times within 0.25 s
    cuts = np.flatnonzero(flow.prepare(strobe, FPS, flow_size=72).cut)
    assert 20 in cuts and ((cuts >= 38) & (cuts <= 48)).sum() <= 1


def test_fade_is_not_motion():
    still = render(30, seed=3).astype(np.float32)
    gain = np.linspace(1.0, 0.15, 30)[:, None, None, None]
    prep, _, m = analyse((still * gain).astype(np.uint8))
    assert not prep.cut.any()
    assert m[:, COL["residual_p90"]].max() < 0.05
    assert np.abs(m[:, COL["camera_dx"]]).max() < 0.05
    assert m[2:28, COL["brightness_change"]].mean() < 0
    assert m[2:28, COL["frame_diff"]].mean() < 0.01  # normalised frames barely change


def test_letterbox_is_cropped_and_features_match_the_bare_picture():
    bare = render(24, pan=80.0, obj_speed=100.0)
    boxed = np.zeros((24, H + 40, W, 3), np.uint8)
    boxed[:, 20 : 20 + H] = bare
    prep, _, m = analyse(boxed)
    assert prep.crop == (0, 20, W, 20 + H)
    assert m[0, COL["letterbox"]] == pytest.approx(40 / (H + 40), abs=1e-3)
    _, _, ref = analyse(bare)
    assert m[3:21, COL["camera_dx"]].mean() == pytest.approx(ref[3:21, COL["camera_dx"]].mean(), rel=0.05)
    pillar = np.zeros((24, H, W + 60, 3), np.uint8)
    pillar[:, :, 30 : 30 + W] = bare
    assert flow.letterbox(pillar) == (30, 0, 30 + W, H)
    dark = (bare // 12).astype(np.uint8)  # a dark scene is not a bar
    assert flow.letterbox(dark) == (0, 0, W, H)


def test_velocities_are_per_second_at_any_frame_rate():
    _, _, at25 = analyse(render(30, obj_speed=150.0, fps=25.0), fps=25.0)
    _, _, at50 = analyse(render(60, obj_speed=150.0, fps=50.0), fps=50.0)
    v25 = at25[3:27, COL["residual_p99"]].mean()
    v50 = at50[6:54, COL["residual_p99"]].mean()
    assert v50 == pytest.approx(v25, rel=0.2)


def test_region_motion_weights_the_residual_by_a_mask():
    prep, sf, _ = analyse(render(20, obj_speed=150.0))
    h, w = prep.gray.shape[1:]
    left = np.zeros((20, h, w), np.float32)
    left[:, :, : w // 3] = 1.0
    right = np.zeros_like(left)
    right[:, :, 2 * w // 3 :] = 1.0
    on, off = flow.region_motion(sf, left), flow.region_motion(sf, right)
    assert on[3:8].mean() > 5 * off[3:8].mean()  # the disc starts on the left
    assert flow.region_motion(sf, np.zeros_like(left)).max() == 0.0
