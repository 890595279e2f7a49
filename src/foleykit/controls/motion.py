"""Motion from video: the AV-Align optical-flow trajectory and cheap per-frame motion statistics.

:func:`flow_trajectory` is the video branch of the AV-Align metric (Yariv et al., AAAI'24; TempoTokens
``av_align.py``, see the specification's REFERENCE.md): Farneback optical flow between consecutive grayscale
frames with the parameters ``(0.5, 3, 15, 3, 5, 1.2, 0)``, reduced to one number per frame, with
``traj = [flow(f0, f1)] + [flow(f[i-1], f[i]) for i in 1..N-1]`` (frame 0 repeats the first pair, so
``traj[i]`` is the motion that ends at frame ``i``). The evaluation's AV-Align metric imports it.

:func:`motion_features` adds a few more weight-free statistics of the same flow fields (the demonstrator's
video features) and :func:`motion` wraps the trajectory as a ``TemporalControl(kind="motion")``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from foleykit.controls.base import TemporalControl
from foleykit.errors import ControlError

#: ``cv2.calcOpticalFlowFarneback`` arguments after ``flow=None``: pyr_scale, levels, winsize, iterations,
#: poly_n, poly_sigma, flags (AV-Align).
FARNEBACK_PARAMS = (0.5, 3, 15, 3, 5, 1.2, 0)

#: Columns of :func:`motion_features` (flows in pixels per frame at the analysed frame size).
MOTION_FEATURE_NAMES = (
    "flow_abs_mean",  # mean |flow| over pixels and both components (= flow_trajectory, AV-Align)
    "flow_mag_mean",  # mean Euclidean flow magnitude sqrt(dx^2 + dy^2)
    "flow_mag_p90",  # 90th percentile of the magnitude (fast motion of a small object)
    "flow_dx_mean",  # mean horizontal flow (+ = rightwards)
    "flow_dy_mean",  # mean vertical flow (+ = downwards)
    "moving_fraction",  # fraction of pixels moving more than MOVING_THRESHOLD px/frame
    "frame_diff",  # mean |gray_t - gray_(t-1)| / 255 (appearance change: flashes, cuts)
    "mag_change",  # flow_mag_mean[t] - flow_mag_mean[t-1] (sudden stops, e.g. impacts, are negative)
    "dy_change",  # flow_dy_mean[t] - flow_dy_mean[t-1] (a falling object that stops: negative)
    "centroid_x",  # magnitude-weighted x of the motion in [-1, 1] (0 when nothing moves)
    "centroid_y",  # magnitude-weighted y of the motion in [-1, 1] (0 when nothing moves)
)
MOVING_THRESHOLD = 0.5

Reduction = Literal["abs", "magnitude"]


def _check_frames(frames: Any) -> np.ndarray:
    if hasattr(frames, "detach"):  # a torch Tensor
        frames = frames.detach().cpu().numpy()
    x = np.asarray(frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ControlError(f"expected RGB video frames (T, H, W, 3), got shape {x.shape}")
    if x.dtype != np.uint8:
        raise ControlError(f"expected uint8 video frames, got {x.dtype}")
    if x.shape[0] < 2:
        raise ControlError(f"optical flow needs at least 2 frames, got {x.shape[0]}")
    if min(x.shape[1:3]) < 8:
        raise ControlError(
            f"frames of {x.shape[2]}x{x.shape[1]} pixels are too small for optical flow (>= 8)"
        )
    return x


def _grays(frames: np.ndarray) -> list[np.ndarray]:
    import cv2

    # RGB2GRAY on RGB == BGR2GRAY on the same frame stored as BGR (what AV-Align reads with OpenCV).
    return [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]


def _flows(grays: list[np.ndarray]) -> list[np.ndarray]:
    """Farneback flow for the pairs (f0, f1), (f1, f2), ... -> N - 1 fields ``(H, W, 2)`` float32."""
    import cv2

    return [cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK_PARAMS) for a, b in itertools.pairwise(grays)]


def _reduce(flow: np.ndarray, reduction: Reduction) -> float:
    if reduction == "abs":
        return float(np.mean(np.abs(flow), dtype=np.float64))
    return float(
        np.mean(np.sqrt(flow[..., 0].astype(np.float64) ** 2 + flow[..., 1].astype(np.float64) ** 2))
    )


def flow_trajectory(
    frames: np.ndarray,
    *,
    reduction: Reduction = "abs",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """AV-Align optical-flow trajectory: one motion value per frame.

    Args:
        frames: ``uint8 (T, H, W, 3)`` RGB frames, T >= 2 (AV-Align: all frames at native fps and size).
        reduction: ``abs`` (REFERENCE.md, TempoTokens HEAD): ``mean(|flow|)`` over all pixels and both
            components; ``magnitude``: mean Euclidean magnitude ``sqrt(dx^2 + dy^2)`` (``cv2.magnitude``
            then ``cv2.mean``, as in earlier versions of ``av_align.py``).
        progress: ``progress(done, total)`` after each flow field (``total = T - 1``).

    Returns:
        ``(T,)`` float64 with ``traj[0] = flow(f0, f1)`` and ``traj[i] = flow(f[i-1], f[i])``.
    """
    import cv2

    if reduction not in ("abs", "magnitude"):
        raise ControlError(f"unknown reduction {reduction!r}; use 'abs' or 'magnitude'")
    x = _check_frames(frames)
    grays = _grays(x)
    values = []
    for k, (a, b) in enumerate(itertools.pairwise(grays)):  # the pairs of _flows, one at a time
        values.append(_reduce(cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK_PARAMS), reduction))
        if progress is not None:
            progress(k + 1, len(grays) - 1)
    return np.asarray([values[0]] + values, dtype=np.float64)


def motion_features(frames: np.ndarray) -> np.ndarray:
    """Weight-free motion statistics per frame (see :data:`MOTION_FEATURE_NAMES`).

    Computed from the same Farneback flows as :func:`flow_trajectory` (column 0 equals it), frame 0 using
    the pair (f0, f1). Intended for small frames (about 128 px at 25 fps); flows are in pixels per frame at
    the given size, so always analyse at one fixed size.

    Args:
        frames: ``uint8 (T, H, W, 3)`` RGB frames, T >= 2.

    Returns:
        ``(T, 11)`` float32 features.
    """
    x = _check_frames(frames)
    grays = _grays(x)
    flows = _flows(grays)
    h, w = grays[0].shape
    ys = (np.arange(h, dtype=np.float64) + 0.5) / h * 2 - 1
    xs = (np.arange(w, dtype=np.float64) + 0.5) / w * 2 - 1
    rows = []
    for k, flow in enumerate(flows):
        dx = flow[..., 0].astype(np.float64)
        dy = flow[..., 1].astype(np.float64)
        mag = np.sqrt(dx * dx + dy * dy)
        total = mag.sum()
        if total > 1e-9:
            cx = float((mag.sum(axis=0) * xs).sum() / total)
            cy = float((mag.sum(axis=1) * ys).sum() / total)
        else:
            cx = cy = 0.0
        diff = np.mean(np.abs(grays[k + 1].astype(np.int16) - grays[k].astype(np.int16))) / 255.0
        p90 = float(np.partition(mag.ravel(), int(0.9 * (mag.size - 1)))[int(0.9 * (mag.size - 1))])
        rows.append(
            [
                (np.abs(dx).mean() + np.abs(dy).mean()) / 2,
                mag.mean(),
                p90,
                dx.mean(),
                dy.mean(),
                float((mag > MOVING_THRESHOLD).mean()),
                diff,
                0.0,
                0.0,
                cx,
                cy,
            ]
        )
    feats = np.asarray([rows[0]] + rows, dtype=np.float64)  # (T, 11), frame 0 repeats the first pair
    feats[1:, 7] = np.diff(feats[:, 1])
    feats[1:, 8] = np.diff(feats[:, 4])
    return feats.astype(np.float32)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize ``uint8 (T, H, W, 3)`` frames so that the short side is ``size`` (even sides, area filter)."""
    import cv2

    x = np.asarray(frames)
    h, w = x.shape[1:3]
    if size < 8:
        raise ControlError(f"size must be >= 8 pixels, got {size}")
    scale = size / min(h, w)
    even = lambda v: max(2, 2 * round(v / 2))
    ow, oh = even(w * scale), even(h * scale)
    if (ow, oh) == (w, h):
        return x
    return np.stack([cv2.resize(f, (ow, oh), interpolation=cv2.INTER_AREA) for f in x])


def motion(
    video_or_clip: str | os.PathLike | np.ndarray | Any,
    *,
    fps: float | None = None,
    size: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    reduction: Reduction = "abs",
    progress: Callable[[int, int], None] | None = None,
) -> TemporalControl:
    """Per-frame optical-flow motion control of a video (the AV-Align trajectory as a control).

    Args:
        video_or_clip: A video file (decoded with ``foleykit.media.read_video``), a ``VideoClip`` (anything
            with ``frames`` and ``fps``), or a ``uint8 (T, H, W, 3)`` array (then ``fps`` is required).
        fps: Frame rate to decode at (file input; None: native). For arrays, their frame rate. For a clip,
            must be None or the clip's own rate.
        size: Short side in pixels to analyse at (None: as decoded). Small sizes (~128) are much faster.
        start, duration: Segment of a video file to decode, in seconds.
        reduction: See :func:`flow_trajectory`.
        progress: ``progress(done, total)`` after each optical-flow field (the long part of the work).

    Returns:
        ``TemporalControl(kind="motion")`` at the frame rate, one value per frame (pixels per frame at the
        analysed size), ``values[i]`` being the flow that ends at frame ``i``.
    """
    t0, resized = 0.0, False
    if isinstance(video_or_clip, str | os.PathLike):
        from foleykit.media import read_video

        clip = read_video(video_or_clip, fps=fps, size=size, start=start, duration=duration)
        frames, rate = clip.frames, float(clip.fps)
        t0 = float(clip.timestamps[0]) if len(clip.timestamps) else float(start)
        source, resized = str(video_or_clip), True
    elif hasattr(video_or_clip, "frames") and hasattr(video_or_clip, "fps"):
        frames, rate = video_or_clip.frames, float(video_or_clip.fps)
        if fps is not None and abs(float(fps) - rate) > 1e-6:
            raise ControlError(f"the clip is at {rate:g} fps, not {fps:g}; decode it again at {fps:g} fps")
        stamps = getattr(video_or_clip, "timestamps", None)
        t0 = float(stamps[0]) if stamps is not None and len(stamps) else 0.0
        source = "clip"
    else:
        if fps is None:
            raise ControlError("motion: pass fps=<frames per second> with a frame array")
        frames, rate, source = video_or_clip, float(fps), "array"
    if not rate > 0:
        raise ControlError(f"motion: frame rate must be positive, got {rate}")
    frames = _check_frames(frames)
    if size is not None and not resized:
        frames = resize_frames(frames, size)
    traj = flow_trajectory(frames, reduction=reduction, progress=progress)
    meta = {
        "source": source,
        "reduction": reduction,
        "frame_size": [int(frames.shape[2]), int(frames.shape[1])],
        "farneback": list(FARNEBACK_PARAMS),
    }
    return TemporalControl("motion", traj.astype(np.float32), rate, t0, meta)
