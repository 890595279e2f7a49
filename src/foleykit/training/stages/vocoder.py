"""Stage ``vocoder``: HiFi-GAN (AudioLDM layout, transformers ``SpeechT5HifiGan``) from log-mel to waveform.

Objective (Kong et al. 2020, HiFi-GAN sec. 2.3, on random segments of ``segment_seconds``):
``mel_weight`` x L1 between the AudioLDM log-mels (``foleykit.audio``) of generated and real audio (45 in
HiFi-GAN) + ``stft_weight`` x multi-resolution STFT loss (Parallel WaveGAN), which lets the generator learn
without discriminators on CPU. With ``discriminators=true`` the multi-period discriminator is trained as a
second optimizer group (least-squares GAN + feature matching, HiFi-GAN eq. 1-3).

Trainable: the vocoder (+ discriminators). Frozen: the mel transform. Data: audio clips. Exports
``vocoder/`` (transformers layout: ``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from foleykit.errors import ConfigError
from foleykit.training.losses import (
    MultiResolutionSTFTLoss,
    PeriodDiscriminators,
    feature_matching_loss,
    lsgan_d_loss,
    lsgan_g_loss,
)
from foleykit.training.stages.autoencoder import _stft_resolutions
from foleykit.training.stages.base import Stage, StageModules, StepInputs, collate_fields
from foleykit.training.stages.components import build_component, dataset_split, export_pipeline


class VocoderTask(nn.Module):
    """The trainable unit: log-mel ``Tensor[B x n_mels x T_mel]`` -> waveform ``Tensor[B x T_mel * hop]``.

    HiFi-GAN's transposed convolutions can emit a few samples more than ``T_mel * hop`` (kernel > stride);
    the output is cropped to exactly ``T_mel * hop``.

    Args:
        vocoder: transformers ``SpeechT5HifiGan`` (it takes ``B x T x n_mels``).
        hop: Samples per mel frame.
    """

    def __init__(self, vocoder: nn.Module, *, hop: int) -> None:
        super().__init__()
        self.vocoder = vocoder
        self.hop = int(hop)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        wav = self.vocoder(log_mel.transpose(1, 2))
        return wav[..., : log_mel.shape[-1] * self.hop]


class VocoderStage(Stage):
    """Train the recipe's HiFi-GAN vocoder on the recipe's mel geometry.

    Args:
        ctx: Stage context.
        vocoder: The vocoder to train (default: the recipe's ``vocoder`` component).
    """

    name = "vocoder"

    def __init__(self, ctx, *, vocoder: nn.Module | None = None) -> None:
        super().__init__(ctx)
        self._vocoder = vocoder
        if ctx.seq.latent_space != "mel":
            raise ConfigError(
                "the vocoder stage is for mel-latent recipes; waveform VAEs decode audio directly"
            )

    def requirements(self) -> dict[str, str]:
        return {"audio clips": "items with 'audio' Tensor[T] at the recipe's sample rate"}

    def groups(self) -> list[str]:
        return ["disc", "main"] if self.cfg.get("discriminators") else ["main"]

    def build(self) -> StageModules:
        from foleykit.audio import MelSpectrogram
        from foleykit.models.vocoder import hifigan_hop

        vocoder = self._vocoder if self._vocoder is not None else build_component(self.ctx, "vocoder")
        seq = self.ctx.seq
        if hifigan_hop(vocoder) != seq.hop_length:
            raise ConfigError(
                f"vocoder upsamples {hifigan_hop(vocoder)}x but the mel hop is {seq.hop_length}"
            )
        self.mel = MelSpectrogram.from_sequence(seq)
        self.stft = MultiResolutionSTFTLoss(resolutions=_stft_resolutions(seq.sample_rate))
        trainable: dict[str, nn.Module] = {"main": VocoderTask(vocoder, hop=seq.hop_length)}
        if self.cfg.get("discriminators"):
            trainable = {"disc": PeriodDiscriminators(), **trainable}
        return StageModules(trainable=trainable, frozen={"mel": self.mel, "stft": self.stft})

    # --- data ------------------------------------------------------------------------------------------
    def train_dataset(self) -> Dataset:
        return dataset_split(self.ctx, "train")

    def val_dataset(self) -> Dataset | None:
        return dataset_split(self.ctx, "validation", required=False)

    def collate(self, items: list[Mapping[str, Any]]) -> dict[str, Any]:
        return collate_fields(items, tensors={"audio": self.ctx.seq.num_samples})

    # --- loss ------------------------------------------------------------------------------------------
    def segment_frames(self) -> int:
        """Mel frames per training segment (``segment_seconds`` at the mel rate, at least 8)."""
        seq = self.ctx.seq
        n = max(8, round(float(self.cfg.get("segment_seconds", 0.5)) * seq.mel_rate))
        return min(n, seq.num_samples // seq.hop_length)

    def _segments(self, inputs: StepInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Random aligned (mel crop ``B x n_mels x F``, waveform crop ``B x F * hop``) per clip."""
        wav = inputs.batch["audio"].float()
        hop = self.ctx.seq.hop_length
        mel = inputs.frozen["mel"](wav)  # (B, n_mels, T // hop)
        f = self.segment_frames()
        hi = mel.shape[-1] - f
        starts = torch.randint(
            0, hi + 1, (wav.shape[0],), generator=inputs.generator, device=inputs.generator.device
        ).tolist()
        mels = torch.stack([mel[i, :, s : s + f] for i, s in enumerate(starts)])
        wavs = torch.stack([wav[i, s * hop : (s + f) * hop] for i, s in enumerate(starts)])
        return mels, wavs

    def loss(self, inputs: StepInputs, group: str) -> tuple[torch.Tensor, dict[str, float]]:
        sc = inputs.scratch
        if "fake" not in sc:
            sc["mel_in"], sc["real"] = self._segments(inputs)
            sc["fake"] = inputs.models["main"](sc["mel_in"]).float()
        real, fake = sc["real"], sc["fake"]
        if group == "disc":
            outs = inputs.models["disc"](torch.cat([real, fake.detach()]))
            d_loss = lsgan_d_loss([o.chunk(2)[0] for o, _ in outs], [o.chunk(2)[1] for o, _ in outs])
            return d_loss, {}
        mel_fn = inputs.frozen["mel"]
        mel_l1 = (mel_fn(fake) - mel_fn(real)).abs().mean()
        stft = inputs.frozen["stft"](fake, real)
        loss = float(self.cfg["mel_weight"]) * mel_l1 + float(self.cfg["stft_weight"]) * stft
        logs = {"mel_l1": float(mel_l1.detach()), "stft": float(stft.detach())}
        if self.cfg.get("discriminators"):
            outs = inputs.models["disc"](torch.cat([real, fake]))
            fake_logits = [o.chunk(2)[1] for o, _ in outs]
            real_feats = [[f.chunk(2)[0] for f in feats] for _, feats in outs]
            fake_feats = [[f.chunk(2)[1] for f in feats] for _, feats in outs]
            adv, fm = lsgan_g_loss(fake_logits), feature_matching_loss(real_feats, fake_feats)
            loss = loss + float(self.cfg["adv_weight"]) * adv + float(self.cfg["feat_weight"]) * fm
            logs.update(g_adv=float(adv.detach()), feat_match=float(fm.detach()))
        return loss, logs

    # --- validation / export ---------------------------------------------------------------------------
    def validate(
        self,
        model: nn.Module,
        frozen: Mapping[str, nn.Module],
        batches: Iterable[Any],
        generator: torch.Generator,
    ) -> dict[str, float]:
        """Mel L1 (log units) between whole vocoded clips and the originals."""
        errs = []
        for b in batches:
            mel = frozen["mel"](b["audio"].float())
            errs.append((frozen["mel"](model(mel).float()) - mel).abs().mean())
        return {"mel_l1": float(torch.stack(errs).mean())} if errs else {}

    def export(self, model: nn.Module, frozen: Mapping[str, nn.Module], folder: Path) -> dict[str, Path]:
        if self.ctx.pipeline is not None:
            return export_pipeline(self.ctx, folder)
        out = folder / "vocoder"
        model.vocoder.save_pretrained(out, safe_serialization=True)
        return {"vocoder": out}
