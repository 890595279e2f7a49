"""Video decoding: constant-rate resampling by presentation timestamps, rotation, decoder-side scaling."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from foleykit.errors import NoVideoStreamError, ZeroDurationError, ZeroFramesError
from foleykit.media._core import (
    _EPS,
    MediaInfo,
    MediaLimits,
    _check_start,
    _corrupt,
    _limits,
    _open,
    _origin,
    _probe,
    _segment,
)


@dataclass
class VideoClip:
    """Decoded video frames.

    Attributes:
        frames: ``uint8`` RGB frames ``(T, H, W, 3)`` as displayed.
        timestamps: ``float64`` ``(T,)`` seconds from the start of the file.
        fps: Output frame rate (the requested one, or the native average rate when not resampled).
        native_fps: The file's average frame rate.
        duration: Duration of the returned segment in seconds (``T / fps`` when resampled).
        info: The file's :class:`MediaInfo`.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    fps: float
    native_fps: float
    duration: float
    info: MediaInfo

    def __len__(self) -> int:
        return len(self.frames)


def _output_size(info: MediaInfo, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """Displayed (width, height) of the output frames."""
    w, h = int(info.width or 0), int(info.height or 0)
    if size is None:
        return w, h
    if isinstance(size, (int, np.integer)):
        if size < 2:
            raise ValueError(f"size (short side) must be >= 2 pixels, got {size}")
        scale = size / min(w, h)
        even = lambda x: max(2, 2 * round(x / 2))
        return (even(size), even(h * scale)) if w <= h else (even(w * scale), even(size))
    ow, oh = (int(v) for v in size)
    if ow < 1 or oh < 1:
        raise ValueError(f"size (width, height) must be positive, got {size}")
    return ow, oh


def _frame_time(frame: Any, origin: float) -> float | None:
    pts = frame.pts if frame.pts is not None else frame.dts
    return None if pts is None else float(pts * frame.time_base) - origin


def read_video(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    size: int | tuple[int, int] | None = None,
    start: float = 0.0,
    duration: float | None = None,
    limits: MediaLimits | None = None,
) -> VideoClip:
    """Decode video frames, resampled to a constant rate by presentation timestamps.

    With ``fps``, output frame ``k`` (``k = 0 .. round(D * fps) - 1``, ``D`` the segment duration) shows
    the frame on screen at ``t_k = start + k / fps``: the latest frame with ``pts <= t_k`` (the first frame
    for times before it). Variable-frame-rate and low-fps inputs therefore keep their true duration. With
    ``fps=None`` the native frames with ``start <= pts < start + duration`` are returned with their real
    timestamps. A segment reaching past the end of the video is cut at the end.

    Only what is needed is decoded: seek to the key frame before ``start``, stop after the segment, threaded
    decoding, and only the frames that are output are scaled/converted (in swscale, not numpy).

    Args:
        path: Video file.
        fps: Output frame rate, or None for native frames.
        size: Output size as displayed: an int is the short side (aspect kept, even width and height);
            ``(width, height)`` is exact. None keeps the displayed size.
        start: Segment start in seconds.
        duration: Segment duration in seconds (None: to the end).
        limits: Size limits (segment duration, resolution); None: ``MediaLimits.from_env()``.

    Returns:
        A :class:`VideoClip` (frames ``uint8 (T, H, W, 3)``).

    Raises:
        MediaError subclasses: missing/empty/not media/corrupt or truncated file, NoVideoStreamError,
        ZeroFramesError, ZeroDurationError (empty segment or start beyond the end), MediaLimitError.
    """
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    end = _segment(path, start, duration)
    info = _probe(path)
    if not info.has_video:
        raise NoVideoStreamError(
            f"{path}: has no video stream (it is an audio-only file); this needs a video file"
        )
    if info.num_frames == 0:
        raise ZeroFramesError(f"{path}: the video stream contains no frames. Re-export the video.")
    _check_start(path, start, info.video_duration, "video")
    if info.video_duration is not None:
        end = info.video_duration if end is None else min(end, info.video_duration)
    lim = _limits(limits)
    lim.check(path, duration=(end - start) if end is not None else None, width=info.width, height=info.height)
    out_w, out_h = _output_size(info, size)
    clip = _decode_video(path, info, fps=fps, out_size=(out_w, out_h), start=start, end=end)
    lim.check(path, duration=clip.duration)
    return clip


class _FrameBuffer:
    """Growable ``uint8 (N, H, W, 3)`` array (a list + np.stack would double the peak memory)."""

    def __init__(self, capacity: int, size: tuple[int, int]) -> None:
        self.buf = np.empty((max(1, capacity), size[1], size[0], 3), np.uint8)
        self.n = 0

    def append(self, img: np.ndarray) -> None:
        if self.n == len(self.buf):
            self.buf = np.concatenate([self.buf, np.empty_like(self.buf)])
        self.buf[self.n] = img
        self.n += 1

    def array(self, n: int | None = None) -> np.ndarray:
        return self.buf[: self.n if n is None else min(n, self.n)]


def _decode_video(
    path: str | os.PathLike,
    info: MediaInfo,
    *,
    fps: float | None,
    out_size: tuple[int, int],
    start: float,
    end: float | None,
) -> VideoClip:
    import av
    from av.video.reformatter import VideoReformatter

    k_rot = -(info.rotation // 90)  # np.rot90 turns counter-clockwise for positive k
    sw, sh = out_size if info.rotation in (0, 180) else out_size[::-1]  # stored orientation for swscale
    reformatter = VideoReformatter()  # one swscale context for the whole clip (5x faster than per frame)
    cache: list[Any] = [None, None]  # (frame, converted image): a frame shown k times is converted once

    def convert(frame: Any) -> np.ndarray:
        if cache[0] is not frame:
            img = reformatter.reformat(frame, width=sw, height=sh, format="rgb24", interpolation="AREA")
            img = img.to_ndarray()
            cache[:] = [frame, np.rot90(img, k_rot) if k_rot % 4 else img]
        return cache[1]

    nominal = 1.0 / (info.native_fps or 25.0)
    n_out = None if (fps is None or end is None) else round((end - start) * fps)
    if n_out is not None and n_out < 1:
        raise ZeroDurationError(
            f"{path}: the requested segment ({end - start:.3f} s) is shorter than one "
            f"frame at {fps} fps; ask for a longer duration."
        )
    for attempt_seek in (start > 0, False):
        container = _open(path)
        try:
            vs = container.streams.video[0]
            vs.thread_type = "AUTO"
            origin = _origin(container)
            if attempt_seek:
                container.seek(int((start + origin) / vs.time_base), stream=vs)
            span = (end if end is not None else info.video_duration or 0.0) - start
            frames = _FrameBuffer(n_out or round(span * (info.native_fps or 25.0)) + 2, out_size)
            times: list[float] = []
            k, prev, last_t, last_end, n_seen, eof = 0, None, None, None, 0, True
            try:
                for frame in container.decode(vs):
                    t = _frame_time(frame, origin)
                    if t is None:
                        t = last_t + nominal if last_t is not None else 0.0
                    if n_seen == 0 and attempt_seek and t > start + _EPS:
                        eof = False
                        break  # the seek overshot: decode again from the beginning
                    n_seen += 1
                    if fps is None:
                        if end is not None and t >= end - _EPS:
                            eof = False
                            break
                        if t >= start - _EPS:
                            frames.append(convert(frame))
                            times.append(t)
                    else:
                        while (n_out is None or k < n_out) and start + k / fps < t - _EPS:
                            frames.append(convert(prev if prev is not None else frame))
                            k += 1
                        if n_out is not None and k >= n_out:
                            eof = False
                            break
                        if prev is None or t >= last_t - _EPS:  # out-of-order pts: keep the later frame
                            prev = frame
                    last_t = t if last_t is None else max(last_t, t)
                    dur = float(frame.duration * frame.time_base) if frame.duration else 0.0
                    last_end = max(last_end or 0.0, t + (dur or nominal))
            except av.error.FFmpegError as e:
                raise _corrupt(path, last_t or 0.0, info.video_duration, e) from e
            if n_seen == 0 and attempt_seek:
                continue
            if n_seen == 0:
                raise ZeroFramesError(f"{path}: the video stream decodes to no frames. Re-export the video.")
            if eof:
                # Stopped at the end of the data: did it go as far as the file says it does?
                tol = max(0.1, 1.5 * nominal)
                want = min(end if end is not None else math.inf, info.video_duration or 0.0)
                if want - last_end > tol:
                    raise _corrupt(path, last_end, info.video_duration, "the data ends early")
            if fps is not None:
                if n_out is None or (eof and info.video_duration is None):  # end known only now
                    n_end = max(1, round((last_end - start) * fps))
                    n_out = n_end if n_out is None else min(n_out, n_end)
                while k < n_out:
                    frames.append(convert(prev))
                    k += 1
                times = list(start + np.arange(n_out) / fps)
                seg = n_out / fps
            else:
                if not frames.n:
                    raise ZeroDurationError(
                        f"{path}: no frame lies in the requested segment starting at "
                        f"{start:.3f} s; ask for a longer duration."
                    )
                seg = (end if end is not None else last_end) - start
            native = info.native_fps or frames.n / seg
            return VideoClip(
                frames=frames.array(n_out),
                timestamps=np.asarray(times, dtype=np.float64),
                fps=float(fps if fps is not None else native),
                native_fps=float(native),
                duration=float(seg),
                info=info,
            )
        finally:
            container.close()
    raise ZeroDurationError(f"{path}: no frame at or after start={start:.3f} s; use a smaller start.")
