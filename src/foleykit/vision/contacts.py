"""Contact evidence from motion: velocity drops, direction reversals, and pose contacts of feet and hands.

Two 1-D signal tools shared by the optical-flow features (:mod:`foleykit.vision.flow`) and the pose:

- :func:`velocity_drop`: how much faster something was just before ``t`` than from ``t`` on (a stop: a
  foot landing, an object hitting the floor);
- :func:`direction_reversal`: how strongly the velocity before ``t`` points against the velocity after it
  (a bounce, a hand striking and coming back).

:func:`pose_contacts` turns keypoint tracks into per-frame contact channels (:data:`POSE_CHANNELS`). It reads
the keypoint json structure shared with the synthetic generator (names of BlazePose landmarks, coordinates
normalised to the frame, one row per video frame), so the same code serves the synthetic generator's ground
truth and the real pose model (:func:`tracks_from_results`). Velocities are in body units: the person's leg
length (hip centre to ankle centre) per second, so a small far walker and a close one read alike; camera
motion is removed from them when a camera track is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from foleykit.errors import ConfigError

#: Keypoint names the contact code reads (a subset of BlazePose's; the synthetic json carries exactly these).
KEYPOINT_NAMES = (
    "left_hip",
    "right_hip",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
    "left_wrist",
    "right_wrist",
)
#: Indices of :data:`KEYPOINT_NAMES` in BlazePose's 33 landmarks.
BLAZEPOSE_INDEX = (23, 24, 27, 28, 29, 30, 31, 32, 15, 16)

#: Columns of :func:`pose_contacts` (max over people unless said otherwise).
POSE_CHANNELS = (
    "person_present",  # a person's pose is known at this frame (0/1)
    "people",  # number of people with a pose / 3, at most 1
    "body_speed",  # hip-centre speed, leg lengths per second
    "feet_speed",  # fastest foot, leg lengths / s (camera motion removed)
    "feet_drop",  # foot velocity drop (a landing), leg lengths / s
    "feet_reversal",  # foot direction reversal, leg lengths / s
    "feet_contact",  # foot-contact events: a pulse at each detected landing (0..1)
    "left_foot_contact",  # the same for left feet only
    "right_foot_contact",  # ... right feet only
    "double_support",  # both feet of a person still (0..1), high around heel strikes
    "feet_gap",  # distance between a person's feet, leg lengths (largest at heel strike)
    "hands_speed",  # fastest wrist, leg lengths / s
    "hands_drop",  # wrist velocity drop (a strike that stops), leg lengths / s
    "hands_reversal",  # wrist direction reversal (strike and rebound), leg lengths / s
    "hands_contact",  # hand-contact events: pulses (0..1)
)

FOOT_FAST = 1.2  # leg lengths / s: a foot in swing moves faster than this
FOOT_STILL = 0.5  # ... a foot on the ground slower than this (camera motion removed)
HAND_FAST = 1.5
HAND_STILL = 0.5
WINDOW_S = 0.12  # look-back / look-ahead of drops and reversals
MIN_GAP_S = 0.3  # two contacts of one limb are at least this far apart
MAX_GAP_S = 0.6  # a pose missing longer than this is not interpolated over


# --- 1-D evidence -----------------------------------------------------------------------------------------
def _window_means(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``x`` (T, ...) over ``[t-k, t)`` and ``[t, t+k)`` (windows cut at the ends; row 0's "before"
    is row 0)."""
    t = len(x)
    c = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
    i = np.arange(t)
    lo, hi = np.maximum(0, i - k), np.minimum(t, i + k)
    before = (c[i] - c[lo]) / np.maximum(i - lo, 1).reshape(-1, *([1] * (x.ndim - 1)))
    after = (c[hi] - c[i]) / np.maximum(hi - i, 1).reshape(-1, *([1] * (x.ndim - 1)))
    before[0] = x[0]
    return before, after


def velocity_drop(speed: np.ndarray, k: int) -> np.ndarray:
    """``max(speed[t-k:t]) - mean(speed[t:t+k])``, at least 0 (0 at ``t = 0``): ``(T,)`` -> ``(T,)``."""
    s = np.asarray(speed, np.float64)
    t = len(s)
    if t < 2:
        return np.zeros(t)
    k = max(1, int(k))
    pad = np.concatenate([np.full(k, -np.inf), s])
    before = np.lib.stride_tricks.sliding_window_view(pad, k)[:t]  # row i: s[i-k : i]
    _, after = _window_means(s, k)
    out = np.maximum(0.0, before.max(axis=1) - after)
    out[0] = 0.0
    return out


def direction_reversal(velocity: np.ndarray, k: int) -> np.ndarray:
    """Reversal strength ``(T,)`` of a velocity track ``(T, 2)``: with ``a`` the mean velocity over
    ``[t-k, t)`` and ``b`` over ``[t, t+k)``, ``max(0, -cos(a, b)) * min(|a|, |b|)`` (speed units)."""
    v = np.asarray(velocity, np.float64)
    if len(v) < 2:
        return np.zeros(len(v))
    a, b = _window_means(v, max(1, int(k)))
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 1e-9) & (nb > 1e-9)
    cos = np.where(ok, (a * b).sum(1) / np.maximum(na * nb, 1e-18), 0.0)
    out = np.maximum(0.0, -cos) * np.minimum(na, nb)
    out[0] = 0.0
    return out


def stop_events(speed: np.ndarray, fps: float, *, fast: float, still: float, valid: np.ndarray | None = None):
    """Times a limb comes to rest: the speed falls through ``(fast + still) / 2`` after reaching ``fast``
    within the last 0.5 s and stays under ``fast / 2`` for the next 0.1 s.

    Returns:
        ``[(time in frames (fractional), strength 0..1)]``.
    """
    s = np.asarray(speed, np.float64)
    ok = np.ones(len(s), bool) if valid is None else np.asarray(valid, bool)
    mid = 0.5 * (fast + still)
    look = max(1, round(0.5 * fps))
    after = max(1, round(0.1 * fps))
    events: list[tuple[float, float]] = []
    for i in range(1, len(s)):
        if not (ok[i] and ok[i - 1] and s[i - 1] > mid >= s[i]):
            continue
        peak = s[max(0, i - look) : i].max()
        if peak < fast or s[i : i + after + 1].max() > 0.5 * fast + 0.5 * still:
            continue
        t = i - 1 + (s[i - 1] - mid) / max(s[i - 1] - s[i], 1e-9)
        strength = float(np.clip((peak - s[i : i + after + 1].min()) / fast, 0.0, 1.0))
        if events and t - events[-1][0] < MIN_GAP_S * fps:
            if strength > events[-1][1]:
                events[-1] = (t, strength)
            continue
        events.append((t, strength))
    return events


def pulses(events: list[tuple[float, float]], num_frames: int) -> np.ndarray:
    """Event list -> ``(T,)`` track with each event's strength at its nearest frame."""
    out = np.zeros(num_frames)
    for t, s in events:
        i = int(np.floor(t + 0.5))
        if 0 <= i < num_frames:
            out[i] = max(out[i], s)
    return out


# --- keypoint tracks --------------------------------------------------------------------------------------
@dataclass
class KeypointTrack:
    """One person's keypoints at some frames: ``frames (K,)`` frame indices (fractional allowed) and
    ``points (K, 10, 3)``: x, y in pixels of the analysed frame, visibility (0..1), per
    :data:`KEYPOINT_NAMES`."""

    frames: np.ndarray
    points: np.ndarray


def tracks_from_json(
    keypoints: dict[str, Any],
    *,
    fps: float,
    size: tuple[int, int],
    num_frames: int,
    every: int = 1,
    frames: np.ndarray | None = None,
) -> list[KeypointTrack]:
    """The INTERFACES.md keypoint structure -> tracks sampled every ``every`` frames of the ``fps`` grid.

    Args:
        keypoints: ``{"fps", "names", "people": [{"points": [[[x, y, v], ...], ...]}]}`` (x, y normalised).
        fps: Frame rate of the frames analysed (the keypoints' own ``fps`` may differ: they are resampled by
            time, linearly).
        size: ``(width, height)`` in pixels that the normalised coordinates scale to.
        num_frames: Frames analysed.
        every: Keep the keypoints of every ``every``-th frame only (the schedule the pose model runs on).
        frames: Or exactly these frames (e.g. the schedule with repeated frames moved to the first of their
            run, as the pose model sees them).

    Raises:
        ConfigError: a required name is missing or the arrays have the wrong shape.
    """
    try:
        names = list(keypoints["names"])
        kfps = float(keypoints.get("fps", fps))
        people = keypoints["people"]
    except (KeyError, TypeError) as err:
        raise ConfigError(f"keypoints need 'names' and 'people' (INTERFACES.md structure): {err}") from None
    missing = [n for n in KEYPOINT_NAMES if n not in names]
    if missing:
        raise ConfigError(f"keypoints lack the names {missing}")
    cols = [names.index(n) for n in KEYPOINT_NAMES]
    if frames is not None:
        grid = np.unique(np.asarray(frames, np.float64))
    else:
        grid = np.arange(0, num_frames, max(1, int(every)), dtype=np.float64)
    w, h = size
    out = []
    for person in people:
        pts = np.asarray(person["points"] if isinstance(person, dict) else person, np.float64)
        if pts.ndim != 3 or pts.shape[2] < 3 or pts.shape[1] != len(names):
            raise ConfigError(f"a person's points must be (frames, {len(names)}, 3), got {pts.shape}")
        pts = pts[:, cols, :3]
        src = np.arange(len(pts)) / kfps * fps  # their frames on our grid
        res = np.empty((len(grid), len(KEYPOINT_NAMES), 3))
        for j in range(len(KEYPOINT_NAMES)):
            for c in range(3):
                res[:, j, c] = np.interp(grid, src, pts[:, j, c], left=0.0, right=0.0)
        inside = (grid >= src[0] - 1e-6) & (grid <= src[-1] + 1e-6)
        res[~inside, :, 2] = 0.0
        res[..., 0] *= w
        res[..., 1] *= h
        out.append(KeypointTrack(grid.copy(), res))
    return out


def tracks_from_results(frames: list[int], people: list[list[tuple[int, np.ndarray]]]) -> list[KeypointTrack]:
    """Per analysed frame ``[(track id, landmarks (33, >=3))]`` (pose model output) -> one track per id."""
    by_id: dict[int, list[tuple[int, np.ndarray]]] = {}
    for f, found in zip(frames, people):
        for tid, lm in found:
            by_id.setdefault(tid, []).append((f, np.asarray(lm, np.float64)[list(BLAZEPOSE_INDEX), :3]))
    out = []
    for rows in by_id.values():
        out.append(KeypointTrack(np.array([r[0] for r in rows], np.float64), np.stack([r[1] for r in rows])))
    return out


# --- contacts ---------------------------------------------------------------------------------------------
def _limb(track: KeypointTrack, idx: tuple[int, ...], min_vis: float) -> tuple[np.ndarray, np.ndarray]:
    """Visibility-weighted mean position ``(K, 2)`` of some keypoints (smoothed over neighbouring keys) and
    whether it is known ``(K,)``."""
    p = track.points[:, list(idx)]
    w = np.where(p[..., 2] >= min_vis, p[..., 2], 0.0)
    ok = w.sum(1) > 0
    pos = (p[..., :2] * w[..., None]).sum(1) / np.maximum(w.sum(1), 1e-9)[:, None]
    inner = np.zeros_like(ok)
    inner[1:-1] = ok[1:-1] & ok[:-2] & ok[2:]
    smooth = pos.copy()  # [1, 2, 1] / 4 over the keys: landmark jitter, not motion, changes key to key
    smooth[1:-1] = (pos[:-2] + 2 * pos[1:-1] + pos[2:]) / 4
    return np.where(inner[:, None], smooth, pos), ok


def _levels(speed: np.ndarray, ok: np.ndarray, fast: float, still: float) -> tuple[float, float]:
    """``(fast, still)`` thresholds raised above a track's noise floor: a limb rests part of the time, so the
    lower quartile of its measured speed is mostly jitter; "still" is at least 1.5 times it, "fast" at least
    2.4 times "still" (on clean keypoints the floor is ~0 and the defaults stand)."""
    if ok.sum() < 4:
        return fast, still
    floor = float(np.percentile(speed[ok], 25))
    still = max(still, 1.5 * floor)
    return max(fast, 2.4 * still), still


def _to_frames(track_frames: np.ndarray, values: np.ndarray, ok: np.ndarray, num_frames: int, max_gap: float):
    """Linear interpolation of key values ``(K, ...)`` onto frames ``0..T-1`` where the keys are within
    ``max_gap`` frames of each other (held for less than one key step past the first / last key); returns
    ``(values (T, ...), valid (T,))``."""
    t = np.arange(num_frames, dtype=np.float64)
    f, v = track_frames[ok], values[ok]
    out = np.zeros((num_frames, *values.shape[1:]))
    valid = np.zeros(num_frames, bool)
    if len(f) == 0:
        return out, valid
    flat = v.reshape(len(f), -1)
    res = np.stack([np.interp(t, f, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    out = res.reshape(num_frames, *values.shape[1:])
    j = np.searchsorted(f, t)
    lo, hi = f[np.clip(j - 1, 0, len(f) - 1)], f[np.clip(j, 0, len(f) - 1)]
    exact = np.isclose(hi, t) | np.isclose(lo, t)
    step = float(np.median(np.diff(f))) if len(f) > 1 else 1.0  # held up to one key step past the ends
    inside = (t > f[0] - step) & (t < f[-1] + step)
    valid = (inside & ((hi - lo) <= max_gap)) | exact
    return out, valid


def _velocity(pos_k, ok_k, *, frames, num_frames, max_gap, fps, leg, unit, camera):
    """Key positions ``(K, 2)`` -> per-frame positions, velocities in leg lengths / s (camera motion removed)
    and their validity ``(T,)``."""
    pos, ok = _to_frames(frames, pos_k, ok_k, num_frames, max_gap)
    vel = np.gradient(pos, axis=0) * fps if num_frames > 1 else np.zeros_like(pos)
    if camera is not None:
        p = pos / unit
        cam = np.einsum("tij,tj->ti", camera[:, :, :2], p) + camera[:, :, 2] - p  # t-1 -> t
        nxt = np.concatenate([cam[1:], cam[-1:]])  # t -> t+1
        vel = vel - 0.5 * (cam + nxt) * unit * fps  # the central difference spans both steps
    vel = vel / leg
    ok_v = ok.copy()
    ok_v[1:] &= ok[:-1]
    ok_v[:-1] &= ok[1:]
    vel[~ok_v] = 0.0
    return pos, vel, ok_v


def pose_contacts(
    tracks: list[KeypointTrack],
    *,
    fps: float,
    num_frames: int,
    unit: float,
    camera: np.ndarray | None = None,
    min_visibility: float = 0.5,
) -> np.ndarray:
    """Per-frame contact channels (:data:`POSE_CHANNELS`) of people's keypoint tracks.

    Positions are interpolated from the tracks' frames to every frame; velocities are central differences
    in pixels per second, minus the camera's velocity at the point, divided by the person's leg length
    (median over the track). Foot contacts are the moments a foot comes to rest after moving
    (:func:`stop_events`); hand contacts also include sharp reversals.

    Args:
        tracks: Keypoint tracks (:func:`tracks_from_json`, :func:`tracks_from_results`).
        fps: Frame rate of the output frames.
        num_frames: Output frames ``T``.
        unit: Pixels per unit of the camera track's translation (the analysed frame's short side).
        camera: Optional ``(T, 2, 3)`` per-frame affine motion of the background in ``unit``s (``p' = A p +
            b`` from frame ``t-1`` to ``t``, positions in units), see :mod:`foleykit.vision.flow`.
        min_visibility: Keypoints less visible than this are treated as missing.

    Returns:
        ``(T, len(POSE_CHANNELS))`` float32.
    """
    out = np.zeros((num_frames, len(POSE_CHANNELS)))
    if num_frames == 0:
        return out.astype(np.float32)
    col = {n: i for i, n in enumerate(POSE_CHANNELS)}
    k = max(1, round(WINDOW_S * fps))
    count = np.zeros(num_frames)
    max_gap = MAX_GAP_S * fps
    for tr in tracks:
        if len(tr.frames) == 0:
            continue
        hip, hip_ok = _limb(tr, (0, 1), min_visibility)
        ankle, ankle_ok = _limb(tr, (2, 3), min_visibility)
        both = hip_ok & ankle_ok
        if not both.any():
            continue
        leg = float(np.median(np.linalg.norm(hip[both] - ankle[both], axis=1)))
        leg = max(leg, 4.0)
        present, present_ok = _to_frames(tr.frames, np.ones(len(tr.frames)), hip_ok, num_frames, max_gap)
        present = present * present_ok
        count += present
        out[:, col["person_present"]] = np.maximum(out[:, col["person_present"]], present)

        vel_of = {"frames": tr.frames, "num_frames": num_frames, "max_gap": max_gap, "fps": fps, "leg": leg}
        vel_of |= {"unit": unit, "camera": camera}
        _, v_body, _ = _velocity(hip, hip_ok, **vel_of)
        body = np.linalg.norm(v_body, axis=1)
        out[:, col["body_speed"]] = np.maximum(out[:, col["body_speed"]], body)
        feet = []
        for side, idx in (("left", (2, 4, 6)), ("right", (3, 5, 7))):
            pos_k, ok_k = _limb(tr, idx, min_visibility)
            pos, vel, ok = _velocity(pos_k, ok_k, **vel_of)
            speed = np.linalg.norm(vel, axis=1)
            feet.append((pos, speed, ok))
            fast, slow = _levels(speed, ok, FOOT_FAST, FOOT_STILL)
            ev = stop_events(speed, fps, fast=fast, still=slow, valid=ok)
            p = pulses(ev, num_frames)
            out[:, col[f"{side}_foot_contact"]] = np.maximum(out[:, col[f"{side}_foot_contact"]], p)
            out[:, col["feet_contact"]] = np.maximum(out[:, col["feet_contact"]], p)
            out[:, col["feet_speed"]] = np.maximum(out[:, col["feet_speed"]], speed)
            out[:, col["feet_drop"]] = np.maximum(out[:, col["feet_drop"]], velocity_drop(speed, k))
            out[:, col["feet_reversal"]] = np.maximum(
                out[:, col["feet_reversal"]], direction_reversal(vel, k)
            )
        (pl, sl, okl), (pr, sr, okr) = feet
        still = lambda s: np.clip(1.0 - s / FOOT_FAST, 0.0, 1.0)
        both_ok = okl & okr
        out[:, col["double_support"]] = np.maximum(
            out[:, col["double_support"]], np.where(both_ok, np.minimum(still(sl), still(sr)), 0.0)
        )
        gap = np.where(both_ok, np.linalg.norm(pl - pr, axis=1) / leg, 0.0)
        out[:, col["feet_gap"]] = np.maximum(out[:, col["feet_gap"]], gap)
        for idx in (8, 9):
            pos_k, ok_k = _limb(tr, (idx,), min_visibility)
            _, vel, ok = _velocity(pos_k, ok_k, **vel_of)
            speed = np.linalg.norm(vel, axis=1)
            drop, rev = velocity_drop(speed, k), direction_reversal(vel, k)
            fast, slow = _levels(speed, ok, HAND_FAST, HAND_STILL)
            ev = stop_events(speed, fps, fast=fast, still=slow, valid=ok)
            ev += [(float(i), float(min(1.0, rev[i] / fast))) for i in _peaks(rev, fast, fps)]
            out[:, col["hands_contact"]] = np.maximum(out[:, col["hands_contact"]], pulses(ev, num_frames))
            out[:, col["hands_speed"]] = np.maximum(out[:, col["hands_speed"]], speed)
            out[:, col["hands_drop"]] = np.maximum(out[:, col["hands_drop"]], drop)
            out[:, col["hands_reversal"]] = np.maximum(out[:, col["hands_reversal"]], rev)
    out[:, col["people"]] = np.minimum(count / 3.0, 1.0)
    return out.astype(np.float32)


def _peaks(x: np.ndarray, threshold: float, fps: float) -> list[int]:
    """Local maxima of ``x`` at or over ``threshold``, at least ``MIN_GAP_S`` apart (strongest first)."""
    idx = [i for i in range(1, len(x) - 1) if x[i] >= threshold and x[i] >= x[i - 1] and x[i] > x[i + 1]]
    kept: list[int] = []
    for i in sorted(idx, key=lambda i: -x[i]):
        if all(abs(i - j) >= MIN_GAP_S * fps for j in kept):
            kept.append(i)
    return sorted(kept)
