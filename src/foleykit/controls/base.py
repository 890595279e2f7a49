"""``TemporalControl``: one timing signal (energy, RMS envelope, onset track, motion...) on a uniform grid.

Time convention (used everywhere in foleykit): frame ``i`` describes the interval
``[start + i / rate, start + (i + 1) / rate)``; ``times[i]`` is the left edge of that interval. The AudioLDM
mel (hence the ReWaS energy) and the padded Stable-V2A RMS both centre frame ``i`` on sample
``(i + 0.5) * hop``, i.e. on the middle of that interval, so the convention matches how they are computed.

Three families of kinds behave differently when resampled or edited:

- continuous (``energy``, ``rms``, ``motion``, anything not listed below): float32 values;
- class-valued (``rms_class`` and any kind ending in ``_class``): int64 class indices (mu-law RMS classes);
- binary event tracks (``onsets``, ``events``): float32 values, 1 where an event starts (or a probability).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np

from foleykit.config import SequenceConfig
from foleykit.errors import ControlError

#: Event-track kinds: resampled by event-preserving max pooling, padded with zeros.
EVENT_KINDS = frozenset({"onsets", "events"})
#: Class-valued kinds (besides any kind ending in "_class"): int64 values, nearest-neighbour resampling.
CLASS_KINDS = frozenset({"rms_class"})

ResampleMethod = Literal["auto", "linear", "nearest", "area", "max"]
Grid = Literal["mel", "energy", "latent", "control", "video"]
Pad = Literal["auto", "edge", "zero"] | float

_KIND_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


def is_class_kind(kind: str) -> bool:
    """True for class-index kinds (``rms_class``, ``*_class``)."""
    return kind in CLASS_KINDS or kind.endswith("_class")


def is_event_kind(kind: str) -> bool:
    """True for binary event tracks (``onsets``, ``events``)."""
    return kind in EVENT_KINDS


@dataclass(eq=False)
class TemporalControl:
    """A 1-D timing control sampled at ``rate`` Hz from time ``start`` (seconds).

    Attributes:
        kind: What the values are: ``energy`` (ReWaS, log-mel mean), ``rms`` (Stable-V2A envelope, linear
            amplitude), ``rms_class`` (64 mu-law classes), ``onsets`` / ``events`` (binary tracks),
            ``motion`` (optical-flow magnitude, pixels per frame)...
        values: ``(N,)`` float32, or int64 class indices for class kinds.
        rate: Frames per second (> 0).
        start: Time of frame 0's left edge in seconds.
        meta: Free-form JSON-serialisable information (source file, parameters...). Kept by JSON files,
            dropped by CSV files.
    """

    kind: str
    values: np.ndarray
    rate: float
    start: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not _KIND_RE.match(self.kind):
            raise ControlError(
                f"control kind must be a word like 'energy' or 'rms_class' (letters, digits, "
                f"'_', '-', '.'), got {self.kind!r}"
            )
        try:
            rate = float(self.rate)
            start = float(self.start)
        except (TypeError, ValueError):
            raise ControlError(
                f"control rate and start must be numbers, got rate={self.rate!r}, start={self.start!r}"
            ) from None
        if not (math.isfinite(rate) and rate > 0):
            raise ControlError(
                f"control rate must be a positive number of frames per second, got {self.rate!r}"
            )
        if not math.isfinite(start):
            raise ControlError(f"control start must be a finite time in seconds, got {self.start!r}")
        self.rate, self.start = rate, start
        values = np.asarray(self.values)
        if values.ndim != 1:
            raise ControlError(
                f"control values must be one-dimensional (one value per frame), got shape {values.shape}"
            )
        if values.size == 0:
            raise ControlError(f"control {self.kind!r} has no frames")
        if values.dtype.kind not in "biuf":
            raise ControlError(f"control values must be numbers, got dtype {values.dtype}")
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ControlError(
                f"control {self.kind!r} has a non-finite value ({values[bad]}) at frame {bad} "
                f"(t = {start + bad / rate:.6g} s)"
            )
        if is_class_kind(self.kind):
            as_int = np.rint(values).astype(np.int64) if values.dtype.kind == "f" else values.astype(np.int64)
            if values.dtype.kind == "f" and not np.array_equal(as_int, values):
                bad = int(np.flatnonzero(as_int != values)[0])
                raise ControlError(
                    f"control {self.kind!r} holds class indices, but frame {bad} is {values[bad]}"
                )
            if np.any(as_int < 0):
                bad = int(np.flatnonzero(as_int < 0)[0])
                raise ControlError(
                    f"control {self.kind!r}: class indices must be >= 0, frame {bad} is {as_int[bad]}"
                )
            self.values = as_int
        else:
            self.values = values.astype(np.float32, copy=False)
        if not isinstance(self.meta, dict):
            raise ControlError(f"control meta must be a dict, got {type(self.meta).__name__}")

    # --- geometry ---------------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        """Number of frames N."""
        return int(self.values.shape[0])

    @property
    def duration(self) -> float:
        """Covered duration in seconds (N / rate)."""
        return self.num_frames / self.rate

    @property
    def end(self) -> float:
        """End time in seconds (start + duration)."""
        return self.start + self.duration

    @property
    def times(self) -> np.ndarray:
        """``(N,)`` float64 left-edge time of each frame in seconds."""
        return self.start + np.arange(self.num_frames, dtype=np.float64) / self.rate

    @property
    def is_class(self) -> bool:
        return is_class_kind(self.kind)

    @property
    def is_event(self) -> bool:
        return is_event_kind(self.kind)

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return (
            f"TemporalControl(kind={self.kind!r}, num_frames={self.num_frames}, rate={self.rate:g}, "
            f"start={self.start:g}, duration={self.duration:.4g}s)"
        )

    def replace(self, **changes: Any) -> TemporalControl:
        """A copy with some fields changed (values and meta are copied, never shared)."""
        fields = {
            "kind": self.kind,
            "values": self.values.copy(),
            "rate": self.rate,
            "start": self.start,
            "meta": copy.deepcopy(self.meta),
        }
        fields.update(changes)
        return TemporalControl(**fields)

    def allclose(self, other: TemporalControl, *, atol: float = 1e-6) -> bool:
        """Same kind, geometry (rate/start within 1e-9) and values (within ``atol``)."""
        return (
            self.kind == other.kind
            and self.num_frames == other.num_frames
            and math.isclose(self.rate, other.rate, rel_tol=1e-9)
            and math.isclose(self.start, other.start, abs_tol=1e-9)
            and bool(np.allclose(self.values, other.values, atol=atol, rtol=0))
        )

    # --- resampling -------------------------------------------------------------------------------------
    def resample(
        self, rate: float | None = None, *, num_frames: int | None = None, method: ResampleMethod = "auto"
    ) -> TemporalControl:
        """Resample onto another uniform grid with the same start time.

        Target frame ``j`` is centred at ``start + (j + 0.5) / rate``; values are read from the source at the
        same time. Methods:

        - ``linear``: linear interpolation between source frame centres (edges held);
        - ``area``: mean of the source over the target frame's interval (exact overlap weights; no peak
          is skipped when downsampling);
        - ``nearest``: the source frame containing the target centre (ReWaS resizes energy this way);
        - ``max``: event-preserving max pooling: each source frame goes to the one target frame that
          contains its centre, target = max of what it received (0 if nothing): an event is never lost
          or duplicated, it moves by less than one target frame.
        - ``auto``: ``nearest`` for class kinds, ``max`` for event tracks, and for continuous kinds
          ``linear`` when upsampling / ``area`` when downsampling.

        Args:
            rate: Target rate in Hz. Default: ``num_frames / duration`` (same duration).
            num_frames: Target frame count. Default: ``round(duration * rate)`` (at least 1), i.e. the
                duration is preserved to within half a target frame.
            method: See above.

        Returns:
            A new control (same kind, start and meta).
        """
        if rate is None and num_frames is None:
            raise ControlError("resample needs a target rate, a number of frames, or both")
        if num_frames is not None and int(num_frames) < 1:
            raise ControlError(f"resample: num_frames must be >= 1, got {num_frames}")
        if rate is None:
            rate = int(num_frames) / self.duration
        rate = float(rate)
        if not (math.isfinite(rate) and rate > 0):
            raise ControlError(f"resample: rate must be a positive number of Hz, got {rate}")
        if num_frames is None:
            num_frames = max(1, round(self.duration * rate))
        n_out = int(num_frames)
        if method == "auto":
            if self.is_class:
                method = "nearest"
            elif self.is_event:
                method = "max"
            else:
                method = "linear" if rate >= self.rate else "area"
        if self.is_class and method not in ("nearest", "max"):
            raise ControlError(
                f"control {self.kind!r} holds class indices: resample it with method 'nearest' "
                f"(or decode it to RMS first), not {method!r}"
            )
        src = self.values
        ratio = self.rate / rate  # source frames per target frame
        centres = (np.arange(n_out, dtype=np.float64) + 0.5) * ratio  # target centres in source-frame units
        if method == "linear":
            out = np.interp(
                centres - 0.5, np.arange(self.num_frames, dtype=np.float64), src.astype(np.float64)
            )
        elif method == "nearest":
            out = src[np.clip(np.floor(centres).astype(np.int64), 0, self.num_frames - 1)]
        elif method == "area":
            out = _area_resample(src.astype(np.float64), ratio, n_out)
        elif method == "max":
            targets = np.floor((np.arange(self.num_frames, dtype=np.float64) + 0.5) / ratio).astype(np.int64)
            keep = (targets >= 0) & (targets < n_out)
            out = np.zeros(n_out, dtype=src.dtype)
            np.maximum.at(out, targets[keep], src[keep])
        else:
            raise ControlError(f"unknown resample method {method!r}; use auto, linear, nearest, area or max")
        return TemporalControl(self.kind, np.asarray(out), rate, self.start, copy.deepcopy(self.meta))

    def to_grid(
        self, seq: SequenceConfig, grid: Grid = "control", *, method: ResampleMethod = "auto"
    ) -> TemporalControl:
        """Resample onto one of a model's time grids and fit it to the clip length of ``seq``.

        Args:
            seq: The model geometry (its ``duration`` sets the number of frames).
            grid: ``control`` (RMS, ``seq.control_rate`` x ``seq.num_control_frames``), ``mel`` / ``energy``
                (``seq.mel_rate`` x ``seq.num_energy_frames``), ``latent`` (``seq.latent_rate`` x
                ``seq.num_latent_frames``) or ``video`` (``seq.video_fps`` x ``seq.num_video_frames``).
            method: Resampling method (see :meth:`resample`).
        """
        grids = ("control", "mel", "energy", "latent", "video")
        if grid not in grids:
            raise ControlError(f"unknown grid {grid!r}; use one of {', '.join(grids)}")
        rate, n = seq.grid(grid)
        out = self if math.isclose(rate, self.rate, rel_tol=1e-12) else self.resample(rate, method=method)
        return out.fit(n)

    # --- length / window --------------------------------------------------------------------------------
    def _pad_value(self, pad: Pad, side: Literal["left", "right"]) -> float:
        if pad == "auto":
            pad = "zero" if (self.is_class or self.is_event) else "edge"
        if pad == "edge":
            return float(self.values[0] if side == "left" else self.values[-1])
        if pad == "zero":
            return 0.0
        if isinstance(pad, int | float) and math.isfinite(float(pad)):
            return float(pad)
        raise ControlError(f"pad must be 'auto', 'edge', 'zero' or a number, got {pad!r}")

    def fit(self, num_frames: int, *, pad: Pad = "auto") -> TemporalControl:
        """Trim or pad at the end to exactly ``num_frames`` frames.

        Args:
            num_frames: Target length (>= 1).
            pad: ``edge`` repeats the last value, ``zero`` pads 0, a number pads that number; ``auto``:
                zero for event and class kinds (silence / no event), edge for continuous ones.
        """
        n = int(num_frames)
        if n < 1:
            raise ControlError(f"fit: num_frames must be >= 1, got {num_frames}")
        if n <= self.num_frames:
            return self.replace(values=self.values[:n].copy())
        fill = np.full(n - self.num_frames, self._pad_value(pad, "right"), dtype=self.values.dtype)
        return self.replace(values=np.concatenate([self.values, fill]))

    def crop(self, start: float, duration: float) -> TemporalControl:
        """The frames covering ``[start, start + duration)`` (absolute seconds, snapped to the grid).

        Raises:
            ControlError: If the window is empty or reaches outside the control (by more than half a frame).
        """
        if not (math.isfinite(start) and math.isfinite(duration) and duration > 0):
            raise ControlError(f"crop: need a finite start and a positive duration, got {start}, {duration}")
        i0 = round((start - self.start) * self.rate)
        n = round(duration * self.rate)
        if n < 1:
            raise ControlError(f"crop: {duration} s is shorter than one frame at {self.rate:g} Hz")
        if i0 < 0 or i0 + n > self.num_frames:
            raise ControlError(
                f"crop [{start:g}, {start + duration:g}) s is outside the control "
                f"[{self.start:g}, {self.end:g}) s"
            )
        return self.replace(values=self.values[i0 : i0 + n].copy(), start=self.start + i0 / self.rate)

    # --- editing (what a sound designer / the web app does) ---------------------------------------------
    def _require_numeric(self, op: str) -> None:
        if self.is_class:
            raise ControlError(
                f"cannot {op} control {self.kind!r}: it holds class indices; decode it first "
                "(foleykit.controls.classes_to_rms) and edit the RMS values"
            )

    def scale(self, factor: float) -> TemporalControl:
        """Multiply the values by ``factor``.

        Note that ``energy`` is a natural-log quantity: to make it ``k`` times louder use
        ``offset(math.log(k))``, not ``scale``.
        """
        self._require_numeric("scale")
        if not math.isfinite(factor):
            raise ControlError(f"scale factor must be finite, got {factor}")
        return self.replace(values=self.values * np.float32(factor))

    def offset(self, delta: float) -> TemporalControl:
        """Add ``delta`` to every value (e.g. ``energy.offset(math.log(2))`` doubles the mel magnitude)."""
        self._require_numeric("offset")
        if not math.isfinite(delta):
            raise ControlError(f"offset must be finite, got {delta}")
        return self.replace(values=self.values + np.float32(delta))

    def shift(self, seconds: float, *, pad: Pad = "auto") -> TemporalControl:
        """Move the content later (``seconds`` > 0) or earlier (< 0), keeping the length and start.

        The shift is rounded to whole frames. Frames uncovered by the move are padded as in :meth:`fit`
        (edge value for continuous kinds, 0 for event and class kinds).
        """
        if not math.isfinite(seconds):
            raise ControlError(f"shift must be finite, got {seconds}")
        k = round(seconds * self.rate)
        n = self.num_frames
        if k == 0:
            return self.replace()
        if abs(k) >= n:
            side: Literal["left", "right"] = "left" if k > 0 else "right"
            return self.replace(values=np.full(n, self._pad_value(pad, side), dtype=self.values.dtype))
        if k > 0:
            fill = np.full(k, self._pad_value(pad, "left"), dtype=self.values.dtype)
            values = np.concatenate([fill, self.values[: n - k]])
        else:
            fill = np.full(-k, self._pad_value(pad, "right"), dtype=self.values.dtype)
            values = np.concatenate([self.values[-k:], fill])
        return self.replace(values=values)

    def smooth(self, seconds: float | None = None, *, frames: int | None = None) -> TemporalControl:
        """Moving average over a window given in seconds or frames (rounded up to an odd frame count).

        Edges repeat the edge value (``mode="nearest"``), so a constant stays constant. A window of one
        frame returns an unchanged copy.
        """
        self._require_numeric("smooth")
        if (seconds is None) == (frames is None):
            raise ControlError("smooth: give either seconds or frames")
        width = round(seconds * self.rate) if seconds is not None else int(frames)
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ControlError(f"smooth: window must be >= 0 seconds, got {seconds}")
        if width < 0:
            raise ControlError(f"smooth: window must be >= 0 frames, got {frames}")
        if width <= 1:
            return self.replace()
        width += 1 - width % 2  # odd: the average stays centred
        from scipy.ndimage import uniform_filter1d

        out = uniform_filter1d(self.values.astype(np.float64), size=width, mode="nearest")
        return self.replace(values=out.astype(np.float32))

    def clip(self, lo: float | None = None, hi: float | None = None) -> TemporalControl:
        """Limit the values to ``[lo, hi]`` (either bound may be None)."""
        if lo is None and hi is None:
            raise ControlError("clip: give lo, hi or both")
        if lo is not None and hi is not None and lo > hi:
            raise ControlError(f"clip: lo ({lo}) must be <= hi ({hi})")
        out = np.clip(self.values, lo, hi)
        return self.replace(values=out.astype(self.values.dtype))

    # --- files and figures ------------------------------------------------------------------------------
    def save(self, path: str | PathLike) -> Path:
        """Write a ``.csv`` (``time,<kind>`` columns) or ``.json`` file atomically; returns the path."""
        from foleykit.controls.files import save_control

        return save_control(self, path)

    @classmethod
    def load(cls, path: str | PathLike) -> TemporalControl:
        """Read a ``.csv`` or ``.json`` control file (see :mod:`foleykit.controls.files`)."""
        from foleykit.controls.files import load_control

        return load_control(path)

    def plot(self, path: str | PathLike, **kwargs: Any) -> Path:
        """Render a PNG figure (see :func:`foleykit.controls.plot.plot_control`); returns the path."""
        from foleykit.controls.plot import plot_control

        return plot_control(self, path, **kwargs)


def _area_resample(src: np.ndarray, ratio: float, n_out: int) -> np.ndarray:
    """Mean of a piecewise-constant source over each target interval ``[j, j+1) * ratio`` (source frames).

    Past the end of the source the last value is held (the integral is extended linearly).
    """
    n = src.shape[0]
    cum = np.concatenate([[0.0], np.cumsum(src)])  # integral up to each source boundary

    def integral(pos: np.ndarray) -> np.ndarray:
        pos = np.maximum(pos, 0.0)
        inside = np.minimum(pos, n)
        k = np.minimum(np.floor(inside).astype(np.int64), n - 1)
        val = cum[k] + src[k] * (inside - k)
        return val + src[-1] * np.maximum(pos - n, 0.0)

    edges = np.arange(n_out + 1, dtype=np.float64) * ratio
    return (integral(edges[1:]) - integral(edges[:-1])) / ratio
