"""Audio-only training examples: sound-bank events placed at chosen times with chosen gains.

Rhythmic Foley trains its temporal synchronisation adapter on pure sound-effect audio (sec. III-B), and
ReWaS / Stable-V2A train their control adapters on ground-truth controls computed from audio (energy /
RMS). This module builds such examples from a ``SoundBank``: a sequence of events with realistic timing
per category (a walking cadence with jitter for footsteps, bounces that follow a ball's physics, sparse
hammer strikes, single breaks, a door that opens then closes) over an optional light ambience bed, with a
caption made from the categories and the exact ground truth (time, category, file, gain) of every event.

Mixing rule (exact, used by the tests): every event sound is peak-normalised (max |x| = 1) and multiplied
by its ``gain``; the file is placed so that its attack (``SoundBank.onset``) lands on ``time``. The bed is
the peak-normalised ambience file from ``offset`` (looped when short) times its ``gain``. When the sum
would clip (peak > 0.98) every gain is scaled down together and the stored gains are the scaled ones, so
``audio == sum(gain * placed sound) + bed`` always holds.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from foleykit.config import SequenceConfig
from foleykit.data.bank import BankSplit, SoundBank
from foleykit.errors import DataError

#: Peak level the mix is kept under.
MIX_PEAK = 0.98
#: Ambience kinds used as light background beds (leaf names under ``ambience/``).
BED_KINDS = ("fire", "water", "wind", "machine", "night")
#: Gravity in frame-heights / s^2 for bounce physics (a frame height ~ 2 m of scene).
GRAVITY = 4.9

SURFACE_NAMES = {
    "carpet": "carpet",
    "dirt": "a dirt path",
    "grass": "grass",
    "gravel": "gravel",
    "metal": "a metal floor",
    "sand": "sand",
    "snow": "snow",
    "water": "shallow water",
    "stone": "stone",
    "tile": "a tiled floor",
    "wood": "a wooden floor",
    "linoleum": "linoleum",
}

#: Caption templates per category (the first is the canonical one). ``{surface}`` is filled for footsteps.
CAPTIONS: dict[str, tuple[str, ...]] = {
    "footsteps": (
        "footsteps on {surface}",
        "someone walking on {surface}",
        "a person walks across {surface}",
    ),
    "footsteps/water": ("footsteps splashing through shallow water", "someone wading through shallow water"),
    "impact/metal": ("a metal object strikes a hard surface", "metallic clanks", "a hammer hits metal"),
    "impact/thud": ("dull thuds", "something soft hits the floor with a thud"),
    "impact/ground": ("something heavy thuds onto the ground", "a heavy object drops onto the ground"),
    "impact/water": ("something splashes into water", "an object drops into water with a splash"),
    "impact/energy": ("electric zaps hit a surface", "energy blasts hit a wall"),
    "break/glass": ("glass breaking", "a glass pane shatters", "glass shattering into pieces"),
    "break/wood": ("wood cracking and breaking", "a wooden plank snaps"),
    "break/metal": ("metal crashing and breaking", "a metal object crashes and breaks apart"),
    "break/electric": ("an electrical device breaks with sparks", "electric sparks as a machine breaks"),
    "door/open": ("a door opens", "a door creaks open"),
    "door/close": ("a door closes", "a door slams shut"),
    "door/open+close": ("a door opens and closes", "a door opens and then shuts"),
    "door/creak": ("a door creaks", "a creaking door"),
    "door/open_close": ("a door opens and closes",),
    "animal/bird": ("a bird calls", "birdsong"),
    "animal/mammal": ("an animal calls", "an animal grunts and calls"),
    "animal/insect": ("an insect buzzes", "buzzing insects"),
    "animal/frog_lizard": ("a frog croaks", "a croaking frog"),
    "music/percussion": ("a drum is struck", "percussion hits"),
    "music/instrument": ("an instrument plays a few notes", "a musical instrument plays"),
    "tool/hand": ("a hand tool at work", "hammering and sawing"),
    "household/glass": ("glass clinks", "a glass bottle clinks"),
    "household/appliance": ("a household appliance runs", "a machine clicks and whirs"),
    "household/object": ("a small household sound", "a squeak and a rustle"),
    "vehicle/road": ("traffic noise", "a vehicle passes"),
    "explosion/bang": ("a loud bang", "an explosion booms"),
}
BED_CAPTIONS = {
    "fire": "a fire crackling",
    "water": "running water",
    "wind": "wind blowing",
    "machine": "a machine humming",
    "night": "crickets at night",
    "thunder": "distant thunder",
    "electric": "electric buzzing",
    "city": "city noise",
}


def caption_for(category: str, rng: np.random.Generator | None = None) -> str:
    """A caption for one category; ``rng`` picks among templates (None: the canonical one).

    Unknown categories (user banks) read as their path words: ``animals/dog`` -> "dog animals".
    """
    leaf = category.split("/")[-1]
    templates = CAPTIONS.get(category) or CAPTIONS.get(category.split("/")[0])
    if templates is None:
        parts = category.replace("_", " ").split("/")
        return " ".join(reversed(parts)) if len(parts) > 1 else parts[0]
    t = templates[0] if rng is None else templates[int(rng.integers(len(templates)))]
    return t.format(surface=SURFACE_NAMES.get(leaf, leaf.replace("_", " ")))


def bed_caption(category: str) -> str:
    """Words for an ambience bed (``ambience/fire`` -> "a fire crackling")."""
    leaf = category.split("/")[-1]
    return BED_CAPTIONS.get(leaf, leaf.replace("_", " "))


@dataclass(frozen=True)
class Event:
    """One placed sound.

    Attributes:
        time: Time (s) of the sound's attack in the clip (the visual contact time in synthetic videos).
        category: Bank category of the sound.
        file: Bank-relative path of the sound file.
        gain: Linear gain applied to the peak-normalised sound.
        onset: Attack offset (s) inside the file; the file starts at ``time - onset``.
    """

    time: float
    category: str
    file: str
    gain: float
    onset: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Bed:
    """A light ambience bed: the peak-normalised file from ``offset``, looped, times ``gain``."""

    category: str
    file: str
    offset: float
    gain: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class EventSequence:
    """An audio-only example.

    Attributes:
        audio: Mono float32 ``(T,)`` at ``sample_rate``.
        sample_rate: Hz.
        caption: Text description.
        category: The main event category.
        events: Placed events, sorted by time.
        bed: The ambience bed, if any.
    """

    audio: np.ndarray
    sample_rate: int
    caption: str
    category: str
    events: list[Event]
    bed: Bed | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def onset_times(self) -> np.ndarray:
        """Event attack times (s), ``(N,)`` float64."""
        return np.array([e.time for e in self.events], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able metadata (everything but the audio)."""
        return {
            "caption": self.caption,
            "category": self.category,
            "sample_rate": self.sample_rate,
            "duration": round(len(self.audio) / self.sample_rate, 6),
            "events": [e.to_dict() for e in self.events],
            "ambience": self.bed.to_dict() if self.bed else None,
            **self.meta,
        }


# --- mixing ---------------------------------------------------------------------------------------------
def place(out: np.ndarray, wav: np.ndarray, start: int, gain: float) -> None:
    """Add ``gain * wav`` into ``out`` starting at sample ``start`` (clipped to ``out``'s extent)."""
    a, b = max(0, start), min(len(out), start + len(wav))
    if b > a:
        out[a:b] += gain * wav[a - start : b - start]


def render_bed(bank: SoundBank, bed: Bed, num_samples: int) -> np.ndarray:
    """The bed's samples ``(num_samples,)``: peak-normalised file from ``offset``, looped, times gain."""
    x = bank.load(bed.file, normalize=True)
    if x.size == 0:
        return np.zeros(num_samples, np.float32)
    start = round(bed.offset * bank.sample_rate) % len(x)
    reps = math.ceil((start + num_samples) / len(x))
    return (bed.gain * np.tile(x, reps)[start : start + num_samples]).astype(np.float32)


def mix_events(
    bank: SoundBank, events: Sequence[Event], num_samples: int, *, bed: Bed | None = None, limit: bool = True
) -> tuple[np.ndarray, list[Event], Bed | None]:
    """Mix events (and a bed) into ``num_samples`` samples at the bank's rate.

    Args:
        bank: The bank the files come from.
        events: Events to place (their ``onset`` is the attack offset in the file).
        num_samples: Output length.
        bed: Optional ambience bed.
        limit: Scale everything down together when the peak would exceed ``MIX_PEAK``.

    Returns:
        (audio ``(num_samples,)`` float32, events with their final gains, bed with its final gain).
    """
    sr = bank.sample_rate
    out = np.zeros(num_samples, np.float64)
    for e in events:
        place(out, bank.load(e.file, normalize=True), round((e.time - e.onset) * sr), e.gain)
    if bed is not None:
        out += render_bed(bank, bed, num_samples)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    events = list(events)
    if limit and peak > MIX_PEAK:
        s = MIX_PEAK / peak
        out *= s
        events = [replace(e, gain=e.gain * s) for e in events]
        bed = replace(bed, gain=bed.gain * s) if bed is not None else None
    return out.astype(np.float32), events, bed


def make_bed(
    bank: SoundBank,
    rng: np.random.Generator,
    files: Sequence[str],
    duration: float,
    *,
    level_db: tuple[float, float] = (-45.0, -32.0),
) -> Bed | None:
    """Pick a bed among ``files`` at a random offset, scaled to an RMS of ``level_db`` dBFS (uniform)."""
    if not files:
        return None
    f = bank.file(files[int(rng.integers(len(files)))])
    x = bank.load(f, normalize=True)
    offset = float(rng.uniform(0.0, max(0.0, f.duration - duration))) if f.duration > duration else 0.0
    seg = render_bed(bank, Bed(f.category, f.path, offset, 1.0), round(duration * bank.sample_rate))
    rms = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if seg.size else 0.0
    if rms <= 1e-8 or x.size == 0:
        return None
    target = 10.0 ** (float(rng.uniform(*level_db)) / 20.0)
    return Bed(category=f.category, file=f.path, offset=offset, gain=target / rms)


# --- timing patterns ------------------------------------------------------------------------------------
def walking_times(
    rng: np.random.Generator,
    start: float,
    end: float,
    *,
    cadence: tuple[float, float] = (1.5, 2.3),
    jitter: float = 0.02,
    pause_prob: float = 0.3,
) -> np.ndarray:
    """Footstep times of a walk: a steady cadence (steps/s) with Gaussian jitter and an optional pause.

    Returns:
        Sorted times in [start, end), ``(N,)``.
    """
    period = 1.0 / float(rng.uniform(*cadence))
    t = start + float(rng.uniform(0.1, 0.8))
    pause_at = (
        float(rng.uniform(start + 2.0, end - 1.5)) if rng.random() < pause_prob and end - start > 5 else None
    )
    times = []
    while t < end:
        times.append(t)
        t += period + float(rng.normal(0.0, jitter))
        if pause_at is not None and t > pause_at:
            t += float(rng.uniform(0.8, 2.0))
            pause_at = None
    return np.array(times)


def bounce_times(
    t_drop: float,
    height: float,
    *,
    restitution: float,
    gravity: float = GRAVITY,
    min_interval: float = 0.12,
    max_bounces: int = 8,
) -> list[tuple[float, float]]:
    """Contact times and impact speeds of an object dropped from rest at ``t_drop`` from ``height``.

    Free fall: first contact after sqrt(2h/g) at speed sqrt(2gh); each bounce leaves with ``restitution`` x
    the impact speed and lands 2v/g later. Stops when the next interval is shorter than ``min_interval``.

    Returns:
        [(time, impact speed)], speeds in frame-heights / s.
    """
    v = math.sqrt(2.0 * gravity * height)
    t = t_drop + math.sqrt(2.0 * height / gravity)
    out = [(t, v)]
    for _ in range(max_bounces - 1):
        v *= restitution
        dt = 2.0 * v / gravity
        if dt < min_interval:
            break
        t += dt
        out.append((t, v))
    return out


def sparse_times(
    rng: np.random.Generator,
    start: float,
    end: float,
    *,
    rate: float = 0.8,
    min_gap: float = 0.35,
    max_events: int = 12,
) -> np.ndarray:
    """Irregular event times (Poisson at ``rate`` per second with a minimum gap); at least one event."""
    times, t = [], start + float(rng.exponential(1.0 / rate)) * 0.5
    while t < end and len(times) < max_events:
        times.append(t)
        t += min_gap + float(rng.exponential(1.0 / rate))
    if not times:
        times = [float(rng.uniform(start, end))]
    return np.array(times)


# --- sequences --------------------------------------------------------------------------------------------
def _category_pattern(
    rng: np.random.Generator, category: str, start: float, end: float
) -> list[tuple[float, float, str]]:
    """(time, gain, category) triples for one category over [start, end)."""
    top = category.split("/")[0]
    if top == "footsteps":
        base = float(rng.uniform(0.35, 0.9))
        ts = walking_times(rng, start, end)
        return [(t, base * float(10 ** (rng.normal(0, 2.0) / 20)), category) for t in ts]
    if top == "impact":
        if rng.random() < 0.5:  # a dropped object bouncing
            h = float(rng.uniform(0.25, 0.7))
            bounces = bounce_times(
                float(rng.uniform(start, max(start, end - 2.5))),
                h,
                restitution=float(rng.uniform(0.35, 0.65)),
            )
            v0 = math.sqrt(2 * GRAVITY * 0.7)
            return [(t, min(1.0, 0.25 + 0.75 * v / v0), category) for t, v in bounces if t < end]
        return [(t, float(rng.uniform(0.4, 1.0)), category) for t in sparse_times(rng, start, end)]
    if top == "break":
        n = 1 if end - start < 5 or rng.random() < 0.6 else 2
        ts = np.sort(rng.uniform(start, end - 1.0, size=n)) if end - start > 1.5 else np.array([start])
        if n == 2 and ts[1] - ts[0] < 1.5:
            ts = ts[:1]
        return [(float(t), float(rng.uniform(0.5, 1.0)), category) for t in ts]
    if category in ("door/open", "door/close"):
        t_open = float(rng.uniform(start, max(start, end - 3.0)))
        t_close = t_open + float(rng.uniform(1.2, 3.0))
        out = [(t_open, float(rng.uniform(0.3, 0.7)), "door/open")]
        if t_close < end:
            out.append((t_close, float(rng.uniform(0.4, 1.0)), "door/close"))
        return out
    n = int(rng.integers(1, 4))
    return [
        (float(t), float(rng.uniform(0.4, 1.0)), category)
        for t in np.sort(rng.uniform(start, max(start, end - 0.5), size=n))
    ]


class EventSequenceGenerator:
    """Builds audio-only examples from a bank (optionally restricted to one split's files).

    Args:
        bank: The sound bank.
        seq: Sample rate and duration of the examples (``seq.sample_rate`` must equal the bank's rate).
        split: A BankSplit; None uses every file.
        split_name: Which split's files to draw from.
        categories: Event categories to draw from (default: every non-ambience category of the split).
        bed_prob: Probability of an ambience bed.
        mixture_prob: Probability of a second event category in the same example.
        bed_in_caption_prob: Probability that the caption mentions the bed.
    """

    def __init__(
        self,
        bank: SoundBank,
        *,
        seq: SequenceConfig | None = None,
        split: BankSplit | None = None,
        split_name: str = "train",
        categories: Sequence[str] | None = None,
        bed_prob: float = 0.7,
        mixture_prob: float = 0.25,
        bed_in_caption_prob: float = 0.5,
    ) -> None:
        self.bank = bank
        self.seq = seq or SequenceConfig()
        if self.seq.sample_rate != bank.sample_rate:
            raise DataError(
                f"bank sample rate {bank.sample_rate} != sequence sample rate {self.seq.sample_rate}"
            )
        self.split, self.split_name = split, split_name
        if split is not None:
            pool = {c: split.files(split_name, c) for c in split.categories(split_name)}
        else:
            pool = {c: [f.path for f in bank.files if f.category == c] for c in bank.categories}
        self.files = {c: sorted(v) for c, v in pool.items() if v}
        self.bed_files = [
            p
            for c, v in self.files.items()
            if c.startswith("ambience/") and c.split("/")[-1] in BED_KINDS
            for p in v
        ]
        default = [c for c in self.files if not c.startswith("ambience/")]
        self.categories = sorted(categories) if categories is not None else sorted(default)
        missing = [c for c in self.categories if c not in self.files]
        if missing or not self.categories:
            raise DataError(
                f"no {split_name} files for categories {missing or '(none given)'}; "
                f"available: {sorted(self.files)}"
            )
        self.bed_prob, self.mixture_prob, self.bed_in_caption_prob = (
            bed_prob,
            mixture_prob,
            bed_in_caption_prob,
        )

    def _pick_category(self, rng: np.random.Generator) -> str:
        tops = sorted({c.split("/")[0] for c in self.categories})
        top = tops[int(rng.integers(len(tops)))]  # balance top-level groups, then leaves
        leaves = [c for c in self.categories if c.split("/")[0] == top]
        return leaves[int(rng.integers(len(leaves)))]

    def _events(self, rng: np.random.Generator, category: str, start: float, end: float) -> list[Event]:
        out = []
        for t, g, cat in _category_pattern(rng, category, start, end):
            files = self.files.get(cat)
            if not files:  # e.g. a door that closes, but no door/close sound in this split
                continue
            path = files[int(rng.integers(len(files)))]
            out.append(
                Event(
                    time=float(t),
                    category=self.bank.file(path).category,
                    file=path,
                    gain=float(g),
                    onset=self.bank.onset(path),
                )
            )
        return out

    def generate(self, rng: np.random.Generator) -> EventSequence:
        """One example drawn with ``rng``."""
        duration = self.seq.duration
        category = self._pick_category(rng)
        events = self._events(rng, category, 0.0, duration - 0.3)
        caption = caption_for(
            "door/open+close" if {e.category for e in events} == {"door/open", "door/close"} else category,
            rng,
        )
        if rng.random() < self.mixture_prob and len(self.categories) > 1:
            other = self._pick_category(rng)
            if other.split("/")[0] != category.split("/")[0]:
                extra = self._events(rng, other, 0.0, duration - 0.3)
                if extra:
                    events += extra
                    caption = f"{caption} and {caption_for(other, rng)}"
        bed = make_bed(self.bank, rng, self.bed_files, duration) if rng.random() < self.bed_prob else None
        if bed is not None and rng.random() < self.bed_in_caption_prob:
            caption = f"{caption}, with {bed_caption(bed.category)} in the background"
        events.sort(key=lambda e: e.time)
        audio, events, bed = mix_events(self.bank, events, self.seq.num_samples, bed=bed)
        return EventSequence(
            audio=audio,
            sample_rate=self.seq.sample_rate,
            caption=caption,
            category=category,
            events=events,
            bed=bed,
            meta={"split": self.split_name},
        )

    def example(self, seed: int, index: int) -> EventSequence:
        """The deterministic example number ``index`` of stream ``seed``."""
        rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(self.split_name.encode()), index])
        ex = self.generate(rng)
        ex.meta.update(seed=seed, index=index)
        return ex


def onset_track(times: Sequence[float], rate: float, num_frames: int) -> np.ndarray:
    """Binary track ``(num_frames,)`` float32 with 1 at round(t * rate) for every event time inside it."""
    track = np.zeros(num_frames, np.float32)
    for t in times:
        k = int(round(t * rate))
        if 0 <= k < num_frames:
            track[k] = 1.0
    return track
