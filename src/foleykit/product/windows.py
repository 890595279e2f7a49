"""Any-length generation: scene cuts, window plans on the latent grid, and crossfaded assembly.

A video longer than the model's window is generated in overlapping windows. Window edges go to detected
scene cuts where possible (the sound is expected to change there, so a short crossfade at the cut is right);
elsewhere consecutive windows overlap by ``overlap`` seconds and the later one continues the earlier one
(its overlap latents are kept from the earlier window by latent inpainting) before an equal-power crossfade.

Every window start and end (except the segment's end) lies on the model's latent grid
(``1 / seq.latent_rate`` seconds from the segment start), so latent frames of neighbouring windows align.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from foleykit.errors import ConfigError

Join = Literal["start", "end", "overlap", "cut"]

#: Cuts closer than this (seconds) are one event (a flash, a strobe): only the strongest is kept.
MIN_CUT_GAP = 0.5


# ==========================================================================================================
# Scene cuts
# ==========================================================================================================
def _colour_histogram(frames: np.ndarray, bins: int) -> np.ndarray:
    """Normalised per-channel histograms ``(T, 3, bins)`` of ``uint8 (T, H, W, 3)`` frames."""
    q = (frames.astype(np.int64) * bins) >> 8  # (T, H, W, 3) bin indices
    t = frames.shape[0]
    out = np.zeros((t, 3, bins), np.float64)
    for c in range(3):
        idx = q[..., c].reshape(t, -1) + np.arange(t)[:, None] * bins
        out[:, c] = np.bincount(idx.ravel(), minlength=t * bins).reshape(t, bins)
    return out / out.sum(axis=-1, keepdims=True)


def cut_scores(frames: np.ndarray, *, bins: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Frame-to-frame change scores of consecutive frames.

    Args:
        frames: ``uint8 (T, H, W, 3)`` small frames.
        bins: Histogram bins per colour channel.

    Returns:
        ``(hist, mad)``, each ``(T - 1,)`` float64 in [0, 1]: half the L1 distance between the colour
        histograms of frames ``i`` and ``i + 1`` (averaged over R, G, B), and their mean absolute pixel
        difference / 255.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ConfigError(f"cut_scores needs uint8 (T, H, W, 3) frames, got shape {frames.shape}")
    if len(frames) < 2:
        return np.zeros(0), np.zeros(0)
    h = _colour_histogram(frames, bins)
    hist = 0.5 * np.abs(np.diff(h, axis=0)).sum(axis=-1).mean(axis=-1)
    f = frames.astype(np.int16)
    mad = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3)) / 255.0
    return hist, mad


def detect_scene_cuts(
    video: str | os.PathLike,
    *,
    start: float = 0.0,
    end: float | None = None,
    fps: float = 25.0,
    size: int = 32,
    hist_threshold: float = 0.3,
    mad_threshold: float = 0.06,
    contrast: float = 3.0,
    min_gap: float = MIN_CUT_GAP,
    chunk_seconds: float = 20.0,
) -> list[float]:
    """Hard cuts of a video from small frames (a cheap detector: histogram and pixel-difference jumps).

    Frames are decoded at ``fps`` with a short side of ``size`` pixels, ``chunk_seconds`` at a time (memory
    stays bounded for any length). A cut between frames ``i - 1`` and ``i`` needs both scores of
    :func:`cut_scores` over their thresholds, and the histogram score ``contrast`` times over the median score
    of the surrounding second (fast motion raises the neighbours too; a cut stands alone). Cuts closer than
    ``min_gap`` seconds to each other (flashes, strobes, a burst of quick shots) are one event: only the
    strongest of each such run is kept (:func:`merge_close_cuts`).

    Args:
        video: Video file.
        start, end: Segment to analyse, in seconds (``end`` None: the end of the video).
        fps: Analysis frame rate (the cut time is known to ``1 / fps``).
        size: Short side of the analysed frames, in pixels.
        hist_threshold, mad_threshold, contrast: Detection thresholds (see above).
        min_gap: Cuts closer than this (seconds) are merged into the strongest one.
        chunk_seconds: Seconds decoded per read.

    Returns:
        Cut times in seconds from the start of the file (the first frame of each new shot), increasing.
    """
    from foleykit.media import probe, read_video

    info = probe(video)
    stop = info.video_duration or info.duration
    stop = stop if end is None else min(stop, end)
    hist_all: list[np.ndarray] = []
    mad_all: list[np.ndarray] = []
    times: list[np.ndarray] = []
    prev = None
    t = start
    while t < stop - 1.0 / fps:
        dur = min(chunk_seconds, stop - t)
        clip = read_video(video, fps=fps, size=size, start=t, duration=dur)
        frames = clip.frames if prev is None else np.concatenate([prev[None], clip.frames])
        ts = clip.timestamps if prev is None else np.concatenate([[t - 1.0 / fps], clip.timestamps])
        h, m = cut_scores(frames)
        hist_all.append(h)
        mad_all.append(m)
        times.append(ts[1:])
        prev = clip.frames[-1].copy()
        t += len(clip.frames) / fps
        if len(clip.frames) == 0:  # pragma: no cover - read_video never returns an empty clip
            break
    if not hist_all:
        return []
    hist, mad, ts = np.concatenate(hist_all), np.concatenate(mad_all), np.concatenate(times)
    half = max(1, round(fps / 2))
    cuts, scores = [], []
    for i in np.flatnonzero((hist > hist_threshold) & (mad > mad_threshold)):
        around = np.concatenate([hist[max(0, i - half) : i], hist[i + 1 : i + 1 + half]])
        base = float(np.median(around)) if around.size else 0.0
        if hist[i] > contrast * base:
            cuts.append(float(ts[i]))
            scores.append(float(hist[i]))
    return merge_close_cuts(cuts, scores, min_gap=min_gap)


def merge_close_cuts(times: list[float], scores: list[float], *, min_gap: float = MIN_CUT_GAP) -> list[float]:
    """One cut per run of cuts closer than ``min_gap`` seconds to their neighbour: the one with the highest
    score (the earliest on ties).

    A flashing picture (strobe, lightning, camera flashes) passes the detector's tests on many frames in a row;
    none of those is a place to change the sound, and windows ending every few frames would waste the model.

    Args:
        times: Cut times in seconds, increasing.
        scores: Their detection scores (same length).
        min_gap: A cut less than this many seconds after the previous one joins its run (0: keep every cut).

    Returns:
        The kept cut times, increasing.
    """
    if len(times) != len(scores):
        raise ConfigError(f"merge_close_cuts: {len(times)} times but {len(scores)} scores")
    kept: list[float] = []
    run: list[tuple[float, float]] = []
    for t, sc in zip(times, scores):
        if run and t - run[-1][0] >= min_gap:
            kept.append(max(run, key=lambda r: (r[1], -r[0]))[0])
            run = []
        run.append((t, sc))
    if run:
        kept.append(max(run, key=lambda r: (r[1], -r[0]))[0])
    return kept


# ==========================================================================================================
# Window plans
# ==========================================================================================================
@dataclass(frozen=True)
class Window:
    """One generation window ``[start, end)`` in seconds from the start of the video.

    Attributes:
        start, end: Span of the window.
        join_in: How it joins the previous window: ``start`` (first window), ``overlap`` (continuation with a
            crossfade over ``[start, previous end)``) or ``cut`` (a scene cut: short crossfade, no continuation).
        join_out: ``end`` (last window), ``overlap`` or ``cut``.
    """

    start: float
    end: float
    join_in: Join = "start"
    join_out: Join = "end"

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, float | str]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def plan_windows(
    start: float,
    end: float,
    *,
    window: float,
    overlap: float,
    grid: float,
    cuts: list[float] | tuple[float, ...] = (),
    cut_fade: float | None = None,
    min_fill: float = 0.5,
) -> list[Window]:
    """Split ``[start, end)`` into windows of at most ``window`` seconds.

    Joins are placed, in order of preference: at the latest scene cut that leaves the current window at least
    ``min_fill * window`` long (crossfade of ``cut_fade`` seconds centred on the cut), else ``overlap`` seconds
    before the window's end. When the rest fits in two windows it is split evenly (no tiny last window).
    All window edges except ``end`` are whole multiples of ``grid`` from ``start``.

    Args:
        start, end: The segment in seconds.
        window: Longest window (the model's clip duration).
        overlap: Crossfade / continuation length between windows (rounded to the grid, at least one frame).
        grid: Latent frame duration in seconds (``1 / seq.latent_rate``).
        cuts: Scene-cut times in seconds.
        cut_fade: Crossfade length at cuts (default: two latent frames).
        min_fill: Smallest fraction of ``window`` a window ending at a cut may have.

    Returns:
        The windows, in time order; consecutive windows overlap.
    """
    if not (end > start >= 0 and window > 0 and grid > 0):
        raise ConfigError(
            f"plan_windows: need end > start >= 0 and positive window/grid, got start={start}, "
            f"end={end}, window={window}, grid={grid}"
        )
    eps = 1e-9
    wg = math.floor(window / grid + eps)  # window length in grid frames
    og = max(1, round(overlap / grid))
    cg = max(2, round((cut_fade if cut_fade is not None else 2 * grid) / grid))
    if wg < 4 or og > wg // 2 - 1:
        raise ConfigError(
            f"window {window} s / overlap {overlap} s: the window must hold at least 4 latent "
            "frames and the overlap less than half of it"
        )
    total = (end - start) / grid  # segment length in grid frames (not necessarily whole)
    if total <= wg + eps:
        return [Window(start, end)]
    cut_frames = sorted({round((c - start) / grid) for c in cuts if start < c < end})
    out: list[Window] = []
    s, join_in = 0, "start"
    while True:
        rest = total - s
        if rest <= wg + eps:
            out.append(Window(start + s * grid, end, join_in, "end"))
            return out
        cands = [c for c in cut_frames if s + min_fill * wg <= c and c + cg // 2 <= s + wg and c + cg < total]
        if cands:
            c = cands[-1]
            e, nxt, kind = c + cg // 2, c + cg // 2 - cg, "cut"
        else:
            if rest <= 2 * wg - og:  # the next window is the last one: split what is left evenly
                e = min(s + wg, math.ceil(s + (rest + og) / 2))
            else:
                e = s + wg
            nxt, kind = e - og, "overlap"
        out.append(Window(start + s * grid, start + e * grid, join_in, kind))
        s, join_in = nxt, kind


# ==========================================================================================================
# Crossfades and assembly
# ==========================================================================================================
def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation of two equal-length signals, clipped to [0, 1] (0 when either is silent)."""
    na, nb = float(np.dot(a, a)), float(np.dot(b, b))
    if na <= 1e-12 or nb <= 1e-12:
        return 0.0
    return float(np.clip(np.dot(a, b) / math.sqrt(na * nb), 0.0, 1.0))


def crossfade_gains(n: int, rho: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Equal-power crossfade gains ``(fade_out, fade_in)``, each ``float32 (n,)``.

    ``fade_out = k cos(theta)``, ``fade_in = k sin(theta)`` with ``theta`` going from 0 to pi/2 over the
    samples. ``k = 1 / sqrt(1 + 2 rho sin cos)`` keeps the power constant for signals of correlation ``rho``:
    ``rho = 0`` (independent signals) is the classic equal-power (sin/cos) fade, ``rho = 1`` (identical
    signals) makes the gains sum to one, so a continuation does not bulge by 3 dB in the middle.
    """
    if n <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    theta = (np.arange(n, dtype=np.float64) + 0.5) / n * (math.pi / 2)
    c, s = np.cos(theta), np.sin(theta)
    k = 1.0 / np.sqrt(1.0 + 2.0 * float(np.clip(rho, 0.0, 1.0)) * s * c)
    return (k * c).astype(np.float32), (k * s).astype(np.float32)


def crossfade_into(out: np.ndarray, new: np.ndarray, i0: int) -> float:
    """Crossfade ``new`` over ``out[i0:i0 + len(new)]`` in place (old fades out, new fades in).

    Returns:
        The correlation used for the gains.
    """
    n = min(len(new), len(out) - i0)
    if n <= 0:
        return 0.0
    old = out[i0 : i0 + n]
    rho = correlation(old, new[:n])
    g_out, g_in = crossfade_gains(n, rho)
    out[i0 : i0 + n] = g_out * old + g_in * new[:n]
    return rho


class Timeline:
    """A float32 mono buffer for a segment, filled window by window with crossfades at the joins.

    Args:
        start: Segment start in seconds (sample 0).
        num_samples: Segment length in samples.
        sample_rate: Hz.
    """

    def __init__(self, *, start: float, num_samples: int, sample_rate: int) -> None:
        self.start, self.sample_rate = float(start), int(sample_rate)
        self.audio = np.zeros(int(num_samples), np.float32)
        self.filled = 0  # samples [0, filled) hold audio

    def index(self, t: float) -> int:
        """Sample index of time ``t`` (seconds from the start of the video), clipped to the buffer."""
        return int(min(max(round((t - self.start) * self.sample_rate), 0), len(self.audio)))

    def span(self, t0: float, t1: float) -> np.ndarray:
        """A view of ``[t0, t1)``."""
        return self.audio[self.index(t0) : self.index(t1)]

    def place(self, window: Window, audio: np.ndarray) -> float:
        """Write a window's audio; the part overlapping what is already filled is crossfaded.

        Returns:
            The correlation used for the crossfade (0 without one).
        """
        i0, i1 = self.index(window.start), self.index(window.end)
        wav = np.asarray(audio, dtype=np.float32)[: i1 - i0]
        if len(wav) < i1 - i0:
            wav = np.pad(wav, (0, i1 - i0 - len(wav)))
        k = max(0, min(self.filled, i1) - i0)  # overlapping samples
        rho = crossfade_into(self.audio, wav[:k], i0) if k else 0.0
        self.audio[i0 + k : i1] = wav[k:]
        self.filled = max(self.filled, i1)
        return rho
