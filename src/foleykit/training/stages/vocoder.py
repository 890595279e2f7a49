"""Stage ``vocoder``: log-mel to waveform, a HiFi-GAN (AudioLDM layout, transformers ``SpeechT5HifiGan``) or
the Vocos-style ``IstftVocoder`` (the recipe's ``codec.vocoder.type``: hifigan | istft).

Objective on random segments of ``segment_seconds`` (up to ``segment_max_seconds``, drawn per step) inside
each clip's own length:

- ``mel_weight`` x L1 between the AudioLDM log-mels (``foleykit.audio``) of generated and real audio (45
  in HiFi-GAN) + ``stft_weight`` x multi-resolution STFT loss (Parallel WaveGAN), which lets the generator
  learn without discriminators on CPU;
- with ``adversarial=true``, HiFi-GAN's adversarial objective (Kong et al. 2020, eq. 1-6): the multi-period
  + multi-scale discriminators (``foleykit.models.discriminators``; sizes ``disc_preset``, ``disc_width``,
  ``disc_periods``, ``disc_scales``) are a second optimizer group stepped before the generator, with the
  least-squares losses; the generator adds ``adv_weight`` x its least-squares term and ``feat_weight`` (2)
  x feature matching. Both start at step ``disc_start`` (before it the discriminators are not stepped);
- ``lr_decay``: HiFi-GAN's exponential LR decay (0.999) every ``lr_decay_every`` steps (default: one
  epoch), for both optimizers;
- ``mel_source``: ``audio`` (default) feeds the vocoder the true log-mel of each segment; ``autoencoder`` feeds
  it the model's mel VAE reconstruction of that mel (posterior mode, decoded), the mel that generation gives
  it, while the target stays the real waveform: HiFi-GAN's fine-tuning on the acoustic model's outputs
  (Kong et al. 2020, sec. 4.4), with the frozen VAE in that role. Segments are then whole latent frames, and
  the VAE sees ``AUTOENCODER_CONTEXT`` latent frames of context on each side (cut off afterwards). Needs a
  model with a mel VAE (``--init`` / ``--warm-start``).

Trainable: the vocoder (+ discriminators, checkpointed with their optimizer / scheduler for exact resume;
EMA and the exported model folder hold the vocoder only). Frozen: the mel transform. Data: audio clips of
any length up to the model window. Exports the pipeline (or ``vocoder/``: the transformers layout, or a
``foleykit.spec`` folder for the iSTFT vocoder).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from foleykit.errors import ConfigError
from foleykit.training.losses import (
    MultiResolutionSTFTLoss,
    feature_matching_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    split_halves,
)
from foleykit.training.stages.autoencoder import _stft_resolutions
from foleykit.training.stages.base import (
    Stage,
    StageModules,
    StepInputs,
    as_tensor,
    collate_fields,
    unwrap,
)
from foleykit.training.stages.components import build_component, dataset_split, export_pipeline

#: ``mel_source=autoencoder``: latent frames of context the VAE sees on each side of a training segment.
AUTOENCODER_CONTEXT = 8
MEL_SOURCES = ("audio", "autoencoder")


class VocoderTask(nn.Module):
    """The trainable unit: log-mel ``Tensor[B x n_mels x T_mel]`` -> waveform ``Tensor[B x T_mel * hop]``.

    HiFi-GAN's transposed convolutions can emit a few samples more than ``T_mel * hop`` (kernel > stride);
    the output is cropped to exactly ``T_mel * hop``.

    Args:
        vocoder: transformers ``SpeechT5HifiGan`` or ``IstftVocoder`` (both take ``B x T x n_mels``).
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
    """Train the recipe's vocoder (HiFi-GAN or iSTFT) on the recipe's mel geometry.

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
        self.adversarial = bool(self.cfg.get("adversarial", False))
        self.mel_source = str(self.cfg.get("mel_source", "audio"))
        if self.mel_source not in MEL_SOURCES:
            raise ConfigError(
                f"stages.{ctx.stage_dir.name}.mel_source must be one of {', '.join(MEL_SOURCES)}, "
                f"got {self.mel_source!r}"
            )

    def requirements(self) -> dict[str, str]:
        return {"audio clips": "items with 'audio' Tensor[T] at the recipe's sample rate"}

    def groups(self) -> list[str]:
        return ["disc", "main"] if self.adversarial else ["main"]

    def adversarial_at(self, step: int) -> bool:
        """Whether the discriminators train, and the generator is judged by them, at ``step``."""
        return self.adversarial and step >= int(self.cfg.get("disc_start", 0))

    def group_active(self, group: str, step: int) -> bool:
        return group == "main" or self.adversarial_at(step)

    def discriminator_config(self) -> dict[str, Any]:
        """The discriminator sizes from the stage knobs ``disc_preset``, ``disc_width``, ``disc_periods``,
        ``disc_scales``."""
        from foleykit.models.discriminators import resolve_discriminator_config

        cfg = self.cfg
        return resolve_discriminator_config(
            {"preset": cfg.get("disc_preset", "hifigan")},
            width=cfg.get("disc_width"),
            periods=cfg.get("disc_periods"),
            scales=cfg.get("disc_scales"),
        )

    def build(self) -> StageModules:
        from foleykit.audio import MelSpectrogram
        from foleykit.models.discriminators import HifiganDiscriminator
        from foleykit.models.vocoder import vocoder_hop

        vocoder = self._vocoder if self._vocoder is not None else build_component(self.ctx, "vocoder")
        seq = self.ctx.seq
        if vocoder_hop(vocoder) != seq.hop_length:
            raise ConfigError(
                f"vocoder upsamples {vocoder_hop(vocoder)}x but the mel hop is {seq.hop_length}"
            )
        self.mel = MelSpectrogram.from_sequence(seq)
        self.stft = MultiResolutionSTFTLoss(resolutions=_stft_resolutions(seq.sample_rate))
        frozen: dict[str, nn.Module] = {"mel": self.mel, "stft": self.stft}
        if self.mel_source == "autoencoder":
            codec = getattr(self.ctx.pipeline, "codec", None)
            if codec is None or not hasattr(codec, "encode_mel_image"):
                raise ConfigError(
                    "vocoder.mel_source=autoencoder needs a model with a mel VAE: start the run from one "
                    "(--init MODEL or --warm-start MODEL)"
                )
            frozen["vae"] = codec.vae
        trainable: dict[str, nn.Module] = {"main": VocoderTask(vocoder, hop=seq.hop_length)}
        if self.adversarial:
            trainable = {"disc": HifiganDiscriminator(self.discriminator_config()), **trainable}
        return StageModules(trainable=trainable, frozen=frozen)

    def scheduler(self, optimizer: torch.optim.Optimizer, group: str, max_steps: int) -> Any | None:
        """HiFi-GAN's exponential decay (``lr_decay`` per ``lr_decay_every`` optimizer steps, default one epoch
        of the training set) after the trainer's linear ``warmup_steps``; None (the trainer's ``scheduler``)
        when ``lr_decay`` is null."""
        decay = self.cfg.get("lr_decay")
        if decay is None:
            return None
        decay = float(decay)
        if not 0 < decay <= 1:
            raise ConfigError(f"stages.{self.ctx.stage_dir.name}.lr_decay must be in (0, 1], got {decay}")
        every = self.cfg.get("lr_decay_every")
        every = int(every) if every is not None else self.steps_per_epoch()
        if every < 1:
            raise ConfigError(f"stages.{self.ctx.stage_dir.name}.lr_decay_every must be >= 1, got {every}")
        warmup = int(self.cfg.get("warmup_steps", 0))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, _ExponentialDecay(decay, every, warmup))

    def steps_per_epoch(self) -> int:
        """Optimizer steps per pass over the training set (per process, as the trainer's sampler draws)."""
        import torch.distributed as dist

        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        per_rank = math.ceil(len(self.train_dataset()) / world)
        batches = max(1, per_rank // int(self.cfg["batch_size"]))
        return max(1, batches // int(self.cfg.get("grad_accum", 1)))

    # --- data ------------------------------------------------------------------------------------------
    def train_dataset(self) -> Dataset:
        return dataset_split(self.ctx, "train")

    def val_dataset(self) -> Dataset | None:
        return dataset_split(self.ctx, "validation", required=False)

    def collate(self, items: list[Mapping[str, Any]]) -> dict[str, Any]:
        """Audio zero-padded to the longest item (at most the model window) + each item's own length.

        Clips shorter than a training segment are zero-padded to one segment.
        """
        seq = self.ctx.seq
        lengths = [min(int(as_tensor(it["audio"]).shape[-1]), seq.num_samples) for it in items]
        seg = self.segment_frames(self.max_segment_seconds()) * seq.hop_length
        n = max(max(lengths), seg)
        out = collate_fields(items, tensors={"audio": n})
        out["audio_length"] = torch.tensor(lengths, dtype=torch.long)
        return out

    # --- loss ------------------------------------------------------------------------------------------
    def max_segment_seconds(self) -> float:
        lo = float(self.cfg.get("segment_seconds", 0.5))
        hi = self.cfg.get("segment_max_seconds")
        return max(lo, float(hi)) if hi is not None else lo

    def segment_frames(self, seconds: float | None = None) -> int:
        """Mel frames per training segment (``seconds``, default ``segment_seconds``; at least 8)."""
        seq = self.ctx.seq
        sec = float(self.cfg.get("segment_seconds", 0.5)) if seconds is None else float(seconds)
        n = max(8, round(sec * seq.mel_rate))
        return min(n, seq.num_samples // seq.hop_length)

    def _segments(self, inputs: StepInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Random aligned (mel crop ``B x n_mels x F``, waveform crop ``B x F * hop``), one per clip, inside
        each clip's own length; ``F`` is drawn per step in [``segment_seconds``, ``segment_max_seconds``]."""
        wav = inputs.batch["audio"].float()
        hop = self.ctx.seq.hop_length
        gen = inputs.generator
        mel = inputs.frozen["mel"](wav)  # (B, n_mels, T // hop)
        f_lo, f_hi = self.segment_frames(), self.segment_frames(self.max_segment_seconds())
        if f_hi > f_lo:
            f = int(torch.randint(f_lo, f_hi + 1, (1,), generator=gen, device=gen.device))
        else:
            f = f_lo
        lengths = inputs.batch.get("audio_length")
        frames = (
            (lengths.to(mel.device) // hop).clamp(max=mel.shape[-1])
            if lengths is not None
            else torch.full((wav.shape[0],), mel.shape[-1], device=mel.device)
        )
        r = self.ctx.seq.mel_frames_per_latent if "vae" in inputs.frozen else 1
        if r > 1:  # whole latent frames: segments start and end on the VAE's grid
            f = max(r, f // r * r)
            frames = frames // r * r
        room = (frames - f).clamp(min=0) // r + 1  # possible starts per clip (in steps of r)
        u = torch.rand(wav.shape[0], generator=gen, device=gen.device).to(mel.device)
        starts = ((u * room).floor().long().clamp(max=room - 1) * r).tolist()
        if r > 1:
            mels = torch.stack(
                [
                    self._through_vae(inputs.frozen["vae"], mel[i], s, f, int(frames[i]))
                    for i, s in enumerate(starts)
                ]
            )
        else:
            mels = torch.stack([mel[i, :, s : s + f] for i, s in enumerate(starts)])
        wavs = torch.stack([wav[i, s * hop : (s + f) * hop] for i, s in enumerate(starts)])
        return mels, wavs

    def _through_vae(
        self, vae: nn.Module, mel: torch.Tensor, start: int, f: int, frames: int
    ) -> torch.Tensor:
        """The VAE's reconstruction (posterior mode, decoded) of ``mel[:, start : start + f]``, made with
        ``AUTOENCODER_CONTEXT`` latent frames of context on each side (inside the clip's ``frames``)."""
        pad = AUTOENCODER_CONTEXT * self.ctx.seq.mel_frames_per_latent
        lo, hi = max(0, start - pad), min(max(frames, start + f), start + f + pad)
        image = mel[:, lo:hi].transpose(0, 1)[None, None]  # (1, 1, T, n_mels)
        with torch.no_grad():
            z = vae.encode(image.to(vae.dtype)).latent_dist.mode()
            out = vae.decode(z).sample[0, 0].transpose(0, 1).float()  # (n_mels, T)
        return out[:, start - lo : start - lo + f]

    def loss(self, inputs: StepInputs, group: str) -> tuple[torch.Tensor, dict[str, float]]:
        """``disc``: least-squares discriminator loss on (real, generated.detach()); ``main``:
        ``mel_weight`` x mel L1 + ``stft_weight`` x STFT (+ ``adv_weight`` x least-squares generator loss
        + ``feat_weight`` x feature matching once the discriminators are on)."""
        sc = inputs.scratch
        if "fake" not in sc:
            sc["mel_in"], sc["real"] = self._segments(inputs)
            sc["fake"] = inputs.models["main"](sc["mel_in"]).float()
        real, fake = sc["real"], sc["fake"]
        if group == "disc":
            real_l, fake_l, _, _ = split_halves(inputs.models["disc"](torch.cat([real, fake.detach()])))
            d_loss = lsgan_d_loss(real_l, fake_l)
            logs = {
                "d_real": float(torch.stack([r.detach().mean() for r in real_l]).mean()),
                "d_fake": float(torch.stack([x.detach().mean() for x in fake_l]).mean()),
            }
            return d_loss, logs
        mel_fn = inputs.frozen["mel"]
        mel_l1 = (mel_fn(fake) - mel_fn(real)).abs().mean()
        stft = inputs.frozen["stft"](fake, real)
        loss = float(self.cfg["mel_weight"]) * mel_l1 + float(self.cfg["stft_weight"]) * stft
        logs = {"mel_l1": float(mel_l1.detach()), "stft": float(stft.detach())}
        if self.adversarial_at(inputs.step):
            real_outs, fake_outs = self._judge_for_generator(inputs.models["disc"], real, fake)
            adv = lsgan_g_loss([o.logits for o in fake_outs])
            fm = feature_matching_loss([o.features for o in real_outs], [o.features for o in fake_outs])
            loss = loss + float(self.cfg["adv_weight"]) * adv + float(self.cfg["feat_weight"]) * fm
            logs.update(g_adv=float(adv.detach()), feat_match=float(fm.detach()))
        return loss, logs

    @staticmethod
    def _judge_for_generator(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[list, list]:
        """Discriminator outputs for the generator's terms, without the work they do not need: the real
        half without any gradient, the generated half with gradients to its input only (the discriminator
        weights get none in the generator step). Runs the unwrapped module: nothing to synchronise."""
        d = unwrap(disc)
        with torch.no_grad():
            real_outs = d(real)
        params = [p for p in d.parameters() if p.requires_grad]
        try:
            for p in params:
                p.requires_grad_(False)
            fake_outs = d(fake)
        finally:
            for p in params:
                p.requires_grad_(True)
        return real_outs, fake_outs

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
        from foleykit.pipelines.components import save_component

        build_spec = getattr(model.vocoder, "build_spec", None)  # IstftVocoder: a foleykit.spec folder
        save_component(model.vocoder, out, spec=build_spec() if callable(build_spec) else None)
        return {"vocoder": out}


class _ExponentialDecay:
    """LR factor ``decay ** (step // every)`` after a linear warm-up of ``warmup`` steps (picklable, so the
    scheduler's state checkpoints)."""

    def __init__(self, decay: float, every: int, warmup: int) -> None:
        self.decay, self.every, self.warmup = float(decay), int(every), int(warmup)

    def __call__(self, step: int) -> float:
        ramp = min(1.0, (step + 1) / (self.warmup + 1)) if self.warmup > 0 else 1.0
        return ramp * self.decay ** (step // self.every)
