"""Condition embeddings computed once per run: :class:`ConditionCache`.

A long video is generated window by window and a batch often repeats one prompt; the prompt and the reference
sound are the same every time, so their encoders (MiniLM, aisfx...) run once and every window gets the very
same tokens (the timbre does not jump between windows). Pass one cache to
``VideoToAudioPipeline.encode_conditions`` / ``__call__`` (``condition_cache=``) for the whole run.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

TokenPart = tuple[torch.Tensor, torch.Tensor]  # (Tensor[1 x L x D], BoolTensor[1 x L])


class ConditionCache:
    """Prompt and reference-sound embeddings by content, for one run (one video, one batch, one app request).

    A prompt is keyed by its text; a reference sound by its sample rate, shape and the SHA-1 of its samples
    (so equal arrays hit, whatever object holds them). ``encoded`` counts the encoder runs by kind
    (``text`` / ``audio``), which tells how often the cache missed.
    """

    def __init__(self) -> None:
        self._items: dict[tuple[Any, ...], TokenPart] = {}
        self.encoded = {"text": 0, "audio": 0}

    @staticmethod
    def audio_key(wav: np.ndarray | torch.Tensor, sample_rate: int) -> tuple[Any, ...]:
        """The key of a reference sound: ``("audio", sample_rate, shape, sha1 of its float32 samples)``."""
        x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
        x = np.ascontiguousarray(x, dtype=np.float32)
        return ("audio", int(sample_rate), x.shape, hashlib.sha1(x.tobytes()).hexdigest())

    def get(self, key: tuple[Any, ...], encode: Any) -> TokenPart:
        """The cached tokens of ``key``, computed with ``encode()`` on the first request."""
        if key not in self._items:
            self._items[key] = encode()
            self.encoded[key[0]] += 1
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)
