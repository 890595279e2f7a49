"""Onset times and binary onset tracks.

STA-V2A (Ren et al.) sec. II-B1 trains its local video features to predict onset pseudo-labels extracted
from the audio with an onset detection algorithm, at the temporal length of the audio latent; Rhythmic
Foley's temporal adapter is conditioned on a timestamp mask of detected onsets. Both are a binary track:
:func:`onsets` (librosa onset detection -> :func:`onset_track` at the requested rate).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from foleykit.audio import to_mono
from foleykit.config import SequenceConfig
from foleykit.controls.base import TemporalControl
from foleykit.errors import ControlError

#: librosa.onset.onset_detect peak-picking defaults at 22050 Hz (AV-Align), in onset-envelope frames.
PEAK_PICK_DEFAULTS: dict[str, Any] = {
    "delta": 0.07,
    "wait": 1,
    "pre_max": 1,
    "post_max": 1,
    "pre_avg": 4,
    "post_avg": 5,
}


def detect_onsets(wav: np.ndarray | Tensor, sample_rate: int, **onset_detect_kwargs: Any) -> np.ndarray:
    """Onset times in seconds with ``librosa.onset.onset_detect`` (librosa defaults unless overridden).

    Peak picking uses librosa's defaults *as they are at 22050 Hz* (delta 0.07, wait 1, pre_max 1,
    post_max 1, pre_avg 4, post_avg 5 frames; :data:`PEAK_PICK_DEFAULTS`), the AV-Align audio branch. librosa
    derives them from the sample rate (``0.03 * sr // hop``...), which at 16 kHz gives ``wait = pre_max = 0``
    and a double detection per click; fixing them keeps one onset per event at every rate. Onset strength is
    librosa's default spectral flux (128 mels, n_fft 2048, hop 512); times are frame times, so an onset is
    located to within one hop (512 / sample_rate s).

    Args:
        wav: Mono ``(T,)`` or channels-first ``(C, T)`` waveform (channels are averaged).
        sample_rate: Sample rate in Hz.
        **onset_detect_kwargs: Passed to ``librosa.onset.onset_detect`` (e.g. ``delta=0.3``, ``hop_length``,
            ``backtrack``); ``units`` is always ``"time"``.

    Returns:
        ``(K,)`` float64 increasing onset times in seconds.
    """
    import librosa

    x = to_mono(wav)
    if x.shape[0] == 0:
        raise ControlError("detect_onsets: the waveform is empty")
    kwargs = {**PEAK_PICK_DEFAULTS, **onset_detect_kwargs}
    kwargs.pop("units", None)
    if not np.any(x):  # silence: librosa would normalise 0/0
        return np.zeros(0, dtype=np.float64)
    times = librosa.onset.onset_detect(y=x, sr=sample_rate, units="time", **kwargs)
    return np.asarray(times, dtype=np.float64)


def onset_track(
    times: np.ndarray | list[float], *, rate: float, num_frames: int, start: float = 0.0, kind: str = "onsets"
) -> TemporalControl:
    """Binary track with a 1 in the frame that contains each onset time.

    Frame ``i`` covers ``[start + i / rate, start + (i + 1) / rate)``; times outside the track are ignored
    and several onsets in one frame give a single 1.

    Args:
        times: Onset times in seconds.
        rate: Track rate in Hz (e.g. ``SequenceConfig().latent_rate`` = 25 for STA-V2A pseudo-labels).
        num_frames: Track length.
        start: Time of frame 0.
        kind: ``onsets`` (default) or ``events``.

    Returns:
        ``TemporalControl(kind)`` of float32 zeros and ones.
    """
    if num_frames < 1:
        raise ControlError(f"onset_track: num_frames must be >= 1, got {num_frames}")
    if not rate > 0:
        raise ControlError(f"onset_track: rate must be positive, got {rate}")
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(t)):
        raise ControlError("onset_track: onset times must be finite")
    idx = np.floor((t - start) * rate + 1e-9).astype(np.int64)  # tolerate times printed on the frame edge
    idx = idx[(idx >= 0) & (idx < num_frames)]
    values = np.zeros(int(num_frames), dtype=np.float32)
    values[idx] = 1.0
    return TemporalControl(kind, values, float(rate), float(start), {"num_onsets": int(np.unique(idx).size)})


def onsets(
    wav: np.ndarray | Tensor,
    sample_rate: int,
    *,
    rate: float | None = None,
    seq: SequenceConfig | None = None,
    **onset_detect_kwargs: Any,
) -> TemporalControl:
    """Onset pseudo-label track of a waveform (STA-V2A eq. 1 targets / Rhythmic Foley timestamp mask).

    Args:
        wav: Mono ``(T,)`` or channels-first ``(C, T)`` waveform.
        sample_rate: Sample rate in Hz.
        rate: Track rate in Hz; default ``seq.latent_rate`` (the audio latent grid: 25 Hz for AudioLDM).
        seq: Geometry used when ``rate`` is not given (default ``SequenceConfig()``); the track then has
            ``seq.with_duration(T / sample_rate).num_latent_frames`` frames (the latent length of the clip).
            With an explicit rate it has ``round(duration * rate)`` frames (at least 1).
        **onset_detect_kwargs: Passed to :func:`detect_onsets`.

    Returns:
        ``TemporalControl(kind="onsets")``; ``meta["times"]`` keeps the exact onset times in seconds.
    """
    x = to_mono(wav)
    times = detect_onsets(x, sample_rate, **onset_detect_kwargs)
    duration = x.shape[0] / sample_rate
    if rate is None:
        geo = (seq or SequenceConfig()).with_duration(duration)
        rate, num_frames = geo.latent_rate, geo.num_latent_frames
    else:
        num_frames = max(1, (seq or SequenceConfig()).frames_at(rate, duration))
    track = onset_track(times, rate=rate, num_frames=num_frames)
    track.meta.update(
        {"source": "audio", "sample_rate": int(sample_rate), "times": [round(float(t), 6) for t in times]}
    )
    return track
