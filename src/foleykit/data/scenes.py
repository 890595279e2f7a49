"""Scene actors of the synthetic generator: motion planned from physics, contacts on exact frames.

Every actor is planned first (all randomness consumed, every contact quantised to a frame index ``k`` so
that the sound's attack lands on ``t = k / fps``) and drawn later, frame by frame, in any order. Motion is
shaped so that the visible event is the fastest moment: a foot or an object accelerates into its contact
and stops (or rebounds slower), so the optical flow between frames ``k-1`` and ``k`` peaks at the contact
frame, as the AV-Align video branch sees it. Intensity is shown by speed: a faster approach means a
louder sound (the event gain grows with the impact speed).

Lengths are in pixels of the output frame; ``Stage.u`` is pixels per 1/120 of the frame height. Falls use
``GRAVITY`` = 2 frame heights / s^2 (a frame ~ 5 m tall): Farneback flow (AV-Align parameters) tracks the
resulting speeds (<= ~6 px per frame at 120 px), so its motion peak lands on the contact frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from foleykit.data import render as R

#: Gravity of the rendered scenes in frame heights per s^2.
GRAVITY = 2.0


@dataclass
class Stage:
    """Geometry shared by a scene's actors."""

    width: int
    height: int
    fps: float
    num_frames: int
    ground_y: float  # contact line: feet and objects touch the floor here
    horizon: int  # first row of the floor band
    surface: str
    cam_x: np.ndarray  # (T,) horizontal camera offset in pixels (tracking shots), zeros otherwise

    @property
    def u(self) -> float:
        return self.height / 120.0


@dataclass(frozen=True)
class Contact:
    """A visible event that makes a sound: frame index, sound category, gain and the actor that made it."""

    frame: int
    category: str
    gain: float
    actor: str


class Actor(Protocol):
    z: float

    def draw(self, img: np.ndarray, k: int, cam: float) -> None: ...


def smoothstep(x: np.ndarray | float) -> np.ndarray | float:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class Effects:
    """Bursts, ripples and footprints in world coordinates (drawn with the camera offset)."""

    z: float = 5.0
    items: list = field(default_factory=list)
    prints: list = field(default_factory=list)  # (birth, x, y, w, h, color)

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        for birth, x, y, w, h, col in self.prints:
            if k >= birth:
                R.ellipse(img, (x - cam, y), (w, h), col)
        for it in self.items:
            if cam == 0.0:
                it.draw(img, k)
            else:  # shift a copy of the item's origin by the camera offset
                _draw_shifted(it, img, k, cam)


def _draw_shifted(item, img: np.ndarray, k: int, cam: float) -> None:
    if isinstance(item, R.Burst):
        item.pos[:, 0] -= cam
        item.draw(img, k)
        item.pos[:, 0] += cam
    else:
        cx, cy = item.center
        item.center = (cx - cam, cy)
        item.draw(img, k)
        item.center = (cx, cy)


def contact_effect(
    effects: Effects,
    rng: np.random.Generator,
    stage: Stage,
    material: str,
    x: float,
    k: int,
    strength: float,
    *,
    footprint: tuple[float, float] | None = None,
) -> None:
    """Add the floor's response to a contact at world x on frame k (dust, splash + ripple, snow, prints)."""
    u = stage.u
    b = R.make_burst(
        rng,
        material,
        (x, stage.ground_y - 0.5 * u),
        k,
        stage.fps,
        u,
        strength=strength,
        floor_y=stage.ground_y + 2 * u,
    )
    if b is not None:
        effects.items.append(b)
    if material == "water":
        effects.items.append(R.Ripple(birth=k, center=(x, stage.ground_y + 0.5 * u), fps=stage.fps, u=u))
    if footprint is not None and material in ("snow", "sand", "dirt", "grass"):
        col = {"snow": (190, 200, 215), "sand": (170, 150, 110), "dirt": (60, 42, 28), "grass": (40, 80, 30)}[
            material
        ]
        effects.prints.append((k, x, stage.ground_y + 0.8 * u, footprint[0], footprint[1], col))


# --- walker ---------------------------------------------------------------------------------------------
class Walker:
    """A side-view person walking with a heavy, deliberate step: each foot lifts, swings forward, and drops
    onto the floor accelerating, landing exactly on its contact frame; the body dips with each landing.

    Args:
        stage: Scene geometry.
        rng: Random source (appearance, step length, start).
        contacts: Increasing contact frames.
        gains: Loudness of each step in (0, 1]; louder steps lift higher and land faster.
        tracking: The camera follows the walker (no turning at the frame edges).
    """

    z = 10.0

    def __init__(
        self,
        *,
        stage: Stage,
        rng: np.random.Generator,
        contacts: list[int],
        gains: list[float],
        tracking: bool = False,
    ) -> None:
        self.stage = stage
        H, W, T = stage.height, stage.width, stage.num_frames
        self.hw = H * float(rng.uniform(0.5, 0.65))
        hw = self.hw
        self.skin = R.hsv(rng, (15, 35), (0.3, 0.6), (0.45, 0.95))
        self.shirt = R.hsv(rng, (0, 360), (0.3, 0.9), (0.3, 0.9))
        self.pants = R.hsv(rng, (0, 360), (0.1, 0.7), (0.15, 0.6))
        self.shoe = R.hsv(rng, (0, 60), (0.2, 0.7), (0.1, 0.35))
        step = hw * float(rng.uniform(0.17, 0.24))
        d = 1 if rng.random() < 0.5 else -1
        x = W * float(rng.uniform(0.3, 0.45)) if d > 0 else W * float(rng.uniform(0.55, 0.7))
        ankle_y = stage.ground_y - 0.045 * hw
        feet = np.zeros((T, 2, 2))
        feet[:, :, 1] = ankle_y
        pos = [x - 0.02 * hw * d, x + 0.02 * hw * d]  # standing, feet together
        facing = np.full(T, d, dtype=np.int8)
        bob = np.zeros(T)
        swings = []  # (foot, start, end, x_from, x_to, lift)
        self.landings: list[tuple[int, float]] = []  # (contact frame, foot x)
        foot = int(rng.integers(2))
        lo, hi = W * 0.12, W * 0.88
        prev = -(10**6)
        for i, (k, g) in enumerate(zip(contacts, gains)):
            new = pos[1 - foot] + d * step * (1.0 if i else 0.5)
            if not tracking and not lo < new < hi:
                d = -d
                new = pos[1 - foot] + d * 0.02 * hw
                facing[k:] = d
            s = max(prev + 2, k - int(round(stage.fps * 0.48)), k - 12)
            s = min(s, k - 4)
            swings.append((foot, s, k, pos[foot], new, hw * (0.09 + 0.16 * g)))
            self.landings.append((k, new))
            pos[foot] = new
            prev = k
            foot = 1 - foot
        # Rest positions between swings, then the swing trajectories.
        cur = [x - 0.02 * hw * facing[0], x + 0.02 * hw * facing[0]]
        last = 0
        for f, s, k, x0, x1, lift in swings:
            feet[last:s, 0, 0], feet[last:s, 1, 0] = cur[0], cur[1]
            feet[s:, 0, 0], feet[s:, 1, 0] = cur[0], cur[1]
            n = k - s
            for j in range(n + 1):
                p = j / n
                feet[s + j, f, 0] = x0 + (x1 - x0) * min(1.0, p / 0.8)
                h = (1 - math.cos(math.pi * p / 0.5)) / 2 if p < 0.5 else 1 - ((p - 0.5) / 0.5) ** 2
                feet[s + j, f, 1] = ankle_y - lift * h
            cur[f] = x1
            feet[k:, f, 0] = x1
            last = k
            # body dip: down fast on the landing frame, back up slowly over the next 8 frames
            for j, v in ((-1, 0.15), (0, 1.0)):
                if 0 <= k + j < T:
                    bob[k + j] = max(bob[k + j], v)
            for j in range(1, 9):
                if k + j < T:
                    bob[k + j] = max(bob[k + j], 1 - j / 9)
        self.feet, self.facing = feet, facing
        self.hip = np.stack(
            [feet[:, :, 0].mean(1), np.full(T, stage.ground_y - 0.53 * hw) + 0.045 * hw * bob], 1
        )
        self.phase = np.interp(
            np.arange(T),
            [c for c in contacts] or [0],
            np.arange(len(contacts)) * math.pi if contacts else [0.0],
        )
        if tracking:  # camera keeps the hip near the centre
            stage.cam_x[:] = self.hip[:, 0] - W / 2

    def _leg(self, img: np.ndarray, hip: np.ndarray, ankle: np.ndarray, d: int, color, shoe) -> None:
        hw = self.hw
        l1 = l2 = 0.26 * hw
        v = ankle - hip
        dist = min(float(np.hypot(*v)), l1 + l2 - 1e-3)
        mid = hip + v / 2
        off = math.sqrt(max(0.0, l1 * l1 - (dist / 2) ** 2))
        n = np.array([-v[1], v[0]]) / max(1e-6, float(np.hypot(*v)))
        knee = mid + n * off * (1 if n[0] * d > 0 else -1)
        R.thick_segment(img, hip, knee, 0.075 * hw, color)
        R.thick_segment(img, knee, ankle, 0.06 * hw, color)
        sole = ankle[1] + 0.045 * hw
        R.fill_poly(
            img,
            np.array(
                [
                    [ankle[0] - 0.04 * hw * d, ankle[1] - 0.015 * hw],
                    [ankle[0] + 0.05 * hw * d, ankle[1]],
                    [ankle[0] + 0.11 * hw * d, sole - 0.012 * hw],
                    [ankle[0] + 0.11 * hw * d, sole],
                    [ankle[0] - 0.045 * hw * d, sole],
                ]
            ),
            shoe,
        )

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        hw, d = self.hw, int(self.facing[k])
        hip = self.hip[k] - [cam, 0]
        feet = self.feet[k] - [[cam, 0], [cam, 0]]
        shoulder = hip + [0.02 * hw * d, -0.28 * hw]
        ph = self.phase[k]
        swing = 0.45 * math.sin(ph)
        dark = R.shade(self.pants, 0.7), R.shade(self.shoe, 0.7)
        # far arm and leg first (darker), then torso, head, near leg and arm
        self._arm(img, shoulder, -swing, d, R.shade(self.shirt, 0.7))
        back = 0 if (feet[0, 0] - feet[1, 0]) * d < 0 else 1
        self._leg(img, hip, feet[back], d, *dark)
        R.thick_segment(img, hip + [0, -0.02 * hw], shoulder, 0.13 * hw, R.shade(self.shirt, 1.0))
        R.circle(img, shoulder + [0.02 * hw * d, -0.1 * hw], 0.07 * hw, R.shade(self.skin, 1.0))
        self._leg(img, hip, feet[1 - back], d, R.shade(self.pants, 1.0), R.shade(self.shoe, 1.0))
        self._arm(img, shoulder, swing, d, R.shade(self.shirt, 1.1))

    def _arm(self, img: np.ndarray, shoulder: np.ndarray, angle: float, d: int, color) -> None:
        hw = self.hw
        elbow = shoulder + 0.15 * hw * np.array([math.sin(angle) * d, math.cos(angle)])
        hand = elbow + 0.14 * hw * np.array([math.sin(angle + 0.35) * d, math.cos(angle + 0.35)])
        R.thick_segment(img, shoulder, elbow, 0.05 * hw, color)
        R.thick_segment(img, elbow, hand, 0.045 * hw, color)
        R.circle(img, hand, 0.03 * hw, R.shade(self.skin, 0.95))


# --- falling / bouncing objects -------------------------------------------------------------------------
def quantised_fall(drop: float, release: int, fps: float, gravity: float) -> tuple[int, float]:
    """Frames of a free fall of ``drop`` px from rest and the gravity (px/s^2) that lands it on a frame."""
    n = max(2, int(round(math.sqrt(2 * drop / gravity) * fps)))
    return release + n, 2 * drop / (n / fps) ** 2


class Dropper:
    """An object held by a claw, released at ``release`` and bouncing with restitution ``e`` (physics
    quantised so that every contact is on a frame). Kinds: ``metal_ball``, ``ball``, ``sack``, ``crate``,
    ``rock`` (sinks into water when ``stage.surface == 'water'``)."""

    z = 8.0

    def __init__(
        self,
        *,
        stage: Stage,
        rng: np.random.Generator,
        kind: str,
        x: float,
        release: int,
        height: float,
        restitution: float,
        last_frame: int,
    ) -> None:
        self.stage, self.kind, self.release = stage, kind, release
        H, T, fps = stage.height, stage.num_frames, stage.fps
        self.r = H * float(rng.uniform(0.1, 0.13)) * (1.15 if kind in ("crate", "sack") else 1.0)
        self.color = {
            "metal_ball": R.hsv(rng, (190, 230), (0.0, 0.15), (0.55, 0.8)),
            "ball": R.hsv(rng, (0, 360), (0.6, 0.95), (0.6, 0.95)),
            "sack": R.hsv(rng, (25, 45), (0.3, 0.55), (0.4, 0.65)),
            "crate": R.hsv(rng, (22, 38), (0.45, 0.7), (0.45, 0.7)),
            "rock": R.hsv(rng, (0, 50), (0.0, 0.2), (0.35, 0.6)),
        }[kind]
        self.rock_shape = (1 + rng.uniform(-0.2, 0.15, size=8)) * self.r
        g0 = H * GRAVITY
        rest_y = stage.ground_y - self.r
        hold_y = rest_y - height * H
        self.hold_y, self.x0 = hold_y, x
        k, g = quantised_fall(rest_y - hold_y, release, fps, g0)
        self.g = g
        self.y = np.full(T, hold_y)
        self.squash = np.ones(T)
        self.sunk = np.zeros(T)
        self.contacts: list[tuple[int, float]] = []  # (frame, impact speed px/s)
        t = np.arange(T)
        fall = (t > release) & (t <= k)
        self.y[fall] = hold_y + 0.5 * g * ((t[fall] - release) / fps) ** 2
        v = g * (k - release) / fps
        self.y[t >= k] = rest_y
        water = stage.surface == "water" and kind == "rock"
        while k <= last_frame and k < T:
            self.contacts.append((k, v))
            if 0 <= k < T and kind in ("ball", "sack"):  # squash on the contact frame, recover slowly
                for j, sq in enumerate((0.78, 0.86, 0.93) if kind == "ball" else (0.72, 0.8, 0.88, 0.95)):
                    if k + j < T:
                        self.squash[k + j] = sq
            if water:
                self.sunk[k + 1 :] = np.minimum(1.0, (t[k + 1 :] - k) / 3.0)
                break
            v *= restitution
            n = int(round(2 * v / g * fps))
            if n < 5:
                break
            v = g * n / fps / 2
            seg = (t > k) & (t < k + n)
            tt = (t[seg] - k) / fps
            self.y[seg] = rest_y - (v * tt - 0.5 * g * tt * tt)
            k += n
        self.claw_y = hold_y - self.r  # the claw opens and stays where it was (no motion after release)
        self.drift = float(rng.normal(0, 0.03)) * H / fps

    def position(self, k: int) -> tuple[float, float]:
        x = self.x0 + self.drift * max(0, min(k, self.contacts[-1][0] if self.contacts else k) - self.release)
        return x, float(self.y[k])

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        st, r = self.stage, self.r
        x, y = self.position(k)
        x -= cam
        cx, cy = self.x0 - cam, self.claw_y  # claw and cord; the prongs open on release
        spread = 0.6 if k < self.release else 0.9
        R.thick_segment(img, (cx, -2), (cx, cy), 0.35 * st.u + 0.6, (60, 60, 60))
        R.thick_segment(img, (cx - spread * r, cy + 0.4 * r), (cx, cy), 0.25 * r, (90, 90, 95))
        R.thick_segment(img, (cx + spread * r, cy + 0.4 * r), (cx, cy), 0.25 * r, (90, 90, 95))
        if self.sunk[k] >= 1.0:
            return
        height = (st.ground_y - r - y) / st.height
        sh = max(0.25, 1.0 - 1.5 * height)
        R.ellipse(img, (x, st.ground_y + 0.6 * st.u), (r * (0.7 + 0.5 * sh), 0.22 * r * sh), (25, 25, 25))
        s = self.squash[k] * (1.0 - 0.5 * self.sunk[k])
        cy = st.ground_y - r * s if s < 1 else y
        c = self.color
        if self.kind in ("metal_ball", "ball"):
            R.ellipse(img, (x, cy), (r / math.sqrt(s), r * s), R.shade(c, 0.75))
            R.ellipse(
                img, (x - 0.1 * r, cy - 0.1 * r * s), (0.85 * r / math.sqrt(s), 0.85 * r * s), R.shade(c, 1.0)
            )
            if self.kind == "ball":
                R.thick_segment(img, (x - 0.8 * r, cy), (x + 0.8 * r, cy), 0.15 * r, R.shade(c, 0.5))
            R.circle(img, (x - 0.35 * r, cy - 0.35 * r * s), 0.22 * r, R.shade(c, 1.6))
        elif self.kind == "sack":
            R.ellipse(img, (x, cy), (1.05 * r / math.sqrt(s), 0.85 * r * s), R.shade(c, 0.85))
            R.thick_segment(
                img,
                (x - 0.2 * r, cy - 0.8 * r * s),
                (x + 0.2 * r, cy - 0.8 * r * s),
                0.2 * r,
                R.shade(c, 0.6),
            )
        elif self.kind == "crate":
            q = np.array([[x - r, cy - r], [x + r, cy - r], [x + r, cy + r], [x - r, cy + r]])
            R.fill_poly(img, q, R.shade(c, 1.0))
            R.poly_line(img, q, R.shade(c, 0.55), 0.12 * r, closed=True)
            R.poly_line(img, np.array([[x - r, cy - r], [x + r, cy + r]]), R.shade(c, 0.6), 0.12 * r)
            for f in (-0.33, 0.33):
                R.poly_line(
                    img, np.array([[x - r, cy + f * r], [x + r, cy + f * r]]), R.shade(c, 0.7), 0.06 * r
                )
        else:
            ang = np.linspace(0, 2 * math.pi, 9)[:-1]
            pts = np.stack(
                [x + np.cos(ang) * self.rock_shape, cy + np.sin(ang) * self.rock_shape * 0.8 * s], 1
            )
            R.fill_poly(img, pts, R.shade(c, 1.0))
            R.circle(img, (x - 0.3 * r, cy - 0.3 * r), 0.25 * r, R.shade(c, 1.3))


class Hammer:
    """A hammer swung about a fist onto a metal plate: it accelerates down, strikes on the contact frame,
    rebounds a little and is raised again. Louder strikes swing from higher and faster."""

    z = 9.0

    def __init__(
        self, *, stage: Stage, rng: np.random.Generator, contacts: list[int], gains: list[float]
    ) -> None:
        self.stage = stage
        H, T = stage.height, stage.num_frames
        self.d = 1 if rng.random() < 0.5 else -1
        self.length = H * float(rng.uniform(0.28, 0.36))
        self.plate_x = stage.width * float(rng.uniform(0.35, 0.65))
        self.plate_top = stage.ground_y - H * 0.06
        self.pivot = np.array([self.plate_x - self.d * self.length, self.plate_top - 0.07 * H])
        self.handle = R.hsv(rng, (20, 35), (0.4, 0.7), (0.35, 0.6))
        self.head = R.hsv(rng, (200, 220), (0.0, 0.15), (0.3, 0.55))
        self.skin = R.hsv(rng, (15, 35), (0.3, 0.6), (0.45, 0.95))
        rest = math.radians(float(rng.uniform(55, 85)))
        theta = np.full(T, rest)
        prev = -100
        for k, g in zip(contacts, gains):
            up = rest * (0.55 + 0.45 * g)
            n = int(round(6 - 3 * g))  # 3 (loud) .. 6 (soft) frames of downswing
            start = max(prev + 1, k - n)
            if prev >= 0:  # raise from the previous strike up to `up`
                rise = np.arange(prev + 3, start)
                if len(rise):
                    theta[rise] = up * smoothstep((rise - prev - 3) / max(1, len(rise)))
            for j in range(start, k + 1):
                p = (j - start) / max(1, k - start)
                theta[j] = up * (1 - p * p)
            theta[k] = 0.0
            if k + 1 < T:
                theta[k + 1] = math.radians(6)
            if k + 2 < T:
                theta[k + 2] = math.radians(4)
            prev = k
        if prev >= 0:
            tail = np.arange(prev + 3, T)
            theta[tail] = rest * smoothstep((tail - prev - 3) / 10.0)
        self.theta = theta

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        H, d = self.stage.height, self.d
        R.fill_poly(
            img,
            np.array(
                [
                    [self.plate_x - 0.12 * H, self.plate_top],
                    [self.plate_x + 0.12 * H, self.plate_top],
                    [self.plate_x + 0.1 * H, self.stage.ground_y],
                    [self.plate_x - 0.1 * H, self.stage.ground_y],
                ]
            ),
            R.shade(self.head, 0.8),
        )
        th = float(self.theta[k])
        direction = np.array([math.cos(th) * d, -math.sin(th)])
        tip = self.pivot + direction * self.length
        R.thick_segment(img, self.pivot - direction * 0.05 * H, tip, 0.035 * H, R.shade(self.handle, 1.0))
        n = np.array([-direction[1], direction[0]]) * (1 if d > 0 else -1)
        a, b = tip + n * 0.07 * H, tip - n * 0.03 * H  # head across the handle, striking face below
        w = 0.05 * H
        R.fill_poly(
            img,
            np.array(
                [a - direction * w / 2, a + direction * w / 2, b + direction * w / 2, b - direction * w / 2]
            ),
            R.shade(self.head, 1.0),
        )
        R.thick_segment(
            img,
            self.pivot,
            self.pivot + np.array([-d * 0.3 * H, -0.25 * H]),
            0.06 * H,
            R.shade(self.skin, 0.8),
        )
        R.circle(img, self.pivot, 0.04 * H, R.shade(self.skin, 1.0))
