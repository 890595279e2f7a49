"""Data: sound banks, audio-only event sequences, the synthetic audio-visual generator, video datasets,
the preprocessing cache, filters and augmentations (see docs/data.md).

Submodules are imported lazily (``from foleykit.data import SoundBank`` works without loading torch or
OpenCV until a name is used).
"""

from __future__ import annotations

import importlib
from typing import Any

from foleykit import registry

registry.add_provider("extractor", "foleykit.data.cache")

_EXPORTS = {
    "SoundBank": "bank",
    "SoundFile": "bank",
    "BankSplit": "bank",
    "split_bank": "bank",
    "analyse_sound": "bank",
    "prepare_default_bank": "ufoai",
    "default_bank_dir": "ufoai",
    "Event": "events",
    "EventSequence": "events",
    "EventSequenceGenerator": "events",
    "mix_events": "events",
    "caption_for": "events",
    "SynthConfig": "synth",
    "plan_clip": "synth",
    "synthesize": "synth",
    "write_clip": "synth",
    "ClipRecord": "manifest",
    "read_manifest": "manifest",
    "load_records": "manifest",
    "scan_folder": "manifest",
    "VideoClipDataset": "datasets",
    "EventSequenceDataset": "datasets",
    "collate": "datasets",
    "build_cache": "cache",
    "FeatureCache": "cache",
    "CachedDataset": "cache",
    "LatentsExtractor": "cache",
    "filter_records": "filters",
    "keyword_filter": "filters",
    "concat_examples": "augment",
    "apply_gain": "augment",
    "random_gain": "augment",
    "time_shift": "augment",
    "ConditionDropout": "augment",
}

__all__ = [name for name in sorted(_EXPORTS)]  # a list display: what static __all__ checkers accept


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"foleykit.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'foleykit.data' has no attribute {name!r}")
