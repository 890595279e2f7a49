"""Array store of a clip dataset: every per-clip input a CPU training run needs, decoded once.

A training run on a 2-core CPU cannot afford to decode 10 s videos and recompute optical flow at every
step (the ``foleykit-demo`` predictor stage spent most of its 4.4 s per step in Farneback flow). The store
decodes each clip once, exactly as the pipeline does at inference (``read_video(fps=seq.video_fps,
size=encoder.input_size)``), and keeps on disk, as numpy memory maps::

    <store>/index.json                    geometry, per split: keys, captions, categories, sizes
    <store>/<split>/audio.npy             float32 (N, seq.num_samples)       the lossless soundtrack
    <store>/<split>/motion.npy            float32 (N, T_v, 11)               weight-free motion statistics
    <store>/<split>/frames.npy            uint8   (N, T_v, S, S, 3)          frames at the frame CNN's size
    <store>/<split>/rms.npy, rms_class.npy float32 / int16 (N, N_ctrl)       Stable-V2A envelope + classes
    <store>/<split>/done.npy              bool    (N,)                        finished clips (resumable)

and later, from the trained components: ``audio_tokens.npy`` / ``audio_mask.npy`` (frozen reference-audio
encoder), ``latents.npy`` (trained autoencoder) and ``video_features.npy`` (trained video encoder).

:class:`StoreDataset` serves dict items (``audio``, ``frames``, ``motion``, ``video_features``,
``latents``, ``rms``, ``rms_class``, ``audio_tokens``, ``caption``, ``category_index``...) to the
training stages of ``foleykit.training.stages`` with no decoding; :class:`AudioCrops` serves fixed-length
crops of the soundtracks (autoencoder) and :class:`FrameWindows` aligned video/control windows (predictor).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError, DataError

INDEX = "index.json"
SPLITS = ("train", "validation", "test")


def _open(path: Path, mode: str, dtype: Any = None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if mode == "w+":
        path.parent.mkdir(parents=True, exist_ok=True)
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    return np.load(path, mmap_mode=mode)


def read_index(store: str | os.PathLike) -> dict[str, Any]:
    """The store's ``index.json``.

    Raises:
        DataError: the folder is not an array store.
    """
    f = Path(store) / INDEX
    if not f.is_file():
        raise DataError(
            f"{store} is not an array store (no {INDEX}); build it with "
            "`python -m foleykit.training.demo prepare`"
        )
    return json.loads(f.read_text(encoding="utf-8"))


def _clip_arrays(
    record: Any, seq: SequenceConfig, decode_size: int, frame_size: int
) -> dict[str, np.ndarray]:
    """Decode one clip window and compute its arrays (what the pipeline computes at inference)."""
    import cv2

    from foleykit.data.datasets import fit_length
    from foleykit.encoders.video import MotionVideoEncoder
    from foleykit.media import read_audio, read_video
    from foleykit.training.targets import control_targets

    src = record.sidecar_wav if record.sidecar_wav.is_file() else record.path
    wav = fit_length(
        read_audio(src, sample_rate=seq.sample_rate, start=record.start, duration=seq.duration),
        seq.num_samples,
    ).astype(np.float32)
    clip = read_video(
        record.path, fps=seq.video_fps, size=decode_size, start=record.start, duration=seq.duration
    )
    frames = np.ascontiguousarray(fit_length(clip.frames, seq.num_video_frames))
    motion = MotionVideoEncoder(input_size=decode_size).encode(frames)[0].numpy()
    interp = cv2.INTER_AREA if min(frames.shape[1:3]) >= frame_size else cv2.INTER_LINEAR
    small = np.stack([cv2.resize(f, (frame_size, frame_size), interpolation=interp) for f in frames])
    tg = control_targets(wav, seq, ["rms", "rms_class"])
    return {
        "audio": wav,
        "motion": motion.astype(np.float32),
        "frames": small,
        "rms": tg["rms"],
        "rms_class": tg["rms_class"].astype(np.int16),
    }


def _work(args: tuple[str, str, list[int], dict[str, Any]]) -> int:
    """Worker: fill the rows ``indices`` of one split (opens the memory maps itself)."""
    import torch as _torch

    _torch.set_num_threads(1)
    store, split, indices, meta = args
    from foleykit.data.manifest import load_records

    seq = SequenceConfig(**meta["sequence"])
    records = load_records(meta["splits"][split]["source"])
    folder = Path(store) / split
    arrays = {
        n: _open(folder / f"{n}.npy", "r+") for n in ("audio", "motion", "frames", "rms", "rms_class", "done")
    }
    for i in indices:
        out = _clip_arrays(records[i], seq, meta["decode_size"], meta["frame_size"])
        for n, a in out.items():
            arrays[n][i] = a
        for n in out:
            arrays[n].flush() if hasattr(arrays[n], "flush") else None
        arrays["done"][i] = True
        arrays["done"].flush()
    return len(indices)


def build_store(
    data: str | os.PathLike,
    store: str | os.PathLike,
    *,
    seq: SequenceConfig | None = None,
    splits: Sequence[str] = SPLITS,
    decode_size: int = 96,
    frame_size: int = 64,
    workers: int = 1,
    limit: int | None = None,
    say: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Decode every clip of ``data/<split>/`` once into the array store (resumable: finished clips are kept).

    Args:
        data: A dataset folder with ``train/`` (+ ``validation/``, ``test/``) as ``foleykit data synth`` writes.
        store: Output folder.
        seq: Geometry (default ``SequenceConfig()``: 16 kHz, 10 s, 25 fps).
        splits: Splits to store (missing sub-folders are skipped).
        decode_size: Short side the video is decoded at (the video encoder's ``input_size``).
        frame_size: Square side of the stored frames (the frame CNN's ``input_size``).
        workers: Processes.
        limit: Keep only the first ``limit`` clips of each split.

    Returns:
        The index written.

    Raises:
        DataError: no split found, or the store holds a different geometry.
    """
    from foleykit.data.manifest import load_records

    seq = seq or SequenceConfig()
    data, store = Path(data), Path(store)
    meta: dict[str, Any] = {
        "sequence": {"sample_rate": seq.sample_rate, "duration": seq.duration},
        "decode_size": int(decode_size),
        "frame_size": int(frame_size),
        "splits": {},
    }
    if (store / INDEX).is_file():
        old = read_index(store)
        if {k: old.get(k) for k in ("sequence", "decode_size", "frame_size")} != {
            k: meta[k] for k in ("sequence", "decode_size", "frame_size")
        }:
            raise DataError(f"{store} holds arrays of another geometry; choose another folder")
        meta["splits"] = old.get("splits", {})
    found = [s for s in splits if (data / s).is_dir()]
    if not found:
        raise DataError(f"{data} has none of the split folders {list(splits)}")
    tv, nc = seq.num_video_frames, seq.num_control_frames
    for split in found:
        records = load_records(data / split)[: limit or None]
        n = len(records)
        cats = sorted({r.category or "" for r in records})
        meta["splits"][split] = {
            "source": str(data / split),
            "n": n,
            "keys": [r.key for r in records],
            "captions": [r.caption for r in records],
            "categories": [r.category or "" for r in records],
            "category_names": cats,
        }
        folder = store / split
        shapes = {
            "audio": ((n, seq.num_samples), np.float32),
            "motion": ((n, tv, 11), np.float32),
            "frames": ((n, tv, frame_size, frame_size, 3), np.uint8),
            "rms": ((n, nc), np.float32),
            "rms_class": ((n, nc), np.int16),
            "done": ((n,), np.bool_),
        }
        for name, (shape, dtype) in shapes.items():
            f = folder / f"{name}.npy"
            if not f.is_file() or tuple(_open(f, "r").shape) != shape:
                del_done = folder / "done.npy"
                if name != "done" and del_done.is_file():
                    del_done.unlink()
                _open(f, "w+", dtype, shape)
        (store / INDEX).parent.mkdir(parents=True, exist_ok=True)
        (store / INDEX).write_text(json.dumps(meta), encoding="utf-8")
        done = np.asarray(_open(folder / "done.npy", "r"))
        todo = [i for i in range(n) if not done[i]]
        if not todo:
            continue
        chunks = [todo[k :: max(1, workers)] for k in range(max(1, workers))]
        jobs = [(str(store), split, c, meta) for c in chunks if c]
        if workers > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(len(jobs)) as pool:
                pool.map(_work, jobs)
        else:
            for j in jobs:
                _work(j)
        say(f"[store] {split}: {len(todo)} clips -> {folder}")
    return meta


def add_array(
    store: str | os.PathLike,
    split: str,
    name: str,
    fn: Callable[[int], np.ndarray],
    *,
    dtype: Any = np.float32,
    say: Callable[[str], None] = lambda s: None,
) -> np.ndarray:
    """Compute ``fn(i)`` for every clip of a split into ``<split>/<name>.npy`` (written under a temporary
    name, then renamed: a killed run leaves no partial array)."""
    n = int(read_index(store)["splits"][split]["n"])
    folder = Path(store) / split
    first = np.asarray(fn(0), dtype=dtype)
    tmp = folder / f"{name}.tmp.npy"
    out = _open(tmp, "w+", dtype, (n, *first.shape))
    out[0] = first
    for i in range(1, n):
        out[i] = np.asarray(fn(i), dtype=dtype)
    out.flush()
    del out
    os.replace(tmp, folder / f"{name}.npy")
    say(f"[store] {split}/{name}.npy ({n} x {first.shape})")
    return np.load(folder / f"{name}.npy", mmap_mode="r")


class StoreDataset(Dataset):
    """Whole-window items of one split of an array store (no decoding).

    Items: ``audio`` Tensor[T], ``caption``, ``category``, ``category_index`` (index in ``categories``),
    ``key``, ``rms`` Tensor[N_ctrl], ``rms_class`` LongTensor[N_ctrl], and when present ``motion``
    Tensor[T_v x 11], ``frames`` uint8 Tensor[T_v x S x S x 3] (``frames=True``), ``latents``,
    ``video_features``, ``audio_tokens`` / ``audio_mask``.

    Args:
        store: Array store folder.
        split: ``train`` / ``validation`` / ``test``.
        fields: Optional arrays to serve (default: every optional array present except ``frames``).
        categories: Category vocabulary for ``category_index`` (default: the split's own).
        limit: Serve only the first ``limit`` clips.
    """

    OPTIONAL = ("motion", "frames", "latents", "video_features", "audio_tokens", "audio_mask")

    def __init__(
        self,
        store: str | os.PathLike,
        split: str,
        *,
        fields: Iterable[str] | None = None,
        categories: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> None:
        self.store = Path(store)
        meta = read_index(self.store)
        if split not in meta["splits"]:
            raise DataError(f"{store} has no split {split!r} (it has {sorted(meta['splits'])})")
        self.meta = meta["splits"][split]
        self.split = split
        self.folder = self.store / split
        self.n = int(self.meta["n"]) if limit is None else min(int(limit), int(self.meta["n"]))
        self.categories = list(categories) if categories is not None else list(self.meta["category_names"])
        present = [f for f in self.OPTIONAL if (self.folder / f"{f}.npy").is_file()]
        wanted = [f for f in present if f != "frames"] if fields is None else list(fields)
        missing = [f for f in wanted if f not in present]
        if missing:
            raise DataError(f"{self.folder} has no {missing} arrays (it has {present})")
        self.fields = wanted
        self._arrays: dict[str, np.ndarray] | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The memory maps (opened lazily, per process)."""
        if self._arrays is None:
            names = ["audio", "rms", "rms_class", *self.fields]
            self._arrays = {n: np.load(self.folder / f"{n}.npy", mmap_mode="r") for n in names}
        return self._arrays

    def __len__(self) -> int:
        return self.n

    def category_index(self, index: int) -> int:
        cat = self.meta["categories"][index]
        return self.categories.index(cat) if cat in self.categories else -1

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        a = self.arrays()
        item: dict[str, Any] = {
            "key": self.meta["keys"][index],
            "caption": self.meta["captions"][index],
            "category": self.meta["categories"][index],
            "category_index": self.category_index(index),
        }
        for name in ("audio", "rms", *self.fields):
            item[name] = torch.from_numpy(np.array(a[name][index]))
        item["rms_class"] = torch.from_numpy(np.array(a["rms_class"][index], dtype=np.int64))
        if "audio_mask" in item:
            item["audio_mask"] = item["audio_mask"].bool()
        return item


class AudioCrops(Dataset):
    """Fixed-length crops of the soundtracks: ``crops_per_clip`` items per clip, offsets drawn from
    ``(seed, index)`` (deterministic). Items: ``{"audio": Tensor[crop_samples]}``.

    Args:
        store: Array store folder.
        split: Split name.
        crop_seconds: Crop length.
        crops_per_clip: Items per clip.
        seed: Offset seed.
    """

    def __init__(
        self,
        store: str | os.PathLike,
        split: str,
        *,
        crop_seconds: float,
        crops_per_clip: int = 1,
        seed: int = 0,
    ) -> None:
        self.base = StoreDataset(store, split, fields=[])
        sr = int(read_index(store)["sequence"]["sample_rate"])
        self.crop = int(round(crop_seconds * sr))
        if self.crop <= 0 or crops_per_clip < 1:
            raise ConfigError("AudioCrops: crop_seconds must be > 0 and crops_per_clip >= 1")
        self.per, self.seed = int(crops_per_clip), int(seed)

    def __len__(self) -> int:
        return len(self.base) * self.per

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = index // self.per
        wav = self.base.arrays()["audio"][clip]
        hi = max(0, wav.shape[0] - self.crop)
        off = int(np.random.default_rng([self.seed, index]).integers(0, hi + 1))
        return {"audio": torch.from_numpy(np.array(wav[off : off + self.crop], dtype=np.float32))}


class FrameWindows(Dataset):
    """Aligned windows of video frames, motion statistics and RMS targets (the predictor's training items).

    ``windows_per_clip`` items per clip; the window start (a whole number of video frames) is drawn from
    ``(seed, index)``. Items: ``frames`` uint8 Tensor[W x S x S x 3], ``motion`` Tensor[W x 11],
    ``rms_class`` LongTensor[W * ctrl_per_frame], ``rms``, ``category_index``.

    Args:
        store: Array store folder.
        split: Split name.
        window_frames: Video frames per window (the whole clip when >= the clip length).
        windows_per_clip: Items per clip.
        seed: Window seed.
        categories: Category vocabulary (default: the split's own).
    """

    def __init__(
        self,
        store: str | os.PathLike,
        split: str,
        *,
        window_frames: int,
        windows_per_clip: int = 1,
        seed: int = 0,
        categories: Sequence[str] | None = None,
    ) -> None:
        self.base = StoreDataset(store, split, fields=["motion", "frames"], categories=categories)
        seq = SequenceConfig(**read_index(store)["sequence"])
        self.tv = seq.num_video_frames
        ratio = seq.control_rate / seq.video_fps
        if abs(ratio - round(ratio)) > 1e-9:
            raise ConfigError("FrameWindows needs a whole number of control frames per video frame")
        self.ratio = int(round(ratio))
        self.window = min(int(window_frames), self.tv)
        self.per, self.seed = int(windows_per_clip), int(seed)

    @property
    def categories(self) -> list[str]:
        """The category vocabulary of ``category_index``."""
        return self.base.categories

    def __len__(self) -> int:
        return len(self.base) * self.per

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = index // self.per
        a = self.base.arrays()
        s = int(np.random.default_rng([self.seed, index]).integers(0, self.tv - self.window + 1))
        e = s + self.window
        return {
            "frames": torch.from_numpy(np.array(a["frames"][clip, s:e])),
            "motion": torch.from_numpy(np.array(a["motion"][clip, s:e])),
            "rms": torch.from_numpy(np.array(a["rms"][clip, s * self.ratio : e * self.ratio])),
            "rms_class": torch.from_numpy(
                np.array(a["rms_class"][clip, s * self.ratio : e * self.ratio], dtype=np.int64)
            ),
            "category_index": self.base.category_index(clip),
        }
