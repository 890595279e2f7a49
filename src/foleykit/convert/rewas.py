"""``foleykit models convert rewas``: ReWaS' released files -> a foleykit model folder.

Released files (see docs/models.md, "Converting ReWaS"):

- ``audioldm_m_rewas_vggsound.ckpt`` (required): the ReWaS latent-diffusion model: ``model.diffusion_model.*``
  (AudioLDM-M UNet; ``model_ema.*`` its EMA copy, which ReWaS samples with), ``control_model.*`` (the energy
  ControlNet ``Adapter``), ``scale_factor``, and usually ``first_stage_model.*`` (mel VAE + HiFi-GAN) and
  ``cond_stage_models.0.model.*`` (LAION-CLAP).
- ``vae_mel_16k_64bins.ckpt``, ``hifigan_16k_64bins.ckpt``, ``clap_music_speech_audioset_epoch_15_esc_89.98.pt``
  (AudioLDM-training): only needed when the ReWaS checkpoint lacks those parts.
- A RoBERTa tokenizer folder (roberta-base's ``vocab.json`` + ``merges.txt``, e.g. the ``tokenizer/`` folder of
  ``cvssp/audioldm-m-full``): the CLAP text tower's vocabulary is not in any checkpoint.
- ``phi_vggsound.ckpt`` + Synchformer's ``24-01-04T16-39-21.pt``: the energy predictor and the video features it
  reads. Without them the folder generates from a timing curve or a reference recording only.

The folder generates like ReWaS' released inference: DDIM 200 steps with eta 1, guidance 3 in the standard
form ``eps_u + 3 (eps_c - eps_u)``, CLAP("") as the unconditional text embedding, 5 s clips, phi's energy
smoothed (Savitzky-Golay 9/2) and resampled to the mel frames. Two deliberate differences: the control is
encoded with the VAE posterior's mode (ReWaS draws a sample), and the unconditional branch of guidance uses
the same control features as the conditional one (ReWaS feeds its ControlNet a zero latent there).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch

from foleykit.convert.checkpoint import load_exact, strip_prefix
from foleykit.convert.common import (
    build_vae,
    build_vocoder,
    first_stage,
    mel_codec,
    pick,
    read_weights,
    scale_factor_of,
)
from foleykit.errors import ConfigError, ModelError

WHAT = "ReWaS checkpoint"


def rewas_unet(sd: dict[str, torch.Tensor], *, use_ema: bool, num_head_channels: int):
    """(diffusers UNet, its config, layout) from the latent-diffusion state dict."""
    from diffusers import UNet2DConditionModel

    from foleykit.convert.ldm import convert_unet, ema_weights, unet_config, unet_layout

    unet_sd = (ema_weights(sd) if use_ema else None) or strip_prefix(sd, "model.diffusion_model.")
    if not unet_sd:
        raise ModelError(
            f"{WHAT}: no model.diffusion_model.* weights (the AudioLDM-M UNet); is it the ReWaS .ckpt?"
        )
    layout = unet_layout(unet_sd, what="ReWaS UNet")
    cfg = unet_config(layout, num_head_channels=num_head_channels)
    unet = UNet2DConditionModel(**cfg)
    load_exact(unet, convert_unet(unet_sd, layout), what="ReWaS UNet")
    return unet.eval(), cfg, layout


def rewas_adapter(sd: dict[str, torch.Tensor], unet_cfg: dict[str, Any], unet_layout_: dict[str, Any]):
    """The energy adapter: (``VAEControlEncoder`` with the frequency FC, ``UNetControlNetModel``)."""
    from foleykit.convert.ldm import convert_rewas_adapter, unet_layout
    from foleykit.models.control_adapter import UNetControlNetModel, VAEControlEncoder

    ctrl = strip_prefix(sd, "control_model.")
    if not ctrl:
        raise ModelError(
            f"{WHAT}: no control_model.* weights (the energy ControlNet); is it the ReWaS .ckpt?"
        )
    layout = unet_layout(ctrl, what="ReWaS adapter")
    same = ("model_channels", "channel_mult", "num_res_blocks", "attention", "film_dim")
    if any(layout[k] != unet_layout_[k] for k in same):
        raise ModelError(f"{WHAT}: the ControlNet's structure does not match the UNet's")
    net_sd, fc_sd = convert_rewas_adapter(ctrl, layout)
    hint = ctrl["input_hint_block.4.weight"]  # (block0, latent channels, 3, 3)
    net = UNetControlNetModel(
        unet_config=unet_cfg, conditioning_channels=int(hint.shape[1]), conditioning_embedding_channels=()
    )
    load_exact(net, net_sd, what="ReWaS ControlNet")
    f = int(fc_sd["proj.weight"].shape[0])
    enc = VAEControlEncoder(
        mode="tile_mel",
        latent_channels=int(hint.shape[1]),
        out_channels=int(hint.shape[1]),
        fc=True,
        fc_axis="freq",
        freq_bins=f,
    )
    load_exact(enc, fc_sd, what="ReWaS control encoder")
    return enc.eval(), net.eval()


def convert_rewas(
    *,
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    tokenizer: str | os.PathLike,
    phi: str | os.PathLike | None = None,
    synchformer: str | os.PathLike | None = None,
    vae: str | os.PathLike | None = None,
    vocoder: str | os.PathLike | None = None,
    clap: str | os.PathLike | None = None,
    trust_pickle: bool = False,
    use_ema: bool = True,
    scale_factor: float | None = None,
    num_head_channels: int = 32,
    phi_heads: int = 8,
    synchformer_heads: int = 12,
    vocoder_config: dict[str, Any] | None = None,
    clap_config: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Convert ReWaS' released files into a foleykit model folder at ``output`` (see the module docstring).

    Args:
        checkpoint, tokenizer, phi, synchformer, vae, vocoder, clap: The released files / folders.
        trust_pickle: Allow full unpickling of files the restricted loader refuses (trusted sources only).
        use_ema: Take the UNet's EMA weights when the checkpoint has them (what ReWaS samples with).
        scale_factor: Latent scale when the checkpoint has no ``scale_factor``.
        num_head_channels, phi_heads, synchformer_heads: Attention geometry not stored in the tensors
            (ReWaS: 32 channels per head in the UNet, 8 heads in phi, 12 in Synchformer).
        vocoder_config, clap_config: Overrides of the HiFi-GAN / CLAP text configs (other sizes than released).
        dtype: Store the weights in this dtype (e.g. ``torch.float16``); None keeps float32.

    Returns:
        The folder (``VideoToAudioPipeline.from_pretrained(output)``, ``foleykit generate --model output``).
    """
    from foleykit.convert.audio_parts import build_clap_text, clap_text_config, convert_clap_text
    from foleykit.convert.towers import ClapTowerTextEncoder, load_tokenizer

    if (phi is None) != (synchformer is None):
        raise ConfigError(
            "ReWaS' phi reads Synchformer features: give both --phi (phi_vggsound.ckpt) and --synchformer "
            "(24-01-04T16-39-21.pt), or neither (the model then generates from timing curves / recordings only)"
        )
    sd = read_weights(checkpoint, trust_pickle=trust_pickle, what=WHAT)
    unet, unet_cfg, layout = rewas_unet(sd, use_ema=use_ema, num_head_channels=num_head_channels)
    encoder, net = rewas_adapter(sd, unet_cfg, layout)
    scale = scale_factor_of(sd, scale_factor, what=WHAT)

    # mel VAE and HiFi-GAN: inside the ReWaS checkpoint, else AudioLDM-training's separate files
    vae_in, voc_in = first_stage(sd)
    vae_file = read_weights(vae, trust_pickle=trust_pickle, what="VAE checkpoint") if vae else {}
    vae_f, voc_f = first_stage(vae_file) if vae_file else ({}, {})
    voc_file = read_weights(vocoder, trust_pickle=trust_pickle, what="HiFi-GAN checkpoint") if vocoder else {}
    vae_sd = pick(
        (str(vae), vae_f),
        (str(checkpoint), vae_in),
        what="mel VAE",
        need="Give --vae vae_mel_16k_64bins.ckpt.",
    )
    voc_sd = pick(
        (str(vocoder), strip_prefix(voc_file, "generator.", all_keys=True)),
        (str(vae), voc_f),
        (str(checkpoint), voc_in),
        what="HiFi-GAN",
        need="Give --vocoder hifigan_16k_64bins.ckpt.",
    )
    # CLAP text tower + tokenizer
    clap_file = read_weights(clap, trust_pickle=trust_pickle, what="CLAP checkpoint") if clap else {}
    clap_sd = pick(
        (str(clap), clap_file),
        (str(checkpoint), strip_prefix(sd, "cond_stage_models.0.model.")),
        what="CLAP text tower",
        need="Give --clap clap_music_speech_audioset_epoch_15_esc_89.98.pt.",
    )
    text_cfg = clap_text_config(clap_sd, clap_config)
    tower = build_clap_text(text_cfg, convert_clap_text(clap_sd))
    text_encoder = ClapTowerTextEncoder(
        text_config=text_cfg, tokenizer=load_tokenizer(tokenizer, what="RoBERTa tokenizer")
    )
    text_encoder.model.load_state_dict(tower.state_dict())
    del tower

    predictor = video_encoder = None
    if phi is not None:
        from foleykit.convert.phi import build_phi
        from foleykit.convert.synchformer import build_synchformer

        predictor = build_phi(
            read_weights(phi, trust_pickle=trust_pickle, what="phi checkpoint"), num_heads=phi_heads
        )
        video_encoder = build_synchformer(
            read_weights(synchformer, trust_pickle=trust_pickle, what="Synchformer checkpoint"),
            num_heads=synchformer_heads,
        )
    pipe = assemble(
        unet=unet,
        encoder=encoder,
        net=net,
        vae=build_vae(vae_sd, scaling_factor=scale),
        vocoder=build_vocoder(voc_sd, vocoder_config),
        text_encoder=text_encoder,
        predictor=predictor,
        video_encoder=video_encoder,
        sources={
            "checkpoint": Path(checkpoint).name,
            "phi": phi and Path(phi).name,
            "synchformer": synchformer and Path(synchformer).name,
            "ema": use_ema,
        },
    )
    return pipe.save_pretrained(output, dtype=dtype)


def assemble(
    *, unet, encoder, net, vae, vocoder, text_encoder, predictor, video_encoder, sources: dict[str, Any]
):
    """The foleykit pipeline around converted ReWaS parts (AudioLDM guidance: CLAP("") as the null)."""
    from foleykit.models.control_adapter import ControlAdapter
    from foleykit.models.unet import UNetDenoiser
    from foleykit.pipelines.guidance import ConditionAssembler
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.recipes import build_scheduler_from, build_sequence, load_recipe

    recipe = copy.deepcopy(load_recipe("rewas"))
    seq = build_sequence(recipe["sequence"])
    dim = int(text_encoder.dim)
    film = int(unet.config.projection_class_embeddings_input_dim)
    if film != dim:
        raise ModelError(f"ReWaS: the UNet's FiLM input ({film}) differs from the CLAP embedding ({dim})")
    assembler = ConditionAssembler(
        cross_dim=None,
        sources={"text": {"dim": dim, "null": "learned", "tokens": False}},
        global_from="text",
        global_dim=dim,
    )
    with torch.no_grad():  # AudioLDM's unconditional embedding: CLAP of the empty prompt
        assembler.global_null_embedding.copy_(text_encoder.encode_tokens([""])[0][0])
    adapter = ControlAdapter(name="energy", encoder=encoder, net=net, control_kind="energy", grid="energy")
    specs: dict[str, dict[str, Any]] = {
        "text_encoder": {
            "registry": ["text_encoder", "clap_tower"],
            "kwargs": {"text_config": text_encoder.text_config, "max_length": text_encoder.max_length},
            "pass_folder": True,
        }
    }
    predictors = {}
    if predictor is not None:
        kw = {k: (list(v) if isinstance(v, tuple) else v) for k, v in _phi_kwargs(predictor).items()}
        specs["predictor_energy"] = {"registry": ["timing_predictor", "rewas_phi"], "kwargs": kw}
        specs["video_encoder"] = {
            "registry": ["video_encoder", "synchformer"],
            "kwargs": _synch_kwargs(video_encoder),
        }
        predictors["energy"] = predictor
    recipe.update(
        conditions={
            "text": {
                "encoder": "clap_tower",
                "dim": dim,
                "null": "learned",
                "null_value": "CLAP embedding of the empty prompt",
                "tokens": False,
            },
            "global_from": "text",
            "global_dim": dim,
        },
        video_encoder={"name": "synchformer", "dim": 768} if video_encoder is not None else None,
        predictors={"energy": {"name": "rewas_phi"}} if predictor is not None else {},
        converted_from={"seed": "ReWaS (naver-ai/rewas)", **sources},
    )
    recipe["sampling"].update(steps=200, guidance_scale=3.0, guidance_form="standard", eta=1.0)
    recipe["adapters"][0]["encoder"] = {
        "type": "vae",
        "mode": "tile_mel",
        "fc": True,
        "fc_axis": "freq",
        "freq_bins": encoder.config.freq_bins,
        "out_channels": encoder.config.out_channels,
    }
    recipe["adapters"][0]["conditioning_embedding_channels"] = []
    return VideoToAudioPipeline(
        seq=seq,
        codec=mel_codec(vae, vocoder, seq),
        denoiser=UNetDenoiser(unet=unet, conditioning="film"),
        scheduler=build_scheduler_from(recipe["scheduler"]),
        assembler=assembler,
        text_encoder=text_encoder,
        video_encoder=video_encoder,
        predictors=predictors,
        adapters=[adapter],
        defaults={
            "num_inference_steps": 200,
            "guidance_scale": 3.0,
            "guidance_form": "standard",
            "guide_on": ["text"],
            "eta": 1.0,
        },
        recipe=recipe,
        specs=specs,
    )


def _phi_kwargs(phi) -> dict[str, Any]:
    blocks = phi.hint_blocks.blocks
    dims = [m.out_features for m in phi.projection2 if isinstance(m, torch.nn.Linear)][:-1]
    return {
        "in_dim": phi.in_dim,
        "num_layers": len(blocks),
        "num_heads": blocks[0].attn.heads,
        "mlp_ratio": blocks[0].mlp.fc1.out_features // phi.in_dim,
        "head_dims": dims,
    }


def _synch_kwargs(enc) -> dict[str, Any]:
    conv = enc.patch_embed_3d.proj
    return {
        "img_size": enc.img_size,
        "patch_size": int(conv.kernel_size[1]),
        "tubelet": enc.tubelet,
        "segment_frames": enc.segment_frames,
        "segment_stride": enc.segment_stride,
        "embed_dim": enc.dim,
        "depth": len(enc.blocks),
        "num_heads": enc.blocks[0].attn.heads,
        "mlp_ratio": enc.blocks[0].mlp.fc1.out_features // enc.dim,
        "resize_to": enc.input_size,
    }
