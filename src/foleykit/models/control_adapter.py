"""Timing-control adapters: ControlNets for the UNet and the DiT, and the encoders that put a control on the
latent grid.

- :class:`UNetControlNetModel` — ControlNet (Zhang et al. 2023) for any diffusers ``UNet2DConditionModel``,
  AudioLDM's FiLM layout included (diffusers' ``ControlNetModel`` supports neither ``simple_projection`` class
  embeddings, nor concatenated class embeddings, nor per-level cross-attention sizes). ``from_unet`` copies
  the base encoder half (conv_in, time/class embeddings, down blocks, mid block); every output goes through a
  zero-initialised 1x1 convolution, so a fresh adapter leaves the base output unchanged. The control enters
  through diffusers' ``ControlNetConditioningEmbedding`` (zero-initialised last conv) added after ``conv_in``:
  ReWaS "latent control feature added to z", STA-V2A "noise latent added to the local video features".
- :class:`DiTControlNetModel` — Stable-V2A sec. IV-D-1 (after PixArt's DiT ControlNet): a trainable copy of
  the first ``ceil(depth_factor x N)`` DiT blocks (20% -> 5 of 24), a zero-initialised input projection of
  the control added to the latent tokens, and a zero-initialised output projection per block whose output is
  added after the corresponding frozen block.
- Control encoders map a 1-D control on its grid onto the latent grid: :class:`SeriesControlEncoder`
  (k control frames per latent frame -> MLP; the demonstrator's RMS envelope, Rhythmic Foley's onset / event
  tracks), :class:`VAEControlEncoder` (ReWaS: energy tiled over the mel bins and encoded by the frozen mel
  VAE, then FC + SiLU; Stable-V2A: the envelope as a waveform through the frozen Oobleck VAE) and
  :class:`LocalFeatureControlEncoder` (STA-V2A: local video features e_lv, optionally with the onset track).
- :class:`ControlAdapter` bundles an encoder, a network and the user settings: weight and the
  ``[start, end)`` window over the denoising steps (Rhythmic Foley combines adapters with user weights;
  diffusers' ``controlnet_conditioning_scale`` / ``control_guidance_start/end``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from foleykit.errors import ConfigError
from foleykit.models.layers import resample_series, series_to_latent_grid, timestep_tensor, zero_module
from foleykit.utils.meta import empty_weights

CONTROL_GRIDS = ("control", "mel", "energy", "latent", "video")


def _like(module: nn.Module, param: torch.Tensor) -> nn.Module:
    """Move ``module`` to ``param``'s device / dtype only when they differ (no-op on CPU float32)."""
    p = next(module.parameters())
    if p.device != param.device or p.dtype != param.dtype:
        module = nn.Module.to(module, device=param.device, dtype=param.dtype)
    return module


# ==========================================================================================================
# UNet ControlNet
# ==========================================================================================================
class UNetControlNetModel(ModelMixin, ConfigMixin):
    """ControlNet for a ``UNet2DConditionModel`` (any layout, AudioLDM included).

    Args:
        unet_config: The base UNet's config (constructor kwargs of ``UNet2DConditionModel``).
        conditioning_channels: Channels of the control map on the latent grid (``B x C_c x T x F``).
        conditioning_embedding_channels: Hidden widths of the control embedding; length 1 = no downsampling
            (the control is already on the latent grid); empty = a single zero-initialised 3x3 conv (ReWaS'
            released ControlNet).

    Shapes:
        ``forward(sample Tensor[B x C x T x F], timestep, conditioning Tensor[B x C_c x T x F], ...) ->
        (down residuals tuple, mid residual)`` matching the base UNet's skip connections.
    """

    config_name = "config.json"
    #: the copied diffusers blocks honour ``enable_gradient_checkpointing()``
    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        *,
        unet_config: dict[str, Any],
        conditioning_channels: int = 8,
        conditioning_embedding_channels: tuple[int, ...] = (32,),
    ) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel
        from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding

        cfg = {k: v for k, v in unet_config.items() if not k.startswith("_")}
        base = UNet2DConditionModel(**cfg)  # built once to borrow its encoder half
        if base.config.addition_embed_type is not None or base.encoder_hid_proj is not None:
            raise ConfigError("UNetControlNetModel does not support addition / encoder_hid embeddings")
        self.conv_in = base.conv_in
        self.time_proj = base.time_proj
        self.time_embedding = base.time_embedding
        self.class_embedding = base.class_embedding
        self.time_embed_act = base.time_embed_act
        self.down_blocks = base.down_blocks
        self.mid_block = base.mid_block
        del base
        block_out = list(cfg["block_out_channels"])
        if conditioning_embedding_channels:
            self.controlnet_cond_embedding = ControlNetConditioningEmbedding(
                conditioning_embedding_channels=block_out[0],
                conditioning_channels=conditioning_channels,
                block_out_channels=tuple(conditioning_embedding_channels),
            )
        else:  # ReWaS' published layout: one zero-initialised 3x3 conv from the control map to block 0
            self.controlnet_cond_embedding = zero_module(
                nn.Conv2d(conditioning_channels, block_out[0], kernel_size=3, padding=1)
            )
        res_channels = [block_out[0]]
        for block in self.down_blocks:
            res_channels += [r.out_channels for r in block.resnets]
            if block.downsamplers is not None:
                res_channels.append(block.downsamplers[0].out_channels)
        self.controlnet_down_blocks = nn.ModuleList(
            zero_module(nn.Conv2d(c, c, kernel_size=1)) for c in res_channels
        )
        self.controlnet_mid_block = zero_module(nn.Conv2d(block_out[-1], block_out[-1], kernel_size=1))

    @classmethod
    def from_unet(
        cls,
        unet: nn.Module,
        *,
        conditioning_channels: int,
        conditioning_embedding_channels: tuple[int, ...] = (32,),
    ) -> UNetControlNetModel:
        """A ControlNet initialised from ``unet`` (shared parts copied, outputs zero)."""
        cfg = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
        meta = next(unet.parameters()).is_meta
        if meta:
            with empty_weights():
                return cls(
                    unet_config=cfg,
                    conditioning_channels=conditioning_channels,
                    conditioning_embedding_channels=tuple(conditioning_embedding_channels),
                )
        net = cls(
            unet_config=cfg,
            conditioning_channels=conditioning_channels,
            conditioning_embedding_channels=tuple(conditioning_embedding_channels),
        )
        for name in ("conv_in", "time_proj", "time_embedding", "class_embedding", "down_blocks", "mid_block"):
            src, dst = getattr(unet, name), getattr(net, name)
            if src is not None:
                dst.load_state_dict(src.state_dict())
        return _like(net, next(unet.parameters()))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        *,
        conditioning: torch.Tensor,
        conditioning_scale: float = 1.0,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        class_labels: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        if conditioning.shape[0] != sample.shape[0] or conditioning.shape[-2:] != sample.shape[-2:]:
            raise ConfigError(
                f"control map {tuple(conditioning.shape)} does not match the latents "
                f"{tuple(sample.shape)} (need B x C_c x T x F on the latent grid)"
            )
        t = timestep_tensor(timestep, sample.shape[0], sample.device)
        emb = self.time_embedding(self.time_proj(t).to(sample.dtype))
        if self.class_embedding is not None:
            if class_labels is None:
                raise ConfigError("this ControlNet copies a FiLM-conditioned UNet: class_labels are required")
            labels = class_labels
            if self.config.unet_config.get("class_embed_type") == "timestep":
                labels = self.time_proj(labels).to(sample.dtype)
            class_emb = self.class_embedding(labels).to(sample.dtype)
            if self.config.unet_config.get("class_embeddings_concat"):
                emb = torch.cat([emb, class_emb], dim=-1)
            else:
                emb = emb + class_emb
        if self.time_embed_act is not None:
            emb = self.time_embed_act(emb)
        if encoder_attention_mask is not None:
            encoder_attention_mask = ((1 - encoder_attention_mask.to(sample.dtype)) * -10000.0).unsqueeze(1)
        h = self.conv_in(sample) + self.controlnet_cond_embedding(conditioning.to(sample.dtype))
        res: tuple[torch.Tensor, ...] = (h,)
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                h, r = block(
                    hidden_states=h,
                    temb=emb,
                    encoder_hidden_states=encoder_hidden_states,
                    encoder_attention_mask=encoder_attention_mask,
                )
            else:
                h, r = block(hidden_states=h, temb=emb)
            res += r
        if self.mid_block is not None:
            if getattr(self.mid_block, "has_cross_attention", False):
                h = self.mid_block(
                    h,
                    emb,
                    encoder_hidden_states=encoder_hidden_states,
                    encoder_attention_mask=encoder_attention_mask,
                )
            else:
                h = self.mid_block(h, emb)
        down = tuple(conv(r) * conditioning_scale for conv, r in zip(self.controlnet_down_blocks, res))
        return down, self.controlnet_mid_block(h) * conditioning_scale


# ==========================================================================================================
# DiT ControlNet
# ==========================================================================================================
def controlnet_depth(num_layers: int, depth_factor: float) -> int:
    """Blocks copied for a depth factor: ``ceil(depth_factor x num_layers)`` (Stable-V2A: 20% of 24 -> 5)."""
    if not 0 < depth_factor <= 1:
        raise ConfigError(f"depth_factor must be in (0, 1], got {depth_factor}")
    return max(1, math.ceil(depth_factor * num_layers - 1e-2))  # tolerate 0.333 x 6 -> 2


class DiTControlNetModel(ModelMixin, ConfigMixin):
    """DiT ControlNet (Stable-V2A): trainable copies of the first DiT blocks, zero-initialised projections.

    Args:
        num_layers: Copied blocks.
        dim, num_attention_heads, num_key_value_attention_heads, attention_head_dim, cross_attention_dim:
            The base ``StableAudioDiTBlock`` geometry (``dim = heads x head_dim``).
        control_dim: Size of the control tokens ``Tensor[B x T x control_dim]``.

    Shapes:
        ``forward(ctx: DiTContext, control: Tensor[B x T x control_dim], scale, run_block) -> [Tensor[B x
        T x dim]]``
        (one residual per copied block).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        *,
        num_layers: int,
        dim: int,
        num_attention_heads: int,
        num_key_value_attention_heads: int,
        attention_head_dim: int,
        cross_attention_dim: int,
        control_dim: int,
    ) -> None:
        super().__init__()
        from diffusers.models.transformers.stable_audio_transformer import StableAudioDiTBlock

        self.transformer_blocks = nn.ModuleList(
            StableAudioDiTBlock(
                dim=dim,
                num_attention_heads=num_attention_heads,
                num_key_value_attention_heads=num_key_value_attention_heads,
                attention_head_dim=attention_head_dim,
                cross_attention_dim=cross_attention_dim,
            )
            for _ in range(num_layers)
        )
        self.control_in = zero_module(nn.Linear(control_dim, dim))
        self.control_out = nn.ModuleList(zero_module(nn.Linear(dim, dim)) for _ in range(num_layers))

    @classmethod
    def from_transformer(
        cls, transformer: nn.Module, *, depth_factor: float, control_dim: int
    ) -> DiTControlNetModel:
        """Copy the first ``controlnet_depth(N, depth_factor)`` blocks of a ``StableAudioDiTModel``."""
        cfg = transformer.config
        n = controlnet_depth(cfg.num_layers, depth_factor)
        kwargs = {
            "num_layers": n,
            "dim": cfg.num_attention_heads * cfg.attention_head_dim,
            "num_attention_heads": cfg.num_attention_heads,
            "num_key_value_attention_heads": cfg.num_key_value_attention_heads,
            "attention_head_dim": cfg.attention_head_dim,
            "cross_attention_dim": cfg.cross_attention_dim,
            "control_dim": control_dim,
        }
        param = next(transformer.parameters())
        if param.is_meta:
            with empty_weights():
                return cls(**kwargs)
        net = cls(**kwargs)
        for dst, src in zip(net.transformer_blocks, transformer.transformer_blocks):
            dst.load_state_dict(src.state_dict())
        return _like(net, param)

    def forward(
        self, ctx, control: torch.Tensor, *, scale: float = 1.0, run_block=None
    ) -> list[torch.Tensor]:
        hidden = ctx.hidden
        if control.shape[:2] != (hidden.shape[0], hidden.shape[1] - 1):
            raise ConfigError(
                f"control tokens {tuple(control.shape)} do not match the {hidden.shape[1] - 1} latent "
                f"frames (need B x T x {self.config.control_dim})"
            )
        h = torch.cat([hidden[:, :1], hidden[:, 1:] + self.control_in(control.to(hidden.dtype))], dim=1)
        out = []
        for block, proj in zip(self.transformer_blocks, self.control_out):
            h = run_block(block, h, ctx)
            out.append(proj(h[:, 1:]) * scale)
        return out


# ==========================================================================================================
# Control encoders (1-D control on its grid -> latent grid)
# ==========================================================================================================
def _to_layout(x: torch.Tensor, layout: str, channels: int, freq_bins: int) -> torch.Tensor:
    """``Tensor[B x T x C*F]`` -> tokens (as is) or an image ``Tensor[B x C x T x F]``."""
    if layout == "tokens":
        return x
    b, t, _ = x.shape
    return x.reshape(b, t, channels, freq_bins).permute(0, 2, 1, 3)


class _ControlEncoder(ModelMixin, ConfigMixin):
    config_name = "config.json"

    @staticmethod
    def _check_layout(layout: str) -> None:
        if layout not in ("tokens", "image"):
            raise ConfigError(
                f"control encoder layout must be 'tokens' (DiT) or 'image' (UNet), got {layout!r}"
            )


class SeriesControlEncoder(_ControlEncoder):
    """A 1-D control with k frames per latent frame -> per-latent-frame MLP.

    Args:
        frames_per_latent: k (demonstrator RMS: 125 Hz / 25 Hz = 5; an onset track on the latent grid: 1).
        hidden_dim: MLP width.
        out_channels: Output size (tokens) or channels (image).
        layout: "tokens" -> ``Tensor[B x T x out_channels]`` (DiT); "image" -> ``Tensor[B x out_channels x
            T x F]``
            (UNet ControlNet).
        freq_bins: F for the image layout.

    Shapes:
        ``forward(series: Tensor[B x T_s], num_latent_frames) -> tokens or image`` (the series is resampled to
        ``num_latent_frames x k`` frames first; exact when already on that grid).
    """

    @register_to_config
    def __init__(
        self,
        *,
        frames_per_latent: int,
        hidden_dim: int = 64,
        out_channels: int = 64,
        layout: str = "tokens",
        freq_bins: int = 1,
    ) -> None:
        super().__init__()
        self._check_layout(layout)
        out = out_channels * (freq_bins if layout == "image" else 1)
        self.mlp = nn.Sequential(
            nn.Linear(frames_per_latent, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, out),
        )

    def forward(self, series: torch.Tensor, *, num_latent_frames: int, **_: Any) -> torch.Tensor:
        c = self.config
        grid = series_to_latent_grid(
            series.float(), num_latent_frames=num_latent_frames, frames_per_latent=c.frames_per_latent
        )
        dtype = self.mlp[0].weight.dtype
        return _to_layout(self.mlp(grid.to(dtype)), c.layout, c.out_channels, c.freq_bins)


class LocalFeatureControlEncoder(_ControlEncoder):
    """STA-V2A local temporal features e_lv (optionally + the onset track) -> latent grid (sec. II-C-2).

    Args:
        feature_dim: Size of the local features (OnsetHead ``e_lv`` or raw video features).
        series_channels: 1 to concatenate a 1-D control (the onset track, editable by the user), 0 otherwise.
        out_channels, layout, freq_bins: as :class:`SeriesControlEncoder`.

    Shapes:
        ``forward(series: Tensor[B x T_s] | None, *, features: Tensor[B x T_f x D], num_latent_frames)``: the
        features and the series are resampled (linear) to the latent frames, concatenated and projected.
    """

    @register_to_config
    def __init__(
        self,
        *,
        feature_dim: int,
        series_channels: int = 1,
        out_channels: int = 8,
        layout: str = "image",
        freq_bins: int = 16,
    ) -> None:
        super().__init__()
        self._check_layout(layout)
        out = out_channels * (freq_bins if layout == "image" else 1)
        self.proj = nn.Linear(feature_dim + series_channels, out)

    def forward(
        self,
        series: torch.Tensor | None,
        *,
        num_latent_frames: int,
        features: torch.Tensor | None = None,
        **_: Any,
    ) -> torch.Tensor:
        c = self.config
        if features is None:
            raise ConfigError("LocalFeatureControlEncoder needs local video features (STA-V2A e_lv)")
        x = resample_series(features.float(), num_latent_frames)
        if c.series_channels:
            if series is None:
                raise ConfigError(
                    "LocalFeatureControlEncoder was built with a control series; none was given"
                )
            x = torch.cat([x, resample_series(series.float(), num_latent_frames)[..., None]], dim=-1)
        x = self.proj(x.to(self.proj.weight.dtype))
        return _to_layout(x, c.layout, c.out_channels, c.freq_bins)


class VAEControlEncoder(_ControlEncoder):
    """A control encoded by the (frozen) audio VAE, then FC + SiLU (ReWaS sec. 4.2; Stable-V2A sec. IV-D-1).

    ``mode="tile_mel"`` (ReWaS): the energy on the mel grid is duplicated over the mel bins, read as a log-mel
    image, encoded by the mel VAE -> ``Tensor[B x C x T x F]`` -> 1x1 conv (FC over channels) + SiLU.
    ``mode="waveform"`` (Stable-V2A): the envelope is interpolated to the sample rate, used as a waveform,
    encoded by the waveform VAE -> ``Tensor[B x C x T]`` -> tokens ``Tensor[B x T x C]`` -> FC + SiLU.

    Args:
        mode: "tile_mel" or "waveform".
        latent_channels: The VAE's latent channels.
        out_channels: Output channels (image) / token size (tokens).
        fc: Apply the FC + SiLU (ReWaS); False passes the VAE latent through (Stable-V2A's ControlNet input
            is itself zero-projected).
        fc_axis: "channels" (FC over the latent channels) or "freq" (ReWaS' released code: one
            ``Linear(F, F)`` over the latent frequency bins, shared by every channel and frame; tile_mel
            only, ``out_channels == latent_channels``).
        freq_bins: F, the latent frequency bins (needed with ``fc_axis="freq"``).
    """

    @register_to_config
    def __init__(
        self,
        *,
        mode: str = "tile_mel",
        latent_channels: int = 8,
        out_channels: int = 8,
        fc: bool = True,
        fc_axis: str = "channels",
        freq_bins: int | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("tile_mel", "waveform"):
            raise ConfigError(f"VAEControlEncoder mode must be tile_mel or waveform, got {mode!r}")
        if fc_axis not in ("channels", "freq"):
            raise ConfigError(f"VAEControlEncoder fc_axis must be channels or freq, got {fc_axis!r}")
        if (not fc or fc_axis == "freq") and out_channels != latent_channels:
            raise ConfigError(
                "VAEControlEncoder without a channel FC outputs the VAE latent's channels: out_channels must "
                "equal latent_channels"
            )
        if fc and fc_axis == "freq":
            if mode != "tile_mel" or not freq_bins:
                raise ConfigError("VAEControlEncoder fc_axis='freq' needs mode='tile_mel' and freq_bins")
            self.proj = nn.Linear(int(freq_bins), int(freq_bins))
        else:
            self.proj = nn.Linear(latent_channels, out_channels) if fc else None

    def forward(self, series: torch.Tensor, *, num_latent_frames: int, codec=None, **_: Any) -> torch.Tensor:
        if codec is None:
            raise ConfigError(
                "VAEControlEncoder needs the pipeline's codec (its frozen VAE encodes the control)"
            )
        seq = codec.seq.with_duration(num_latent_frames * codec.seq.latent_hop / codec.seq.sample_rate)
        with torch.no_grad():
            if self.config.mode == "tile_mel":
                n_mel = num_latent_frames * seq.mel_frames_per_latent
                energy = resample_series(series.float(), n_mel)  # (B, T_mel)
                image = energy[:, None, :, None].expand(-1, 1, n_mel, seq.n_mels)
                z = codec.encode_mel_image(image).mode() * codec.scaling_factor  # (B, C, T, F)
            else:
                wav = resample_series(series.float(), num_latent_frames * seq.latent_hop)
                z = codec.encode_dist(wav).mode() * codec.scaling_factor  # (B, C, T)
        if self.proj is None:
            return z if z.ndim == 4 else z.transpose(1, 2)
        if self.config.fc_axis == "freq":  # ReWaS: FC over the frequency bins of every channel and frame
            if z.shape[-1] != self.proj.in_features:
                raise ConfigError(
                    f"VAEControlEncoder: the VAE latent has {z.shape[-1]} frequency bins, the FC expects "
                    f"{self.proj.in_features}"
                )
            return F.silu(self.proj(z.to(self.proj.weight.dtype)))
        if z.ndim == 4:  # FC over channels at every (t, f), image layout
            return F.silu(self.proj(z.permute(0, 2, 3, 1).to(self.proj.weight.dtype))).permute(0, 3, 1, 2)
        return F.silu(self.proj(z.transpose(1, 2).to(self.proj.weight.dtype)))


# ==========================================================================================================
# Adapter bundle
# ==========================================================================================================
class ControlAdapter(nn.Module):
    """One timing-control adapter: control encoder + ControlNet + user settings.

    Args:
        name: Adapter name (also the model-folder sub-folder suffix).
        encoder: A control encoder (see above).
        net: ``UNetControlNetModel`` or ``DiTControlNetModel``.
        control_kind: The ``TemporalControl`` kind it consumes ("energy", "rms", "onsets", "events"...).
        grid: The grid the control is resampled to before encoding ("control", "mel", "latent", "video").
        weight: Default user weight (``controlnet_conditioning_scale``); 0 disables it.
        start, end: Default window over the denoising progress, as fractions in [0, 1]: the adapter acts at
            step i of N when ``start <= i / N`` and ``(i + 1) / N <= end`` (diffusers'
            ``control_guidance_start/end``).
        features: Extra input of the encoder: None or "local" (STA-V2A local video features).
    """

    def __init__(
        self,
        *,
        name: str,
        encoder: nn.Module,
        net: nn.Module,
        control_kind: str,
        grid: str = "control",
        weight: float = 1.0,
        start: float = 0.0,
        end: float = 1.0,
        features: str | None = None,
    ) -> None:
        super().__init__()
        if grid not in CONTROL_GRIDS:
            raise ConfigError(
                f"adapter {name!r}: grid must be one of {', '.join(CONTROL_GRIDS)}, got {grid!r}"
            )
        check_window(start, end, what=f"adapter {name!r}")
        self.name = name
        self.encoder = encoder
        self.net = net
        self.control_kind = control_kind
        self.grid = grid
        self.weight = float(weight)
        self.start = float(start)
        self.end = float(end)
        self.features = features

    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings (saved in model_index.json)."""
        return {
            "name": self.name,
            "control_kind": self.control_kind,
            "grid": self.grid,
            "weight": self.weight,
            "start": self.start,
            "end": self.end,
            "features": self.features,
        }


def check_window(start: float, end: float, *, what: str = "adapter") -> None:
    """Validate a ``[start, end]`` denoising window (fractions of the schedule)."""
    if not (0.0 <= start <= end <= 1.0):
        raise ConfigError(
            f"{what}: need 0 <= start <= end <= 1 (fractions of the denoising steps), got "
            f"start={start}, end={end}"
        )


def adapter_active(step: int, num_steps: int, start: float, end: float) -> bool:
    """Whether an adapter with window ``[start, end]`` acts at ``step`` (0-based) of ``num_steps``."""
    return (step / num_steps) >= start and ((step + 1) / num_steps) <= end + 1e-9
