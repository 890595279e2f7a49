"""Photo cut-out actors of photo-real clips (and a less flat walker), drawn in world pixels.

- ``paste``: alpha-composite an RGBA cut-out with rotation, scale, sub-pixel position and motion blur.
- ``SpriteDrop``: a cut-out falling into view from above the frame and bouncing by the same quantised
  physics as ``scenes.Dropper`` (contacts on exact frames, fastest at contact); fragile objects shatter
  into textured fragments on their first contact.
- ``SpriteStriker``: a hammer / mallet cut-out swung about its grip onto a plate (``scenes.Hammer``'s
  timing: accelerates down, strikes on the contact frame, rebounds).
- ``SpriteLaunch``: a cut-out resting on the ground, struck by a tool cut-out pushed along the ground: it
  starts sliding (or rolling) on the hit frame and slows to rest by friction, silently.
- ``SoundingSprite``: an animal or object that shows WHEN it sounds: a jolt / head-bob / shake / squash
  starting exactly on each onset frame, then following the loudness of its own sound.
- ``DriftSprite``: a silent cut-out moving smoothly (a distractor: motion without sound).
- ``PhotoWalker``: ``scenes.Walker``'s motion with photo-textured, shaded clothing, hair and a soft
  shadow, and BlazePose-named keypoints per frame.
- ``DepthWalker``: the same gait seen from a raised camera, walking straight away from it or toward it
  (back / front view in perspective).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from foleykit.data import render as R
from foleykit.data.scenes import GRAVITY, Stage, Walker, quantised_fall


def resize_sprite(rgba: np.ndarray, height: float) -> np.ndarray:
    """An RGBA cut-out scaled to ``height`` pixels (aspect kept)."""
    import cv2

    s = max(2.0, height) / rgba.shape[0]
    size = (max(2, round(rgba.shape[1] * s)), max(2, round(rgba.shape[0] * s)))
    return cv2.resize(rgba, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def paste(
    img: np.ndarray,
    spr: np.ndarray,
    x: float,
    y: float,
    *,
    angle: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    anchor: tuple[float, float] = (0.5, 0.5),
    blur: tuple[float, float] = (0.0, 0.0),
    opacity: float = 1.0,
) -> None:
    """Composite ``spr`` (uint8 RGBA) into ``img`` (uint8 RGB) in place.

    The sprite point ``anchor`` (fractions of its width / height) lands on (x, y); ``angle`` (radians,
    clockwise on screen) and ``scale`` (sx, sy) apply about that point; ``blur`` is the motion in pixels
    during the exposure (a line blur along it when >= 1.5 px).
    """
    import cv2

    h, w = spr.shape[:2]
    ax, ay = anchor[0] * w, anchor[1] * h
    c, s = math.cos(angle), math.sin(angle)
    sx, sy = scale
    m = np.array([[c * sx, -s * sy, 0.0], [s * sx, c * sy, 0.0]])
    m[:, 2] = [x - (m[0, 0] * ax + m[0, 1] * ay), y - (m[1, 0] * ax + m[1, 1] * ay)]
    corners = m[:, :2] @ np.array([[0, w, w, 0], [0, 0, h, h]], np.float64) + m[:, 2:3]
    pad = math.ceil(math.hypot(*blur) / 2) + 1
    x0, y0 = math.floor(corners[0].min()) - pad, math.floor(corners[1].min()) - pad
    x1, y1 = math.ceil(corners[0].max()) + pad, math.ceil(corners[1].max()) + pad
    X0, Y0, X1, Y1 = max(0, x0), max(0, y0), min(img.shape[1], x1), min(img.shape[0], y1)
    if X1 <= X0 or Y1 <= Y0 or opacity <= 0:
        return
    m2 = m.copy()
    m2[:, 2] -= [X0, Y0]
    warped = cv2.warpAffine(
        spr, m2.astype(np.float32), (X1 - X0, Y1 - Y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    ).astype(np.float32)
    a = warped[..., 3:4] * (opacity / 255.0)
    pm = warped[..., :3] * a
    length = math.hypot(*blur)
    if length >= 1.5:
        n = int(min(31, round(length))) | 1
        k = np.zeros((n, n), np.float32)
        cc = n // 2
        ang = math.atan2(blur[1], blur[0])
        dx, dy = round(cc * math.cos(ang)), round(cc * math.sin(ang))
        cv2.line(k, (cc - dx, cc - dy), (cc + dx, cc + dy), 1.0, 1)
        k /= max(float(k.sum()), 1e-6)
        pm = cv2.filter2D(pm, -1, k, borderType=cv2.BORDER_CONSTANT)
        a = cv2.filter2D(a, -1, k, borderType=cv2.BORDER_CONSTANT)[..., None]
    roi = img[Y0:Y1, X0:X1]
    roi[:] = (roi.astype(np.float32) * (1.0 - a) + pm).clip(0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=256)
def _shadow_mask(rx: int, ry: int) -> np.ndarray:
    import cv2

    pad = rx + 2 * ry + 2
    m = np.zeros((2 * pad + 1, 2 * pad + 1), np.float32)
    cv2.ellipse(m, (pad, pad), (max(1, rx), max(1, ry)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(m, (0, 0), max(0.8, ry * 0.8))[..., None]


def shadow(img: np.ndarray, x: float, y: float, rx: float, ry: float, strength: float) -> None:
    """Darken a soft ellipse (a contact shadow) centred at (x, y) by up to ``strength`` (0..1)."""
    if strength <= 0 or rx < 1 or ry < 0.5:
        return
    m = _shadow_mask(int(rx), max(1, int(ry)))
    pad = m.shape[0] // 2
    x0, y0 = int(x) - pad, int(y) - pad
    X0, Y0 = max(0, x0), max(0, y0)
    X1, Y1 = min(img.shape[1], x0 + m.shape[1]), min(img.shape[0], y0 + m.shape[0])
    if X1 <= X0 or Y1 <= Y0:
        return
    sub = m[Y0 - y0 : Y1 - y0, X0 - x0 : X1 - x0]
    roi = img[Y0:Y1, X0:X1]
    roi[:] = (roi.astype(np.float32) * (1.0 - strength * sub)).astype(np.uint8)


class SpriteDrop:
    """A cut-out that falls into view from above the frame, lands on frame contacts and bounces.

    Args:
        stage: World geometry (``ground_y`` is where it lands).
        rng: Random source.
        sprite: RGBA cut-out at its drawn size.
        x: World x of the fall.
        release: Content frame at which it starts falling (from ``top`` - its height).
        top: World y of the top of the visible picture (the object starts above it).
        restitution: Bounce restitution (0: no bounce).
        last_frame: No contact after this frame.
        fragile: Shatter into fragments on the first contact (and stop there).
    """

    z = 8.0

    def __init__(self, *, stage: Stage, rng, sprite, x, release, top, restitution, last_frame, fragile=False):
        self.stage, self.sprite, self.release, self.fragile = stage, sprite, release, fragile
        T, fps = stage.num_frames, stage.fps
        self.r = sprite.shape[0] / 2.0
        rest_y = stage.ground_y - 0.95 * self.r
        hold_y = min(top - self.r - 2.0, rest_y - 0.25 * stage.height)
        k, g = quantised_fall(rest_y - hold_y, release, fps, stage.height * GRAVITY)
        t = np.arange(T)
        self.y = np.full(T, hold_y)
        fall = (t > release) & (t <= k)
        self.y[fall] = hold_y + 0.5 * g * ((t[fall] - release) / fps) ** 2
        self.y[t >= k] = rest_y
        v = g * (k - release) / fps
        self.squash = np.ones(T)
        self.contacts: list[tuple[int, float]] = []
        while k <= last_frame and k < T:
            self.contacts.append((k, v))
            for j, sq in enumerate((0.85, 0.92, 0.97)):
                if k + j < T:
                    self.squash[k + j] = min(self.squash[k + j], sq if restitution > 0.3 else 1.0)
            if fragile:
                break
            v *= restitution
            n = round(2 * v / g * fps)
            if n < 4:
                break
            v = g * n / fps / 2
            seg = (t > k) & (t < k + n)
            tt = (t[seg] - k) / fps
            self.y[seg] = rest_y - (v * tt - 0.5 * g * tt * tt)
            k += n
        spin = float(rng.normal(0, 2.0))
        last = self.contacts[-1][0] if self.contacts else T
        self.angle = np.where(t > release, spin * (np.minimum(t, last) - release) / fps, 0.0)
        self.x = np.full(T, float(x)) + float(rng.normal(0, 0.05)) * stage.height / fps * np.clip(
            np.minimum(t, last) - release, 0, None
        )
        self.frags = _fragments(rng, sprite, int(rng.integers(5, 9))) if fragile and self.contacts else []
        if self.frags:
            self._simulate_fragments(rng, g, float(self.contacts[0][1]))

    def _simulate_fragments(self, rng, g: float, V: float) -> None:
        k0, T, fps = self.contacts[0][0], self.stage.num_frames, self.stage.fps
        n = len(self.frags)
        p = np.array([[self.x[k0] + off[0], self.y[k0] + off[1]] for _, off in self.frags])
        v = np.stack([np.sign(p[:, 0] - self.x[k0] + 1e-3) * V * rng.uniform(0.05, 0.3, n), -V * rng.uniform(0.05, 0.25, n)], 1)  # fmt: skip
        w = rng.uniform(-9, 9, size=n)
        ang = np.zeros(n)
        floor = self.stage.ground_y - 1.0
        self.frag_pos = np.zeros((T, n, 2))
        self.frag_ang = np.zeros((T, n))
        dt = 1.0 / fps / 4
        for k in range(k0, T):
            self.frag_pos[k], self.frag_ang[k] = p, ang
            for _ in range(4):
                v[:, 1] += g * dt
                p += v * dt
                ang += w * dt
                hit = p[:, 1] >= floor
                p[hit, 1] = floor
                v[hit] *= [0.5, -0.15]
                w[hit] *= 0.6

    def position(self, k: int) -> tuple[float, float]:
        return float(self.x[k]), float(self.y[k])

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        st = self.stage
        if k <= self.release:
            return
        if self.frags and k >= self.contacts[0][0]:
            for j, (frag, _) in enumerate(self.frags):
                x, y = self.frag_pos[k, j]
                paste(img, frag, x - cam, y, angle=float(self.frag_ang[k, j]))
            return
        x, y = float(self.x[k]) - cam, float(self.y[k])
        height = max(0.0, (st.ground_y - self.r - y) / st.height)
        shadow(
            img,
            x,
            st.ground_y,
            self.r * (1.1 - 0.5 * min(1, height)),
            0.25 * self.r,
            0.45 * max(0.2, 1 - 1.5 * height),
        )
        vy = (self.y[k] - self.y[k - 1]) if k > 0 else 0.0
        s = float(self.squash[k])
        paste(img, self.sprite, x, y + self.r * (1 - s), angle=float(self.angle[k]), scale=(1 / math.sqrt(s), s),
              blur=(0.0, 0.5 * vy))  # fmt: skip


def _fragments(rng, sprite: np.ndarray, n: int) -> list[tuple[np.ndarray, tuple[float, float]]]:
    """Voronoi pieces of a cut-out: [(RGBA piece, offset of its centre from the sprite centre)]."""
    h, w = sprite.shape[:2]
    seeds = rng.uniform([0, 0], [w, h], size=(n, 2))
    yy, xx = np.mgrid[0:h, 0:w]
    d = (xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2
    label = d.argmin(-1)
    out = []
    for i in range(n):
        m = (label == i) & (sprite[..., 3] > 20)
        ys, xs = np.nonzero(m)
        if ys.size < 4:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        piece = sprite[y0:y1, x0:x1].copy()
        piece[..., 3] = np.where(m[y0:y1, x0:x1], piece[..., 3], 0)
        out.append((piece, ((x0 + x1) / 2 - w / 2, (y0 + y1) / 2 - h / 2)))
    return out


def tool_axis(sprite: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(grip point, unit axis grip -> head, length) of a hammer-like cut-out (PCA of its alpha; the head is
    the end whose last quarter of the length holds more pixels)."""
    ys, xs = np.nonzero(sprite[..., 3] > 100)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    c = pts.mean(0)
    _, _, vt = np.linalg.svd(pts - c, full_matrices=False)
    axis = vt[0]
    proj = (pts - c) @ axis
    lo, hi = proj.min(), proj.max()
    quarter = 0.25 * (hi - lo)
    if (proj >= hi - quarter).sum() < (proj <= lo + quarter).sum():  # the head end holds more pixels
        axis, proj = -axis, -proj
    grip = c + axis * proj.min()
    return grip, axis, float(proj.max() - proj.min())


def canonical_tool(sprite: np.ndarray) -> tuple[np.ndarray, int, float]:
    """A tool cut-out rotated once so that its grip is at the left-middle and its axis points along +x to
    its head: (RGBA sprite, row of the grip, tool length in pixels)."""
    import cv2

    grip, axis, length = tool_axis(sprite)
    ang = math.degrees(math.atan2(axis[1], axis[0]))
    h, w = sprite.shape[:2]
    big = 2 * int(math.hypot(h, w)) + 8  # centred on the grip: room for the whole tool on each side
    m = cv2.getRotationMatrix2D((float(grip[0]), float(grip[1])), ang, 1.0)
    m[:, 2] += [big / 2 - grip[0], big / 2 - grip[1]]
    rot = cv2.warpAffine(sprite, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    rows = np.nonzero(rot[..., 3].max(1) > 8)[0]
    half = rot[rows.min() : rows.max() + 1, big // 2 : big // 2 + int(length) + 4]
    return half, big // 2 - int(rows.min()), length


class SpriteStriker:
    """A hammer / mallet cut-out swung about its grip onto a plate; strikes on ``contacts`` frames with the
    angle plan of ``scenes.Hammer`` (``theta`` radians above horizontal, 0 at the strike)."""

    z = 9.0

    def __init__(
        self, *, stage: Stage, rng, sprite, theta: np.ndarray, plate_x: float, plate_tex: np.ndarray
    ):
        self.stage, self.theta = stage, theta
        self.d = 1 if rng.random() < 0.5 else -1
        half, grip_row, length = canonical_tool(sprite)
        self.anchor_y = grip_row / half.shape[0]
        self.sprite = half if self.d > 0 else np.ascontiguousarray(half[:, ::-1])
        self.length = length
        ys = np.nonzero(self.sprite[..., 3].max(1) > 100)[0]
        below = (ys.max() - grip_row) if ys.size else 4.0
        self.plate_x, self.plate_top = plate_x, stage.ground_y - stage.height * 0.05
        self.pivot = np.array([plate_x - self.d * 0.85 * length, self.plate_top - below])
        self.plate = plate_tex

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        st = self.stage
        pw = self.plate.shape[1]
        shadow(img, self.plate_x - cam, st.ground_y, 0.6 * pw, 0.12 * pw, 0.4)
        paste(img, self.plate, self.plate_x - cam, self.plate_top, anchor=(0.5, 0.0))
        th = float(self.theta[k])
        dth = float(self.theta[k] - self.theta[k - 1]) if k else 0.0
        v = abs(dth) * self.length * 0.5
        paste(img, self.sprite, self.pivot[0] - cam, self.pivot[1], angle=-th * self.d, anchor=(0.0 if self.d > 0 else 1.0, self.anchor_y),
              blur=(0.0, v))  # fmt: skip


class SpriteLaunch:
    """A cut-out resting on the ground that a tool cut-out (a stick, a cue, a pen) pushed along the ground
    strikes: still before each hit, it starts sliding (or rolling) ON the hit frame and slows to rest by
    friction, without a sound; the tool comes in fast, stops on the hit and is drawn back. The sound is the
    launch, never the stop (unlike a drop, whose sound is the sudden stop on the ground).

    Args:
        stage: World geometry (the object rests on ``ground_y``).
        rng: Random source.
        sprite: RGBA cut-out of the object at its drawn size.
        tool: RGBA cut-out of the striking tool (any orientation; :func:`canonical_tool` aligns it).
        x: World x where the object rests at first.
        hits: Candidate content frames of the hits; a hit is kept only when the object is at rest by then
            and the tool has time to come in (``contacts`` holds the kept ``(frame, speed)``, speed in
            stage heights per second).
        gains: Loudness (0..1) per candidate hit; a louder hit launches faster.
        roll: A ball: it rolls (turns by its path over its radius) and slows down more slowly.
    """

    z = 8.0

    def __init__(
        self, *, stage: Stage, rng, sprite, tool, x: float, hits: list[int], gains: list[float], roll: bool
    ):
        self.stage, self.sprite, self.roll = stage, sprite, roll
        T, fps, H = stage.num_frames, stage.fps, float(stage.height)
        half, grip_row, self.length = canonical_tool(tool)
        self.tool, self.tool_row = half, grip_row
        self.r = sprite.shape[1] / 2.0
        self.y = stage.ground_y - 0.5 * sprite.shape[0] * 0.95
        margin = self.r + 0.1 * stage.width
        self.x = np.full(T, float(x))
        self.angle = np.zeros(T)
        # the tool pushes towards the side with more room, the same way all clip long
        self.d = d = 1.0 if x < stage.width / 2 else -1.0
        tip = np.full(T, np.nan)  # world x of the tool's head; NaN: filled in below
        self.contacts: list[tuple[int, float]] = []
        rest_from, pos, spin = 0, float(x), float(rng.uniform(-1.0, 1.0))
        for k, g in zip(hits, gains):
            n_in = max(2, int(round((5 - 3 * g) * fps / 25)))  # frames the tool takes to come in
            room = (stage.width - margin - pos) if d > 0 else (pos - margin)
            if k - n_in - 2 < rest_from or k >= T - 2 or room < 2 * self.r:
                continue
            v0 = H * float(rng.uniform(0.5, 1.4)) * (0.5 + 0.5 * g)  # px / s
            t_stop = float(rng.uniform(0.8, 2.0) if roll else rng.uniform(0.25, 0.8))
            dist = min(0.5 * v0 * t_stop, room)
            v0 = 2 * dist / t_stop
            n_stop = max(2, int(math.ceil(t_stop * fps)))
            t = (np.arange(k, min(T, k + n_stop + 1)) - k) / fps
            tt = np.minimum(t, t_stop)
            path = pos + d * (v0 * tt - 0.5 * (v0 / t_stop) * tt * tt)
            self.x[k : k + len(t)] = path
            self.x[k + len(t) :] = path[-1]
            turn = (path - pos) / self.r * (1.0 if roll else 0.15 * spin)
            self.angle[k : k + len(t)] = self.angle[k - 1] + d * turn
            self.angle[k + len(t) :] = self.angle[k + len(t) - 1]
            # the tool: in from 0.3-0.6 stage heights away at a constant speed, on the object at the hit,
            # following through for two frames, then drawn back over ~0.4 s
            back = float(rng.uniform(0.3, 0.6)) * H
            edge = pos - d * self.r
            tip[k - n_in : k + 1] = edge - d * back * (k - np.arange(k - n_in, k + 1)) / n_in
            n_back = max(3, int(0.4 * fps))
            after = np.arange(k + 1, min(T, k + 3 + n_back))
            follow = edge + d * v0 / fps * 0.6 * np.minimum(after - k, 2)
            tip[after] = follow - d * back * np.clip((after - k - 2) / n_back, 0, 1)
            self.contacts.append((k, v0 / H))
            pos, rest_from = float(path[-1]), k + n_stop + 1
        # between hits the tool drifts slowly from where it was drawn back to where it starts the next hit
        known = np.flatnonzero(np.isfinite(tip))
        self.tip = np.interp(np.arange(T), known, tip[known]) if known.size else tip

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        x, y = float(self.x[k]) - cam, float(self.y)
        vx = float(self.x[k] - self.x[k - 1]) if k else 0.0
        shadow(img, x, self.stage.ground_y, 1.1 * self.r, 0.25 * self.r + 1, 0.45)
        paste(img, self.sprite, x, y, angle=float(self.angle[k]), blur=(0.6 * vx, 0.0))
        if self.contacts:
            spr = self.tool if self.d > 0 else np.ascontiguousarray(self.tool[:, ::-1])
            vt = float(self.tip[k] - self.tip[k - 1]) if k else 0.0
            anchor = (1.0 if self.d > 0 else 0.0, self.tool_row / spr.shape[0])
            paste(img, spr, float(self.tip[k]) - cam, y, anchor=anchor, blur=(0.6 * vt, 0.0))


class SoundingSprite:
    """An animal or object standing on the ground that moves WHEN it sounds.

    ``onsets``: content frames where its sounds start; ``env``: per-frame loudness (0..1) of its sound,
    set by the planner after mixing. Styles: ``bob`` (animals: lift + head tilt about the feet), ``shake``
    (drums: quick horizontal shake), ``squash`` (a squeezed toy), ``jolt`` (a small jump: camera, kettle).
    Motion starts exactly on the onset frame (zero the frame before), so the picture change marks it.
    """

    z = 7.0

    def __init__(self, *, stage: Stage, rng, sprite, x: float, base_y: float, style: str, onsets: list[int]):
        self.stage, self.sprite, self.x, self.base_y, self.style = stage, sprite, x, base_y, style
        T, fps = stage.num_frames, stage.fps
        self.onsets = onsets
        self.env = np.zeros(T)
        self.sign = 1 if rng.random() < 0.5 else -1
        t = np.arange(T)
        self.jolt = np.zeros(T)
        for k in onsets:
            self.jolt = np.maximum(self.jolt, np.where(t >= k, np.exp(-(t - k) / max(1.0, 0.1 * fps)), 0.0))
        self.amp = max(1.5, 0.07 * sprite.shape[0])
        self.freq = float(rng.uniform(7, 11))

    def motion(self, k: int) -> tuple[float, float, float, tuple[float, float]]:
        """(dx, dy, angle, scale) of frame k."""
        j, e = float(self.jolt[k]), float(self.env[k])
        if self.style == "bob":
            return (
                0.0,
                -self.amp * (0.7 * j + 0.3 * e),
                self.sign * 0.12 * (0.6 * j + 0.4 * e),
                (1.0, 1.0 + 0.03 * e),
            )
        if self.style == "shake":
            a = max(j, 0.6 * e)
            return (
                self.amp * 0.5 * a * math.cos(2 * math.pi * self.freq * k / self.stage.fps),
                0.0,
                0.02 * a,
                (1.0, 1.0),
            )
        if self.style == "squash":
            a = max(j, e)
            return 0.0, 0.0, 0.0, (1.0 + 0.08 * a, 1.0 - 0.15 * a)
        return 0.0, -0.6 * self.amp * j, self.sign * 0.05 * j, (1.0, 1.0)

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        dx, dy, ang, sc = self.motion(k)
        w = self.sprite.shape[1]
        if self.base_y >= self.stage.horizon:
            shadow(img, self.x - cam, self.base_y, 0.45 * w, 0.06 * w + 1, 0.4)
        dx_prev, dy_prev = self.motion(k - 1)[:2] if k else (dx, dy)
        paste(img, self.sprite, self.x - cam + dx, self.base_y + dy, angle=ang, scale=sc, anchor=(0.5, 0.98),
              blur=(0.5 * (dx - dx_prev), 0.5 * (dy - dy_prev)))  # fmt: skip


class DriftSprite:
    """A silent cut-out moving smoothly across (constant speed, gentle bob; a rolling ball turns)."""

    z = 4.0

    def __init__(self, *, stage: Stage, rng, sprite, y: float, roll: bool = False):
        self.stage, self.sprite, self.y, self.roll = stage, sprite, y, roll
        W, fps = stage.width, stage.fps
        self.d = 1 if rng.random() < 0.5 else -1
        self.speed = self.d * W * float(rng.uniform(0.04, 0.15)) / fps
        start = float(rng.uniform(-0.1, 0.6)) * W
        self.x0 = start if self.d > 0 else W - start
        self.bob = float(rng.uniform(0.0, 0.04)) * sprite.shape[0]
        self.period = float(rng.uniform(1.0, 3.0)) * fps
        self.flip = self.d < 0 and not roll

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        x = self.x0 + self.speed * k
        y = self.y - self.bob * abs(math.sin(math.pi * k / self.period))
        ang = (self.speed * k) / (self.sprite.shape[0] / 2) if self.roll else 0.0
        spr = self.sprite[:, ::-1] if self.flip else self.sprite
        if self.y >= self.stage.horizon:
            shadow(img, x - cam, self.y, 0.4 * spr.shape[1], 0.05 * spr.shape[1] + 1, 0.35)
        paste(img, np.ascontiguousarray(spr), x - cam, y, angle=ang, anchor=(0.5, 0.98 if not self.roll else 0.5),
              blur=(0.5 * self.speed, 0.0))  # fmt: skip


KEYPOINT_NAMES = (
    "left_hip", "right_hip", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index", "left_wrist", "right_wrist",
)  # fmt: skip


def walker_joints(walker: Walker, k: int) -> dict[str, np.ndarray]:
    """World coordinates of a ``scenes.Walker``'s keypoints (``KEYPOINT_NAMES``) on frame ``k``: hips at the
    hip joint, ankle / heel / toe inside the drawn shoe (foot 0 is the left foot), wrists at the hands."""
    hw, d = walker.hw, int(walker.facing[k])
    hip = walker.hip[k]
    shoulder = hip + [0.02 * hw * d, -0.28 * hw]
    swing = 0.45 * math.sin(walker.phase[k])
    out = {}
    for i, side in enumerate(("left", "right")):
        a = walker.feet[k, i]
        out[f"{side}_hip"] = hip + [0.0, 0.0]
        out[f"{side}_ankle"] = a
        out[f"{side}_heel"] = a + [-0.03 * hw * d, 0.035 * hw]
        out[f"{side}_foot_index"] = a + [0.09 * hw * d, 0.035 * hw]
    far = "left" if d > 0 else "right"
    for side, ang in ((far, -swing), ("right" if far == "left" else "left", swing)):
        elbow = shoulder + 0.15 * hw * np.array([math.sin(ang) * d, math.cos(ang)])
        out[f"{side}_wrist"] = elbow + 0.14 * hw * np.array([math.sin(ang + 0.35) * d, math.cos(ang + 0.35)])
    return out


class PhotoWalker(Walker):
    """``Walker`` drawn with photo-textured, shaded clothing, hair and a soft shadow; feet 0 / 1 are the
    left / right foot, and the far side (left when walking to the right) is drawn behind and darker."""

    def __init__(self, *, texture: np.ndarray, shadow_strength: float = 0.45, **kw) -> None:
        super().__init__(**kw)
        import cv2

        rng = kw["rng"]
        hw = self.hw
        size = (max(8, int(0.8 * hw)), max(8, int(1.3 * hw)))
        g = cv2.cvtColor(cv2.resize(texture, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        g = g.astype(np.float32)
        self.lum = (0.8 + 0.4 * (g - g.min()) / max(1.0, float(g.max() - g.min())))[..., None]
        self.hair = R.hsv(rng, (10, 40), (0.2, 0.7), (0.05, 0.35))
        self.shadow_strength = shadow_strength

    def joints(self, k: int) -> dict[str, np.ndarray]:
        """World coordinates of the keypoints (``KEYPOINT_NAMES``) of frame k."""
        return walker_joints(self, k)

    def far_side(self, k: int) -> str:
        return "left" if self.facing[k] > 0 else "right"

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        hw, d = self.hw, int(self.facing[k])
        st = self.stage
        shadow(
            img,
            float(self.hip[k, 0]) - cam,
            st.ground_y + 0.01 * hw,
            0.22 * hw,
            0.035 * hw,
            self.shadow_strength,
        )
        x0 = int(min(self.feet[k, :, 0].min(), self.hip[k, 0]) - cam - 0.35 * hw)
        y0 = int(self.hip[k, 1] - 0.7 * hw)
        x1 = int(max(self.feet[k, :, 0].max(), self.hip[k, 0]) - cam + 0.35 * hw) + 1
        y1 = int(st.ground_y + 0.08 * hw) + 1
        X0, Y0, X1, Y1 = max(0, x0), max(0, y0), min(img.shape[1], x1), min(img.shape[0], y1)
        if X1 <= X0 or Y1 <= Y0:
            return
        off = np.array([cam + X0, Y0], np.float64)
        layer = np.zeros((Y1 - Y0, X1 - X0, 3), np.uint8)
        mask = np.zeros((Y1 - Y0, X1 - X0), np.uint8)
        hip = self.hip[k] - off
        feet = self.feet[k] - off
        shoulder = hip + [0.02 * hw * d, -0.28 * hw]
        swing = 0.45 * math.sin(self.phase[k])
        far = 0 if d > 0 else 1
        head = shoulder + [0.02 * hw * d, -0.1 * hw]
        for target, white in ((layer, False), (mask, True)):
            col = (lambda c, f: (255, 255, 255)) if white else (lambda c, f: R.shade(c, f))
            self._arm(target, shoulder, -swing, d, col(self.shirt, 0.7))
            self._leg(target, hip, feet[far], d, col(self.pants, 0.7), col(self.shoe, 0.7))
            R.thick_segment(target, hip + [0, -0.02 * hw], shoulder, 0.13 * hw, col(self.shirt, 1.0))
            R.circle(target, head, 0.07 * hw, col(self.skin, 1.0))
            R.ellipse(
                target, head + [-0.01 * hw * d, -0.025 * hw], (0.072 * hw, 0.05 * hw), col(self.hair, 1.0)
            )
            self._leg(target, hip, feet[1 - far], d, col(self.pants, 1.0), col(self.shoe, 1.0))
            self._arm(target, shoulder, swing, d, col(self.shirt, 1.1))
        self._composite(img, layer, mask, X0, Y0, hw)

    def _composite(
        self, img: np.ndarray, layer: np.ndarray, mask: np.ndarray, X0: int, Y0: int, hw: float
    ) -> None:
        """Blend the drawn body ``layer`` (coverage ``mask``) into ``img`` at (X0, Y0): the clothing's photo
        texture as luminance and a soft shading that darkens the body's edges (``hw``: the drawn height)."""
        import cv2

        lum = self.lum[: layer.shape[0], : layer.shape[1]]
        if lum.shape[:2] != layer.shape[:2]:
            lum = cv2.resize(self.lum[..., 0], (layer.shape[1], layer.shape[0]))[..., None]
        kb = max(3, int(0.08 * hw) | 1)
        sh = cv2.blur(mask, (kb, kb)).astype(np.float32)[..., None] / 255.0
        a = mask.astype(np.float32)[..., None] / 255.0
        col = layer.astype(np.float32) * lum * (0.6 + 0.45 * sh)
        roi = img[Y0 : Y0 + layer.shape[0], X0 : X0 + layer.shape[1]]
        roi[:] = (roi.astype(np.float32) * (1 - a) + col * a).clip(0, 255).astype(np.uint8)


class DepthWalker(PhotoWalker):
    """``PhotoWalker``'s gait seen from a raised camera while the person walks straight away from it or toward
    it (back or front view, in perspective), as people are mostly filmed: each foot still lifts, swings and
    lands on its contact frame and then stands still in the picture, but the stride shows as motion up or
    down the picture and as the body shrinking or growing, not as motion across it.

    The side-view gait of ``Walker`` (progress along the path, height above the floor) is projected: a point
    ``p`` walker heights along the path and ``h`` above the floor, ``lat`` to the side of the path, is seen
    at scale ``s = z_near / z(p)`` (``z``: distance from the camera in walker heights), its floor point on
    the line from the near end of the path to the vanishing point ``vanish_x`` on the horizon.

    Args:
        away: Walks away from the camera (back view, shrinking); else toward it (front view, growing).
        depth: Distance of the path's near end from the camera, in walker heights (> 0).
        near_x: World x of the path's near end (its floor point is at ``stage.ground_y``).
        vanish_x: World x of the path's vanishing point on ``stage.horizon``.
        squash: Vertical foreshortening of the body by the camera's downward tilt (0 < squash <= 1).
        **kw: ``PhotoWalker``'s arguments; ``tracking`` is implied (the path never turns).
    """

    def __init__(
        self, *, away: bool, depth: float, near_x: float, vanish_x: float, squash: float = 1.0, **kw
    ) -> None:
        from dataclasses import replace

        stage = kw["stage"]
        kw["stage"] = replace(stage, cam_x=np.zeros_like(stage.cam_x))  # the path needs no camera
        super().__init__(tracking=True, **kw)
        self.stage = stage
        self.away, self.depth, self.near_x, self.vanish_x, self.squash = away, depth, near_x, vanish_x, squash
        d = float(self.facing[0])
        self._x0 = float(self.hip[0, 0])
        self._d = d
        self._ankle_y = stage.ground_y - 0.045 * self.hw  # a standing foot's ankle (Walker)
        self._end = float((self.hip[-1, 0] - self._x0) * d / self.hw)  # path length, walker heights

    # --- projection ---------------------------------------------------------------------------------------
    def progress(self, x: float | np.ndarray) -> np.ndarray:
        """Walker heights along the path of a side-view world x."""
        return (np.asarray(x, np.float64) - self._x0) * self._d / self.hw

    def scale(self, p: float | np.ndarray) -> np.ndarray:
        """Picture scale at ``p`` walker heights along the path (1 at the near end)."""
        z = self.depth + (np.asarray(p, np.float64) if self.away else self._end - np.asarray(p, np.float64))
        return self.depth / np.maximum(z, 0.2 * self.depth)

    def point(self, p: float, lat: float, h: float) -> np.ndarray:
        """World picture point ``p`` along the path, ``lat`` to the walker's right, ``h`` above the floor
        (all in walker heights)."""
        st, s = self.stage, float(self.scale(p))
        side = 1.0 if self.away else -1.0  # the walker's right is the picture's right from behind
        x = self.vanish_x + (self.near_x - self.vanish_x) * s + side * lat * self.hw * s
        y = st.horizon + (st.ground_y - st.horizon) * s - h * self.squash * self.hw * s
        return np.array([x, y])

    def _parts(self, k: int) -> dict[str, np.ndarray]:
        """Picture points of frame k: hips, knees, ankles, heels, toes, shoulders, elbows, wrists, head."""
        hw = self.hw
        ph = float(self.progress(self.hip[k, 0]))
        hh = (self.stage.ground_y - float(self.hip[k, 1])) / hw
        out: dict[str, np.ndarray] = {}
        for i, side in enumerate(("left", "right")):
            lat = -0.055 if side == "left" else 0.055
            pf = float(self.progress(self.feet[k, i, 0]))
            ha = (self._ankle_y - float(self.feet[k, i, 1])) / hw + 0.045
            out[f"{side}_ankle"] = self.point(pf, lat, ha)
            out[f"{side}_heel"] = self.point(pf - 0.03, lat, ha - 0.035)
            out[f"{side}_foot_index"] = self.point(pf + 0.09, lat, ha - 0.035)
            out[f"{side}_hip"] = self.point(ph, 1.1 * lat, hh)
            # knee: the side-view leg's knee (two 0.26 segments, bent forward) in the path's plane
            v = np.array([pf - ph, ha - hh])
            dist = min(float(np.hypot(*v)), 0.52 - 1e-3)
            off = math.sqrt(max(0.0, 0.26**2 - (dist / 2) ** 2))
            n = np.array([-v[1], v[0]]) / max(1e-6, float(np.hypot(*v)))
            n = n if n[0] >= 0 else -n
            kp, kh = np.array([ph, hh]) + v / 2 + n * off
            out[f"{side}_knee"] = self.point(float(kp), 1.05 * lat, float(kh))
            ang = 0.45 * math.sin(self.phase[k]) * (1 if side == "left" else -1)
            sh = hh + 0.28
            out[f"{side}_shoulder"] = self.point(ph + 0.02, 2.0 * lat, sh)
            ep, eh = ph + 0.15 * math.sin(ang), sh - 0.15 * math.cos(ang)
            out[f"{side}_elbow"] = self.point(ep, 2.3 * lat, eh)
            out[f"{side}_wrist"] = self.point(
                ep + 0.14 * math.sin(ang + 0.35), 2.2 * lat, eh - 0.14 * math.cos(ang + 0.35)
            )
        out["head"] = self.point(ph + 0.02, 0.0, hh + 0.38)
        out["neck"] = self.point(ph + 0.02, 0.0, hh + 0.3)
        out["pelvis"] = self.point(ph, 0.0, hh)
        return out

    def joints(self, k: int) -> dict[str, np.ndarray]:
        parts = self._parts(k)
        return {name: parts[name] for name in KEYPOINT_NAMES}

    def far_side(self, k: int) -> str:
        """The side whose foot is further from the camera (drawn behind the other)."""
        p = self.progress(self.feet[k, :, 0])
        further = int(np.argmax(p)) if self.away else int(np.argmin(p))
        return ("left", "right")[further]

    def draw(self, img: np.ndarray, k: int, cam: float) -> None:
        parts = {n: v - [cam, 0.0] for n, v in self._parts(k).items()}
        s = float(self.scale(self.progress(self.hip[k, 0])))
        hw = self.hw * s
        base = self.point(float(self.progress(self.hip[k, 0])), 0.0, 0.0) - [cam, 0.0]
        shadow(img, float(base[0]), float(base[1]) + 0.01 * hw, 0.16 * hw, 0.04 * hw, self.shadow_strength)
        pts = np.stack(list(parts.values()))
        pad = 0.12 * hw + 2
        x0, y0 = (pts.min(0) - pad).astype(int)
        x1, y1 = (pts.max(0) + pad).astype(int) + 1
        X0, Y0, X1, Y1 = max(0, x0), max(0, y0), min(img.shape[1], x1), min(img.shape[0], y1)
        if X1 <= X0 or Y1 <= Y0:
            return
        off = np.array([X0, Y0], np.float64)
        q = {n: v - off for n, v in parts.items()}
        layer = np.zeros((Y1 - Y0, X1 - X0, 3), np.uint8)
        mask = np.zeros((Y1 - Y0, X1 - X0), np.uint8)
        far = self.far_side(k)
        near = "right" if far == "left" else "left"
        for target, white in ((layer, False), (mask, True)):
            col = (lambda c, f: (255, 255, 255)) if white else (lambda c, f: R.shade(c, f))
            for side, f in ((far, 0.8), (near, 1.0)):
                R.thick_segment(target, q[f"{side}_hip"], q[f"{side}_knee"], 0.08 * hw, col(self.pants, f))
                R.thick_segment(target, q[f"{side}_knee"], q[f"{side}_ankle"], 0.065 * hw, col(self.pants, f))
                toe = (q[f"{side}_ankle"] + q[f"{side}_foot_index"]) / 2 + [0, 0.01 * hw]
                R.ellipse(target, toe, (0.035 * hw, max(1.0, 0.03 * hw)), col(self.shoe, f))
            R.thick_segment(target, q["pelvis"], q["neck"], 0.19 * hw, col(self.shirt, 1.0))
            R.thick_segment(target, q["left_shoulder"], q["right_shoulder"], 0.07 * hw, col(self.shirt, 1.0))
            for side in ("left", "right"):
                R.thick_segment(
                    target, q[f"{side}_shoulder"], q[f"{side}_elbow"], 0.055 * hw, col(self.shirt, 0.9)
                )
                R.thick_segment(
                    target, q[f"{side}_elbow"], q[f"{side}_wrist"], 0.05 * hw, col(self.shirt, 0.9)
                )
                R.circle(
                    target,
                    q[f"{side}_wrist"],
                    0.028 * hw,
                    (255, 255, 255) if white else R.shade(self.skin, 0.95),
                )
            face = col(self.skin, 1.0) if not self.away else col(self.hair, 1.0)
            R.circle(target, q["head"], 0.07 * hw, face)
            R.ellipse(target, q["head"] + [0, -0.035 * hw], (0.07 * hw, 0.04 * hw), col(self.hair, 1.0))
        self._composite(img, layer, mask, X0, Y0, hw)
