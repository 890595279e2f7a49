"""Camera, timing and degradations of photo-real synthetic clips: what turns a rendered world into footage.

- ``Timeline``: the written frame rate (12-60 fps) and the content rate; content shot at 12 or 15 fps and
  written at 24-30 fps repeats frames (as telecined / converted footage does). A content frame ``k`` first
  appears on written frame ``first_written(k)``; events are timed on that written frame.
- ``FrameFormat``: the written size (160-480 px tall, 4:3 / 16:9 / 3:2 / 1:1 / 9:16), letterbox or
  pillarbox bars, and the internal render size (rendered smaller and upscaled: soft, web-like pictures).
- ``CameraPath``: per content frame, the world point at the frame centre and the zoom: static with
  hand-held shake, pans, slow zooms, tracking a subject, and the occasional cut to another framing.
- ``Degrader``: motion blur from camera motion, defocus, exposure / contrast / white-balance tone curve,
  vignette, sensor noise, fades in / out; codec artefacts come from the clip's x264 ``crf``.
All randomness is drawn at planning time, so any frame renders the same in any order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Written frame rates and their weights; content at 12 / 15 fps is sometimes written at 24-30 fps.
FPS_CHOICES = ((12.0, 0.06), (15.0, 0.06), (24.0, 0.16), (25.0, 0.26), (30.0, 0.3), (50.0, 0.06), (60.0, 0.1))
HEIGHTS = ((160, 0.14), (180, 0.1), (240, 0.26), (270, 0.1), (288, 0.1), (360, 0.2), (480, 0.1))
ASPECTS = ((4 / 3, 0.3), (16 / 9, 0.45), (3 / 2, 0.1), (1.0, 0.07), (9 / 16, 0.08))


def _weighted(rng: np.random.Generator, table) -> float:
    vals, w = zip(*table)
    w = np.asarray(w, np.float64)
    return vals[int(rng.choice(len(vals), p=w / w.sum()))]


def _even(x: float) -> int:
    return max(2, round(x / 2.0) * 2)


@dataclass(frozen=True)
class Timeline:
    """Written frames vs content frames.

    Attributes:
        fps: Frame rate of the written video.
        content_fps: Rate at which the picture changes (``<= fps``); equal unless frames are repeated.
        num_frames: Written frames.
    """

    fps: float
    content_fps: float
    num_frames: int

    def content_index(self, j: int) -> int:
        """Content frame shown on written frame ``j``."""
        return math.floor(j * self.content_fps / self.fps + 1e-6)

    @property
    def num_content(self) -> int:
        return self.content_index(self.num_frames - 1) + 1

    def first_written(self, k: int) -> int:
        """First written frame that shows content frame ``k``."""
        return math.ceil(k * self.fps / self.content_fps - 1e-6)


def random_timeline(rng: np.random.Generator, duration: float, fps: float | None) -> Timeline:
    """A per-clip frame rate (``fps`` fixed when given); p 0.3 of 24-30 fps clips repeat 12 / 15 fps content."""
    f = float(fps) if fps else float(_weighted(rng, FPS_CHOICES))
    content = f
    if fps is None and 24 <= f <= 30 and rng.random() < 0.3:
        content = 12.0 if rng.random() < 0.6 else 15.0
    return Timeline(fps=f, content_fps=content, num_frames=round(duration * f))


@dataclass(frozen=True)
class FrameFormat:
    """Written size, content box inside letterbox / pillarbox bars, and the internal render size."""

    width: int
    height: int
    box: tuple[int, int, int, int]  # x0, y0, content width, content height
    render: tuple[int, int]  # internal render width, height (upscaled to the box)

    @property
    def bars(self) -> str:
        x0, y0, _, _ = self.box
        return "letterbox" if y0 > 0 else "pillarbox" if x0 > 0 else "none"


def random_format(
    rng: np.random.Generator, size: tuple[int, int] | None, *, max_render_height: int = 288
) -> FrameFormat:
    """A written size (``size`` fixed when given) with p 0.15 letterbox / pillarbox bars and an internal
    render height of at most ``max_render_height`` (sometimes lower still: downscale-upscale softness)."""
    if size is not None:
        w, h = size
    else:
        h = int(_weighted(rng, HEIGHTS))
        w = _even(h * float(_weighted(rng, ASPECTS)))
    x0 = y0 = 0
    cw, ch = w, h
    if rng.random() < 0.15:
        if w / h >= 1.2:  # letterbox a wider picture (2.39:1 / 2:1) or pillarbox a 4:3 one
            if rng.random() < 0.6:
                ch = _even(w / float(rng.choice([2.39, 2.0, 1.85])))
                ch = min(ch, h)
                y0 = (h - ch) // 2 // 2 * 2
            else:
                cw = min(w, _even(h * 4 / 3))
                x0 = (w - cw) // 2 // 2 * 2
        else:  # portrait / square: pillarbox a narrower shot or letterbox a 16:9 one
            ch = min(h, _even(w * 9 / 16))
            y0 = (h - ch) // 2 // 2 * 2
    s = min(1.0, max_render_height / ch)
    if rng.random() < 0.3:
        s *= float(rng.uniform(0.6, 0.9))
    rw, rh = _even(cw * s), _even(ch * s)
    return FrameFormat(width=w, height=h, box=(x0, y0, cw, ch), render=(max(32, rw), max(32, rh)))


@dataclass
class CameraPath:
    """Per content frame: world x / y at the frame centre and zoom (1 = the render size in world pixels).

    ``matrix(k)`` maps world pixels to render pixels of frame ``k``; ``cuts`` lists content frames where the
    framing jumps (an edit).
    """

    cx: np.ndarray
    cy: np.ndarray
    zoom: np.ndarray
    render: tuple[int, int]
    mode: str
    cuts: list[int] = field(default_factory=list)

    def matrix(self, k: int) -> np.ndarray:
        rw, rh = self.render
        a = float(self.zoom[k])
        return np.array(
            [[a, 0.0, rw / 2 - a * float(self.cx[k])], [0.0, a, rh / 2 - a * float(self.cy[k])]], np.float32
        )

    def velocity(self, k: int) -> tuple[float, float]:
        """Apparent motion of the background (render px / frame) between frames k-1 and k (0 at cuts)."""
        if k == 0 or k in self.cuts:
            return 0.0, 0.0
        a = float(self.zoom[k])
        return -a * float(self.cx[k] - self.cx[k - 1]), -a * float(self.cy[k] - self.cy[k - 1])


def random_camera(
    rng: np.random.Generator,
    world: tuple[int, int],
    render: tuple[int, int],
    num: int,
    fps: float,
    *,
    follow: np.ndarray | None = None,
    variation: float = 1.0,
) -> CameraPath:
    """A camera move over ``num`` content frames inside a world of ``world`` (w, h) pixels.

    Modes: ``static`` (hand-held shake only), ``pan``, ``zoom``, ``track`` (follows ``follow``, world x per
    frame, with lag) and ``handheld`` (stronger shake); p 0.12 of a cut to a second framing.
    """
    ww, wh = world
    rw, rh = render
    t = np.arange(num) / fps
    modes = ["static", "pan", "zoom", "handheld"] + (["track", "track"] if follow is not None else [])
    mode = modes[int(rng.integers(len(modes)))] if variation > 0 else "static"
    zoom = np.ones(num)
    cx = np.full(num, ww / 2.0)
    cy = np.full(num, wh / 2.0)
    if mode == "pan":
        span = (ww - rw) * float(rng.uniform(0.4, 0.95))
        s = 1 if rng.random() < 0.5 else -1
        p = np.clip(t / max(t[-1], 1e-6), 0, 1)
        p = p if rng.random() < 0.5 else 0.5 - 0.5 * np.cos(math.pi * p)  # constant speed or ease in-out
        cx = ww / 2 + s * span * (p - 0.5)
        cy = cy + (wh - rh) * float(rng.uniform(-0.2, 0.2)) * (p - 0.5)
    elif mode == "zoom":
        z1 = float(rng.uniform(1.1, 1.3))
        p = np.clip(t / max(t[-1], 1e-6), 0, 1)
        zoom = 1 + (z1 - 1) * (p if rng.random() < 0.5 else 1 - p)
        cx = cx + (ww - rw) * float(rng.uniform(-0.2, 0.2))
    elif mode == "track":
        lag = max(1, int(0.25 * fps))
        f = np.convolve(np.pad(follow, (lag, 0), mode="edge"), np.ones(lag) / lag, mode="valid")[:num]
        cx = np.clip(f, rw / 2, ww - rw / 2)
    amp = (0.4 if mode != "handheld" else 1.6) * rh / 240 * variation * float(rng.uniform(0.3, 1.0))
    for arr in (cx, cy):
        for _ in range(3):
            arr += amp * np.sin(2 * math.pi * rng.uniform(0.3, 2.5) * t + rng.uniform(0, 6.3))
    cuts: list[int] = []
    if variation > 0 and num > 3 * fps and rng.random() < 0.12:
        k = int(rng.integers(int(1.2 * fps), num - int(1.2 * fps)))
        cuts.append(k)
        z = float(rng.uniform(1.15, 1.5)) if zoom[k] < 1.1 else 1.0
        zoom[k:] = zoom[k:] * z / zoom[k]
        cx[k:] += (ww - rw) * float(rng.uniform(-0.3, 0.3))
        cy[k:] += (wh - rh) * float(rng.uniform(-0.25, 0.25))
    half_w, half_h = rw / 2 / zoom, rh / 2 / zoom
    cx = np.clip(cx, half_w, ww - half_w)
    cy = np.clip(cy, half_h, wh - half_h)
    return CameraPath(cx=cx, cy=cy, zoom=zoom, render=render, mode=mode, cuts=cuts)


@dataclass
class Degrader:
    """Per-clip look applied to every rendered picture (see the module docstring)."""

    lut: np.ndarray  # (3, 256) uint8
    vignette: np.ndarray | None
    defocus: float
    noise_pos: list[np.ndarray]
    noise_neg: list[np.ndarray]
    fade_in: int  # written frames
    fade_out: int
    num_frames: int
    motion_blur: float  # shutter fraction (0..1) for camera-motion blur

    def apply(self, img: np.ndarray, velocity: tuple[float, float]) -> np.ndarray:
        """Render-size picture -> blurred, tone-mapped picture (before upscaling)."""
        import cv2

        vx, vy = velocity
        length = math.hypot(vx, vy) * self.motion_blur
        if length >= 1.5:
            n = int(min(25, round(length))) | 1
            k = np.zeros((n, n), np.float32)
            c = n // 2
            ang = math.atan2(vy, vx)
            p0 = (c - round(c * math.cos(ang)), c - round(c * math.sin(ang)))
            p1 = (c + round(c * math.cos(ang)), c + round(c * math.sin(ang)))
            cv2.line(k, p0, p1, 1.0, 1)
            img = cv2.filter2D(img, -1, k / max(k.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)
        if self.defocus > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), self.defocus)
        out = cv2.LUT(img, self.lut.T[:, None, :].reshape(256, 1, 3)) if img.ndim == 3 else img
        if self.vignette is not None:
            out = cv2.multiply(out, self.vignette, dtype=cv2.CV_8U, scale=1 / 255.0)
        return out

    def finish(self, img: np.ndarray, j: int) -> np.ndarray:
        """Sensor noise and fades on the written-size picture of written frame ``j``."""
        import cv2

        if self.noise_pos and self.noise_pos[0].shape == img.shape:
            i = j % len(self.noise_pos)
            img = cv2.subtract(cv2.add(img, self.noise_pos[i]), self.noise_neg[i])
        f = 1.0
        if self.fade_in and j < self.fade_in:
            f = j / self.fade_in
        if self.fade_out and j >= self.num_frames - self.fade_out:
            f = min(f, (self.num_frames - 1 - j) / self.fade_out)
        if f < 1.0:
            img = cv2.convertScaleAbs(img, alpha=max(0.0, f))
        return img


def random_degrader(
    rng: np.random.Generator, fmt: FrameFormat, timeline: Timeline, *, variation: float = 1.0
) -> Degrader:
    """Random tone curve, vignette, defocus, noise (p 0.6, 0.5-5 grey levels), fades (p 0.2 each), blur."""
    import cv2

    v = variation
    gain = 1.0 + v * rng.uniform(-0.25, 0.2)
    contrast = 1.0 + v * rng.uniform(-0.25, 0.2)
    gamma = 1.0 + v * rng.uniform(-0.2, 0.25)
    tint = 1.0 + v * rng.uniform(-0.08, 0.08, size=3)
    x = np.arange(256, dtype=np.float64) / 255.0
    lut = np.empty((3, 256), np.uint8)
    for ch in range(3):
        lut[ch] = ((((x**gamma - 0.5) * contrast + 0.5) * gain * tint[ch]).clip(0, 1) * 255).round()
    rw, rh = fmt.render
    vignette = None
    if rng.random() < 0.4 * v:
        yy, xx = np.mgrid[0:rh, 0:rw].astype(np.float32)
        r2 = ((xx - rw / 2) / (rw / 2)) ** 2 + ((yy - rh / 2) / (rh / 2)) ** 2
        g = (1.0 - rng.uniform(0.1, 0.35) * r2 / 2).clip(0, 1) * 255
        vignette = cv2.merge([g.astype(np.uint8)] * 3)
    sigma = float(rng.uniform(0.5, 5.0) * v) if rng.random() < 0.6 else 0.0
    pos, neg = [], []
    if sigma > 0.5:
        _, _, cw, ch = fmt.box
        for _ in range(4):
            lum = rng.normal(0, sigma, size=(ch, cw, 1))
            n = lum + rng.normal(0, 0.4 * sigma, size=(ch, cw, 3))
            pos.append(n.clip(0, 255).astype(np.uint8))
            neg.append((-n).clip(0, 255).astype(np.uint8))
    fade = lambda: int(rng.uniform(0.3, 1.0) * timeline.fps) if rng.random() < 0.2 * v else 0
    return Degrader(
        lut=lut,
        vignette=vignette,
        defocus=float(rng.uniform(0.4, 1.2)) * rh / 240 if rng.random() < 0.2 * v else 0.0,
        noise_pos=pos,
        noise_neg=neg,
        fade_in=fade(),
        fade_out=fade(),
        num_frames=timeline.num_frames,
        motion_blur=float(rng.uniform(0.3, 0.7)),
    )
