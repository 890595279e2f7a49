"""E-L1 (T-Foley), RMS class accuracy (Stable-V2A) and energy MAE (ReWaS): hand-derived distances."""

from __future__ import annotations

import numpy as np
import pytest

from foleykit.errors import EvaluationError
from foleykit.evaluation.metrics import energy as EN
from foleykit.evaluation.metrics import envelope as E

SR = 22050


def square(n: int, period: int = 100) -> np.ndarray:
    """A full-scale +-1 square wave: its RMS over any whole window is exactly 1."""
    return np.where(np.arange(n) % period < period // 2, 1.0, -1.0).astype(np.float32)


# --- E-L1 --------------------------------------------------------------------------------------------------
def test_e_l1_identical_and_gain_invariant():
    x = square(SR)
    assert E.e_l1(x, x, SR) == 0.0
    assert E.e_l1(x, 0.25 * x, SR) == pytest.approx(0.0, abs=1e-7)  # both are peak-normalised first


def test_e_l1_known_distance():
    # second half at half amplitude: after peak normalisation the RMS differs by 0.5 on half of the frames
    # (the low-pass keeps DC up to its 0.01 dB ripple) -> E-L1 = 0.5 * 1/2 = 0.25
    x = square(SR)
    y = x.copy()
    y[SR // 2 :] *= 0.5
    assert E.e_l1(x, y, SR) == pytest.approx(0.25, abs=0.003)
    # against silence the distance is the whole envelope: RMS 1 except the zero-padded edge frames
    assert 0.98 < E.e_l1(x, np.zeros(SR, np.float32), SR) < 1.0
    assert E.e_l1(np.zeros(SR, np.float32), np.zeros(SR, np.float32), SR) == 0.0  # silent stays zero


def test_e_l1_lengths_rates_stereo():
    x, y = square(SR), square(SR)
    y[SR // 2 :] *= 0.5
    longer = np.concatenate([x, np.zeros(SR, np.float32)])  # compared over the common length only
    assert E.e_l1(longer, y, SR) == E.e_l1(x, y, SR)
    assert E.e_l1(np.stack([x, x]), y, SR) == E.e_l1(x, y, SR)  # (C, T) channel mean
    # configurable rate (Stable-V2A: 16 kHz) with a sine (resampling keeps its peak): normalised RMS 1/sqrt(2)
    # vs 1/(2 sqrt(2)) on the second half -> E-L1 = 1/2 * (1/sqrt(2) - 1/(2 sqrt(2))) = 1/(4 sqrt(2))
    sine = np.sin(2 * np.pi * 441 * np.arange(SR) / SR).astype(np.float32)
    half = sine.copy()
    half[SR // 2 :] *= 0.5
    expected = 1 / (4 * np.sqrt(2))
    assert E.e_l1(sine, half, SR) == pytest.approx(expected, abs=0.003)
    assert E.e_l1(sine, half, SR, target_sample_rate=16000) == pytest.approx(expected, abs=0.003)
    assert E.e_l1(EN.prepare(sine, SR, 44100), half, 44100, reference_sample_rate=SR) == pytest.approx(
        expected, abs=0.003
    )
    with pytest.raises(EvaluationError):
        E.e_l1(np.zeros(0, np.float32), x, SR)


# --- RMS classes ----------------------------------------------------------------------------------------------
def test_topk_accuracy_hand_values():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    targets = np.array([1, 1, 0, 2])
    # top-1 predictions 1, 0, 2, 0 -> 1 of 4 right; top-2 sets {1,2}, {0,1}, {2,1}, {0,2} -> 3 of 4
    assert E.topk_accuracy(scores, targets, 1) == 0.25
    assert E.topk_accuracy(scores, targets, 2) == 0.75
    assert E.topk_accuracy(scores, targets, 10) == 1.0  # k >= C
    with pytest.raises(EvaluationError):
        E.topk_accuracy(scores, targets[:3], 1)
    with pytest.raises(EvaluationError):
        E.topk_accuracy(scores, np.array([1, 1, 0, 3]), 1)


def test_tolerance_accuracy_hand_values():
    pred, gt = np.array([0, 5, 10, 63]), np.array([0, 6, 13, 60])
    assert E.tolerance_accuracy(pred, gt, 0) == 0.25
    assert E.tolerance_accuracy(pred, gt, 1) == 0.5
    assert E.tolerance_accuracy(pred, gt, 3) == 1.0
    with pytest.raises(EvaluationError):
        E.tolerance_accuracy(pred, gt[:2], 0)
    with pytest.raises(EvaluationError):
        E.tolerance_accuracy(pred, gt, -1)


def test_rms_classes_and_accuracy():
    x = 0.5 * square(16000)  # RMS 0.5 -> one class everywhere (after the edge frames)
    c = E.rms_classes(x, 16000)
    assert c.shape == (125,)  # 1 s at 125 Hz
    assert E.rms_class_accuracy(x, x, 16000) == 1.0
    assert E.rms_class_accuracy(np.zeros(16000, np.float32), x, 16000) < 0.1  # silence is class 0
    # a 12 dB quieter copy sits ~ 12 / 0.5 dB ... many classes lower: exact accuracy 0, loose tolerance 1
    quiet = 0.25 * x
    assert E.rms_class_accuracy(quiet, x, 16000, tolerance=0) < 0.05
    assert E.rms_class_accuracy(quiet, x, 16000, tolerance=63) == 1.0


# --- energy MAE -------------------------------------------------------------------------------------------------
def test_energy_mae_hand_values():
    x = (np.random.default_rng(0).standard_normal(16000) * 0.3).astype(np.float32)
    assert EN.energy_mae(x, x, 16000) == 0.0
    # a gain g moves every log-mel bin (all above the 1e-5 floor for white noise) by log(g): MAE = |log 0.5|
    assert EN.energy_mae(x, 0.5 * x, 16000, normalize=False) == pytest.approx(np.log(2), abs=1e-4)
    assert EN.energy_mae(x, 0.5 * x, 16000) == pytest.approx(0.0, abs=1e-5)  # AudioLDM normalisation
    # deterministic 2 s window, both zero-padded: the difference lives in the first half only
    assert EN.energy_mae(x, 0.5 * x, 16000, normalize=False, duration=2.0) == pytest.approx(
        np.log(2) / 2, abs=0.015
    )


def test_energy_mae_rates_lengths_and_errors():
    x = (np.random.default_rng(1).standard_normal(32000) * 0.3).astype(np.float32)
    x44 = EN.prepare(x, 16000, 44100)
    # resampled copies agree up to the resampler's roll-off in the top mel bins (7-8 kHz)
    assert EN.energy_mae(x44, x, 44100, reference_sample_rate=16000) < 0.05
    assert EN.energy_mae(x, x[:16000], 16000) == EN.energy_mae(x[:16000], x[:16000], 16000)  # common length
    with pytest.raises(EvaluationError, match="too short"):
        EN.energy_mae(x[:100], x[:100], 16000)
    with pytest.raises(EvaluationError):
        EN.energy_mae(x, x, 16000, duration=-1.0)
    assert EN.normalize_wav(np.zeros(10)).tolist() == [0.0] * 10
