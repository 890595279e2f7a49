"""Factories for test media with known content: any test can build its inputs in ``tmp_path``.

- :func:`make_moving_square_video`: a static textured background and a textured square that jumps at known
  frames, so the optical-flow magnitude between frames ``i-1`` and ``i`` peaks exactly at those ``i``.
- :func:`make_counter_video`: frame ``i`` is a flat grey of level ``5 + 5 i`` (read back with
  :func:`counter_index`) plus a red block in the stored top-left corner: frame identity and orientation
  survive h264, scaling and rotation, for checking resampling, seeking and rotation.
- :func:`make_click_track` / :func:`write_click_track`: decaying clicks starting exactly at given times.
- Bad files: :func:`make_empty_file`, :func:`make_not_media_file`, :func:`make_truncated_copy`,
  :func:`make_audio_only_file`, :func:`make_zero_frame_video`, :func:`make_zero_duration_audio`.
- :func:`make_legacy_codec_video`: Microsoft Video 1 / Cinepak in .avi or .mkv (codecs mp4 cannot hold).

All writers are atomic and return the path they wrote.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from foleykit.utils.io import atomic_path

__all__ = [
    "counter_index",
    "make_audio_only_file",
    "make_click_track",
    "make_counter_video",
    "make_empty_file",
    "make_legacy_codec_video",
    "make_moving_square_frames",
    "make_moving_square_video",
    "make_not_media_file",
    "make_truncated_copy",
    "make_zero_duration_audio",
    "make_zero_frame_video",
    "write_click_track",
]


def _frame_times(fps: float, duration: float, timestamps: Sequence[float] | None) -> tuple[np.ndarray, float]:
    """Frame presentation times and the end time of the last frame."""
    if timestamps is None:
        n = round(duration * fps)
        if n < 1:
            raise ValueError(f"duration {duration} s at {fps} fps gives no frame")
        return np.arange(n) / fps, n / fps
    ts = np.asarray(timestamps, dtype=np.float64)
    if duration <= ts[-1]:
        raise ValueError(f"with timestamps, duration ({duration}) is the end of the last frame: > {ts[-1]}")
    return ts, float(duration)


def _texture(h: int, w: int, seed: int, cell: int) -> np.ndarray:
    """Smooth random colour texture ``uint8 (h, w, 3)``: noise on a coarse grid, bilinearly upsampled."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(30, 225, size=(max(2, h // cell + 2), max(2, w // cell + 2), 3)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def make_moving_square_frames(
    n_frames: int, *, size: tuple[int, int] = (128, 96), move_frames: Sequence[int] = (10, 30)
) -> np.ndarray:
    """Frames of the moving-square video (before encoding).

    The square (side ``min(W, H) // 2``, a checkered texture) sits at a left or a right position and
    switches between them at each index in ``move_frames`` (jump ``max(4, W // 16)`` px), so frame ``i``
    differs from frame ``i - 1`` only when ``i`` is in ``move_frames``. Give non-adjacent indices for
    isolated optical-flow peaks.

    Args:
        n_frames: Number of frames.
        size: ``(width, height)``.
        move_frames: Frame indices (1 .. n_frames - 1) at which the square jumps.

    Returns:
        ``uint8 (n_frames, H, W, 3)``.
    """
    w, h = size
    moves = sorted({int(i) for i in move_frames})
    if any(i < 1 or i >= n_frames for i in moves):
        raise ValueError(f"move_frames must lie in 1..{n_frames - 1}, got {list(move_frames)}")
    side, jump = min(w, h) // 2, max(4, w // 16)
    background = _texture(h, w, seed=1, cell=12)
    square = _texture(side, side, seed=2, cell=3)
    yy, xx = np.mgrid[:side, :side]
    checker = (yy // 4 + xx // 4) % 2 == 1
    square[checker] = 255 - square[checker]  # checkerboard: strong 2-D gradients for optical flow
    x0, y0 = (w - side) // 2 - jump // 2, (h - side) // 2
    out = np.empty((n_frames, h, w, 3), np.uint8)
    pos = 0
    for i in range(n_frames):
        if i in moves:
            pos ^= 1
        out[i] = background
        x = x0 + pos * jump
        out[i, y0 : y0 + side, x : x + side] = square
    return out


def make_moving_square_video(
    path: str | os.PathLike,
    *,
    fps: float = 25.0,
    size: tuple[int, int] = (128, 96),
    duration: float = 2.0,
    move_frames: Sequence[int] = (10, 30),
    audio: np.ndarray | Literal["clicks"] | None = None,
    sample_rate: int = 16000,
    codec: str = "h264",
    rotation: int = 0,
    timestamps: Sequence[float] | None = None,
    crf: int = 12,
    faststart: bool = False,
) -> Path:
    """Write the moving-square video (:func:`make_moving_square_frames`).

    Args:
        path: Output (.mp4, .mov or .mkv).
        fps: Frame rate (constant-rate files: ``round(duration * fps)`` frames at ``i / fps``).
        size: Stored ``(width, height)`` (even numbers).
        duration: Duration in seconds; with ``timestamps`` the end time of the last frame.
        move_frames: Frame indices at which the square jumps.
        audio: None (silent), a ``float32`` waveform at ``sample_rate``, or ``"clicks"``: a click track with
            a click at each jump time (``timestamp of move frame``).
        sample_rate: Audio sample rate.
        codec: ``"h264"`` or ``"mpeg4"``.
        rotation: Clockwise display rotation metadata (0, 90, 180, 270).
        timestamps: Optional explicit frame times in seconds (variable frame rate); one frame each.
        crf: x264 quality (low = nearly lossless, so flow sees only the jumps).
        faststart: mp4 index at the front (a truncated copy then opens and fails part-way).

    Returns:
        ``path``.
    """
    from foleykit.media import write_video

    times, end = _frame_times(fps, duration, timestamps)
    frames = make_moving_square_frames(len(times), size=size, move_frames=move_frames)
    wav = None
    if isinstance(audio, str):
        if audio != "clicks":
            raise ValueError(f"audio must be an array, 'clicks' or None, got {audio!r}")
        wav = make_click_track([times[i] for i in move_frames], sample_rate=sample_rate, duration=end)
    elif audio is not None:
        wav = np.asarray(audio, dtype=np.float32)
    return write_video(
        path,
        frames,
        fps,
        audio=wav,
        sample_rate=sample_rate,
        crf=crf,
        codec=codec,
        timestamps=times if timestamps is not None else None,
        end_time=end if timestamps is not None else None,
        rotation=rotation,
        faststart=faststart,
    )


def make_counter_video(
    path: str | os.PathLike,
    *,
    fps: float = 25.0,
    size: tuple[int, int] = (64, 48),
    duration: float = 2.0,
    timestamps: Sequence[float] | None = None,
    rotation: int = 0,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    codec: str = "h264",
    faststart: bool = False,
) -> Path:
    """Write a video whose frame ``i`` is flat grey ``5 + 5 i`` with a red block in the stored top-left.

    At most 50 frames (levels 5 apart: h264 and swscale rounding moves them by <= 2). :func:`counter_index` reads ``i`` back from a decoded frame (any size/orientation);
    the red block (a quarter of width and height) shows where the stored top-left corner went.

    Args:
        path: Output (.mp4, .mov or .mkv).
        fps, duration, timestamps, rotation, audio, sample_rate, codec, faststart: As in
            :func:`make_moving_square_video` (``"mpeg4"`` puts a key frame every 12 frames: seeking).
        size: Stored ``(width, height)`` (even numbers).

    Returns:
        ``path``.
    """
    from foleykit.media import write_video

    times, end = _frame_times(fps, duration, timestamps)
    if len(times) > 50:
        raise ValueError(f"a counter video holds at most 50 frames, asked for {len(times)}")
    w, h = size
    frames = np.empty((len(times), h, w, 3), np.uint8)
    for i in range(len(times)):
        frames[i] = 5 + 5 * i
        frames[i, : h // 4, : w // 4] = (220, 20, 20)
    return write_video(
        path,
        frames,
        fps,
        audio=audio,
        sample_rate=sample_rate,
        crf=0,
        codec=codec,
        timestamps=times if timestamps is not None else None,
        end_time=end if timestamps is not None else None,
        rotation=rotation,
        faststart=faststart,
    )


def counter_index(frame: np.ndarray) -> int:
    """Index of a decoded :func:`make_counter_video` frame ``uint8 (H, W, 3)`` (median green level)."""
    return round((float(np.median(frame[..., 1])) - 5.0) / 5.0)


def make_click_track(
    click_times: Sequence[float], *, sample_rate: int, duration: float, amplitude: float = 0.9
) -> np.ndarray:
    """Silence with a short decaying broadband click starting exactly at each time.

    Click ``n`` samples after its start: ``amplitude * s[n] * exp(-n / (3 ms))`` for 15 ms, with ``s`` a
    fixed random +-1 sequence and ``s[0] = +1``, so sample ``round(t * sample_rate)`` is the first non-zero
    one and equals ``amplitude``. Overlapping clicks add (clipped to [-1, 1]).

    Args:
        click_times: Onset times in seconds (within ``[0, duration)``).
        sample_rate: Sample rate in Hz.
        duration: Length in seconds (``round(duration * sample_rate)`` samples).
        amplitude: Peak value.

    Returns:
        ``float32 (T,)``.
    """
    n = round(duration * sample_rate)
    y = np.zeros(n, np.float32)
    length = max(1, round(0.015 * sample_rate))
    k = np.arange(length)
    sign = np.where(np.random.default_rng(0).random(length) < 0.5, -1.0, 1.0)
    sign[0] = 1.0
    click = (amplitude * sign * np.exp(-k / (0.003 * sample_rate))).astype(np.float32)
    for t in click_times:
        i = round(float(t) * sample_rate)
        if not 0 <= i < n:
            raise ValueError(f"click time {t} s is outside [0, {duration}) s")
        m = min(length, n - i)
        y[i : i + m] += click[:m]
    return np.clip(y, -1.0, 1.0)


def write_click_track(
    path: str | os.PathLike,
    click_times: Sequence[float],
    *,
    sample_rate: int,
    duration: float,
    amplitude: float = 0.9,
    subtype: str = "FLOAT",
) -> Path:
    """Write :func:`make_click_track` to a .wav/.flac (float .wav by default: bit-exact) and return the path."""
    from foleykit.media import write_audio

    wav = make_click_track(click_times, sample_rate=sample_rate, duration=duration, amplitude=amplitude)
    return write_audio(path, wav, sample_rate, subtype=subtype)


# --- bad files ---------------------------------------------------------------------------------------
def make_empty_file(path: str | os.PathLike) -> Path:
    """A zero-byte file (e.g. ``x.mp4``): readers raise ``EmptyMediaError``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"")
    return Path(path)


def make_not_media_file(path: str | os.PathLike) -> Path:
    """A text file (whatever its suffix): readers raise ``NotMediaError``."""
    with atomic_path(path) as tmp:
        tmp.write_text("This is a text file, not a video.\n" * 20, encoding="utf-8")
    return Path(path)


def make_truncated_copy(src: str | os.PathLike, dst: str | os.PathLike, keep_fraction: float = 0.5) -> Path:
    """Copy the first ``keep_fraction`` of ``src``'s bytes to ``dst`` (an interrupted download).

    A plain mp4 (index at the end) then fails to open; a ``faststart`` mp4 or a .mkv opens and its data
    ends early: both give ``CorruptMediaError``.
    """
    if not 0 < keep_fraction < 1:
        raise ValueError(f"keep_fraction must be in (0, 1), got {keep_fraction}")
    data = Path(src).read_bytes()
    with atomic_path(dst) as tmp:
        tmp.write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(dst)


def make_audio_only_file(
    path: str | os.PathLike,
    *,
    sample_rate: int = 16000,
    duration: float = 1.0,
    click_times: Sequence[float] = (0.25,),
) -> Path:
    """An audio-only file (.wav/.flac via soundfile, .m4a/.mp4 as AAC) holding a click track.

    ``read_video`` on it raises ``NoVideoStreamError``.
    """
    wav = make_click_track(click_times, sample_rate=sample_rate, duration=duration)
    if Path(path).suffix.lower() in (".wav", ".flac", ".ogg"):
        from foleykit.media import write_audio

        return write_audio(path, wav, sample_rate)
    import av

    from foleykit.media.encode import _AudioFeeder

    with atomic_path(path) as tmp:
        container = av.open(str(tmp), "w", format="mp4" if Path(path).suffix.lower() == ".m4a" else None)
        try:
            _AudioFeeder(container, wav[None], sample_rate).finish()
        finally:
            container.close()
    return Path(path)


def make_zero_frame_video(
    path: str | os.PathLike, *, sample_rate: int = 16000, duration: float = 1.0
) -> Path:
    """A Matroska file (use a .mkv path) with an h264 video stream holding no frame, plus 1 s of AAC.

    (An mp4 drops empty tracks, so only Matroska keeps a frameless video stream.) ``read_video`` raises
    ``ZeroFramesError``; ``read_audio`` works.
    """
    import av

    from foleykit.media.encode import _AudioFeeder

    if Path(path).suffix.lower() != ".mkv":
        raise ValueError(f"make_zero_frame_video writes Matroska: give a .mkv path, not {path}")
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), "w")
        try:
            video = container.add_stream("libx264", rate=25)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
            _AudioFeeder(
                container, np.zeros((1, round(duration * sample_rate)), np.float32), sample_rate
            ).finish()
        finally:
            container.close()
    return Path(path)


def make_zero_duration_audio(path: str | os.PathLike, *, sample_rate: int = 16000) -> Path:
    """A valid .wav/.flac with zero samples: readers raise ``ZeroDurationError``."""
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.zeros(0, np.float32), sample_rate)
    return Path(path)


# --- legacy codecs -------------------------------------------------------------------------------------
#: Legacy codecs :func:`make_legacy_codec_video` writes: encoder pixel format, BITMAPINFOHEADER bits, FourCC.
LEGACY_CODECS = {"msvideo1": ("rgb555le", 16, b"CRAM"), "cinepak": ("rgb24", 24, b"cvid")}


def make_legacy_codec_video(
    path: str | os.PathLike,
    *,
    codec: Literal["msvideo1", "cinepak"] = "msvideo1",
    fps: float = 20,
    size: tuple[int, int] = (320, 240),
    duration: float = 1.0,
    move_frames: Sequence[int] = (5,),
) -> Path:
    """A video in an old Video-for-Windows codec (Microsoft Video 1 or Cinepak) that mp4 cannot hold.

    ``.avi`` is written by PyAV; ``.mkv`` is written here as Matroska with a ``V_MS/VFW/FOURCC`` track (the
    layout ``ffmpeg -i old.avi -c copy old.mkv`` and mkvmerge produce; FFmpeg's muxer API refuses these codecs
    in Matroska, so no PyAV-written mkv can carry them). The frames are :func:`make_moving_square_frames`.
    """
    import av

    pix_fmt, bits, fourcc = LEGACY_CODECS[codec]
    n = max(1, round(duration * fps))
    frames = make_moving_square_frames(n, size=size, move_frames=move_frames)
    suffix = Path(path).suffix.lower()
    if suffix not in (".avi", ".mkv"):
        raise ValueError(f"make_legacy_codec_video writes .avi or .mkv, not {path}")
    with atomic_path(path) as tmp:
        if suffix == ".avi":
            container = av.open(str(tmp), "w", format="avi")
            encoder = container.add_stream(codec, rate=fps)
        else:
            container, encoder = None, av.CodecContext.create(codec, "w")
            encoder.time_base = Fraction(1, 1) / Fraction(fps).limit_denominator(1001)
        encoder.width, encoder.height, encoder.pix_fmt = size[0], size[1], pix_fmt
        packets = []
        try:
            for i, img in enumerate([*frames, None]):  # None flushes the encoder
                frame = None
                if img is not None:
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                    frame.pts = i
                for p in encoder.encode(frame):
                    if container is not None:
                        container.mux(p)
                    else:
                        packets.append((int(p.pts), bool(p.is_keyframe), bytes(p)))
        finally:
            if container is not None:
                container.close()
        if container is None:
            tmp.write_bytes(_matroska_vfw(packets, fps, size, bits, fourcc))
    return Path(path)


def _ebml(element_id: int, payload: bytes) -> bytes:
    """One EBML element: its ID bytes, an 8-byte size, the payload."""
    head = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    return head + (0x01 << 56 | len(payload)).to_bytes(8, "big") + payload


def _uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _matroska_vfw(
    packets: list[tuple[int, bool, bytes]], fps: float, size: tuple[int, int], bits: int, fourcc: bytes
) -> bytes:
    """A minimal Matroska file with one ``V_MS/VFW/FOURCC`` video track holding ``packets`` (pts in frames)."""
    import struct

    frame_ms = 1000.0 / fps
    header = _ebml(
        0x1A45DFA3,
        _ebml(0x4286, _uint(1))
        + _ebml(0x42F7, _uint(1))
        + _ebml(0x42F2, _uint(4))
        + _ebml(0x42F3, _uint(8))
        + _ebml(0x4282, b"matroska")
        + _ebml(0x4287, _uint(4))
        + _ebml(0x4285, _uint(2)),
    )
    duration = struct.pack(">d", (max(p[0] for p in packets) + 1) * frame_ms)
    info = _ebml(
        0x1549A966,
        _ebml(0x2AD7B1, _uint(1_000_000))
        + _ebml(0x4D80, b"foleykit.testing")
        + _ebml(0x5741, b"foleykit")
        + _ebml(0x4489, duration),
    )
    bih = struct.pack("<IiiHH4sIiiII", 40, size[0], size[1], 1, bits, fourcc, 0, 0, 0, 0, 0)
    video = _ebml(0xE0, _ebml(0xB0, _uint(size[0])) + _ebml(0xBA, _uint(size[1])))
    track = _ebml(
        0xAE,
        _ebml(0xD7, _uint(1))
        + _ebml(0x73C5, _uint(1))
        + _ebml(0x83, _uint(1))
        + _ebml(0x86, b"V_MS/VFW/FOURCC")
        + _ebml(0x63A2, bih)
        + _ebml(0x23E383, _uint(round(1e9 / fps)))
        + video,
    )
    clusters = b""
    for c0 in range(0, len(packets), 100):  # block times are int16 ms relative to their cluster
        part = packets[c0 : c0 + 100]
        base = round(part[0][0] * frame_ms)
        blocks = b"".join(
            _ebml(
                0xA3,
                b"\x81"
                + struct.pack(">h", round(pts * frame_ms) - base)
                + (b"\x80" if key else b"\x00")
                + data,
            )
            for pts, key, data in part
        )
        clusters += _ebml(0x1F43B675, _ebml(0xE7, _uint(base)) + blocks)
    return header + _ebml(0x18538067, info + _ebml(0x1654AE6B, track) + clusters)
