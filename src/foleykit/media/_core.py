"""Shared media machinery: limits, probing, opening files with typed errors, segment checks.

Public names are re-exported by :mod:`foleykit.media`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foleykit.errors import (
    ConfigError,
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaLimitError,
    MediaNotFoundError,
    NotMediaError,
    ZeroDurationError,
)

if TYPE_CHECKING:
    import numpy as np

_EPS = 1e-6  # seconds: a frame whose pts is within _EPS of a target time is "on screen" at that time


# --- limits ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MediaLimits:
    """Largest media a reader accepts (protects servers and laptops from 10-hour 8K uploads).

    Attributes:
        max_duration: Longest segment (seconds) a reader decodes; ``probe`` applies it to the whole file.
        max_pixels: Largest frame area (width x height, orientation-free); default 8K UHD (7680 x 4320).
    """

    max_duration: float = 4 * 3600.0
    max_pixels: int = 7680 * 4320

    @classmethod
    def from_env(cls) -> MediaLimits:
        """Limits from ``FOLEYKIT_MAX_DURATION`` (seconds) and ``FOLEYKIT_MAX_RESOLUTION`` (``WxH`` or a
        pixel count); unset variables keep the defaults."""
        kwargs: dict[str, Any] = {}
        raw = os.environ.get("FOLEYKIT_MAX_DURATION", "").strip()
        if raw:
            try:
                kwargs["max_duration"] = float(raw)
            except ValueError:
                raise ConfigError(
                    f"FOLEYKIT_MAX_DURATION={raw!r} is not a number of seconds (e.g. 600)"
                ) from None
        raw = os.environ.get("FOLEYKIT_MAX_RESOLUTION", "").strip().lower()
        if raw:
            m = re.fullmatch(r"(\d+)\s*[x*]\s*(\d+)", raw)
            if m:
                kwargs["max_pixels"] = int(m.group(1)) * int(m.group(2))
            elif raw.isdigit():
                kwargs["max_pixels"] = int(raw)
            else:
                raise ConfigError(
                    f"FOLEYKIT_MAX_RESOLUTION={raw!r} is not WIDTHxHEIGHT (e.g. 3840x2160) or a pixel count"
                )
        return cls(**kwargs)

    def __post_init__(self) -> None:
        if not (self.max_duration > 0 and self.max_pixels > 0):
            raise ConfigError(f"MediaLimits must be positive, got {self}")

    def check(
        self,
        path: str | os.PathLike,
        *,
        duration: float | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        """Raise :class:`MediaLimitError` when ``duration`` or ``width x height`` is over the limit."""
        if duration is not None and duration > self.max_duration:
            raise MediaLimitError(
                f"{path}: {duration:.1f} s of media is over the limit of {self.max_duration:.1f} s. Read a "
                "shorter segment (start/duration), trim the file, or raise FOLEYKIT_MAX_DURATION (seconds)."
            )
        if width and height and width * height > self.max_pixels:
            raise MediaLimitError(
                f"{path}: {width}x{height} video is over the resolution limit of {self.max_pixels} pixels. "
                "Downscale it first, or raise FOLEYKIT_MAX_RESOLUTION (e.g. 7680x4320)."
            )


def _limits(limits: MediaLimits | None) -> MediaLimits:
    return MediaLimits.from_env() if limits is None else limits


# --- probing -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds. Times in seconds from the start of the file.

    Attributes:
        path: The file.
        format_name: FFmpeg demuxer name (e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"wav"``).
        duration: Duration of the file (longest stream).
        has_video / has_audio: Whether a video / audio stream exists.
        width / height: Frame size as displayed (after rotation); None without video.
        rotation: Clockwise display rotation of the stored picture (0, 90, 180, 270).
        native_fps: Average frame rate (frames / video duration); None without video.
        num_frames: Frame count (from the index, else an estimate); 0 if the stream decodes no frame.
        video_codec / audio_codec: Codec names, or None.
        sample_rate / channels: Of the first audio stream, or None.
        video_duration / audio_duration: End of each stream when known, else None.
    """

    path: Path
    format_name: str
    duration: float
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    native_fps: float | None = None
    num_frames: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    video_duration: float | None = None
    audio_duration: float | None = None


_MAGIC = (  # (offset, bytes, name): recognised containers, to tell "corrupt media" from "not media"
    (4, b"ftyp", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "WAV/AVI"),
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "Ogg"),
    (0, b"ID3", "MP3"),
    (0, b"FLV", "FLV"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"\x30\x26\xb2\x75", "ASF/WMV"),
    (0, b"FORM", "AIFF"),
)


def _sniff(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(400)
    for off, magic, name in _MAGIC:
        if head[off : off + len(magic)] == magic:
            return name
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG-TS"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MPEG audio / ADTS"
    return None


def _open(path: str | os.PathLike) -> Any:
    """Open ``path`` with PyAV, turning every failure into a typed MediaError."""
    import av

    p = Path(path)
    if not p.exists():
        raise MediaNotFoundError(f"{p}: no such file. Check the path (relative paths start at {Path.cwd()}).")
    if not p.is_file():
        raise MediaNotFoundError(f"{p}: is a folder, not a media file. Pass a video or audio file.")
    if p.stat().st_size == 0:
        raise EmptyMediaError(f"{p}: the file is empty (0 bytes). Re-export or re-download it.")
    try:
        return av.open(str(p), metadata_errors="ignore")
    except PermissionError as e:
        raise MediaError(f"{p}: cannot be read ({e}). Check the file's permissions.") from e
    except (av.error.FFmpegError, UnicodeDecodeError, EOFError) as e:
        kind = _sniff(p)
        reason = getattr(e, "strerror", None) or str(e)  # FFmpeg's words without the path a second time
        if kind is not None:
            raise CorruptMediaError(
                f"{p}: looks like a {kind} file but FFmpeg cannot read it ({reason}); it is probably "
                "truncated or corrupt (e.g. an interrupted download or export). Re-export or re-download it."
            ) from e
        raise NotMediaError(
            f"{p}: not a media file FFmpeg can open ({reason}). Pass a video (mp4, mov, mkv, webm...) or an "
            "audio file (wav, flac, mp3, ogg...)."
        ) from e


def _stream_duration(stream: Any) -> float | None:
    """Declared duration of a stream, seconds, or None.

    Matroska's per-track DURATION tag comes first (FFmpeg fills ``stream.duration`` of Matroska tracks
    with an estimate from the container), then the index duration.
    """
    tag = next((v for k, v in stream.metadata.items() if k.upper() == "DURATION"), None)
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag.strip()) if tag else None
    if m:
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _origin(container: Any) -> float:
    """Time 0 of every reader, in the container's clock: the first video frame's pts (files without video:
    the first audio sample). Codec delays (AAC priming in MPEG-TS/Matroska) then do not shift frame times,
    and audio read from the same file stays in sync with the video."""
    for streams in (container.streams.video, container.streams.audio):
        if streams and streams[0].start_time is not None:
            return float(streams[0].start_time * streams[0].time_base)
    return container.start_time / 1e6 if container.start_time is not None else 0.0


def _stream_end(container: Any, stream: Any) -> float | None:
    """Declared end of ``stream`` relative to the file start, or None when the file does not say."""
    dur = _stream_duration(stream)
    if dur is None:
        if len(container.streams) == 1 and container.duration:
            return container.duration / 1e6
        return None
    start = (
        float(stream.start_time * stream.time_base) if stream.start_time is not None else _origin(container)
    )
    return start - _origin(container) + dur


def _wav_declared_duration(path: Path, codec: str, channels: int, sample_rate: int) -> float | None:
    """Duration a PCM .wav header declares (FFmpeg trusts the file size, which hides truncation)."""
    m = re.fullmatch(r"pcm_[suf](\d+)(?:le|be)?", codec)
    if not m or not channels or not sample_rate:
        return None
    with open(path, "rb") as f:
        if f.read(12)[8:12] != b"WAVE":
            return None
        while len(head := f.read(8)) == 8:
            size = int.from_bytes(head[4:], "little")
            if head[:4] == b"data":
                if size in (0, 0xFFFFFFFF):  # streamed / RF64: size unknown here
                    return None
                return size / (channels * int(m.group(1)) // 8) / sample_rate
            f.seek(size + (size & 1), 1)
    return None


def _cw_rotation(frame: Any) -> int:
    """Clockwise display rotation from a decoded frame's display matrix (PyAV reports it counter-clockwise)."""
    return round(-(frame.rotation or 0) / 90.0) * 90 % 360


def _first_frame(path: Path, container: Any, stream: Any) -> tuple[Any, int]:
    """First decoded frame of a video stream (None if it has no packet) and the packets read for it.

    Packets that decode to nothing, or a decoder error, mean a corrupt stream: CorruptMediaError.
    """
    import av

    n_packets = 0
    try:
        for packet in container.demux(stream):
            n_packets += packet.size > 0
            for frame in stream.decode(packet):  # the last (empty) packet flushes the decoder
                return frame, n_packets
    except av.error.FFmpegError as e:
        raise _corrupt(path, 0.0, None, e) from e
    if n_packets:
        raise _corrupt(path, 0.0, None, f"{n_packets} video packets decode to no frame")
    return None, 0


def _info(path: Path, container: Any, *, first_frame: bool = True) -> MediaInfo:
    """Collect MediaInfo from an open container (decodes the first video frame when ``first_frame``)."""
    vs = container.streams.video[0] if container.streams.video else None
    aus = container.streams.audio[0] if container.streams.audio else None
    if vs is None and aus is None:
        raise NotMediaError(f"{path}: has no audio or video stream. Pass a video or audio file.")
    v_end = _stream_end(container, vs) if vs is not None else None
    a_end = _stream_end(container, aus) if aus is not None else None
    if aus is not None and container.format.name == "wav":
        cc = aus.codec_context
        a_end = (
            max(a_end or 0.0, _wav_declared_duration(path, cc.name, cc.channels, cc.sample_rate) or 0.0)
            or None
        )
    duration = container.duration / 1e6 if container.duration else max(v_end or 0.0, a_end or 0.0)
    kw: dict[str, Any] = {}
    if vs is not None:
        rotation, n_packets = 0, 1
        if first_frame:
            frame, n_packets = _first_frame(path, container, vs)
            rotation = _cw_rotation(frame) if frame is not None else 0
        w, h = vs.codec_context.width, vs.codec_context.height
        if rotation in (90, 270):
            w, h = h, w
        rate = vs.average_rate or vs.guessed_rate
        fps = float(rate) if rate else None
        n = vs.frames or (round((v_end or duration) * fps) if fps else None)
        kw.update(
            width=w,
            height=h,
            rotation=rotation,
            native_fps=fps,
            num_frames=n if n_packets else 0,
            video_codec=vs.codec_context.name,
        )
    if aus is not None:
        kw.update(
            audio_codec=aus.codec_context.name,
            sample_rate=aus.codec_context.sample_rate,
            channels=aus.codec_context.channels,
        )
    return MediaInfo(
        path=path,
        format_name=container.format.name,
        duration=duration,
        has_video=vs is not None,
        has_audio=aus is not None,
        video_duration=v_end,
        audio_duration=a_end,
        **kw,
    )


def _probe(path: str | os.PathLike, *, first_frame: bool = True) -> MediaInfo:
    """MediaInfo without limit checks; ``first_frame=False`` skips decoding a frame (rotation then 0)."""
    container = _open(path)
    try:
        return _info(Path(path), container, first_frame=first_frame)
    finally:
        container.close()


def probe(path: str | os.PathLike, *, limits: MediaLimits | None = None) -> MediaInfo:
    """Describe a media file (streams, duration, displayed size, rotation, rates) and check it.

    Decodes at most one video frame (for the rotation matrix).

    Args:
        path: Video or audio file.
        limits: Size limits for the whole file (None: ``MediaLimits.from_env()``).

    Raises:
        MediaNotFoundError, EmptyMediaError, NotMediaError, CorruptMediaError, ZeroDurationError,
        MediaLimitError.
    """
    info = _probe(path)
    if info.duration <= 0:
        raise ZeroDurationError(f"{path}: the file has zero duration (no audio samples or video frames).")
    _limits(limits).check(path, duration=info.duration, width=info.width, height=info.height)
    return info


def _segment(path: str | os.PathLike, start: float, duration: float | None) -> float | None:
    """Validate start/duration; return the requested end (None = to the end of the stream)."""
    if not (math.isfinite(start) and start >= 0):
        raise ValueError(f"start must be a finite number of seconds >= 0, got {start}")
    if duration is None:
        return None
    if not math.isfinite(duration) or duration <= 0:
        raise ZeroDurationError(
            f"{path}: requested duration {duration} s is not positive; ask for duration > 0."
        )
    return start + duration


def _check_start(path: str | os.PathLike, start: float, end: float | None, what: str) -> None:
    if end is not None and start >= end - _EPS:
        raise ZeroDurationError(
            f"{path}: start={start:.3f} s is at or beyond the end of the {what} ({end:.3f} s); "
            "the requested segment is empty. Use a smaller start."
        )


def _corrupt(path: str | os.PathLike, where: float, total: float | None, err: object) -> CorruptMediaError:
    of = f" of {total:.2f} s" if total else ""
    return CorruptMediaError(
        f"{path}: decoding stopped at {where:.2f} s{of} ({err}); the file is truncated or corrupt. "
        "Re-export or re-download it (or read only the segment before that point)."
    )


def _resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``librosa.resample(y, orig_sr=..., target_sr=..., res_type="soxr_hq")`` (time on the last axis), without
    importing librosa (about half a second of start-up): soxr HQ per channel, then cut or zero-padded to
    ``ceil(T * target_sr / orig_sr)`` samples, in ``y``'s dtype (bit-identical to librosa).

    Raises:
        ValueError: non-finite samples (librosa refuses them too).
    """
    import numpy as np
    import soxr

    if orig_sr == target_sr:
        return y
    if not np.issubdtype(y.dtype, np.floating) or not np.isfinite(y).all():
        raise ValueError("audio to resample must be floating point and finite everywhere")
    n_out = int(np.ceil(y.shape[-1] * float(target_sr) / orig_sr))
    if y.size == 0:
        return np.zeros((*y.shape[:-1], n_out), dtype=y.dtype)
    flat = y.reshape(-1, y.shape[-1])
    out = np.zeros((flat.shape[0], n_out), dtype=y.dtype)
    for i, row in enumerate(flat):
        r = soxr.resample(row, orig_sr, target_sr, quality="soxr_hq")
        out[i, : min(n_out, len(r))] = r[:n_out]
    return out.reshape(*y.shape[:-1], n_out)
