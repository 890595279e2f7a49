"""Preprocessing cache: per-clip features, controls and latents computed once, resumable and parallel.

``build_cache(source, output, extractors=["rms", "motion", ...])`` decodes every clip of a manifest or
folder once, runs the extractors on it and stores the arrays in sharded safetensors files
(``shard-00000.safetensors``, keys ``<clip key>/<array name>``) with an ``index.json`` that records the
``SequenceConfig``, each extractor's configuration and, per clip, its shard and metadata.

Resumable: each finished clip is first written to ``parts/<key>.safetensors`` (atomically); parts are
packed into a shard every ``shard_size`` clips and the index is rewritten atomically. A killed run keeps
every finished clip; running the same command again skips them and computes only the rest. A cache made
with other extractor settings is refused (use another folder or ``overwrite=True``).

Extractors are registered in ``foleykit.registry`` under kind ``"extractor"`` (``audio``, ``rms``,
``energy``, ``onsets``, ``motion``, ``frames``, ``events``, ``latents``); any object with ``name``,
``config()`` and ``__call__(clip) -> dict[str, ndarray]`` works too (e.g. ``LatentsExtractor(encoder=vae)``
where ``vae.encode_audio(wav)`` returns the latents: the trainer plugs its autoencoder this way).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.config import SequenceConfig
from foleykit.data.manifest import ClipRecord, load_records
from foleykit.errors import DataError
from foleykit.registry import get, register
from foleykit.utils.io import atomic_path, atomic_write_json

log = logging.getLogger(__name__)
INDEX_NAME = "index.json"
CACHE_VERSION = 1


class ClipData:
    """One clip decoded lazily at the cache geometry and shared by all extractors.

    Attributes:
        record: The clip record.
        seq: Rates (audio at ``seq.sample_rate``, frames at ``seq.video_fps``).
    """

    def __init__(self, record: ClipRecord, seq: SequenceConfig, *, prefer_wav: bool = True) -> None:
        self.record, self.seq, self.prefer_wav = record, seq, prefer_wav
        self._frames: dict[Any, np.ndarray] = {}

    @property
    def duration(self) -> float | None:
        r = self.record
        return None if r.end is None else r.end - r.start

    @cached_property
    def audio(self) -> np.ndarray:
        """Mono float32 ``(T,)`` at ``seq.sample_rate`` (the sidecar lossless wav when present)."""
        from foleykit.media import read_audio

        r = self.record
        src = r.sidecar_wav if self.prefer_wav and r.sidecar_wav.is_file() else r.path
        return read_audio(src, sample_rate=self.seq.sample_rate, start=r.start, duration=self.duration)

    def frames(self, size: int | tuple[int, int] | None = None) -> np.ndarray:
        """uint8 ``(T_v, H, W, 3)`` at ``seq.video_fps`` (``size``: short side or (w, h))."""
        from foleykit.media import read_video

        key = size if not isinstance(size, list) else tuple(size)
        if key not in self._frames:
            r = self.record
            self._frames[key] = read_video(
                r.path, fps=self.seq.video_fps, size=size, start=r.start, duration=self.duration
            ).frames
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


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@#=-]", "_", key)


def _run_one(
    record: ClipRecord, extractors: list[Extractor], seq: SequenceConfig, prefer_wav: bool
) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
    clip = ClipData(record, seq, prefer_wav=prefer_wav)
    arrays: dict[str, np.ndarray] = {}
    for ex in extractors:
        for k, v in ex(clip).items():
            if k in arrays:
                raise DataError(
                    f"extractor {ex.name!r} returns {k!r}, which another extractor already returned"
                )
            arrays[k] = np.ascontiguousarray(v)
    meta = {
        "path": str(record.path),
        "caption": record.caption,
        "start": record.start,
        "end": record.end,
        "category": record.category,
    }
    return record.key, arrays, meta


_POOL: dict[str, Any] = {}


def _pool_init(names: list[str], seq_dict: dict[str, Any], options: dict[str, Any], prefer_wav: bool) -> None:
    import cv2

    cv2.setNumThreads(1)
    seq = SequenceConfig.from_dict(seq_dict)
    _POOL.update(extractors=make_extractors(names, seq=seq, options=options), seq=seq, prefer_wav=prefer_wav)


def _pool_run(record: ClipRecord) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
    return _run_one(record, _POOL["extractors"], _POOL["seq"], _POOL["prefer_wav"])


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp))


def _load(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


class FeatureCache:
    """Read access to a cache folder: ``keys``, ``meta(key)``, ``load(key) -> {array name: ndarray}``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        index = self.folder / INDEX_NAME
        if not index.is_file():
            raise DataError(
                f"{self.folder} is not a feature cache (no {INDEX_NAME}); build it with `foleykit data cache`"
            )
        try:
            self.index = json.loads(index.read_text(encoding="utf-8"))
            self.items: dict[str, dict[str, Any]] = self.index["items"]
        except (ValueError, KeyError) as e:
            raise DataError(f"{index} is malformed ({e}); rebuild the cache") from e
        self._shard: tuple[str, dict[str, np.ndarray]] | None = None

    @property
    def keys(self) -> list[str]:
        return list(self.items)

    @property
    def seq(self) -> SequenceConfig:
        return SequenceConfig.from_dict(self.index["seq"])

    def __len__(self) -> int:
        return len(self.items)

    def meta(self, key: str) -> dict[str, Any]:
        return self.items[key]

    def load(self, key: str) -> dict[str, np.ndarray]:
        """The arrays of one clip (the last shard read stays in memory)."""
        if key not in self.items:
            raise DataError(f"{key!r} is not in the cache {self.folder}")
        shard = self.items[key]["shard"]
        if self._shard is None or self._shard[0] != shard:
            self._shard = (shard, _load(self.folder / shard))
        prefix = f"{key}/"
        return {k[len(prefix) :]: v for k, v in self._shard[1].items() if k.startswith(prefix)}


class CachedDataset:
    """A torch ``Dataset`` over a FeatureCache: items are ``{array name: Tensor, "caption", "key", ...}``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.cache = FeatureCache(folder)
        self.keys = self.cache.keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        key = self.keys[index]
        item: dict[str, Any] = {k: torch.from_numpy(v.copy()) for k, v in self.cache.load(key).items()}
        m = self.cache.meta(key)
        item.update(key=key, caption=m.get("caption", ""), category=m.get("category") or "")
        return item


def build_cache(
    source: str | os.PathLike | Sequence[ClipRecord],
    output: str | os.PathLike,
    *,
    extractors: Sequence[str | Extractor],
    seq: SequenceConfig | None = None,
    workers: int = 1,
    shard_size: int = 64,
    options: dict[str, dict[str, Any]] | None = None,
    overwrite: bool = False,
    prefer_wav: bool = True,
    progress: bool = True,
    limit: int | None = None,
) -> dict[str, int]:
    """Compute extractor outputs for every clip of ``source`` into ``output`` (see the module docstring).

    Args:
        source: Manifest CSV, folder of clips, or ClipRecords.
        output: Cache folder.
        extractors: Registry names and/or Extractor objects.
        seq: Geometry (default ``SequenceConfig()``).
        workers: Processes (objects that are not registry names run in this process).
        shard_size: Clips per shard file.
        options: Per-extractor keyword options, e.g. ``{"frames": {"size": 64}}``.
        overwrite: Discard an existing cache made with other settings.
        prefer_wav: Read audio from a sidecar ``<stem>.wav`` when present.
        progress: tqdm progress bar.
        limit: Stop after computing this many new clips (the rest is left for a later run).

    Returns:
        {"computed": n, "skipped": n, "total": n}.
    """
    import shutil

    from tqdm.auto import tqdm

    seq = seq or SequenceConfig()
    records = load_records(source)
    exts = make_extractors(extractors, seq=seq, options=options)
    out = Path(output)
    config = {e.name: e.config() for e in exts}
    index_path = out / INDEX_NAME
    if index_path.is_file():
        old = json.loads(index_path.read_text(encoding="utf-8"))
        if old.get("extractors") != config or old.get("seq") != seq.to_dict():
            if not overwrite:
                raise DataError(
                    f"the cache in {out} was built with other settings (extractors {old.get('extractors')}, "
                    f"seq {old.get('seq')}); use another folder or --overwrite"
                )
            shutil.rmtree(out)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    index = (
        json.loads(index_path.read_text(encoding="utf-8"))
        if index_path.is_file()
        else {
            "version": CACHE_VERSION,
            "seq": seq.to_dict(),
            "extractors": config,
            "source": str(source) if isinstance(source, (str, os.PathLike)) else "records",
            "items": {},
            "shards": [],
        }
    )
    done = set(index["items"])
    parts = {p.stem: p for p in (out / "parts").glob("*.safetensors")}
    todo = [r for r in records if r.key not in done and _safe(r.key) not in parts]
    pending: dict[str, tuple[dict[str, np.ndarray], dict[str, Any]]] = {}
    metas_path = out / "parts" / "meta.json"
    part_meta = json.loads(metas_path.read_text(encoding="utf-8")) if metas_path.is_file() else {}
    for r in records:  # finished parts of a previous run
        if r.key not in done and _safe(r.key) in parts and r.key in part_meta:
            pending[r.key] = (_load(parts[_safe(r.key)]), part_meta[r.key])
        elif r.key not in done and _safe(r.key) in parts:
            todo.append(r)  # a part without its metadata: recompute
    if limit is not None:
        todo = todo[: max(0, int(limit))]

    def flush(force: bool) -> None:
        while pending and (force or len(pending) >= shard_size):
            keys = list(pending)[:shard_size]
            name = f"shard-{len(index['shards']):05d}.safetensors"
            arrays = {f"{k}/{a}": v for k in keys for a, v in pending[k][0].items()}
            _save(out / name, arrays)
            for k in keys:
                index["items"][k] = {**pending.pop(k)[1], "shard": name}
            index["shards"].append(name)
            atomic_write_json(index_path, index)
            for k in keys:
                (out / "parts" / f"{_safe(k)}.safetensors").unlink(missing_ok=True)
                part_meta.pop(k, None)
            atomic_write_json(metas_path, part_meta)

    def accept(key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        _save(out / "parts" / f"{_safe(key)}.safetensors", arrays)
        part_meta[key] = meta
        atomic_write_json(metas_path, part_meta)
        pending[key] = (arrays, meta)
        flush(False)

    atomic_write_json(index_path, index)
    by_name = all(isinstance(x, str) for x in extractors)
    bar = tqdm(total=len(todo), desc="cache", unit="clip", disable=not progress)
    try:
        if workers > 1 and by_name and len(todo) > 1:
            from concurrent.futures import ProcessPoolExecutor

            from foleykit.data.bank import _mp_context

            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=_mp_context(["foleykit.data.cache", "foleykit.media"]),
                initializer=_pool_init,
                initargs=(list(extractors), seq.to_dict(), options or {}, prefer_wav),
            ) as pool:
                for key, arrays, meta in pool.map(_pool_run, todo, chunksize=1):
                    accept(key, arrays, meta)
                    bar.update(1)
        else:
            if workers > 1 and not by_name:
                log.warning("extractor objects run in this process; workers=%d ignored", workers)
            for r in todo:
                accept(*_run_one(r, exts, seq, prefer_wav))
                bar.update(1)
        if limit is None or len(index["items"]) + len(pending) == len(records):
            flush(True)
    finally:
        bar.close()
    return {"computed": len(todo), "skipped": len(records) - len(todo), "total": len(records)}
