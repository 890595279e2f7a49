"""Array backend of the feature cache: a prepared dataset, every clip window decoded once into memory maps.

A training run on a CPU cannot afford to decode 10 s videos (and compute optical flow) at every step. A
prepared store runs the cache's extractors (:mod:`foleykit.data.cache.extractors`) once per clip on the
model window (``ClipData(window=True)``: audio and frames padded / cut to the window, so every clip's
arrays share one shape) and keeps them as numpy memory maps::

    <store>/index.json                  geometry, extractor settings; per split: source, keys, captions...
    <store>/<split>/<field>.npy         (N, ...) one row per clip, e.g. audio float32 (N, num_samples),
                                        rms / rms_classes (N, N_ctrl), frames uint8 (N, T_v, S, S, 3),
                                        video_features or video_part<i> float32 (N, T_v, D)
    <store>/<split>/done.npy            bool (N,): finished clips (preparation resumes where it stopped)
    <store>/<split>/<name>.npy + .tag   arrays added later from trained components (latents, video_features,
                                        audio_tokens / audio_mask), with the content tag of what made them

Which per-clip arrays are prepared is the list of extractors (the training side derives it from the
recipe's pipeline: ``foleykit.training.store.prepare_extractors``). :class:`ArrayDataset` serves the item
dicts the training stages read (``audio``, ``rms``, ``rms_class``, ``frames``, ``video_features``,
``latents``, ``caption``, ``category_index``...), :class:`AudioCrops` fixed-length crops of the
soundtracks and :class:`Windows` aligned windows of the time series (on their ``SequenceConfig`` grids).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.config import SequenceConfig
from foleykit.data.cache.extractors import ITEM_NAMES, ClipData, Extractor
from foleykit.errors import ConfigError, DataError
from foleykit.utils.io import atomic_write_json

STORE_INDEX = "index.json"
STORE_VERSION = 2
SPLITS = ("train", "validation", "test")
#: Arrays an ArrayDataset leaves out unless asked for (large).
HEAVY = ("frames",)


def field_grid(name: str) -> str | None:
    """The ``SequenceConfig`` grid of a prepared field's first axis (None: no time axis known)."""
    if name in ("frames", "video_features", "presence") or name.startswith("video_part"):
        return "video"
    if name in ("rms", "rms_classes", "rms_class"):
        return "control"
    if name == "energy":
        return "energy"
    if name == "onsets":
        return "latent"
    if name == "audio":
        return "audio"
    return None


def _open(path: Path, mode: str, dtype: Any = None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if mode == "w+":
        path.parent.mkdir(parents=True, exist_ok=True)
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    return np.load(path, mmap_mode=mode)


def read_store_index(store: str | os.PathLike) -> dict[str, Any]:
    """The store's ``index.json``.

    Raises:
        DataError: the folder is not a prepared store (or one of an older layout).
    """
    f = Path(store) / STORE_INDEX
    if not f.is_file():
        raise DataError(
            f"{store} is not a prepared store (no {STORE_INDEX}); make it with "
            "`foleykit train prepare --data DATASET --store STORE`"
        )
    meta = json.loads(f.read_text(encoding="utf-8"))
    if meta.get("version") != STORE_VERSION:
        raise DataError(f"{store} was prepared by another foleykit version; prepare it again in a new folder")
    return meta


def _records(source: str) -> list[Any]:
    from foleykit.data.manifest import load_records

    return load_records(source)


def _run_clip(record: Any, extractors: Sequence[Extractor], seq: SequenceConfig) -> dict[str, np.ndarray]:
    clip = ClipData(record, seq, window=True)
    out: dict[str, np.ndarray] = {}
    for ex in extractors:
        for k, v in ex(clip).items():
            if k in out:
                raise DataError(
                    f"extractor {ex.name!r} returns {k!r}, which another extractor already returned"
                )
            out[k] = np.ascontiguousarray(v)
    return out


def _fill(job: tuple[str, str, list[tuple[int, Any]], list[Extractor], dict[str, Any]]) -> int:
    """Worker: compute the rows of one split (opens the memory maps itself)."""
    import torch

    torch.set_num_threads(1)
    folder, _split, rows, extractors, seq_dict = job
    seq = SequenceConfig.from_dict(seq_dict)
    folder_p = Path(folder)
    done = _open(folder_p / "done.npy", "r+")
    maps: dict[str, np.ndarray] = {}
    for i, record in rows:
        out = _run_clip(record, extractors, seq)
        for name, arr in out.items():
            if name not in maps:
                maps[name] = _open(folder_p / f"{name}.npy", "r+")
            if maps[name].shape[1:] != arr.shape:
                raise DataError(
                    f"clip {record.key}: {name} has shape {arr.shape}, the other clips {maps[name].shape[1:]} "
                    "(the array backend needs one shape per field)"
                )
            maps[name][i] = arr
        for m in maps.values():
            m.flush()
        done[i] = True
        done.flush()
    return len(rows)


def prepare_arrays(
    data: str | os.PathLike,
    store: str | os.PathLike,
    *,
    extractors: Sequence[Extractor],
    seq: SequenceConfig,
    splits: Sequence[str] = SPLITS,
    workers: int = 1,
    limit: int | None = None,
    say: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Run ``extractors`` once on every clip window of ``data/<split>/`` into the store (resumable: finished
    clips are kept; a killed run continues where it stopped).

    Args:
        data: A dataset folder with ``train/`` (+ ``validation/``, ``test/``) as ``foleykit data synth`` writes,
            or one clips folder / CSV manifest, which is then the ``train`` split.
        store: Output folder.
        extractors: Extractor objects (picklable: workers get copies).
        seq: Geometry of the model window.
        splits: Splits to prepare (missing sub-folders are skipped).
        workers: Processes.
        limit: Keep only the first ``limit`` clips of each split.
        say: One-line progress callback.

    Returns:
        The index written.

    Raises:
        DataError: no split found, or the store was prepared with other settings.
    """
    data, store = Path(data), Path(store)
    settings = {e.name: e.config() for e in extractors}
    meta: dict[str, Any] = {
        "version": STORE_VERSION,
        "sequence": seq.to_dict(),
        "extractors": settings,
        "splits": {},
    }
    old_keys: dict[str, list[str]] = {}
    if (store / STORE_INDEX).is_file():
        old = read_store_index(store)
        old_keys = {k: list(v.get("keys", [])) for k, v in old.get("splits", {}).items()}
        if old.get("sequence") != meta["sequence"] or old.get("extractors") != settings:
            raise DataError(
                f"{store} was prepared with other settings (extractors {old.get('extractors')}); "
                "choose another folder"
            )
        meta["splits"] = old.get("splits", {})
    found = {s: data / s for s in splits if (data / s).is_dir()}
    if not found and "train" in splits and (data.is_file() or data.is_dir()):
        # one clips folder or manifest: the training split, as `foleykit train --data` reads it
        found = {"train": data}
    if not found:
        raise DataError(f"{data} has none of the split folders {list(splits)} and is not a clips folder")
    for split, source in found.items():
        records = _records(str(source))[: limit or None]
        n = len(records)
        if n == 0:
            continue
        meta["splits"][split] = {
            "source": str(source),
            "n": n,
            "keys": [r.key for r in records],
            "captions": [r.caption for r in records],
            "categories": [r.category or "" for r in records],
            "category_names": sorted({r.category or "" for r in records}),
        }
        folder = store / split
        done_f = folder / "done.npy"
        keys = meta["splits"][split]["keys"]
        grown = _grow_split(folder, old_keys.get(split, []), keys, say)
        other_clips = split in old_keys and old_keys[split] != keys and not grown
        created = other_clips or not done_f.is_file() or _open(done_f, "r").shape != (n,)
        if created:
            first = _run_clip(records[0], extractors, seq)  # shapes and dtypes of every field
            for name, arr in first.items():
                _open(folder / f"{name}.npy", "w+", arr.dtype, (n, *arr.shape))[0] = arr
            done = _open(done_f, "w+", np.bool_, (n,))
            done[0] = True
            done.flush()
            del done
        atomic_write_json(store / STORE_INDEX, meta)
        done_now = np.asarray(_open(done_f, "r"))
        todo = [(i, records[i]) for i in range(n) if not done_now[i]]
        if todo:
            k = max(1, min(int(workers), len(todo)))
            jobs = [(str(folder), split, todo[j::k], list(extractors), seq.to_dict()) for j in range(k)]
            if k > 1:
                import multiprocessing as mp

                with mp.get_context("spawn").Pool(k) as pool:
                    pool.map(_fill, jobs)
            else:
                _fill(jobs[0])
        say(f"[prepare] {split}: {len(todo) + int(created)} of {n} clips computed -> {folder}")
    return meta


def _grow_split(folder: Path, old_keys: list[str], keys: list[str], say: Callable[[str], None]) -> bool:
    """Keep a split's finished clips when the dataset was extended (``foleykit data synth --start-index``):
    when the stored clips are the first ones of ``keys`` and more follow, every prepared array gets the new
    rows (not yet done) and the arrays added from them (latents, video features, tokens: tagged) are removed,
    to be recomputed for all clips; returns True. Otherwise nothing changes (False)."""
    done_f = folder / "done.npy"
    n_old = len(old_keys)
    if not done_f.is_file() or _open(done_f, "r").shape != (n_old,) or not 0 < n_old < len(keys):
        return False
    if keys[:n_old] != old_keys:
        return False
    # done.npy last: a run killed while growing grows the remaining arrays (those still of n_old rows) again
    for f in sorted(folder.glob("*.npy"), key=lambda f: (f == done_f, f.name)):
        if f.name.endswith(".tmp.npy"):
            continue
        if (folder / f"{f.stem}.tag").is_file():
            f.unlink()
            (folder / f"{f.stem}.tag").unlink()
            continue
        old = _open(f, "r")
        if old.shape[0] != n_old:
            continue
        tmp = f.with_name(f"{f.stem}.tmp.npy")
        new = _open(tmp, "w+", old.dtype, (len(keys), *old.shape[1:]))
        new[:n_old] = old
        new[n_old:] = 0
        new.flush()
        del new, old
        os.replace(tmp, f)
    say(f"[prepare] {folder.name}: {n_old} clips kept, {len(keys) - n_old} added")
    return True


def array_tag(store: str | os.PathLike, split: str, name: str) -> str | None:
    """The tag an added array was made with (None: absent or untagged)."""
    f = Path(store) / split / f"{name}.tag"
    if not (Path(store) / split / f"{name}.npy").is_file():
        return None
    return f.read_text(encoding="utf-8").strip() if f.is_file() else ""


def add_array(
    store: str | os.PathLike,
    split: str,
    name: str,
    fn: Callable[[int], np.ndarray],
    *,
    dtype: Any = np.float32,
    tag: str = "",
    say: Callable[[str], None] = lambda s: None,
) -> np.ndarray:
    """Compute ``fn(i)`` for every clip of a split into ``<split>/<name>.npy`` (written under a temporary
    name, then renamed: a killed run leaves no partial array), with ``tag`` (what made it) beside it."""
    n = int(read_store_index(store)["splits"][split]["n"])
    folder = Path(store) / split
    first = np.asarray(fn(0), dtype=dtype)
    tmp = folder / f"{name}.tmp.npy"
    out = _open(tmp, "w+", dtype, (n, *first.shape))
    out[0] = first
    for i in range(1, n):
        out[i] = np.asarray(fn(i), dtype=dtype)
    out.flush()
    del out
    (folder / f"{name}.tag").write_text(tag, encoding="utf-8")
    os.replace(tmp, folder / f"{name}.npy")
    say(f"[store] {split}/{name}.npy ({n} x {first.shape})")
    return np.load(folder / f"{name}.npy", mmap_mode="r")


def _to_item(name: str, row: np.ndarray) -> Any:
    import torch

    a = np.array(row)
    if a.dtype == np.bool_:
        return torch.from_numpy(a)
    if np.issubdtype(a.dtype, np.integer) and a.dtype != np.uint8:
        return torch.from_numpy(a.astype(np.int64))
    return torch.from_numpy(a)


class ArrayDataset:
    """Whole-window items of one split of a prepared store (a torch map-style dataset; no decoding).

    Items: ``key``, ``caption``, ``category``, ``category_index`` (index in ``categories``, -1 if absent),
    and one tensor per served field under its item name (``rms_classes`` -> ``rms_class``; integer arrays as
    int64). ``audio`` and the control targets (``rms``, ``rms_classes``, ``energy``) are always served when
    prepared.

    Args:
        store: Store folder.
        split: ``train`` / ``validation`` / ``test``.
        fields: Further arrays to serve (default: every array present except ``frames``).
        categories: Category vocabulary for ``category_index`` (default: the split's own).
        limit: Serve only the first ``limit`` clips.

    Raises:
        DataError: no such split, or a requested array is absent.
    """

    ALWAYS = ("audio", "rms", "rms_classes", "energy")

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
        index = read_store_index(self.store)
        if split not in index["splits"]:
            raise DataError(f"{store} has no split {split!r} (it has {sorted(index['splits'])})")
        self.seq = SequenceConfig.from_dict(index["sequence"])
        self.meta = index["splits"][split]
        self.split, self.folder = split, self.store / split
        n = int(self.meta["n"])
        self.n = n if limit is None else min(int(limit), n)
        self.categories = list(categories) if categories is not None else list(self.meta["category_names"])
        present = sorted(
            p.stem for p in self.folder.glob("*.npy") if p.stem != "done" and not p.stem.endswith(".tmp")
        )
        base = [f for f in self.ALWAYS if f in present]
        wanted = [f for f in present if f not in HEAVY] if fields is None else list(fields)
        missing = [f for f in wanted if f not in present]
        if missing:
            raise DataError(f"{self.folder} has no {missing} arrays (it has {present})")
        self.fields = list(dict.fromkeys([*base, *wanted]))
        self._arrays: dict[str, np.ndarray] | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The memory maps (opened lazily, per process), by array name."""
        if self._arrays is None:
            self._arrays = {n: np.load(self.folder / f"{n}.npy", mmap_mode="r") for n in self.fields}
        return self._arrays

    def __len__(self) -> int:
        return self.n

    def category_index(self, index: int) -> int:
        cat = self.meta["categories"][index]
        return self.categories.index(cat) if cat in self.categories else -1

    def info(self, index: int) -> dict[str, Any]:
        """The clip's metadata fields of an item."""
        return {
            "key": self.meta["keys"][index],
            "caption": self.meta["captions"][index],
            "category": self.meta["categories"][index],
            "category_index": self.category_index(index),
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        item = self.info(index)
        for name, a in self.arrays().items():
            item[ITEM_NAMES.get(name, name)] = _to_item(name, a[index])
        return item


class AudioCrops:
    """Fixed-length crops of the soundtracks: ``crops_per_clip`` items per clip, offsets drawn from
    ``(seed, index)`` (deterministic, so resumed runs see the same items). Items: ``{"audio": Tensor[S]}``.

    Args:
        store: Store folder.
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
        self.base = ArrayDataset(store, split, fields=["audio"])
        self.crop = self.base.seq.seconds_to_samples(crop_seconds)
        if self.crop <= 0 or crops_per_clip < 1:
            raise ConfigError("AudioCrops: crop_seconds must be > 0 and crops_per_clip >= 1")
        self.per, self.seed = int(crops_per_clip), int(seed)

    def __len__(self) -> int:
        return len(self.base) * self.per

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        wav = self.base.arrays()["audio"][index // self.per]
        hi = max(0, wav.shape[0] - self.crop)
        off = int(np.random.default_rng([self.seed, index]).integers(0, hi + 1))
        return {"audio": torch.from_numpy(np.array(wav[off : off + self.crop], dtype=np.float32))}


class Windows:
    """Aligned windows of a store's time series (the predictor's training items): ``windows_per_clip`` items
    per clip, each ``window_frames`` video frames long from a start drawn from ``(seed, index)``; every
    served field is cut on its own grid (``field_grid``: control frames = 5 per video frame at 125 Hz /
    25 fps). Items: the windowed fields under their item names and ``category_index``.

    Args:
        store: Store folder.
        split: Split name.
        fields: Arrays to serve (default: every array with a video / control grid, ``frames`` included).
        window_frames: Video frames per window (the whole clip when >= the clip length).
        windows_per_clip: Items per clip.
        seed: Window seed.
        categories: Category vocabulary (default: the split's own).

    Raises:
        ConfigError: a field without a grid, or a grid that is not a whole multiple of the video rate.
    """

    def __init__(
        self,
        store: str | os.PathLike,
        split: str,
        *,
        window_frames: int,
        fields: Iterable[str] | None = None,
        windows_per_clip: int = 1,
        seed: int = 0,
        categories: Sequence[str] | None = None,
    ) -> None:
        present = [p.stem for p in (Path(store) / split).glob("*.npy")]
        if fields is None:
            fields = [f for f in present if field_grid(f) in ("video", "control")]
        self.base = ArrayDataset(store, split, fields=list(fields), categories=categories)
        seq = self.base.seq
        self.tv = seq.num_video_frames
        self.ratio: dict[str, int] = {}
        for f in self.base.fields:
            grid = field_grid(f)
            if grid is None:
                raise ConfigError(f"Windows: {f!r} has no known time grid")
            rate = seq.grid(grid)[0]
            r = rate / seq.video_fps
            if abs(r - round(r)) > 1e-9:
                raise ConfigError(f"Windows: the {grid} grid is not a whole multiple of the video rate")
            self.ratio[f] = round(r)
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
        s = int(np.random.default_rng([self.seed, index]).integers(0, self.tv - self.window + 1))
        e = s + self.window
        item: dict[str, Any] = {"category_index": self.base.category_index(clip)}
        for name, a in self.base.arrays().items():
            r = self.ratio[name]
            item[ITEM_NAMES.get(name, name)] = _to_item(name, a[clip, s * r : e * r])
        return item
