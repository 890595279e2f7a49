"""Extractors of the feature cache: what is computed once per clip, whatever the storage backend.

An extractor is any object with ``name``, ``config()`` (identifies its settings in a cache's index) and
``__call__(clip: ClipData) -> {array name: ndarray}``. Registered ones (``foleykit.registry`` kind
``"extractor"``): ``audio``, ``rms``, ``energy``, ``onsets``, ``motion``, ``frames``, ``events``,
``latents`` (needs an encoder object: ``LatentsExtractor(encoder=vae)``). A new per-clip array (e.g.
keypoints read from the clip's json sidecar, ``clip.record.sidecar_json``) is one more registered class.

:class:`ClipData` decodes a clip lazily, once for all extractors: the clip as recorded, or (``window=True``,
the array backend) the model window ``[start, start + seq.duration)`` with audio and frames padded / cut to
the window's sample and frame counts, so that every clip's arrays have one shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from foleykit.config import SequenceConfig
from foleykit.data.manifest import ClipRecord
from foleykit.errors import DataError
from foleykit.registry import get, register

#: Array name in a cache -> field name in the items the training stages read (where they differ).
ITEM_NAMES = {"rms_classes": "rms_class"}


class ClipData:
    """One clip decoded lazily at the cache geometry and shared by all extractors.

    Attributes:
        record: The clip record.
        seq: Rates (audio at ``seq.sample_rate``, frames at ``seq.video_fps``).
    """

    def __init__(
        self, record: ClipRecord, seq: SequenceConfig, *, prefer_wav: bool = True, window: bool = False
    ) -> None:
        self.record, self.seq, self.prefer_wav, self.window = record, seq, prefer_wav, window
        self._frames: dict[Any, np.ndarray] = {}

    @property
    def duration(self) -> float | None:
        """Seconds read from ``record.start``: the model window (``window``), else the record's span."""
        if self.window:
            return self.seq.duration
        r = self.record
        return None if r.end is None else r.end - r.start

    @cached_property
    def audio(self) -> np.ndarray:
        """Mono float32 ``(T,)`` at ``seq.sample_rate`` (the sidecar lossless wav when present; with
        ``window``, exactly ``seq.num_samples`` long, zero-padded)."""
        from foleykit.data.datasets import fit_length
        from foleykit.media import read_audio

        r = self.record
        src = r.sidecar_wav if self.prefer_wav and r.sidecar_wav.is_file() else r.path
        wav = read_audio(src, sample_rate=self.seq.sample_rate, start=r.start, duration=self.duration)
        return fit_length(wav, self.seq.num_samples).astype(np.float32) if self.window else wav

    def frames(self, size: int | tuple[int, int] | None = None) -> np.ndarray:
        """uint8 ``(T_v, H, W, 3)`` at ``seq.video_fps`` (``size``: short side or (w, h); with ``window``,
        exactly ``seq.num_video_frames`` frames, the last one repeated)."""
        from foleykit.data.datasets import fit_length
        from foleykit.media import read_video

        key = size if not isinstance(size, list) else tuple(size)
        if key not in self._frames:
            r = self.record
            frames = read_video(
                r.path, fps=self.seq.video_fps, size=size, start=r.start, duration=self.duration
            ).frames
            if self.window:
                frames = np.ascontiguousarray(fit_length(frames, self.seq.num_video_frames))
            self._frames[key] = frames
        return self._frames[key]


class Extractor:
    """Base class: ``__call__(clip) -> {array name: ndarray}``; ``config()`` identifies the settings."""

    name = "extractor"

    def __init__(self, *, seq: SequenceConfig | None = None) -> None:
        self.seq = seq or SequenceConfig()

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError


@register("extractor", "audio")
class AudioExtractor(Extractor):
    """The waveform at the model rate: ``audio`` float32 (T,)."""

    name = "audio"

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:
        return {"audio": clip.audio.astype(np.float32)}


@register("extractor", "rms")
class RMSExtractor(Extractor):
    """Stable-V2A RMS control at ``seq.control_rate``: ``rms`` float32 (N,) and 64 mu-law ``rms_classes``."""

    name = "rms"

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:
        from foleykit.controls import rms_envelope, rms_to_classes

        c = rms_envelope(clip.audio, self.seq.sample_rate, seq=self.seq)
        return {
            "rms": c.values.astype(np.float32),
            "rms_classes": np.asarray(rms_to_classes(c.values), np.int64),
        }


@register("extractor", "energy")
class EnergyExtractor(Extractor):
    """ReWaS energy (log-mel log-mel mean, Savitzky-Golay 9/2 unless ``smooth=False``), ``seq.mel_rate``."""

    name = "energy"

    def __init__(self, *, seq: SequenceConfig | None = None, smooth: bool = True) -> None:
        super().__init__(seq=seq)
        self.smooth = bool(smooth)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "smooth": self.smooth}

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:
        from foleykit.controls import energy

        return {"energy": energy(clip.audio, self.seq.sample_rate, smooth=self.smooth, seq=self.seq).values}


@register("extractor", "onsets")
class OnsetsExtractor(Extractor):
    """Onset pseudo-labels (STA-V2A) from the audio: ``onsets`` (N_latent,) binary and ``onset_times``."""

    name = "onsets"

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:
        from foleykit.controls import onsets

        c = onsets(clip.audio, self.seq.sample_rate, seq=self.seq)
        return {"onsets": c.values.astype(np.float32), "onset_times": np.asarray(c.meta["times"], np.float64)}


@register("extractor", "motion")
class MotionExtractor(Extractor):
    """Weight-free motion statistics per frame (``controls.motion_features``) at ``size`` px short side."""

    name = "motion"

    def __init__(self, *, seq: SequenceConfig | None = None, size: int = 128) -> None:
        super().__init__(seq=seq)
        self.size = int(size)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size}

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:
        from foleykit.controls import motion_features

        return {"motion": motion_features(clip.frames(self.size)).astype(np.float32)}


@register("extractor", "frames")
class FramesExtractor(Extractor):
    """Decoded frames at a small size: ``frames`` uint8 (T_v, H, W, 3), ``size`` = (w, h) or short side."""

    name = "frames"

    def __init__(self, *, seq: SequenceConfig | None = None, size: int | Sequence[int] = 64) -> None:
        super().__init__(seq=seq)
        self.size = int(size) if isinstance(size, (int, np.integer)) else tuple(int(v) for v in size)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size if isinstance(self.size, int) else list(self.size)}

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:
        return {"frames": np.ascontiguousarray(clip.frames(self.size))}


@register("extractor", "events")
class EventsExtractor(Extractor):
    """Ground-truth events of synthetic clips (sidecar json): ``event_times``, ``event_gains`` and an
    ``event_track`` (N_latent,) with a 1 in each latent frame holding an event; empty without a sidecar."""

    name = "events"

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:
        from foleykit.controls import onset_track

        ev = clip.record.events()
        dur = clip.duration if clip.duration is not None else len(clip.audio) / self.seq.sample_rate
        geo = self.seq.with_duration(dur)
        times = np.array([e["time"] for e in ev], np.float64)
        track = onset_track(times, rate=geo.latent_rate, num_frames=geo.num_latent_frames)
        return {
            "event_times": times,
            "event_gains": np.array([e.get("gain", 1.0) for e in ev], np.float32),
            "event_track": track.values.astype(np.float32),
        }


@register("extractor", "latents")
class LatentsExtractor(Extractor):
    """Latents of the audio from any object with ``encode_audio(wav) -> array/tensor`` (the trainer's VAE).

    Args:
        encoder: The encoder (called with mono float32 ``(T,)`` at ``seq.sample_rate``).
        seq: Rates.
        tag: Identifies the encoder in the cache index (e.g. its checkpoint name), so a cache made with
            another encoder is not silently reused.
    """

    name = "latents"

    def __init__(self, *, encoder: Any = None, seq: SequenceConfig | None = None, tag: str = "") -> None:
        super().__init__(seq=seq)
        if encoder is None or not hasattr(encoder, "encode_audio"):
            raise DataError(
                "the latents extractor needs an encoder object with an encode_audio(wav) method "
                "(from Python: LatentsExtractor(encoder=vae)); it cannot be built from a name alone"
            )
        self.encoder, self.tag = encoder, tag or type(encoder).__name__

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "encoder": self.tag}

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:
        z = self.encoder.encode_audio(clip.audio)
        if hasattr(z, "detach"):
            z = z.detach().float().cpu().numpy()
        return {"latents": np.ascontiguousarray(np.asarray(z, dtype=np.float32))}


def make_extractors(
    names_or_objects: Sequence[str | Extractor],
    *,
    seq: SequenceConfig,
    options: dict[str, dict[str, Any]] | None = None,
) -> list[Extractor]:
    """Extractors from registry names (with per-name keyword ``options``) or ready objects."""
    out: list[Extractor] = []
    for x in names_or_objects:
        if isinstance(x, str):
            out.append(get("extractor", x.strip())(seq=seq, **(options or {}).get(x.strip(), {})))
        else:
            out.append(x)
    names = [e.name for e in out]
    if len(set(names)) != len(names) or not names:
        raise DataError(f"extractors must be a non-empty list of distinct names, got {names}")
    return out


#: Where the stored video features' pose comes from (``VideoInputsExtractor(pose=...)``).
POSE_SOURCES = ("model", "keypoints")


@register("extractor", "video")
class VideoInputsExtractor(Extractor):
    """What training needs of a video encoder, once per clip; the encoder decides what that is:

    - a frozen encoder (``encoder.frozen``): its features, ``video_features`` float32 ``(T_v, D)``;
    - a trainable ``ConcatVideoEncoder`` (``motion+frame_cnn``): each frozen part's features,
      ``video_part<i>`` float32 ``(T_v, D_i)``, and the ``frames`` its trainable parts see;
    - any other trainable encoder: ``frames``.

    ``frames`` are uint8 ``(T_v, S, S, 3)``, square at the largest trainable part's ``input_size`` (what
    the encoder resizes to itself), taken from the clip decoded at the encoder's ``input_size`` as the
    pipeline decodes it. :func:`encode_prepared` turns the arrays back into the encoder's features, equal
    to ``encoder.encode(frames)`` on the decoded clip.

    Where the pose comes from, for an encoder that can take keypoints (``encoder.accepts_keypoints``: the scene
    encoder), is ``pose``:

    - ``"model"`` (default): its pose model runs on the picture, exactly as at inference, so a predictor
      trained on the features learns from the keypoints it will be given;
    - ``"keypoints"``: the clip's pose ground truth (:func:`clip_keypoints`, the synthetic generator's exact
      joints) replaces the pose model where the clip has one. A predictor trained so learns timing from exact
      feet and loses it on the pose model's keypoints (the model card, "Pose in training").

    Args:
        encoder: The video encoder (``foleykit.encoders.video``).
        seq: Rates.
        tag: Identifies the encoder's weights in the cache index (a frozen encoder with weights).
        pose: ``"model"`` or ``"keypoints"`` (see above; recorded in the store's index).

    Raises:
        DataError: no encoder object, or an unknown ``pose``.
    """

    name = "video"

    def __init__(
        self, *, encoder: Any = None, seq: SequenceConfig | None = None, tag: str = "", pose: str = "model"
    ) -> None:
        super().__init__(seq=seq)
        if encoder is None or not hasattr(encoder, "encode"):
            raise DataError(
                "the video extractor needs a video encoder object (from Python: "
                "VideoInputsExtractor(encoder=pipe.video_encoder)); it cannot be built from a name alone"
            )
        if pose not in POSE_SOURCES:
            raise DataError(f"pose must be one of {', '.join(POSE_SOURCES)}, got {pose!r}")
        self.encoder, self.tag, self.pose = encoder, tag, pose

    @property
    def takes_keypoints(self) -> bool:
        """The clip's pose ground truth is given to the encoder (``pose="keypoints"`` and an encoder that
        takes keypoints, whose features are stored)."""
        return (
            self.pose == "keypoints"
            and self.layout()[1] is None
            and bool(getattr(self.encoder, "accepts_keypoints", False))
        )

    def layout(self) -> tuple[list[int], int | None]:
        """(indices of the parts whose features are stored, square side of the stored frames or None)."""
        enc = self.encoder
        if getattr(enc, "frozen", True):
            return [], None
        parts = list(getattr(enc, "parts", None) or [])
        if not parts:
            return [], int(enc.input_size)
        frozen = [i for i, p in enumerate(parts) if getattr(p, "frozen", True)]
        size = max(int(p.input_size) for i, p in enumerate(parts) if i not in frozen)
        return frozen, size

    def config(self) -> dict[str, Any]:
        parts, size = self.layout()
        return {
            "name": self.name,
            "encoder": type(self.encoder).__name__,
            "input_size": int(self.encoder.input_size),
            "parts": parts,
            "frame_size": size,
            "tag": self.tag,
            **({"pose": self.pose} if getattr(self.encoder, "accepts_keypoints", False) else {}),
        }

    def __call__(self, clip: ClipData) -> dict[str, np.ndarray]:
        import torch

        frames = clip.frames(int(self.encoder.input_size))
        parts, size = self.layout()
        out: dict[str, np.ndarray] = {}
        kw = {}
        if self.takes_keypoints:
            kp = clip_keypoints(clip.record)
            if kp is not None:
                kw["keypoints"] = kp
        with torch.no_grad():
            if size is None:
                out["video_features"] = self.encoder.encode(frames, **kw)[0].float().cpu().numpy()
            for i in parts:
                out[f"video_part{i}"] = self.encoder.parts[i].encode(frames)[0].float().cpu().numpy()
        if size is not None:
            out["frames"] = square_frames(frames, size)
        return out


def clip_keypoints(record: Any) -> dict[str, Any] | None:
    """The pose ground truth a clip's json carries (``keypoints``, written by the synthetic generator), cut to
    the record's window (``record.start``); None when the clip has none.

    With ``VideoInputsExtractor(pose="keypoints")`` a frozen encoder that ``accepts_keypoints`` (the scene
    encoder) takes them in place of its pose model.
    """
    kp = record.metadata().get("keypoints")
    if not isinstance(kp, dict) or not kp.get("people"):
        return None
    skip = int(round(float(record.start or 0.0) * float(kp.get("fps", 0.0) or 0.0)))
    if skip > 0:
        kp = {**kp, "people": [{**p, "points": p["points"][skip:]} for p in kp["people"]]}
    return kp


def square_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(T, H, W, 3)`` -> ``(T, size, size, 3)`` with OpenCV (area filter when shrinking), the resize
    the trainable video encoders apply to their input."""
    import cv2

    if frames.shape[1:3] == (size, size):
        return np.ascontiguousarray(frames)
    interp = cv2.INTER_AREA if min(frames.shape[1:3]) >= size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def encode_prepared(encoder: Any, batch: Any) -> Any:
    """The video encoder's features ``Tensor[B x T_v x D]`` from the arrays :class:`VideoInputsExtractor`
    prepared (``video_features``; or ``frames`` + ``video_part<i>``; or ``frames``), batched ``[B x ...]``.

    Raises:
        DataError: the batch holds none of them.
    """
    import torch

    if "video_features" in batch:
        return torch.as_tensor(batch["video_features"]).float()
    if "frames" not in batch:
        raise DataError("the batch has no prepared video ('video_features' or 'frames')")
    cached = {int(k[len("video_part") :]): batch[k] for k in batch if str(k).startswith("video_part")}
    if cached:
        return encoder.encode_cached(batch["frames"], cached).float()
    return encoder.encode(batch["frames"]).float()
