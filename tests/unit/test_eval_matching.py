"""Does each sound belong to its own clip: the loudness-curve correlation (own / shuffled margin) and the
own-reference rank, directly and through ``evaluate``."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from foleykit.errors import EvaluationError
from foleykit.evaluation import evaluate, paired_difference
from foleykit.evaluation.metrics import matching as M
from foleykit.testing import make_click_track

SR = 16000


def bursts(times, dur=3.0, seed=0):
    """Noise bursts of 0.15 s at ``times`` over a quiet noise bed."""
    rng = np.random.default_rng(seed)
    y = 0.003 * rng.standard_normal(int(dur * SR)).astype(np.float32)
    for t in times:
        i = int(t * SR)
        y[i : i + int(0.15 * SR)] += 0.5 * rng.standard_normal(min(int(0.15 * SR), len(y) - i))
    return y


def test_loudness_curve_is_librosa_rms_in_db_re_peak():
    y = bursts([0.5, 1.7])
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=320)[0]
    expected = 20 * np.log10(np.maximum(rms, 1e-5) / rms.max())
    curve = M.loudness_curve(y)
    assert curve.shape == (len(y) // 320 + 1,)
    np.testing.assert_allclose(curve, np.maximum(expected, -60.0), atol=1e-4)
    assert curve.max() == pytest.approx(0.0) and curve.min() >= -60.0
    assert np.all(M.loudness_curve(np.zeros(SR, np.float32)) == -60.0)  # silence: flat at the floor


def test_correlation_of_curves():
    a = M.loudness_curve(bursts([0.5, 1.7]))
    assert M.curve_correlation(a, a) == pytest.approx(1.0)
    assert M.curve_correlation(a, -a) == pytest.approx(-1.0)
    assert M.curve_correlation(a, np.full_like(a, -60.0)) == 0.0  # a flat curve correlates 0
    assert M.curve_correlation(a, a[:50]) == pytest.approx(1.0)  # common length
    with pytest.raises(EvaluationError, match="at least 2"):
        M.curve_correlation(a, a[:1])


def test_loudness_margin_is_own_minus_the_other_clips_references():
    times = {"a": [0.3], "b": [1.2], "c": [2.4]}
    ref = {k: M.loudness_curve(bursts(t, seed=1)) for k, t in times.items()}
    gen = {k: M.loudness_curve(bursts(t, seed=2)) for k, t in times.items()}
    corr, margin = M.loudness_scores(gen, ref)
    for k in times:
        others = [M.curve_correlation(gen[k], ref[o]) for o in times if o != k]
        assert corr[k] > 0.5
        assert margin[k] == pytest.approx(corr[k] - np.mean(others))
        assert margin[k] > 0.5
    # the same sounds handed to the wrong clips: the margin turns negative
    swapped = {"a": gen["b"], "b": gen["c"], "c": gen["a"]}
    _, margin = M.loudness_scores(swapped, ref)
    assert all(v < 0 for v in margin.values())
    assert M.loudness_scores({"a": gen["a"]}, {"a": ref["a"]})[1] is None  # one clip: no margin


def test_match_rank_places_the_own_reference_among_all():
    rng = np.random.default_rng(0)
    ref = {k: rng.standard_normal(16) for k in "abcde"}
    own = {k: v + 0.05 * rng.standard_normal(16) for k, v in ref.items()}
    assert M.match_ranks(own, ref) == {k: 0.0 for k in "abcde"}
    # each sound is its neighbour's: the own reference is never the closest
    keys = list("abcde")
    shifted = {k: ref[keys[(i + 1) % 5]] for i, k in enumerate(keys)}
    assert all(v > 0 for v in M.match_ranks(shifted, ref).values())
    # frame embeddings are averaged; every reference equally similar: ties count half -> 0.5
    same = {k: np.ones((3, 4)) for k in "abc"}
    assert M.match_ranks(same, same) == {k: 0.5 for k in "abc"}
    # orthogonal references; clip a sounds like the opposite of its own: last of 5 -> 1
    eye = {k: np.eye(5)[i] for i, k in enumerate("abcde")}
    ranks = M.match_ranks({**eye, "a": -eye["a"]}, eye)
    assert ranks == {"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": 0.0}
    with pytest.raises(EvaluationError, match=">= 2 clips"):
        M.match_ranks({"a": ref["a"]}, {"a": ref["a"]})
    with pytest.raises(EvaluationError, match="share no clip"):
        M.match_ranks({"a": ref["a"]}, {"b": ref["b"]})


def test_evaluate_reports_them_per_clip_and_skips_the_set_ones_for_one_clip():
    times = {"a": [0.3], "b": [1.2], "c": [2.4]}
    ref = {k: bursts(t, seed=1) for k, t in times.items()}
    gen = {k: bursts(t, seed=2) for k, t in times.items()}
    rep = evaluate(gen, ref, sample_rate=SR, metrics="loudness,match", cache=False)
    assert list(rep.metrics) == ["loudness_corr", "loudness_margin", "match_rank"]
    corr, margin = M.loudness_scores(
        {k: M.loudness_curve(v) for k, v in gen.items()}, {k: M.loudness_curve(v) for k, v in ref.items()}
    )
    assert rep.metrics["loudness_corr"].per_file == pytest.approx(corr)
    assert rep.metrics["loudness_margin"].per_file == pytest.approx(margin)
    assert set(rep.metrics["match_rank"].per_file) == set(times)
    assert all(0.0 <= v <= 1.0 for v in rep.metrics["match_rank"].per_file.values())
    assert rep.config["protocols"]["match"]["chance"] == 0.5
    one = evaluate({"a": gen["a"]}, {"a": ref["a"]}, sample_rate=SR, metrics="loudness,match", cache=False)
    assert one["loudness_corr"] == pytest.approx(corr["a"])
    assert one["loudness_margin"] is None and one["match_rank"] is None
    assert "needs >= 2" in one.metrics["match_rank"].extra["skipped"]


def test_a_lower_match_rank_is_better_in_paired_comparisons():
    a = {"x": 0.0, "y": 0.1, "z": 0.0}
    b = {"x": 0.5, "y": 0.6, "z": 0.4}
    d = paired_difference(a, b, "match_rank", num_resamples=200)
    assert d.diff < 0 and d.better == 1.0
    d = paired_difference(b, a, "loudness_margin", num_resamples=200)
    assert d.diff > 0 and d.better == 1.0


def test_clicks_at_the_same_times_follow_their_own_soundtrack():
    ref = {k: make_click_track(t, sample_rate=SR, duration=2.0) for k, t in (("a", [0.4]), ("b", [1.4]))}
    rep = evaluate(ref, ref, sample_rate=SR, metrics="loudness", cache=False)
    assert rep.metrics["loudness_corr"].per_file == pytest.approx({"a": 1.0, "b": 1.0})
    assert rep["loudness_margin"] > 0.5


def test_a_clip_too_short_for_a_loudness_curve_is_listed_with_its_name():
    gen = {"ok": bursts([0.5]), "tiny": np.zeros(100, np.float32)}
    with pytest.raises(
        EvaluationError, match=r"(?s)1 file\(s\) could not be evaluated.*tiny.*loudness curve"
    ):
        evaluate(gen, gen, sample_rate=SR, metrics="loudness", cache=False)
    rep = evaluate(gen, gen, sample_rate=SR, metrics="loudness", cache=False, skip_errors=True)
    assert list(rep.metrics["loudness_corr"].per_file) == ["ok"]


def test_the_margin_is_the_same_for_clips_of_one_length_and_of_several():
    rng = np.random.default_rng(3)
    ref = {k: M.loudness_curve(bursts(rng.uniform(0.1, 2.5, 2), seed=i)) for i, k in enumerate("abcd")}
    gen = {k: M.loudness_curve(bursts(rng.uniform(0.1, 2.5, 2), seed=9 + i)) for i, k in enumerate("abcd")}
    gen["e"], ref["e"] = np.full_like(gen["a"], -60.0), ref["a"]  # a flat curve correlates 0
    corr, margin = M.loudness_scores(gen, ref)  # one length: the matrix path
    expected = {k: M.curve_correlation(gen[k], ref[k]) for k in gen}
    assert corr == pytest.approx(expected, abs=1e-9) and corr["e"] == 0.0
    for k, curve in gen.items():
        others = np.mean([M.curve_correlation(curve, ref[o]) for o in gen if o != k])
        assert margin[k] == pytest.approx(expected[k] - others, abs=1e-9)
    longer = {**gen, "a": np.concatenate([gen["a"], gen["a"][:7]])}  # several lengths: pair by pair
    corr2, margin2 = M.loudness_scores(longer, ref)
    assert corr2 == pytest.approx(corr, abs=1e-9) and margin2 == pytest.approx(margin, abs=1e-9)
