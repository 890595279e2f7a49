"""Augmentations on examples (dicts of arrays from ``datasets`` or ``cache``), applied consistently to the
audio, its timing controls, the video frames and the ground-truth events.

- ``concat_examples``: VTA-LDM concat augmentation (sec. 5.5): the first part of one clip followed by the
  start of another, captions joined, so the model sees event changes inside one window.
- ``apply_gain`` / ``random_gain``: loudness change; amplitude controls (``rms``) scale with it, the log
  energy (ReWaS) shifts by ln(g) (exact above the log floor), RMS classes are recomputed.
- ``time_shift``: delays (or advances) audio AND controls AND frames AND events together, by a multiple of
  the coarsest common frame period so every series stays exactly aligned.
- ``ConditionDropout``: classifier-free-guidance condition dropout masks (ReWaS drops the text with p 0.3).

Every time series has a rate and a time axis (``series_specs``); keys not listed are left untouched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from foleykit.config import SequenceConfig
from foleykit.errors import DataError

LOG_FLOOR = math.log(1e-5)  # AudioLDM log-mel floor: the energy of silence


def series_specs(seq: SequenceConfig) -> dict[str, tuple[float, int, str]]:
    """key -> (rate Hz, time axis, padding) of the time series foleykit examples carry.

    Padding: ``zero``, ``edge`` (repeat the border frame) or ``floor`` (the log-energy of silence).
    """
    return {
        "audio": (seq.sample_rate, 0, "zero"),
        "frames": (seq.video_fps, 0, "edge"),
        "motion": (seq.video_fps, 0, "zero"),
        "rms": (seq.control_rate, 0, "zero"),
        "rms_classes": (seq.control_rate, 0, "zero"),
        "energy": (seq.mel_rate, 0, "floor"),
        "onsets": (seq.latent_rate, 0, "zero"),
        "event_track": (seq.latent_rate, 0, "zero"),
        "latents": (seq.latent_rate, 1, "edge"),
    }


def _np(x: Any) -> tuple[np.ndarray, bool]:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy(), True
    return np.asarray(x), False


def _back(x: np.ndarray, was_torch: bool) -> Any:
    if was_torch:
        import torch

        return torch.from_numpy(np.ascontiguousarray(x))
    return x


def common_period(rates: list[float]) -> float:
    """Smallest time step that is a whole number of frames at every rate (1 / gcd of the rates)."""
    fr = [Fraction(r).limit_denominator(1000) for r in rates]
    num = 0
    den = 1
    for f in fr:
        den = den * f.denominator // math.gcd(den, f.denominator)
    for f in fr:
        num = math.gcd(num, f.numerator * (den // f.denominator))
    return float(Fraction(den, num)) if num else 0.0


def _shift_array(x: np.ndarray, frames: int, axis: int, pad: str) -> np.ndarray:
    n = x.shape[axis]
    if frames == 0 or n == 0:
        return x.copy()
    out = np.moveaxis(x, axis, 0)
    k = max(-n, min(n, frames))
    if pad == "edge":
        fill = np.repeat(out[:1] if k > 0 else out[-1:], abs(k), axis=0)
    else:
        fill = np.full((abs(k),) + out.shape[1:], LOG_FLOOR if pad == "floor" else 0, dtype=out.dtype)
    res = np.concatenate([fill, out[: n - k]], 0) if k > 0 else np.concatenate([out[-k:], fill], 0)
    return np.moveaxis(res, 0, axis)


def time_shift(
    example: Mapping[str, Any],
    seconds: float,
    *,
    seq: SequenceConfig,
    specs: dict[str, tuple[float, int, str]] | None = None,
) -> dict[str, Any]:
    """Delay every time series and event of ``example`` by ``seconds`` (negative: advance); length kept.

    The shift is rounded to the common period of the series present (25 Hz video, 125 Hz RMS, 100 Hz energy
    and 16 kHz audio -> 40 ms), so frame k of the video still matches the same audio samples.

    Returns:
        A new example; ``shift`` holds the applied shift in seconds. Events moved outside the window drop.
    """
    specs = specs or series_specs(seq)
    present = [k for k in example if k in specs]
    if not present:
        raise DataError(f"time_shift: the example has none of the time series {sorted(specs)}")
    q = common_period([specs[k][0] for k in present])
    steps = round(seconds / q) if q > 0 else 0
    shift = steps * q
    out = dict(example)
    for k in present:
        rate, axis, pad = specs[k]
        x, was_torch = _np(example[k])
        out[k] = _back(_shift_array(x, round(shift * rate), axis, pad), was_torch)
    if "events" in example:
        dur = _np(example["audio"])[0].shape[0] / seq.sample_rate if "audio" in example else seq.duration
        out["events"] = [
            {**e, "time": e["time"] + shift} for e in example["events"] if 0 <= e["time"] + shift < dur
        ]
    out["shift"] = shift
    return out


def apply_gain(example: Mapping[str, Any], gain: float) -> dict[str, Any]:
    """Scale the audio by ``gain`` (linear, > 0) and update the loudness controls that follow from it."""
    if not gain > 0:
        raise DataError(f"gain must be > 0, got {gain}")
    out = dict(example)
    for k in ("audio", "rms"):
        if k in example:
            x, t = _np(example[k])
            out[k] = _back((x * gain).astype(x.dtype), t)
    if "energy" in example:
        x, t = _np(example["energy"])
        out["energy"] = _back(np.maximum(x + math.log(gain), LOG_FLOOR).astype(x.dtype), t)
    if "rms_classes" in example and "rms" in out:
        from foleykit.controls import rms_to_classes

        r, _ = _np(out["rms"])
        _, t = _np(example["rms_classes"])
        out["rms_classes"] = _back(np.asarray(rms_to_classes(r), np.int64), t)
    if "events" in example:
        out["events"] = [{**e, "gain": e.get("gain", 1.0) * gain} for e in example["events"]]
    if "audio" in out:
        a, _ = _np(out["audio"])
        if a.size and float(np.max(np.abs(a))) > 1.0:
            raise DataError(f"gain {gain:.3f} makes the audio clip (peak {float(np.max(np.abs(a))):.3f} > 1)")
    return out


def random_gain(
    example: Mapping[str, Any], rng: np.random.Generator, *, db_range: tuple[float, float] = (-6.0, 6.0)
) -> dict[str, Any]:
    """``apply_gain`` with a gain uniform in dB, limited so that the audio peak stays <= 1."""
    g = 10 ** (float(rng.uniform(*db_range)) / 20)
    if "audio" in example:
        a, _ = _np(example["audio"])
        peak = float(np.max(np.abs(a))) if a.size else 0.0
        if peak > 0:
            g = min(g, 1.0 / peak)
    return apply_gain(example, g)


def concat_examples(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    split: float,
    seq: SequenceConfig,
    specs: dict[str, tuple[float, int, str]] | None = None,
    joiner: str = ", then ",
) -> dict[str, Any]:
    """VTA-LDM concat augmentation: ``a`` up to ``split`` seconds, then ``b`` from its start.

    ``split`` is rounded to the common frame period; both examples must hold the same series with the same
    lengths. Captions are joined (``"<a>, then <b>"``), events merged with b's moved by ``split``.
    """
    specs = specs or series_specs(seq)
    keys = [k for k in a if k in specs]
    if sorted(keys) != sorted(k for k in b if k in specs):
        raise DataError(
            f"concat: the examples hold different series ({sorted(keys)} vs "
            f"{sorted(k for k in b if k in specs)})"
        )
    q = common_period([specs[k][0] for k in keys])
    cut = round(split / q) * q
    out = dict(a)
    dur = None
    for k in keys:
        rate, axis, _ = specs[k]
        xa, t = _np(a[k])
        xb, _ = _np(b[k])
        if xa.shape != xb.shape:
            raise DataError(f"concat: {k!r} shapes differ ({xa.shape} vs {xb.shape})")
        n = xa.shape[axis]
        c = max(0, min(n, round(cut * rate)))
        head = np.take(xa, np.arange(c), axis=axis)
        tail = np.take(xb, np.arange(n - c), axis=axis)
        out[k] = _back(np.concatenate([head, tail], axis=axis), t)
        if k == "audio":
            dur = n / rate
    dur = dur if dur is not None else seq.duration
    if "caption" in a and "caption" in b:
        out["caption"] = f"{a['caption']}{joiner}{b['caption']}"
    if "events" in a or "events" in b:
        out["events"] = [e for e in a.get("events", []) if e["time"] < cut] + [
            {**e, "time": e["time"] + cut} for e in b.get("events", []) if e["time"] + cut < dur
        ]
    out["concat_split"] = cut
    return out


class ConditionDropout:
    """Per-sample dropout of conditions for classifier-free guidance.

    ReWaS drops the text with probability 0.3 while training its energy adapter; STA-V2A / VTA-LDM drop
    text (and optionally video) so that the same network learns the unconditional branch. The trainer
    replaces a dropped condition by its null embedding.

    Args:
        probs: condition name -> drop probability in [0, 1] (default ``{"text": 0.3}``).
        joint: Probability of dropping every condition of a sample at once (fully unconditional).
    """

    def __init__(self, *, probs: Mapping[str, float] | None = None, joint: float = 0.0) -> None:
        self.probs = dict(probs if probs is not None else {"text": 0.3})
        for k, p in {**self.probs, "joint": joint}.items():
            if not 0.0 <= float(p) <= 1.0:
                raise DataError(f"drop probability of {k!r} must be in [0, 1], got {p}")
        self.joint = float(joint)

    def __call__(self, batch_size: int, *, generator: Any = None) -> dict[str, Any]:
        """Boolean masks ``Tensor[B]`` per condition, True = drop it for that sample."""
        import torch

        g = generator
        joint = torch.rand(batch_size, generator=g) < self.joint
        return {k: (torch.rand(batch_size, generator=g) < p) | joint for k, p in self.probs.items()}

    @staticmethod
    def drop_captions(captions: list[str], mask: Any, *, null: str = "") -> list[str]:
        """Captions with the dropped ones replaced by ``null``."""
        return [null if bool(m) else c for c, m in zip(captions, mask)]
