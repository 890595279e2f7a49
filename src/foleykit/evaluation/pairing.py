"""Pairing evaluation inputs by stem, from folders or in-memory arrays.

Folders: every file with an audio or video extension is taken (hidden files and other extensions are
ignored); ``clip_007.wav`` (generated), ``clip_007.flac`` (reference) and ``clip_007.mp4`` (video) form
one item. Pairing is checked before anything is decoded, and every problem is listed at once: a stem with
several files in one folder, a generated file without its reference / video, a reference / video without
its generated file.

In memory: a mapping ``{name: array}`` (with a common ``sample_rate``), ``{name: (array, sample_rate)}``,
or a sequence of arrays (named ``000``, ``001``, ...); videos as ``{name: (frames, fps)}`` or
``{name: VideoClip}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import EvaluationError

AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".flac",
        ".mp3",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".aac",
        ".aif",
        ".aiff",
        ".wma",
        ".caf",
        ".w64",
    }
)
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp"}
)
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS


@dataclass(frozen=True)
class AudioArray:
    """An in-memory clip: ``wav`` ``(T,)`` or ``(C, T)`` at ``sample_rate``."""

    wav: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class FramesArray:
    """In-memory video: RGB uint8 ``frames`` ``(N, H, W, 3)`` at native ``fps``."""

    frames: np.ndarray
    fps: float


AudioSource = Path | AudioArray
VideoSource = Path | FramesArray


@dataclass(frozen=True)
class Item:
    """One evaluation item: a generated clip and what it is compared with."""

    stem: str
    generated: AudioSource
    reference: AudioSource | None = None
    video: VideoSource | None = None


def is_path_like(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def scan_folder(folder: str | os.PathLike, *, role: str) -> tuple[dict[str, Path], list[str]]:
    """Media files of a folder by stem (non-recursive) and the duplicate-stem problems found.

    Raises:
        EvaluationError: the folder does not exist, or holds no audio / video file.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise EvaluationError(f"--{role}: folder {root} does not exist")
    by_stem: dict[str, list[Path]] = {}
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in MEDIA_EXTENSIONS:
            continue
        by_stem.setdefault(p.stem, []).append(p)
    if not by_stem:
        raise EvaluationError(
            f"--{role}: no audio or video files in {root} (extensions: {', '.join(sorted(MEDIA_EXTENSIONS))})"
        )
    problems = [
        f"{role}: stem {stem!r} has {len(ps)} files ({', '.join(p.name for p in ps)}); keep one"
        for stem, ps in by_stem.items()
        if len(ps) > 1
    ]
    return {stem: ps[0] for stem, ps in by_stem.items()}, problems


def _arrays(x: Any, sample_rate: int | None, *, role: str) -> dict[str, AudioArray]:
    if isinstance(x, np.ndarray):
        raise EvaluationError(f"{role}: pass a list or a dict of clips, not a single array")
    items = x.items() if isinstance(x, Mapping) else ((f"{i:03d}", v) for i, v in enumerate(x))
    out: dict[str, AudioArray] = {}
    for name, v in items:
        if isinstance(v, tuple) and len(v) == 2 and np.isscalar(v[1]):
            wav, sr = v
        else:
            wav, sr = v, sample_rate
        if sr is None:
            raise EvaluationError(
                f"{role}: clip {name!r} has no sample rate; pass sample_rate= or (wav, sr) tuples"
            )
        if hasattr(wav, "detach"):
            wav = wav.detach().cpu().numpy()
        out[str(name)] = AudioArray(np.asarray(wav, dtype=np.float32), int(sr))
    if not out:
        raise EvaluationError(f"{role}: no clips given")
    return out


def _videos(x: Any, *, role: str) -> dict[str, FramesArray]:
    items = x.items() if isinstance(x, Mapping) else ((f"{i:03d}", v) for i, v in enumerate(x))
    out: dict[str, FramesArray] = {}
    for name, v in items:
        if hasattr(v, "frames") and hasattr(v, "fps"):  # foleykit.media.VideoClip
            out[str(name)] = FramesArray(np.asarray(v.frames), float(v.fps))
        elif isinstance(v, tuple) and len(v) == 2:
            out[str(name)] = FramesArray(np.asarray(v[0]), float(v[1]))
        else:
            raise EvaluationError(f"{role}: video {name!r} must be (frames, fps) or a VideoClip")
    if not out:
        raise EvaluationError(f"{role}: no videos given")
    return out


def collect(
    generated: Any,
    reference: Any = None,
    videos: Any = None,
    *,
    sample_rate: int | None = None,
    allow_unpaired: bool = False,
) -> tuple[list[Item], list[str]]:
    """Pair generated clips with references and videos by stem.

    Args:
        generated: Folder, ``{name: wav}``, ``{name: (wav, sr)}`` or a sequence of clips.
        reference: Same forms, or None.
        videos: Folder, ``{name: (frames, fps)}`` / ``{name: VideoClip}`` / a sequence, or None.
        sample_rate: Rate of in-memory clips given without one.
        allow_unpaired: Evaluate the paired stems only instead of failing on unpaired files.

    Returns:
        (items sorted by stem, the pairing problems that were tolerated).

    Raises:
        EvaluationError: pairing problems (all listed) unless ``allow_unpaired``; nothing left to evaluate.
    """
    problems: list[str] = []
    if is_path_like(generated):
        gen, dup = scan_folder(generated, role="generated")
        problems += dup
    else:
        gen = _arrays(generated, sample_rate, role="generated")
    ref: dict[str, AudioSource] | None = None
    if reference is not None:
        if is_path_like(reference):
            ref, dup = scan_folder(reference, role="reference")
            problems += dup
        else:
            ref = dict(_arrays(reference, sample_rate, role="reference"))
    vid: dict[str, VideoSource] | None = None
    if videos is not None:
        if is_path_like(videos):
            vid, dup = scan_folder(videos, role="videos")
            problems += dup
        else:
            vid = dict(_videos(videos, role="videos"))

    def where(src: Any, role: str, stem: str) -> str:
        return f"{role}/{src.name}" if isinstance(src, Path) else f"{role} clip {stem!r}"

    for other, role in ((ref, "reference"), (vid, "videos")):
        if other is None:
            continue
        problems += [
            f"{where(gen[s], 'generated', s)}: no {role} file with stem {s!r}"
            for s in sorted(set(gen) - set(other))
        ]
        problems += [
            f"{where(other[s], role, s)}: no generated file with stem {s!r}"
            for s in sorted(set(other) - set(gen))
        ]
    if problems and not allow_unpaired:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise EvaluationError(
            f"pairing failed ({len(problems)} problem(s); files pair by stem across extensions):\n{listing}\n"
            "Fix the folders, or pass --allow-unpaired to evaluate the paired stems only."
        )
    stems = sorted(s for s in gen if (ref is None or s in ref) and (vid is None or s in vid))
    if not stems:
        raise EvaluationError("nothing to evaluate: no generated clip has all its paired inputs")
    items = [
        Item(
            stem=s,
            generated=gen[s],
            reference=None if ref is None else ref[s],
            video=None if vid is None else vid[s],
        )
        for s in stems
    ]
    return items, problems


def video_source(item: Item) -> VideoSource | None:
    """The item's video: the paired video, else the generated file itself when it is a video container."""
    if item.video is not None:
        return item.video
    if isinstance(item.generated, Path) and item.generated.suffix.lower() in VIDEO_EXTENSIONS:
        return item.generated
    return None


def load_text_map(path: str | os.PathLike) -> dict[str, str]:
    """Prompts by stem from a JSON object ``{stem: text}`` or a text file of ``stem<TAB>text`` lines."""
    import json

    p = Path(path).expanduser()
    if not p.is_file():
        raise EvaluationError(f"--prompts: file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise EvaluationError(f"--prompts: {p} is not valid JSON: {err}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise EvaluationError(f"--prompts: {p} must hold a JSON object {{stem: prompt}}")
        return {
            str(Path(k).stem if Path(k).suffix.lower() in MEDIA_EXTENSIONS else k): v for k, v in data.items()
        }
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if "\t" not in line:
            raise EvaluationError(f"--prompts: {p} line {n}: expected 'stem<TAB>prompt'")
        stem, prompt = line.split("\t", 1)
        out[stem.strip()] = prompt.strip()
    return out


def check_prompts(items: Sequence[Item], prompts: Mapping[str, str]) -> None:
    """Every item needs a prompt for the CLAP score (all missing stems listed)."""
    missing = [it.stem for it in items if it.stem not in prompts]
    if missing:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise EvaluationError(f"CLAP score: no prompt for {len(missing)} clip(s): {shown}")
