"""Atomic file writes: write to a temporary file next to the target, then rename.

A failure at any point leaves no partial output behind (the temporary file is removed).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    Args:
        path: Final destination. Its parent folder is created if needed.
        suffix: Suffix of the temporary file (defaults to the target's suffix, so that tools that pick a
            format from the extension, e.g. FFmpeg muxers or soundfile, behave the same).

    Yields:
        The temporary path to write to. It does not exist yet when yielded.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.tmp-",
        suffix=suffix if suffix is not None else target.suffix,
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # let the writer create it (some writers refuse existing files)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically and return the path."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def check_replaceable(path: str | os.PathLike, marker: str, what: str) -> Path:
    """Refuse, before any work, to replace ``path`` unless it is missing, an empty folder, or a folder of the
    kind being written (it holds ``marker``, e.g. ``model_index.json``).

    Raises:
        ConfigError: ``path`` is a file, or a folder with other content (it would be deleted as a whole).
    """
    from foleykit.errors import ConfigError

    target = Path(path)
    if target.is_symlink():
        raise ConfigError(f"{target} is a symbolic link; name the folder it points to, or a new folder")
    if target.is_dir():
        if (target / marker).is_file() or not any(target.iterdir()):
            return target
    elif not target.exists():
        return target
    raise ConfigError(
        f"{target} already exists and is not {what} (no {marker}); writing there would replace it as a "
        "whole: name a new or empty folder"
    )


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, marker: str | None = None, what: str = "") -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path`` as a whole.

    Used for model folders (config.json + safetensors per component): a crash while saving leaves the
    previous folder (or nothing) in place, never a half-written one. With ``marker`` (a file every folder of
    this kind holds), an existing ``path`` is replaced only when it is empty or holds ``marker``
    (:func:`check_replaceable`): a user's folder named by mistake is never deleted.
    """
    target = Path(path)
    if marker is not None:
        check_replaceable(target, marker, what or f"a folder with {marker}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            import shutil

            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
