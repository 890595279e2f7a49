"""The synthetic audio-visual generator (``foleykit data synth``): writes clips, manifests, in parallel.

Clips are planned by ``foleykit.data.plan`` (scenes from ``scenes.py`` / ``props.py``, drawn with
``render.py``): footsteps on 12 floor materials, bouncing / dropped objects and hammer strikes, objects
that fall and shatter, doors that open and shut, each contact on an exact frame with its sound's attack
at ``frame / fps``. Sounds come from one split of ``split_bank`` only, so train / validation / test never
share a source file. Per clip: ``<id>.mp4`` (h264 + AAC), ``<id>.wav`` (lossless PCM), ``<id>.json``
(caption, category, events with times / frames / gains / files, split, seed); per split a
``manifest.csv`` (path, caption, start, end, category). Deterministic in (seed, split, index); resumable.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foleykit.data.bank import SPLITS, SoundBank, split_bank
from foleykit.data.plan import (  # noqa: F401  (re-exported: the generator's public API)
    GENERATOR_VERSION,
    SCENES,
    SynthClip,
    SynthConfig,
    plan_clip,
)
from foleykit.errors import DataError


# --- writing clips ------------------------------------------------------------------------------------------
def clip_id(split_name: str, index: int) -> str:
    """File stem of a clip: ``<split>-<index:06d>``."""
    return f"{split_name}-{index:06d}"


def write_clip(clip: Any, folder: str | os.PathLike, name: str, *, cfg: SynthConfig) -> dict[str, Any]:
    """Write ``<name>.mp4`` (h264 + AAC unless ``cfg.mp4_audio`` is False), ``<name>.wav`` (lossless PCM)
    and, last, ``<name>.json`` (so a clip with a json is complete). Every file is written atomically.

    Returns:
        The json metadata (with ``video`` / ``audio`` file names).
    """
    from foleykit.media import write_audio, write_video
    from foleykit.utils.io import atomic_write_json

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    write_video(
        out / f"{name}.mp4",
        clip.frames(),
        float(clip.meta.get("fps", cfg.fps)),
        audio=clip.audio if cfg.mp4_audio else None,
        sample_rate=cfg.sample_rate if cfg.mp4_audio else None,
        crf=int(clip.meta.get("crf", cfg.crf)),
        preset=str(clip.meta.get("preset") or cfg.preset or "veryfast"),
    )
    write_audio(out / f"{name}.wav", clip.audio, cfg.sample_rate)
    meta = {"id": name, "video": f"{name}.mp4", "audio": f"{name}.wav", **clip.meta}
    atomic_write_json(out / f"{name}.json", meta)
    return meta


MANIFEST_COLUMNS = ("path", "caption", "start", "end", "category")


def write_manifest(folder: str | os.PathLike) -> Path:
    """(Re)write ``manifest.csv`` of a split folder from its complete clips (those with a ``.json``).

    Columns: path (relative to the folder), caption, start, end (seconds), category.
    """
    import csv
    import io

    from foleykit.utils.io import atomic_write_text

    folder = Path(folder)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS)
    for meta_path in sorted(folder.glob("*.json")):
        try:
            m = json.loads(meta_path.read_text(encoding="utf-8"))
            row = (m["video"], m["caption"], 0.0, float(m["duration"]), m["category"])
        except (ValueError, KeyError):
            continue
        if (folder / row[0]).is_file():
            w.writerow(row)
    return atomic_write_text(folder / "manifest.csv", buf.getvalue())


def split_counts(
    num_clips: int, split: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, int]:
    """Clips per split: all to ``split``, or for ``all`` divided by ``fractions`` (>= 1 each when N >= 3)."""
    if num_clips < 1:
        raise DataError(f"--num-clips must be >= 1, got {num_clips}")
    if split != "all":
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; use train, validation, test or all")
        return {split: num_clips}
    n_val = max(1, round(num_clips * fractions[1])) if num_clips >= 3 else 0
    n_test = max(1, round(num_clips * fractions[2])) if num_clips >= 3 else 0
    return {"train": num_clips - n_val - n_test, "validation": n_val, "test": n_test}


_WORKER: dict[str, Any] = {}


def _init_worker(bank_root: str, sample_rate: int, split_seed: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    bank = SoundBank(bank_root, sample_rate=sample_rate)
    _WORKER.update(bank=bank, split=split_bank(bank, seed=split_seed))


def _make_one(task: tuple[str, int, int, SynthConfig, str]) -> tuple[str, float]:
    split_name, index, seed, cfg, out = task
    t0 = time.perf_counter()
    clip = plan_clip(_WORKER["bank"], _WORKER["split"], split_name, seed, index, cfg)
    write_clip(clip, Path(out) / split_name, clip_id(split_name, index), cfg=cfg)
    return clip_id(split_name, index), time.perf_counter() - t0


@dataclass
class SynthReport:
    """What ``synthesize`` did: clips written / skipped per split, wall time and throughput."""

    written: dict[str, int]
    skipped: dict[str, int]
    seconds: float

    @property
    def clips_per_second(self) -> float:
        n = sum(self.written.values())
        return n / self.seconds if self.seconds > 0 else 0.0


def synthesize(
    bank_root: str | os.PathLike,
    output: str | os.PathLike,
    *,
    num_clips: int,
    split: str = "all",
    seed: int = 0,
    config: SynthConfig | None = None,
    workers: int = 1,
    split_seed: int = 0,
    progress: bool = True,
    start_index: int = 0,
) -> SynthReport:
    """Generate clips into ``output/<split>/`` with a ``manifest.csv`` per split (resumable).

    Clips whose ``.json`` exists are skipped, so an interrupted run continues where it stopped; clip
    ``i`` of a split is always the same for a given (seed, split_seed, config).

    Args:
        bank_root: Sound-bank folder.
        output: Output folder.
        num_clips: Number of clips (for ``split='all'``: divided 80/10/10).
        split: ``train``, ``validation``, ``test`` or ``all``.
        seed: Clip seed.
        config: Look and sound settings.
        workers: Processes (1 = in this process).
        split_seed: Seed of the bank split (keep it fixed so that splits never share a sound file).
        progress: Show a tqdm progress bar.
        start_index: Index of the first clip (to extend a dataset).

    Returns:
        A SynthReport.
    """
    from tqdm.auto import tqdm

    from foleykit.utils.io import atomic_write_json

    cfg = config or SynthConfig()
    out = Path(output)
    counts = split_counts(num_clips, split)
    bank = SoundBank(bank_root, sample_rate=cfg.sample_rate)
    bsplit = split_bank(bank, seed=split_seed)
    for s, n in counts.items():  # fail early with a clear message when a split cannot make clips
        if n:
            plan_clip(bank, bsplit, s, seed, start_index, cfg)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        out / "synth.json",
        {
            "generator": {"name": "foleykit.data.synth", "version": GENERATOR_VERSION},
            "seed": seed,
            "split_seed": split_seed,
            "bank": str(Path(bank_root).resolve()),
            "config": cfg.to_dict(),
            "bank_split": bsplit.totals(),
        },
    )
    tasks, skipped = [], {s: 0 for s in counts}
    for s, n in counts.items():
        for i in range(start_index, start_index + n):
            if (out / s / f"{clip_id(s, i)}.json").is_file():
                skipped[s] += 1
            else:
                tasks.append((s, i, seed, cfg, str(out)))
    written = {s: 0 for s in counts}
    t0 = time.perf_counter()
    if workers <= 1 or not tasks:
        workers = 1
    bar = tqdm(total=len(tasks), desc="synth", unit="clip", disable=not progress)
    try:
        if workers <= 1:
            _WORKER.update(bank=bank, split=bsplit)
            for task in tasks:
                _name, _ = _make_one(task)
                written[task[0]] += 1
                bar.update(1)
        else:
            from concurrent.futures import ProcessPoolExecutor

            from foleykit.data.bank import _mp_context

            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=_mp_context(["foleykit.data.synth", "foleykit.media"]),
                initializer=_init_worker,
                initargs=(str(bank_root), cfg.sample_rate, split_seed),
            ) as pool:
                for task, _ in zip(tasks, pool.map(_make_one, tasks, chunksize=1)):
                    written[task[0]] += 1
                    bar.update(1)
    finally:
        bar.close()
        for s in counts:
            if (out / s).is_dir():
                write_manifest(out / s)
    return SynthReport(written=written, skipped=skipped, seconds=time.perf_counter() - t0)
