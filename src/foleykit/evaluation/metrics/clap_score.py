"""CLAP score: cosine similarity in CLAP's joint space (higher is better).

- text-audio (STA-V2A / ReWaS / VTA-LDM "CLAP"): ``cos(clap_text(prompt), clap_audio(generated))`` per
  clip, averaged (STA-V2A ``EvalTools/CLAP_score.py`` takes the dot product of the L2-normalised LAION-CLAP
  embeddings, i.e. the cosine);
- audio-audio (Stable-V2A sec. V-C "CLAP-score"): ``cos(clap_audio(generated), clap_audio(reference))``.

Audio embeddings are the mean of the <= 10 s chunk embeddings of :class:`ClapEmbedder` (re-normalised),
so clips longer than CLAP's window are covered deterministically (the reference crops them at random).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from foleykit.errors import EvaluationError
from foleykit.evaluation.metrics._common import prepare


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of ``(N, D)`` and ``(N, D)`` -> ``(N,)`` float64 (zero rows give 0)."""
    x, y = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    if x.shape != y.shape:
        raise EvaluationError(f"cosine: shapes differ ({x.shape} vs {y.shape})")
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    den = nx * ny
    return np.where(den > 0, (x * y).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)


def clap_text_audio(
    embedder, prompts: Sequence[str], wavs: Sequence[np.ndarray], sample_rate: int
) -> np.ndarray:
    """Text-audio CLAP score per clip.

    Args:
        embedder: A :class:`foleykit.evaluation.embedders.clap.ClapEmbedder` (or any object with
            ``sample_rate``, ``clip_embedding(wav)`` and ``embed_text(texts)``).
        prompts: One prompt per clip.
        wavs: Clips ``(T,)`` or ``(C, T)`` at ``sample_rate`` (resampled to the embedder's rate).
        sample_rate: Rate of ``wavs``.

    Returns:
        ``(N,)`` cosine similarities.
    """
    if len(prompts) != len(wavs) or not wavs:
        raise EvaluationError(
            f"CLAP score needs one prompt per clip (got {len(prompts)} prompts, {len(wavs)} clips)"
        )
    audio = np.stack([embedder.clip_embedding(prepare(w, sample_rate, embedder.sample_rate)) for w in wavs])
    return cosine_rows(embedder.embed_text(list(prompts)), audio)


def clap_audio_audio(
    embedder,
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    sample_rate: int,
    *,
    reference_sample_rate: int | None = None,
) -> np.ndarray:
    """Audio-audio CLAP score per clip pair (Stable-V2A): ``(N,)`` cosine similarities."""
    if len(generated) != len(reference) or not generated:
        raise EvaluationError(
            "CLAP audio score needs the same non-zero number of generated and reference clips"
        )
    rate = embedder.sample_rate
    g = np.stack([embedder.clip_embedding(prepare(w, sample_rate, rate)) for w in generated])
    r = np.stack(
        [embedder.clip_embedding(prepare(w, reference_sample_rate or sample_rate, rate)) for w in reference]
    )
    return cosine_rows(g, r)
