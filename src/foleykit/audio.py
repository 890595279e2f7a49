"""The one mel spectrogram of foleykit (AudioLDM convention) and audio resampling.

Every part that needs a mel spectrogram (the ReWaS energy control, the mel VAE, the vocoder, the
pipeline) uses :class:`MelSpectrogram` / :func:`log_mel`, so that a mel computed for training is bit-for-bit
the mel the model sees at inference.

The transform is AudioLDM's training mel (the specification's REFERENCE.md, "Energy (ReWaS)"):

1. reflect-pad the waveform by ``(n_fft - hop_length) / 2`` on each side,
2. STFT with ``center=False`` and a periodic Hann window of ``win_length``,
3. magnitude ``|STFT|``,
4. a Slaney-style mel filterbank (``librosa.filters.mel``, the librosa default ``htk=False,
   norm="slaney"``),
5. natural log of ``clamp(mel, 1e-5)``.

A waveform of ``T`` samples gives exactly ``T // hop_length`` frames (AudioLDM: 10.24 s at 16 kHz ->
1024 frames), frame ``i`` being centred on sample ``(i + 0.5) * hop_length``.
"""

from __future__ import annotations

import functools
from typing import overload

import numpy as np
import torch
from torch import Tensor, nn

from foleykit.config import SequenceConfig
from foleykit.errors import FoleykitError

#: Floor applied before the log (AudioLDM / HiFi-GAN ``spectral_normalize``): silence -> log(1e-5).
LOG_FLOOR = 1e-5


class MelSpectrogram(nn.Module):
    """AudioLDM log-mel spectrogram as a batched, device-agnostic, deterministic ``nn.Module``.

    The filterbank and window are non-persistent buffers: they follow ``.to(device)`` but are never saved
    in checkpoints (they are rebuilt from the constructor arguments).

    Args:
        sample_rate: Audio sample rate in Hz.
        n_fft: FFT size.
        win_length: Hann window length (<= n_fft; centred in the FFT frame like ``torch.stft``).
        hop_length: Hop in samples (one output frame).
        n_mels: Number of mel bins.
        f_min: Lowest filterbank frequency in Hz.
        f_max: Highest filterbank frequency in Hz (<= sample_rate / 2).

    Example:
        >>> mel = MelSpectrogram.from_sequence(SequenceConfig())
        >>> mel(torch.zeros(2, 16000)).shape
        torch.Size([2, 64, 100])
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        win_length: int = 1024,
        hop_length: int = 160,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float = 8000.0,
    ) -> None:
        super().__init__()
        if not 0 < hop_length <= win_length <= n_fft:
            raise FoleykitError(
                f"MelSpectrogram: need 0 < hop_length <= win_length <= n_fft, got "
                f"hop {hop_length}, win {win_length}, n_fft {n_fft}"
            )
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise FoleykitError(
                f"MelSpectrogram: need 0 <= f_min < f_max <= sample_rate / 2, got "
                f"f_min {f_min}, f_max {f_max}, sample_rate {sample_rate}"
            )
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.win_length = int(win_length)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.f_min = float(f_min)
        self.f_max = float(f_max)
        # (n_fft - hop) may be odd for exotic settings: put the extra sample on the right so that the
        # frame count stays T // hop. For AudioLDM (1024 - 160 = 864) both sides get 432, as in AudioLDM.
        total_pad = self.n_fft - self.hop_length
        self.pad_left = total_pad // 2
        self.pad_right = total_pad - self.pad_left
        basis, window = self._buffers_fp32(torch.device("cpu"))
        self.register_buffer("mel_basis", basis, persistent=False)
        self.register_buffer("window", window, persistent=False)

    def _buffers_fp32(self, device: torch.device) -> tuple[Tensor, Tensor]:
        import librosa

        basis = librosa.filters.mel(
            sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels, fmin=self.f_min, fmax=self.f_max
        )  # (n_mels, n_fft // 2 + 1), slaney
        return torch.from_numpy(basis).float().to(device), torch.hann_window(self.win_length, device=device)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        """Follow device moves, but keep the filterbank and window float32 when a parent model is cast
        to half precision (rebuilt exactly rather than rounded through float16)."""
        super()._apply(fn, recurse)
        if self.mel_basis.dtype != torch.float32 or self.window.dtype != torch.float32:
            self.mel_basis, self.window = self._buffers_fp32(self.mel_basis.device)
        return self

    @classmethod
    def from_sequence(cls, seq: SequenceConfig) -> MelSpectrogram:
        """The mel transform of a model / dataset geometry (sample rate, FFT, hop, mel bins, band)."""
        return cls(
            sample_rate=seq.sample_rate,
            n_fft=seq.n_fft,
            win_length=seq.win_length,
            hop_length=seq.hop_length,
            n_mels=seq.n_mels,
            f_min=seq.f_min,
            f_max=seq.f_max,
        )

    @property
    def frame_rate(self) -> float:
        """Output frames per second (sample_rate / hop_length)."""
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` input samples: ``num_samples // hop_length``."""
        return int(num_samples) // self.hop_length

    def min_samples(self) -> int:
        """Shortest input the reflect padding accepts (the padding must be shorter than the signal)."""
        return max(self.pad_right + 1, self.hop_length)

    def forward(self, wav: Tensor) -> Tensor:
        """Compute the log-mel spectrogram.

        Args:
            wav: Waveforms ``Tensor[B x T]`` (any leading dims, or ``Tensor[T]``), values in [-1, 1].

        Returns:
            ``Tensor[B x n_mels x T // hop_length]`` natural-log mel, float32 (float64 for float64 input),
            same leading dims as the input.
        """
        if wav.ndim == 0:
            raise FoleykitError("MelSpectrogram expects a waveform Tensor[B x T], got a scalar")
        num_samples = wav.shape[-1]
        if num_samples < self.min_samples():
            raise FoleykitError(
                f"audio too short for the mel spectrogram: {num_samples} samples, need at least "
                f"{self.min_samples()} ({self.min_samples() / self.sample_rate * 1000:.0f} ms at {self.sample_rate} Hz)"
            )
        lead = wav.shape[:-1]
        # Always float32 (float64 for float64 input), even if the module was cast to half precision.
        dtype = torch.float64 if wav.dtype == torch.float64 else torch.float32
        x = wav.reshape(-1, 1, num_samples).to(dtype)  # (N, 1, T)
        x = torch.nn.functional.pad(x, (self.pad_left, self.pad_right), mode="reflect").squeeze(1)
        spec = torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window.to(dtype),
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (N, n_fft // 2 + 1, F)
        mel = torch.matmul(self.mel_basis.to(dtype), spec.abs())  # (N, n_mels, F)
        logmel = torch.log(torch.clamp(mel, min=LOG_FLOOR))
        return logmel.reshape(*lead, self.n_mels, logmel.shape[-1])

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, win_length={self.win_length}, "
            f"hop_length={self.hop_length}, n_mels={self.n_mels}, f_min={self.f_min}, f_max={self.f_max}"
        )


@functools.lru_cache(maxsize=8)
def _cached_mel(
    sample_rate: int, n_fft: int, win_length: int, hop_length: int, n_mels: int, f_min: float, f_max: float
) -> MelSpectrogram:
    return MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        n_mels=n_mels,
        f_min=f_min,
        f_max=f_max,
    ).eval()


def mel_for(seq: SequenceConfig | None = None) -> MelSpectrogram:
    """A cached CPU :class:`MelSpectrogram` for ``seq`` (default ``SequenceConfig()``); do not move it."""
    seq = seq or SequenceConfig()
    return _cached_mel(
        seq.sample_rate,
        seq.n_fft,
        seq.win_length,
        seq.hop_length,
        seq.n_mels,
        float(seq.f_min),
        float(seq.f_max),
    )


@overload
def log_mel(wav: np.ndarray, sample_rate: int, seq: SequenceConfig | None = None) -> np.ndarray: ...
@overload
def log_mel(wav: Tensor, sample_rate: int, seq: SequenceConfig | None = None) -> Tensor: ...


def log_mel(wav, sample_rate, seq=None):
    """AudioLDM log-mel of a waveform given as numpy or torch, resampled to ``seq.sample_rate`` if needed.

    Args:
        wav: ``(T,)`` or ``(B, T)`` (numpy array or Tensor; a Tensor may live on any device).
        sample_rate: Sample rate of ``wav`` in Hz.
        seq: Mel geometry (default ``SequenceConfig()``: 16 kHz, n_fft 1024, hop 160, 64 mels, 0-8 kHz).

    Returns:
        ``(n_mels, T' // hop)`` or ``(B, n_mels, T' // hop)`` float32 log-mel, numpy for numpy input and a
        Tensor on the input's device for Tensor input (``T'`` = length after resampling).
    """
    seq = seq or SequenceConfig()
    is_numpy = not isinstance(wav, Tensor)
    if int(sample_rate) != seq.sample_rate:
        wav = resample(wav, sample_rate, seq.sample_rate)
    if is_numpy:
        x = torch.from_numpy(np.ascontiguousarray(np.asarray(wav, dtype=np.float32)))
        with torch.no_grad():
            return mel_for(seq)(x).numpy()
    module = mel_for(seq)
    if wav.device.type != "cpu":
        module = MelSpectrogram.from_sequence(seq).to(wav.device)
    return module(wav)


@overload
def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray: ...
@overload
def resample(wav: Tensor, orig_sr: int, target_sr: int) -> Tensor: ...


def resample(wav, orig_sr, target_sr):
    """Resample along the last axis with librosa's ``soxr_hq`` resampler.

    Args:
        wav: ``(..., T)`` numpy array or Tensor (a Tensor goes through the CPU and comes back on its device).
        orig_sr: Input sample rate in Hz.
        target_sr: Output sample rate in Hz.

    Returns:
        ``(..., ceil(T * target_sr / orig_sr))`` float32 (numpy for numpy input, Tensor for Tensor input);
        the input itself (as float32) when the rates are equal.
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise FoleykitError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if isinstance(wav, Tensor):
        out = resample(wav.detach().cpu().float().numpy(), orig_sr, target_sr)
        return torch.from_numpy(out).to(wav.device)
    x = np.asarray(wav, dtype=np.float32)
    if int(orig_sr) == int(target_sr):
        return x
    import librosa

    return librosa.resample(
        x, orig_sr=int(orig_sr), target_sr=int(target_sr), res_type="soxr_hq", axis=-1
    ).astype(np.float32, copy=False)


def to_mono(wav: np.ndarray | Tensor) -> np.ndarray:
    """Float32 mono numpy waveform from ``(T,)`` or channels-first ``(C, T)`` input (channel mean)."""
    if isinstance(wav, Tensor):
        wav = wav.detach().cpu().numpy()
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise FoleykitError(f"expected a mono (T,) or channels-first (C, T) waveform, got shape {x.shape}")
    return x
