"""Audio autoencoders (latent codecs): mel VAE + vocoder (AudioLDM) and waveform VAE (Stable Audio Open).

Both share one interface, :class:`LatentCodec`:

- ``encode_audio(wav) -> latents`` (scaled, ready for diffusion), ``encode_dist(wav) -> posterior``
(training),
- ``decode_latents(latents) -> wav``,
- ``latent_shape(seq)``: the latent geometry for a :class:`~foleykit.config.SequenceConfig`.

The networks are the diffusers classes in their published layouts, so AudioLDM / Stable Audio Open
checkpoints load unchanged: ``AutoencoderKL`` (AudioLDM mel VAE: log-mel image ``B x 1 x T_mel x n_mels``,
time = height, 4x down in time and mel) and ``AutoencoderOobleck`` (SAO, 2048x down in time, 64 channels).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError

# --------------------------------------------------------------------------------------------------------
# Config presets (constructor kwargs of the diffusers classes)
# --------------------------------------------------------------------------------------------------------

#: Embedded demonstrator mel VAE: 1 -> 8 latent channels, 4x down in time and mel, no mid-block attention
#: (attention over T/4 x 16 positions would dominate CPU decode time).
DEMO_MEL_VAE: dict[str, Any] = {
    "in_channels": 1,
    "out_channels": 1,
    "latent_channels": 8,
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 1,
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "norm_num_groups": 16,
    "mid_block_add_attention": False,
    "scaling_factor": 1.0,
    "sample_size": 256,
}
#: Debug twin: same geometry (8 channels, 4x down), a few thousand parameters.
DEBUG_MEL_VAE: dict[str, Any] = {
    "in_channels": 1,
    "out_channels": 1,
    "latent_channels": 8,
    "block_out_channels": (8, 8, 8),
    "layers_per_block": 1,
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "norm_num_groups": 4,
    "mid_block_add_attention": False,
    "scaling_factor": 1.0,
    "sample_size": 64,
}
#: Debug twin of the Oobleck waveform VAE: 2048x down and stereo like SAO, 8 latent channels, tiny widths.
#: (The encoder outputs ``encoder_hidden_size`` = 2 x latent channels: mean and scale.)
DEBUG_OOBLECK: dict[str, Any] = {
    "encoder_hidden_size": 16,
    "downsampling_ratios": [2, 4, 4, 8, 8],
    "channel_multiples": [1, 1, 1, 1, 1],
    "decoder_channels": 4,
    "decoder_input_channels": 8,
    "audio_channels": 2,
    "sampling_rate": 44100,
}


def build_mel_vae(config: dict[str, Any], *, meta: bool = False):
    """A diffusers ``AutoencoderKL`` from a config dict (``_`` keys ignored); meta=True allocates nothing."""
    from diffusers import AutoencoderKL

    from foleykit.utils.meta import empty_weights

    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    with empty_weights(meta):
        return AutoencoderKL(**kwargs)


def build_waveform_vae(config: dict[str, Any], *, meta: bool = False):
    """A diffusers ``AutoencoderOobleck`` (Stable Audio Open VAE) from a config dict."""
    from diffusers import AutoencoderOobleck

    from foleykit.utils.meta import empty_weights

    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    with empty_weights(meta):
        return AutoencoderOobleck(**kwargs)


def mel_vae_downsample(vae: nn.Module) -> int:
    """Spatial downsampling factor of an AutoencoderKL: 2 ** (number of blocks - 1)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


# --------------------------------------------------------------------------------------------------------
# Codecs
# --------------------------------------------------------------------------------------------------------


class LatentCodec(nn.Module):
    """Common interface of the audio <-> latent codecs (see module docstring)."""

    seq: SequenceConfig
    latent_channels: int
    audio_channels: int = 1

    def latent_shape(
        self, seq: SequenceConfig | None = None
    ) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_dist(self, wav: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_audio(
        self, wav: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Waveforms -> scaled latents (posterior mode, or a sample when ``sample``).

        Args:
            wav: ``Tensor[B x T]`` (or ``Tensor[B x C x T]``), any length; it is zero-padded to whole
                latent frames.
        """
        dist = self.encode_dist(wav)
        z = dist.sample(generator=generator) if sample else dist.mode()
        return z * self.scaling_factor

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def scaling_factor(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", 1.0) or 1.0)

    def _as_channels(self, wav: torch.Tensor) -> torch.Tensor:
        """``B x T`` or ``B x C x T`` -> ``B x audio_channels x T`` (mono is repeated; C -> 1 averages)."""
        if wav.ndim == 1:
            wav = wav[None]
        if wav.ndim == 2:
            wav = wav[:, None]
        if wav.shape[1] == self.audio_channels:
            return wav
        if wav.shape[1] == 1:
            return wav.expand(-1, self.audio_channels, -1)
        if self.audio_channels == 1:
            return wav.mean(dim=1, keepdim=True)
        raise ConfigError(
            f"cannot map {wav.shape[1]} audio channels onto a {self.audio_channels}-channel codec"
        )

    def _pad_to_latent_frames(self, wav: torch.Tensor) -> torch.Tensor:
        hop = self.seq.latent_hop
        n_lat = max(1, math.ceil(wav.shape[-1] / hop))
        return F.pad(wav, (0, n_lat * hop - wav.shape[-1]))


class MelLatentCodec(LatentCodec):
    """AudioLDM codec: wav -> log-mel -> ``AutoencoderKL`` latents; latents -> mel -> vocoder -> wav.

    Args:
        vae: diffusers ``AutoencoderKL`` (in/out 1 channel; time = height, mel = width).
        vocoder: A module mapping log-mel ``Tensor[B x n_mels x T_mel]`` to ``Tensor[B x T_mel * hop]``
            (see ``foleykit.models.vocoder``).
        mel: A module mapping ``Tensor[B x T]`` to the AudioLDM log-mel ``Tensor[B x n_mels x T_mel]``
            (``foleykit.audio``); only needed to encode audio.
        seq: The audio geometry; the VAE downsampling must equal ``seq.mel_frames_per_latent`` and
            ``seq.latent_freq_downsample``.
    """

    def __init__(
        self, *, vae: nn.Module, vocoder: nn.Module, mel: nn.Module | None, seq: SequenceConfig
    ) -> None:
        super().__init__()
        if seq.latent_space != "mel":
            raise ConfigError("MelLatentCodec needs a SequenceConfig with latent_space='mel'")
        down = mel_vae_downsample(vae)
        if down != seq.mel_frames_per_latent or down != seq.latent_freq_downsample:
            raise ConfigError(
                f"mel VAE downsamples {down}x but the SequenceConfig expects "
                f"{seq.mel_frames_per_latent}x in time "
                f"and {seq.latent_freq_downsample}x in mel"
            )
        self.vae = vae
        self.vocoder = vocoder
        self.mel = mel
        self.seq = seq
        self.latent_channels = int(vae.config.latent_channels)

    def latent_shape(self, seq: SequenceConfig | None = None) -> tuple[int, int, int]:
        """``(C, T_lat, F_lat)`` for ``seq`` (default: the codec's own)."""
        s = seq or self.seq
        return (self.latent_channels, s.num_latent_frames, s.latent_freq_bins)

    def audio_to_mel_image(self, wav: torch.Tensor) -> torch.Tensor:
        """``Tensor[B x T]`` -> log-mel image ``Tensor[B x 1 x T_mel x n_mels]`` (4 mel frames per latent)."""
        if self.mel is None:
            raise ConfigError(
                "this codec was built without a mel transform; it can decode but not encode audio"
            )
        wav = self._pad_to_latent_frames(self._as_channels(wav)[:, 0])
        mel = self.mel(wav)  # (B, n_mels, T_mel)
        n_frames = wav.shape[-1] // self.seq.latent_hop * self.seq.mel_frames_per_latent
        mel = mel[..., :n_frames]
        if mel.shape[-1] < n_frames:  # pad with the log floor
            mel = F.pad(mel, (0, n_frames - mel.shape[-1]), value=math.log(1e-5))
        return mel.transpose(1, 2).unsqueeze(1)

    def encode_mel_image(self, image: torch.Tensor):
        """VAE posterior of a log-mel image ``Tensor[B x 1 x T_mel x n_mels]`` (unscaled)."""
        return self.vae.encode(image.to(self.vae.dtype)).latent_dist

    def encode_dist(self, wav: torch.Tensor):
        """VAE posterior (``DiagonalGaussianDistribution``, unscaled) of waveforms ``Tensor[B x T]``."""
        return self.encode_mel_image(self.audio_to_mel_image(wav))

    def decode_mel(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``Tensor[B x C x T_lat x F_lat]`` -> log-mel ``Tensor[B x n_mels x T_mel]``."""
        image = self.vae.decode(
            latents.to(self.vae.dtype) / self.scaling_factor
        ).sample  # (B, 1, T_mel, n_mels)
        return image[:, 0].transpose(1, 2)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> waveforms ``Tensor[B x T_lat * latent_hop]``."""
        from foleykit.models.vocoder import vocode

        return vocode(self.vocoder, self.decode_mel(latents))


class WaveformLatentCodec(LatentCodec):
    """Stable Audio Open codec: ``AutoencoderOobleck`` straight on (stereo) waveforms.

    Args:
        vae: diffusers ``AutoencoderOobleck``; its hop (product of downsampling ratios) must equal
            ``seq.latent_hop``.
        seq: The audio geometry (``latent_space='waveform'``).
    """

    def __init__(self, *, vae: nn.Module, seq: SequenceConfig) -> None:
        super().__init__()
        if seq.latent_space != "waveform":
            raise ConfigError("WaveformLatentCodec needs a SequenceConfig with latent_space='waveform'")
        hop = int(math.prod(vae.config.downsampling_ratios))
        if hop != seq.latent_hop:
            raise ConfigError(
                f"waveform VAE hop is {hop} samples but SequenceConfig.latent_hop is {seq.latent_hop}"
            )
        if vae.config.encoder_hidden_size != 2 * vae.config.decoder_input_channels:
            raise ConfigError(
                "Oobleck VAE: encoder_hidden_size must be twice decoder_input_channels (mean + scale)"
            )
        self.vae = vae
        self.seq = seq
        self.latent_channels = int(vae.config.decoder_input_channels)
        self.audio_channels = int(vae.config.audio_channels)

    def latent_shape(self, seq: SequenceConfig | None = None) -> tuple[int, int]:
        """``(C, T_lat)`` for ``seq``."""
        s = seq or self.seq
        return (self.latent_channels, s.num_latent_frames)

    def encode_dist(self, wav: torch.Tensor):
        """VAE posterior (``OobleckDiagonalGaussianDistribution``) of ``Tensor[B x (C x) T]``."""
        x = self._pad_to_latent_frames(self._as_channels(wav))
        return self.vae.encode(x.to(self.vae.dtype)).latent_dist

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``Tensor[B x C x T_lat]`` -> ``Tensor[B x T]`` (mono codec) or ``Tensor[B x C x T]``."""
        wav = self.vae.decode(latents.to(self.vae.dtype)).sample
        return wav[:, 0] if wav.shape[1] == 1 else wav
