"""Does each generated sound belong to its own clip? Two measures of a generated set against its references
that compare every clip with every other clip's reference, so that a system whose sound is the same whatever
the picture scores chance.

- ``match_rank`` (what it sounds like): each clip's embedding (the suite's embedder, aisfx by default: the
  mean of its frame embeddings, L2-normalised) is compared by cosine with every reference clip's; the rank
  of its own reference among them, scaled to [0, 1]. 0: its own soundtrack is the most similar of all;
  1: the least similar; ties count half. Chance (a sound that says nothing about its clip) is 0.5 on
  average. Needs two clips or more.
- ``loudness_corr`` (when and how loud): the Pearson correlation of the two loudness curves over their
  common length. A loudness curve is the RMS in dB relative to the clip's own peak, floored 60 dB below it:
  ``librosa.feature.rms(frame_length=1024, hop_length=320)`` at 16 kHz (50 values per second), then
  ``librosa.amplitude_to_db(ref=np.max, top_db=60)``. A flat curve (a silent clip) correlates 0.
- ``loudness_margin``: ``loudness_corr`` with the clip's own reference minus its mean correlation with every
  other clip's reference, i.e. the expected correlation of a shuffled pairing. 0: the sound follows its own
  soundtrack no better than another clip's. Needs two clips or more.

Both are per clip, so two systems can be compared with ``foleykit.evaluation.paired_difference``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from foleykit.errors import EvaluationError

#: Rate, RMS frame and hop of the loudness curve (16 kHz / 320 = 50 values per second).
LOUDNESS_SAMPLE_RATE = 16000
LOUDNESS_FRAME = 1024
LOUDNESS_HOP = 320
#: Floor of the loudness curve below the clip's own peak (dB).
LOUDNESS_RANGE_DB = 60.0


def loudness_curve(y: np.ndarray) -> np.ndarray:
    """Loudness curve of mono audio at :data:`LOUDNESS_SAMPLE_RATE`: RMS in dB relative to the clip's peak,
    floored :data:`LOUDNESS_RANGE_DB` below it. ``(T,) -> (T // 320 + 1,)`` float64."""
    import librosa

    y = np.asarray(y, np.float32).reshape(-1)
    rms = librosa.feature.rms(y=y, frame_length=LOUDNESS_FRAME, hop_length=LOUDNESS_HOP)[0]
    if not np.any(rms > 0):
        return np.full(rms.shape, -LOUDNESS_RANGE_DB)
    return librosa.amplitude_to_db(rms, ref=np.max, top_db=LOUDNESS_RANGE_DB).astype(np.float64)


def curve_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two curves over their common length; 0 when either is flat there."""
    n = min(len(a), len(b))
    if n < 2:
        raise EvaluationError(f"loudness curves of {len(a)} and {len(b)} values: need at least 2 in common")
    x, y = np.asarray(a[:n], np.float64), np.asarray(b[:n], np.float64)
    x, y = x - x.mean(), y - y.mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return 0.0 if den <= 1e-12 else float((x * y).sum() / den)


def loudness_scores(
    generated: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, float] | None]:
    """``(loudness_corr, loudness_margin)`` per clip from loudness curves (:func:`loudness_curve`) paired by
    key; the margin is None with fewer than two clips. Curves of one length take one blocked matrix product
    (3,000 clips: 0.3 s); curves of several lengths are correlated pair by pair over each pair's common
    length (quadratic in the clips: 300 clips about 1 s)."""
    keys = _paired(generated, reference)
    if len({len(generated[k]) for k in keys} | {len(reference[k]) for k in keys}) == 1:
        # one length (clips of one duration, the usual case): every pair in blocks of one matrix product,
        # so that a test set of thousands of clips does not take millions of calls
        g, r = _standardised([generated[k] for k in keys]), _standardised([reference[k] for k in keys])
        own = (g * r).sum(1)
        corr = dict(zip(keys, own.tolist()))
        if len(keys) < 2:
            return corr, None
        total = np.concatenate([(g[i : i + 1024] @ r.T).sum(1) for i in range(0, len(keys), 1024)])
        return corr, dict(zip(keys, (own - (total - own) / (len(keys) - 1)).tolist()))
    corr = {k: curve_correlation(generated[k], reference[k]) for k in keys}
    if len(keys) < 2:
        return corr, None
    margin = {
        k: corr[k] - float(np.mean([curve_correlation(generated[k], reference[o]) for o in keys if o != k]))
        for k in keys
    }
    return corr, margin


def _standardised(curves: list[np.ndarray]) -> np.ndarray:
    """Rows centred and scaled to unit norm (a flat row stays zero), so that row products are correlations."""
    x = np.stack(curves).astype(np.float64)
    x -= x.mean(1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norm > 1e-6, x / np.maximum(norm, 1e-6), 0.0)


def match_ranks(generated: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> dict[str, float]:
    """``match_rank`` per clip from clip embeddings ``(D,)`` (or frame embeddings ``(F, D)``, averaged) paired
    by key: the rank of the clip's own reference among all references by cosine similarity, scaled to
    [0, 1] (0 = most similar; ties count half).

    Raises:
        EvaluationError: fewer than two clips, or no shared key.
    """
    keys = _paired(generated, reference)
    if len(keys) < 2:
        raise EvaluationError(f"match_rank compares clips with each other: needs >= 2 clips, got {len(keys)}")
    g = np.stack([_unit(generated[k]) for k in keys])
    r = np.stack([_unit(reference[k]) for k in keys])
    sim = g @ r.T  # (clip, reference)
    own = np.diag(sim)[:, None]
    others = ~np.eye(len(keys), dtype=bool)
    above = ((sim > own) & others).sum(1) + 0.5 * ((sim == own) & others).sum(1)
    return {k: float(v) / (len(keys) - 1) for k, v in zip(keys, above)}


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    v = v.mean(0) if v.ndim == 2 else v.reshape(-1)
    return v / (np.linalg.norm(v) + 1e-12)


def _paired(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> list[str]:
    keys = sorted(set(a) & set(b))
    if not keys:
        raise EvaluationError("the generated and reference sets share no clip")
    return keys
