"""Datasets (torch): video clips from a folder or a CSV manifest (``manifest.py``), and audio-only event
sequences from a sound bank.

Clips are cut on the fly (``read_video`` / ``read_audio`` with start and duration) or used as they are.
Synthetic clips carry a lossless ``<stem>.wav`` and the ground-truth events in ``<stem>.json``; the
dataset prefers the wav (no AAC coding delay or loss) and returns the events.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from foleykit.config import SequenceConfig
from foleykit.data.manifest import (  # noqa: F401  (re-exported)
    REQUIRED_COLUMNS,
    VIDEO_EXTENSIONS,
    ClipRecord,
    load_records,
    read_manifest,
    scan_folder,
)
from foleykit.errors import DataError


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad (axis 0) to length ``n``; video frames are padded by repeating the last frame."""
    if len(x) >= n:
        return x[:n]
    if x.ndim == 1:
        return np.concatenate([x, np.zeros(n - len(x), x.dtype)])
    if len(x) == 0:
        raise DataError("cannot pad an empty frame sequence")
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


class VideoClipDataset(Dataset):
    """Video + audio clips cut to the model window.

    Items: ``audio`` Tensor[T] float32 (``seq.num_samples``, zero-padded), ``frames`` uint8
    Tensor[T_v x H x W x 3] (``seq.num_video_frames`` at ``seq.video_fps``; last frame repeated), ``valid``
    (seconds of real content), ``caption``, ``category``, ``key``, ``path``, ``start``, ``events`` (list of
    ground-truth event dicts, times relative to the window) and ``onsets`` Tensor[N_latent] (1 in each
    latent frame holding an event, the Rhythmic Foley / STA-V2A onset target; zeros without events).

    Args:
        source: Manifest CSV, folder, or list of ClipRecords.
        seq: Rates and window duration.
        video_size: Decode size (int short side or (w, h)); None keeps the file's size.
        load_video / load_audio: Skip a modality.
        prefer_wav: Read audio from a sidecar lossless ``<stem>.wav`` when it exists.
        random_crop: Take a random window of longer clips (seeded by ``seed`` and the index), else the first.
        seed: Crop seed.
    """

    def __init__(
        self,
        source: str | os.PathLike | Sequence[ClipRecord],
        *,
        seq: SequenceConfig | None = None,
        video_size: int | tuple[int, int] | None = None,
        load_video: bool = True,
        load_audio: bool = True,
        prefer_wav: bool = True,
        random_crop: bool = False,
        seed: int = 0,
    ) -> None:
        self.records = load_records(source)
        self.seq = seq or SequenceConfig()
        self.video_size, self.load_video, self.load_audio = video_size, load_video, load_audio
        self.prefer_wav, self.random_crop, self.seed = prefer_wav, random_crop, seed

    def __len__(self) -> int:
        return len(self.records)

    def window(self, index: int) -> tuple[float, float]:
        """(start, duration) of the window read for item ``index``."""
        from foleykit.media import probe

        r = self.records[index]
        end = r.end
        if end is None:
            info = probe(r.path)
            end = float(info.duration or 0.0)
        length = max(0.0, end - r.start)
        dur = min(self.seq.duration, length) if length > 0 else self.seq.duration
        offset = 0.0
        if self.random_crop and length > self.seq.duration:
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, index])
            offset = float(rng.uniform(0.0, length - self.seq.duration))
            offset = round(offset * self.seq.video_fps) / self.seq.video_fps  # keep frames and audio aligned
        return r.start + offset, dur

    def __getitem__(self, index: int) -> dict[str, Any]:
        from foleykit.controls import onset_track
        from foleykit.media import read_audio, read_video

        r = self.records[index]
        seq = self.seq
        start, dur = self.window(index)
        item: dict[str, Any] = {
            "caption": r.caption,
            "category": r.category or "",
            "key": r.key,
            "path": str(r.path),
            "start": start,
            "valid": dur,
        }
        if self.load_audio:
            src = r.sidecar_wav if self.prefer_wav and r.sidecar_wav.is_file() else r.path
            wav = read_audio(src, sample_rate=seq.sample_rate, start=start, duration=dur)
            item["audio"] = torch.from_numpy(fit_length(wav, seq.num_samples).astype(np.float32))
        if self.load_video:
            clip = read_video(r.path, fps=seq.video_fps, size=self.video_size, start=start, duration=dur)
            item["frames"] = torch.from_numpy(
                np.ascontiguousarray(fit_length(clip.frames, seq.num_video_frames))
            )
        events = [{**e, "time": e["time"] - (start - r.start)} for e in r.events()]
        events = [e for e in events if 0 <= e["time"] < dur]
        item["events"] = events
        track = onset_track(
            [e["time"] for e in events], rate=seq.latent_rate, num_frames=seq.num_latent_frames
        )
        item["onsets"] = torch.from_numpy(track.values.astype(np.float32))
        return item


class EventSequenceDataset(Dataset):
    """Audio-only examples from a sound bank, generated on the fly, deterministic in (seed, index).

    Rhythmic Foley trains its temporal adapter on pure sound-effect audio; ReWaS / Stable-V2A train control
    adapters on controls computed from audio. Items: ``audio`` Tensor[T], ``caption``, ``category``,
    ``onsets`` Tensor[N_latent] (ground-truth event attacks on the latent grid), ``events``, ``meta``.

    Args:
        bank: A SoundBank or a bank folder.
        seq: Rates and duration (default ``SequenceConfig()``).
        split_name: Which split's files to use (the bank split is ``split_bank(bank, seed=split_seed)``).
        length: Number of examples.
        seed: Stream seed.
        split_seed: Seed of the bank split (keep it equal across datasets so that splits agree).
        **generator_kwargs: Passed to ``EventSequenceGenerator`` (categories, bed_prob, mixture_prob...).
    """

    def __init__(
        self,
        bank: Any,
        *,
        seq: SequenceConfig | None = None,
        split_name: str = "train",
        length: int = 1000,
        seed: int = 0,
        split_seed: int = 0,
        **generator_kwargs: Any,
    ) -> None:
        from foleykit.data.bank import SoundBank, split_bank
        from foleykit.data.events import EventSequenceGenerator

        self.seq = seq or SequenceConfig()
        b = bank if isinstance(bank, SoundBank) else SoundBank(bank, sample_rate=self.seq.sample_rate)
        self.generator = EventSequenceGenerator(
            b, seq=self.seq, split=split_bank(b, seed=split_seed), split_name=split_name, **generator_kwargs
        )
        if length < 1:
            raise DataError(f"length must be >= 1, got {length}")
        self.length, self.seed = int(length), int(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        from foleykit.controls import onset_track

        if not 0 <= index < self.length:
            raise IndexError(index)
        ex = self.generator.example(self.seed, int(index))
        track = onset_track(ex.onset_times, rate=self.seq.latent_rate, num_frames=self.seq.num_latent_frames)
        return {
            "audio": torch.from_numpy(ex.audio),
            "caption": ex.caption,
            "category": ex.category,
            "onsets": torch.from_numpy(track.values.astype(np.float32)),
            "events": [e.to_dict() for e in ex.events],
            "meta": ex.to_dict(),
        }


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: tensors of equal shape are stacked, everything else becomes a list."""
    if not items:
        raise DataError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        if all(isinstance(v, torch.Tensor) for v in vals) and len({tuple(v.shape) for v in vals}) == 1:
            out[k] = torch.stack(vals)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[k] = torch.tensor(vals, dtype=torch.float64)
        else:
            out[k] = vals
    return out
