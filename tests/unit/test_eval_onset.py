"""Onset Acc / AP (Greatest Hits protocol): hand-derived values, and where "reference" and "strict" differ.

Click tracks have peak amplitude ``amp`` at the click start, so the min-max normalised |wav| of a clip
whose loudest click has amplitude A gives confidence ``amp / A`` to a click of amplitude ``amp``.
"""

from __future__ import annotations

import numpy as np
import pytest

from foleykit.errors import ConfigError
from foleykit.evaluation.metrics import onset as O
from foleykit.testing import make_click_track

SR = 22050


def clicks(times, *, amp=0.9, sr=SR, dur=2.0):
    return make_click_track(times, sample_rate=sr, duration=dur, amplitude=amp)


def test_constants_match_the_protocol():
    assert O.CONF_INTERVAL == 1102 and O.SAMPLE_RATE == 22050 and O.ONSET_DELTA == 0.3
    assert O.MATCH_WINDOW_SECONDS == 0.1 and O.NMS_WINDOW_SECONDS == 0.05 and O.CLIP_SECONDS == 2.0


def test_identical_clips_score_one_in_both_modes():
    t = clicks([0.3, 0.8, 1.4])
    for mode in O.MODES:
        s = O.onset_metrics(t, t, SR, mode=mode)
        assert (s.acc, s.ap, s.hits, s.num_targets, s.num_generated) == (1.0, 1.0, 3, 3, 3)


def test_false_positive_ranking():
    target = clicks([0.3, 0.8])
    # true hits loud (conf 1), the false onset quiet (conf 0.5): ranked below both hits -> AP 1
    quiet_fp = clicks([0.3, 0.8]) + clicks([1.4], amp=0.45)
    # false onset loud (conf 1), hits quiet (conf 0.5): P = 0 at the top threshold, 2/3 at the next -> AP 2/3
    loud_fp = clicks([0.3, 0.8], amp=0.45) + clicks([1.4])
    for mode in O.MODES:
        assert O.onset_metrics(quiet_fp, target, SR, mode=mode).ap == pytest.approx(1.0)
        s = O.onset_metrics(loud_fp, target, SR, mode=mode)
        assert (s.acc, s.num_generated) == (1.0, 3)
        assert s.ap == pytest.approx(2 / 3)


def test_silence_quirk_reference_vs_strict():
    target, silent = clicks([0.3, 0.8, 1.4]), np.zeros(2 * SR, np.float32)
    ref = O.onset_metrics(silent, target, SR, mode="reference")
    assert (ref.acc, ref.ap) == (0.0, 1.0)  # every entry is (gt 1, pred 0): sklearn AP = 1
    strict = O.onset_metrics(silent, target, SR, mode="strict")
    assert (strict.acc, strict.ap) == (0.0, 0.0)


def test_missed_targets_and_early_break():
    # one generated onset hits the first of three targets; the reference loop then breaks with nothing left
    gen, target = clicks([0.3]), clicks([0.3, 0.8, 1.4])
    ref = O.onset_metrics(gen, target, SR, mode="reference")
    assert ref.acc == pytest.approx(1 / 3)
    assert ref.ap == pytest.approx(1.0)  # only (1, conf) listed: all positives
    strict = O.onset_metrics(gen, target, SR, mode="strict")
    assert strict.acc == pytest.approx(1 / 3)
    assert strict.ap == pytest.approx(1 / 3)  # recall 1/3 at precision 1


def test_scores_from_onsets_directly():
    wav = np.zeros(2 * SR)
    wav[[5000, 20000]] = [1.0, 0.5]
    # targets at 5100 and 30000; generated at 5000 (hit, conf 1) and 20000 (false, conf 0.5)
    ref = O.onset_scores([5100, 30000], [5000, 20000], wav, mode="reference")
    # y = [(1, 1.0), (1, 0.0), (0, 0.5)]: thresholds 1.0 -> P 1 R 1/2; 0.5 -> P 1/2 R 1/2; 0 -> P 2/3 R 1
    assert (ref.acc, ref.hits) == (0.5, 1)
    assert ref.ap == pytest.approx(0.5 * 1 + 0.5 * (2 / 3))
    strict = O.onset_scores([5100, 30000], [5000, 20000], wav, mode="strict")
    assert strict.ap == pytest.approx(0.5 * 1.0)  # detections [(1, 1.0), (0, 0.5)]: AP 1, times recall 1/2


def test_nms_quirk():
    onsets, conf = np.array([10000, 10500, 11000, 30000]), np.array([0.9, 0.8, 0.7, 0.6])
    # 10000 removes 10500; the reference iterates the list it mutates and skips 11000 (within 1000 < 1102.5)
    np.testing.assert_array_equal(O.onset_nms(onsets, conf, mode="reference"), [10000, 11000, 30000])
    np.testing.assert_array_equal(O.onset_nms(onsets, conf, mode="strict"), [10000, 30000])
    np.testing.assert_array_equal(O.onset_nms(np.array([], np.int64), np.array([])), [])


def test_confidence_window_clamped_at_start():
    w = np.linspace(0.0, 1.0, 5000)
    # onset 100: window [0, 1202) (the reference's negative start would select an empty slice)
    assert O.onset_confidence(w, [100])[0] == pytest.approx(w[1201])
    assert O.onset_confidence(w, [3000])[0] == pytest.approx(w[4101])


def test_empty_sides_defined():
    silent = np.zeros(2 * SR, np.float32)
    both = O.onset_metrics(silent, silent, SR, mode="reference")
    assert (both.acc, both.ap) == (0.0, 1.0)
    both = O.onset_metrics(silent, silent, SR, mode="strict")
    assert (both.acc, both.ap) == (1.0, 1.0)
    for mode in O.MODES:  # no target but generated onsets: all false positives
        s = O.onset_metrics(clicks([0.5]), silent, SR, mode=mode)
        assert (s.acc, s.ap) == (0.0, 0.0)


def test_rates_stereo_lengths_and_clip_crop():
    target = clicks([0.3, 0.8], sr=16000, dur=3.0)  # 16 kHz, 3 s
    gen = np.stack([clicks([0.3, 0.8, 2.5], sr=44100, dur=3.0)] * 2)  # 44.1 kHz stereo, onset at 2.5 s
    s = O.onset_metrics(gen, target, 44100, reference_sample_rate=16000)  # cut to 2 s: 2.5 s is dropped
    assert (s.acc, s.ap, s.num_generated) == (1.0, 1.0, 2)
    s = O.onset_metrics(gen, target, 44100, reference_sample_rate=16000, clip_seconds=None)  # whole clips
    assert (s.acc, s.num_generated) == (1.0, 3)
    short = clicks([0.01], dur=0.03)
    assert O.onset_metrics(short, short, SR).num_targets == 0
    with pytest.raises(ConfigError):
        O.onset_metrics(gen, target, 44100, mode="lenient")
    with pytest.raises(ConfigError):
        O.load_clip(target, 16000, clip_seconds=0)
