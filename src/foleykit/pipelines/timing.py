"""Where the pipeline's timing controls come from: the user, a reference recording, or a predictor.

Helpers of ``VideoToAudioPipeline.__call__`` step 4 (kept apart so the pipeline file stays readable):
:func:`normalise_controls` (controls / control files given by the user), :func:`control_from_audio`
(measured on a recording with ``foleykit.controls``), :func:`predict_control` (a timing predictor on video
features) and :func:`convert_kind` (mu-law RMS classes -> RMS envelope).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np
import torch

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError, ControlError


def normalise_controls(controls: Any) -> dict[str, Any]:
    """``TemporalControl`` / control file / list / dict -> ``{adapter name or kind: TemporalControl}``."""
    from foleykit.controls import TemporalControl, load_control

    if controls is None:
        return {}
    if isinstance(controls, (TemporalControl, str, os.PathLike)):
        controls = [controls]
    items = controls.items() if isinstance(controls, dict) else [(None, c) for c in controls]
    out = {}
    for key, c in items:
        if isinstance(c, (str, os.PathLike)):
            c = load_control(c)
        if not isinstance(c, TemporalControl):
            raise ControlError(
                f"controls must be TemporalControl objects or control files, got {type(c).__name__}"
            )
        out[key or c.kind] = c
    return out


def convert_kind(control: Any, kind: str) -> Any:
    """Convert a control to the kind an adapter consumes (mu-law classes -> RMS), else check it."""
    if control.kind == kind:
        return control
    if kind == "rms" and control.kind == "rms_class":
        from foleykit.controls import classes_to_rms

        return classes_to_rms(control)
    raise ControlError(f"a {control.kind!r} control was given where a {kind!r} control is needed")


def control_from_audio(
    kind: str, audio: Any, sample_rate: int | None, seq: SequenceConfig, start: float = 0.0
):
    """A timing control of ``kind`` measured on a recording (file path, or array at ``sample_rate``).

    ``energy`` (ReWaS), ``rms`` (Stable-V2A), ``onsets`` (STA-V2A / Rhythmic Foley) come from
    ``foleykit.controls``; ``events`` (Rhythmic Foley presence) is the RMS envelope above the mu-law floor,
    max-pooled per video frame.
    """
    from foleykit import controls as fc

    base = "rms" if kind == "events" else kind
    if isinstance(audio, (str, os.PathLike)):
        c = fc.extract(audio, base, seq=seq, start=start, duration=seq.duration)
    else:
        fn = {"energy": fc.energy, "rms": fc.rms_envelope, "onsets": fc.onsets}.get(base)
        if fn is None:
            raise ControlError(f"cannot measure a {kind!r} control from audio")
        c = fn(np.asarray(audio, dtype=np.float32), int(sample_rate or seq.sample_rate), seq=seq)
    if kind == "events":
        from foleykit.controls.rms import RMS_MIN

        v = c.to_grid(seq, "video", method="max")
        c = v.replace(kind="events", values=(v.values >= RMS_MIN).astype(np.float32))
    return c


@torch.no_grad()
def predict_control(
    predictor: torch.nn.Module, feats: torch.Tensor, seq: SequenceConfig, *, expansion: float | None = None
):
    """Run a timing predictor on ``Tensor[1 x T_v x D]`` features: (TemporalControl, local features or None).

    ``OnsetHead`` also returns STA-V2A's local features e_lv (``Tensor[1 x T_lat x F]``). ``expansion``: the
    RMS-Mapper's valley expansion for this prediction (None: its own).

    Raises:
        ConfigError: ``expansion`` given for a predictor that is not an RMS-Mapper.
    """
    if expansion is not None and predictor.kind != "rms":
        raise ConfigError(
            f"the valley expansion shapes an RMS timing curve; this model's {predictor.kind!r} predictor has none"
        )
    local = None
    if predictor.kind == "onsets":
        out, local = predictor(feats, seq.num_latent_frames, return_features=True)
    elif predictor.kind == "rms":
        out = predictor(feats, seq.num_control_frames)
    elif "num_frames" in inspect.signature(predictor.forward).parameters:
        out = predictor(feats, seq.num_latent_frames)
    else:
        out = predictor(feats)
    kw = {} if expansion is None else {"expansion": expansion}
    return predictor.to_control(out[0].cpu(), seq, **kw), local
