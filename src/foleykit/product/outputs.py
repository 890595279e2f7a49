"""Writing a generation: the video (input picture untouched + new audio) or an audio file, the sidecar JSON
that reproduces it, and optionally the timing curve used (CSV) with a PNG of it over the spectrogram.

All files of one result are written to temporary names first and renamed together at the end: a failure
leaves none of them (and any previous files of the same names untouched).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import ConfigError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
AUDIO_SUFFIXES = (".wav", ".flac")
#: Files a batch folder is searched for.
INPUT_VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts")
SIDECAR_VERSION = 1


def check_output(
    out: str | os.PathLike, *, video: str | os.PathLike | None = None, keep_original_audio: bool = False
) -> Path:
    """Validate an output path before any work: a known suffix, not a folder, not the input video."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
        raise ConfigError(
            f"output {out}: use a name ending in {', '.join(VIDEO_SUFFIXES + AUDIO_SUFFIXES)} "
            "(a video with the new sound, or the sound alone)"
        )
    if out.is_dir():
        raise ConfigError(f"output {out} is a folder; give a file name")
    if video is not None and out.exists() and Path(video).exists() and out.resolve() == Path(video).resolve():
        raise ConfigError(f"output {out} is the input video; choose another file name")
    if keep_original_audio and suffix in AUDIO_SUFFIXES:
        raise ConfigError(
            "--keep-original-audio applies to video outputs (.mp4, .mov, .mkv), not to audio files"
        )
    return out


def companion_paths(
    out: str | os.PathLike, control_names: list[str] | tuple[str, ...] = ()
) -> dict[str, Path]:
    """The files written next to ``out``: ``sidecar`` (same stem, ``.json``) and, per adapter, the timing
    ``<stem>_timing.csv`` / ``.png`` (``<stem>_timing_<adapter>.*`` when the model has several adapters)."""
    out = Path(out)
    paths = {"sidecar": out.with_suffix(".json")}
    for name in control_names:
        tag = "_timing" if len(control_names) == 1 else f"_timing_{name}"
        paths[f"csv:{name}"] = out.with_name(f"{out.stem}{tag}.csv")
        paths[f"png:{name}"] = out.with_name(f"{out.stem}{tag}.png")
    return paths


class _Outputs:
    """Temporary files renamed onto their targets together on :meth:`commit` (removed on failure)."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def tmp(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        t = target.with_name(f".{target.stem}.part-{uuid.uuid4().hex[:8]}{target.suffix}")
        self.pending.append((t, target))
        return t

    def commit(self) -> list[Path]:
        for t, target in self.pending:
            os.replace(t, target)
        return [target for _, target in self.pending]

    def abort(self) -> None:
        for t, _ in self.pending:
            with contextlib.suppress(FileNotFoundError):
                t.unlink()


#: Options naming files (recorded as absolute paths).
_FILE_OPTIONS = ("audio_prompt", "control", "control_from_audio", "previous")
_FILE_FLAGS = ("--audio-prompt", "--control", "--control-from-audio")


def reproduce_command(
    video: str | os.PathLike, out: str | os.PathLike, opts: Any, result: Any, model_name: str | None
) -> str:
    """A ``foleykit generate`` command line that reproduces the result (same seed and settings)."""

    def absolute(p: Any) -> str:
        return str(Path(p).resolve())

    args = ["foleykit", "generate", absolute(video), "-o", absolute(out)]
    if model_name:
        args += ["--model", model_name]
    for flag, value in (
        ("--prompt", opts.prompt),
        ("--negative-prompt", opts.negative_prompt),
        ("--audio-prompt", opts.audio_prompt),
        ("--control", opts.control if isinstance(opts.control, (str, os.PathLike)) else None),
        ("--control-from-audio", opts.control_from_audio),
        ("--control-scale", opts.control_scale),
        ("--follow-envelope", opts.follow_envelope),
    ):
        if value not in (None, ""):
            args += [flag, absolute(value) if flag in _FILE_FLAGS else str(value)]
    args += ["--steps", str(result.steps), "--guidance", f"{result.guidance:g}", "--seed", str(result.seed)]
    if opts.start:
        args += ["--start", f"{opts.start:g}"]
    if opts.duration is not None:
        args += ["--duration", f"{opts.duration:g}"]
    if opts.window is not None:
        args += ["--window", f"{opts.window:g}"]
    if opts.overlap is not None:
        args += ["--overlap", f"{opts.overlap:g}"]
    if not opts.scene_cuts:
        args.append("--no-scene-cuts")
    if opts.keep_original_audio:
        args.append("--keep-original-audio")
    if opts.regenerate is not None:
        args += [
            "--regenerate",
            f"{opts.regenerate[0]:g}-{opts.regenerate[1]:g}",
            "--from",
            absolute(opts.previous),
        ]
    return shlex.join(args)


def sidecar(
    video: str | os.PathLike,
    out: Path,
    opts: Any,
    result: Any,
    model_info: dict[str, Any],
    files: dict[str, Path],
    *,
    device: str | None = None,
) -> dict[str, Any]:
    """The sidecar document: every parameter, the seed, the model and foleykit versions, timings."""
    import foleykit

    opt = {k: v for k, v in vars(opts).items() if k not in ("control",)}
    opt["control"] = (
        str(opts.control)
        if isinstance(opts.control, (str, os.PathLike))
        else ("in-memory control" if opts.control is not None else None)
    )
    for key in _FILE_OPTIONS:  # absolute, so that a regeneration / the reproduce command works from anywhere
        if isinstance(opt.get(key), (str, os.PathLike)) and opt[key] != "in-memory control":
            opt[key] = str(Path(opt[key]).resolve())
    opt["regenerate"] = list(opts.regenerate) if opts.regenerate is not None else None
    opt.update(
        seed=result.seed, steps=result.steps, guidance=result.guidance, control_scale=result.control_scale
    )
    # the effective scale is in the standard form eps_u + s (eps_c - eps_u), whatever the recipe's own form
    opt.update(guidance_form="standard", guidance_origin=getattr(result, "guidance_origin", "given"))
    return {
        "foleykit": {"version": foleykit.__version__, "sidecar_version": SIDECAR_VERSION},
        "command": "generate",
        "input": {"video": str(Path(video).resolve()), "video_duration": round(result.video_duration, 6)},
        "output": {
            "path": str(out.resolve()),
            "segment": [round(result.start, 6), round(result.end, 6)],
            "sample_rate": result.sample_rate,
            "samples": len(result.audio),
            "files": {k: p.name for k, p in files.items()},
        },
        "model": model_info,
        "device": device,
        "precision": getattr(result, "precision", "fp32"),
        "parameters": opt,
        "controls": {
            n: {
                "source": result.control_sources.get(n),
                "kind": c.kind,
                "rate": c.rate,
                "frames": c.num_frames,
                "start": round(c.start, 6),
            }
            for n, c in result.controls.items()
        },
        "windows": [w.to_dict() for w in result.windows],
        "scene_cuts": [round(c, 6) for c in result.cuts],
        "regenerated": result.regenerated,
        "notes": list(result.notes),
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "reproduce": reproduce_command(video, out, opts, result, _model_arg(model_info)),
    }


def _model_arg(model_info: dict[str, Any]) -> str | None:
    """``--model`` for the reproduce command: the name for a named model, the absolute folder for a path."""
    name = model_info.get("name")
    if name and Path(name).exists():
        return str(model_info.get("path") or Path(name).resolve())
    return name


def write_outputs(
    result: Any,
    video: str | os.PathLike,
    out: str | os.PathLike,
    opts: Any,
    *,
    model_info: dict[str, Any] | None = None,
    device: str | None = None,
    write_audio_copy: Path | None = None,
) -> dict[str, Path]:
    """Write a :class:`~foleykit.product.generate.GenerationResult` and its companions, all or nothing.

    A video output is the input video stream copied untouched with the generated audio as its (default) track,
    exactly the video's duration (silence outside a ``--start``/``--duration`` segment); an audio output
    (``.wav`` / ``.flac``) holds the segment alone.

    Args:
        result: The generation.
        video: The input video.
        out: Output file (suffix picks the kind).
        opts: The :class:`~foleykit.product.generate.GenerateOptions` used.
        model_info: Model identity for the sidecar.
        device: Device name for the sidecar.
        write_audio_copy: Also write the audio alone to this ``.wav`` (the web app offers it for download).

    Returns:
        ``{"output", "sidecar", "csv:<adapter>", "png:<adapter>", "audio"}`` -> written paths.
    """
    from foleykit.media import mux, write_audio

    out = check_output(out, video=video, keep_original_audio=opts.keep_original_audio)
    names = list(result.controls) if opts.save_controls else []
    paths = {"output": out, **companion_paths(out, names)}
    if write_audio_copy is not None:
        paths["audio"] = Path(write_audio_copy)
    txn = _Outputs()
    try:
        tmp = {k: txn.tmp(p) for k, p in paths.items()}
        sr = result.sample_rate
        if out.suffix.lower() in VIDEO_SUFFIXES:
            full = np.zeros(max(1, round(result.video_duration * sr)), np.float32)
            i0 = round(result.start * sr)
            n = min(len(result.audio), len(full) - i0)
            full[i0 : i0 + n] = result.audio[:n]
            mux(video, full, sr, tmp["output"], keep_original_audio=opts.keep_original_audio)
        else:
            write_audio(tmp["output"], result.audio, sr)
        if "audio" in tmp:
            write_audio(tmp["audio"], result.audio, sr)
        if names:
            from foleykit.audio import log_mel

            mseq = _mel_seq(result)
            mel = log_mel(result.audio, sr, mseq)
            for name in names:
                c = result.controls[name]
                c.save(tmp[f"csv:{name}"])
                f0 = max(0, round((c.start - result.start) * mseq.mel_rate))  # the control's span of the mel
                part = mel[:, f0 : f0 + max(1, round(c.duration * mseq.mel_rate))]
                c.plot(
                    tmp[f"png:{name}"],
                    spectrogram=part,
                    spectrogram_rate=mseq.mel_rate,
                    title=f"{name} timing ({result.control_sources.get(name)}) over the generated sound",
                )
        doc = sidecar(video, out, opts, result, model_info or {}, paths, device=device)
        tmp["sidecar"].write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return dict(zip(paths, txn.commit()))
    except BaseException:
        txn.abort()
        raise


def _mel_seq(result: Any):
    from foleykit.config import SequenceConfig

    return SequenceConfig(sample_rate=result.sample_rate, f_max=min(8000.0, result.sample_rate / 2))


def read_sidecar(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar next to a previous output (same stem, ``.json``), or None when there is none / it is not one."""
    p = Path(path).with_suffix(".json")
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("command") != "generate" or "parameters" not in doc:
        return None
    return doc
