"""Distribution metrics on embeddings and classifier logits: FD, FAD, KL, IS (audioldm_eval conventions).

Conventions of haoheliu/audioldm_eval (used by ReWaS, STA-V2A, VTA-LDM):

- FD (Frechet distance, Heusel et al. 2017) between Gaussians fitted to two embedding sets:
  ``||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2))`` with ``scipy.linalg.sqrtm``; if the square
  root is not finite, 1e-6 is added to both diagonals and it is recomputed; an imaginary part is dropped
  when the diagonal's imaginary part is within 1e-3 of 0 (otherwise it is an error).
  audioldm_eval's "FD" fits one embedding per clip (PANNs' 2048-d clip embedding), its "FAD" fits every
  0.96 s VGGish frame of every clip. foleykit: ``fd`` = clip embeddings (the mean of an embedder's frame
  embeddings), ``fad`` = all frame embeddings.
- KL, paired by file: ``KL(p_gt || p_gen)`` with ``p = softmax(logits)`` and ``eps = 1e-6`` added to
  ``p_gen`` before the log, summed over classes and averaged over pairs (audioldm_eval
  ``kullback_leibler_divergence_softmax``).
- IS (inception score): ``p = softmax(logits)`` in float64, clips shuffled with ``RandomState(2020)``,
  10 splits, per split ``exp(mean_i KL(p_i || mean_j p_j))``; mean and std over splits. With fewer clips
  than splits, foleykit uses one split per clip instead of producing empty splits.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from foleykit.errors import EvaluationError

FD_EPS = 1e-6
IMAG_ATOL = 1e-3
KL_EPS = 1e-6
IS_SPLITS = 10
IS_SEED = 2020


def gaussian_stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (``np.cov(rowvar=False)``) of embeddings ``(N, D)``, N >= 2."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise EvaluationError(f"embeddings must be (N, D); got shape {x.shape}")
    if x.shape[0] < 2:
        raise EvaluationError(f"a Frechet distance needs at least 2 embeddings per set; got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise EvaluationError("embeddings contain NaN or infinite values")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, *, eps: float = FD_EPS
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (audioldm_eval / pytorch-fid numerics).

    Args:
        mu1, mu2: Means ``(D,)``.
        sigma1, sigma2: Covariances ``(D, D)``.
        eps: Diagonal offset used when ``sqrtm(sigma1 @ sigma2)`` is not finite.

    Returns:
        The distance (a float; may be slightly negative from round-off for identical sets).

    Raises:
        EvaluationError: shapes differ, or the square root keeps an imaginary diagonal above 1e-3.
    """
    import scipy.linalg

    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, dtype=np.float64)),
        np.atleast_1d(np.asarray(mu2, dtype=np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, dtype=np.float64)),
        np.atleast_2d(np.asarray(sigma2, dtype=np.float64)),
    )
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.shape[0],) * 2:
        raise EvaluationError(
            f"Frechet distance: shapes do not match (mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape})"
        )
    diff = mu1 - mu2
    with warnings.catch_warnings():  # singular products are expected (few clips); handled below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1.dot(s2))
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_ATOL):
            m = float(np.max(np.abs(covmean.imag)))
            raise EvaluationError(f"Frechet distance: sqrtm left an imaginary component of {m:.3g}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fd_from_embeddings(a: np.ndarray, b: np.ndarray, *, eps: float = FD_EPS) -> float:
    """Frechet distance between two embedding sets ``(N, D)`` and ``(M, D)``."""
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    return frechet_distance(mu1, s1, mu2, s2, eps=eps)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _softmax(x: np.ndarray) -> np.ndarray:
    return np.exp(_log_softmax(x))


def kl_per_pair(gt_logits: np.ndarray, gen_logits: np.ndarray, *, eps: float = KL_EPS) -> np.ndarray:
    """``KL(softmax(gt) || softmax(gen) + eps)`` per row; ``(N, C), (N, C) -> (N,)`` float64.

    Matches ``torch.nn.functional.kl_div((softmax(gen) + eps).log(), softmax(gt), reduction='sum')``
    split by row (terms with ``p_gt == 0`` contribute 0).
    """
    p = _softmax(np.atleast_2d(gt_logits))
    q = _softmax(np.atleast_2d(gen_logits)) + eps
    if p.shape != q.shape:
        raise EvaluationError(f"KL: logits shapes differ ({p.shape} vs {q.shape})")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0)
    return terms.sum(axis=-1)


def kl_paired(
    generated: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], *, eps: float = KL_EPS
) -> tuple[float, dict[str, float]]:
    """KL over clips paired by name (audioldm_eval pairs by filename).

    Args:
        generated: name -> logits ``(C,)`` of the generated clip.
        reference: name -> logits ``(C,)`` of the reference clip.
        eps: Added to the generated probabilities.

    Returns:
        (mean over pairs, per-pair values). Names present on one side only are an error.
    """
    missing = sorted(set(generated) ^ set(reference))
    if missing:
        raise EvaluationError(f"KL is paired by name; unpaired: {', '.join(missing)}")
    if not generated:
        raise EvaluationError("KL needs at least one pair")
    names = sorted(generated)
    kl = kl_per_pair(
        np.stack([np.asarray(reference[n]).reshape(-1) for n in names]),
        np.stack([np.asarray(generated[n]).reshape(-1) for n in names]),
        eps=eps,
    )
    return float(kl.mean()), {n: float(v) for n, v in zip(names, kl, strict=True)}


def inception_score(
    logits: np.ndarray, *, splits: int = IS_SPLITS, shuffle: bool = True, seed: int = IS_SEED
) -> tuple[float, float]:
    """Inception score of classifier logits ``(N, C)`` (audioldm_eval ``calculate_isc``).

    Args:
        logits: One row of class logits per clip, in a fixed order (foleykit: sorted by name).
        splits: Number of splits (10); reduced to N when there are fewer clips.
        shuffle: Permute the rows with ``np.random.RandomState(seed)`` first, as audioldm_eval does.
        seed: Permutation seed (2020).

    Returns:
        (mean, std) of the per-split scores.
    """
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise EvaluationError(f"inception score needs logits of shape (N >= 1, C); got {x.shape}")
    n = x.shape[0]
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n), :]
    splits = max(1, min(int(splits), n))
    log_p = _log_softmax(x)
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        chunk, log_chunk = (
            p[i * n // splits : (i + 1) * n // splits],
            log_p[i * n // splits : (i + 1) * n // splits],
        )
        q = chunk.mean(axis=0, keepdims=True)
        kl = (chunk * (log_chunk - np.log(q))).sum(axis=1).mean()
        scores.append(float(np.exp(kl)))
    return float(np.mean(scores)), float(np.std(scores))
