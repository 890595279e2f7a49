"""``extract(path, kind)``: one timing control from an audio file or a video (its audio track or frames)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from foleykit.config import SequenceConfig
from foleykit.controls.base import TemporalControl
from foleykit.errors import ControlError

#: Kinds computed from the audio (of an audio file, or of a video's audio track).
AUDIO_KINDS = ("energy", "rms", "rms_class", "onsets")
#: Kinds computed from the video frames.
VIDEO_KINDS = ("motion",)
KINDS = AUDIO_KINDS + VIDEO_KINDS

#: Sample rate used for onset detection (librosa's default rate, as in AV-Align's audio branch).
ONSET_SAMPLE_RATE = 22050


def extract(
    input_path: str | os.PathLike,
    kind: str,
    *,
    rate: float | None = None,
    fps: float | None = None,
    size: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    seq: SequenceConfig | None = None,
    smooth: bool = True,
    **options: Any,
) -> TemporalControl:
    """Extract a timing control from a media file.

    Args:
        input_path: Audio file or video. Audio kinds on a video use its audio track.
        kind: ``energy`` (ReWaS, ``seq.mel_rate``), ``rms`` (Stable-V2A envelope at ``seq.control_rate``),
            ``rms_class`` (its 64 mu-law classes), ``onsets`` (binary onset track, default at
            ``seq.latent_rate``) or ``motion`` (AV-Align optical-flow trajectory at the video frame rate).
        rate: Output rate in Hz. For ``onsets`` the rate of the track; for other kinds the control is
            resampled to it (see :meth:`TemporalControl.resample`). None: the kind's natural rate.
        fps: ``motion``: frame rate to decode at (None: native).
        size: ``motion``: short side in pixels to analyse at (None: as decoded).
        start, duration: Segment of the file in seconds.
        seq: Audio geometry (sample rate, mel, control hop, latent rate); default ``SequenceConfig()``.
        smooth: ``energy``: Savitzky-Golay (9, 2) smoothing.
        **options: Extra keyword arguments for the kind's function (e.g. ``delta=0.3`` for onsets,
            ``reduction="magnitude"`` for motion).

    Returns:
        The control; ``meta["input"]`` names the file.

    Raises:
        ControlError: Unknown kind or options. MediaError subclasses for unreadable input (missing file, no
        audio stream for an audio kind, no video stream for ``motion``, ...).
    """
    if kind not in KINDS:
        raise ControlError(f"unknown control kind {kind!r}; choose one of {', '.join(KINDS)}")
    if rate is not None and not rate > 0:
        raise ControlError(f"rate must be a positive number of Hz, got {rate}")
    seq = seq or SequenceConfig()
    path = Path(input_path)
    _check_options(kind, options)
    try:
        if kind == "motion":
            from foleykit.controls.motion import motion

            control = motion(path, fps=fps, size=size, start=start, duration=duration, **options)
        else:
            control = _audio_control(
                path, kind, rate=rate, start=start, duration=duration, seq=seq, smooth=smooth, **options
            )
    except TypeError as e:  # an option the kind's function does not take
        if "unexpected keyword argument" in str(e):
            raise ControlError(f"option not supported for kind {kind!r}: {e}") from None  # librosa's kwargs
        raise
    if rate is not None and kind != "onsets" and abs(rate - control.rate) > 1e-9:
        control = control.resample(rate)
    control.meta["input"] = str(path)
    if start:
        control.meta["segment_start"] = float(start)
    return control


def _check_options(kind: str, options: dict[str, Any]) -> None:
    """Reject options the kind's function does not take, before any decoding."""
    if not options:
        return
    import inspect

    from foleykit.controls.energy import energy
    from foleykit.controls.motion import motion
    from foleykit.controls.onsets import onsets
    from foleykit.controls.rms import rms_envelope

    func = {
        "energy": energy,
        "rms": rms_envelope,
        "rms_class": rms_envelope,
        "onsets": onsets,
        "motion": motion,
    }[kind]
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # onsets: passed on to librosa.onset.onset_detect
    taken = {
        "wav",
        "sample_rate",
        "seq",
        "smooth",
        "rate",
        "video_or_clip",
        "fps",
        "size",
        "start",
        "duration",
    }
    unknown = sorted(set(options) - (set(params) - taken))
    if unknown:
        valid = sorted(set(params) - taken)
        raise ControlError(
            f"option(s) {', '.join(unknown)} not supported for kind {kind!r}"
            + (f"; it takes {', '.join(valid)}" if valid else "")
        )


def _audio_control(
    path: Path,
    kind: str,
    *,
    rate: float | None,
    start: float,
    duration: float | None,
    seq: SequenceConfig,
    smooth: bool,
    **options: Any,
) -> TemporalControl:
    from foleykit.media import read_audio

    sr = ONSET_SAMPLE_RATE if kind == "onsets" else seq.sample_rate
    wav = read_audio(path, sample_rate=sr, mono=True, start=start, duration=duration)
    if kind == "energy":
        from foleykit.controls.energy import energy

        out = energy(wav, sr, smooth=smooth, seq=seq, **options)
    elif kind in ("rms", "rms_class"):
        from foleykit.controls.rms import rms_envelope, rms_to_classes

        out = rms_envelope(wav, sr, seq=seq, **options)
        if kind == "rms_class":
            out = rms_to_classes(out)
    else:
        from foleykit.controls.onsets import onsets

        out = onsets(wav, sr, rate=rate, seq=seq, **options)
    if start:
        out = out.replace(start=out.start + float(start))
    return out
