"""User inputs of a generation, checked with clear messages: the reference sound, timing-control files,
timing taken from a reference recording, and the timing the model predicts from the video over the windows of
a long video (the pipeline's ``encode_video`` / ``predict_controls`` per window, stitched here).

Every function that adapts an input (resampling, padding, trimming a control) returns a human-readable note
that the CLI prints and the sidecar records.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import ControlError, MediaError

#: Shortest reference sound that carries a timbre, in seconds.
MIN_REFERENCE_SECONDS = 0.25
#: Peak level under which a recording counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4
#: A control (or timing recording) must cover at least this fraction of the segment.
MIN_CONTROL_COVERAGE = 0.5


def read_reference_sound(
    path: str | os.PathLike, sample_rate: int, *, what: str = "reference sound"
) -> np.ndarray:
    """Read a sound for ``--audio-prompt`` / ``--control-from-audio`` as ``float32 (T,)`` at ``sample_rate``.

    Raises:
        MediaError subclasses (missing, not audio, no audio track...); MediaError if it is silent or shorter
        than ``MIN_REFERENCE_SECONDS``.
    """
    from foleykit.media import read_audio

    wav = read_audio(path, sample_rate=sample_rate, mono=True)
    seconds = len(wav) / sample_rate
    if seconds < MIN_REFERENCE_SECONDS:
        raise MediaError(
            f"{path}: the {what} lasts {seconds:.3f} s; give at least {MIN_REFERENCE_SECONDS} s of sound"
        )
    peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
    if peak < SILENCE_PEAK:
        raise MediaError(
            f"{path}: the {what} is silent (peak {peak:.1e}); give a recording with audible sound"
        )
    return wav


def adapter_kinds(pipe: Any) -> dict[str, str]:
    """``{adapter name: control kind}`` of a pipeline (empty for models without timing control)."""
    return {name: a.control_kind for name, a in pipe.adapters.items()}


def _matches(kind: str, wanted: str) -> bool:
    return kind == wanted or (wanted == "rms" and kind == "rms_class")


def assign_controls(pipe: Any, controls: list[Any]) -> dict[str, Any]:
    """Map user controls to the model's adapters by kind.

    Raises:
        ControlError: the model takes no timing control, or no adapter follows a control of that kind.
    """
    kinds = adapter_kinds(pipe)
    if controls and not kinds:
        raise ControlError("this model has no timing-control adapter; drop --control / --control-from-audio")
    out: dict[str, Any] = {}
    for c in controls:
        name = next((n for n, k in kinds.items() if _matches(c.kind, k) and n not in out), None)
        if name is None:
            wanted = ", ".join(sorted(set(kinds.values())))
            raise ControlError(
                f"this model follows a {wanted!r} timing control, but the file holds {c.kind!r}. Make one with "
                f"`foleykit controls predict VIDEO -o timing.csv` or `foleykit controls extract SOUND --kind "
                f"{next(iter(kinds.values()))} -o timing.csv`"
            )
        out[name] = c
    return out


def fit_control(control: Any, *, start: float, duration: float, what: str) -> tuple[Any, list[str]]:
    """Place a control on the segment ``[start, start + duration)`` and make it exactly that long.

    A control whose time range covers the segment (absolute times, as written by ``controls predict`` with
    ``--start``) is cropped to it; any other is taken as starting at the segment start. A shorter control is
    padded (continuous kinds repeat the last value, events/classes pad 0), a longer one trimmed; the rate is
    kept (the pipeline resamples to the model's grid).

    Returns:
        ``(control, notes)``; the control starts at ``start``.

    Raises:
        ControlError: it covers less than ``MIN_CONTROL_COVERAGE`` of the segment.
    """
    notes: list[str] = []
    half = 0.5 / control.rate
    end = start + duration
    if control.start <= start + half and control.end >= end - half:
        i0 = round((start - control.start) * control.rate)
        n = max(1, round(duration * control.rate))
        c = control.replace(values=control.values[i0 : i0 + n].copy(), start=start)
        if control.num_frames - c.num_frames > 1:
            notes.append(
                f"{what} covers {control.start:g}-{control.end:g} s; its {start:g}-{end:g} s are used "
                "(the rest is trimmed)"
            )
        return (c.fit(n) if c.num_frames < n else c), notes
    if abs(control.start - start) > half and abs(control.start) > half:
        notes.append(
            f"{what} starts at {control.start:g} s; it is taken as starting at the segment start "
            f"({start:g} s)"
        )
    if control.duration < MIN_CONTROL_COVERAGE * duration:
        raise ControlError(
            f"{what} covers {control.duration:.2f} s, less than half of the {duration:.2f} s to generate. Make it "
            f"cover the video (`foleykit controls predict VIDEO -o timing.csv`) or generate a part with --duration"
        )
    n = max(1, round(duration * control.rate))
    if n > control.num_frames:
        notes.append(
            f"{what} covers {control.duration:.2f} s of {duration:.2f} s; the rest was padded "
            f"({'zeros' if control.is_event or control.is_class else 'last value repeated'})"
        )
    elif n < control.num_frames:
        notes.append(f"{what} covers {control.duration:.2f} s; trimmed to the {duration:.2f} s generated")
    return control.fit(n).replace(start=start), notes


def load_control_file(path: str | os.PathLike) -> Any:
    """Read a ``.csv`` / ``.json`` control file (ControlError with the file and line on any problem)."""
    from foleykit.controls import load_control

    p = Path(path)
    if not p.exists():
        raise ControlError(f"{p}: control file not found")
    return load_control(p)


def rate_note(pipe: Any, name: str, control: Any) -> list[str]:
    """A note when a control is resampled onto the adapter's grid."""
    from foleykit.controls.base import TemporalControl  # noqa: F401  (type only)

    adapter = pipe.adapters[name]
    target = pipe.seq.grid(adapter.grid)[0]
    if abs(control.rate - target) > 1e-6 * target:
        return [f"control {name!r} at {control.rate:g} Hz is resampled to the model's {target:g} Hz"]
    return []


def controls_from_audio(
    pipe: Any, path: str | os.PathLike, *, start: float, duration: float
) -> tuple[dict[str, Any], list[str]]:
    """Timing controls measured on a reference recording (ReWaS's energy_audio mode, any control kind).

    The recording's time 0 is aligned with the segment start.

    Raises:
        MediaError: unreadable, silent or too short recording. ControlError: it covers less than half the segment.
    """
    kinds = adapter_kinds(pipe)
    if not kinds:
        raise ControlError("this model has no timing-control adapter; drop --control-from-audio")
    sr = pipe.seq.sample_rate
    wav = read_reference_sound(path, sr, what="timing recording")
    rec_seq = pipe.seq.with_duration(len(wav) / sr)
    out, notes = {}, []
    for name, kind in kinds.items():
        c = pipe.control_from_audio(kind, wav, sr, rec_seq, 0.0)
        c.meta["input"] = str(path)
        out[name], n = fit_control(
            c.replace(start=start), start=start, duration=duration, what=f"timing recording {Path(path).name}"
        )
        notes += n
    return out, notes


def window_features(
    pipe: Any, video: str | os.PathLike, timings: dict[str, float] | None = None, *, early: Any = None
):
    """``features(window) -> Tensor[1 x T_v x D]``: the pipeline's :meth:`encode_video` features of each
    window, computed once (the frames are decoded at the encoder's size and not kept) and shared by the timing
    prediction and the generation of that window. ``timings`` accumulates ``read_video`` and
    ``video_features`` seconds. ``early``: a :class:`foleykit.product.early.EarlyFeatures` whose result is
    used for the window it computed when it is what :meth:`encode_video` would give (``video_features`` then
    counts the seconds spent waiting for it)."""
    cache: dict[tuple[float, float], Any] = {}

    def features(window: Any) -> Any:
        key = (round(float(window.start), 6), round(float(window.duration), 6))
        if key not in cache and early is not None:
            got = early.take(pipe, video, window.start, window.duration)
            if got is not None:
                import torch

                cache[key] = torch.from_numpy(got)[None].to(pipe.device)
                if timings is not None:
                    timings["video_features"] = timings.get("video_features", 0.0) + early.waited
        if key not in cache:
            cache[key] = pipe.encode_video(
                video, start=window.start, duration=window.duration, timings=timings
            )
        return cache[key]

    return features


def predict_over_windows(
    pipe: Any,
    video: str | os.PathLike,
    windows: list[Any],
    *,
    features: Callable[[Any], Any] | None = None,
    timings: dict[str, float] | None = None,
    expansion: float | None = None,
) -> dict[str, Any]:
    """The model's predicted timing controls over the windows' span: one ``pipe.predict_controls`` per
    window, stitched at the middle of each overlap.

    Args:
        pipe: A pipeline whose adapters' control kinds all have a predictor.
        video: The video file.
        windows: :class:`foleykit.product.windows.Window` list covering the segment.
        features: ``features(window)`` (:func:`window_features`) to use and fill; None computes them here.
        timings: Adds ``timing_prediction`` seconds (the predictors alone) when given.
        expansion: The RMS-Mapper's valley expansion (None: the model's; ``pipe.predict_controls``).

    Returns:
        ``{adapter name: TemporalControl}`` starting at the first window's start, covering the segment.

    Raises:
        ConfigError: the model cannot predict a control it needs, or has no video encoder.
    """
    import time

    from foleykit.controls import TemporalControl

    features = features if features is not None else window_features(pipe, video)
    seg_start, seg_end = windows[0].start, windows[-1].end
    parts: dict[str, list[tuple[float, float, Any]]] = {n: [] for n in pipe.adapters}
    spent = 0.0
    for k, w in enumerate(windows):
        feats = features(w)
        lo = seg_start if k == 0 else 0.5 * (w.start + windows[k - 1].end)
        hi = seg_end if k == len(windows) - 1 else 0.5 * (windows[k + 1].start + w.end)
        t0 = time.perf_counter()
        predicted = pipe.predict_controls(feats, duration=w.duration, start=w.start, expansion=expansion)
        for name, c in predicted.items():
            parts[name].append((lo, hi, c))
        spent += time.perf_counter() - t0
    if timings is not None:
        timings["timing_prediction"] = timings.get("timing_prediction", 0.0) + spent
    out = {}
    for name, pieces in parts.items():
        rate = pieces[0][2].rate
        n = max(1, round((seg_end - seg_start) * rate))
        values = None
        for lo, hi, c in pieces:
            v = c.fit(max(c.num_frames, round((hi - c.start) * rate) + 1)).values
            if values is None:
                values = np.zeros(n, dtype=v.dtype)
            i0, i1 = round((lo - seg_start) * rate), min(n, round((hi - seg_start) * rate))
            j0 = round((lo - c.start) * rate)
            values[i0:i1] = v[j0 : j0 + (i1 - i0)]
        meta = dict(pieces[0][2].meta, input=str(video), windows=len(windows))
        out[name] = TemporalControl(pieces[0][2].kind, values, rate, seg_start, meta)
    return out
