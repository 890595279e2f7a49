"""Audio decoding (any audio file or the audio track of a video) and audio file writing."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import NoAudioStreamError, ZeroDurationError
from foleykit.media._core import (
    MediaLimits,
    _check_start,
    _corrupt,
    _limits,
    _open,
    _origin,
    _probe,
    _resample,
    _segment,
)
from foleykit.utils.io import atomic_path

_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63}

#: Highest sample peak a generated soundtrack is given: -1 dBFS, the usual headroom before lossy (AAC) coding.
PEAK_CEILING = 10.0 ** (-1.0 / 20.0)


def headroom_gain(wav: np.ndarray, ceiling: float = PEAK_CEILING) -> float:
    """The gain (<= 1) that brings a waveform's sample peak down to ``ceiling``, to be applied to it as a whole.

    A decoder's output can pass full scale on loud transients; clamping it there flattens exactly the peaks
    that make an impact sound like one (and distorts). One gain for the whole waveform keeps its dynamics as
    generated. A quieter waveform gets 1.0 (never boosted).

    Args:
        wav: Float waveform, any shape.
        ceiling: Largest allowed ``max|wav|``, in (0, 1].

    Raises:
        ValueError: ``ceiling`` out of range, or NaN / infinite samples.
    """
    if not 0 < ceiling <= 1:
        raise ValueError(f"ceiling must be in (0, 1], got {ceiling}")
    x = np.asarray(wav)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not math.isfinite(peak):
        raise ValueError("headroom_gain: the waveform has NaN or infinite samples")
    return 1.0 if peak <= ceiling else ceiling / peak


def _frame_to_float(frame: Any) -> np.ndarray:
    """A decoded PyAV audio frame as ``float32 (C, n)`` in [-1, 1] (the same scaling as soundfile)."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    arr = arr[:, : frame.samples]
    base = frame.format.name.rstrip("p")
    if base == "u8":
        return ((arr.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if base in _SCALE:
        return (arr.astype(np.float64 if base in ("s32", "s64") else np.float32) / _SCALE[base]).astype(
            np.float32
        )
    return arr.astype(np.float32, copy=False)


def read_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int,
    mono: bool = True,
    start: float = 0.0,
    duration: float | None = None,
    limits: MediaLimits | None = None,
) -> np.ndarray:
    """Decode audio at ``sample_rate`` from an audio file or the audio track of a video.

    Decodes with PyAV at the native rate, cuts ``[round(start * sr), + round(duration * sr))`` native samples,
    averages channels for mono, then resamples with ``librosa.resample(res_type="soxr_hq")``: the result
    equals ``librosa.load(path, sr=sample_rate, mono=mono, offset=start, duration=duration)`` for the files
    librosa reads, so metrics computed on either agree.

    Args:
        path: Audio or video file.
        sample_rate: Output sample rate in Hz.
        mono: Average the channels (channel mean) into one.
        start: Segment start in seconds (from the start of the file, so it stays in sync with read_video).
        duration: Segment duration in seconds (None: to the end). A segment past the end is cut there.
        limits: Size limits on the segment duration; None: ``MediaLimits.from_env()``.

    Returns:
        ``float32`` waveform ``(T,)`` when mono, else ``(C, T)``.

    Raises:
        MediaError subclasses: missing/empty/not media/corrupt or truncated file, NoAudioStreamError,
        ZeroDurationError (no samples, empty segment, start beyond the end), MediaLimitError.
    """
    if not (isinstance(sample_rate, (int, np.integer)) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    end = _segment(path, start, duration)
    info = _probe(path, first_frame=False)
    if not info.has_audio:
        raise NoAudioStreamError(
            f"{path}: has no audio stream (a silent video?). Pass a file with sound, e.g. a wav or a video "
            "with an audio track."
        )
    _check_start(path, start, info.audio_duration, "audio")
    seg_end = end if info.audio_duration is None else min(end or math.inf, info.audio_duration)
    lim = _limits(limits)
    lim.check(path, duration=None if seg_end is None else seg_end - start)
    y, native_sr = _decode_audio(path, start=start, duration=duration, declared_end=info.audio_duration)
    lim.check(path, duration=y.shape[1] / native_sr)
    if mono:
        y = y.mean(axis=0)
    if native_sr != sample_rate:
        y = _resample(y, int(native_sr), int(sample_rate))  # == librosa.resample(res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


def _decode_audio(
    path: str | os.PathLike, *, start: float, duration: float | None, declared_end: float | None
) -> tuple[np.ndarray, int]:
    """Native-rate ``float32 (C, T)`` samples of the segment, and the native sample rate."""
    import av

    for attempt_seek in (start > 0, False):
        container = _open(path)
        try:
            stream = container.streams.audio[0]
            sr = int(stream.codec_context.sample_rate)
            origin = _origin(container)
            start_sample = int(np.round(start * sr))
            n_need = None if duration is None else int(np.round(duration * sr))
            if declared_end is not None:  # drop codec padding past the declared end (AAC)
                n_end = int(np.round(declared_end * sr)) - start_sample
                n_need = n_end if n_need is None else min(n_need, n_end)
            if attempt_seek:
                container.seek(int((start + origin) / stream.time_base), stream=stream)
            chunks: list[np.ndarray] = []
            first, have, eof, last_t = None, 0, True, 0.0
            try:
                for frame in container.decode(stream):
                    if frame.samples == 0:
                        continue
                    if first is None:
                        t0 = float(frame.pts * frame.time_base) - origin if frame.pts is not None else 0.0
                        first = int(np.round(t0 * sr))
                        if attempt_seek and first > start_sample:
                            eof = False
                            break  # the seek overshot: decode again from the beginning
                    chunks.append(_frame_to_float(frame))
                    have += frame.samples
                    last_t = (first + have) / sr
                    if n_need is not None and first + have >= start_sample + n_need:
                        eof = False
                        break
            except av.error.FFmpegError as e:
                raise _corrupt(path, last_t, declared_end, e) from e
            if attempt_seek and (first is None or first > start_sample):
                continue
            if first is None:
                raise ZeroDurationError(f"{path}: the audio stream holds no samples (zero duration).")
            if eof and declared_end is not None:
                want = min(declared_end, start + duration if duration is not None else math.inf)
                if want - last_t > max(0.1, 2.0 * chunks[-1].shape[1] / sr):
                    raise _corrupt(path, last_t, declared_end, "the data ends early")
            y = np.concatenate(chunks, axis=1)
            if first > 0:  # the audio starts after the file does: pad so time 0 is the file start
                y = np.concatenate([np.zeros((y.shape[0], first), np.float32), y], axis=1)
                first = 0
            y = y[:, start_sample - first :]
            if n_need is not None:
                y = y[:, :n_need]
            if y.shape[1] == 0:
                raise ZeroDurationError(
                    f"{path}: no audio samples in the requested segment starting at "
                    f"{start:.3f} s; use a smaller start or a longer duration."
                )
            return y, sr
        finally:
            container.close()
    raise ZeroDurationError(
        f"{path}: no audio at or after start={start:.3f} s; use a smaller start."
    )  # pragma: no cover


def _as_channels_first(wav: np.ndarray) -> np.ndarray:
    """``(T,)`` or ``(C, T)`` float audio -> ``float32 (C, T)``; rejects anything else."""
    wav = np.asarray(wav)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2 or wav.shape[0] > 16:
        raise ValueError(f"audio must be (T,) or (C, T) with few channels, got shape {wav.shape}")
    if not np.issubdtype(wav.dtype, np.floating):
        raise ValueError(f"audio must be a float array in [-1, 1], got dtype {wav.dtype}")
    if not np.all(np.isfinite(wav)):
        raise ValueError("audio contains NaN or infinite values")
    return np.ascontiguousarray(wav, dtype=np.float32)


def write_audio(
    path: str | os.PathLike, wav: np.ndarray, sample_rate: int, *, subtype: str | None = None
) -> Path:
    """Write audio atomically with soundfile (.wav, .flac or .ogg).

    Args:
        path: Output file; the format follows the suffix.
        wav: ``float32`` ``(T,)`` or ``(C, T)`` in [-1, 1] (clipped for integer formats).
        sample_rate: Sample rate in Hz.
        subtype: soundfile subtype; default ``PCM_16`` for .wav/.flac (plays everywhere), ``VORBIS`` for
            .ogg. Use ``"FLOAT"`` for a bit-exact float32 .wav.

    Returns:
        The path written.
    """
    import soundfile as sf

    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: write_audio writes .wav, .flac or .ogg, not {path.suffix!r}")
    if not (isinstance(sample_rate, (int, np.integer)) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    y = _as_channels_first(wav)
    subtype = subtype or ("VORBIS" if fmt == "OGG" else "PCM_16")
    if subtype.upper().startswith("PCM") or fmt == "OGG":
        y = np.clip(y, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), y.T, int(sample_rate), subtype=subtype, format=fmt)
    return path
