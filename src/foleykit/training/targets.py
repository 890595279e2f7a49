"""Ground-truth timing controls computed from a clip's audio, on the model's grids (training targets).

ReWaS and Stable-V2A train their adapters on controls taken from the ground-truth audio (the predictor
replaces them at inference); the timing predictors learn to produce the same signals from video. All
values come from :mod:`foleykit.controls` (the one implementation of each signal) and are fitted to the
clip's frame counts from :class:`~foleykit.config.SequenceConfig`:

- ``energy``: ReWaS energy (AudioLDM log-mel mean, Savitzky-Golay 9/2) at ``seq.mel_rate``,
  ``seq.num_energy_frames`` frames;
- ``rms``: Stable-V2A RMS envelope (padded RMS, zero-phase low-pass) at ``seq.control_rate``,
  ``seq.num_control_frames`` frames; ``rms_class``: its 64 mu-law classes;
- ``onsets``: onset track at ``seq.latent_rate`` (``seq.num_latent_frames``): the exact event times when the
  data knows them (synthetic data), else librosa onset detection (STA-V2A pseudo-labels);
- ``presence``: event presence per video frame (Rhythmic Foley event detector target): a frame is active when
  the RMS envelope inside it reaches the mu-law floor ``RMS_MIN`` (0.01), as the pipeline measures an
  ``events`` control from a reference audio.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError

KINDS = ("energy", "rms", "rms_class", "onsets", "presence")


def _fit(x: np.ndarray, n: int, pad: float) -> np.ndarray:
    if x.shape[-1] >= n:
        return x[..., :n]
    return np.concatenate([x, np.full(n - x.shape[-1], pad, dtype=x.dtype)])


def control_targets(
    audio: np.ndarray | torch.Tensor,
    seq: SequenceConfig,
    kinds: Iterable[str],
    *,
    onset_times: Iterable[float] | None = None,
) -> dict[str, np.ndarray]:
    """Ground-truth controls of one clip.

    Args:
        audio: Mono waveform ``(T,)`` at ``seq.sample_rate`` (``seq.num_samples`` long; shorter is padded).
        seq: Geometry (rates and clip duration).
        kinds: Subset of :data:`KINDS`.
        onset_times: Exact event times in seconds, when known (otherwise onsets are detected).

    Returns:
        kind -> array: float32 for energy / rms / onsets / presence, int64 for rms_class.

    Raises:
        ConfigError: an unknown kind.
    """
    kinds = list(dict.fromkeys(kinds))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ConfigError(f"unknown control target(s) {unknown}; valid: {', '.join(KINDS)}")
    wav = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    wav = _fit(wav.astype(np.float32, copy=False).reshape(-1), seq.num_samples, 0.0)
    out: dict[str, np.ndarray] = {}
    if "energy" in kinds:
        from foleykit.controls.energy import energy

        e = energy(wav, seq.sample_rate, smooth=True, seq=seq).values
        out["energy"] = _fit(e.astype(np.float32), seq.num_energy_frames, float(np.log(1e-5)))
    rms = None
    if {"rms", "rms_class", "presence"} & set(kinds):
        from foleykit.controls.rms import rms_envelope

        rms = _fit(
            rms_envelope(wav, seq.sample_rate, seq=seq).values.astype(np.float32), seq.num_control_frames, 0.0
        )
    if "rms" in kinds:
        out["rms"] = rms
    if "rms_class" in kinds:
        from foleykit.controls.rms import rms_to_classes

        out["rms_class"] = rms_to_classes(rms).astype(np.int64)
    if "onsets" in kinds:
        from foleykit.controls.onsets import detect_onsets, onset_track

        times = list(onset_times) if onset_times is not None else detect_onsets(wav, seq.sample_rate)
        out["onsets"] = onset_track(times, rate=seq.latent_rate, num_frames=seq.num_latent_frames).values
    if "presence" in kinds:
        from foleykit.controls.rms import RMS_MIN
        from foleykit.models.predictors import EventDetector

        pres = EventDetector.presence_targets(
            torch.from_numpy(rms)[None], seq.num_video_frames, threshold=RMS_MIN
        )
        out["presence"] = pres[0].numpy().astype(np.float32)
    return out


def onset_times_of(item: Mapping[str, Any]) -> list[float] | None:
    """Exact event times of a data item when it carries them (``events`` list with ``time``), else None."""
    events = item.get("events")
    if isinstance(events, (list, tuple)) and all(isinstance(e, Mapping) and "time" in e for e in events):
        return [float(e["time"]) for e in events]
    return None


class WithTargets:
    """A dataset view that adds ground-truth controls to items that lack them (computed from ``audio``).

    Items keep every field of the wrapped dataset; ``onset_times`` is added from an ``events`` list when the
    data knows the exact event times. Targets already present (e.g. from the feature cache) are used as
    they are. Computation is deterministic (no randomness), so resumed runs see the same targets.

    Args:
        base: A map-style dataset of dict items with ``audio`` (``Tensor[T]`` / ndarray).
        seq: Geometry of the targets.
        kinds: Targets to provide (subset of :data:`KINDS`).
    """

    def __init__(self, base: Any, *, seq: SequenceConfig, kinds: Iterable[str]) -> None:
        self.base, self.seq, self.kinds = base, seq, [k for k in dict.fromkeys(kinds)]
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ConfigError(f"unknown control target(s) {unknown}; valid: {', '.join(KINDS)}")

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.base[index])
        times = item.get("onset_times")
        if times is None:
            times = onset_times_of(item)
            if times is not None:
                item["onset_times"] = times
        missing = [k for k in self.kinds if item.get(k) is None]
        if missing:
            if item.get("audio") is None:
                raise ConfigError(f"item {index} has no audio to compute the {missing} targets from")
            item.update(control_targets(item["audio"], self.seq, missing, onset_times=times))
        return item


#: Cache array name -> item field (the feature cache's names differ where noted).
CACHE_FIELDS = {
    "latents": "latents",
    "video_features": "video_features",
    "energy": "energy",
    "rms": "rms",
    "rms_classes": "rms_class",
    "audio_tokens": "audio_tokens",
    "audio_mask": "audio_mask",
}


class WithCache:
    """A dataset view that adds the feature cache's arrays of each item (matched by the item's ``key``).

    Args:
        base: Dataset of dict items with a ``key`` (``foleykit.data.datasets.VideoClipDataset``).
        cache: A ``foleykit.data.cache.FeatureCache`` built over the same windows.
    """

    def __init__(self, base: Any, cache: Any) -> None:
        self.base, self.cache = base, cache
        self._keys = set(cache.keys)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.base[index])
        key = item.get("key")
        if key in self._keys:
            for name, arr in self.cache.load(key).items():
                if name in CACHE_FIELDS:
                    item[CACHE_FIELDS[name]] = torch.from_numpy(np.array(arr))
        return item
