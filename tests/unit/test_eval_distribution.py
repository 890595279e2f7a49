"""FD / KL / IS (audioldm_eval conventions) on tiny inputs with values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from foleykit.errors import EvaluationError
from foleykit.evaluation.metrics import clap_score as C
from foleykit.evaluation.metrics import distribution as D


def test_frechet_distance_of_known_gaussians():
    # diagonal covariances commute: FD = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2 = (1 + 4) + (1 + 1)
    fd = D.frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 2.0]), np.diag([4.0, 9.0]))
    assert fd == pytest.approx(7.0)
    # same Gaussian: 0; pure mean shift: |mu1 - mu2|^2
    s = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert D.frechet_distance(np.ones(2), s, np.ones(2), s) == pytest.approx(0.0, abs=1e-9)
    assert D.frechet_distance(np.zeros(2), s, np.array([3.0, 4.0]), s) == pytest.approx(25.0)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations
    assert D.frechet_distance([0.0], [[4.0]], [1.0], [[1.0]]) == pytest.approx(1.0 + 1.0)


def test_fd_from_embeddings_exact_moments():
    # set A: the four points (+-1, +-1): mean 0, np.cov (n - 1 = 3) = 4/3 I
    a = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=float)
    b = 2 * a + np.array([3.0, 0.0])  # mean (3, 0), cov 16/3 I
    # FD = 9 + 2 * (sqrt(4/3) - sqrt(16/3))^2 = 9 + 2 * (4/3) * (1 - 2)^2 = 9 + 8/3
    assert D.fd_from_embeddings(a, b) == pytest.approx(9 + 8 / 3)
    assert D.fd_from_embeddings(a, a) == pytest.approx(0.0, abs=1e-9)


def test_fd_singular_covariances_and_errors():
    # 3 embeddings in 8 dimensions: rank-deficient covariances (the eps path) still give a finite value
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 8)), rng.standard_normal((3, 8)) + 1.0
    assert np.isfinite(D.fd_from_embeddings(a, b))
    with pytest.raises(EvaluationError, match="at least 2"):
        D.fd_from_embeddings(a[:1], b)
    with pytest.raises(EvaluationError, match="shapes"):
        D.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(EvaluationError, match="imaginary"):  # not a covariance: sqrt of -1 on the diagonal
        D.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -1.0]))
    with pytest.raises(EvaluationError, match="NaN"):
        D.gaussian_stats(np.array([[0.0, np.nan], [1.0, 1.0]]))


def test_kl_by_hand():
    # p = softmax([0, 0]) = (1/2, 1/2); q = softmax([log 3, 0]) = (3/4, 1/4)
    # KL(p || q + eps) = 1/2 log(1/2 / (3/4 + eps)) + 1/2 log(1/2 / (1/4 + eps))
    eps = 1e-6
    expected = 0.5 * np.log(0.5 / (0.75 + eps)) + 0.5 * np.log(0.5 / (0.25 + eps))
    kl = D.kl_per_pair(np.array([[0.0, 0.0]]), np.array([[np.log(3.0), 0.0]]))
    assert kl[0] == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.5 * np.log(4 / 3), abs=1e-5)
    # identical logits: only the eps term remains, sum_c p_c log(p_c / (p_c + eps)) ~ -eps * C
    same = D.kl_per_pair(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 2.0, 3.0]]))
    assert same[0] == pytest.approx(-3 * eps, rel=0.01)


def test_kl_paired_by_name():
    gt = {"a": np.array([0.0, 0.0]), "b": np.array([5.0, 5.0])}
    gen = {"b": np.array([5.0, 5.0]), "a": np.array([np.log(3.0), 0.0])}
    mean, per = D.kl_paired(gen, gt)
    assert per["a"] == pytest.approx(0.5 * np.log(4 / 3), abs=1e-5)
    assert abs(per["b"]) < 1e-5
    assert mean == pytest.approx((per["a"] + per["b"]) / 2)
    with pytest.raises(EvaluationError, match="unpaired: c"):
        D.kl_paired({**gen, "c": np.zeros(2)}, gt)


def test_inception_score_by_hand():
    confident = np.array([[50.0, 0.0], [0.0, 50.0]])  # p = one-hot of two different classes
    # one split: marginal (1/2, 1/2), each KL = log 2 -> IS = exp(log 2) = 2
    mean, std = D.inception_score(confident, splits=1)
    assert (mean, std) == (pytest.approx(2.0), 0.0)
    # 10 splits on 2 clips -> 2 splits of one clip: marginal = p -> IS 1 each
    assert D.inception_score(confident)[0] == pytest.approx(1.0)
    assert D.inception_score(np.zeros((5, 4)), splits=1)[0] == pytest.approx(1.0)  # uniform predictions
    with pytest.raises(EvaluationError):
        D.inception_score(np.zeros((0, 4)))


def test_inception_score_shuffle_is_seeded():
    logits = np.random.default_rng(3).standard_normal((40, 6)) * 3
    a = D.inception_score(logits, splits=4)
    assert a == D.inception_score(logits, splits=4)  # RandomState(2020) permutation
    assert a != D.inception_score(logits, splits=4, shuffle=False)


def test_cosine_rows():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0], [1.0, 0.0]])
    np.testing.assert_allclose(C.cosine_rows(a, b), [1.0, -1.0, 0.0])
    with pytest.raises(EvaluationError):
        C.cosine_rows(a, b[:2])
