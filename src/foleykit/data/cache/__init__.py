"""Feature cache: per-clip arrays computed once by extractors, resumable and parallel, in two backends.

- Extractors (:mod:`foleykit.data.cache.extractors`): ``audio``, ``rms``, ``energy``, ``onsets``,
  ``motion``, ``frames``, ``events``, ``latents`` (an encoder object), ``video`` (what training needs of a
  video encoder: its features when frozen, frames + frozen parts' features when trainable).
- Shards (:mod:`foleykit.data.cache.shards`, ``foleykit data cache``): clips of any length in sharded
  safetensors files, read by :class:`FeatureCache` / :class:`CachedDataset`.
- Arrays (:mod:`foleykit.data.cache.arrays`, ``foleykit train prepare``): a dataset's model windows as
  memory-mapped arrays, one row per clip, read by :class:`ArrayDataset`, :class:`AudioCrops` and
  :class:`Windows` (the CPU training path of the shipped model).
"""

from foleykit.data.cache.arrays import (
    ArrayDataset,
    AudioCrops,
    Windows,
    add_array,
    array_tag,
    field_grid,
    prepare_arrays,
    read_store_index,
)
from foleykit.data.cache.extractors import (
    ITEM_NAMES,
    AudioExtractor,
    ClipData,
    EnergyExtractor,
    EventsExtractor,
    Extractor,
    FramesExtractor,
    LatentsExtractor,
    MotionExtractor,
    OnsetsExtractor,
    RMSExtractor,
    VideoInputsExtractor,
    encode_prepared,
    make_extractors,
    square_frames,
)
from foleykit.data.cache.shards import CACHE_VERSION, INDEX_NAME, CachedDataset, FeatureCache, build_cache

__all__ = [
    "CACHE_VERSION",
    "INDEX_NAME",
    "ITEM_NAMES",
    "ArrayDataset",
    "AudioCrops",
    "AudioExtractor",
    "CachedDataset",
    "ClipData",
    "EnergyExtractor",
    "EventsExtractor",
    "Extractor",
    "FeatureCache",
    "FramesExtractor",
    "LatentsExtractor",
    "MotionExtractor",
    "OnsetsExtractor",
    "RMSExtractor",
    "VideoInputsExtractor",
    "Windows",
    "add_array",
    "array_tag",
    "build_cache",
    "encode_prepared",
    "field_grid",
    "make_extractors",
    "prepare_arrays",
    "read_store_index",
    "square_frames",
]
