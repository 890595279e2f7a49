"""Stage ``autoencoder``: the audio VAE that defines the latent space.

- Mel VAE (AudioLDM; diffusers ``AutoencoderKL`` on log-mel images ``Tensor[B x 1 x T_mel x n_mels]``):
  L1 (or L2) mel reconstruction + KL, as the LDM autoencoder objective (Rombach et al. 2022, App. G) without
  the perceptual term (there is no LPIPS for mel images). Normalisation: the reconstruction is a mean over
  mel pixels and the KL a per-clip sum divided by the number of mel pixels, so ``kl_weight`` has the LDM /
  AudioLDM meaning (1e-6) while the logged loss reads as "mel L1 in log units".
- Waveform VAE (Stable Audio Open; diffusers ``AutoencoderOobleck``): multi-resolution STFT +
  waveform L1 + KL (the same normalisation, per waveform sample).
- Optional adversarial term (``adversarial=true``): a PatchGAN on mel images (hinge loss), started at
  step ``adv_start``, trained as a second optimizer group.

Trainable: the VAE. Frozen: the mel transform. Data: audio clips (items with ``audio``). Exports
``vae/`` (diffusers layout: ``config.json`` + ``diffusion_pytorch_model.safetensors``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from foleykit.errors import ConfigError
from foleykit.training.losses import MultiResolutionSTFTLoss, gaussian_kl, hinge_d_loss
from foleykit.training.stages.base import Stage, StageModules, StepInputs, collate_fields
from foleykit.training.stages.components import build_component, dataset_split, export_pipeline


class AutoencoderStage(Stage):
    """Train the recipe's audio autoencoder (mel ``AutoencoderKL`` or waveform ``AutoencoderOobleck``).

    Args:
        ctx: Stage context.
        vae: The VAE to train (default: the recipe's ``vae`` component, freshly initialised).
    """

    name = "autoencoder"

    def __init__(self, ctx, *, vae: nn.Module | None = None) -> None:
        super().__init__(ctx)
        self._vae = vae
        self.mel_space = ctx.seq.latent_space == "mel"

    def requirements(self) -> dict[str, str]:
        return {"audio clips": "items with 'audio' Tensor[T] at the recipe's sample rate"}

    def groups(self) -> list[str]:
        return ["disc", "main"] if self.cfg.get("adversarial") else ["main"]

    def build(self) -> StageModules:
        from foleykit.audio import MelSpectrogram

        vae = self._vae if self._vae is not None else build_component(self.ctx, "vae")
        frozen: dict[str, nn.Module] = {}
        if self.mel_space:
            from foleykit.models.autoencoder import MelLatentCodec

            mel = MelSpectrogram.from_sequence(self.ctx.seq)
            MelLatentCodec(vae=vae, vocoder=nn.Identity(), mel=mel, seq=self.ctx.seq)  # checks the geometry
            frozen["mel"] = mel
        else:
            self.stft = MultiResolutionSTFTLoss(resolutions=_stft_resolutions(self.ctx.seq.sample_rate))
            frozen["stft"] = self.stft
        self.audio_channels = int(getattr(vae.config, "audio_channels", 1))
        trainable: dict[str, nn.Module] = {"main": VAETask(vae)}
        if self.cfg.get("adversarial"):
            if not self.mel_space:
                raise ConfigError("stages.autoencoder.adversarial is only implemented for mel VAEs")
            from foleykit.models.discriminators import PatchDiscriminator

            trainable = {"disc": PatchDiscriminator(), **trainable}
        return StageModules(trainable=trainable, frozen=frozen)

    # --- data ------------------------------------------------------------------------------------------
    def train_dataset(self) -> Dataset:
        return dataset_split(self.ctx, "train")

    def val_dataset(self) -> Dataset | None:
        return dataset_split(self.ctx, "validation", required=False)

    def crop_samples(self) -> int:
        """Samples per training clip: ``crop_seconds`` (short crops train the convolutional VAE as well as
        whole windows at a fraction of the cost), or the model window."""
        seq = self.ctx.seq
        crop = self.cfg.get("crop_seconds")
        if crop is None:
            return seq.num_samples
        n = round(float(crop) * seq.sample_rate)
        if n < seq.latent_hop:
            raise ConfigError(f"stages.autoencoder.crop_seconds: {crop} s is shorter than one latent frame")
        return min(n, seq.num_samples)

    def collate(self, items: list[Mapping[str, Any]]) -> dict[str, Any]:
        return collate_fields(items, tensors={"audio": self.crop_samples()})

    # --- loss ------------------------------------------------------------------------------------------
    def _mel_image(self, frozen: Mapping[str, nn.Module], wav: torch.Tensor) -> torch.Tensor:
        """``Tensor[B x T]`` -> ``Tensor[B x 1 x T_mel x n_mels]`` exactly as ``MelLatentCodec`` encodes."""
        seq = self.ctx.seq
        n_lat = -(-wav.shape[-1] // seq.latent_hop)
        wav = F.pad(wav, (0, n_lat * seq.latent_hop - wav.shape[-1]))
        mel = frozen["mel"](wav.float())[..., : n_lat * seq.mel_frames_per_latent]
        return mel.transpose(1, 2).unsqueeze(1)

    def _wave_input(self, wav: torch.Tensor) -> torch.Tensor:
        """``Tensor[B x T]`` -> ``Tensor[B x C x T']`` padded to whole latent frames (mono repeated)."""
        seq = self.ctx.seq
        n_lat = -(-wav.shape[-1] // seq.latent_hop)
        x = F.pad(wav, (0, n_lat * seq.latent_hop - wav.shape[-1]))[:, None]
        return x.expand(-1, self.audio_channels, -1).contiguous()

    def loss(self, inputs: StepInputs, group: str) -> tuple[torch.Tensor, dict[str, float]]:
        wav = inputs.batch["audio"]
        sc = inputs.scratch
        if "recon" not in sc:
            if self.mel_space:
                x = self._mel_image(inputs.frozen, wav)
            else:
                x = self._wave_input(wav)
            sc["x"] = x
            recon, mean, logvar = inputs.models["main"](x, generator=inputs.generator)
            sc["recon"], sc["kl"] = recon, gaussian_kl(mean, logvar)
        x, recon, kl = sc["x"], sc["recon"], sc["kl"]
        adv_on = bool(self.cfg.get("adversarial")) and inputs.step >= int(self.cfg.get("adv_start", 0))
        if group == "disc":
            d = inputs.models["disc"]
            out = d(torch.cat([x, recon.detach()]))
            real, fake = out.chunk(2)
            d_loss = hinge_d_loss(real, fake) * (1.0 if adv_on else 0.0)
            return d_loss, {"d_real": float(real.detach().mean()), "d_fake": float(fake.detach().mean())}
        per_elem = x[0].numel()
        if self.mel_space:
            rec = (
                (recon - x).abs().mean()
                if self.cfg.get("recon_loss", "l1") == "l1"
                else ((recon - x) ** 2).mean()
            )
            logs = {"mel_l1": float((recon - x).detach().abs().mean())}
        else:
            rec = self.stft(recon.flatten(0, 1), x.flatten(0, 1)) + (recon - x).abs().mean()
            logs = {"wave_l1": float((recon - x).detach().abs().mean())}
        kl_term = kl.mean() / per_elem
        loss = rec + float(self.cfg["kl_weight"]) * kl_term
        logs["kl"] = float(kl_term.detach())
        if adv_on:
            g_adv = -inputs.models["disc"](recon).mean()
            loss = loss + float(self.cfg.get("adv_weight", 0.1)) * g_adv
            logs["g_adv"] = float(g_adv.detach())
        return loss, logs

    # --- validation / export ---------------------------------------------------------------------------
    def validate(
        self,
        model: nn.Module,
        frozen: Mapping[str, nn.Module],
        batches: Iterable[Any],
        generator: torch.Generator,
    ) -> dict[str, float]:
        """Reconstruction error with the posterior mean (mel L1 in log units, or waveform L1)."""
        errs = []
        for b in batches:
            wav = b["audio"]
            x = self._mel_image(frozen, wav) if self.mel_space else self._wave_input(wav)
            recon, _, _ = model(x, sample=False)
            errs.append((recon.float() - x.float()).abs().mean())
        if not errs:
            return {}
        return {"mel_l1" if self.mel_space else "wave_l1": float(torch.stack(errs).mean())}

    def export(self, model: nn.Module, frozen: Mapping[str, nn.Module], folder: Path) -> dict[str, Path]:
        if self.ctx.pipeline is not None:
            return export_pipeline(self.ctx, folder)
        out = folder / "vae"
        model.vae.save_pretrained(out, safe_serialization=True)
        return {"vae": out}


class VAETask(nn.Module):
    """The trainable unit: encode -> reparameterised sample (run generator) -> decode.

    Called through its ``forward`` so that DDP / FSDP wrappers synchronise gradients.

    Args:
        vae: diffusers ``AutoencoderKL`` or ``AutoencoderOobleck``.

    Shapes:
        ``forward(x: Tensor[B x 1 x T_mel x n_mels] | Tensor[B x C x T]) -> (recon like x, mean, logvar)``
        (``mean`` / ``logvar`` of the latent posterior).
    """

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None, sample: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(x).latent_dist
        z = posterior.sample(generator=generator) if sample else posterior.mode()
        return self.vae.decode(z).sample, posterior.mean, posterior.logvar


def _stft_resolutions(sample_rate: int) -> tuple[tuple[int, int, int], ...]:
    """Multi-resolution STFT sizes scaled to the sample rate (the 16 kHz set x sr / 16000, powers of 2)."""
    scale = max(1, round(sample_rate / 16000))
    return tuple((n * scale, h * scale, n * scale) for n, h in ((256, 64), (512, 128), (1024, 256)))
