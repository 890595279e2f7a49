"""``foleykit models convert vta-ldm``: VTA-LDM's released files -> a foleykit model folder.

VTA-LDM (Xu et al., Tencent AI Lab; github.com/ariesssxu/vta-ldm) releases ``vta-ldm-clip4clip-v-large``:

- ``pytorch_model_2.bin`` (required): the trained ``AudioDiffusion`` module: ``unet.*`` (a diffusers
  ``UNet2DConditionModel``, names unchanged), ``vid_fea_extractor.clip_vision.*`` (transformers
  ``CLIPVisionModelWithProjection``), ``vid_fea_extractor.linear_layer`` (the frame projector phi: CLIP image
  embedding -> cross-attention size) and ``vid_fea_extractor.clip_text.*`` (unused by the video-only model);
- ``summary.jsonl``: the training arguments (``embedding_dim``, ``pe``, ``task``, ``unet_model_config``,
  ``scheduler_name``, ``vae_model``), read to check the variant;
- the UNet config the summary names (``configs/diffusion_model_config_large_2048.json`` of the repository): the
  number of attention heads is not in the tensors;
- the scheduler config of the summary's ``scheduler_name`` (a diffusers ``scheduler_config.json``); VTA-LDM
  samples with ``DDPMScheduler`` (its class is forced), 300 steps, guidance 3;
- the AudioLDM checkpoint of the summary's ``vae_model`` (e.g. ``audioldm-s-full.ckpt``): its
  ``first_stage_model.*`` (mel VAE + HiFi-GAN) and ``scale_factor``.

The folder reproduces the released inference: frames at 2 fps, resized (bicubic) and centre-cropped to 224 px,
pixels in [0, 1] (the released code does not apply CLIP's normalisation), projected CLIP embeddings -> phi ->
cross-attention tokens, zeros of the same shape as the unconditional branch, 10.24 s of latents. The variants
with position embedding (``pe``), text, or a pretrained-UNet adapter (``group_in``) are refused.
"""

from __future__ import annotations

import copy
import json
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
    read_weights,
    scale_factor_of,
)
from foleykit.errors import ConfigError, ModelError

WHAT = "VTA-LDM checkpoint"
#: The released model's video rate (``load_video(frame_rate=2)``) and latent length (256 frames = 10.24 s).
VIDEO_FPS = 2.0
DURATION = 10.24


def read_summary(path: str | os.PathLike | None) -> dict[str, Any]:
    """The training arguments (first JSON line of ``summary.jsonl``), or {} when not given."""
    if path is None:
        return {}
    p = Path(path).expanduser()
    try:
        first = p.read_text(encoding="utf-8").splitlines()[0]
        return dict(json.loads(first))
    except (OSError, IndexError, ValueError) as err:
        raise ConfigError(
            f"VTA-LDM summary: cannot read {p} ({err}); expected summary.jsonl of the release"
        ) from None


def clip_vision_config(
    sd: dict[str, torch.Tensor], overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``CLIPVisionConfig`` kwargs read from the tower's tensors (heads: hidden / 64, as every OpenAI CLIP ViT)."""
    pe = sd.get("vision_model.embeddings.patch_embedding.weight")
    if pe is None or "visual_projection.weight" not in sd:
        raise ModelError(
            f"{WHAT}: no vid_fea_extractor.clip_vision weights (CLIP vision tower with projection)"
        )
    hidden, patch = int(pe.shape[0]), int(pe.shape[-1])
    n_pos = int(sd["vision_model.embeddings.position_embedding.weight"].shape[0])
    layers = len({k.split(".")[3] for k in sd if k.startswith("vision_model.encoder.layers.")})
    cfg = {
        "hidden_size": hidden,
        "intermediate_size": int(sd["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0]),
        "projection_dim": int(sd["visual_projection.weight"].shape[0]),
        "num_hidden_layers": layers,
        "num_attention_heads": max(1, hidden // 64),
        "num_channels": int(pe.shape[1]),
        "image_size": round((n_pos - 1) ** 0.5) * patch,
        "patch_size": patch,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    }
    cfg.update(overrides or {})
    return cfg


def convert_vta_ldm(
    *,
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    unet_config: str | os.PathLike | dict[str, Any],
    scheduler_config: str | os.PathLike | dict[str, Any],
    audioldm: str | os.PathLike,
    summary: str | os.PathLike | None = None,
    trust_pickle: bool = False,
    scale_factor: float | None = None,
    clip_config: dict[str, Any] | None = None,
    vocoder_config: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Convert VTA-LDM's released files into a foleykit model folder at ``output`` (module docstring).

    Args:
        checkpoint: ``pytorch_model_2.bin`` (or a ``.safetensors`` of the same module).
        unet_config: The UNet config JSON (path or dict) named in ``summary.jsonl``.
        scheduler_config: A diffusers scheduler config (path or dict); sampled with ``DDPMScheduler``.
        audioldm: The AudioLDM checkpoint providing the mel VAE + HiFi-GAN (``first_stage_model.*``).
        summary: ``summary.jsonl`` (checked: ``pe``, ``task``, ``embedding_dim``).
        clip_config, vocoder_config: Overrides of the configs read from the tensors.
    """
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from foleykit.convert.towers import CLIPFrameEncoder
    from foleykit.models.pooling import FrameProjector

    args = read_summary(summary)
    if args.get("pe"):
        raise ConfigError(
            "VTA-LDM: the position-embedding variant (pe) is not supported; convert the released v-large model"
        )
    if args.get("task") not in (None, "video2audio"):
        raise ConfigError(f"VTA-LDM: task {args.get('task')!r} is not video-to-audio")
    sd = read_weights(checkpoint, trust_pickle=trust_pickle, what=WHAT)
    if any(k.startswith(("group_in.", "group_out.")) for k in sd):
        raise ConfigError(
            "VTA-LDM: the pretrained-UNet variant (group_in / group_out adapters) is not supported"
        )
    unet_sd = strip_prefix(sd, "unet.")
    if not unet_sd:
        raise ModelError(f"{WHAT}: no unet.* weights; is it pytorch_model_2.bin of the release?")
    cfg = _json(unet_config, "UNet config")
    unet = UNet2DConditionModel(**{k: v for k, v in cfg.items() if not k.startswith("_")})
    load_exact(unet, unet_sd, what="VTA-LDM UNet")
    cross = int(unet.config.cross_attention_dim)

    tower_sd = strip_prefix(sd, "vid_fea_extractor.clip_vision.")
    vcfg = clip_vision_config(tower_sd, clip_config)
    video_encoder = CLIPFrameEncoder(vision_config=vcfg, normalize_pixels=False)
    own = video_encoder.model.state_dict()
    tower_sd = {k: v for k, v in tower_sd.items() if k in own or not k.endswith("position_ids")}
    tower_sd |= {k: v for k, v in own.items() if k.endswith("position_ids") and k not in tower_sd}
    load_exact(video_encoder.model, tower_sd, what="VTA-LDM CLIP vision tower")
    lin = strip_prefix(sd, "vid_fea_extractor.linear_layer.")
    if "weight" not in lin:
        raise ModelError(f"{WHAT}: no vid_fea_extractor.linear_layer (the frame projector)")
    d_in, d_out = int(lin["weight"].shape[1]), int(lin["weight"].shape[0])
    if d_in != video_encoder.dim or d_out != cross:
        raise ModelError(
            f"{WHAT}: the projector maps {d_in} -> {d_out}, the CLIP tower gives {video_encoder.dim} and the UNet takes {cross}"
        )
    if args.get("embedding_dim") not in (None, d_out):
        raise ModelError(
            f"{WHAT}: summary.jsonl says embedding_dim {args['embedding_dim']}, the projector gives {d_out}"
        )
    projector = FrameProjector(in_dim=d_in, out_dim=d_out, positions="none")
    load_exact(projector, {f"proj.{k}": v for k, v in lin.items()}, what="VTA-LDM frame projector")

    ldm = read_weights(audioldm, trust_pickle=trust_pickle, what="AudioLDM checkpoint")
    vae_sd, voc_sd = first_stage(ldm)
    if not voc_sd:
        raise ModelError(
            "AudioLDM checkpoint: no first_stage_model.vocoder.* (HiFi-GAN); give the original AudioLDM .ckpt"
        )
    scale = scale_factor_of(ldm, scale_factor, what="AudioLDM checkpoint")
    sched = DDPMScheduler.from_config(
        {k: v for k, v in _json(scheduler_config, "scheduler config").items() if k != "_class_name"}
    )

    pipe = assemble(
        unet=unet,
        projector=projector,
        video_encoder=video_encoder,
        vae=build_vae(vae_sd, scaling_factor=scale),
        vocoder=build_vocoder(voc_sd, vocoder_config),
        scheduler=sched,
        sources={"checkpoint": Path(checkpoint).name, "audioldm": Path(audioldm).name, "summary": args},
    )
    return pipe.save_pretrained(output, dtype=dtype)


def _json(src: str | os.PathLike | dict[str, Any], what: str) -> dict[str, Any]:
    if isinstance(src, dict):
        return dict(src)
    p = Path(src).expanduser()
    try:
        return dict(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise ConfigError(f"VTA-LDM {what}: cannot read {p} ({err})") from None


def assemble(*, unet, projector, video_encoder, vae, vocoder, scheduler, sources: dict[str, Any]):
    """The foleykit pipeline around converted VTA-LDM parts (video tokens only, zero null)."""
    from foleykit.models.unet import UNetDenoiser
    from foleykit.pipelines.guidance import ConditionAssembler
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.recipes import build_sequence, load_recipe

    recipe = copy.deepcopy(load_recipe("vta_ldm"))
    recipe["sequence"] = {"preset": "audioldm", "duration": DURATION, "video_fps": VIDEO_FPS}
    seq = build_sequence(recipe["sequence"])
    cross = int(unet.config.cross_attention_dim)
    assembler = ConditionAssembler(
        cross_dim=cross, sources={"video": {"dim": cross, "null": "zero", "project": False}}
    )
    recipe.update(
        denoiser={"type": "unet", "unet": {"config": dict(unet.config)}, "conditioning": "cross_attention"},
        conditions={"video": {"projector": {"positions": "none"}, "null": "zero"}},
        video_encoder={
            "name": "clip_frames",
            "dim": video_encoder.dim,
            "kwargs": {"normalize_pixels": False},
        },
        scheduler={"name": "DDPMScheduler", "config": dict(scheduler.config)},
        converted_from={"seed": "VTA-LDM (ariesssxu/vta-ldm)", **sources},
    )
    recipe["sampling"].update(steps=300, guidance_scale=3.0, guide_on=["video"])
    specs = {
        "video_encoder": {
            "registry": ["video_encoder", "clip_frames"],
            "kwargs": {
                "vision_config": video_encoder.vision_config,
                "normalize_pixels": video_encoder.normalize_pixels,
            },
        },
        "video_condition": {
            "class": "foleykit.models.pooling.FrameProjector",
            "kwargs": {"in_dim": projector.in_dim, "out_dim": projector.out_dim, "positions": "none"},
        },
    }
    return VideoToAudioPipeline(
        seq=seq,
        codec=mel_codec(vae, vocoder, seq),
        denoiser=UNetDenoiser(unet=unet, conditioning="cross_attention"),
        scheduler=scheduler,
        assembler=assembler,
        video_encoder=video_encoder,
        video_condition=projector,
        defaults={
            "num_inference_steps": 300,
            "guidance_scale": 3.0,
            "guidance_form": "standard",
            "guide_on": ["video"],
            "eta": 0.0,
        },
        recipe=recipe,
        specs=specs,
    )
