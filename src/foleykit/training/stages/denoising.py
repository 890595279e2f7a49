"""Shared machinery of the diffusion stages (prior, adapter, semantic): the trainable unit and batch conditions.

:class:`DenoiseTask` is what accelerate wraps: its ``forward`` assembles c = [text; video; audio]
(STA-V2A eq. 5) with per-row condition dropout (classifier-free guidance training, ReWaS drops the text
with p = 0.3), encodes the timing controls of the adapters and runs the denoiser, exactly as the
pipeline's sampling loop does at inference. Trainable parts are registered sub-modules; frozen parts are
held by reference only (not checkpointed, not synchronised).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from foleykit.errors import ConfigError, DataError
from foleykit.models.layers import Conditions
from foleykit.training.stages.base import as_tensor, fit_length

#: Component names a DenoiseTask knows.
PARTS = ("denoiser", "assembler", "video_condition")


class DenoiseTask(nn.Module):
    """Conditions + (adapters) + denoiser as one module.

    Args:
        trainable: Trainable components by name: ``denoiser``, ``assembler``, ``video_condition`` and
            ``adapter_<name>`` (``ControlAdapter``).
        frozen: The same names for frozen components, plus ``codec`` (VAE control encoders need it).

    Shapes:
        ``forward(noisy Tensor[B x latent...], timesteps Tensor[B], *, parts, drop, video_features
        Tensor[B x T_v x D] | None, controls [(adapter name, series Tensor[B x T_s] | None, local
        Tensor[B x T x D] | None)], seconds_total Tensor[B], control_scale Tensor[B] | None) -> model output
        like noisy`` (``control_scale`` multiplies every adapter's residuals per row).
    """

    def __init__(
        self,
        *,
        trainable: Mapping[str, nn.Module],
        frozen: Mapping[str, nn.Module],
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        overlap = set(trainable) & set(frozen)
        if overlap:
            raise ValueError(f"components {sorted(overlap)} are both trainable and frozen")
        self.parts = nn.ModuleDict(dict(trainable))
        self.__dict__["_frozen"] = dict(frozen)  # not registered: not checkpointed nor DDP-synchronised
        #: Run ``forward`` under ``torch.autocast`` with this dtype (the adapter stage's ``precision=bf16``);
        #: the output is returned in float32 for the loss.
        self.autocast_dtype = autocast_dtype

    def get(self, name: str) -> nn.Module | None:
        """A component (trainable or frozen), or None."""
        if name in self.parts:
            return self.parts[name]
        return self._frozen.get(name)

    def adapter_names(self) -> list[str]:
        names = [n for n in self.parts if n.startswith("adapter_")]
        names += [n for n in self._frozen if n.startswith("adapter_")]
        return [n[len("adapter_") :] for n in names]

    def conditions(
        self,
        parts: dict[str, Any],
        *,
        batch_size: int,
        drop: Mapping[str, torch.Tensor],
        video_features: torch.Tensor | None,
        seconds_total: torch.Tensor,
        device: torch.device,
    ) -> Conditions:
        """Assemble :class:`Conditions` from raw encoder outputs (video features go through video_condition)."""
        assembler = self.get("assembler")
        parts = dict(parts)
        vc = self.get("video_condition")
        if "video" in assembler.config.sources and video_features is not None and vc is not None:
            parts["video"] = (vc(video_features), None)
        drop = {k: v for k, v in drop.items() if k in assembler.config.sources}
        tokens, mask, glob = assembler.assemble(parts, batch_size=batch_size, drop=drop, device=device)
        return Conditions(
            tokens=tokens,
            mask=mask,
            global_embed=glob,
            seconds_start=torch.zeros_like(seconds_total),
            seconds_total=seconds_total,
        )

    def control_features(
        self,
        controls: Sequence[tuple[str, torch.Tensor | None, torch.Tensor | None]],
        num_latent_frames: int,
        scale: torch.Tensor | None = None,
    ) -> list[tuple[nn.Module, torch.Tensor, float | torch.Tensor]]:
        """Encode each adapter's control onto the latent grid: ``[(net, features, scale)]``; ``scale`` is 1, or
        per row ``Tensor[B x 1 x 1]`` (0 = that row is denoised without the adapter: control dropout)."""
        out = []
        s: float | torch.Tensor = 1.0 if scale is None else scale.float().view(-1, 1, 1)
        for name, series, local in controls:
            adapter = self.get(f"adapter_{name}")
            if adapter is None:
                raise ConfigError(f"no adapter named {name!r} in this task")
            feats = adapter.encoder(
                series, num_latent_frames=num_latent_frames, codec=self._frozen.get("codec"), features=local
            )
            out.append((adapter.net, feats, s))
        return out

    def forward(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        *,
        parts: dict[str, Any],
        drop: Mapping[str, torch.Tensor],
        seconds_total: torch.Tensor,
        video_features: torch.Tensor | None = None,
        controls: Sequence[tuple[str, torch.Tensor | None, torch.Tensor | None]] = (),
        control_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        import contextlib

        amp = (
            torch.autocast(noisy.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with amp:
            cond = self.conditions(
                parts,
                batch_size=noisy.shape[0],
                drop=drop,
                video_features=video_features,
                seconds_total=seconds_total,
                device=noisy.device,
            )
            ctrl = self.control_features(controls, noisy.shape[2], control_scale)
            out = self.get("denoiser")(noisy, timesteps, cond, controls=ctrl)
        return out if self.autocast_dtype is None else out.float()


# --- batches ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CropWindow:
    """One random time window per batch row, the same stretch of the clip on every grid of ``seq``.

    Training the diffusion model on windows of its clips (stage knob ``crop_seconds``) makes a step several
    times cheaper (self-attention over fewer latent frames; the DiT's rotary positions carry no absolute
    time), so a CPU budget buys that many more steps. The latents, the video features and the control
    series of a row are cut at the same time; the token conditions (text, the reference sound) describe
    the whole clip and are kept.

    Args:
        seq: The run's :class:`~foleykit.config.SequenceConfig` (owns every grid's rate and length).
        seconds: Window length.
        starts: Start of each row's window in seconds (on the latent grid).
    """

    seq: Any
    seconds: float
    starts: tuple[float, ...]

    @classmethod
    def draw(cls, seq: Any, seconds: float, batch_size: int, generator: torch.Generator) -> CropWindow:
        """Uniform window starts on the latent grid, from the run's generator (exact resume).

        Raises:
            ConfigError: ``seconds`` is not in (0, clip duration] or shorter than one latent frame.
        """
        rate, total = seq.grid("latent")
        n = seq.frames_at(rate, seconds)
        if not 0 < seconds <= seq.duration or n < 1:
            raise ConfigError(
                f"crop_seconds must be at least one latent frame ({1 / rate:g} s) and at most the clip's "
                f"{seq.duration:g} s, got {seconds:g}"
            )
        u = torch.randint(0, total - n + 1, (batch_size,), generator=generator, device=generator.device)
        return cls(seq, float(seconds), tuple(int(i) / rate for i in u.cpu()))

    def crop(self, x: torch.Tensor, grid: str, *, dim: int) -> torch.Tensor:
        """Each row's window of ``x`` (``Tensor[B x ...]``, time along ``dim`` on the named grid).

        Raises:
            DataError: ``x`` does not hold the whole clip on that grid.
        """
        rate, total = self.seq.grid(grid)
        if x.shape[dim] != total:
            raise DataError(f"a {grid}-grid series has {x.shape[dim]} frames, the clip {total}")
        n = self.seq.frames_at(rate, self.seconds)
        inner = dim - 1 if dim > 0 else dim
        rows = [x[i].narrow(inner, min(round(s * rate), total - n), n) for i, s in enumerate(self.starts)]
        return torch.stack(rows)


def collate_av(items: list[Mapping[str, Any]], seq: Any) -> dict[str, Any]:
    """Collate the fields the diffusion / predictor stages read (whatever subset the items carry).

    Fields: ``audio`` Tensor[T] (fitted to ``seq.num_samples``), ``latents``, ``audio_tokens``, ``audio_mask``
    (cached, stacked),
    ``video_features`` Tensor[T_v x D] and ``frames`` uint8 (T_v x H x W x 3) (fitted to
    ``seq.num_video_frames``), ``caption`` str, control targets (``energy``, ``rms``, ``rms_class``,
    ``onsets``, ``presence``) and ``onset_times`` (exact event times, lists).
    """
    out: dict[str, Any] = {}
    keys = set(items[0])
    for it in items[1:]:
        keys &= set(it)
    if "audio" in keys:
        out["audio"] = torch.stack(
            [fit_length(as_tensor(it["audio"]).reshape(-1), seq.num_samples) for it in items]
        )
    for key in ("latents", "audio_tokens", "audio_mask"):
        if key in keys:
            out[key] = torch.stack([as_tensor(it[key]) for it in items])
    for key in ("video_features", "frames"):
        if key in keys and all(it[key] is not None for it in items):
            vals = [as_tensor(it[key]) for it in items]
            n = seq.num_video_frames
            vals = [
                v[:n] if v.shape[0] >= n else torch.cat([v, v[-1:].expand(n - v.shape[0], *v.shape[1:])])
                for v in vals
            ]
            out[key] = torch.stack(vals)
    for key, n in (
        ("energy", seq.num_energy_frames),
        ("rms", seq.num_control_frames),
        ("rms_class", seq.num_control_frames),
        ("onsets", seq.num_latent_frames),
        ("presence", seq.num_video_frames),
    ):
        if key in keys:
            out[key] = torch.stack([fit_length(as_tensor(it[key]), n) for it in items])
    if "caption" in keys:
        out["caption"] = [str(it["caption"]) for it in items]
    if "onset_times" in keys:
        out["onset_times"] = [list(it["onset_times"]) for it in items]
    return out


@torch.no_grad()
def batch_latents(batch: Mapping[str, Any], codec: nn.Module) -> torch.Tensor:
    """Clean latents: the cached ``latents`` when present, else the posterior mode of the audio (frozen VAE)."""
    if "latents" in batch:
        return batch["latents"].float()
    if "audio" not in batch:
        raise DataError("the batch has neither 'latents' (cache) nor 'audio'")
    return codec.encode_audio(batch["audio"].float()).float()


def video_features(batch: Mapping[str, Any], encoder: nn.Module | None) -> torch.Tensor | None:
    """Video features: cached ``video_features``, else the video encoder on ``frames``, else None."""
    if "video_features" in batch:
        return batch["video_features"].float()
    if "frames" in batch and encoder is not None:
        return encoder.encode(batch["frames"]).float()
    return None


@torch.no_grad()
def raw_parts(
    batch: Mapping[str, Any],
    *,
    sources: Sequence[str],
    use: Sequence[str],
    text_encoder: nn.Module | None,
    audio_encoder: nn.Module | None,
    sample_rate: int,
    device: torch.device,
) -> dict[str, Any]:
    """Encoder outputs of the token conditions ``use`` ∩ ``sources`` (``video`` is handled by the task).

    Text comes from ``caption``; the reference audio from ``reference_audio`` or, lacking it, the clip's own
    ``audio`` (the timbre condition; its coarse blocks carry no precise timing) — its tokens come from the
    feature cache (``audio_tokens`` / ``audio_mask``) when present.
    """
    parts: dict[str, Any] = {}
    if "text" in sources:
        parts["text"] = None
        if "text" in use and text_encoder is not None and "caption" in batch:
            tokens, mask = text_encoder.encode(list(batch["caption"]))
            parts["text"] = (tokens.to(device), mask.to(device))
    if "audio" in sources:
        parts["audio"] = None
        ref = batch.get("reference_audio", batch.get("audio"))
        if (
            "audio" in use and "audio_tokens" in batch and "reference_audio" not in batch
        ):  # the feature cache's
            parts["audio"] = (batch["audio_tokens"].float().to(device), batch["audio_mask"].bool().to(device))
        elif "audio" in use and audio_encoder is not None and ref is not None:
            wavs = [np.asarray(w.detach().float().cpu().numpy()) for w in ref]
            tokens, mask = audio_encoder.encode(wavs, sample_rate)
            parts["audio"] = (tokens.to(device), mask.to(device))
    return parts


#: Channel groups of a scene-type video encoder that come from the pretrained vision models (``encoder.groups``).
VISION_GROUPS = ("pose", "objects", "embedding")


def drop_vision(
    feats: torch.Tensor, encoder: nn.Module | None, p: float, generator: torch.Generator
) -> torch.Tensor:
    """Per clip, with probability ``p``, the features the video encoder gives when its vision models are not
    installed: the :data:`VISION_GROUPS` channels zero and the ``vision_available`` flag 0 (see
    ``foleykit.vision.encoder``). Trains the timing predictor and the diffusion model to work on the
    weight-free motion features alone. One uniform draw per clip from the run's generator (exact resume);
    features of encoders without channel groups are returned unchanged.

    Args:
        feats: ``Tensor[B x T x D]`` video features.
        encoder: The pipeline's video encoder (its ``groups`` / ``channel_names`` name the channels).
        p: Probability per clip.
        generator: The run's generator.
    """
    groups = getattr(encoder, "groups", None)
    if not p or not groups or not any(g in groups for g in VISION_GROUPS):
        return feats
    u = torch.rand(feats.shape[0], generator=generator, device=generator.device).cpu()
    rows = (u < float(p)).to(feats.device)
    if not bool(rows.any()):
        return feats
    keep = torch.ones(feats.shape[-1], dtype=feats.dtype, device=feats.device)
    for g in VISION_GROUPS:
        if g in groups:
            keep[groups[g]] = 0
    names = list(getattr(encoder, "channel_names", ()))
    if "vision_available" in names:
        keep[names.index("vision_available")] = 0
    return torch.where(rows[:, None, None], feats * keep, feats)


def draw_dropout(
    probs: Mapping[str, float], names: Sequence[str], batch_size: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Per-row condition dropout masks ``BoolTensor[B]`` (True = replaced by the null condition).

    One uniform draw per row and condition from the run's generator (checkpointed: exact resume).
    """
    out = {}
    for name in names:
        p = float(probs.get(name, 0.0))
        u = torch.rand(batch_size, generator=generator, device=generator.device).cpu()
        out[name] = u < p
    return out
