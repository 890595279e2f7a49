"""Weight-free timing features that hold up on real footage: camera-compensated optical flow and friends.

:func:`prepare` readies a clip for analysis:

- letterbox / pillarbox: black bars at the edges (dark and flat in every sampled frame) are cropped away
  (:func:`letterbox`);
- duplicated frames (a 12 fps video resampled to 25 fps repeats frames; so do some encoders): a frame equal
  to the previous one within ``dup_tol`` grey levels, in runs of at most ``max_dup`` frames, is marked; the
  motion between the distinct frames around it is spread evenly over the gap instead of a zero followed by
  a spike (longer runs are a still picture, and stay still);
- scene cuts: histogram and pixel-difference jumps that stand out from the surrounding second, cuts closer
  than 0.5 s merged (:func:`scene_cuts`); the frame of a cut reports the motion of the next frame instead of
  the jump between shots;
- fades: every grey frame is normalised to a fixed mean and contrast before optical flow, so a change of
  exposure is not motion; nearly uniform frames (black) give no flow.

:func:`scene_flow` computes DIS optical flow (OpenCV, ultrafast preset refined down to half resolution)
between distinct frames at a small
size, fits the background motion per frame step (a similarity transform: pan, zoom, rotation, shake) robustly
(RANSAC over textured points; a mostly still frame is taken as a still camera) and subtracts it, leaving the
residual motion of things that move in the scene. :func:`motion_channels` reduces it to
:data:`MOTION_CHANNELS` per frame; :func:`region_motion` measures the residual motion inside masks / boxes
(foreground weighting, done by the scene encoder with person masks and detector boxes).

Units: lengths in short sides of the analysed picture (so any resolution reads the same), velocities per
second (any frame rate reads the same). Frame ``t`` describes the motion from frame ``t - 1`` to ``t``
(frame 0 repeats frame 1's).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from foleykit.errors import ConfigError
from foleykit.vision.contacts import direction_reversal, velocity_drop

MOTION_CHANNELS = (
    "flow_mag",  # mean |optical flow| before camera compensation
    "camera_dx",  # background motion at the frame centre, + right
    "camera_dy",  # ... + down
    "camera_zoom",  # log scale change per second, + zooming in
    "camera_rotation",  # radians per second
    "camera_fit",  # fraction of textured points that follow the camera model (0..1)
    "residual_mean",  # mean |flow - camera motion|
    "residual_p90",
    "residual_p99",
    "moving_fraction",  # pixels whose residual exceeds MOVING
    "residual_dx",  # magnitude-weighted mean residual flow of moving pixels
    "residual_dy",
    "centroid_x",  # magnitude-weighted position of the residual motion, [-1, 1] (0: none)
    "centroid_y",
    *(f"grid_{r}{c}" for r in range(3) for c in range(3)),  # mean |residual| in a 3 x 3 grid (row, column)
    "drop",  # largest velocity drop of a grid cell (something stops)
    "reversal",  # largest direction reversal of a grid cell (a bounce)
    "frame_diff",  # mean |difference| of brightness-normalised frames / 255
    "brightness",  # mean luma of the picture, 0..1 (before normalisation)
    "brightness_change",  # its change per second (fades)
    "letterbox",  # fraction of the frame area cropped away as black bars
)
MOVING = 0.1  # short sides per second
WINDOW_S = 0.12


@dataclass
class Prepared:
    """A clip ready for analysis (see :func:`prepare`)."""

    fps: float
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 of the picture inside the frames (bars removed)
    gray: np.ndarray  # (T, h, w) uint8 brightness-normalised grey frames at the flow size
    brightness: np.ndarray  # (T,) mean luma 0..1 of the picture
    blank: np.ndarray  # (T,) bool: nearly uniform frame (no flow)
    duplicate: np.ndarray  # (T,) bool: repeats the previous frame
    cut: np.ndarray  # (T,) bool: first frame of a new shot
    frame_area: float  # width * height of the input frames

    @property
    def unit(self) -> float:
        """Pixels of the flow frames per length unit (their short side)."""
        return float(min(self.gray.shape[1:3]))


@dataclass
class SceneFlow:
    """Camera-compensated flow of a prepared clip (see :func:`scene_flow`)."""

    camera: np.ndarray  # (T, 2, 3) background motion t-1 -> t, positions in units
    camera_fit: np.ndarray  # (T,)
    flow_mag: np.ndarray  # (T,) mean |flow| in units / s
    residual: np.ndarray  # (T, h, w, 2) float16 residual flow in units / s
    _speed: np.ndarray | None = None

    @property
    def speed(self) -> np.ndarray:
        """``(T, h, w)`` float32 residual speed ``|residual|`` (computed once)."""
        if self._speed is None:
            r = self.residual.astype(np.float32)
            self._speed = np.hypot(r[..., 0], r[..., 1])
        return self._speed


# --- preparation -------------------------------------------------------------------------------------------
def letterbox(frames: np.ndarray, *, threshold: float = 24.0, min_content: float = 0.4, samples: int = 12):
    """The picture inside black bars: ``(x0, y0, x1, y1)`` in pixels of ``frames`` ``(T, H, W, 3)``.

    A row (column) at the top / bottom (left / right) edge is a bar when, in every sampled frame, its mean
    luma is under ``threshold`` and its standard deviation under 6. Bars are only trimmed from the edges
    inwards, and never below ``min_content`` of the frame.
    """
    t, h, w = frames.shape[:3]
    idx = np.unique(np.linspace(0, t - 1, min(samples, t)).round().astype(int))
    sub = frames[idx]
    by_row = sub[:, :, ::4, 1].astype(np.float32)  # green ~ luma; every 4th pixel along the line is enough
    by_col = sub[:, ::4, :, 1].astype(np.float32)
    rows = ((by_row.mean(axis=2) < threshold) & (by_row.std(axis=2) < 6.0)).all(axis=0)
    cols = ((by_col.mean(axis=1) < threshold) & (by_col.std(axis=1) < 6.0)).all(axis=0)

    def span(bar: np.ndarray, n: int) -> tuple[int, int]:
        a = 0
        while a < n and bar[a]:
            a += 1
        b = n
        while b > a and bar[b - 1]:
            b -= 1
        return (a, b) if b - a >= min_content * n else (0, n)

    y0, y1 = span(rows, h)
    x0, x1 = span(cols, w)
    return x0, y0, x1, y1


def find_duplicates(gray: np.ndarray, *, tol: float = 0.6, max_run: int = 3) -> np.ndarray:
    """``(T,)`` bool: frame ``t`` repeats frame ``t - 1`` within a run of at most ``max_run`` repeats (a longer
    run is a still picture, not a lower frame rate).

    A repeat differs by at most ``tol`` grey levels on average and almost nowhere (< 0.1 % of the pixels) by
    more than 10 levels: codec noise passes, a small object that moved does not.
    """
    t = len(gray)
    same = np.zeros(t, bool)
    if t > 1:
        d = np.abs(np.diff(gray.astype(np.int16), axis=0)).reshape(t - 1, -1)
        same[1:] = (d.mean(axis=1) <= tol) & ((d > 10).mean(axis=1) < 0.001)
    out = np.zeros(t, bool)
    i = 0
    while i < t:
        if not same[i]:
            i += 1
            continue
        j = i
        while j < t and same[j]:
            j += 1
        if j - i <= max_run:
            out[i:j] = True
        i = j
    return out


def scene_cuts(
    frames: np.ndarray,
    fps: float,
    *,
    hist_threshold: float = 0.3,
    mad_threshold: float = 0.06,
    contrast: float = 3.0,
    min_gap: float = 0.5,
) -> np.ndarray:
    """``(T,)`` bool: the first frame of each new shot in small frames ``(T, h, w, 3)``.

    Both change scores of :func:`foleykit.product.windows.cut_scores` over their thresholds, the histogram
    score ``contrast`` times the median of the surrounding second, and cuts closer than ``min_gap`` s merged
    into the strongest (:func:`foleykit.product.windows.merge_close_cuts`).
    """
    from foleykit.product.windows import cut_scores, merge_close_cuts

    t = len(frames)
    out = np.zeros(t, bool)
    if t < 2:
        return out
    hist, mad = cut_scores(frames)
    half = max(1, round(fps / 2))
    times, scores = [], []
    for i in np.flatnonzero((hist > hist_threshold) & (mad > mad_threshold)):
        around = np.concatenate([hist[max(0, i - half) : i], hist[i + 1 : i + 1 + half]])
        if hist[i] > contrast * (float(np.median(around)) if around.size else 0.0):
            times.append((i + 1) / fps)
            scores.append(float(hist[i]))
    for s in merge_close_cuts(times, scores, min_gap=min_gap):
        out[round(s * fps)] = True
    return out


def normalise_gray(
    gray: np.ndarray, *, contrast: float = 40.0, min_std: float = 3.0
) -> tuple[np.ndarray, bool]:
    """A grey frame at mean 128 and standard deviation ``contrast`` (uint8), and whether it was blank."""
    g = gray.astype(np.float32)
    m, s = float(g.mean()), float(g.std())
    if s < min_std:
        return np.full(gray.shape, 128, np.uint8), True
    return np.clip((g - m) * (contrast / s) + 128.0, 0, 255).astype(np.uint8), False


def prepare(frames: np.ndarray, fps: float, *, flow_size: int = 128, max_dup: int = 3) -> Prepared:
    """Crop bars, mark duplicates and cuts, and make brightness-normalised grey frames (see module doc).

    Args:
        frames: uint8 RGB ``(T, H, W, 3)`` at ``fps``.
        fps: Their frame rate.
        flow_size: Short side of the grey frames optical flow runs on (about: the frames shrink by an integer
            factor).
        max_dup: Longest run of repeated frames taken as a lower source frame rate.
    """
    import cv2

    x = np.asarray(frames)
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
        raise ConfigError(f"expected uint8 RGB frames (T, H, W, 3), got {x.dtype} {x.shape}")
    if not fps > 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    x0, y0, x1, y1 = letterbox(x)
    pic = x[:, y0:y1, x0:x1]
    h, w = pic.shape[1:3]
    k = max(1, round(min(h, w) / flow_size))  # an integer factor: OpenCV's area filter is fast then
    fw, fh = max(8, w // k), max(8, h // k)
    pic = pic[:, : fh * k, : fw * k] if min(h, w) >= 8 * k else pic
    rgb = [cv2.resize(np.ascontiguousarray(f), (fw, fh), interpolation=cv2.INTER_AREA) for f in pic]
    raw = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb])
    norm = [normalise_gray(g) for g in raw]
    sw, sh = 32 * fw // min(fw, fh), 32 * fh // min(fw, fh)
    small = np.stack([cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA) for f in rgb])
    return Prepared(
        fps=float(fps),
        crop=(int(x0), int(y0), int(x1), int(y1)),
        gray=np.stack([n[0] for n in norm]),
        brightness=raw.reshape(len(raw), -1).mean(axis=1) / 255.0,
        blank=np.array([n[1] for n in norm], bool),
        duplicate=find_duplicates(raw, max_run=max_dup),
        cut=scene_cuts(small, fps),
        frame_area=float(x.shape[1] * x.shape[2]),
    )


# --- flow and camera ----------------------------------------------------------------------------------------
def _camera_fit(flow: np.ndarray, gray: np.ndarray, *, stride: int = 4, still: float = 0.25):
    """Background motion of one flow field: (2x3 affine in pixels, fraction of points that follow it)."""
    import cv2

    h, w = gray.shape
    ys, xs = np.mgrid[stride : h - stride : stride, stride : w - stride : stride]
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    texture = np.hypot(gx, gy)[ys, xs]
    sel = texture > max(20.0, float(np.percentile(texture, 40)))
    src = np.stack([xs[sel], ys[sel]], axis=1).astype(np.float32)
    ident = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    if len(src) < 12:
        return ident, 0.0
    f = flow[ys[sel], xs[sel]]
    mag = np.hypot(f[:, 0], f[:, 1])
    if (mag < still).mean() >= 0.4:  # most of the textured picture does not move: a still camera
        return ident, float((mag < 3 * still).mean())
    m, inl = cv2.estimateAffinePartial2D(
        src,
        src + f,
        method=cv2.RANSAC,
        ransacReprojThreshold=0.75,
        maxIters=300,
        confidence=0.99,
        refineIters=10,
    )
    if m is None:
        t = np.median(f, axis=0)
        return np.array([[1, 0, t[0]], [0, 1, t[1]]], np.float64), float((np.hypot(*(f - t).T) < 0.75).mean())
    return m.astype(np.float64), float(inl.mean())


def scene_flow(prep: Prepared) -> SceneFlow:
    """DIS optical flow between distinct frames, background motion removed (see the module docstring)."""
    import cv2

    g = prep.gray
    t, h, w = g.shape
    unit, fps = prep.unit, prep.fps
    camera = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float64), (t, 1, 1))
    fit = np.ones(t)
    mag = np.zeros(t)
    residual = np.zeros((t, h, w, 2), np.float16)
    filled = np.zeros(t, bool)
    if t < 2:
        return SceneFlow(camera, fit, mag, residual)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    dis.setFinestScale(1)  # half resolution at the finest level: small objects keep their own motion
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)
    keys = [i for i in range(t) if i == 0 or not prep.duplicate[i]]
    for a, b in itertools.pairwise(keys):
        gap = b - a
        if prep.cut[b] or prep.blank[a] or prep.blank[b]:
            continue
        flow = dis.calc(g[a], g[b], None)
        m, inl = _camera_fit(flow, g[a])
        bg = grid @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32) - grid
        res = (flow - bg) * (fps / gap / unit)
        lin = np.eye(2) + (m[:, :2] - np.eye(2)) / gap
        step = np.concatenate([lin, (m[:, 2] / gap / unit)[:, None]], axis=1)
        for i in range(a + 1, b + 1):
            camera[i], fit[i] = step, inl
            mag[i] = float(np.hypot(flow[..., 0], flow[..., 1]).mean()) * fps / gap / unit
            residual[i] = res
            filled[i] = True
    # frames without their own flow (frame 0, a cut): the nearest later frame's values (else an earlier one's);
    # frames next to a blank one keep no motion
    own = filled.copy()
    for i in range(t):
        if own[i] or prep.blank[i] or (i > 0 and prep.blank[i - 1]):
            continue
        near = [j for j in (*range(i + 1, min(t, i + 4)), *range(i - 1, max(-1, i - 4), -1)) if own[j]]
        if near:
            j = near[0]
            camera[i], fit[i], mag[i], residual[i] = camera[j], fit[j], mag[j], residual[j]
    return SceneFlow(camera, fit, mag, residual)


# --- per-frame channels ------------------------------------------------------------------------------------
def motion_channels(prep: Prepared, sf: SceneFlow) -> np.ndarray:
    """``(T, len(MOTION_CHANNELS))`` float32 per-frame motion features (see :data:`MOTION_CHANNELS`)."""
    t, h, w = prep.gray.shape
    fps, unit = prep.fps, prep.unit
    col = {n: i for i, n in enumerate(MOTION_CHANNELS)}
    out = np.zeros((t, len(MOTION_CHANNELS)), np.float64)
    r = sf.residual.astype(np.float32)  # (T, h, w, 2)
    m = sf.speed  # (T, h, w)
    flat = m.reshape(t, -1)
    n = flat.shape[1]
    q90, q99 = int(0.9 * (n - 1)), int(0.99 * (n - 1))
    part = np.partition(flat, [q90, q99], axis=1)
    moving = m > MOVING
    wts = np.where(moving, m, 0.0)
    tot = wts.reshape(t, -1).sum(axis=1)
    safe = np.maximum(tot, 1e-9)
    has = tot > 1e-9
    ys = (np.arange(h) + 0.5) / h * 2 - 1
    xs = (np.arange(w) + 0.5) / w * 2 - 1
    centre = np.array([w / 2, h / 2]) / unit
    cam = sf.camera
    move = np.einsum("tij,j->ti", cam[:, :, :2], centre) + cam[:, :, 2] - centre
    out[:, col["flow_mag"]] = sf.flow_mag
    out[:, col["camera_dx"]] = move[:, 0] * fps
    out[:, col["camera_dy"]] = move[:, 1] * fps
    out[:, col["camera_zoom"]] = 0.5 * np.log(np.maximum(np.abs(np.linalg.det(cam[:, :, :2])), 1e-6)) * fps
    out[:, col["camera_rotation"]] = np.arctan2(cam[:, 1, 0], cam[:, 0, 0]) * fps
    out[:, col["camera_fit"]] = sf.camera_fit
    out[:, col["residual_mean"]] = flat.mean(axis=1)
    out[:, col["residual_p90"]] = part[:, q90]
    out[:, col["residual_p99"]] = part[:, q99]
    out[:, col["moving_fraction"]] = moving.reshape(t, -1).mean(axis=1)
    out[:, col["residual_dx"]] = np.where(has, (r[..., 0] * wts).reshape(t, -1).sum(1) / safe, 0.0)
    out[:, col["residual_dy"]] = np.where(has, (r[..., 1] * wts).reshape(t, -1).sum(1) / safe, 0.0)
    out[:, col["centroid_x"]] = np.where(has, (wts.sum(axis=1) * xs).sum(1) / safe, 0.0)
    out[:, col["centroid_y"]] = np.where(has, (wts.sum(axis=2) * ys).sum(1) / safe, 0.0)
    rb = np.linspace(0, h, 4).round().astype(int)
    cb = np.linspace(0, w, 4).round().astype(int)
    cells = np.zeros((t, 9, 2))
    for a in range(3):
        for b in range(3):
            out[:, col[f"grid_{a}{b}"]] = m[:, rb[a] : rb[a + 1], cb[b] : cb[b + 1]].mean(axis=(1, 2))
            cells[:, 3 * a + b] = r[:, rb[a] : rb[a + 1], cb[b] : cb[b + 1]].mean(axis=(1, 2))
    if t > 1:
        diff = np.abs(np.diff(prep.gray.astype(np.int16), axis=0)).reshape(t - 1, -1).mean(axis=1) / 255.0
        out[1:, col["frame_diff"]] = diff
    k = max(1, round(WINDOW_S * fps))
    speed = out[:, [col[f"grid_{a}{b}"] for a in range(3) for b in range(3)]]
    out[:, col["drop"]] = np.max([velocity_drop(speed[:, c], k) for c in range(9)], axis=0)
    out[:, col["reversal"]] = np.max([direction_reversal(cells[:, c], k) for c in range(9)], axis=0)
    # no difference across a repeated frame or a cut: the next distinct frame's
    for i in range(1, t):
        if prep.duplicate[i] or prep.cut[i]:
            j = next((j for j in range(i + 1, t) if not prep.duplicate[j] and not prep.cut[j]), None)
            out[i, col["frame_diff"]] = out[j, col["frame_diff"]] if j is not None else 0.0
    out[0, col["frame_diff"]] = out[1, col["frame_diff"]] if t > 1 else 0.0
    for c in np.flatnonzero(prep.cut):  # drops / reversals never span a cut
        out[c : c + k, [col["drop"], col["reversal"]]] = 0.0
    out[:, col["brightness"]] = prep.brightness
    bc = np.gradient(prep.brightness) * fps if t > 1 else np.zeros(t)
    bc[prep.cut] = 0.0
    if t > 1:
        bc[np.flatnonzero(prep.cut) - 1] = 0.0
    out[:, col["brightness_change"]] = bc
    x0, y0, x1, y1 = prep.crop
    out[:, col["letterbox"]] = 1.0 - (x1 - x0) * (y1 - y0) / prep.frame_area
    return out.astype(np.float32)


def region_motion(sf: SceneFlow, weights: np.ndarray) -> np.ndarray:
    """Weighted mean residual speed ``(T,)`` with per-frame weights ``(T, h, w)`` (a foreground mask at the
    flow size); 0 where a frame's weights sum to 0."""
    w = np.asarray(weights, np.float32)
    wsum = w.sum(axis=(1, 2))
    num = np.einsum("thw,thw->t", sf.speed, w)
    return np.where(wsum > 1e-6, num / np.maximum(wsum, 1e-6), 0.0).astype(np.float32)
