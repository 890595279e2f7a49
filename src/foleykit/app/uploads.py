"""The web app's checks of what a client sends: uploads (size, type by content, names) and messages.

- :func:`accept_upload`: an upload already confined to the working folder is checked for size and content — a
  video or sound must be a media file FFmpeg reads with the right stream (probed with PyAV, whatever its name
  says), a timing file UTF-8 text (CSV or JSON, told apart by its first character) — and then hard-linked (or
  copied) into the session folder as ``<kind>-<digest><ext>``: the extension comes from the content, the name
  from the app, so a client's file name never becomes a path the app works with.
- :func:`public_message`: a message for the page and the log without server paths (every absolute path is
  reduced to its file name).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

from foleykit.errors import FoleykitError

#: File extension of each FFmpeg demuxer (PyAV's ``format_name``: the first name of the list).
DEMUXER_EXT = {
    "mov": ".mp4",
    "matroska": ".mkv",
    "avi": ".avi",
    "mpegts": ".ts",
    "mpeg": ".mpg",
    "flv": ".flv",
    "asf": ".wmv",
    "wav": ".wav",
    "flac": ".flac",
    "mp3": ".mp3",
    "ogg": ".ogg",
    "aiff": ".aiff",
    "aac": ".aac",
    "w64": ".w64",
}
#: Largest timing file read (a 10-minute curve at 1 kHz as CSV is ~10 MB).
MAX_TIMING_BYTES = 16 << 20
_PATH = re.compile(r"(?<![\w.:/~-])(?:[A-Za-z]:)?[/\\](?:[^\s/\\'\"`,;:()<>|]+[/\\])+([^\s/\\'\"`,;:()<>|]*)")


class UserError(FoleykitError):
    """A problem with what the user gave the app (shown in the page)."""


def public_message(text: str) -> str:
    """``text`` with every absolute path replaced by its last part (``/srv/app/uploads/ab/clip.mp4`` ->
    ``clip.mp4``), for the page and the log."""
    return _PATH.sub(lambda m: m.group(1) or "(folder)", str(text))


def _digest(src: Path) -> str:
    st = src.stat()
    return hashlib.sha1(f"{src}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:12]


def _timing_ext(src: Path, what: str) -> str:
    with open(src, "rb") as f:
        data = f.read(MAX_TIMING_BYTES + 1)
    if len(data) > MAX_TIMING_BYTES:
        raise UserError(
            f"the {what} is larger than {MAX_TIMING_BYTES >> 20} MB; a timing curve is a small file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise UserError(f"the {what} is not a text file; upload a .csv (time,<kind>) or .json timing file")
    return ".json" if text.lstrip()[:1] in ("{", "[") else ".csv"


def _media_ext(info: Any) -> str:
    return DEMUXER_EXT.get(str(info.format_name).split(",")[0], ".media")


def accept_upload(src: Path, kind: str, into: Path, *, max_bytes: int, what: str) -> tuple[Path, Any]:
    """Check an upload and link it into ``into`` under the app's own name.

    Args:
        src: The uploaded file (already resolved and inside the working folder).
        kind: ``video`` (a video stream is required), ``audio`` (an audio stream) or ``timing`` (text).
        into: The session's input folder (created).
        max_bytes: Upload size limit.
        what: Human name for messages.

    Returns:
        ``(path, info)``: the session's copy and the media info (None for timing files).

    Raises:
        UserError: too large, empty, or not what it should be; MediaError: a media file FFmpeg cannot read.
    """
    size = src.stat().st_size
    if size > max_bytes:
        raise UserError(
            f"the {what} is {size / (1 << 20):.1f} MB; this app accepts uploads up to {max_bytes >> 20} MB"
        )
    if size == 0:
        raise UserError(f"the {what} is empty (0 bytes); upload it again")
    info = None
    if kind == "timing":
        ext = _timing_ext(src, what)
    elif kind == "video":
        from foleykit.product.generate import check_video

        info = check_video(src)
        ext = _media_ext(info)
    elif kind == "audio":
        from foleykit.media import probe

        info = probe(src)
        if not info.has_audio:
            raise UserError(f"the {what} has no sound (no audio stream); upload a sound file")
        ext = _media_ext(info)
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown upload kind {kind!r}")
    into.mkdir(parents=True, exist_ok=True)
    dest = into / f"{kind}-{_digest(src)}{ext}"
    if not dest.is_file():
        tmp = into / f".{dest.name}.part"
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or no hard links: copy
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    return dest, info
