"""Controls from audio: ReWaS energy, Stable-V2A RMS + mu-law classes + label smoothing, onsets."""

import math

import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from foleykit.config import SequenceConfig
from foleykit.controls import (
    TemporalControl,
    classes_to_rms,
    detect_onsets,
    energy,
    energy_from_mel,
    follow_envelope,
    gaussian_smoothed_targets,
    inverse_mu_law,
    lowpass_envelope,
    mu_law,
    onset_track,
    onsets,
    rms_bin_edges,
    rms_envelope,
    rms_to_classes,
    savgol_smooth,
)
from foleykit.errors import ControlError
from foleykit.testing import make_click_track

SR = 16000
LOG_FLOOR = math.log(1e-5)


def sine(freq=1000.0, seconds=1.0, sr=SR, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)).astype(np.float32)


def noise(seconds=1.0, sr=SR, amp=0.1, seed=0):
    return (amp * np.random.default_rng(seed).uniform(-1, 1, round(seconds * sr))).astype(np.float32)


# --- energy (ReWaS) -----------------------------------------------------------------------------------
def test_energy_of_silence_is_log_floor():
    for smooth in (True, False):
        e = energy(np.zeros(2 * SR, np.float32), SR, smooth=smooth)
        assert e.kind == "energy" and e.rate == 100.0 and e.num_frames == 200
        np.testing.assert_allclose(e.values, LOG_FLOOR, atol=1e-5)
    assert e.meta["smoothed"] is False and "savgol" not in e.meta


def test_energy_is_mean_log_mel_and_smoothing_is_savgol_9_2():
    x = noise() + sine(300)
    raw = energy(x, SR, smooth=False).values
    mel = librosa.feature.melspectrogram(  # independent AudioLDM mel (reflect pad 432, no centring)
        y=np.pad(x.astype(np.float64), 432, mode="reflect"),
        sr=SR,
        n_fft=1024,
        hop_length=160,
        center=False,
        power=1.0,
        n_mels=64,
        fmin=0,
        fmax=8000,
    )
    expected = np.log(np.maximum(mel, 1e-5)).mean(axis=0)
    np.testing.assert_allclose(raw, expected, atol=1e-4)
    smooth = energy(x, SR).values
    np.testing.assert_allclose(smooth, scipy.signal.savgol_filter(expected, 9, 2), atol=1e-4)


def test_energy_doubling_amplitude_adds_log2():
    quiet, loud = energy(noise(), SR, smooth=False), energy(2 * noise(), SR, smooth=False)
    np.testing.assert_allclose(loud.values - quiet.values, math.log(2), atol=1e-4)


def test_energy_resamples_input_and_mixes_channels():
    x44 = noise(sr=44100)
    e = energy(x44, 44100)
    assert e.num_frames == 100 and e.meta["sample_rate"] == 16000
    stereo = np.stack([noise(), noise()])
    np.testing.assert_allclose(energy(stereo, SR).values, energy(noise(), SR).values, atol=1e-5)
    seq = SequenceConfig.stable_audio_open()
    e2 = energy(x44, 44100, seq=seq)
    assert e2.rate == pytest.approx(44100 / 512) and e2.num_frames == 44100 // 512


def test_savgol_hand_values():
    t = np.arange(20.0)
    np.testing.assert_allclose(savgol_smooth(t**2), t**2, atol=1e-9)  # quadratics pass unchanged
    impulse = np.zeros(21)
    impulse[10] = 231.0
    # 9-point quadratic Savitzky-Golay weights: (-21, 14, 39, 54, 59, 54, 39, 14, -21) / 231
    np.testing.assert_allclose(
        savgol_smooth(impulse)[6:15], [-21, 14, 39, 54, 59, 54, 39, 14, -21], atol=1e-9
    )
    np.testing.assert_allclose(savgol_smooth(np.arange(5.0) ** 2), np.arange(5.0) ** 2, atol=1e-9)  # window 5
    np.testing.assert_array_equal(savgol_smooth(np.array([1.0, 5.0])), [1.0, 5.0])  # too short: unchanged


def test_energy_from_mel_batched_torch_matches_numpy():
    mel = np.random.default_rng(0).normal(-5, 1, (2, 64, 30)).astype(np.float32)
    a = energy_from_mel(mel)
    b = energy_from_mel(torch.from_numpy(mel))
    assert a.shape == (2, 30) and isinstance(b, torch.Tensor)
    np.testing.assert_allclose(b.numpy(), a, atol=1e-5)
    np.testing.assert_allclose(energy_from_mel(mel, smooth=False), mel.mean(axis=1), atol=1e-5)


# --- RMS (Stable-V2A) ---------------------------------------------------------------------------------
def test_rms_of_constant_sine_is_amplitude_over_sqrt2():
    raw = rms_envelope(sine(amp=0.5, seconds=2.0), SR, lowpass=False)
    assert raw.rate == 125.0 and raw.num_frames == 250
    np.testing.assert_allclose(raw.values[2:-2], 0.5 / math.sqrt(2), atol=1e-5)  # 512 samples = 32 periods
    filt = rms_envelope(sine(amp=0.5, seconds=2.0), SR)
    np.testing.assert_allclose(filt.values[10:-10], 0.5 / math.sqrt(2), atol=2e-3)


def test_rms_matches_direct_numpy_and_frame_count():
    x = noise(seconds=10.0)
    raw = rms_envelope(x, SR, lowpass=False)
    assert raw.num_frames == 1250  # Stable-V2A: 10 s at 16 kHz
    padded = np.pad(x.astype(np.float64), 192, mode="reflect")
    direct = np.sqrt([np.mean(padded[i * 128 : i * 128 + 512] ** 2) for i in range(1250)])
    np.testing.assert_allclose(raw.values, direct, atol=1e-6)
    b, a = scipy.signal.ellip(4, 0.01, 120, 0.125)
    expected = np.maximum(scipy.signal.filtfilt(b, a, direct, method="gust"), 0)
    np.testing.assert_allclose(rms_envelope(x, SR).values, expected, atol=1e-6)
    assert rms_envelope(x[:1000], SR).num_frames == 1000 // 128


def test_lowpass_clamps_ringing_and_keeps_constants():
    step = np.r_[np.zeros(100), np.full(100, 0.5)]
    filtered = lowpass_envelope(step)
    assert filtered.min() < 0  # the elliptic filter rings below zero before the step...
    assert lowpass_envelope(step, clamp=True).min() == 0.0  # ...which the control clamps
    x = np.r_[np.zeros(SR // 2), sine(seconds=0.5)]
    assert rms_envelope(x, SR).values.min() >= 0.0
    # an even-order elliptic filter has its DC gain at the bottom of the 0.01 dB ripple; filtfilt applies
    # it twice: a constant comes out at -0.02 dB
    np.testing.assert_allclose(
        lowpass_envelope(np.full(300, 0.2))[40:-40], 0.2 * 10 ** (-0.02 / 20), rtol=1e-5
    )
    np.testing.assert_allclose(lowpass_envelope(np.full(300, 0.2)), 0.2, rtol=3e-3)  # gust edges: close
    two = lowpass_envelope(np.stack([np.full(300, 0.1), np.full(300, 0.3)]))
    assert two.shape == (2, 300)


def test_rms_with_sequence_config_and_errors():
    x = sine(seconds=1.0, sr=44100)
    r = rms_envelope(x, 44100, seq=SequenceConfig())
    assert (r.rate, r.num_frames, r.meta["sample_rate"]) == (125.0, 125, 16000)
    with pytest.raises(ControlError, match="too short"):
        rms_envelope(np.zeros(100, np.float32), SR)
    with pytest.raises(ControlError, match="hop_length <= frame_length"):
        rms_envelope(sine(), SR, frame_length=128, hop_length=512)


# --- mu-law classes ------------------------------------------------------------------------------------
def test_mu_law_and_bin_edges():
    assert mu_law(1.0) == pytest.approx(1.0) and mu_law(0.0) == 0.0 and mu_law(-1.0) == pytest.approx(-1.0)
    v = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(inverse_mu_law(mu_law(v)), v, atol=1e-12)
    assert mu_law(0.01, 63) == pytest.approx(math.log(1 + 0.63) / math.log(64))
    edges = rms_bin_edges()
    assert edges.shape == (64,) and edges[0] == 0.01 and edges[-1] == 1.0 and np.all(np.diff(edges) > 0)
    np.testing.assert_allclose(np.diff(mu_law(edges)), (1 - mu_law(0.01)) / 63, atol=1e-12)  # even in mu
    for bad in ({"n_classes": 1}, {"rms_min": 0.0}, {"rms_min": 1.5}, {"mu": 0}):
        with pytest.raises(ControlError):
            rms_bin_edges(**bad)


def test_rms_to_classes_hand_values():
    e = rms_bin_edges()
    r = np.array([-0.1, 0.0, 0.0099, 0.01, e[1] - 1e-6, e[1], e[30], 0.999999, 1.0, 5.0])
    np.testing.assert_array_equal(rms_to_classes(r), [0, 0, 0, 1, 1, 2, 31, 63, 63, 63])
    assert rms_to_classes(r).dtype == np.int64


def test_class_round_trips():
    c = np.arange(64)
    np.testing.assert_array_equal(rms_to_classes(classes_to_rms(c)), c)  # 'lower' decode: exact
    ref = classes_to_rms(c, variant="reference")  # Video-Foley: upper edge, class 0 -> 0
    np.testing.assert_array_equal(rms_to_classes(ref), np.r_[0, np.arange(2, 64), 63])
    e = rms_bin_edges()
    assert classes_to_rms(np.array([0, 1, 63])).tolist() == pytest.approx([0.0, 0.01, e[62]])
    assert classes_to_rms(np.array([0, 1, 63]), variant="reference").tolist() == pytest.approx(
        [0.0, e[1], 1.0]
    )
    r = np.abs(noise(seconds=0.1, amp=0.8))
    dec = classes_to_rms(rms_to_classes(r))
    loud = r >= 0.01
    assert np.all(dec[loud] <= r[loud] + 1e-7) and np.all(
        r[loud] < np.interp(dec[loud], e[:-1], e[1:]) + 1e-6
    )


def test_class_controls_and_errors():
    rms = TemporalControl("rms", [0.0, 0.02, 0.5], 125, 1.0)
    cls = rms_to_classes(rms)
    assert cls.kind == "rms_class" and cls.rate == 125 and cls.start == 1.0 and cls.meta["n_classes"] == 64
    back = classes_to_rms(cls)
    assert back.kind == "rms" and back.meta["decoded"] == "lower"
    np.testing.assert_array_equal(rms_to_classes(back).values, cls.values)
    with pytest.raises(ControlError, match="needs an RMS envelope"):
        rms_to_classes(TemporalControl("onsets", [0.0, 1.0], 25))
    with pytest.raises(ControlError, match="needs a class control"):
        classes_to_rms(rms)
    with pytest.raises(ControlError, match=r"in \[0, 64\)"):
        classes_to_rms(np.array([0, 64]))
    with pytest.raises(ControlError, match="integers"):
        classes_to_rms(np.array([0.5]))
    with pytest.raises(ControlError, match="unknown decode variant"):
        classes_to_rms(np.array([1]), variant="middle")


def test_gaussian_label_smoothing_paper_and_reference_variant():
    t = gaussian_smoothed_targets(np.array([5, 0, 1, 63]))
    assert t.shape == (4, 64) and t.dtype == np.float32
    row = np.zeros(64)
    row[[3, 4, 5, 6, 7]] = [math.exp(-2), math.exp(-0.5), 1, math.exp(-0.5), math.exp(-2)]
    np.testing.assert_allclose(t[0], row, atol=1e-6)
    np.testing.assert_array_equal(t[1], np.eye(64)[0])  # silence: not smoothed
    np.testing.assert_allclose(
        t[2, :4], [0, 1, math.exp(-0.5), math.exp(-2)], atol=1e-6
    )  # class 0 gets nothing
    np.testing.assert_allclose(t[3, 60:], [0, math.exp(-2), math.exp(-0.5), 1], atol=1e-6)
    vf = gaussian_smoothed_targets(np.array([5]), variant="video_foley")  # exp(-2^d / 4)
    np.testing.assert_allclose(
        vf[0, 3:8], [math.exp(-1), math.exp(-0.5), 1, math.exp(-0.5), math.exp(-1)], atol=1e-6
    )
    wide = gaussian_smoothed_targets(np.array([10]), window=3, sigma=2.0)
    np.testing.assert_allclose(wide[0, 13], math.exp(-9 / 8), atol=1e-6)
    assert wide[0, 14] == 0
    batch = gaussian_smoothed_targets(torch.tensor([[5, 0], [1, 2]]))
    assert isinstance(batch, torch.Tensor) and batch.shape == (2, 2, 64)
    np.testing.assert_allclose(batch[0, 0].numpy(), row, atol=1e-6)
    with pytest.raises(ControlError, match=r"in \[0, 64\)"):
        gaussian_smoothed_targets(np.array([64]))
    with pytest.raises(ControlError, match="unknown smoothing variant"):
        gaussian_smoothed_targets(np.array([1]), variant="typo")
    with pytest.raises(ControlError, match="sigma"):
        gaussian_smoothed_targets(np.array([1]), sigma=0)


# --- onsets -------------------------------------------------------------------------------------------
CLICKS = [0.25, 0.8, 1.4, 2.1]


@pytest.mark.parametrize("sr", [16000, 22050, 44100])
def test_click_onsets_within_one_hop(sr):
    x = make_click_track(CLICKS, sample_rate=sr, duration=2.5)
    times = detect_onsets(x, sr)
    assert len(times) == len(CLICKS)
    assert np.all(np.abs(times - CLICKS) <= 512 / sr)


def test_detect_onsets_silence_and_kwargs():
    assert detect_onsets(np.zeros(SR, np.float32), SR).shape == (0,)
    x = make_click_track(CLICKS, sample_rate=22050, duration=2.5)
    assert len(detect_onsets(x, 22050, delta=100.0)) == 0  # kwargs reach librosa
    frames_units = detect_onsets(x, 22050, units="frames")  # units is always time
    assert np.all(frames_units < 2.5)
    with pytest.raises(ControlError, match="empty"):
        detect_onsets(np.zeros(0, np.float32), SR)


def test_onset_track_hand_values():
    tr = onset_track([0.0, 0.39, 0.4, 0.41, 9.99, 10.0, -0.1], rate=25, num_frames=250)
    np.testing.assert_array_equal(np.flatnonzero(tr.values), [0, 9, 10, 249])
    assert tr.kind == "onsets" and tr.values.dtype == np.float32 and tr.meta["num_onsets"] == 4
    shifted = onset_track([1.04], rate=25, num_frames=10, start=1.0, kind="events")
    np.testing.assert_array_equal(np.flatnonzero(shifted.values), [1])
    assert shifted.kind == "events"
    with pytest.raises(ControlError, match="num_frames"):
        onset_track([0.1], rate=25, num_frames=0)
    with pytest.raises(ControlError, match="rate"):
        onset_track([0.1], rate=0, num_frames=5)
    with pytest.raises(ControlError, match="finite"):
        onset_track([np.nan], rate=25, num_frames=5)


def test_onsets_track_on_latent_grid_and_custom_rate():
    x = make_click_track(CLICKS, sample_rate=22050, duration=2.5)
    tr = onsets(x, 22050)  # default: the 25 Hz latent grid of SequenceConfig()
    geo = SequenceConfig().with_duration(2.5)
    assert (tr.rate, tr.num_frames) == (geo.latent_rate, geo.num_latent_frames) == (25.0, 63)
    hop = 512 / 22050
    for t in CLICKS:  # each click marks the frame holding its detected time (within one hop)
        assert tr.values[int(t * 25)] == 1 or tr.values[int((t + hop) * 25)] == 1
    assert tr.values.sum() == len(CLICKS) and len(tr.meta["times"]) == len(CLICKS)
    fine = onsets(x, 22050, rate=100)
    assert fine.num_frames == 250
    np.testing.assert_array_equal(np.flatnonzero(fine.values), np.floor(np.array(tr.meta["times"]) * 100))


# --- envelope following -----------------------------------------------------------------------------------
def _bursty(seconds=2.0, seed=0):
    """Noise at 0.05 RMS with loud 30 ms bursts every 250 ms: a rendering whose loudness wanders."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(round(seconds * SR)).astype(np.float32) * 0.05
    for k in range(0, len(x), SR // 4):
        x[k : k + 480] *= 8.0
    return x


def test_follow_envelope_matches_the_target_and_limits_quiet_frames():
    x = _bursty()
    target = np.where(np.arange(250) < 125, 0.1, 0.0).astype(np.float32)  # 1 s at 0.1, then class 0
    out = follow_envelope(x, SR, TemporalControl("rms", target, 125.0))
    before = rms_envelope(x, SR).values
    after = rms_envelope(out, SR).values
    first, second = slice(20, 105), slice(145, 230)  # away from the step (the envelope is low-passed)
    # the wandering loudness is flattened onto the target: within 15% of 0.1 everywhere
    assert np.ptp(before[first]) > 0.1
    assert np.max(np.abs(after[first] - 0.1)) < 0.015
    # class 0 means "below rms_min": loud frames are pulled down to about 0.01, none is silenced
    assert before[second].min() > 0.012 and before[second].max() > 0.1
    assert np.all(after[second] < 0.0125) and np.all(after[second] > 0.005)


def test_follow_envelope_leaves_quiet_class_zero_frames_and_strength_interpolates():
    quiet = noise(amp=0.004)  # RMS 0.004 < rms_min
    silent_target = TemporalControl("rms", np.zeros(125, np.float32), 125.0)
    np.testing.assert_allclose(follow_envelope(quiet, SR, silent_target), quiet, rtol=1e-4, atol=1e-7)
    x = noise(amp=0.05)
    loud_target = TemporalControl("rms", np.full(125, 0.2, np.float32), 125.0)
    full = rms_envelope(follow_envelope(x, SR, loud_target), SR).values[20:100]
    half = rms_envelope(follow_envelope(x, SR, loud_target, strength=0.5), SR).values[20:100]
    measured = rms_envelope(x, SR).values[20:100]
    np.testing.assert_allclose(full, 0.2, rtol=0.05)
    np.testing.assert_allclose(half, np.sqrt(0.2 * measured), rtol=0.05)  # geometric half-way
    np.testing.assert_array_equal(follow_envelope(x, SR, loud_target, strength=0.0), x)
    # the boost is limited (default 18 dB): a near-silent rendering is not blown up to the target
    tiny = noise(amp=1e-4)
    boosted = rms_envelope(follow_envelope(tiny, SR, loud_target), SR).values[20:100]
    np.testing.assert_allclose(boosted, rms_envelope(tiny, SR).values[20:100] * 10 ** (18 / 20), rtol=0.05)


def test_follow_envelope_classes_stereo_and_errors():
    x = 0.5 * _bursty(1.0)
    classes = rms_to_classes(TemporalControl("rms", np.full(125, 0.1, np.float32), 125.0))
    mono = follow_envelope(x, SR, classes)
    np.testing.assert_allclose(mono, follow_envelope(x, SR, classes_to_rms(classes)))
    stereo = follow_envelope(np.stack([x, 0.5 * x]), SR, classes)
    assert stereo.shape == (2, len(x))
    np.testing.assert_allclose(
        stereo[1], 0.5 * follow_envelope(np.stack([x, 0.5 * x]), SR, classes)[0], atol=1e-6
    )
    with pytest.raises(ControlError, match="RMS envelope"):
        follow_envelope(x, SR, TemporalControl("energy", np.zeros(100, np.float32), 100.0))
    with pytest.raises(ControlError, match="strength"):
        follow_envelope(x, SR, classes, strength=1.5)
    with pytest.raises(ControlError, match="waveform"):
        follow_envelope(np.zeros((1, 2, 100), np.float32), SR, classes)


def test_envelope_peaks_are_the_hits_that_rise_6_db():
    from foleykit.controls.rms import envelope_peaks, rms_to_classes

    v = np.full(125, 0.01, np.float32)
    v[[20, 60, 61, 100]] = [0.1, 0.05, 0.06, 0.015]  # 20 dB, 15.6 dB (two frames, one hit), 3.5 dB
    env = TemporalControl("rms", v, 125.0, start=2.0)
    np.testing.assert_allclose(envelope_peaks(env), [2.0 + 20.5 / 125, 2.0 + 61.5 / 125])
    assert envelope_peaks(env, rise_db=25.0).size == 0
    classes = TemporalControl("rms_class", rms_to_classes(v), 125.0)
    assert envelope_peaks(classes).size == 2
    with pytest.raises(ControlError, match="RMS envelope"):
        envelope_peaks(TemporalControl("energy", v, 125.0))


def test_spot_recording_lands_the_loudest_moment_on_every_hit_and_loops_between():
    from foleykit.controls.rms import spot_recording

    sr = 16000
    step = np.zeros(4000, np.float32)  # a 0.25 s one-shot whose click sits 0.1 s in
    step[1600:1680] = 0.8
    v = np.full(250, 0.001, np.float32)
    v[[50, 150]] = 0.2  # hits at 0.404 s and 1.204 s
    env = TemporalControl("rms", v, 125.0)
    out = spot_recording(step, sr, 2 * sr, env)
    assert out.shape == (2 * sr,) and out.dtype == np.float32
    loud = np.flatnonzero(np.abs(out) > 0.5) / sr
    clicks = loud[np.r_[True, np.diff(loud) > 0.01]]  # first sample of each click
    for hit in (50.5 / 125, 150.5 / 125):
        assert np.min(np.abs(clicks - hit)) < 0.01  # a copy's click on each hit
    # between hits the copy loops (every 0.25 s) and the loop runs into the first copy
    np.testing.assert_allclose(np.diff(clicks[clicks < 1.1]), 0.25, atol=1e-3)
    looped = spot_recording(step, sr, sr)  # no envelope: plain loop from the start
    np.testing.assert_array_equal(looped, np.tile(step, 4))
    quiet = TemporalControl("rms", np.full(125, 0.05, np.float32), 125.0)  # no hits: plain loop
    np.testing.assert_array_equal(spot_recording(step, sr, sr, quiet), looped)
    late = TemporalControl("rms", v, 125.0, start=1.5)  # its hits (1.9 s, 2.7 s) lie past the 1 s clip
    np.testing.assert_array_equal(spot_recording(step, sr, sr, late), looped)


def test_framed_rms_is_librosas_rms_without_its_import():
    from foleykit.controls.rms import framed_rms

    rng = np.random.default_rng(0)
    for n, frame, hop in ((16000, 512, 128), (1000, 64, 64), (777, 100, 7)):
        x = rng.standard_normal(n).astype(np.float32) * np.linspace(0, 1, n, dtype=np.float32)
        want = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop, center=False)[0]
        got = framed_rms(x, frame, hop)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
