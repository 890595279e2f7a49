"""Vocoders: log-mel ``Tensor[B x n_mels x T_mel]`` -> waveform ``Tensor[B x T_mel * hop]``.

- HiFi-GAN in the AudioLDM layout: transformers ``SpeechT5HifiGan`` (published config in
  ``configs/models/audioldm-m-full/vocoder``), so AudioLDM vocoder weights load unchanged.
- :class:`IstftVocoder`: a Vocos-style vocoder (Siuzdak 2023): ConvNeXt blocks at the mel frame rate predict
  the STFT's log-magnitude and phase of each frame, and an inverse STFT makes the waveform. It has no upsampling
  stack, so a training step costs a fraction of a HiFi-GAN's (the demonstrator's preset trains on 2 CPU cores).
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


#: Embedded demonstrator iSTFT vocoder: 8 ConvNeXt blocks of width 192 at 100 frames/s (2.0 M
#: parameters); a 640-point STFT (4 hops) from 64 mels at 16 kHz; the log-magnitude is learned as a correction
#: of the mel's pseudo-inverse.
DEMO_ISTFT: dict[str, Any] = {
    "model_in_dim": 64,
    "sampling_rate": 16000,
    "hidden_size": 192,
    "intermediate_size": 576,
    "num_layers": 8,
    "kernel_size": 7,
    "n_fft": 640,
    "hop_length": 160,
    "f_min": 0.0,
    "f_max": 8000.0,
    "magnitude_prior": True,
}
#: Debug twin (same geometry, 21 k parameters).
DEBUG_ISTFT: dict[str, Any] = {**DEMO_ISTFT, "hidden_size": 16, "intermediate_size": 32, "num_layers": 2}


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


def vocoder_hop(model: nn.Module) -> int:
    """Samples per mel frame produced by a trainable vocoder (:class:`IstftVocoder` or a SpeechT5HifiGan)."""
    if isinstance(model, IstftVocoder):
        return model.hop_length
    return hifigan_hop(model)


def mel_pseudo_inverse(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Pseudo-inverse ``Tensor[(n_fft / 2 + 1) x n_mels]`` of ``foleykit.audio``'s mel filterbank (librosa,
    slaney) for an ``n_fft``-point STFT: mel energies -> a linear magnitude estimate."""
    import librosa

    basis = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=False, norm="slaney"
    )
    return torch.linalg.pinv(torch.from_numpy(basis).float())


def _at_mel_frames(y: torch.Tensor, hop: int) -> torch.Tensor:
    """Delay a ``torch.istft(center=True)`` output by hop / 2, keeping its length: torch's frame t sits at
    ``t * hop``, ``foleykit.audio``'s mel frame t (reflect pad (n_fft - hop) / 2, ``center=False``) at
    ``t * hop + hop / 2``."""
    return F.pad(y, (hop // 2, 0))[..., : y.shape[-1]]


def vocode(vocoder: nn.Module, log_mel: torch.Tensor) -> torch.Tensor:
    """Run any foleykit vocoder on ``Tensor[B x n_mels x T_mel]`` and return ``Tensor[B x T_mel * hop]``.

    transformers' ``SpeechT5HifiGan`` and :class:`IstftVocoder` take ``B x T x n_mels``;
    :class:`GriffinLimVocoder` takes the foleykit layout directly.
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
        self.seq = seq
        self.n_iter = int(n_iter)
        self.momentum = float(momentum)
        self.seed = int(seed)
        inverse = mel_pseudo_inverse(seq.sample_rate, seq.n_fft, seq.n_mels, seq.f_min, seq.f_max)
        self.register_buffer("inverse_basis", inverse, persistent=False)  # (F, n_mels)
        self.register_buffer("window", torch.hann_window(seq.win_length), persistent=False)

    def build_spec(self) -> dict[str, Any]:
        """The ``foleykit.spec`` that rebuilds this module (``save_pipeline``; no weights)."""
        return {
            "class": "foleykit.models.vocoder.GriffinLimVocoder",
            "pass_seq": True,
            "weights": False,
            "kwargs": {"n_iter": self.n_iter, "momentum": self.momentum, "seed": self.seed},
        }

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
        shift = seq.hop_length // 2  # foleykit.audio frames sit hop / 2 later than torch's (_at_mel_frames)
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
        return _at_mel_frames(torch.istft(mag * angles, length=length, **stft_kw), seq.hop_length)


class _ConvNeXtBlock(nn.Module):
    """1-D ConvNeXt block (Liu et al. 2022, as Vocos uses it): depthwise conv -> LayerNorm -> pointwise MLP
    (GELU) -> layer scale, residual. ``Tensor[B x C x T]`` -> same."""

    def __init__(self, dim: int, intermediate: int, kernel_size: int, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate)
        self.pwconv2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class IstftVocoder(nn.Module):
    """Vocos-style vocoder: log-mel ``Tensor[B x T_mel x n_mels]`` (the SpeechT5HifiGan layout, so
    :func:`vocode` and the vocoder stage run it unchanged) -> waveform ``Tensor[B x T_mel * hop]``.

    A ConvNeXt backbone at the mel frame rate predicts, per frame, the log-magnitude and the phase of an
    ``n_fft``-point STFT (Siuzdak 2023, "Vocos"); ``torch.istft`` (Hann window, centred frames) makes the
    waveform, delayed by hop / 2 so that output frame t sits where ``foleykit.audio``'s mel frame t does.
    With ``magnitude_prior`` the predicted log-magnitude is a correction added to the log of the mel's
    pseudo-inverse (the magnitude :class:`GriffinLimVocoder` starts from; the correction starts at 0), so the
    network mostly has to learn the phase: 46 min on 2 CPU cores reached a log-mel L1 of 0.149 on the
    validation bank recordings, where the shipped HiFi-GAN has 0.571 (docs/demonstrator_model_card.md,
    "A Vocos-style iSTFT vocoder"). Built from plain keyword arguments (a ``foleykit.spec`` component:
    ``config.json`` + safetensors).

    Args:
        model_in_dim: Mel bins of the input.
        sampling_rate: Output sample rate (recorded; the network does not depend on it).
        hidden_size: Backbone width.
        intermediate_size: Width of each block's pointwise MLP.
        num_layers: ConvNeXt blocks.
        kernel_size: Depthwise kernel (frames).
        n_fft: STFT size of the output (Hann window of the same length).
        hop_length: Samples per mel frame.
        f_min: Lowest mel filterbank frequency of the input (Hz; for the magnitude prior).
        f_max: Highest mel filterbank frequency of the input (Hz; for the magnitude prior).
        magnitude_prior: Learn the log-magnitude as a correction of the mel's pseudo-inverse.
    """

    def __init__(
        self,
        *,
        model_in_dim: int = 64,
        sampling_rate: int = 16000,
        hidden_size: int = 192,
        intermediate_size: int = 576,
        num_layers: int = 8,
        kernel_size: int = 7,
        n_fft: int = 640,
        hop_length: int = 160,
        f_min: float = 0.0,
        f_max: float = 8000.0,
        magnitude_prior: bool = True,
    ) -> None:
        super().__init__()
        if not 0 < hop_length <= n_fft // 2:
            raise ValueError(f"IstftVocoder: need 0 < hop_length <= n_fft / 2, got {hop_length}, {n_fft}")
        self.config = {
            "model_in_dim": int(model_in_dim),
            "sampling_rate": int(sampling_rate),
            "hidden_size": int(hidden_size),
            "intermediate_size": int(intermediate_size),
            "num_layers": int(num_layers),
            "kernel_size": int(kernel_size),
            "n_fft": int(n_fft),
            "hop_length": int(hop_length),
            "f_min": float(f_min),
            "f_max": float(f_max),
            "magnitude_prior": bool(magnitude_prior),
        }
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        self.embed = nn.Conv1d(model_in_dim, hidden_size, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(hidden_size, eps=1e-6)
        self.blocks = nn.ModuleList(
            _ConvNeXtBlock(hidden_size, intermediate_size, kernel_size, 1.0 / num_layers)
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(hidden_size, eps=1e-6)
        self.head = nn.Linear(hidden_size, n_fft + 2)  # (n_fft / 2 + 1) log-magnitudes + as many phases
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.magnitude_prior = bool(magnitude_prior)
        if self.magnitude_prior:
            inverse = mel_pseudo_inverse(sampling_rate, n_fft, model_in_dim, f_min, f_max)
            self.register_buffer("mel_inverse", inverse, persistent=False)  # (n_fft / 2 + 1, n_mels)
            if self.head.weight.device.type != "meta":
                with torch.no_grad():  # the correction starts at 0: the prior's magnitude
                    self.head.weight[: n_fft // 2 + 1].zero_()
                    self.head.bias[: n_fft // 2 + 1].zero_()

    def build_spec(self) -> dict[str, Any]:
        """The ``foleykit.spec`` that rebuilds this module (``save_pipeline``)."""
        return {"class": "foleykit.models.vocoder.IstftVocoder", "kwargs": dict(self.config)}

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = self.embed(log_mel.transpose(1, 2).to(self.embed.weight.dtype))
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2).float()  # B x (n_fft + 2) x T
        log_mag, phase = x.chunk(2, dim=1)
        if self.magnitude_prior:
            mel = torch.exp(log_mel.transpose(1, 2).float())
            log_mag = log_mag + torch.log((self.mel_inverse.float() @ mel).clamp(min=1e-5))
        return self.spectrum_to_waveform(log_mag, phase)

    def spectrum_to_waveform(self, log_mag: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """Per-frame log-magnitude and phase ``Tensor[B x (n_fft / 2 + 1) x T]`` -> ``Tensor[B x T * hop]``;
        frame t centred at sample ``t * hop + hop / 2``, like ``foleykit.audio``'s mel frame t."""
        spec = torch.polar(torch.exp(log_mag.float()).clamp(max=1e2), phase.float())
        length = spec.shape[-1] * self.hop_length
        y = torch.istft(
            spec,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self.window.float(),
            center=True,
            length=length,
        )
        return _at_mel_frames(y, self.hop_length)
