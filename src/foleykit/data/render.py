"""Procedural drawing for the synthetic audio-visual generator (numpy + OpenCV, no assets).

Everything is drawn at the output size from lengths expressed in frame heights, so one scene renders the
same at 160x120 and at 1280x720. This module holds the pieces: surface textures (12 floor materials, each
with its own colour family AND texture, so colour alone never identifies it), wall / sky backdrops,
sub-pixel anti-aliased primitives, analytic particle bursts (dust, splashes, sparks, snow), and the
per-clip camera "look" (exposure, contrast, tint, gamma, vignette, sensor noise, blur, shake).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np

#: The 12 floor materials (``footsteps/<surface>`` categories of the default bank).
SURFACES = (
    "carpet",
    "dirt",
    "grass",
    "gravel",
    "metal",
    "sand",
    "snow",
    "water",
    "stone",
    "tile",
    "wood",
    "linoleum",
)
_SHIFT = 4  # cv2 fixed-point bits: coordinates are drawn with 1/16 pixel precision
_ONE = 1 << _SHIFT


def hsv(
    rng: np.random.Generator, h: tuple[float, float], s: tuple[float, float], v: tuple[float, float]
) -> np.ndarray:
    """A random RGB colour (float 0..255) with hue in degrees, saturation and value in [0, 1]."""
    hh = (float(rng.uniform(*h)) % 360.0) / 360.0
    r, g, b = colorsys.hsv_to_rgb(hh, float(rng.uniform(*s)), float(rng.uniform(*v)))
    return np.array([r, g, b]) * 255.0


def shade(color: np.ndarray, factor: float) -> tuple[int, int, int]:
    """``color`` scaled by ``factor`` as an int tuple for cv2."""
    r, g, b = (min(255.0, max(0.0, float(v) * factor)) for v in color[:3])
    return int(r), int(g), int(b)


def _pts(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def fill_poly(img: np.ndarray, points: np.ndarray, color: tuple[int, int, int] | np.ndarray) -> None:
    """Anti-aliased filled polygon with sub-pixel vertices ``(N, 2)`` (x, y)."""
    import cv2

    cv2.fillPoly(img, [_pts(points)], tuple(int(c) for c in color), cv2.LINE_AA, _SHIFT)


def poly_line(
    img: np.ndarray, points: np.ndarray, color, thickness: float = 1.0, closed: bool = False
) -> None:
    """Anti-aliased polyline."""
    import cv2

    cv2.polylines(
        img,
        [_pts(points)],
        closed,
        tuple(int(c) for c in color),
        max(1, round(thickness)),
        cv2.LINE_AA,
        _SHIFT,
    )


def circle(img: np.ndarray, center, radius: float, color, thickness: int = -1) -> None:
    """Anti-aliased circle at a sub-pixel centre (filled when thickness < 0)."""
    import cv2

    c = (round(center[0] * _ONE), round(center[1] * _ONE))
    cv2.circle(
        img, c, max(1, round(radius * _ONE)), tuple(int(v) for v in color), thickness, cv2.LINE_AA, _SHIFT
    )


def ellipse(img: np.ndarray, center, axes, color, angle: float = 0.0) -> None:
    """Anti-aliased filled ellipse (axes are half-lengths in pixels)."""
    import cv2

    c = (round(center[0] * _ONE), round(center[1] * _ONE))
    a = (max(1, round(axes[0] * _ONE)), max(1, round(axes[1] * _ONE)))
    cv2.ellipse(img, c, a, angle, 0, 360, tuple(int(v) for v in color), -1, cv2.LINE_AA, _SHIFT)


def thick_segment(img: np.ndarray, a, b, width: float, color) -> None:
    """A segment of sub-pixel width drawn as a quad with round caps (limbs, handles)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    n = float(np.hypot(*d))
    if n < 1e-6:
        circle(img, a, width / 2, color)
        return
    p = np.array([-d[1], d[0]]) / n * width / 2
    fill_poly(img, np.array([a + p, b + p, b - p, a - p]), color)
    circle(img, a, width / 2, color)
    circle(img, b, width / 2, color)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in [-1, 1], ``(h, w)`` float32: random values on a grid of ``cell`` pixels, upsampled."""
    import cv2

    gh, gw = max(2, int(h / max(cell, 1)) + 2), max(2, int(w / max(cell, 1)) + 2)
    g = rng.uniform(-1, 1, size=(gh, gw)).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


# --- floor textures --------------------------------------------------------------------------------------
def surface_texture(kind: str, rng: np.random.Generator, w: int, h: int, u: float) -> np.ndarray:
    """A top-down texture of a floor material.

    Args:
        kind: One of ``SURFACES``.
        rng: Random source (colour and layout vary per call).
        w, h: Size in pixels.
        u: Pixels per texture unit (about frame_height / 120), so detail scales with resolution.

    Returns:
        ``uint8 (h, w, 3)`` RGB.
    """
    import cv2

    if kind not in SURFACES:
        raise ValueError(f"unknown surface {kind!r}; choose one of {SURFACES}")
    img = np.zeros((h, w, 3), np.float32)
    area = w * h / (u * u)

    def base(color: np.ndarray, noise: float, cell: float) -> None:
        img[:] = color
        img[:] += (noise * smooth_noise(rng, h, w, cell * u))[..., None] * (color[None, None, :] / 255 + 0.3)

    if kind == "grass":
        c = hsv(rng, (85, 130), (0.5, 0.85), (0.3, 0.55))
        base(c, 25, 10)
        out = img.clip(0, 255).astype(np.uint8)
        for _ in range(int(area * 0.55)):
            x, y = rng.uniform(0, w), rng.uniform(-2 * u, h)
            ln = rng.uniform(2.5, 6) * u
            dx = rng.normal(0, 0.35) * ln
            poly_line(out, np.array([[x, y], [x + dx, y - ln]]), shade(c, rng.uniform(0.6, 1.6)), 0.8 * u)
        return out
    if kind == "gravel":
        c = hsv(rng, (20, 60), (0.05, 0.25), (0.45, 0.7))
        base(c, 15, 6)
        out = img.clip(0, 255).astype(np.uint8)
        for _ in range(int(area * 0.35)):
            r = rng.uniform(0.8, 2.2) * u
            ctr = (rng.uniform(0, w), rng.uniform(0, h))
            col = shade(c, rng.uniform(0.45, 1.45))
            ellipse(out, ctr, (r, r * rng.uniform(0.6, 1.0)), col, rng.uniform(0, 180))
            circle(out, (ctr[0] - 0.3 * r, ctr[1] - 0.3 * r), max(0.5, 0.35 * r), shade(col, 1.25))
        return out
    if kind == "dirt":
        c = hsv(rng, (18, 35), (0.45, 0.7), (0.28, 0.45))
        base(c, 35, 14)
        img += (12 * smooth_noise(rng, h, w, 3 * u))[..., None]
        out = img.clip(0, 255).astype(np.uint8)
        for _ in range(int(area * 0.02)):
            ctr = (rng.uniform(0, w), rng.uniform(0, h))
            ellipse(
                out,
                ctr,
                (rng.uniform(0.6, 1.6) * u, rng.uniform(0.4, 1.0) * u),
                shade(c, rng.uniform(0.5, 0.8)),
            )
        for _ in range(int(area * 0.002) + 1):
            p = np.cumsum(rng.normal(0, 3 * u, size=(5, 2)), axis=0) + [rng.uniform(0, w), rng.uniform(0, h)]
            poly_line(out, p, shade(c, 0.55), 0.7 * u)
        return out
    if kind == "sand":
        c = hsv(rng, (38, 50), (0.25, 0.45), (0.75, 0.92))
        base(c, 10, 20)
        img += rng.normal(0, 7, size=(h, w, 1)).astype(np.float32)
        out = img.clip(0, 255).astype(np.uint8)
        period = rng.uniform(5, 9) * u
        xs = np.linspace(0, w, 40)
        for y0 in np.arange(-period, h + period, period):
            ys = y0 + 1.5 * u * np.sin(xs / (rng.uniform(12, 20) * u) + rng.uniform(0, 6.3))
            poly_line(out, np.stack([xs, ys], 1), shade(c, 0.84), 0.8 * u)
        return out
    if kind == "snow":
        c = hsv(rng, (195, 225), (0.02, 0.1), (0.88, 0.98))
        base(c, 14, 25)
        out = img.clip(0, 255).astype(np.uint8)
        for _ in range(int(area * 0.03)):
            circle(out, (rng.uniform(0, w), rng.uniform(0, h)), 0.45 * u, (255, 255, 255))
        return cv2.GaussianBlur(out, (0, 0), 0.4 * u) if u > 1.5 else out
    if kind == "water":
        c = hsv(rng, (180, 215), (0.45, 0.8), (0.4, 0.7))
        base(c, 20, 30)
        out = img.clip(0, 255).astype(np.uint8)
        for _ in range(int(area * 0.03)):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            ln = rng.uniform(3, 10) * u
            col = shade(c, rng.uniform(1.25, 1.7)) if rng.random() < 0.7 else shade(c, 0.7)
            poly_line(out, np.array([[x, y], [x + ln / 2, y - 0.6 * u], [x + ln, y]]), col, 0.7 * u)
        return out
    if kind == "stone":
        c = hsv(rng, (0, 60), (0.0, 0.18), (0.45, 0.7))
        out = np.empty((h, w, 3), np.uint8)
        out[:] = shade(c, 0.45)  # mortar
        cell = rng.uniform(10, 18) * u
        n = int(w * h / (cell * cell)) + 4
        subdiv = cv2.Subdiv2D((-w, -h, 3 * w, 3 * h))
        for p in rng.uniform([-cell, -cell], [w + cell, h + cell], size=(n, 2)):
            subdiv.insert((float(p[0]), float(p[1])))
        facets, _ = subdiv.getVoronoiFacetList([])
        for f in facets:
            ctr = f.mean(0)
            shrunk = ctr + (f - ctr) * (1 - 1.2 * u / cell)
            fill_poly(out, shrunk, shade(c, rng.uniform(0.8, 1.2)))
        out = (out.astype(np.float32) + (10 * smooth_noise(rng, h, w, 2 * u))[..., None]).clip(0, 255)
        return out.astype(np.uint8)
    if kind == "tile":
        c = hsv(rng, (0, 360), (0.0, 0.35), (0.7, 0.95))
        c2 = hsv(rng, (0, 360), (0.0, 0.5), (0.25, 0.9)) if rng.random() < 0.4 else c
        out = np.empty((h, w, 3), np.uint8)
        out[:] = shade(c, rng.choice([0.55, 1.15]))  # grout
        size, g = rng.uniform(9, 16) * u, max(0.8, 0.9 * u)
        for i, y in enumerate(np.arange(0, h + size, size)):
            for j, x in enumerate(np.arange(0, w + size, size)):
                col = c if (i + j) % 2 == 0 else c2
                fill_poly(
                    out,
                    np.array([[x + g, y + g], [x + size, y + g], [x + size, y + size], [x + g, y + size]]),
                    shade(col, rng.uniform(0.96, 1.04)),
                )
                circle(out, (x + size * 0.3, y + size * 0.3), size * 0.08, shade(col, 1.1))
        return out
    if kind == "wood":
        c = hsv(rng, (20, 38), (0.45, 0.75), (0.35, 0.7))
        out = np.empty((h, w, 3), np.uint8)
        ph = rng.uniform(5, 9) * u
        for y in np.arange(0, h + ph, ph):
            pc = shade(c, rng.uniform(0.85, 1.15))
            x0 = -rng.uniform(0, 40 * u)
            while x0 < w:
                ln = rng.uniform(25, 55) * u
                fill_poly(
                    out,
                    np.array([[x0, y], [x0 + ln, y], [x0 + ln, y + ph], [x0, y + ph]]),
                    shade(pc, rng.uniform(0.93, 1.07)),
                )
                poly_line(out, np.array([[x0 + ln, y], [x0 + ln, y + ph]]), shade(c, 0.45), 0.6 * u)
                x0 += ln
            for _ in range(3):  # grain
                gy = y + rng.uniform(0.15, 0.85) * ph
                xs = np.linspace(0, w, 30)
                poly_line(
                    out,
                    np.stack([xs, gy + 0.4 * u * np.sin(xs / (7 * u) + rng.uniform(0, 6))], 1),
                    shade(pc, 0.8),
                    0.5 * u,
                )
            poly_line(out, np.array([[0, y], [w, y]]), shade(c, 0.4), 0.8 * u)
        return out
    if kind == "metal":
        c = hsv(rng, (190, 230), (0.03, 0.15), (0.5, 0.72))
        base(c, 8, 40)
        out = img.clip(0, 255).astype(np.uint8)
        step = rng.uniform(4, 6) * u
        for i, y in enumerate(np.arange(0, h + step, step)):
            for x in np.arange((i % 2) * step / 2, w + step, step):
                d = 1.3 * u
                poly_line(
                    out, np.array([[x - d, y + d * 0.5], [x + d, y - d * 0.5]]), shade(c, 1.35), 0.8 * u
                )
        plate = rng.uniform(30, 50) * u
        for x in np.arange(0, w + plate, plate):
            poly_line(out, np.array([[x, 0], [x, h]]), shade(c, 0.5), 0.9 * u)
            for y in np.arange(2 * u, h, plate / 2):
                circle(out, (x + 2.5 * u, y), 0.8 * u, shade(c, 1.5))
        return out
    if kind == "carpet":
        c = hsv(rng, (0, 360), (0.35, 0.8), (0.3, 0.65))
        base(c, 10, 8)
        img += rng.normal(0, 16, size=(h, w, 1)).astype(np.float32)
        out = cv2.GaussianBlur(img.clip(0, 255), (0, 0), 0.5 * u).astype(np.uint8)
        if rng.random() < 0.6:  # woven pattern
            step = rng.uniform(8, 14) * u
            for x in np.arange(0, w + step, step):
                for y in np.arange(0, h + step, step):
                    fill_poly(
                        out,
                        np.array(
                            [
                                [x, y - 0.3 * step],
                                [x + 0.3 * step, y],
                                [x, y + 0.3 * step],
                                [x - 0.3 * step, y],
                            ]
                        ),
                        shade(c, 0.8),
                    )
        return out
    # linoleum: smooth sheet with flecks and a sheen
    c = hsv(rng, (0, 360), (0.05, 0.4), (0.65, 0.9))
    img[:] = c
    img += (12 * np.linspace(-1, 1, w, dtype=np.float32))[None, :, None]
    out = img.clip(0, 255).astype(np.uint8)
    flecks = [shade(hsv(rng, (0, 360), (0.2, 0.6), (0.3, 0.9)), 1.0) for _ in range(3)]
    for _ in range(int(area * 0.08)):
        circle(
            out,
            (rng.uniform(0, w), rng.uniform(0, h)),
            max(0.35, rng.uniform(0.3, 0.6) * u),
            flecks[int(rng.integers(3))],
        )
    return out


def floor_band(kind: str, rng: np.random.Generator, w: int, top: int, h: int, u: float) -> np.ndarray:
    """The floor seen from a low camera: a material texture warped in perspective onto rows [top, h).

    Returns:
        ``uint8 (h - top, w, 3)``.
    """
    import cv2

    band_h = h - top
    tex_w, tex_h = int(w * 1.6), int(max(band_h * 2.2, 8))
    tex = surface_texture(kind, rng, tex_w, tex_h, u)
    src = np.float32([[0, 0], [tex_w, 0], [tex_w, tex_h], [0, tex_h]])
    far = rng.uniform(0.5, 0.75)  # far edge shrink: perspective strength
    dst = np.float32(
        [[w * (0.5 - 0.5 / far) * 1.0, 0], [w * (0.5 + 0.5 / far), 0], [w * 1.3, band_h], [-w * 0.3, band_h]]
    )
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(tex, m, (w, band_h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    fade = np.linspace(0.82, 1.0, band_h, dtype=np.float32)[:, None, None]  # distance haze / light falloff
    return (out.astype(np.float32) * fade).clip(0, 255).astype(np.uint8)


def backdrop(rng: np.random.Generator, w: int, h: int, u: float) -> np.ndarray:
    """A wall or outdoor backdrop, independent of the scene's category: ``uint8 (h, w, 3)``."""
    style = rng.choice(["paint", "bricks", "stripes", "panels", "sky", "concrete"])
    c = hsv(rng, (0, 360), (0.05, 0.55), (0.35, 0.9))
    img = np.empty((h, w, 3), np.float32)
    img[:] = c
    img *= np.linspace(1.08, 0.9, h, dtype=np.float32)[:, None, None]
    if style == "sky":
        top, bottom = (
            hsv(rng, (195, 225), (0.3, 0.7), (0.7, 0.95)),
            hsv(rng, (190, 230), (0.05, 0.3), (0.8, 1.0)),
        )
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        img[:] = top * (1 - t) + bottom * t
        out = img.clip(0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            cx, cy = rng.uniform(0, w), rng.uniform(0.05, 0.4) * h
            for k in range(4):
                ellipse(
                    out,
                    (cx + k * 6 * u, cy + rng.normal(0, u)),
                    (rng.uniform(6, 12) * u, rng.uniform(3, 5) * u),
                    (245, 245, 245),
                )
        hill = hsv(rng, (80, 150), (0.3, 0.6), (0.25, 0.5))
        xs = np.linspace(0, w, 24)
        ys = h * rng.uniform(0.65, 0.85) + 6 * u * smooth_noise(rng, 1, 24, 4)[0]
        fill_poly(out, np.concatenate([np.stack([xs, ys], 1), [[w, h], [0, h]]]), hill)
        return out
    out = img.clip(0, 255).astype(np.uint8)
    if style == "bricks":
        bh, bw = rng.uniform(4, 7) * u, rng.uniform(10, 16) * u
        mortar = shade(c, rng.choice([0.6, 1.3]))
        for i, y in enumerate(np.arange(0, h + bh, bh)):
            poly_line(out, np.array([[0, y], [w, y]]), mortar, 0.8 * u)
            for x in np.arange((i % 2) * bw / 2, w + bw, bw):
                poly_line(out, np.array([[x, y], [x, y + bh]]), mortar, 0.8 * u)
    elif style == "stripes":
        sw = rng.uniform(4, 12) * u
        for x in np.arange(0, w + sw, 2 * sw):
            fill_poly(
                out, np.array([[x, 0], [x + sw, 0], [x + sw, h], [x, h]]), shade(c, rng.choice([0.85, 1.15]))
            )
    elif style == "panels":
        pw = rng.uniform(8, 14) * u
        for x in np.arange(0, w + pw, pw):
            poly_line(out, np.array([[x, 0], [x, h]]), shade(c, 0.6), 0.8 * u)
    elif style == "concrete":
        out = (
            (
                out.astype(np.float32)
                + (14 * smooth_noise(rng, h, w, 6 * u))[..., None]
                + rng.normal(0, 4, size=(h, w, 1))
            )
            .clip(0, 255)
            .astype(np.uint8)
        )
    return out


# --- particles --------------------------------------------------------------------------------------------
@dataclass
class Burst:
    """A particle burst born at frame ``birth`` (dust, splash droplets, sparks, snow, shards of grit).

    Motion is analytic (linear drag ``drag`` 1/s, gravity ``gravity`` px/s^2 downwards, floor at
    ``floor_y``), so any frame can be drawn in any order. Arrays are per particle.
    """

    birth: int
    pos: np.ndarray  # (N, 2) px
    vel: np.ndarray  # (N, 2) px/s
    radius: np.ndarray  # (N,)
    color: np.ndarray  # (N, 3)
    life: np.ndarray  # (N,) s
    fps: float
    gravity: float = 0.0
    drag: float = 4.0
    floor_y: float = 1e9
    fade: bool = True

    def draw(self, img: np.ndarray, k: int) -> None:
        t = (k - self.birth) / self.fps
        if t < 0:
            return
        c = self.drag
        decay = (1 - math.exp(-c * t)) / c if c > 0 else t
        x = self.pos[:, 0] + self.vel[:, 0] * decay
        vt = self.gravity / c if c > 0 else 0.0
        y = (
            self.pos[:, 1] + (self.vel[:, 1] - vt) * decay + vt * t
            if c > 0
            else self.pos[:, 1] + self.vel[:, 1] * t + 0.5 * self.gravity * t * t
        )
        y = np.minimum(y, self.floor_y)
        alive = t < self.life
        for i in np.nonzero(alive)[0]:
            f = 1.0 - t / self.life[i] if self.fade else 1.0
            r = self.radius[i] * (0.5 + 0.5 * f)
            if r < 0.3:
                continue
            circle(img, (x[i], y[i]), r, self.color[i])


def make_burst(
    rng: np.random.Generator,
    kind: str,
    at: tuple[float, float],
    birth: int,
    fps: float,
    u: float,
    *,
    strength: float = 1.0,
    floor_y: float = 1e9,
    base_color: np.ndarray | None = None,
) -> Burst | None:
    """A contact burst for ``kind`` (a surface name, ``spark`` or ``shard``); None for hard floors.

    Bursts are born at the contact frame and are fastest there, so they add motion exactly at contact.
    """
    presets = {  # n, speed (px/s per u), up-bias, life s, radius u, gravity, drag, colour (h, s, v)
        "dirt": (14, 38, 0.8, 0.5, 0.9, 80, 5.0, (20, 35, 0.3, 0.6, 0.35, 0.55)),
        "sand": (16, 40, 0.7, 0.5, 0.7, 80, 5.0, (38, 50, 0.25, 0.45, 0.7, 0.9)),
        "gravel": (8, 45, 0.9, 0.45, 0.8, 200, 2.0, (20, 60, 0.05, 0.25, 0.35, 0.7)),
        "snow": (16, 34, 0.9, 0.6, 0.9, 60, 4.0, (200, 220, 0.0, 0.08, 0.92, 1.0)),
        "water": (16, 55, 1.6, 0.45, 0.7, 250, 1.5, (185, 210, 0.1, 0.35, 0.85, 1.0)),
        "grass": (6, 30, 1.0, 0.4, 0.6, 120, 3.0, (85, 130, 0.5, 0.8, 0.45, 0.7)),
        "carpet": (5, 18, 0.6, 0.4, 0.5, 20, 6.0, (0, 360, 0.0, 0.1, 0.7, 0.85)),
        "spark": (22, 120, 0.8, 0.35, 0.55, 150, 2.0, (40, 60, 0.3, 0.9, 0.95, 1.0)),
        "shard": (12, 60, 0.8, 0.6, 0.5, 250, 2.0, (180, 200, 0.05, 0.2, 0.85, 1.0)),
    }
    if kind not in presets:
        return None
    n, speed, up, life, rad, grav, drag, (h0, h1, s0, s1, v0, v1) = presets[kind]
    n = max(2, int(n * (0.6 + 0.6 * strength)))
    ang = rng.uniform(math.pi * 0.05, math.pi * 0.95, size=n)  # upper half-plane
    spd = rng.uniform(0.4, 1.0, size=n) * speed * u * (0.5 + strength)
    vel = np.stack([np.cos(ang) * spd, -np.sin(ang) * spd * up], 1)
    pos = np.array(at, dtype=np.float64)[None, :] + rng.normal(0, 1.2 * u, size=(n, 2))
    if base_color is not None:
        cols = np.stack([np.asarray(base_color) * rng.uniform(0.8, 1.25) for _ in range(n)]).clip(0, 255)
    else:
        cols = np.stack([hsv(rng, (h0, h1), (s0, s1), (v0, v1)) for _ in range(n)])
    return Burst(
        birth=birth,
        pos=pos,
        vel=vel,
        radius=rng.uniform(0.6, 1.3, size=n) * rad * u * (0.8 + 0.4 * strength),
        color=cols,
        life=rng.uniform(0.6, 1.0, size=n) * life,
        fps=fps,
        gravity=grav * u,
        drag=drag,
        floor_y=floor_y,
    )


@dataclass
class Ripple:
    """Expanding elliptical rings on water from frame ``birth``."""

    birth: int
    center: tuple[float, float]
    fps: float
    u: float
    color: tuple[int, int, int] = (230, 240, 250)
    speed: float = 30.0  # u per second
    life: float = 0.9

    def draw(self, img: np.ndarray, k: int) -> None:
        import cv2

        t = (k - self.birth) / self.fps
        if t < 0 or t > self.life:
            return
        for lag in (0.0, 0.18):
            tt = t - lag
            if tt <= 0:
                continue
            r = (2 + self.speed * tt) * self.u
            f = 1 - t / self.life
            col = tuple(int(c * f + 120 * (1 - f)) for c in self.color)
            c = (round(self.center[0] * _ONE), round(self.center[1] * _ONE))
            cv2.ellipse(
                img,
                c,
                (round(r * _ONE), max(1, round(0.3 * r * _ONE))),
                0,
                0,
                360,
                col,
                max(1, round(0.7 * self.u)),
                cv2.LINE_AA,
                _SHIFT,
            )


# --- camera look ------------------------------------------------------------------------------------------
@dataclass
class Look:
    """Per-clip camera and lighting: applied to every finished frame.

    Attributes:
        lut: ``(3, 256)`` uint8 per-channel tone curve (exposure, contrast, gamma, white balance).
        vignette: Optional ``(H, W, 1)`` float32 gain map.
        noise: Sensor noise standard deviation (grey levels).
        blur: Gaussian blur sigma in pixels (defocus), 0 for none.
        shake: ``(T, 2)`` per-frame camera offsets in pixels (smooth), or None.
    """

    lut: np.ndarray
    vignette: np.ndarray | None = None
    noise: float = 0.0
    blur: float = 0.0
    shake: np.ndarray | None = None
    noise_pool: list[np.ndarray] = field(default_factory=list)

    def apply(self, img: np.ndarray, k: int) -> np.ndarray:
        import cv2

        if self.shake is not None:
            dx, dy = self.shake[min(k, len(self.shake) - 1)]
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            img = cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
        if self.blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), self.blur)
        out = np.empty_like(img)
        for ch in range(3):
            out[..., ch] = cv2.LUT(img[..., ch], self.lut[ch])
        if self.vignette is not None or self.noise_pool:
            f = out.astype(np.float32)
            if self.vignette is not None:
                f *= self.vignette
            if self.noise_pool:
                f += self.noise_pool[k % len(self.noise_pool)]
            out = f.clip(0, 255).astype(np.uint8)
        return out


def random_look(rng: np.random.Generator, w: int, h: int, num_frames: int, *, variation: float = 1.0) -> Look:
    """Random exposure / contrast / gamma / tint / vignette / noise / blur / shake (``variation`` scales)."""
    v = variation
    gain = 1.0 + v * rng.uniform(-0.25, 0.15)
    contrast = 1.0 + v * rng.uniform(-0.2, 0.15)
    gamma = 1.0 + v * rng.uniform(-0.15, 0.2)
    tint = 1.0 + v * rng.uniform(-0.08, 0.08, size=3)
    x = np.arange(256, dtype=np.float64) / 255.0
    lut = np.empty((3, 256), np.uint8)
    for ch in range(3):
        y = ((x**gamma - 0.5) * contrast + 0.5) * gain * tint[ch]
        lut[ch] = (y.clip(0, 1) * 255).round().astype(np.uint8)
    vignette = None
    if rng.random() < 0.5 * v:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        vignette = (1.0 - rng.uniform(0.1, 0.35) * r2 / 2).astype(np.float32)[..., None]
    noise = float(rng.uniform(0, 1.5) * v) if rng.random() < 0.6 else 0.0
    pool = [rng.normal(0, noise, size=(h, w, 1)).astype(np.float32) for _ in range(6)] if noise > 0.5 else []
    blur = float(rng.uniform(0.3, 0.8)) * (h / 120) if rng.random() < 0.2 * v else 0.0
    shake = None
    if rng.random() < 0.15 * v:
        t = np.arange(num_frames) / 25.0
        amp = rng.uniform(0.3, 1.0) * (h / 120)
        shake = np.stack(
            [
                amp * np.sin(2 * math.pi * rng.uniform(0.2, 0.7) * t + rng.uniform(0, 6)),
                amp * np.sin(2 * math.pi * rng.uniform(0.2, 0.7) * t + rng.uniform(0, 6)),
            ],
            1,
        )
    return Look(lut=lut, vignette=vignette, noise=noise, blur=blur, shake=shake, noise_pool=pool)
