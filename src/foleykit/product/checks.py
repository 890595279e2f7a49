"""Checking every input of a generation before the model loads (which takes seconds): the video, the output
(and how a video output will be written), the reference sound, the control file or timing recording, the
previous result of a regeneration, and the options.

:func:`check_inputs` raises the same typed errors the generation would raise later, so a mistake costs no
model load; it returns the notes to print and the output plan to carry out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from foleykit.errors import ConfigError, ControlError, FoleykitError, MediaError, NoAudioStreamError


@dataclass
class Checked:
    """What :func:`check_inputs` found: the video's info, the output plan (None for audio outputs), notes."""

    info: Any
    plan: Any = None
    notes: list[str] = field(default_factory=list)


def check_sound(path: str | os.PathLike, what: str) -> None:
    """A reference sound / timing recording: readable, with audio, long enough and not silent.

    Raises:
        MediaError subclasses (missing, not media, no audio track...), MediaError (silent or too short).
    """
    from foleykit.media import probe
    from foleykit.product.inputs import read_reference_sound

    info = probe(path)
    if not info.has_audio:
        raise NoAudioStreamError(
            f"{path}: the {what} has no audio track. Pass a sound file (wav, flac, mp3...)."
        )
    read_reference_sound(path, int(info.sample_rate), what=what)


def model_control_kinds(model: str | os.PathLike | None) -> dict[str, str] | None:
    """``{adapter: control kind}`` read from a model folder's ``model_index.json`` without loading anything;
    None when it cannot be told (unknown model, a published backbone without foleykit metadata...)."""
    from foleykit.paths import resolve_model

    try:
        folder = resolve_model(model)
        doc = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        return {str(a["name"]): str(a["control_kind"]) for a in doc["_foleykit"]["adapters"]}
    except (FoleykitError, OSError, KeyError, TypeError, ValueError):  # load_model says what is wrong
        return None


def check_control_file(path: str | os.PathLike, kinds: dict[str, str] | None) -> None:
    """Parse a control file and, when the model's adapter kinds are known, check that one follows it (the
    generation notes keyframes and clamped values)."""
    from foleykit.product.inputs import assign_controls, load_control_file

    c = load_control_file(path)
    if kinds is not None:  # the same check (and message) as after loading, from the folder's metadata
        fake = SimpleNamespace(adapters={n: SimpleNamespace(control_kind=k) for n, k in kinds.items()})
        assign_controls(fake, [c])


def check_previous(path: str | os.PathLike) -> None:
    """The previous result of a regeneration: a readable file with an audio track."""
    from foleykit.media import probe

    if not Path(path).is_file():
        raise ConfigError(f"--from {path}: no such file (the previous result to keep)")
    if not probe(path).has_audio:
        raise MediaError(f"{path}: the previous result has no audio track to keep")


def check_inputs(
    video: str | os.PathLike,
    out: str | os.PathLike,
    opts: Any,
    *,
    kinds: dict[str, str] | None = None,
) -> Checked:
    """Check everything a generation of ``video`` into ``out`` with ``opts`` will read, before the model loads.

    Args:
        video: The input video.
        out: The output file.
        opts: :class:`~foleykit.product.generate.GenerateOptions`.
        kinds: The model's ``{adapter: control kind}`` (:func:`model_control_kinds`), to check a control
            file's kind early; None skips that check (the generation makes it).

    Returns:
        :class:`Checked` (video info, output plan, notes).

    Raises:
        ConfigError, ControlError, MediaError subclasses: the first problem found.
    """
    from foleykit.product.generate import _segment, check_video
    from foleykit.product.outputs import check_output, plan_output

    opts.check()
    out = check_output(out, video=video, keep_original_audio=opts.keep_original_audio)
    info = check_video(video)
    start, end, _ = _segment(info, opts, video)
    if opts.regenerate is not None:
        r0, r1 = opts.regenerate
        if r0 < start - 1e-6 or r1 > end + 1e-6:
            raise ConfigError(
                f"--regenerate {r0:g}-{r1:g} lies outside the generated segment {start:g}-{end:g} s"
            )
        check_previous(opts.previous)
    notes: list[str] = []
    if opts.audio_prompt:
        check_sound(opts.audio_prompt, "reference sound")
    if opts.init_audio:
        check_sound(opts.init_audio, "init recording")
    if opts.control_from_audio:
        check_sound(opts.control_from_audio, "timing recording")
        if kinds is not None and not kinds:
            raise ControlError("this model has no timing-control adapter; drop --control-from-audio")
    if isinstance(opts.control, (str, os.PathLike)):
        check_control_file(opts.control, kinds)
    if opts.expansion is not None and kinds is not None and "rms" not in kinds.values():
        raise ConfigError(
            "--expansion shapes a predicted RMS timing curve; this model has no RMS timing adapter"
        )
    plan = plan_output(video, out, keep_original_audio=opts.keep_original_audio)
    if plan is not None and plan.note:
        notes.append(f"{Path(out).name}: {plan.note}")
    return Checked(info=info, plan=plan, notes=notes)
