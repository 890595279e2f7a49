"""Vocoders: log-mel ``Tensor[B x n_mels x T_mel]`` -> waveform ``Tensor[B x T_mel * hop]``.

- HiFi-GAN in the AudioLDM layout: transformers ``SpeechT5HifiGan`` (published config in
  ``configs/models/audioldm-m-full/vocoder``), so AudioLDM vocoder weights load unchanged.
- :class:`GriffinLimVocoder`: weight-free fallback for mel models without a trained vocoder. It inverts the
  AudioLDM log-mel of ``foleykit.audio`` (natural-log magnitude mel, slaney filters, reflect-padded STFT with
  ``center=False``) with a pseudo-inverse of the mel basis and fast Griffin-Lim (Perraudin et al. 2013).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from foleykit.config import SequenceConfig

#: Embedded demonstrator HiFi-GAN: 64 mels -> 16 kHz, upsample 5*4*4*2 = 160x (one mel hop). Kernel sizes
#: have the parity of their stride, so T mel frames give exactly 160 T samples.
DEMO_HIFIGAN: dict[str, Any] = {
    "model_in_dim": 64,
    "sampling_rate": 16000,
    "upsample_initial_channel": 128,
    "upsample_rates": [5, 4, 4, 2],
    "upsample_kernel_sizes": [11, 8, 8, 4],
    "resblock_kernel_sizes": [3, 7],
    "resblock_dilation_sizes": [[1, 3], [1, 3]],
    "normalize_before": False,
}
#: Debug twin (same 160x upsampling, a few thousand parameters).
DEBUG_HIFIGAN: dict[str, Any] = {
    "model_in_dim": 64,
    "sampling_rate": 16000,
    "upsample_initial_channel": 16,
    "upsample_rates": [5, 4, 4, 2],
    "upsample_kernel_sizes": [11, 8, 8, 4],
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1]],
    "normalize_before": False,
}


def build_hifigan(config: dict[str, Any], *, meta: bool = False):
    """A transformers ``SpeechT5HifiGan`` from a config dict (AudioLDM layout); meta: no memory."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    from foleykit.utils.meta import empty_weights

    kwargs = {
        k: v
        for k, v in config.items()
        if k not in ("architectures", "model_type", "transformers_version", "torch_dtype")
        and not k.startswith("_")
    }
    with empty_weights(meta):
        model = SpeechT5HifiGan(SpeechT5HifiGanConfig(**kwargs))
    if not meta:
        # transformers draws every conv from N(0, initializer_range = 0.01): the fresh generator's output is
        # ~1e-8, under the log-mel floor (1e-5), so the mel loss has no gradient until the STFT term has grown
        # it (~100 steps of the debug twin; tests/unit/test_training_learning.py). The reference HiFi-GAN
        # applies that N(0, 0.01) after weight norm, where it does not reach the weights used (weight_g /
        # weight_v): its convs keep PyTorch's default initialisation (first output ~1e-2), as here.
        for m in model.modules():
            if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
                m.reset_parameters()
    return model


def hifigan_hop(model: nn.Module) -> int:
    """Samples per mel frame produced by a SpeechT5HifiGan (product of its upsample rates)."""
    return int(math.prod(model.config.upsample_rates))


def vocode(vocoder: nn.Module, log_mel: torch.Tensor) -> torch.Tensor:
    """Run any foleykit vocoder on ``Tensor[B x n_mels x T_mel]`` and return ``Tensor[B x T_mel * hop]``.

    transformers' ``SpeechT5HifiGan`` takes ``B x T x n_mels``; :class:`GriffinLimVocoder` takes the
    foleykit layout directly.
    """
    if isinstance(vocoder, GriffinLimVocoder):
        return vocoder(log_mel)
    param = next(vocoder.parameters(), None)
    x = log_mel.transpose(1, 2)
    if param is not None:
        x = x.to(param.dtype)
    return vocoder(x).float()


class GriffinLimVocoder(nn.Module):
    """Weight-free inverse of the AudioLDM log-mel (``foleykit.audio``): mel pseudo-inverse + fast GL.

    Args:
        seq: Audio geometry (sample rate, n_fft, win/hop lengths, mel bins and band edges).
        n_iter: Griffin-Lim iterations.
        momentum: Fast Griffin-Lim momentum (0 = classic Griffin-Lim).
        seed: Seed of the initial random phase (deterministic output).
    """

    def __init__(
        self, *, seq: SequenceConfig, n_iter: int = 32, momentum: float = 0.99, seed: int = 0
    ) -> None:
        super().__init__()
        import librosa

        self.seq = seq
        self.n_iter = int(n_iter)
        self.momentum = float(momentum)
        self.seed = int(seed)
        basis = librosa.filters.mel(
            sr=seq.sample_rate,
            n_fft=seq.n_fft,
            n_mels=seq.n_mels,
            fmin=seq.f_min,
            fmax=seq.f_max,
            htk=False,
            norm="slaney",
        )
        basis_t = torch.from_numpy(basis).float()  # (n_mels, F)
        self.register_buffer("inverse_basis", torch.linalg.pinv(basis_t), persistent=False)  # (F, n_mels)
        self.register_buffer("window", torch.hann_window(seq.win_length), persistent=False)

    def mel_to_magnitude(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``Tensor[B x n_mels x T]`` -> non-negative linear magnitude ``Tensor[B x F x T]``."""
        mel = torch.exp(log_mel.float())
        return torch.clamp(self.inverse_basis @ mel, min=0.0)

    def forward(self, log_mel: torch.Tensor, init: torch.Tensor | None = None) -> torch.Tensor:
        """``Tensor[B x n_mels x T_mel]`` -> ``Tensor[B x T_mel * hop]``.

        ``init``: a waveform ``Tensor[B x T]`` on the same frames (e.g. a trained vocoder's output) whose STFT
        phase starts the iterations instead of the seeded random phase.
        """
        seq = self.seq
        mag = self.mel_to_magnitude(log_mel)
        t = mag.shape[-1]
        length = t * seq.hop_length
        stft_kw = {
            "n_fft": seq.n_fft,
            "hop_length": seq.hop_length,
            "win_length": seq.win_length,
            "window": self.window,
            "center": True,
        }
        shift = seq.hop_length // 2  # see the end: foleykit.audio frames sit hop / 2 later than torch's
        if init is None:
            gen = torch.Generator(device="cpu").manual_seed(self.seed)
            angles = torch.exp(2j * math.pi * torch.rand(mag.shape, generator=gen)).to(mag.device)
        else:
            y0 = F.pad(init.float()[..., shift:], (0, shift))
            y0 = F.pad(y0, (0, max(0, length - y0.shape[-1])))[..., :length]
            spec = torch.stft(y0.to(mag.device), return_complex=True, **stft_kw)[..., :t]
            angles = spec / (spec.abs() + 1e-16)
        prev = torch.zeros_like(angles)
        for _ in range(self.n_iter):
            y = torch.istft(mag * angles, length=length, **stft_kw)
            rebuilt = torch.stft(y, return_complex=True, **stft_kw)[..., :t]
            accel = rebuilt - (self.momentum / (1 + self.momentum)) * prev if self.momentum else rebuilt
            prev = rebuilt
            angles = accel / (accel.abs() + 1e-16)
        y = torch.istft(mag * angles, length=length, **stft_kw)
        # foleykit.audio frames are centred at t * hop + hop / 2 (reflect pad (n_fft - hop) / 2,
        # center=False);
        # torch's centred frames sit at t * hop: delay by hop / 2 to realign.
        return F.pad(y, (shift, 0))[..., :length]
