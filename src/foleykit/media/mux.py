"""Putting a new soundtrack on a video: the picture copied untouched where the output container can hold its
codec, else re-encoded frame for frame (same frames, same timestamps) at near-lossless quality.

:func:`plan_mux` decides (cheaply, without writing anything) what :func:`mux_video` will do, so a caller can
say it before a long generation and record it afterwards.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from foleykit.errors import MediaError, NoVideoStreamError, ZeroFramesError
from foleykit.media._core import MediaInfo, _open, _origin, _probe
from foleykit.media.encode import MUX_SAMPLE_RATE, _AudioFeeder, _mux_options, _prepare_audio

log = logging.getLogger(__name__)

#: Output containers of :func:`mux` -> FFmpeg muxer.
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".ts": "mpegts",
}
#: x264 constant rate factor of a re-encoded picture (0 = lossless, 18 = visually lossless).
REENCODE_CRF = 14
#: VP9 constant quality of a re-encoded picture in .webm (0-63, lower is better).
REENCODE_VP9_CRF = 18
#: Sample rates the Opus encoder accepts.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)

VideoMode = Literal["auto", "copy", "encode"]
#: Decoded formats that go through rgb24 before the encoder's YUV (Microsoft Video 1, palettes, old RGB).
_LOW_BIT_RGB = frozenset(
    {"rgb555le", "rgb555be", "rgb565le", "rgb565be", "bgr555le", "bgr565le", "pal8", "rgb8", "bgr8"}
)


@dataclass(frozen=True)
class MuxPlan:
    """What :func:`mux_video` does with each stream.

    Attributes:
        container: Output suffix (``.mp4``...).
        video: ``"copy"`` (packets copied bit for bit) or ``"encode"`` (decoded and re-encoded).
        source_codec: The input's video codec.
        codec: The output's video codec (``source_codec`` when copied, ``h264`` / ``vp9`` when encoded).
        encoder: Encoder and settings of a re-encoded picture (e.g. ``libx264 crf 14 yuv420p``), else None.
        audio_codec: Codec of the new soundtrack (``aac``; ``opus`` in .webm).
        original_audio: ``"copy"`` / ``"encode"`` for the kept source track, None when none is kept.
        reason: Why the picture is re-encoded (None when copied).
    """

    container: str
    video: Literal["copy", "encode"]
    source_codec: str
    codec: str
    encoder: str | None
    audio_codec: str
    original_audio: Literal["copy", "encode"] | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def note(self) -> str | None:
        """A sentence for the user when something is re-encoded, else None."""
        parts = []
        if self.video == "encode":
            parts.append(
                f"the picture is re-encoded as {self.codec} ({self.encoder}; same frames and timestamps): "
                f"{self.reason}"
            )
        if self.original_audio == "encode":
            parts.append(f"the original sound track is re-encoded as {self.audio_codec}")
        return "; ".join(parts) or None


def _audio_codec(suffix: str) -> str:
    return "libopus" if suffix == ".webm" else "aac"


def _codec_name(encoder: str) -> str:
    return {"libopus": "opus", "libx264": "h264", "libvpx-vp9": "vp9"}.get(encoder, encoder)


def _can_hold(suffix: str, streams: list[Any]) -> str | None:
    """None when the container of ``suffix`` can take copies of ``streams``, else FFmpeg's reason.

    Writes only a header into memory (nothing on disk).
    """
    import av

    out = av.open(io.BytesIO(), "w", format=CONTAINERS[suffix])
    try:
        for s in streams:  # opaque: the template's codec id, not an encoder named like its decoder (libdav1d)
            out.add_stream_from_template(s, opaque=True)
        out.start_encoding()
        return None
    except (av.error.FFmpegError, ValueError) as e:
        return str(e)
    finally:
        try:
            out.close()
        except (av.error.FFmpegError, ValueError):  # a header that failed leaves nothing to finish
            pass


def _holders(stream: Any, exclude: str) -> list[str]:
    return [s for s in (".mkv", ".mov", ".mp4", ".webm") if s != exclude and _can_hold(s, [stream]) is None]


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in CONTAINERS:
        raise MediaError(
            f"{path}: cannot write a video file named {path.suffix or 'without a suffix'}; "
            f"use one of {', '.join(CONTAINERS)} (.mp4 plays everywhere)."
        )
    return suffix


def _check_source(video_in: str | os.PathLike) -> MediaInfo:
    info = _probe(video_in)
    if not info.has_video:
        raise NoVideoStreamError(f"{video_in}: has no video stream to put the audio on. Pass a video file.")
    if info.num_frames == 0:
        raise ZeroFramesError(f"{video_in}: the video stream holds no frames. Re-export the video.")
    return info


def plan_mux(
    video_in: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    keep_original_audio: bool = False,
    video: VideoMode = "auto",
) -> MuxPlan:
    """Decide how :func:`mux_video` writes ``out_path`` from ``video_in`` (nothing is written).

    Args:
        video_in: Source video.
        out_path: Output file; its suffix picks the container (.mp4, .m4v, .mov, .mkv, .webm, .ts).
        keep_original_audio: The source's first audio track is kept as a second track (copied when the
            container can hold its codec, else re-encoded like the new track).
        video: ``"auto"``: copy the picture when the container can hold its codec, else re-encode it;
            ``"copy"``: copy or fail; ``"encode"``: always re-encode.

    Raises:
        MediaError: unknown suffix; with ``video="copy"``, a container that cannot hold the codec (the
            message names the containers that can). MediaError subclasses for unusable inputs.
    """
    out_path = Path(out_path)
    suffix = _check_suffix(out_path)
    if video not in ("auto", "copy", "encode"):
        raise ValueError(f"video must be 'auto', 'copy' or 'encode', got {video!r}")
    _check_source(video_in)
    src = _open(video_in)
    try:
        vs = src.streams.video[0]
        orig = src.streams.audio[0] if (keep_original_audio and src.streams.audio) else None
        source_codec = vs.codec_context.codec.canonical_name  # "av1", not the decoder "libdav1d"
        why = _can_hold(suffix, [vs]) if video != "encode" else "re-encoding was asked for"
        if why is not None and video == "copy":
            others = _holders(vs, suffix)
            raise MediaError(
                f"{out_path}: the {suffix} container cannot hold {source_codec} video ({why}). "
                + (f"Use {' or '.join(others)}, which can, " if others else "")
                + "or let the picture be re-encoded."
            )
        original = None
        if orig is not None:
            original = "copy" if _can_hold(suffix, [orig]) is None else "encode"
    finally:
        src.close()
    if why is None:
        return MuxPlan(
            suffix, "copy", source_codec, source_codec, None, _codec_name(_audio_codec(suffix)), original
        )
    encoder = _video_encoder(suffix, _source_size(video_in))
    reason = why if video == "encode" else f"the {suffix} container cannot hold {source_codec} video"
    return MuxPlan(
        suffix,
        "encode",
        source_codec,
        _codec_name(encoder[0]),
        _describe(encoder),
        _codec_name(_audio_codec(suffix)),
        original,
        reason,
    )


def _source_size(video_in: str | os.PathLike) -> tuple[int, int]:
    src = _open(video_in)
    try:
        cc = src.streams.video[0].codec_context
        return int(cc.width), int(cc.height)
    finally:
        src.close()


def _video_encoder(suffix: str, size: tuple[int, int]) -> tuple[str, str, dict[str, str]]:
    """``(encoder, pix_fmt, options)`` for a re-encoded picture in the container of ``suffix``."""
    if suffix == ".webm":
        opts = {"crf": str(REENCODE_VP9_CRF), "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}
        return "libvpx-vp9", "yuv420p", opts
    even = size[0] % 2 == 0 and size[1] % 2 == 0  # 4:2:0 needs even sizes; odd ones keep full chroma
    return "libx264", "yuv420p" if even else "yuv444p", {"crf": str(REENCODE_CRF), "preset": "fast"}


def _describe(encoder: tuple[str, str, dict[str, str]]) -> str:
    name, pix, opts = encoder
    return f"{name} crf {opts['crf']} {pix}"


def _video_end(path: str | os.PathLike, info: MediaInfo) -> float:
    """End of the video stream (declared, else from the packet timestamps), seconds from the file start."""
    if info.video_duration:
        return info.video_duration
    container = _open(path)
    try:
        vs, origin, end = container.streams.video[0], _origin(container), 0.0
        for p in container.demux(vs):
            if p.pts is not None:
                end = max(end, float((p.pts + (p.duration or 0)) * p.time_base) - origin)
        return end
    finally:
        container.close()


def mux(
    video_in: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    out_path: str | os.PathLike,
    *,
    keep_original_audio: bool = False,
    faststart: bool = True,
    video: VideoMode = "auto",
) -> Path:
    """Put a new soundtrack on a video (see :func:`mux_video`); returns ``out_path``."""
    mux_video(
        video_in,
        audio,
        sample_rate,
        out_path,
        keep_original_audio=keep_original_audio,
        faststart=faststart,
        video=video,
    )
    return Path(out_path)


def mux_video(
    video_in: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    out_path: str | os.PathLike,
    *,
    keep_original_audio: bool = False,
    faststart: bool = True,
    video: VideoMode = "auto",
    plan: MuxPlan | None = None,
) -> MuxPlan:
    """Put a new soundtrack on a video and return what was done.

    The picture's packets are copied bit for bit when the output container can hold its codec (rotation
    kept); otherwise (e.g. cinepak, msvideo1 or ProRes into .mp4) every frame is decoded and re-encoded as
    H.264 (``libx264`` crf :data:`REENCODE_CRF`, yuv420p) -- VP9 in .webm -- with the same presentation
    timestamps, frame durations and display rotation. A copy that FFmpeg rejects part-way is retried as a
    re-encode. The new audio is resampled to 48 kHz (``MUX_SAMPLE_RATE``) and encoded as AAC (Opus in
    .webm), padded with silence or trimmed to exactly the video stream's duration. The written file is
    atomic (temporary file in the same folder + rename).

    Args:
        video_in: Source video (any container FFmpeg reads).
        audio: ``float32`` ``(T,)`` or ``(C, T)`` (C <= 2) waveform in [-1, 1].
        sample_rate: Sample rate of ``audio``.
        out_path: Output file (.mp4, .m4v, .mov, .mkv, .webm or .ts).
        keep_original_audio: Also keep the source's first audio track as a second, non-default track
            (copied untouched when the container holds its codec); ignored when the source has no audio.
        faststart: Put the mp4 index first so browsers can start playing before the download ends.
        video: See :func:`plan_mux`.
        plan: A plan from :func:`plan_mux` (computed here when None).

    Returns:
        The :class:`MuxPlan` carried out.

    Raises:
        MediaError subclasses for unusable inputs (NoVideoStreamError, ZeroFramesError...); MediaError for
        an unknown suffix or (``video="copy"``) a container that cannot hold the codec.
    """
    import av

    out_path = Path(out_path)
    plan = plan or plan_mux(video_in, out_path, keep_original_audio=keep_original_audio, video=video)
    info = _check_source(video_in)
    end = _video_end(video_in, info)
    wav, sr = _prepare_audio(audio, sample_rate, MUX_SAMPLE_RATE)
    n = round(end * sr)
    wav = wav[:, :n] if wav.shape[1] >= n else np.pad(wav, ((0, 0), (0, n - wav.shape[1])))
    try:
        _write(video_in, wav, sr, out_path, plan, faststart)
    except (av.error.FFmpegError, ValueError) as e:  # PyAV refuses some templates with ValueError
        if plan.video != "copy" or video == "copy":
            raise MediaError(f"{out_path}: FFmpeg could not write the {plan.container} file ({e})") from e
        log.warning(
            "copying the %s picture into %s failed (%s); re-encoding it", plan.source_codec, out_path, e
        )
        encoder = _video_encoder(plan.container, _source_size(video_in))
        plan = replace(
            plan,
            video="encode",
            codec=_codec_name(encoder[0]),
            encoder=_describe(encoder),
            reason=f"FFmpeg could not copy the {plan.source_codec} picture into {plan.container} ({e})",
        )
        _write(video_in, wav, sr, out_path, plan, faststart)
    return plan


def _original_track(video_in: str | os.PathLike, codec: str) -> tuple[np.ndarray, int]:
    """The source's first audio track decoded for re-encoding, ``(C <= 2, T)`` from the video's time 0."""
    from foleykit.media.audio import read_audio

    info = _probe(video_in, first_frame=False)
    rate = int(info.sample_rate)
    wav = read_audio(video_in, sample_rate=rate, mono=False)
    if wav.shape[0] > 2:
        wav = wav.mean(axis=0, keepdims=True)
    allowed = OPUS_RATES if codec == "libopus" else None
    if allowed is not None and rate not in allowed:
        return _prepare_audio(wav, rate, MUX_SAMPLE_RATE)
    return _prepare_audio(wav, rate)


def _write(
    video_in: str | os.PathLike, wav: np.ndarray, sr: int, out_path: Path, plan: MuxPlan, faststart: bool
) -> None:
    import av

    from foleykit.utils.io import atomic_path

    acodec = _audio_codec(plan.container)
    kept = _original_track(video_in, acodec) if plan.original_audio == "encode" else None
    src = _open(video_in)
    try:
        vs = src.streams.video[0]
        orig = src.streams.audio[0] if plan.original_audio == "copy" else None
        origin = _origin(src)
        rotation = _probe(video_in).rotation if plan.video == "encode" else 0
        with atomic_path(out_path) as tmp:
            out = av.open(str(tmp), "w", options=_mux_options(out_path, faststart))
            try:
                if plan.video == "copy":
                    ov = out.add_stream_from_template(vs, opaque=True)
                    enc = None
                else:
                    enc = _PictureEncoder(out, vs, plan.container)
                    ov = enc.stream
                if rotation:  # a copied stream keeps its display matrix; a new one gets it here
                    ov.set_display_rotation(-rotation)  # PyAV takes counter-clockwise degrees
                feeder = _AudioFeeder(out, wav, sr, offset=origin, codec=acodec)
                feeder.stream.disposition = av.stream.Disposition.default
                oa = out.add_stream_from_template(orig) if orig is not None else None
                second = (
                    _AudioFeeder(out, kept[0], kept[1], offset=origin, codec=acodec)
                    if kept is not None
                    else None
                )
                for s in (oa, second.stream if second is not None else None):
                    if s is not None:
                        s.disposition = av.stream.Disposition(0)
                out.start_encoding()
                streams = [vs] + ([orig] if orig is not None else [])
                for packet in src.demux(streams):
                    if packet.stream.index == vs.index:
                        if enc is not None:
                            for t in enc.add(packet):
                                feeder.feed_until(t - origin)
                                if second is not None:
                                    second.feed_until(t - origin)
                            continue
                        if packet.dts is None and packet.pts is None:
                            continue  # demuxer flush packet
                        if packet.pts is not None:
                            t = float(packet.pts * packet.time_base) - origin
                            feeder.feed_until(t)
                            if second is not None:
                                second.feed_until(t)
                        packet.stream = ov
                    else:
                        if packet.dts is None and packet.pts is None:
                            continue
                        packet.stream = oa
                    out.mux(packet)
                if enc is not None:
                    enc.finish()
                feeder.finish()
                if second is not None:
                    second.finish()
            finally:
                out.close()
    finally:
        src.close()


class _PictureEncoder:
    """Decodes the source's video packets and re-encodes every frame with its own pts and duration."""

    def __init__(self, out: Any, vs: Any, suffix: str) -> None:
        cc = vs.codec_context
        name, pix, opts = _video_encoder(suffix, (cc.width, cc.height))
        rate = vs.average_rate or vs.guessed_rate or 25
        self.out, self.vs = out, vs
        self.stream = out.add_stream(name, rate=rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = cc.width, cc.height, pix
        self.stream.options = opts
        self.stream.codec_context.time_base = vs.time_base
        self.stream.time_base = vs.time_base
        self.default_duration = max(1, round(1 / (float(rate) * float(vs.time_base))))
        self.pending: Any = None
        self.durations: dict[int, int] = {}
        self.last_pts: int | None = None

    def _emit(self, frame: Any, duration: int) -> None:
        self.durations[frame.pts] = duration
        self._mux(self.stream.encode(frame))

    def _mux(self, packets: list[Any]) -> None:
        for p in packets:
            if p.pts is not None and p.pts in self.durations:
                p.duration = self.durations.pop(p.pts)
            self.out.mux(p)

    def _push(self, frame: Any) -> float | None:
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:
            pts = 0 if self.last_pts is None else self.last_pts + self.default_duration
        if self.last_pts is not None and pts <= self.last_pts:
            return None  # a repeated timestamp cannot be stored; the player would not show it either
        if frame.format.name in _LOW_BIT_RGB:  # swscale maps 5-bit 31 to 248, not 255, on the way to YUV
            frame = frame.reformat(format="rgb24")
        frame.pts, self.last_pts = pts, pts
        frame.time_base = self.vs.time_base
        if self.pending is not None:
            self._emit(self.pending, pts - self.pending.pts)
        self.pending = frame
        return float(pts * self.vs.time_base)

    def add(self, packet: Any) -> list[float]:
        """Decode one packet (the flush packet too); returns the times (s) of the frames it gave."""
        times = []
        for frame in self.vs.decode(packet):
            t = self._push(frame)
            if t is not None:
                times.append(t)
        return times

    def finish(self) -> None:
        if self.pending is not None:
            last = int(getattr(self.pending, "duration", 0) or 0)
            self._emit(self.pending, last if last > 0 else self.default_duration)
            self.pending = None
        self._mux(self.stream.encode(None))
