"""Encoding video files (h264 + AAC) and the audio encoder shared with :mod:`foleykit.media.mux`."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import MediaError
from foleykit.media._core import _resample as _resample_soxr_hq
from foleykit.media.audio import _as_channels_first
from foleykit.utils.io import atomic_path

#: Sample rate of the AAC track written by :func:`mux` (48 kHz plays in every player and browser).
MUX_SAMPLE_RATE = 48000
#: Sample rates the AAC encoder accepts (:func:`write_video` resamples others to 48 kHz).
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_LAYOUTS = {1: "mono", 2: "stereo"}
_VFR_TIME_BASE = Fraction(1, 90000)
_VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".ts")


def _check_video_suffix(path: Path) -> None:
    if path.suffix.lower() not in _VIDEO_SUFFIXES:
        raise MediaError(
            f"{path}: cannot write a video file named {path.suffix or 'without a suffix'}; "
            f"use one of {', '.join(_VIDEO_SUFFIXES)} (.mp4 plays everywhere, .mkv holds any codec)."
        )


def _mux_options(path: Path, faststart: bool) -> dict[str, str]:
    """Muxer options: ``movflags=+faststart`` (index first, for web playback) for the MP4 family."""
    mp4_family = path.suffix.lower() in (".mp4", ".mov", ".m4v", ".m4a")
    return {"movflags": "+faststart"} if faststart and mp4_family else {}


def _resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return wav
    return np.ascontiguousarray(_resample_soxr_hq(wav, orig_sr, target_sr), dtype=np.float32)


class _AudioFeeder:
    """Encodes a ``(C, T)`` waveform chunk by chunk, as far as the video has got (interleaving).

    ``codec`` is ``"aac"`` (mp4/mov/mkv) or ``"libopus"`` (webm); PyAV converts the float frames to the
    encoder's sample format and frame size.
    """

    def __init__(
        self, container: Any, wav: np.ndarray, sample_rate: int, *, offset: float = 0.0, codec: str = "aac"
    ) -> None:
        if wav.shape[0] not in _LAYOUTS:
            raise ValueError(f"audio tracks are written mono or stereo; got {wav.shape[0]} channels")
        self.container, self.wav, self.sr = container, np.clip(wav, -1.0, 1.0), sample_rate
        self.stream = container.add_stream(codec, rate=sample_rate)
        self.stream.layout = _LAYOUTS[wav.shape[0]]
        self.stream.bit_rate = 96000 * wav.shape[0] if sample_rate >= 32000 else 64000 * wav.shape[0]
        self.pos, self.chunk = 0, 1024
        self.pts0 = round(offset * sample_rate)

    def feed_until(self, t: float) -> None:
        """Encode every chunk that starts before time ``t`` (seconds)."""
        import av

        stop = self.wav.shape[1] if math.isinf(t) else min(self.wav.shape[1], math.ceil(t * self.sr))
        while self.pos < stop:
            part = np.ascontiguousarray(self.wav[:, self.pos : self.pos + self.chunk])
            frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=self.stream.layout.name)
            frame.sample_rate, frame.pts, frame.time_base = (
                self.sr,
                self.pts0 + self.pos,
                Fraction(1, self.sr),
            )
            self.container.mux(self.stream.encode(frame))
            self.pos += part.shape[1]

    def finish(self) -> None:
        self.feed_until(math.inf)
        self.container.mux(self.stream.encode(None))


def _prepare_audio(
    audio: np.ndarray, sample_rate: int | None, target_sr: int | None = None
) -> tuple[np.ndarray, int]:
    if sample_rate is None or sample_rate <= 0:
        raise ValueError("sample_rate is required (a positive int) when audio is given")
    wav = _as_channels_first(audio)
    if wav.shape[0] not in _LAYOUTS:
        raise ValueError(f"audio tracks are written mono or stereo; got {wav.shape[0]} channels")
    sr = target_sr or (int(sample_rate) if int(sample_rate) in AAC_RATES else MUX_SAMPLE_RATE)
    return _resample(wav, int(sample_rate), sr), sr


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 18,
    preset: str = "veryfast",
    codec: str = "h264",
    timestamps: np.ndarray | list[float] | None = None,
    end_time: float | None = None,
    rotation: int = 0,
    faststart: bool = False,
) -> Path:
    """Encode RGB frames (+ optional audio) to a video file, atomically.

    h264 (libx264, yuv420p, ``crf``/``preset``) in .mp4/.mov/.mkv; audio as AAC (at ``sample_rate`` when
    AAC supports it, else resampled to 48 kHz). Frames may be a generator, so long clips need not sit in
    memory; audio is interleaved with the picture as it is encoded.

    Args:
        path: Output file (.mp4, .mov or .mkv).
        frames: ``uint8`` RGB ``(T, H, W, 3)``, or an iterable of ``(H, W, 3)``; even H and W for yuv420p.
        fps: Frame rate (constant-rate files; with ``timestamps`` only the last frame's default duration).
        audio: Optional ``float32`` ``(T,)`` or ``(C, T)`` (C <= 2) waveform.
        sample_rate: Sample rate of ``audio``.
        crf: x264 constant rate factor (0 = lossless luma, 18 = visually lossless, 23 = FFmpeg default).
        preset: x264 speed preset.
        codec: ``"h264"`` (libx264) or another FFmpeg encoder name (e.g. ``"mpeg4"``).
        timestamps: Optional per-frame presentation times in seconds (strictly increasing): a variable
            frame-rate file. B-frames are disabled then so the container stores exact frame durations.
        end_time: With ``timestamps``: when the last frame stops being shown (default ``last + 1/fps``).
        rotation: Clockwise display rotation written as a display matrix (0, 90, 180, 270).
        faststart: Put the mp4 index first (web playback; costs one extra pass over the file).

    Returns:
        The path written.
    """
    import av

    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be positive, got {fps}")
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    ts = None
    if timestamps is not None:
        ts = np.asarray(timestamps, dtype=np.float64)
        if ts.ndim != 1 or len(ts) == 0 or np.any(np.diff(ts) <= 0) or ts[0] < 0:
            raise ValueError("timestamps must be a non-empty, strictly increasing 1-D array of seconds >= 0")
        end_time = float(ts[-1] + 1.0 / fps) if end_time is None else float(end_time)
        if end_time <= ts[-1]:
            raise ValueError(f"end_time ({end_time}) must be after the last timestamp ({ts[-1]})")
    wav, sr = _prepare_audio(audio, sample_rate) if audio is not None else (None, None)
    rate = Fraction(fps).limit_denominator(1001)
    encoder = {"h264": "libx264"}.get(codec, codec)
    path = Path(path)
    _check_video_suffix(path)
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), "w", options=_mux_options(path, faststart))
        try:
            stream = container.add_stream(encoder, rate=rate)
            stream.pix_fmt = "yuv420p"
            if encoder == "libx264":
                stream.options = {
                    "crf": str(crf),
                    "preset": preset,
                    **({"x264-params": "bframes=0"} if ts is not None else {}),
                }
            else:
                stream.bit_rate = 4_000_000
            if ts is not None:
                stream.codec_context.time_base = _VFR_TIME_BASE
                stream.time_base = _VFR_TIME_BASE
            if rotation % 360:
                stream.set_display_rotation(-(rotation % 360))  # PyAV takes counter-clockwise degrees
            feeder = _AudioFeeder(container, wav, sr) if wav is not None else None
            durations: dict[int, int] = {}

            def mux_packets(packets: list[Any]) -> None:
                for p in packets:
                    if p.pts is not None and p.pts in durations:
                        p.duration = durations.pop(p.pts)
                    container.mux(p)

            n = 0
            for i, img in enumerate(frames):
                img = np.asarray(img)
                if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                    raise ValueError(f"frame {i}: expected uint8 (H, W, 3) RGB, got {img.dtype} {img.shape}")
                if i == 0:
                    h, w = img.shape[:2]
                    if h % 2 or w % 2:
                        raise ValueError(f"frame size {w}x{h} must have even width and height for yuv420p")
                    stream.width, stream.height = w, h
                elif img.shape[:2] != (h, w):
                    raise ValueError(
                        f"frame {i} is {img.shape[1]}x{img.shape[0]}, the first frame is {w}x{h}"
                    )
                if ts is not None and i >= len(ts):
                    raise ValueError(f"more frames than timestamps ({len(ts)})")
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                if ts is not None:
                    frame.pts, frame.time_base = round(ts[i] / _VFR_TIME_BASE), _VFR_TIME_BASE
                    nxt = ts[i + 1] if i + 1 < len(ts) else end_time
                    durations[frame.pts] = round(nxt / _VFR_TIME_BASE) - frame.pts
                    t = float(ts[i])
                else:
                    frame.pts, t = i, i / float(rate)
                if feeder is not None:
                    feeder.feed_until(t)
                mux_packets(stream.encode(frame))
                n += 1
            if n == 0:
                raise ValueError("write_video needs at least one frame")
            if ts is not None and n != len(ts):
                raise ValueError(f"got {n} frames for {len(ts)} timestamps")
            mux_packets(stream.encode(None))
            if feeder is not None:
                feeder.finish()
        finally:
            container.close()
    return path
