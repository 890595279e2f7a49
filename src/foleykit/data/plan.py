"""Planning of synthetic audio-visual clips (``foleykit data synth``): scene, contacts, sounds, renderer.

Each clip is one procedurally rendered scene (``scenes.py`` / ``props.py`` / ``render.py``):

- ``footsteps``: a person walks on one of 12 floor materials (colour AND texture), each step landing on
  its contact frame with the material's dust / splash / snow / footprints; sound ``footsteps/<surface>``.
- ``impact``: balls, sacks, crates or rocks released from a claw and bouncing by physics (``impact/metal``,
  ``impact/thud``, ``impact/ground``, ``impact/water``), or a hammer striking a metal plate.
- ``break``: a bottle / pane / vase / crate / plank / metal box / electric box slides off a shelf or drops
  and shatters (``break/glass|wood|metal|electric``).
- ``door``: a door swings open and later shut (``door/open``, ``door/close``).

A footsteps scene sometimes carries one extra event (a bouncing ball or a breaking bottle). Backdrops,
lighting, camera (tracking shots, shake, blur, noise) and silent distractors (a bird, a swinging lamp) vary
independently of the category, so trivial cues do not give the answer. Every contact is quantised to a
frame ``k`` and the sound's attack (``SoundBank.onset``) is placed at ``k / fps``; faster approaches make
louder sounds. Sounds come only from one split of ``split_bank`` so train / validation / test never share
a source file. Everything is a function of (seed, split, index).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from foleykit.data import render as R
from foleykit.data.bank import BankSplit, SoundBank
from foleykit.data.events import (
    BED_KINDS,
    Event,
    bed_caption,
    caption_for,
    make_bed,
    mix_events,
    sparse_times,
    walking_times,
)
from foleykit.data.props import Bird, Breakable, Door, Pendulum
from foleykit.data.scenes import GRAVITY, Contact, Dropper, Effects, Hammer, Stage, Walker, contact_effect
from foleykit.errors import DataError

GENERATOR_VERSION = 2
SCENES = ("footsteps", "impact", "break", "door")
STYLES = ("flat", "photoreal")
HARD_FLOORS = ("metal", "tile", "stone", "wood", "linoleum")
OUTDOOR_FLOORS = ("dirt", "grass", "gravel", "sand", "snow", "stone")
#: Impact variants: (name, sound category, object kind, restitution range, allowed floors).
IMPACTS = (
    ("metal_ball", "impact/metal", "metal_ball", (0.45, 0.65), HARD_FLOORS),
    ("hammer", "impact/metal", None, None, HARD_FLOORS),
    ("ball", "impact/thud", "ball", (0.35, 0.55), HARD_FLOORS + ("carpet", "dirt", "grass", "sand")),
    ("sack", "impact/thud", "sack", (0.1, 0.2), HARD_FLOORS + ("carpet", "dirt", "grass", "sand")),
    ("crate", "impact/ground", "crate", (0.0, 0.15), OUTDOOR_FLOORS),
    ("rock", "impact/ground", "rock", (0.0, 0.15), OUTDOOR_FLOORS),
    ("rock_water", "impact/water", "rock", (0.0, 0.0), ("water",)),
)
IMPACT_CAPTIONS = {
    "metal_ball": ("a metal ball bounces on the floor", "metallic clanks of a bouncing metal ball"),
    "hammer": ("a hammer strikes a metal plate", "a hammer hits metal"),
    "ball": ("a ball bounces on the floor with dull thuds", "a bouncing ball"),
    "sack": ("a heavy sack drops to the floor with a thud", "dull thuds of a falling sack"),
    "crate": ("a heavy box drops onto the ground", "something heavy thuds onto the ground"),
    "rock": ("a rock drops onto the ground with a thud", "something heavy thuds onto the ground"),
    "rock_water": ("a rock drops into water with a splash", "something splashes into water"),
}
BREAK_CAPTIONS = {
    "bottle": ("a glass bottle falls and shatters", "glass breaking"),
    "pane": ("a glass pane falls and shatters", "glass shattering"),
    "vase": ("a glass vase falls and shatters", "glass breaking"),
    "crate": ("a wooden crate falls and breaks apart", "wood cracking and breaking"),
    "plank": ("a wooden plank falls and snaps", "wood cracking and breaking"),
    "box": ("a metal box crashes to the floor and breaks", "metal crashing and breaking"),
    "tv": ("an old television falls and breaks with sparks", "an electrical device breaks with sparks"),
}


@dataclass(frozen=True)
class SynthConfig:
    """How clips look and sound.

    Attributes:
        width, height: Frame size (even numbers; 160x120 default, 1280x720 for speed benchmarks).
        fps: Frame rate.
        duration: Clip duration in seconds.
        sample_rate: Audio rate (the bank is loaded at it).
        scene_weights: Relative frequency of each scene kind (0 disables one; None: the style's defaults).
        extra_event_prob: Probability that a footsteps scene carries one extra event.
        ambience_prob: Probability of a light ambience bed (None: 0.6 flat, 0.9 photo-real).
        bed_in_caption_prob: Probability that the caption mentions the bed.
        distractor_prob: Probability of silent moving distractors (None: 0.3 flat, 0.6 photo-real).
        tracking_prob: Probability of a tracking shot in footsteps scenes.
        look_variation: Scale of the camera / lighting randomisation (0 = none).
        crf: x264 quality of the mp4 (lower = better, bigger); photo-real clips draw theirs from
            ``crf_range``.
        mp4_audio: Put the AAC soundtrack in the mp4 (False: silent video, e.g. for demo inputs).
        style: ``flat`` (procedurally drawn scenes, the previous release's data) or ``photoreal`` (real
            photos, cut-outs, camera moves and degradations; ``foleykit.data.photoreal``).
        vary_size, vary_fps: Photo-real only: draw each clip's size (160-480 px tall, several aspects,
            bars) / frame rate (12-60 fps, repeated frames) instead of ``width`` x ``height`` / ``fps``.
        multi_source_prob: Photo-real: probability of a second sounding source.
        bed_level_db: Photo-real: RMS range (dBFS) of the ambience bed under the events.
        crf_range: Photo-real: x264 crf range (codec artefacts).
        max_render_height: Photo-real: internal render height cap (pictures are upscaled beyond it).
        photos: Photo library folder (default ``$FOLEYKIT_HOME/photos``).
        preset: x264 preset (None: ``veryfast`` flat; photo-real clips draw ``superfast`` or ``ultrafast``,
            which is faster and blockier: codec artefacts of two kinds).
    """

    width: int = 160
    height: int = 120
    fps: float = 25.0
    duration: float = 10.0
    sample_rate: int = 16000
    scene_weights: dict[str, float] | None = None
    extra_event_prob: float = 0.25
    ambience_prob: float | None = None
    bed_in_caption_prob: float = 0.5
    distractor_prob: float | None = None
    tracking_prob: float = 0.25
    look_variation: float = 1.0
    crf: int = 23
    mp4_audio: bool = True
    style: str = "flat"
    vary_size: bool = False
    vary_fps: bool = False
    multi_source_prob: float = 0.35
    bed_level_db: tuple[float, float] = (-50.0, -36.0)
    crf_range: tuple[int, int] = (20, 34)
    max_render_height: int = 288
    photos: str | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise DataError(f"unknown style {self.style!r}; choose one of {', '.join(STYLES)}")
        if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
            raise DataError(f"frame size must be even and >= 32x32, got {self.width}x{self.height}")
        if not self.fps > 0 or not self.duration >= 1.0:
            raise DataError(
                f"need fps > 0 and duration >= 1 s (got fps {self.fps}, duration {self.duration})"
            )
        photo = self.style == "photoreal"
        if self.scene_weights is None:
            from foleykit.data.photoreal import DEFAULT_WEIGHTS

            weights = (
                dict(DEFAULT_WEIGHTS)
                if photo
                else {"footsteps": 0.45, "impact": 0.25, "break": 0.2, "door": 0.1}
            )
            object.__setattr__(self, "scene_weights", weights)
        if self.preset is None and not photo:
            object.__setattr__(self, "preset", "veryfast")
        if self.ambience_prob is None:
            object.__setattr__(self, "ambience_prob", 0.9 if photo else 0.6)
        if self.distractor_prob is None:
            object.__setattr__(self, "distractor_prob", 0.6 if photo else 0.3)
        names = self.scene_names
        unknown = set(self.scene_weights) - set(names)
        if unknown or not any(self.scene_weights.get(s, 0) > 0 for s in names):
            raise DataError(
                f"scene_weights of style {self.style!r} must weight at least one of {names}; got {self.scene_weights}"
            )

    @property
    def scene_names(self) -> tuple[str, ...]:
        """Scene kinds of this style."""
        if self.style == "photoreal":
            from foleykit.data.photoreal import PHOTO_SCENES

            return PHOTO_SCENES
        return SCENES

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.scene_weights or {})

    @property
    def num_frames(self) -> int:
        return round(self.duration * self.fps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SynthClip:
    """A planned clip: metadata, the lossless audio, and a frame renderer."""

    meta: dict[str, Any]
    audio: np.ndarray
    stage: Stage
    background: np.ndarray
    actors: list
    look: R.Look

    def frame(self, k: int) -> np.ndarray:
        """Frame ``k``: ``uint8 (H, W, 3)`` RGB."""
        st = self.stage
        cam = float(st.cam_x[k])
        if self.background.shape[1] == st.width:
            img = self.background.copy()
        else:  # tracking shot: crop the wide background at the camera offset
            x0 = int(round(cam - float(st.cam_x.min())))
            img = np.ascontiguousarray(self.background[:, x0 : x0 + st.width])
        for a in self.actors:
            a.draw(img, k, cam)
        return self.look.apply(img, k)

    def frames(self):
        """Iterate over every frame (a generator, so large clips never sit in memory)."""
        for k in range(self.stage.num_frames):
            yield self.frame(k)


class _Planner:
    """Plans one clip: scene, floor, stage, actors and contacts (all randomness is consumed here)."""

    def __init__(self, rng: np.random.Generator, cfg: SynthConfig, available: set[str]) -> None:
        self.rng, self.cfg, self.available = rng, cfg, available
        self.surfaces = [s for s in R.SURFACES if f"footsteps/{s}" in available]

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def stage(self, surface: str) -> Stage:
        cfg, rng = self.cfg, self.rng
        horizon = int(cfg.height * float(rng.uniform(0.5, 0.66)))
        ground = horizon + (cfg.height - horizon) * float(rng.uniform(0.45, 0.7))
        return Stage(
            width=cfg.width,
            height=cfg.height,
            fps=cfg.fps,
            num_frames=cfg.num_frames,
            ground_y=ground,
            horizon=horizon,
            surface=surface,
            cam_x=np.zeros(cfg.num_frames),
        )

    def frames_of(self, times: np.ndarray, min_gap: int, lo: int, hi: int) -> list[int]:
        out: list[int] = []
        for t in times:
            k = int(round(float(t) * self.cfg.fps))
            if lo <= k <= hi and (not out or k - out[-1] >= min_gap):
                out.append(k)
        return out

    # --- scenes ---------------------------------------------------------------------------------------
    def footsteps(self, effects: Effects) -> tuple[Stage, list, list[Contact], str, dict]:
        rng, cfg = self.rng, self.cfg
        surface = self.pick(self.surfaces)
        st = self.stage(surface)
        T = cfg.num_frames
        frames = self.frames_of(walking_times(rng, 0.2, cfg.duration - 0.3, cadence=(1.4, 2.1)), 9, 5, T - 3)
        base = float(rng.uniform(0.35, 0.9))
        gains = [float(np.clip(base * 10 ** (rng.normal(0, 2.0) / 20), 0.15, 1.0)) for _ in frames]
        tracking = rng.random() < cfg.tracking_prob
        walker = Walker(stage=st, rng=rng, contacts=frames, gains=gains, tracking=tracking)
        contacts = []
        for (k, foot_x), g in zip(walker.landings, gains):
            contact_effect(
                effects, rng, st, surface, foot_x, k, g, footprint=(0.06 * walker.hw, 0.012 * walker.hw)
            )
            contacts.append(Contact(k, f"footsteps/{surface}", g, "walker"))
        return st, [walker], contacts, caption_for(f"footsteps/{surface}", rng), {"tracking": tracking}

    def _drops(
        self,
        st: Stage,
        effects: Effects,
        kind: str,
        category: str,
        e_range,
        count: int,
        lo: int,
        hi: int,
        avoid: list[int],
    ) -> tuple[list, list[Contact]]:
        rng, cfg = self.rng, self.cfg
        actors, contacts = [], []
        H = cfg.height
        v_ref = math.sqrt(2 * GRAVITY * H * H * 0.35)
        slots = np.sort(rng.uniform(lo, max(lo + 1, hi - 0.8 * cfg.fps), size=count))
        for j, r in enumerate(slots):
            x = cfg.width * (0.15 + 0.7 * (j + float(rng.uniform(0.2, 0.8))) / count)
            d = Dropper(
                stage=st,
                rng=rng,
                kind=kind,
                x=x,
                release=int(r),
                height=float(rng.uniform(0.08, 0.35)),
                restitution=float(rng.uniform(*e_range)),
                last_frame=cfg.num_frames - 3,
            )
            ok = [
                (k, v)
                for k, v in d.contacts
                if k <= cfg.num_frames - 3 and all(abs(k - a) > 1 for a in avoid)
            ]
            if not ok:
                continue
            actors.append(d)
            for k, v in ok:
                g = float(np.clip(0.15 + 0.85 * v / v_ref, 0.1, 1.0))
                contacts.append(Contact(k, category, g, kind))
                contact_effect(
                    effects,
                    rng,
                    st,
                    st.surface if st.surface in ("water", "sand", "snow", "dirt") else "",
                    d.position(k)[0],
                    k,
                    g,
                )
        return actors, contacts

    def impact(self, effects: Effects) -> tuple[Stage, list, list[Contact], str, dict]:
        rng, cfg = self.rng, self.cfg
        variants = [v for v in IMPACTS if v[1] in self.available]
        if not variants:
            raise DataError("no impact/* category in this split")
        name, category, kind, e_range, floors = self.pick(variants)
        st = self.stage(self.pick(floors))
        T = cfg.num_frames
        if name == "hammer":
            frames = self.frames_of(
                sparse_times(rng, 0.4, cfg.duration - 0.4, rate=0.9, min_gap=0.45), 12, 8, T - 3
            )
            gains = [float(rng.uniform(0.35, 1.0)) for _ in frames]
            hammer = Hammer(stage=st, rng=rng, contacts=frames, gains=gains)
            contacts = [Contact(k, category, g, "hammer") for k, g in zip(frames, gains)]
            for k, g in zip(frames, gains):
                b = R.make_burst(
                    rng, "spark", (hammer.plate_x, hammer.plate_top), k, cfg.fps, st.u, strength=0.3 * g
                )
                effects.items.append(b)
            return st, [hammer], contacts, self.pick(IMPACT_CAPTIONS[name]), {"variant": name}
        count = int(rng.integers(1, 4))
        actors, contacts = self._drops(st, effects, kind, category, e_range, count, 2, T - 10, [])
        if not contacts:
            raise DataError("no contact planned")  # pragma: no cover - the slots always leave room
        return st, actors, contacts, self.pick(IMPACT_CAPTIONS[name]), {"variant": name}

    def _breakables(
        self, st: Stage, material: str, count: int, avoid: list[int]
    ) -> tuple[list, list[Contact], str]:
        rng, cfg = self.rng, self.cfg
        actors, contacts, caption = [], [], ""
        T = cfg.num_frames
        H = cfg.height
        v_ref = math.sqrt(2 * GRAVITY * H * H * 0.35)
        lo = int(1.3 * cfg.fps)
        for j in range(count):
            for _ in range(10):
                k = int(rng.integers(lo, T - 4))
                if all(abs(k - a) > 2 for a in avoid) and all(
                    abs(k - c.frame) > cfg.fps * 1.5 for c in contacts
                ):
                    break
            else:
                continue
            x = cfg.width * (0.2 + 0.6 * (j + float(rng.uniform(0.2, 0.8))) / count)
            b = Breakable(
                stage=st,
                rng=rng,
                material=material,
                x=x,
                contact=k,
                height=float(rng.uniform(0.1, 0.35)),
                mechanism="shelf" if rng.random() < 0.6 else "claw",
            )
            if b.release < 1:
                continue
            actors.append(b)
            g = float(np.clip(0.3 + 0.7 * b.impact_speed / v_ref, 0.2, 1.0))
            contacts.append(Contact(k, f"break/{material}", g, b.shape))
            caption = caption or self.pick(BREAK_CAPTIONS[b.shape])
        return actors, contacts, caption

    def breaking(self, effects: Effects) -> tuple[Stage, list, list[Contact], str, dict]:
        rng = self.rng
        materials = [m for m in ("glass", "wood", "metal", "electric") if f"break/{m}" in self.available]
        if not materials:
            raise DataError("no break/* category in this split")
        material = self.pick(materials)
        st = self.stage(self.pick([s for s in R.SURFACES if s != "water"]))
        count = 1 if self.cfg.duration < 6 or rng.random() < 0.6 else 2
        actors, contacts, caption = self._breakables(st, material, count, [])
        if not contacts:
            raise DataError("no contact planned")  # pragma: no cover
        return st, actors, contacts, caption, {"variant": material}

    def door(self, effects: Effects) -> tuple[Stage, list, list[Contact], str, dict]:
        rng, cfg = self.rng, self.cfg
        if not {"door/open", "door/close"} <= self.available:
            raise DataError("door scenes need door/open and door/close in this split")
        st = self.stage(self.pick([s for s in R.SURFACES if s != "water"]))
        T, fps = cfg.num_frames, cfg.fps
        start_open = rng.random() < 0.15
        cycles, contacts = [], []
        k = int(rng.integers(3, int(1.5 * fps)))
        while k < T - 4:
            g_open, g_close = float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.4, 1.0))
            k_open = None if (start_open and not cycles) else k
            k_close = k if k_open is None else k + int(fps * float(rng.uniform(1.4, 2.6)))
            if k_close > T - 3:
                k_close = None
            cycles.append((k_open, k_close, g_open, g_close))
            if k_open is not None:
                contacts.append(Contact(k_open, "door/open", g_open, "door"))
            if k_close is None:
                break
            contacts.append(Contact(k_close, "door/close", g_close, "door"))
            k = k_close + int(fps * float(rng.uniform(0.8, 2.0)))
        door = Door(stage=st, rng=rng, cycles=cycles, start_open=start_open)
        cats = {c.category for c in contacts}
        key = "door/open+close" if cats == {"door/open", "door/close"} else min(cats)
        return st, [door], contacts, caption_for(key, rng), {"variant": "door", "start_open": start_open}


def _split_code(split_name: str) -> int:
    return zlib.crc32(split_name.encode())


_PHOTOS: dict[tuple[str, int, int], Any] = {}


def photo_assets(cfg: SynthConfig, split: BankSplit) -> tuple[Any, Any]:
    """(PhotoLibrary, PhotoSplit) of ``cfg.photos`` (default ``$FOLEYKIT_HOME/photos``), cached per process;
    the photo split follows ``split`` for pictures paired with a sound."""
    from foleykit.data.photos import PhotoLibrary, default_photos_dir, split_photos

    root = str(cfg.photos or default_photos_dir())
    key = (root, split.seed, id(split))
    if key not in _PHOTOS:
        lib = PhotoLibrary(root)
        _PHOTOS.clear()
        _PHOTOS[key] = (lib, split_photos(lib, seed=split.seed, bank_split=split))
    return _PHOTOS[key]


def plan_clip(
    bank: SoundBank,
    split: BankSplit,
    split_name: str,
    seed: int,
    index: int,
    cfg: SynthConfig,
    *,
    photos: tuple[Any, Any] | None = None,
) -> Any:
    """Plan clip ``index`` of ``split_name`` for ``seed``: scene, events, the mixed audio and a renderer.

    Args:
        photos: (PhotoLibrary, PhotoSplit) for ``style='photoreal'`` (default: ``photo_assets(cfg, split)``).

    Returns:
        A SynthClip (flat) or a ``photoreal.PhotoClip``; both have ``meta``, ``audio`` and ``frames()``.

    Raises:
        DataError: the split has no file for any enabled scene, or the photo library is missing.
    """
    if bank.sample_rate != cfg.sample_rate:
        raise DataError(f"bank loaded at {bank.sample_rate} Hz, config wants {cfg.sample_rate} Hz")
    if cfg.style == "photoreal":
        from foleykit.data.photoreal import plan_photoreal

        lib, psplit = photos if photos is not None else photo_assets(cfg, split)
        clip = plan_photoreal(bank, split, lib, psplit, split_name, seed, index, cfg)
        clip.meta["generator"] = {"name": "foleykit.data.synth", "version": GENERATOR_VERSION}
        return clip
    rng = np.random.default_rng([seed & 0xFFFFFFFF, _split_code(split_name), index])
    available = set(split.categories(split_name))
    planner = _Planner(rng, cfg, available)
    enabled = {
        "footsteps": bool(planner.surfaces),
        "impact": any(v[1] in available for v in IMPACTS),
        "break": any(c.startswith("break/") for c in available),
        "door": {"door/open", "door/close"} <= available,
    }
    kinds = [s for s in SCENES if cfg.weights.get(s, 0) > 0 and enabled[s]]
    if not kinds:
        raise DataError(
            f"split {split_name!r} of the bank has no sound for the enabled scenes "
            f"{[s for s in SCENES if cfg.weights.get(s, 0) > 0]}; categories: {sorted(available)}"
        )
    w = np.array([cfg.weights[s] for s in kinds], dtype=np.float64)
    scene = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
    effects = Effects()
    st, actors, contacts, caption, info = getattr(planner, "breaking" if scene == "break" else scene)(effects)
    category = contacts[0].category
    if scene == "footsteps" and rng.random() < cfg.extra_event_prob:
        steps = [c.frame for c in contacts]
        extra_break = rng.random() < 0.5 and "break/glass" in available and st.surface != "water"
        if extra_break:
            more, cs, cap = planner._breakables(st, "glass", 1, steps)
            cap = BREAK_CAPTIONS[cs[0].actor][0] if cs else cap  # a full clause after "and"
        elif st.surface == "water" and "impact/water" in available:
            more, cs = planner._drops(
                st, effects, "rock", "impact/water", (0.0, 0.0), 1, 2, cfg.num_frames - 10, steps
            )
            cap = "a rock splashing into the water"
        elif st.surface != "water" and "impact/thud" in available:
            more, cs = planner._drops(
                st, effects, "ball", "impact/thud", (0.35, 0.55), 1, 2, cfg.num_frames - 10, steps
            )
            cap = "a ball bouncing"
        else:
            more, cs, cap = [], [], ""
        if cs:
            actors += more
            contacts += cs
            caption = f"{caption} and {cap}"
            info["extra"] = cs[0].category
    if rng.random() < cfg.distractor_prob:
        d = Bird(stage=st, rng=rng) if rng.random() < 0.5 else Pendulum(stage=st, rng=rng)
        actors.append(d)
        info["distractor"] = type(d).__name__.lower()
    # Sounds: one file per contact, drawn from this split only.
    events = []
    for c in sorted(contacts, key=lambda c: (c.frame, c.category)):
        files = split.files(split_name, c.category)
        path = files[int(rng.integers(len(files)))]
        events.append(
            Event(time=c.frame / cfg.fps, category=c.category, file=path, gain=c.gain, onset=bank.onset(path))
        )
    bed = None
    if rng.random() < cfg.ambience_prob:
        bed_files = [p for k in BED_KINDS for p in split.files(split_name, f"ambience/{k}")]
        bed = make_bed(bank, rng, bed_files, cfg.duration)
        if bed is not None and rng.random() < cfg.bed_in_caption_prob:
            caption = f"{caption}, with {bed_caption(bed.category)} in the background"
    audio, events, bed = mix_events(bank, events, round(cfg.duration * cfg.sample_rate), bed=bed)
    # Pictures: backdrop + floor (wide for tracking shots), actors sorted by depth, camera look.
    u = st.u
    span = int(math.ceil(float(st.cam_x.max() - st.cam_x.min())))
    bw = cfg.width + span
    background = R.backdrop(rng, bw, cfg.height, u)
    background[st.horizon :] = R.floor_band(st.surface, rng, bw, st.horizon, cfg.height, u)
    look = R.random_look(rng, cfg.width, cfg.height, cfg.num_frames, variation=cfg.look_variation)
    actors = sorted([effects, *actors], key=lambda a: a.z)
    frames_of_events = [
        {**e.to_dict(), "frame": int(round(e.time * cfg.fps)), "actor": c.actor, "source": "ufoai"}
        for e, c in zip(events, sorted(contacts, key=lambda c: (c.frame, c.category)))
    ]
    meta = {
        "split": split_name,
        "seed": seed,
        "index": index,
        "caption": caption,
        "category": category,
        "categories": sorted({e.category for e in events}),
        "scene": scene,
        "surface": st.surface,
        "duration": cfg.duration,
        "style": "flat",
        "fps": cfg.fps,
        "size": [cfg.width, cfg.height],
        "photos": [],
        "width": cfg.width,
        "height": cfg.height,
        "num_frames": cfg.num_frames,
        "sample_rate": cfg.sample_rate,
        "events": frames_of_events,
        "ambience": bed.to_dict() if bed else None,
        "scene_info": info,
        "look": {
            "noise": round(look.noise, 3),
            "blur": round(look.blur, 3),
            "shake": look.shake is not None,
            "vignette": look.vignette is not None,
        },
        "bank": {"name": bank.manifest.get("name", bank.root.name), "split_seed": split.seed},
        "generator": {"name": "foleykit.data.synth", "version": GENERATOR_VERSION},
    }
    walker = next((a for a in actors if isinstance(a, Walker)), None)
    if walker is not None:
        meta["keypoints"] = _flat_keypoints(walker, st, look, cfg)
    return SynthClip(meta=meta, audio=audio, stage=st, background=background, actors=actors, look=look)


def _flat_keypoints(walker: Walker, st: Stage, look: R.Look, cfg: SynthConfig) -> dict[str, Any]:
    """The flat walker's keypoints in normalised frame coordinates (tracking offset and shake applied)."""
    from foleykit.data.sprites import KEYPOINT_NAMES, walker_joints

    pts = []
    for k in range(cfg.num_frames):
        dx, dy = look.shake[min(k, len(look.shake) - 1)] if look.shake is not None else (0.0, 0.0)
        jt = walker_joints(walker, k)
        far = "left" if walker.facing[k] > 0 else "right"
        row = []
        for name in KEYPOINT_NAMES:
            x, y = float(jt[name][0] - st.cam_x[k] + dx), float(jt[name][1] + dy)
            inside = 0 <= x < cfg.width and 0 <= y < cfg.height
            vis = (0.6 if name.startswith(far) else 0.95) if inside else 0.0
            row.append([round(x / cfg.width, 5), round(y / cfg.height, 5), vis])
        pts.append(row)
    return {"fps": cfg.fps, "names": list(KEYPOINT_NAMES), "people": [{"points": pts}]}
