"""Breakable objects, doors and silent distractors of the synthetic generator (see ``scenes.py``).

- ``Breakable``: a bottle / pane / crate / plank / metal box / electric box slides off a shelf or is
  released by a claw, falls accelerating, and shatters into fragments on its contact frame (glints for
  glass, splinters for wood, sparks and a flash for electric objects). The fragments fly slower than the
  impact, so the motion peak stays on the contact frame.
- ``Door``: a door seen from the front swings open (fastest on its first moving frame, where the latch
  sound starts) and later swings shut, accelerating until it hits the frame on the contact frame.
- ``Bird`` and ``Pendulum``: motion that makes no sound, so a model cannot learn "any motion = a sound".
"""

from __future__ import annotations

import math

import numpy as np

from foleykit.data import render as R
from foleykit.data.scenes import GRAVITY, Stage

#: Outline polygons in units of the object's half-height ``a`` (x right, y down, bottom at +1).
SHAPES = {
    "bottle": [
        (-0.35, 1),
        (0.35, 1),
        (0.35, -0.2),
        (0.14, -0.55),
        (0.12, -1),
        (-0.12, -1),
        (-0.14, -0.55),
        (-0.35, -0.2),
    ],
    "pane": [(-0.7, -1), (0.7, -1), (0.7, 1), (-0.7, 1)],
    "vase": [(-0.45, 1), (0.45, 1), (0.6, -0.4), (0.4, -1), (-0.4, -1), (-0.6, -0.4)],
    "crate": [(-0.9, -0.9), (0.9, -0.9), (0.9, 1), (-0.9, 1)],
    "plank": [(-1.6, -0.22), (1.6, -0.22), (1.6, 0.22), (-1.6, 0.22)],
    "box": [(-1.0, -0.7), (1.0, -0.7), (1.0, 1), (-1.0, 1)],
    "tv": [(-1.1, -0.8), (1.1, -0.8), (1.1, 1), (-1.1, 1)],
}
OBJECTS = {  # material -> object shapes
    "glass": ("bottle", "pane", "vase"),
    "wood": ("crate", "plank"),
    "metal": ("box",),
    "electric": ("tv",),
}


def _material_color(rng: np.random.Generator, material: str, shape: str) -> np.ndarray:
    if material == "glass":
        if shape == "bottle":
            return R.hsv(rng, (20, 140), (0.5, 0.9), (0.3, 0.6))
        return R.hsv(rng, (180, 200), (0.1, 0.3), (0.8, 0.95))
    if material == "wood":
        return R.hsv(rng, (20, 38), (0.45, 0.75), (0.4, 0.7))
    if material == "metal":
        return R.hsv(rng, (190, 230), (0.0, 0.2), (0.4, 0.7))
    return R.hsv(rng, (0, 360), (0.0, 0.2), (0.12, 0.3))


def _fragments(rng: np.random.Generator, outline: np.ndarray, n: int) -> list[np.ndarray]:
    """Triangles (3, 2) covering ``outline`` from a Delaunay triangulation of its vertices + inner points."""
    import cv2

    lo, hi = outline.min(0), outline.max(0)
    pts = [tuple(p) for p in outline]
    while len(pts) < len(outline) + n:
        p = rng.uniform(lo, hi)
        if cv2.pointPolygonTest(outline.astype(np.float32), (float(p[0]), float(p[1])), False) > 0:
            pts.append(tuple(p))
    sub = cv2.Subdiv2D((int(lo[0]) - 2, int(lo[1]) - 2, int(hi[0] - lo[0]) + 5, int(hi[1] - lo[1]) + 5))
    for p in pts:
        sub.insert((float(p[0]), float(p[1])))
    tris = []
    for t in sub.getTriangleList():
        tri = t.reshape(3, 2)
        c = tri.mean(0)
        if cv2.pointPolygonTest(outline.astype(np.float32), (float(c[0]), float(c[1])), False) >= 0:
            tris.append(tri.astype(np.float64))
    return tris


def _rot(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


class Breakable:
    """An object that falls and shatters on frame ``contact``.

    Args:
        stage: Scene geometry.
        rng: Random source.
        material: ``glass``, ``wood``, ``metal`` or ``electric`` (the ``break/<material>`` sound).
        x: Horizontal position of the fall (px).
        contact: Frame of the shatter (the sound's attack).
        height: Fall height of the object's bottom in frame heights (higher = faster = louder).
        mechanism: ``shelf`` (slides off a shelf edge, tipping) or ``claw`` (released, falls straight).
    """

    z = 7.0

    def __init__(
        self,
        *,
        stage: Stage,
        rng: np.random.Generator,
        material: str,
        x: float,
        contact: int,
        height: float,
        mechanism: str = "shelf",
    ) -> None:
        self.stage, self.material, self.contact, self.mechanism = stage, material, contact, mechanism
        H, T, fps, u = stage.height, stage.num_frames, stage.fps, stage.u
        shape = OBJECTS[material][int(rng.integers(len(OBJECTS[material])))]
        self.shape = shape
        a = H * float(rng.uniform(0.1, 0.13)) * (0.8 if shape in ("plank", "tv", "box") else 1.0)
        self.outline = np.array(SHAPES[shape], dtype=np.float64) * a
        self.color = _material_color(rng, material, shape)
        self.d = 1 if rng.random() < 0.5 else -1
        tilt = float(rng.uniform(-0.5, 0.5)) if mechanism == "shelf" else float(rng.uniform(-0.15, 0.15))
        low = float(_rot(self.outline, tilt)[:, 1].max())  # lowest point below the centre at contact
        base_low = float(self.outline[:, 1].max())
        start_y = stage.ground_y - height * H - base_low  # centre when resting at the drop height
        drop = (stage.ground_y - low) - start_y
        g0 = H * GRAVITY
        n_f = max(2, int(round(math.sqrt(2 * drop / g0) * fps)))
        self.g = 2 * drop / (n_f / fps) ** 2
        k_edge = contact - n_f
        self.pos = np.zeros((T, 2))
        self.ang = np.zeros(T)
        t = np.arange(T)
        vx = self.d * H * float(rng.uniform(0.25, 0.5)) if mechanism == "shelf" else 0.0
        x_edge = x - vx * n_f / fps
        self.shelf = None
        if mechanism == "shelf":
            slide = int(round(fps * float(rng.uniform(0.4, 0.9))))
            x_push = x_edge - vx * slide / fps
            self.pos[:, 0] = np.where(t <= k_edge - slide, x_push, x_push + vx * (t - (k_edge - slide)) / fps)
            shelf_y = start_y + base_low
            w = 2.2 * abs(float(self.outline[:, 0].min())) + H * 0.25
            self.shelf = (x_edge - self.d * w, x_edge, shelf_y)
        else:
            self.pos[:, 0] = x
            self.claw_y = start_y + float(self.outline[:, 1].min())
        self.pos[:, 1] = start_y
        fall = (t > k_edge) & (t <= contact)
        tt = (t[fall] - k_edge) / fps
        self.pos[fall, 1] = start_y + 0.5 * self.g * tt * tt
        self.ang[fall] = tilt * tt / (n_f / fps)
        self.ang[t > contact] = tilt
        self.release = k_edge
        self.impact_speed = self.g * n_f / fps  # px / s
        # Fragments: simulate from the contact frame on.
        centre = np.array([self.pos[contact, 0] if contact < T else x, stage.ground_y - low])
        tris = _fragments(rng, _rot(self.outline, tilt), n=int(rng.integers(6, 12)))
        self.frag_shapes = [tri - tri.mean(0) for tri in tris]
        self.frag_cols = [R.shade(self.color, float(rng.uniform(0.8, 1.25))) for _ in tris]
        n = len(tris)
        p = np.array([centre + tri.mean(0) for tri in tris])
        v = np.zeros((n, 2))
        V = self.impact_speed
        for j in range(n):
            side = np.sign(p[j, 0] - centre[0]) or (1.0 if rng.random() < 0.5 else -1.0)
            v[j] = [side * V * float(rng.uniform(0.08, 0.35)) + 0.3 * vx, -V * float(rng.uniform(0.03, 0.22))]
        w_ang = rng.uniform(-8, 8, size=n)
        self.frag_pos = np.zeros((T, n, 2))
        self.frag_ang = np.zeros((T, n))
        ang = np.zeros(n)
        sub, dt = 4, 1.0 / fps / 4
        floor = stage.ground_y - 0.8 * u
        for k in range(max(0, contact), T):
            self.frag_pos[k], self.frag_ang[k] = p, ang
            for _ in range(sub):
                airborne = p[:, 1] < floor - 1e-6
                v[:, 1] += np.where(airborne | (v[:, 1] < 0), self.g * dt, 0.0)
                p += v * dt
                ang += w_ang * dt
                hit = p[:, 1] >= floor
                p[hit, 1] = floor
                v[hit, 1] = np.where(v[hit, 1] > 0.15 * V, -0.2 * v[hit, 1], 0.0)
                v[hit, 0] *= math.exp(-10 * dt)
                w_ang[hit] *= math.exp(-10 * dt)
        self.effects: list = []
        kind = {"glass": "shard", "electric": "spark", "metal": "spark", "wood": "dirt"}[material]
        b = R.make_burst(
            rng,
            kind,
            (float(centre[0]), float(centre[1])),
            contact,
            fps,
            u,
            strength=0.8,
            floor_y=stage.ground_y + u,
            base_color=self.color if material == "wood" else None,
        )
        if b is not None:
            self.effects.append(b)

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        st, u = self.stage, self.stage.u
        if self.shelf is not None:
            x0, x1, y = self.shelf
            lo, hi = min(x0, x1) - cam, max(x0, x1) - cam
            R.fill_poly(img, np.array([[lo, y], [hi, y], [hi, y + 2.5 * u], [lo, y + 2.5 * u]]), (95, 70, 45))
            leg = x0 - cam + 2 * u * self.d
            R.thick_segment(img, (leg, y), (leg, st.ground_y), 1.8 * u, (80, 58, 38))
        else:  # the claw stays where it released the object
            x = self.pos[0, 0] - cam
            R.thick_segment(img, (x, -2), (x, self.claw_y), 0.35 * u + 0.6, (60, 60, 60))
            R.thick_segment(
                img, (x - 3 * u, self.claw_y + 2 * u), (x + 3 * u, self.claw_y + 2 * u), 1.2 * u, (90, 90, 95)
            )
        if k < self.contact:
            c = self.pos[k] - [cam, 0]
            h = float(self.stage.ground_y - c[1]) / st.height
            R.ellipse(
                img,
                (c[0], st.ground_y + 0.6 * u),
                (abs(self.outline[:, 0]).max() * max(0.4, 1 - h), 1.5 * u * max(0.3, 1 - 1.5 * h)),
                (30, 30, 30),
            )
            pts = c + _rot(self.outline, float(self.ang[k]))
            R.fill_poly(img, pts, R.shade(self.color, 1.0))
            self._details(img, c, float(self.ang[k]))
        else:
            for j, tri in enumerate(self.frag_shapes):
                pts = self.frag_pos[k, j] - [cam, 0] + _rot(tri * 0.92, float(self.frag_ang[k, j]))
                R.fill_poly(img, pts, self.frag_cols[j])
                if self.material == "glass":
                    R.poly_line(img, pts, (235, 245, 250), 0.5 * u, closed=True)
            if self.material == "electric" and k - self.contact < 3:
                f = 1 - (k - self.contact) / 3
                R.circle(img, self.frag_pos[k].mean(0) - [cam, 0], 6 * u * f + 1, (255, 240, 170))
        for b in self.effects:
            b.pos[:, 0] -= cam
            b.draw(img, k)
            b.pos[:, 0] += cam

    def _details(self, img: np.ndarray, c: np.ndarray, ang: float) -> None:
        a = float(self.outline[:, 1].max())
        col = self.color
        if self.material == "glass":
            R.poly_line(
                img, c + _rot(np.array([[-0.2, 0.6], [0.1, -0.5]]) * a, ang), (240, 248, 255), 0.08 * a
            )
        elif self.shape == "crate":
            for f in (-0.3, 0.35):
                R.poly_line(
                    img, c + _rot(np.array([[-0.9, f], [0.9, f]]) * a, ang), R.shade(col, 0.6), 0.07 * a
                )
        elif self.shape == "plank":
            R.poly_line(
                img, c + _rot(np.array([[-1.5, 0.0], [1.5, 0.05]]) * a, ang), R.shade(col, 0.7), 0.05 * a
            )
        elif self.shape == "box":
            for f in (-0.5, 0.0, 0.5):
                R.poly_line(
                    img, c + _rot(np.array([[f, -0.6], [f, 0.9]]) * a, ang), R.shade(col, 1.3), 0.06 * a
                )
        elif self.shape == "tv":
            R.fill_poly(
                img,
                c + _rot(np.array([[-0.9, -0.6], [0.6, -0.6], [0.6, 0.8], [-0.9, 0.8]]) * a, ang),
                (70, 110, 150),
            )
            R.circle(img, c + _rot(np.array([[0.85, 0.0]]) * a, ang)[0], 0.1 * a, (200, 60, 40))


class Door:
    """A door seen from the front. ``cycles``: list of (open_frame, close_frame or None, open_gain,
    close_gain). Opening starts one frame before ``open_frame`` and decelerates (fastest first step);
    closing accelerates until the door hits its frame on ``close_frame``."""

    z = 6.0

    def __init__(
        self,
        *,
        stage: Stage,
        rng: np.random.Generator,
        cycles: list[tuple[int, int | None, float, float]],
        start_open: bool = False,
    ) -> None:
        self.stage = stage
        H, W, T, fps = stage.height, stage.width, stage.num_frames, stage.fps
        self.h = H * float(rng.uniform(0.5, 0.62))
        self.w = self.h * float(rng.uniform(0.42, 0.5))
        self.left = W * float(rng.uniform(0.3, 0.7)) - self.w / 2
        self.bottom = stage.ground_y
        self.hinge_left = rng.random() < 0.5
        self.oblique = float(rng.uniform(0.3, 0.5))
        style = rng.choice(["wood", "paint", "metal"])
        self.style = style
        self.color = {
            "wood": R.hsv(rng, (20, 35), (0.45, 0.7), (0.35, 0.6)),
            "paint": R.hsv(rng, (0, 360), (0.2, 0.7), (0.5, 0.9)),
            "metal": R.hsv(rng, (190, 230), (0.0, 0.15), (0.45, 0.7)),
        }[style]
        self.frame_col = R.hsv(rng, (0, 360), (0.0, 0.3), (0.2, 0.85))
        self.room = R.hsv(rng, (0, 360), (0.1, 0.5), (0.05, 0.2))
        phi_max = math.radians(float(rng.uniform(60, 80)))
        # Plan the *visible* free-edge travel q = 1 - cos(phi) + oblique sin(phi) (monotonic in phi), so that
        # the picture moves fastest on the first opening frame and on the closing contact frame.
        grid = np.linspace(0.0, phi_max, 512)
        q_of = 1 - np.cos(grid) + self.oblique * np.sin(grid)
        q = np.full(T, q_of[-1] if start_open else 0.0)
        for k_open, k_close, g_open, g_close in cycles:
            if k_open is not None:
                n = int(round(fps * (1.2 - 0.4 * g_open)))
                s = k_open - 1
                for j in range(max(0, s), min(T, s + n + 1)):
                    q[j] = q_of[-1] * (1 - (1 - (j - s) / n) ** 4)
                q[s + n + 1 :] = q_of[-1]
            if k_close is not None:
                n = int(round(fps * (1.0 - 0.4 * g_close)))
                s = k_close - n
                for j in range(max(0, s), min(T, k_close + 1)):
                    q[j] = q_of[-1] * (1 - ((j - s) / n) ** 3)
                q[k_close:] = 0.0
        phi = np.interp(q, q_of, grid)
        self.phi = phi

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        u = self.stage.u
        x0, x1, top, bot = self.left - cam, self.left + self.w - cam, self.bottom - self.h, self.bottom
        R.fill_poly(
            img,
            np.array(
                [[x0 - 2 * u, top - 2 * u], [x1 + 2 * u, top - 2 * u], [x1 + 2 * u, bot], [x0 - 2 * u, bot]]
            ),
            R.shade(self.frame_col, 1.0),
        )
        R.fill_poly(img, np.array([[x0, top], [x1, top], [x1, bot], [x0, bot]]), R.shade(self.room, 1.0))
        R.ellipse(
            img, ((x0 + x1) / 2, top + 0.35 * self.h), (0.15 * self.w, 0.08 * self.h), R.shade(self.room, 2.2)
        )
        phi = float(self.phi[k])
        hx = x0 if self.hinge_left else x1
        s = 1 if self.hinge_left else -1
        # oblique view: the free edge swings towards the camera, so it moves sideways by w (cos phi - 1)
        # and by a depth term proportional to sin phi (visible from the first degree), and looks taller
        fx = hx + s * self.w * (math.cos(phi) - self.oblique * math.sin(phi))
        grow = 0.12 * self.h * math.sin(phi)
        quad = np.array([[hx, top], [fx, top - grow], [fx, bot + grow], [hx, bot]])
        R.fill_poly(img, quad, R.shade(self.color, 1.0 - 0.25 * math.sin(phi)))

        def at(a: float, b: float) -> np.ndarray:  # bilinear point of the leaf: a across (0 hinge), b down
            x = hx + (fx - hx) * a
            return np.array([x, (top - grow * a) + ((bot + grow * a) - (top - grow * a)) * b])

        dark = R.shade(self.color, 0.7 - 0.2 * math.sin(phi))
        if self.style != "metal":
            for b0, b1 in ((0.08, 0.45), (0.55, 0.92)):
                R.poly_line(
                    img,
                    np.array([at(0.18, b0), at(0.82, b0), at(0.82, b1), at(0.18, b1)]),
                    dark,
                    0.8 * u,
                    True,
                )
        else:
            for b in (0.2, 0.5, 0.8):
                R.poly_line(img, np.array([at(0.05, b), at(0.95, b)]), dark, 0.8 * u)
        R.circle(img, at(0.86, 0.52), 1.3 * u, (200, 180, 90))


class Bird:
    """A small bird flapping across the upper part of the frame (silent motion)."""

    z = 2.0

    def __init__(self, *, stage: Stage, rng: np.random.Generator) -> None:
        self.stage = stage
        W, H = stage.width, stage.height
        self.d = 1 if rng.random() < 0.5 else -1
        self.speed = W * float(rng.uniform(0.1, 0.25)) / stage.fps * self.d
        self.x0 = -0.1 * W if self.d > 0 else 1.1 * W
        self.x0 -= self.speed * int(rng.integers(0, max(1, stage.num_frames // 2)))
        self.y = H * float(rng.uniform(0.08, 0.3))
        self.flap = float(rng.uniform(4, 8))
        self.size = stage.u * float(rng.uniform(3, 5))

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        x = self.x0 + self.speed * k
        y = self.y + self.size * 0.3 * math.sin(k / self.stage.fps * 1.3)
        wing = self.size * 0.6 * math.sin(2 * math.pi * self.flap * k / self.stage.fps)
        R.poly_line(
            img,
            np.array([[x - self.size, y - wing], [x, y], [x + self.size, y - wing]]),
            (30, 30, 35),
            0.8 * self.stage.u,
        )


class Pendulum:
    """A hanging lamp swinging smoothly (silent, periodic motion)."""

    z = 3.0

    def __init__(self, *, stage: Stage, rng: np.random.Generator) -> None:
        self.stage = stage
        self.x = stage.width * float(rng.uniform(0.1, 0.9))
        self.length = stage.height * float(rng.uniform(0.2, 0.35))
        self.amp = float(rng.uniform(0.15, 0.45))
        self.period = float(rng.uniform(1.4, 3.0))
        self.phase = float(rng.uniform(0, 2 * math.pi))
        self.color = R.hsv(rng, (0, 360), (0.3, 0.8), (0.4, 0.9))

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        u = self.stage.u
        a = self.amp * math.sin(2 * math.pi * k / self.stage.fps / self.period + self.phase)
        end = np.array([self.x + self.length * math.sin(a), self.length * math.cos(a)])
        R.thick_segment(img, (self.x, -1), end, 0.5 * u + 0.5, (40, 40, 40))
        d = np.array([math.sin(a), math.cos(a)])
        n = np.array([d[1], -d[0]])
        R.fill_poly(
            img,
            np.array(
                [end - n * 2 * u, end + n * 2 * u, end + d * 4 * u + n * 5 * u, end + d * 4 * u - n * 5 * u]
            ),
            R.shade(self.color, 1.0),
        )
        R.circle(img, end + d * 4.5 * u, 1.8 * u, (255, 245, 200))
