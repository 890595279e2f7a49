"""Writing a generation: the video (input picture untouched + new audio) or an audio file, the sidecar JSON
that reproduces it, and optionally the timing curve used (CSV) with a PNG of it over the spectrogram.

Every output has its own companions, named after the whole output name: ``take.mp4`` -> ``take.mp4.json``,
``take.mp4.timing.csv``, ``take.mp4.timing.png`` (so ``take.mp4`` and ``take.wav`` never share a sidecar).
Sidecars of earlier versions (``take.json``) are still read for ``--from``.

All files of one result are written to temporary names first and renamed together at the end: a failure
(or SIGINT / SIGTERM in the command line) leaves none of them (and any previous files of the same names
untouched); temporary files an earlier killed run left behind are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shlex
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import ConfigError, MediaError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")
AUDIO_SUFFIXES = (".wav", ".flac")
#: Files a batch folder is searched for.
INPUT_VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts")
SIDECAR_VERSION = 2
#: Files up to this size are hashed whole; larger ones by their size and first and last ``_ENDS`` bytes.
FINGERPRINT_WHOLE_BYTES = 64 * 2**20
_ENDS = 16 * 2**20


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
            f"--keep-original-audio applies to video outputs ({', '.join(VIDEO_SUFFIXES)}), not to audio files"
        )
    return out


def plan_output(video: str | os.PathLike, out: str | os.PathLike, *, keep_original_audio: bool = False):
    """How a video output will be written (:class:`foleykit.media.MuxPlan`: picture copied or re-encoded),
    decided before any generation; None for an audio output."""
    if Path(out).suffix.lower() not in VIDEO_SUFFIXES:
        return None
    from foleykit.media import plan_mux

    return plan_mux(video, out, keep_original_audio=keep_original_audio)


def fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """Content fingerprint of a file: ``{"bytes", "sha256", "hashed"}``.

    Files up to :data:`FINGERPRINT_WHOLE_BYTES` are hashed whole (``hashed: "all"``); larger ones (long
    videos) by their size and their first and last 16 MiB (``hashed: "ends"``), which any re-export or
    edit changes, in a fraction of a second.
    """
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256()
    with open(p, "rb") as f:
        if size <= FINGERPRINT_WHOLE_BYTES:
            for block in iter(lambda: f.read(2**20), b""):
                h.update(block)
            hashed = "all"
        else:
            h.update(size.to_bytes(8, "little"))
            h.update(f.read(_ENDS))
            f.seek(size - _ENDS)
            h.update(f.read(_ENDS))
            hashed = "ends"
    return {"bytes": size, "sha256": h.hexdigest(), "hashed": hashed}


def same_content(recorded: dict[str, Any] | None, path: str | os.PathLike) -> bool | None:
    """Whether ``path`` still has the recorded fingerprint (None when nothing was recorded)."""
    if not isinstance(recorded, dict) or "sha256" not in recorded:
        return None
    now = fingerprint(path)
    return now["sha256"] == recorded["sha256"] and now["bytes"] == recorded.get("bytes")


def sidecar_path(out: str | os.PathLike) -> Path:
    """The sidecar of an output: the whole output name + ``.json`` (``take.mp4`` -> ``take.mp4.json``)."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def companion_paths(
    out: str | os.PathLike, control_names: list[str] | tuple[str, ...] = ()
) -> dict[str, Path]:
    """The files written next to ``out``, named after the whole output name: ``sidecar`` (``OUT.json``,
    e.g. ``take.mp4.json``) and, per adapter, the timing ``OUT.timing.csv`` / ``.png``
    (``OUT.timing_<adapter>.*`` when the model has several adapters)."""
    out = Path(out)
    paths = {"sidecar": sidecar_path(out)}
    for name in control_names:
        tag = ".timing" if len(control_names) == 1 else f".timing_{name}"
        paths[f"csv:{name}"] = out.with_name(f"{out.name}{tag}.csv")
        paths[f"png:{name}"] = out.with_name(f"{out.name}{tag}.png")
    return paths


#: Temporary names of :class:`_Outputs` (``.take.part-1a2b3c4d.mp4``) and of the atomic writers inside them
#: (``..take.part-1a2b3c4d.tmp-x8y7z6w5.mp4``).
_PART = r"\.{{1,2}}{stem}\.part-[0-9a-f]{{8}}(?:\.tmp-[A-Za-z0-9_]+)?{suffix}"


def remove_stale_parts(target: Path, *, before: float) -> list[Path]:
    """Remove temporary files of ``target`` (our naming only) last modified before ``before`` (a time.time()):
    what a run killed by SIGKILL or a power cut left behind. A run writing the same target right now
    touches its files after ``before`` and keeps them."""
    pattern = re.compile(_PART.format(stem=re.escape(target.stem), suffix=re.escape(target.suffix)))
    removed = []
    if not target.parent.is_dir():
        return removed
    for p in target.parent.iterdir():
        if pattern.fullmatch(p.name):
            with contextlib.suppress(OSError):
                if p.is_file() and p.stat().st_mtime < before:
                    p.unlink()
                    removed.append(p)
    return removed


class _Outputs:
    """Temporary files renamed onto their targets together on :meth:`commit` (removed on failure)."""

    def __init__(self, started: float | None = None) -> None:
        self.pending: list[tuple[Path, Path]] = []
        self.started = time.time() if started is None else started

    def tmp(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(target, before=self.started)
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
_FILE_OPTIONS = ("audio_prompt", "control", "control_from_audio", "init_audio", "previous")
_FILE_FLAGS = ("--audio-prompt", "--control", "--control-from-audio", "--init-audio")


def reproduce_command(
    video: str | os.PathLike,
    out: str | os.PathLike,
    opts: Any,
    result: Any,
    model_name: str | None,
    recipe: str | None = None,
) -> str:
    """A ``foleykit generate`` command line that reproduces the result (same seed and settings; ``recipe``:
    the recipe a published backbone folder was run with)."""

    def absolute(p: Any) -> str:
        return str(Path(p).resolve())

    args = ["foleykit", "generate", absolute(video), "-o", absolute(out)]
    if model_name:
        args += ["--model", model_name]
    if recipe:
        args += ["--recipe", recipe]
    for flag, value in (
        ("--prompt", opts.prompt),
        ("--negative-prompt", opts.negative_prompt),
        ("--audio-prompt", opts.audio_prompt),
        ("--control", opts.control if isinstance(opts.control, (str, os.PathLike)) else None),
        ("--control-from-audio", opts.control_from_audio),
        ("--control-scale", opts.control_scale),
        ("--follow-envelope", opts.follow_envelope),
        ("--expansion", opts.expansion),
        ("--init-audio", opts.init_audio),
        ("--init-strength", opts.init_strength),
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
    inputs: dict[str, Any] | None = None,
    video_plan: Any = None,
) -> dict[str, Any]:
    """The sidecar document: every parameter, the seed, the model and foleykit versions, timings, the content
    fingerprint of every input file (``inputs``, see :func:`input_fingerprints`) and how the picture of a
    video output was written (``output.video``: copied, or re-encoded and why)."""
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
            # the headroom gain (one factor for the whole soundtrack, < 1 when its peak passed -1 dBFS)
            "gain_db": round(20 * math.log10(getattr(result, "gain", 1.0)), 3),
            "files": {k: p.name for k, p in files.items()},
            "video": video_plan.to_dict() if video_plan is not None else None,
        },
        "inputs": inputs if inputs is not None else input_fingerprints(video, opts),
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
        "notes": list(result.notes)
        + ([video_plan.note] if video_plan is not None and video_plan.note else []),
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "reproduce": reproduce_command(
            video,
            out,
            opts,
            result,
            _model_arg(model_info),
            recipe=model_info.get("recipe") if model_info.get("backbone") else None,
        ),
    }


#: Inputs whose content the sidecar fingerprints: the video and these options (files).
FINGERPRINTED = ("audio_prompt", "control", "control_from_audio", "init_audio", "previous")


def input_fingerprints(
    video: str | os.PathLike, opts: Any, extra: dict[str, str | os.PathLike] | None = None
) -> dict[str, Any]:
    """``{name: {"path", "bytes", "sha256", "hashed"}}`` for the video, every file option that is set
    (reference sound, control file, timing recording, previous result) and ``extra`` (e.g. the batch list)."""
    files: dict[str, Any] = {"video": video}
    for key in FINGERPRINTED:
        value = getattr(opts, key, None)
        if isinstance(value, (str, os.PathLike)):
            files[key] = value
    files.update(extra or {})
    out = {}
    for name, path in files.items():
        entry: dict[str, Any] = {"path": str(Path(path).resolve())}
        with contextlib.suppress(OSError):
            entry.update(fingerprint(path))
        out[name] = entry
    return out


def changed_inputs(doc: dict[str, Any], current: dict[str, str | os.PathLike]) -> list[str]:
    """Warnings for inputs whose content differs from what a sidecar recorded (``current``: name -> path)."""
    recorded = doc.get("inputs") or {}
    notes = []
    for name, path in current.items():
        rec = recorded.get(name)
        if not isinstance(rec, dict) or "sha256" not in rec:
            continue
        if not Path(path).is_file():
            notes.append(f"{name} {path} no longer exists")
        elif not same_content(rec, path):
            notes.append(
                f"{name} {path} is not the file the result was made from (its content changed since; "
                "the result will differ)"
            )
    return notes


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
    video_plan: Any = None,
    extra_inputs: dict[str, str | os.PathLike] | None = None,
    started: float | None = None,
) -> dict[str, Path]:
    """Write a :class:`~foleykit.product.generate.GenerationResult` and its companions, all or nothing.

    A video output is the input video stream copied untouched with the generated audio as its (default) track,
    exactly the video's duration (silence outside a ``--start``/``--duration`` segment); where the container
    cannot hold the input's codec (e.g. cinepak in .mp4) the picture is re-encoded frame for frame (see
    :func:`foleykit.media.mux_video`) and the sidecar says so. An audio output (``.wav`` / ``.flac``) holds
    the segment alone.

    Args:
        result: The generation.
        video: The input video.
        out: Output file (suffix picks the kind).
        opts: The :class:`~foleykit.product.generate.GenerateOptions` used.
        model_info: Model identity for the sidecar.
        device: Device name for the sidecar.
        write_audio_copy: Also write the audio alone to this ``.wav`` (the web app offers it for download).
        video_plan: :func:`plan_output`'s plan made before the generation (made here when None).
        extra_inputs: More input files to fingerprint in the sidecar (name -> path, e.g. the batch list).
        started: ``time.time()`` at the start of the run: temporary files of the same outputs older than
            that (left by a killed run) are removed.

    Returns:
        ``{"output", "sidecar", "csv:<adapter>", "png:<adapter>", "audio"}`` -> written paths.
    """
    from foleykit.media import mux_video, write_audio

    out = check_output(out, video=video, keep_original_audio=opts.keep_original_audio)
    if video_plan is None:
        video_plan = plan_output(video, out, keep_original_audio=opts.keep_original_audio)
    names = list(result.controls) if opts.save_controls else []
    paths = {"output": out, **companion_paths(out, names)}
    if write_audio_copy is not None:
        paths["audio"] = Path(write_audio_copy)
    txn = _Outputs(started)
    try:
        tmp = {k: txn.tmp(p) for k, p in paths.items()}
        sr = result.sample_rate
        if out.suffix.lower() in VIDEO_SUFFIXES:
            full = np.zeros(max(1, round(result.video_duration * sr)), np.float32)
            i0 = round(result.start * sr)
            n = min(len(result.audio), len(full) - i0)
            full[i0 : i0 + n] = result.audio[:n]
            try:
                video_plan = mux_video(
                    video,
                    full,
                    sr,
                    tmp["output"],
                    keep_original_audio=opts.keep_original_audio,
                    plan=video_plan,
                )
            except MediaError as e:  # name the output, not its temporary file
                raise type(e)(str(e).replace(str(tmp["output"]), str(out))) from e
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
        doc = sidecar(
            video,
            out,
            opts,
            result,
            model_info or {},
            paths,
            device=device,
            inputs=input_fingerprints(video, opts, extra_inputs),
            video_plan=video_plan,
        )
        tmp["sidecar"].write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return dict(zip(paths, txn.commit()))
    except BaseException:
        txn.abort()
        raise


def _mel_seq(result: Any):
    from foleykit.config import SequenceConfig

    return SequenceConfig(sample_rate=result.sample_rate, f_max=min(8000.0, result.sample_rate / 2))


def _load_sidecar(p: Path) -> dict[str, Any] | None:
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("command") != "generate" or "parameters" not in doc:
        return None
    return doc


def read_sidecar(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar of a previous output, or None when there is none / it is not one.

    ``OUT.json`` (``take.mp4.json``) first; then a sidecar of an earlier foleykit version (same stem,
    ``take.json``), but only when it records this very output (``take.wav`` never picks up the sidecar of
    ``take.mp4``). ``path`` may also name the sidecar itself.
    """
    p = Path(path)
    if p.suffix.lower() == ".json":
        return _load_sidecar(p)
    doc = _load_sidecar(sidecar_path(p))
    if doc is not None:
        return doc
    legacy = _load_sidecar(p.with_suffix(".json"))
    recorded = ((legacy or {}).get("output") or {}).get("path")
    if legacy is not None and recorded and Path(recorded).name == p.name:
        return legacy
    return None


def check_same_video(previous: dict[str, Any] | None, video: str | os.PathLike, previous_path: Any) -> None:
    """Refuse a regeneration whose previous result was made from another video.

    The sidecar's video fingerprint must match ``video``'s content; sidecars without one (earlier versions)
    must at least name the same file with the same duration. Without a sidecar nothing can be checked (the
    caller says so).

    Raises:
        ConfigError: the previous result belongs to another video.
    """
    if previous is None:
        return
    rec = (previous.get("inputs") or {}).get("video")
    made_from = (previous.get("input") or {}).get("video") or (rec or {}).get("path")
    same = same_content(rec, video)
    if same is None:  # an older sidecar: the path and duration must agree
        from foleykit.media import probe

        dur = (previous.get("input") or {}).get("video_duration")
        info = probe(video)
        now = float(info.video_duration or info.duration)
        same = (
            made_from is not None
            and Path(made_from).resolve() == Path(video).resolve()
            and dur is not None
            and abs(float(dur) - now) < 1e-3
        )
    if not same:
        raise ConfigError(
            f"--from {previous_path} was made from another video ({made_from}), not from {video} (their "
            "contents differ); regenerate a result of this video, or generate it first"
        )
