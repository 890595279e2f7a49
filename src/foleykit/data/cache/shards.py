"""Shard backend of the feature cache: per-clip arrays in sharded safetensors files.

``build_cache(source, output, extractors=["rms", "motion", ...])`` decodes every clip of a manifest or
folder once, runs the extractors (:mod:`foleykit.data.cache.extractors`) on it and stores the arrays in
sharded safetensors files (``shard-00000.safetensors``, keys ``<clip key>/<array name>``) with an
``index.json`` that records the ``SequenceConfig``, each extractor's configuration and, per clip, its shard
and metadata. Clips may have any length (each array keeps its own shape).

Resumable: each finished clip is first written to ``parts/<key>.safetensors`` (atomically); parts are
packed into a shard every ``shard_size`` clips and the index is rewritten atomically. A killed run keeps
every finished clip; running the same command again skips them and computes only the rest. A cache made
with other extractor settings is refused (use another folder or ``overwrite=True``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.config import SequenceConfig
from foleykit.data.cache.extractors import ClipData, Extractor, make_extractors
from foleykit.data.manifest import ClipRecord, load_records
from foleykit.errors import DataError
from foleykit.utils.io import atomic_path, atomic_write_json

log = logging.getLogger(__name__)
INDEX_NAME = "index.json"
CACHE_VERSION = 1


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
