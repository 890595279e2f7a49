"""foleykit.audio: the AudioLDM mel against an independent numpy/librosa computation, resampling."""

import math

import librosa
import numpy as np
import pytest
import torch

from foleykit.audio import LOG_FLOOR, MelSpectrogram, log_mel, resample, to_mono
from foleykit.config import SequenceConfig
from foleykit.errors import FoleykitError

SR = 16000


def reference_log_mel(
    wav: np.ndarray, *, sr=16000, n_fft=1024, win=1024, hop=160, n_mels=64, fmin=0.0, fmax=8000.0
):
    """AudioLDM mel written out directly in float64 numpy (REFERENCE.md "Energy (ReWaS)")."""
    pad = (n_fft - hop) // 2
    x = np.pad(np.asarray(wav, dtype=np.float64), (pad, n_fft - hop - pad), mode="reflect")
    n_frames = 1 + (len(x) - n_fft) // hop
    window = np.zeros(n_fft)
    off = (n_fft - win) // 2
    window[off : off + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    frames = np.stack([x[i * hop : i * hop + n_fft] * window for i in range(n_frames)], axis=1)
    mag = np.abs(np.fft.rfft(frames, axis=0))
    basis = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney"
    )
    return np.log(np.maximum(basis @ mag, 1e-5))


def sine(freq, seconds, sr=SR, amp=0.5):
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mel_matches_direct_numpy_computation():
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(SR) + sine(440, 1.0)).astype(np.float32)
    got = MelSpectrogram()(torch.from_numpy(wav)[None])[0].numpy()
    ref = reference_log_mel(wav)
    assert got.shape == ref.shape == (64, 100)
    np.testing.assert_allclose(got, ref, atol=2e-4)


def test_mel_matches_for_other_geometry_and_short_window():
    seq = SequenceConfig(
        sample_rate=22050,
        n_fft=1024,
        win_length=800,
        hop_length=256,
        n_mels=80,
        f_max=11025.0,
        latent_hop=1024,
    )
    wav = sine(1000, 0.5, sr=22050)
    got = MelSpectrogram.from_sequence(seq)(torch.from_numpy(wav))
    ref = reference_log_mel(wav, sr=22050, win=800, hop=256, n_mels=80, fmax=11025.0)
    assert got.shape == (80, round(0.5 * 22050) // 256)
    # a pure sine spans ~10 decades: float32 STFT rounding (~1e-7 of the peak) shows in the faintest bins
    np.testing.assert_allclose(got.numpy(), ref, atol=5e-3)
    np.testing.assert_allclose(got.numpy()[ref > -5], ref[ref > -5], atol=2e-4)


@pytest.mark.parametrize("n,frames", [(16000, 100), (16159, 100), (16160, 101), (163840, 1024)])
def test_frame_count_is_samples_floordiv_hop(n, frames):
    mel = MelSpectrogram()
    assert mel(torch.zeros(1, n)).shape == (1, 64, frames)
    assert mel.num_frames(n) == frames
    assert mel.frame_rate == 100.0


def test_silence_is_log_floor_and_sine_peaks_at_its_mel_bin():
    mel = MelSpectrogram()
    silence = mel(torch.zeros(2, SR))
    assert torch.allclose(silence, torch.full_like(silence, math.log(LOG_FLOOR)))
    spec = mel(torch.from_numpy(sine(1000, 1.0)))
    centres = librosa.mel_frequencies(n_mels=66, fmin=0, fmax=8000)[1:-1]  # triangle centres of the 64 bands
    peak_bin = int(spec[:, 50].argmax())
    assert abs(centres[peak_bin] - 1000) < (centres[peak_bin + 1] - centres[peak_bin - 1]) / 2


def test_batched_deterministic_and_buffers_not_saved():
    mel = MelSpectrogram()
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(-0.5, 0.5, (3, 8000)).astype(np.float32))
    batched = mel(x)
    assert torch.equal(batched, mel(x))  # deterministic
    for i in range(3):
        torch.testing.assert_close(batched[i], mel(x[i]), atol=1e-5, rtol=0)
    assert mel(x.reshape(3, 1, 8000)).shape == (3, 1, 64, 50)  # leading dims kept
    assert mel.state_dict() == {}  # filterbank/window are rebuilt, never checkpointed
    assert mel(x.double()).dtype == torch.float64 and mel(x.half()).dtype == torch.float32
    torch.testing.assert_close(mel.half()(x), batched)  # a half-precision pipeline still gets the fp32 mel


def test_from_sequence_uses_every_field():
    seq = SequenceConfig.stable_audio_open()
    mel = MelSpectrogram.from_sequence(seq)
    assert (mel.sample_rate, mel.n_fft, mel.win_length, mel.hop_length, mel.n_mels, mel.f_max) == (
        44100,
        2048,
        2048,
        512,
        128,
        22050.0,
    )
    assert mel.mel_basis.shape == (128, 1025)


def test_bad_arguments_and_too_short_audio():
    with pytest.raises(FoleykitError, match="hop_length <= win_length"):
        MelSpectrogram(hop_length=2048)
    with pytest.raises(FoleykitError, match="f_max"):
        MelSpectrogram(f_max=9000.0)
    mel = MelSpectrogram()
    with pytest.raises(FoleykitError, match="too short"):
        mel(torch.zeros(1, 400))
    with pytest.raises(FoleykitError, match="scalar"):
        mel(torch.tensor(1.0))


@pytest.mark.gpu
def test_mel_on_cuda_matches_cpu():
    x = torch.from_numpy(sine(300, 1.0))[None]
    cpu = MelSpectrogram()(x)
    gpu = MelSpectrogram().cuda()(x.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)


def test_log_mel_numpy_and_torch_and_resampling():
    wav = sine(1000, 1.0)
    a = log_mel(wav, SR)
    assert isinstance(a, np.ndarray) and a.shape == (64, 100) and a.dtype == np.float32
    b = log_mel(torch.from_numpy(wav), SR)
    assert isinstance(b, torch.Tensor)
    np.testing.assert_allclose(b.numpy(), a, atol=1e-6)
    wav32 = sine(1000, 1.0, sr=32000)
    c = log_mel(wav32, 32000)  # resampled to 16 kHz first
    assert c.shape == (64, 100)
    np.testing.assert_allclose(c[:, 5:-5], a[:, 5:-5], atol=0.05)  # same sound, same mel
    seq = SequenceConfig.stable_audio_open()
    assert log_mel(wav, SR, seq).shape == (128, round(SR * 44100 / SR) // 512)


def test_resample_lengths_content_and_types():
    wav = sine(440, 1.0)
    up = resample(wav, 16000, 22050)
    assert up.shape == (22050,) and up.dtype == np.float32
    np.testing.assert_allclose(up[1000:-1000], sine(440, 1.0, sr=22050)[1000:-1000], atol=2e-3)
    assert resample(wav, 16000, 16000) is not None and np.array_equal(resample(wav, 16000, 16000), wav)
    stereo = np.stack([wav, -wav])
    assert resample(stereo, 16000, 8000).shape == (2, 8000)
    t = resample(torch.from_numpy(wav), 16000, 8000)
    assert isinstance(t, torch.Tensor) and t.shape == (8000,)
    with pytest.raises(FoleykitError, match="positive"):
        resample(wav, 0, 16000)


def test_to_mono():
    x = np.stack([np.ones(10), np.zeros(10)]).astype(np.float32)
    np.testing.assert_array_equal(to_mono(x), np.full(10, 0.5, np.float32))
    assert to_mono(torch.ones(5)).dtype == np.float32
    with pytest.raises(FoleykitError, match="mono"):
        to_mono(np.zeros((1, 2, 3)))
