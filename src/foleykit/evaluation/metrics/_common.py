"""Small helpers shared by the metric families: mono down-mix, protocol resampling, IoU matching.

Every metric protocol names its own sample rate. Audio arrives at any rate and with any channel count
(``(T,)`` mono or ``(C, T)`` multichannel, the foleykit convention); these helpers bring it to the
protocol's mono rate the way ``librosa.load(path, sr=...)`` does in the reference scripts: channels are
averaged first (``librosa.to_mono``), then the signal is resampled with ``soxr_hq`` (librosa's default).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from foleykit.errors import EvaluationError


def to_mono(wav: np.ndarray) -> np.ndarray:
    """Average channels: ``(T,)`` or ``(C, T)`` -> ``(T,)`` float32 (librosa.to_mono semantics).

    Raises:
        EvaluationError: the array is not 1-D or 2-D, or looks transposed (``(T, C)`` with few channels).
    """
    from foleykit import audio

    x = np.asarray(wav)
    if x.ndim not in (1, 2):
        raise EvaluationError(f"audio must be (T,) or (C, T); got an array of shape {x.shape}")
    if x.ndim == 2 and x.shape[0] > 16 and x.shape[1] <= 16:
        raise EvaluationError(
            f"audio of shape {x.shape} looks like (T, C); foleykit expects channels first (C, T) — transpose it"
        )
    return audio.to_mono(x)


def prepare(wav: np.ndarray, sample_rate: int, target_sr: int) -> np.ndarray:
    """Mono down-mix, then soxr_hq resampling to ``target_sr`` (the order librosa.load uses). ``(T,)`` float32."""
    from foleykit import audio

    if int(sample_rate) <= 0 or int(target_sr) <= 0:
        raise EvaluationError(f"sample rates must be positive (got {sample_rate} -> {target_sr})")
    y = to_mono(wav)
    if y.size and int(sample_rate) != int(target_sr):
        y = audio.resample(y, int(sample_rate), int(target_sr))
    if not np.all(np.isfinite(y)):
        raise EvaluationError("audio contains NaN or infinite samples")
    return np.ascontiguousarray(y, dtype=np.float32)


def count_matches(queries: Sequence[float], keys: Sequence[float], window: float, *, one_to_one: bool) -> int:
    """Count queries that fall strictly inside ``(k - window, k + window)`` of some key.

    Queries are visited in order; for each, keys are scanned in order and the first one whose open window
    contains the query is taken. With ``one_to_one`` a key can be taken once (AV-Align HEAD); otherwise
    every query may reuse any key (the original AV-Align / AA-Align many-to-one count).

    Args:
        queries: Event times in seconds (audio peaks for AV-Align, generated peaks for AA-Align).
        keys: Event times in seconds (video peaks, reference peaks).
        window: Half-width of the open window in seconds (AV-Align: 1/fps; AA-Align: T = 0.1 s).
        one_to_one: Whether a key may be matched only once.

    Returns:
        The number of matched queries (the IoU intersection).
    """
    used = [False] * len(keys)
    hits = 0
    for q in queries:
        for j, k in enumerate(keys):
            if one_to_one and used[j]:
                continue
            if k - window < q < k + window:
                used[j] = True
                hits += 1
                break
    return hits


def peak_iou(n_queries: int, n_keys: int, hits: int, *, empty_score: float) -> float:
    """IoU = hits / (|Q| + |K| - hits); ``empty_score`` when both sets are empty (the reference divides by 0)."""
    denom = n_queries + n_keys - hits
    if denom == 0:
        return float(empty_score)
    return hits / denom
