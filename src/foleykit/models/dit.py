"""Stable Audio Open family DiT denoiser: seconds_start / seconds_total conditioning, control residuals.

The networks are diffusers' ``StableAudioDiTModel`` (saved as ``transformer/``) and
``StableAudioProjectionModel`` (the seconds conditioners, saved as ``projection_model/``), so the published
Stable Audio Open 1.0 weights load unchanged. :class:`DiTDenoiser` re-runs the transformer's forward with
its own sub-modules so that ControlNet residuals can be added after each block (Stable-V2A sec. IV-D-1,
following PixArt's DiT ControlNet):

1. seconds_start / seconds_total -> number embeddings (B x 1 x D each); the cross-attention context is
   ``[tokens; s_start; s_total]`` and the global (prepended) token is ``global_proj([s_start, s_total]) +
   timestep embedding`` (Stable Audio Open "prepend conditioning").
2. latents -> ``preprocess_conv`` (+ residual) -> ``proj_in`` -> tokens; the global token is prepended.
3. ``num_layers`` blocks with rotary self-attention and cross-attention; control residuals are added to the
   latent tokens after block i.
4. ``proj_out`` -> drop the prepended token -> ``postprocess_conv`` (+ residual).

Mel latents ``Tensor[B x C x T x F]`` (the embedded demonstrator) are flattened to ``C*F`` channels over
``T`` tokens; waveform latents ``Tensor[B x C x T]`` are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from foleykit.errors import ConfigError
from foleykit.models.layers import Conditions, timestep_tensor
from foleykit.utils.meta import empty_weights

#: Embedded demonstrator: 12 blocks, width 256 (4 heads x 64) over the 128-channel flattened mel latent
#: (8 x 16), 250 tokens for 10 s; a CFG-batched step with its 3-block ControlNet takes ~0.13 s on 2 idle
#: CPU cores (benchmarks/bench_denoise_step.py), inside the 0.15-0.25 s budget of a 10 s clip in < 10 s.
DEMO_DIT: dict[str, Any] = {
    "sample_size": 250,
    "in_channels": 128,
    "out_channels": 128,
    "num_layers": 12,
    "attention_head_dim": 64,
    "num_attention_heads": 4,
    "num_key_value_attention_heads": 4,
    "cross_attention_dim": 256,
    "time_proj_dim": 256,
    "global_states_input_dim": 512,
    "cross_attention_input_dim": 256,
}
DEMO_PROJECTION: dict[str, Any] = {
    "text_encoder_dim": 256,
    "conditioning_dim": 256,
    "min_value": 0,
    "max_value": 512,
}
#: Debug twin over the 128-channel flattened mel latent.
DEBUG_DIT: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 128,
    "out_channels": 128,
    "num_layers": 2,
    "attention_head_dim": 8,
    "num_attention_heads": 2,
    "num_key_value_attention_heads": 1,
    "cross_attention_dim": 16,
    "time_proj_dim": 16,
    "global_states_input_dim": 32,
    "cross_attention_input_dim": 16,
}
DEBUG_PROJECTION: dict[str, Any] = {
    "text_encoder_dim": 16,
    "conditioning_dim": 16,
    "min_value": 0,
    "max_value": 512,
}


def build_dit(config: dict[str, Any], *, meta: bool = False):
    """A diffusers ``StableAudioDiTModel`` from a config dict (``_``-prefixed keys ignored)."""
    from diffusers import StableAudioDiTModel

    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    with empty_weights(meta):
        return StableAudioDiTModel(**kwargs)


def build_projection(config: dict[str, Any], *, meta: bool = False):
    """A diffusers ``StableAudioProjectionModel`` (text projection + seconds conditioners)."""
    from diffusers.pipelines.stable_audio.modeling_stable_audio import StableAudioProjectionModel

    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    with empty_weights(meta):
        return StableAudioProjectionModel(**kwargs)


@dataclass
class DiTContext:
    """What the blocks (and the DiT ControlNets) need, computed once per forward.

    Attributes:
        hidden: ``Tensor[B x (1 + T) x inner]`` input tokens (global token first).
        cross: ``Tensor[B x L x cross_dim]`` projected cross-attention context.
        cross_bias: Additive cross-attention mask ``Tensor[B x 1 x L]`` (0 valid, -1e4 padding), or None.
        rotary: Rotary embedding (cos, sin) for the self-attention over 1 + T positions.
    """

    hidden: torch.Tensor
    cross: torch.Tensor
    cross_bias: torch.Tensor | None
    rotary: tuple[torch.Tensor, torch.Tensor]


class DiTDenoiser(nn.Module):
    """Stable Audio Open DiT behind foleykit's denoiser interface.

    Args:
        transformer: diffusers ``StableAudioDiTModel``.
        projection: diffusers ``StableAudioProjectionModel``: ``text_projection`` (identity when the token
            size
            already equals the conditioning size) and the seconds_start / seconds_total number conditioners.
        timestep_scale: Multiplies the scheduler timestep before the Fourier time embedding (1/1000 for
            DDPM-style integer timesteps; 1.0 for Stable Audio Open's continuous EDM timesteps).

    Shapes:
        ``forward(sample: Tensor[B x C x T] or Tensor[B x C x T x F], timestep, conditions, controls)`` ->
        same
        shape as ``sample``. ``conditions.seconds_start`` / ``seconds_total`` (``Tensor[B]``) are required.
    """

    kind = "dit"

    def __init__(self, *, transformer: nn.Module, projection: nn.Module, timestep_scale: float = 1.0) -> None:
        super().__init__()
        cfg = transformer.config
        if projection.config.conditioning_dim * 2 != cfg.global_states_input_dim:
            raise ConfigError("DiT global_states_input_dim must be twice the seconds conditioning size")
        if projection.config.conditioning_dim != cfg.cross_attention_input_dim:
            raise ConfigError("DiT cross_attention_input_dim must equal the projection conditioning size")
        self.transformer = transformer
        self.projection = projection
        self.timestep_scale = float(timestep_scale)

    @property
    def in_channels(self) -> int:
        return int(self.transformer.config.in_channels)

    @property
    def inner_dim(self) -> int:
        cfg = self.transformer.config
        return int(cfg.num_attention_heads * cfg.attention_head_dim)

    @property
    def cross_attention_dim(self) -> int:
        """Token size expected in ``Conditions.tokens`` (the projection's text input size)."""
        return int(self.projection.config.text_encoder_dim)

    @property
    def global_dim(self) -> None:
        return None

    @property
    def num_layers(self) -> int:
        return len(self.transformer.transformer_blocks)

    # --- layout ---------------------------------------------------------------------------------------
    def _flatten(self, sample: torch.Tensor) -> torch.Tensor:
        if sample.ndim == 4:  # (B, C, T, F) -> (B, C*F, T)
            b, c, t, f = sample.shape
            sample = sample.permute(0, 1, 3, 2).reshape(b, c * f, t)
        if sample.ndim != 3 or sample.shape[1] != self.in_channels:
            raise ConfigError(
                f"DiTDenoiser expects latents with {self.in_channels} channels (C or C*F), got "
                f"shape {tuple(sample.shape)}"
            )
        return sample

    @staticmethod
    def _unflatten(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if like.ndim == 4:
            b, c, t, f = like.shape
            return x.reshape(b, c, f, t).permute(0, 1, 3, 2)
        return x

    # --- forward --------------------------------------------------------------------------------------
    def prepare(
        self, sample: torch.Tensor, timestep: torch.Tensor | float, conditions: Conditions
    ) -> DiTContext:
        """Embed time, seconds and tokens; returns the block inputs (see :class:`DiTContext`)."""
        from diffusers.models.embeddings import get_1d_rotary_pos_embed

        tr = self.transformer
        x = self._flatten(sample)
        b, _, t_len = x.shape
        if conditions.seconds_start is None or conditions.seconds_total is None:
            raise ConfigError(
                "DiTDenoiser needs Conditions.seconds_start and seconds_total (Stable Audio timing)"
            )
        dtype = tr.proj_in.weight.dtype
        s_start = self.projection.start_number_conditioner(conditions.seconds_start.float()).to(
            dtype
        )  # (B,1,D)
        s_total = self.projection.end_number_conditioner(conditions.seconds_total.float()).to(dtype)
        parts, masks = [], []
        if conditions.tokens is not None:
            tok = self.projection.text_projection(conditions.tokens.to(dtype))
            parts.append(tok)
            masks.append(
                conditions.mask
                if conditions.mask is not None
                else torch.ones(tok.shape[:2], dtype=torch.bool, device=tok.device)
            )
        parts += [s_start, s_total]
        masks.append(torch.ones(b, 2, dtype=torch.bool, device=x.device))
        cross = tr.cross_attention_proj(torch.cat(parts, dim=1))
        mask = torch.cat([m.to(x.device) for m in masks], dim=1)
        cross_bias = None if bool(mask.all()) else ((~mask).to(dtype) * -10000.0)[:, None, :]
        glob = tr.global_proj(torch.cat([s_start, s_total], dim=2))  # (B, 1, inner)
        t = timestep_tensor(timestep, b, x.device).float() * self.timestep_scale
        glob = glob + tr.timestep_proj(tr.time_proj(t).to(dtype))[:, None]
        x = x.to(dtype)
        h = tr.proj_in((tr.preprocess_conv(x) + x).transpose(1, 2))  # (B, T, inner)
        hidden = torch.cat([glob, h], dim=1)
        rotary = get_1d_rotary_pos_embed(
            tr.config.attention_head_dim // 2, t_len + 1, use_real=True, repeat_interleave_real=False
        )
        rotary = tuple(r.to(x.device) for r in rotary)
        return DiTContext(hidden=hidden, cross=cross, cross_bias=cross_bias, rotary=rotary)

    def run_block(self, block: nn.Module, hidden: torch.Tensor, ctx: DiTContext) -> torch.Tensor:
        """One ``StableAudioDiTBlock`` with the shared context (gradient-checkpointed when the transformer has
        ``enable_gradient_checkpointing()`` on and gradients are enabled)."""
        if torch.is_grad_enabled() and getattr(self.transformer, "gradient_checkpointing", False):
            from torch.utils.checkpoint import checkpoint

            return checkpoint(block, hidden, None, ctx.cross, ctx.cross_bias, ctx.rotary, use_reentrant=False)
        return block(
            hidden,
            attention_mask=None,
            encoder_hidden_states=ctx.cross,
            encoder_attention_mask=ctx.cross_bias,
            rotary_embedding=ctx.rotary,
        )

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        conditions: Conditions,
        controls: list[tuple[nn.Module, torch.Tensor, float]] | None = None,
    ) -> torch.Tensor:
        """Predict the model output; ``controls`` = [(DiTControlNetModel, tokens B x T x D_c, scale)]."""
        tr = self.transformer
        ctx = self.prepare(sample, timestep, conditions)
        residuals: list[torch.Tensor] = []
        for net, features, scale in controls or []:
            for i, r in enumerate(net(ctx, features, scale=scale, run_block=self.run_block)):
                if i < len(residuals):
                    residuals[i] = residuals[i] + r
                else:
                    residuals.append(r)
        if len(residuals) > self.num_layers:
            raise ConfigError(f"{len(residuals)} control residuals for a DiT with {self.num_layers} blocks")
        h = ctx.hidden
        for i, block in enumerate(tr.transformer_blocks):
            h = self.run_block(block, h, ctx)
            if i < len(residuals):
                h = torch.cat([h[:, :1], h[:, 1:] + residuals[i]], dim=1)
        h = tr.proj_out(h).transpose(1, 2)[:, :, 1:]  # (B, C, T)
        h = tr.postprocess_conv(h) + h
        return self._unflatten(h, sample)
