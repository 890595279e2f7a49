"""UNet denoisers (diffusers ``UNet2DConditionModel``: AudioLDM / Tango / Stable-Diffusion family).

The latent is the mel-VAE latent seen as an image ``Tensor[B x C x T_lat x F_lat]`` (time = height). Two
conditioning routes exist, both supported:

- ``film``: AudioLDM feeds one pooled CLAP embedding through ``class_labels`` (``class_embed_type =
  "simple_projection"``, concatenated to the time embedding) and runs its attention layers as
  self-attention (``encoder_hidden_states=None``); ReWaS keeps this backbone (AudioLDM-M).
- ``cross_attention``: the tokens c = [text; video; audio] (STA-V2A eq. 5, VTA-LDM) are the keys/values of
  the cross-attention layers.

Control adapters (``foleykit.models.control_adapter.UNetControlNetModel``) return ControlNet residuals that
are added to the skip connections and to the mid block (diffusers' ``down_block_additional_residuals``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from foleykit.errors import ConfigError
from foleykit.models.layers import Conditions, timestep_tensor
from foleykit.utils.meta import empty_weights

#: A small cross-attention UNet for tests: 8 latent channels, 2 levels.
DEBUG_UNET: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 8,
    "out_channels": 8,
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "cross_attention_dim": 16,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
}
#: Debug twin of the AudioLDM layout (FiLM class embedding concatenated to time, per-level attention dims).
DEBUG_AUDIOLDM_UNET: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 8,
    "out_channels": 8,
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "cross_attention_dim": (16, 32),
    "attention_head_dim": 4,
    "norm_num_groups": 8,
    "class_embed_type": "simple_projection",
    "projection_class_embeddings_input_dim": 16,
    "class_embeddings_concat": True,
}
#: Stable-Diffusion-2 style UNet with 8 latent channels (STA-V2A: "stable diffusion U-Net architecture with
#: 8 channels and a cross-attention dimension of 1024"; VTA-LDM uses the same family with 2048).
SD_UNET_8CH: dict[str, Any] = {
    "sample_size": 128,
    "in_channels": 8,
    "out_channels": 8,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "down_block_types": (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 1024,
    "attention_head_dim": (5, 10, 20, 20),
    "use_linear_projection": True,
}


def build_unet(config: dict[str, Any], *, meta: bool = False):
    """A diffusers ``UNet2DConditionModel`` from a config dict (``_``-prefixed keys ignored)."""
    from diffusers import UNet2DConditionModel

    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    with empty_weights(meta):
        return UNet2DConditionModel(**kwargs)


class UNetDenoiser(nn.Module):
    """A ``UNet2DConditionModel`` behind foleykit's denoiser interface.

    Args:
        unet: The diffusers UNet (its published layout is kept: ``self.unet`` saves as ``unet/``).
        conditioning: "cross_attention" (tokens are the cross-attention context), "film" (only
            ``Conditions.global_embed`` through ``class_labels``; AudioLDM) or "both".

    Shapes:
        ``forward(sample: Tensor[B x C x T x F], timestep: Tensor[B] | float, conditions, controls)
        -> Tensor[B x C x T x F]`` (the model output in the scheduler's prediction type).
    """

    kind = "unet"

    def __init__(self, *, unet: nn.Module, conditioning: str = "cross_attention") -> None:
        super().__init__()
        if conditioning not in ("cross_attention", "film", "both"):
            raise ConfigError(
                f"UNetDenoiser: conditioning must be cross_attention, film or both, got {conditioning!r}"
            )
        if conditioning in ("film", "both") and unet.config.class_embed_type is None:
            raise ConfigError(
                "UNetDenoiser: FiLM conditioning needs a UNet with class_embed_type set (AudioLDM layout)"
            )
        self.unet = unet
        self.conditioning = conditioning

    @property
    def in_channels(self) -> int:
        return int(self.unet.config.in_channels)

    @property
    def cross_attention_dim(self) -> int | None:
        """Token size the cross-attention expects (None when the UNet is FiLM-only)."""
        if self.conditioning == "film":
            return None
        d = self.unet.config.cross_attention_dim
        if isinstance(d, (list, tuple)):
            if len(set(d)) != 1:
                raise ConfigError(
                    "per-level cross_attention_dim values differ; use FiLM conditioning with this UNet"
                )
            d = d[0]
        return int(d)

    @property
    def global_dim(self) -> int | None:
        """Size of the FiLM embedding (``projection_class_embeddings_input_dim``), or None."""
        if self.conditioning == "cross_attention":
            return None
        return int(self.unet.config.projection_class_embeddings_input_dim)

    def unet_kwargs(self, conditions: Conditions) -> dict[str, Any]:
        """The conditioning keyword arguments shared by the UNet and its ControlNets."""
        kw: dict[str, Any] = {
            "encoder_hidden_states": None,
            "encoder_attention_mask": None,
            "class_labels": None,
        }
        if self.conditioning in ("cross_attention", "both"):
            if conditions.tokens is None:
                raise ConfigError("this UNet is conditioned by cross-attention but Conditions.tokens is None")
            kw["encoder_hidden_states"] = conditions.tokens
            kw["encoder_attention_mask"] = conditions.mask
        if self.conditioning in ("film", "both"):
            if conditions.global_embed is None:
                raise ConfigError(
                    "this UNet is FiLM-conditioned (AudioLDM) but Conditions.global_embed is None"
                )
            kw["class_labels"] = conditions.global_embed
        return kw

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        conditions: Conditions,
        controls: list[tuple[nn.Module, torch.Tensor, float]] | None = None,
    ) -> torch.Tensor:
        """Predict the model output; ``controls`` = [(UNetControlNetModel, control features, scale)]."""
        if sample.ndim != 4:
            raise ConfigError(
                f"UNetDenoiser expects mel latents B x C x T x F, got shape {tuple(sample.shape)}"
            )
        t = timestep_tensor(timestep, sample.shape[0], sample.device)
        kw = self.unet_kwargs(conditions)
        down, mid = None, None
        for net, features, scale in controls or []:
            d, m = net(sample, t, conditioning=features, conditioning_scale=scale, **kw)
            down = d if down is None else tuple(a + b for a, b in zip(down, d))
            mid = m if mid is None else mid + m
        return self.unet(
            sample,
            t,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
            return_dict=False,
            **kw,
        )[0]
