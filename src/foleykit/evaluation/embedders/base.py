"""The pluggable embedder interface used by FD / FAD / KL / IS / CLAP score.

An embedder turns one mono clip at its own ``sample_rate`` into frame embeddings ``(N, D)`` and,
optionally, class logits. The suite resamples every clip once per embedder rate (soxr_hq), so an
embedder never resamples itself. Embedders are registered in ``foleykit.registry`` under the kind
``"embedder"``; build one with ``foleykit.registry.build("embedder", name, **kwargs)``.

Writing your own::

    from foleykit.evaluation.embedders import Embedder
    from foleykit.registry import register

    class MyEmbedder(Embedder):
        name = "mine"
        sample_rate = 16000
        dim = 256

        def embed(self, wav):               # (T,) float32 at 16 kHz -> (N, 256)
            ...

    register("embedder", "mine")(lambda **kw: MyEmbedder(**kw))
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from foleykit.errors import EvaluationError


class Embedder(abc.ABC):
    """Audio embedder for distribution metrics.

    Attributes:
        name: Registry name, recorded in evaluation reports (e.g. ``fd`` is reported "with aisfx").
        sample_rate: Rate in Hz the embedder expects its input at.
        dim: Embedding width D.
        num_classes: Number of logits, or 0 when the embedder has no classifier.
    """

    name: str = "embedder"
    sample_rate: int = 16000
    dim: int = 0
    num_classes: int = 0

    @abc.abstractmethod
    def embed(self, wav: np.ndarray) -> np.ndarray:
        """Frame embeddings of one clip.

        Args:
            wav: Mono ``(T,)`` float32 audio at ``self.sample_rate``.

        Returns:
            ``(N, D)`` float32 frame embeddings (N >= 1).
        """

    def clip_embedding(self, wav: np.ndarray) -> np.ndarray:
        """One embedding per clip ``(D,)``: the mean of :meth:`embed` (override for a native clip embedding)."""
        return np.asarray(self.embed(wav), dtype=np.float32).mean(axis=0)

    @property
    def has_logits(self) -> bool:
        """Whether :meth:`logits` is available (KL / IS need it)."""
        return self.num_classes > 0

    def logits(self, wav: np.ndarray) -> np.ndarray:
        """Clip-level class logits ``(C,)`` of mono ``(T,)`` audio at ``self.sample_rate``."""
        raise EvaluationError(
            f"embedder {self.name!r} has no classifier logits; KL and IS need one (e.g. aisfx, panns)"
        )

    def describe(self) -> dict[str, Any]:
        """What the report records about this embedder."""
        return {
            "embedder": self.name,
            "sample_rate": int(self.sample_rate),
            "dim": int(self.dim),
            "num_classes": int(self.num_classes),
        }


def check_mono(wav: np.ndarray, *, name: str) -> np.ndarray:
    """Validate an embedder input: non-empty finite mono ``(T,)``; returns float32."""
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise EvaluationError(f"{name}: expected non-empty mono audio (T,), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise EvaluationError(f"{name}: audio contains NaN or infinite samples")
    return x
