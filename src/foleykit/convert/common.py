"""Pieces both converters need: the AudioLDM mel codec from latent-diffusion weights, sources of weights.

A released model often keeps the AudioLDM autoencoder (and its HiFi-GAN under ``vocoder.``) inside its own
checkpoint as ``first_stage_model.*``; AudioLDM-training also publishes them alone
(``vae_mel_16k_64bins.ckpt``: the autoencoder, ``hifigan_16k_64bins.ckpt``: ``{"generator": ...}``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from foleykit.convert.checkpoint import load_checkpoint, load_exact, state_dict_of, strip_prefix
from foleykit.errors import ModelError

Tensors = dict[str, torch.Tensor]


def first_stage(sd: Mapping[str, torch.Tensor]) -> tuple[Tensors, Tensors]:
    """(autoencoder weights, HiFi-GAN weights) of a latent-diffusion or autoencoder state dict.

    Keys under ``first_stage_model.`` are used when present (a whole latent-diffusion checkpoint), else the
    keys as they are (an autoencoder checkpoint). The autoencoder's training loss (``loss.*``: LPIPS and the
    discriminator) is dropped.
    """
    if any(k.startswith("first_stage_model.") for k in sd):
        sd = strip_prefix(sd, "first_stage_model.")
    vae = {k: v for k, v in sd.items() if not k.startswith(("vocoder.", "loss."))}
    return vae, strip_prefix(sd, "vocoder.")


def read_weights(path: str | os.PathLike, *, trust_pickle: bool, what: str) -> Tensors:
    """Tensors of a released file (unwrapped from ``state_dict`` / ``model`` / ``generator``)."""
    return state_dict_of(load_checkpoint(path, trust_pickle=trust_pickle, what=what), what=what)


def pick(*candidates: tuple[str, Mapping[str, torch.Tensor] | None], what: str, need: str) -> Tensors:
    """The first non-empty candidate ``(source name, tensors)``; a :class:`ModelError` naming ``need`` else."""
    for _, sd in candidates:
        if sd:
            return dict(sd)
    tried = ", ".join(name for name, _ in candidates)
    raise ModelError(f"{what}: no weights found (looked in: {tried}). {need}")


def build_vae(sd: Mapping[str, torch.Tensor], *, scaling_factor: float):
    """diffusers ``AutoencoderKL`` from LDM autoencoder weights."""
    from diffusers import AutoencoderKL

    from foleykit.convert.ldm import convert_vae, vae_config, vae_layout

    layout = vae_layout(sd)
    vae = AutoencoderKL(**vae_config(layout, scaling_factor=scaling_factor))
    load_exact(vae, convert_vae(sd, layout), what="VAE")
    return vae.eval()


def build_vocoder(sd: Mapping[str, torch.Tensor], overrides: Mapping[str, Any] | None = None):
    """transformers ``SpeechT5HifiGan`` from AudioLDM-training HiFi-GAN weights."""
    from foleykit.convert.audio_parts import build_hifigan, convert_hifigan, fold_weight_norm, hifigan_config

    sd = fold_weight_norm(sd)
    return build_hifigan(hifigan_config(sd, overrides), convert_hifigan(sd))


def mel_codec(vae, vocoder, seq):
    """foleykit's ``MelLatentCodec`` around converted AudioLDM parts."""
    from foleykit.audio import MelSpectrogram
    from foleykit.models.autoencoder import MelLatentCodec

    return MelLatentCodec(vae=vae, vocoder=vocoder, mel=MelSpectrogram.from_sequence(seq), seq=seq)


def scale_factor_of(sd: Mapping[str, torch.Tensor], given: float | None, *, what: str) -> float:
    """The latent scale: the checkpoint's ``scale_factor`` buffer (AudioLDM ``scale_by_std``), or ``given``."""
    if given is not None:
        return float(given)
    v = sd.get("scale_factor")
    if v is None:
        raise ModelError(
            f"{what}: the checkpoint has no 'scale_factor' (the latent scale AudioLDM measures at the start of "
            "training); give it with --scale-factor"
        )
    return float(v.reshape(-1)[0])
