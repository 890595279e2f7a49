"""AV-Align and AA-Align: hand-derived IoUs on click tracks and moving-square videos, variants, edge cases.

Peak times: librosa reports an onset at a frame time (hop 512 at 22050 Hz = 23.2 ms); a click starting at
t is detected within one frame after t, so the expected peak counts / matches below follow from the click
times and the windows (AV: +-1/fps; AA: +-0.1 s).
"""

from __future__ import annotations

import numpy as np
import pytest

from foleykit.errors import ConfigError, EvaluationError
from foleykit.evaluation.metrics import aa_align as AA
from foleykit.evaluation.metrics import av_align as AV
from foleykit.testing import make_click_track, make_moving_square_frames

SR = 22050
HOP_S = 512 / SR


def clicks(times, *, sr=SR, dur=2.0, amp=0.9):
    return make_click_track(times, sample_rate=sr, duration=dur, amplitude=amp)


# --- shared IoU matching ---------------------------------------------------------------------------------
def test_iou_from_peaks_hand_values():
    # one-to-one: a1 -> v1, a2 has v1 used and v2 too far: I = 1, IoU = 1 / (2 + 1 - 1) = 0.5
    assert AV.av_align_from_peaks([0.40, 0.42], [0.40], 25.0) == pytest.approx(0.5)
    # many-to-one (legacy): both match v1: I = 2, IoU = 2 / (2 + 1 - 2) = 2.0 (> 1)
    assert AV.av_align_from_peaks([0.40, 0.42], [0.40], 25.0, variant="legacy") == pytest.approx(2.0)
    # open window: |a - v| == 1/fps exactly is not a match (0.04 + 0.04 == 0.08 in float)
    assert AV.av_align_from_peaks([0.08], [0.04], 25.0) == 0.0
    assert AA.aa_align_from_peaks([0.2], [0.1]) == 0.0  # 0.1 + 0.1 == 0.2: outside (t - T, t + T)
    assert AA.aa_align_from_peaks([0.19], [0.1]) == 1.0


def test_empty_cases_defined():
    assert AV.av_align_from_peaks([], [], 25.0) == AV.EMPTY_SCORE == 1.0
    assert AV.av_align_from_peaks([], [], 25.0, empty_score=0.0) == 0.0
    assert AV.av_align_from_peaks([0.5], [], 25.0) == 0.0
    assert AV.av_align_from_peaks([], [0.5], 25.0) == 0.0
    assert AA.aa_align_from_peaks([], []) == 1.0
    assert AA.aa_align_from_peaks([], [0.3]) == 0.0


def test_detect_video_peaks_threshold_variants():
    traj = [0.0, 0.05, 0.0, 0.2, 0.1, 0.3, 0.3, 0.0, 0.1, 0.0]
    # local maxima (strict on both sides): i = 1 (0.05), 3 (0.2), 8 (0.1); the 0.3 plateau is none
    np.testing.assert_allclose(AV.detect_video_peaks(traj, 10.0, threshold=None), [0.1, 0.3, 0.8])
    np.testing.assert_allclose(AV.detect_video_peaks(traj, 10.0), [0.3, 0.8])  # reference: >= 0.1
    np.testing.assert_allclose(
        AV.detect_video_peaks(traj, 10.0, threshold=0.1, inclusive=False), [0.3]
    )  # STA-V2A
    assert AV.detect_video_peaks([0.0, 1.0], 10.0).size == 0  # fewer than 3 values: no interior frame
    with pytest.raises(ConfigError):
        AV.detect_video_peaks(traj, 0.0)


# --- audio branch ------------------------------------------------------------------------------------------
def test_audio_peaks_at_click_times_any_rate_and_stereo():
    for sr in (16000, 22050, 44100):
        peaks = AV.detect_audio_peaks(clicks([0.4, 1.2], sr=sr), sr)
        assert peaks.shape == (2,)
        assert np.all(peaks >= [0.4, 1.2]) and np.all(peaks <= np.array([0.4, 1.2]) + HOP_S)
    mono = clicks([0.4, 1.2], sr=44100)
    stereo = np.stack([mono, mono])  # (C, T): channel mean == mono
    np.testing.assert_array_equal(AV.detect_audio_peaks(stereo, 44100), AV.detect_audio_peaks(mono, 44100))


def test_audio_peaks_silence_and_very_short_clips():
    assert AV.detect_audio_peaks(np.zeros(SR, np.float32), SR).size == 0
    assert AV.detect_audio_peaks(np.zeros(0, np.float32), SR).size == 0
    assert AV.detect_audio_peaks(clicks([0.01], dur=0.05), SR).size == 0  # shorter than one analysis frame
    with pytest.raises(EvaluationError, match="looks like"):
        AV.detect_audio_peaks(np.zeros((SR, 2), np.float32), SR)  # (T, C) instead of (C, T)


# --- AV-Align on frames -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def square_25fps():
    return make_moving_square_frames(50, move_frames=(10, 30))  # flow peaks at frames 10, 30 -> 0.4 s, 1.2 s


def test_av_align_frames_hand_values(square_25fps):
    np.testing.assert_allclose(AV.video_peaks_from_frames(square_25fps, 25.0), [0.4, 1.2])
    assert AV.av_align(clicks([0.4, 1.2]), SR, square_25fps, 25.0) == pytest.approx(1.0)
    assert AV.av_align(clicks([0.4]), SR, square_25fps, 25.0) == pytest.approx(0.5)  # 1 / (1 + 2 - 1)
    assert AV.av_align(clicks([0.8]), SR, square_25fps, 25.0) == 0.0  # 0 / (1 + 2)
    assert AV.av_align(np.zeros(2 * SR, np.float32), SR, square_25fps, 25.0) == 0.0  # silent audio


def test_av_align_static_video_and_silence_is_empty_score():
    still = np.repeat(make_moving_square_frames(2, move_frames=(1,))[:1], 30, axis=0)
    assert AV.video_peaks_from_frames(still, 25.0).size == 0
    assert AV.av_align(np.zeros(SR, np.float32), SR, still, 25.0) == 1.0
    assert AV.av_align(clicks([0.4]), SR, still, 25.0) == 0.0
    assert AV.video_peaks_from_frames(still[:2], 25.0).size == 0  # < 3 frames: no peak


def test_reference_vs_legacy_differ():
    # 10 fps: window +-0.1 s around the video peaks 0.4 s and 1.2 s; audio peaks at ~0.35, ~0.46, ~1.2 s
    frames = make_moving_square_frames(20, move_frames=(4, 12))
    audio = clicks([0.33, 0.45, 1.2])
    # reference (one-to-one): 0.35 -> 0.4, 0.46 finds 0.4 used, 1.2 -> 1.2: I = 2, IoU = 2 / (3 + 2 - 2)
    assert AV.av_align(audio, SR, frames, 10.0) == pytest.approx(2 / 3)
    # legacy (many-to-one): I = 3, IoU = 3 / (3 + 2 - 3) = 1.5
    assert AV.av_align(audio, SR, frames, 10.0, variant="legacy") == pytest.approx(1.5)
    with pytest.raises(ConfigError):
        AV.av_align(audio, SR, frames, 10.0, variant="nope")


def test_av_align_from_paths(tmp_path):
    from foleykit.testing import make_moving_square_video, write_click_track

    video = make_moving_square_video(tmp_path / "v.mp4", fps=25.0, duration=2.0, move_frames=(10, 30))
    audio = write_click_track(tmp_path / "a.wav", [0.4, 1.2], sample_rate=44100, duration=2.0)
    assert AV.av_align_from_paths(audio, video) == pytest.approx(1.0)


# --- AA-Align -------------------------------------------------------------------------------------------------
def test_aa_align_hand_values():
    ref = clicks([0.4, 1.2])
    assert AA.aa_align(ref, ref, SR) == 1.0  # identical inputs
    assert AA.aa_align(clicks([0.4]), ref, SR) == pytest.approx(0.5)  # 1 / (1 + 2 - 1)
    assert AA.aa_align(clicks([0.7]), ref, SR) == 0.0


def test_aa_align_reference_vs_one_to_one():
    gen, ref = clicks([0.4, 0.48, 1.2]), clicks([0.4, 1.2])  # the 0.48 peak lies within 0.1 s of 0.4
    assert AA.aa_align(gen, ref, SR) == pytest.approx(1.5)  # many-to-one: I = 3 -> 3 / (3 + 2 - 3)
    assert AA.aa_align(gen, ref, SR, variant="one-to-one") == pytest.approx(2 / 3)  # I = 2 -> 2 / 3
    with pytest.raises(ConfigError):
        AA.aa_align(gen, ref, SR, variant="many")


def test_aa_align_silence_lengths_and_rates():
    silent = np.zeros(SR, np.float32)
    assert AA.aa_align(silent, silent, SR) == 1.0  # both empty: defined as 1
    assert AA.aa_align(silent, clicks([0.4]), SR) == 0.0  # one side silent
    # different lengths and sample rates: a 3 s 44.1 kHz stereo clip vs a 2 s 16 kHz mono clip
    long_stereo = np.stack([clicks([0.4, 1.2], sr=44100, dur=3.0)] * 2)
    assert AA.aa_align(long_stereo, clicks([0.4, 1.2], sr=16000), 44100, reference_sample_rate=16000) == 1.0
