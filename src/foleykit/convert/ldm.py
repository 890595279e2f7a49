"""Latent-diffusion (CompVis / AudioLDM-training) state dicts -> diffusers layouts.

The AudioLDM family publishes its networks in the original latent-diffusion naming: the denoiser
``openaimodel.UNetModel`` (``input_blocks`` / ``middle_block`` / ``output_blocks`` of ``TimestepEmbedSequential``
lists holding ``ResBlock``, ``SpatialTransformer``, ``Downsample`` / ``Upsample``; ``time_embed``; AudioLDM's
``film_emb`` whose output is concatenated to the time embedding), ReWaS' ControlNet ``Adapter`` (the encoder
half of the same UNet + ``zero_convs`` / ``middle_block_out`` + ``input_hint_block``) and the mel VAE
(``encoder.down[i].block[j]``, ``mid.attn_1``, ``decoder.up[i]`` counted from the lowest resolution,
``quant_conv`` / ``post_quant_conv``). The functions here read the *structure* from the tensors themselves
(channel widths, blocks per level, which levels have attention) so any size converts, and rename every
tensor to the matching diffusers module; a tensor that nothing consumes is an error.

Not recoverable from shapes: the number of attention heads (``num_head_channels``, 32 in AudioLDM-M and
ReWaS) — an argument.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from foleykit.errors import ModelError

Tensors = dict[str, torch.Tensor]

#: ``ResBlock`` (openaimodel) -> diffusers ``ResnetBlock2D`` leaf names.
RESNET_NAMES = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}
#: LDM autoencoder ``ResnetBlock`` -> diffusers ``ResnetBlock2D``.
VAE_RESNET_NAMES = {
    "norm1": "norm1",
    "conv1": "conv1",
    "norm2": "norm2",
    "conv2": "conv2",
    "nin_shortcut": "conv_shortcut",
}
#: LDM autoencoder ``AttnBlock`` (1x1 convs) -> diffusers ``Attention`` (linear layers).
VAE_ATTN_NAMES = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


class Renamer:
    """Collects ``new name -> tensor`` from a source state dict and remembers which source keys were used."""

    def __init__(self, sd: Mapping[str, torch.Tensor], *, what: str) -> None:
        self.sd, self.what = dict(sd), what
        self.out: Tensors = {}
        self.used: set[str] = set()

    def take(self, old: str, new: str, *, optional: bool = False) -> None:
        """Move every tensor under module ``old`` (``old.weight``, ``old.bias``...) to module ``new``."""
        found = False
        for k, v in self.sd.items():
            if k.startswith(old + "."):
                self.out[new + k[len(old) :]] = v
                self.used.add(k)
                found = True
        if not found and not optional:
            raise ModelError(f"{self.what}: expected weights under {old!r}; is it the right file?")

    def take_leaves(self, old: str, new: str, names: Mapping[str, str]) -> None:
        """Move ``old.<a>.*`` to ``new.<names[a]>.*`` for each present leaf module ``a``."""
        for a, b in names.items():
            self.take(f"{old}.{a}", f"{new}.{b}", optional=True)

    def check_all_used(self) -> Tensors:
        rest = sorted(k for k in self.sd if k not in self.used)
        if rest:
            raise ModelError(
                f"{self.what}: {len(rest)} tensors have no place in the converted model (e.g. {rest[:4]}); the "
                "file's layout is not the one this converter reads"
            )
        return self.out


# ==========================================================================================================
# openaimodel UNet (AudioLDM, ReWaS) and ReWaS' ControlNet adapter
# ==========================================================================================================
def _indices(sd: Mapping[str, Any], prefix: str) -> list[int]:
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for k in sd if (m := pat.match(k))})


def unet_layout(sd: Mapping[str, torch.Tensor], *, what: str = "UNet") -> dict[str, Any]:
    """Structure of an openaimodel UNet / adapter state dict (keys without the model prefix).

    Returns:
        ``model_channels``, ``in_channels``, ``out_channels`` (None for an adapter), ``channel_mult``,
        ``num_res_blocks``, ``attention`` (per level), ``film_dim`` (None without ``film_emb``),
        ``time_embed_dim``, and ``blocks``: the input blocks as (index, kind, level, j).
    """
    if "input_blocks.0.0.weight" not in sd:
        raise ModelError(f"{what}: no 'input_blocks.0.0.weight': not an openaimodel UNet state dict")
    conv_in = sd["input_blocks.0.0.weight"]
    mc = int(conv_in.shape[0])
    blocks, level, j, widths, attn, counts = [], 0, 0, [], [], []
    for i in _indices(sd, "input_blocks")[1:]:
        p = f"input_blocks.{i}"
        if f"{p}.0.op.weight" in sd:
            blocks.append((i, "down", level, 0))
            counts.append(j)
            level, j = level + 1, 0
            continue
        if f"{p}.0.in_layers.0.weight" not in sd:
            raise ModelError(f"{what}: input block {i} is neither a ResBlock nor a Downsample")
        if j == 0:
            widths.append(int(sd[f"{p}.0.in_layers.2.weight"].shape[0]))
            attn.append(f"{p}.1.proj_in.weight" in sd)
        blocks.append((i, "res", level, j))
        j += 1
    counts.append(j)
    if len(set(counts)) != 1:
        raise ModelError(f"{what}: levels have different numbers of ResBlocks ({counts})")
    if any(w % mc for w in widths):
        raise ModelError(f"{what}: level widths {widths} are not multiples of {mc}")
    film = sd.get("film_emb.weight")
    return {
        "model_channels": mc,
        "in_channels": int(conv_in.shape[1]),
        "out_channels": int(sd["out.2.weight"].shape[0]) if "out.2.weight" in sd else None,
        "channel_mult": [w // mc for w in widths],
        "num_res_blocks": counts[0],
        "attention": attn,
        "film_dim": None if film is None else int(film.shape[1]),
        "time_embed_dim": int(sd["time_embed.0.weight"].shape[0]),
        "blocks": blocks,
    }


def unet_config(layout: Mapping[str, Any], *, num_head_channels: int = 32, sample_size: int = 128) -> dict:
    """diffusers ``UNet2DConditionModel`` kwargs equivalent to an openaimodel layout.

    The attention layers of AudioLDM have no context (``context_dim=None``: the second attention attends to
    the hidden states themselves), which diffusers reproduces with a per-level ``cross_attention_dim`` equal
    to the block width and ``encoder_hidden_states=None``. ``attention_head_dim`` is diffusers' (misnamed)
    number of heads per level.
    """
    widths = [layout["model_channels"] * m for m in layout["channel_mult"]]
    if any(w % num_head_channels for w in widths):
        raise ModelError(f"block widths {widths} are not multiples of num_head_channels={num_head_channels}")
    down = ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in layout["attention"]]
    up = ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in layout["attention"]][::-1]
    cfg: dict[str, Any] = {
        "sample_size": sample_size,
        "in_channels": layout["in_channels"],
        "out_channels": layout["out_channels"] or layout["in_channels"],
        "down_block_types": down,
        "up_block_types": up,
        "block_out_channels": widths,
        "layers_per_block": layout["num_res_blocks"],
        "cross_attention_dim": widths,
        "attention_head_dim": [w // num_head_channels for w in widths],
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "use_linear_projection": False,
        "upcast_attention": False,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
    }
    if layout["film_dim"] is not None:
        cfg.update(
            class_embed_type="simple_projection",
            projection_class_embeddings_input_dim=layout["film_dim"],
            class_embeddings_concat=True,
        )
    return cfg


def _encoder_half(r: Renamer, layout: Mapping[str, Any]) -> None:
    r.take("time_embed.0", "time_embedding.linear_1")
    r.take("time_embed.2", "time_embedding.linear_2")
    if layout["film_dim"] is not None:
        r.take("film_emb", "class_embedding")
    r.take("input_blocks.0.0", "conv_in")
    for i, kind, level, j in layout["blocks"]:
        if kind == "down":
            r.take(f"input_blocks.{i}.0.op", f"down_blocks.{level}.downsamplers.0.conv")
            continue
        r.take_leaves(f"input_blocks.{i}.0", f"down_blocks.{level}.resnets.{j}", RESNET_NAMES)
        if layout["attention"][level]:
            r.take(f"input_blocks.{i}.1", f"down_blocks.{level}.attentions.{j}")
    r.take_leaves("middle_block.0", "mid_block.resnets.0", RESNET_NAMES)
    r.take("middle_block.1", "mid_block.attentions.0")
    r.take_leaves("middle_block.2", "mid_block.resnets.1", RESNET_NAMES)


def convert_unet(sd: Mapping[str, torch.Tensor], layout: Mapping[str, Any]) -> Tensors:
    """openaimodel UNet state dict (no prefix) -> diffusers ``UNet2DConditionModel`` state dict."""
    r = Renamer(sd, what="UNet")
    _encoder_half(r, layout)
    n_levels, per = len(layout["channel_mult"]), layout["num_res_blocks"] + 1
    for i in _indices(sd, "output_blocks"):
        up, j = divmod(i, per)
        if up >= n_levels:
            raise ModelError(f"UNet: output block {i} is beyond {n_levels} levels")
        p, q = f"output_blocks.{i}", f"up_blocks.{up}"
        r.take_leaves(f"{p}.0", f"{q}.resnets.{j}", RESNET_NAMES)
        k = 1
        if layout["attention"][n_levels - 1 - up]:
            r.take(f"{p}.1", f"{q}.attentions.{j}")
            k = 2
        if j == per - 1 and up < n_levels - 1:
            r.take(f"{p}.{k}.conv", f"{q}.upsamplers.0.conv")
    r.take("out.0", "conv_norm_out")
    r.take("out.2", "conv_out")
    return r.check_all_used()


def convert_rewas_adapter(
    sd: Mapping[str, torch.Tensor], layout: Mapping[str, Any]
) -> tuple[Tensors, Tensors]:
    """ReWaS ``Adapter`` state dict -> (``UNetControlNetModel`` state dict, control-encoder FC state dict).

    ``zero_convs[k]`` become ``controlnet_down_blocks[k]``, ``middle_block_out`` ``controlnet_mid_block``;
    the hint block (``Rearrange``, ``Linear(F, F)``, SiLU, ``Rearrange``, zero 3x3 conv) splits into the
    control encoder's frequency FC (``VAEControlEncoder(fc_axis="freq")``) and the ControlNet's single-conv
    control embedding.
    """
    hint_fc = {k: v for k, v in sd.items() if k.startswith("input_hint_block.1.")}
    if not hint_fc or "input_hint_block.4.weight" not in sd:
        raise ModelError(
            "ReWaS adapter: no input_hint_block.1 (Linear over the frequency bins) / input_hint_block.4 (zero "
            "conv): not ReWaS' released ControlNet layout"
        )
    rest = {k: v for k, v in sd.items() if not k.startswith("input_hint_block.1.")}
    r = Renamer(rest, what="ReWaS adapter")
    _encoder_half(r, layout)
    r.take("input_hint_block.4", "controlnet_cond_embedding")
    for k in _indices(sd, "zero_convs"):
        r.take(f"zero_convs.{k}.0", f"controlnet_down_blocks.{k}")
    r.take("middle_block_out.0", "controlnet_mid_block")
    fc = {"proj." + k[len("input_hint_block.1.") :]: v for k, v in hint_fc.items()}
    return r.check_all_used(), fc


def ema_weights(sd: Mapping[str, torch.Tensor], prefix: str = "model.diffusion_model.") -> Tensors | None:
    """The EMA copy of a LitEma-trained denoiser (``model_ema.<name without dots>``), keyed like ``prefix``.

    Returns None when the checkpoint holds no EMA copy of every denoiser weight.
    """
    out = {}
    for k in sd:
        if k.startswith(prefix):
            flat = "model_ema." + k[len("model.") :].replace(".", "")
            if flat not in sd:
                return None
            out[k[len(prefix) :]] = sd[flat]
    return out or None


# ==========================================================================================================
# LDM autoencoder (AudioLDM mel VAE)
# ==========================================================================================================
def vae_layout(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Structure of an LDM ``AutoencoderKL`` state dict (keys without the model prefix)."""
    if "encoder.conv_in.weight" not in sd or "post_quant_conv.weight" not in sd:
        raise ModelError("VAE: no encoder.conv_in / post_quant_conv: not a latent-diffusion AutoencoderKL")
    levels = _indices(sd, "encoder.down")
    widths = [int(sd[f"encoder.down.{i}.block.0.conv1.weight"].shape[0]) for i in levels]
    return {
        "in_channels": int(sd["encoder.conv_in.weight"].shape[1]),
        "out_channels": int(sd["decoder.conv_out.weight"].shape[0]),
        "block_out_channels": widths,
        "layers_per_block": len(_indices(sd, "encoder.down.0.block")),
        "latent_channels": int(sd["post_quant_conv.weight"].shape[1]),
        "z_channels": int(sd["decoder.conv_in.weight"].shape[1]),
    }


def vae_config(layout: Mapping[str, Any], *, scaling_factor: float, sample_size: int = 512) -> dict:
    """diffusers ``AutoencoderKL`` kwargs for an LDM autoencoder layout."""
    if layout["z_channels"] != layout["latent_channels"]:
        raise ModelError(
            f"VAE: z_channels {layout['z_channels']} != embed_dim {layout['latent_channels']} has no diffusers "
            "AutoencoderKL equivalent"
        )
    n = len(layout["block_out_channels"])
    return {
        "in_channels": layout["in_channels"],
        "out_channels": layout["out_channels"],
        "down_block_types": ["DownEncoderBlock2D"] * n,
        "up_block_types": ["UpDecoderBlock2D"] * n,
        "block_out_channels": layout["block_out_channels"],
        "layers_per_block": layout["layers_per_block"],
        "latent_channels": layout["latent_channels"],
        "norm_num_groups": 32,
        "sample_size": sample_size,
        "scaling_factor": float(scaling_factor),
    }


def convert_vae(sd: Mapping[str, torch.Tensor], layout: Mapping[str, Any]) -> Tensors:
    """LDM autoencoder state dict (no prefix) -> diffusers ``AutoencoderKL`` state dict."""
    r = Renamer(sd, what="VAE")
    n = len(layout["block_out_channels"])
    for side in ("encoder", "decoder"):
        r.take(f"{side}.conv_in", f"{side}.conv_in")
        r.take_leaves(f"{side}.mid.block_1", f"{side}.mid_block.resnets.0", VAE_RESNET_NAMES)
        r.take_leaves(f"{side}.mid.attn_1", f"{side}.mid_block.attentions.0", VAE_ATTN_NAMES)
        r.take_leaves(f"{side}.mid.block_2", f"{side}.mid_block.resnets.1", VAE_RESNET_NAMES)
        r.take(f"{side}.norm_out", f"{side}.conv_norm_out")
        r.take(f"{side}.conv_out", f"{side}.conv_out")
    for i in range(n):
        for j in _indices(sd, f"encoder.down.{i}.block"):
            r.take_leaves(
                f"encoder.down.{i}.block.{j}", f"encoder.down_blocks.{i}.resnets.{j}", VAE_RESNET_NAMES
            )
        r.take(
            f"encoder.down.{i}.downsample.conv", f"encoder.down_blocks.{i}.downsamplers.0.conv", optional=True
        )
        up = (
            n - 1 - i
        )  # the decoder's up[i] counts from the lowest resolution, diffusers' up_blocks from the top
        for j in _indices(sd, f"decoder.up.{i}.block"):
            r.take_leaves(
                f"decoder.up.{i}.block.{j}", f"decoder.up_blocks.{up}.resnets.{j}", VAE_RESNET_NAMES
            )
        r.take(f"decoder.up.{i}.upsample.conv", f"decoder.up_blocks.{up}.upsamplers.0.conv", optional=True)
    r.take("quant_conv", "quant_conv")
    r.take("post_quant_conv", "post_quant_conv")
    out = r.check_all_used()
    for k, v in list(out.items()):  # 1x1 convs of the attention block -> linear layers
        if ".attentions.0." in k and k.endswith(".weight") and v.ndim == 4:
            out[k] = v[:, :, 0, 0]
    return out
