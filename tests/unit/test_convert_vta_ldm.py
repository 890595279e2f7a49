"""``foleykit models convert vta-ldm``: a mock of the released ``AudioDiffusion`` state dict (tiny diffusers UNet,
CLIP vision tower, frame projector) and of an AudioLDM checkpoint are converted; one forward of each converted
module is compared with the original structure built from the mock."""

from __future__ import annotations

import argparse
import json

import convert_refs as R
import numpy as np
import pytest
import torch

UNET = {
    "_class_name": "UNet2DConditionModel",
    "sample_size": [32, 2],
    "in_channels": 8,
    "out_channels": 8,
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 48,
    "attention_head_dim": [2, 4],
    "use_linear_projection": True,
    "upcast_attention": True,
}
SCHED = {
    "_class_name": "DDIMScheduler",
    "beta_start": 0.0015,
    "beta_end": 0.02,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "steps_offset": 1,
    "clip_sample": False,
}
CLIP = {"num_attention_heads": 2}
VOC = {"resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]}


def _rand(m, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return m.eval()


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    from diffusers import UNet2DConditionModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    d = tmp_path_factory.mktemp("vta")
    unet = _rand(UNet2DConditionModel(**{k: v for k, v in UNET.items() if k != "_class_name"}), 1)
    vision = _rand(
        CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=32,
                patch_size=8,
                projection_dim=16,
                hidden_act="quick_gelu",
            )
        ),
        2,
    )
    text = CLIPTextModelWithProjection(
        CLIPTextConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            projection_dim=16,
            vocab_size=50,
        )
    )
    linear = _rand(torch.nn.Linear(16, 48), 3)
    sd = {f"unet.{k}": v for k, v in unet.state_dict().items()}
    sd |= {f"vid_fea_extractor.clip_vision.{k}": v for k, v in vision.state_dict().items()}
    sd |= {f"vid_fea_extractor.clip_text.{k}": v for k, v in text.state_dict().items()}
    sd |= {f"vid_fea_extractor.linear_layer.{k}": v for k, v in linear.state_dict().items()}
    torch.save(sd, d / "pytorch_model_2.bin")
    vae = _rand(R.LdmVAE(ch=32, mult=(1, 2, 2)), 4)
    hifi = R.HiFiGAN(
        uic=64, rates=(5, 4, 2, 2, 2), kernels=(16, 16, 8, 4, 4), rk=(3,), rd=((1, 3, 5),), mels=64
    ).eval()
    for m in hifi.modules():  # AudioLDM stores its vocoder with the weight norm removed
        if hasattr(m, "weight_g"):
            torch.nn.utils.remove_weight_norm(m)
    ldm = {f"first_stage_model.{k}": v for k, v in vae.state_dict().items()}
    ldm |= {f"first_stage_model.vocoder.{k}": v for k, v in hifi.state_dict().items()}
    ldm |= {"model.diffusion_model.conv_in.weight": torch.zeros(1), "scale_factor": torch.tensor(1.25)}
    torch.save({"state_dict": ldm}, d / "audioldm-s-full.ckpt")
    (d / "unet.json").write_text(json.dumps(UNET))
    (d / "scheduler_config.json").write_text(json.dumps(SCHED))
    (d / "summary.jsonl").write_text(
        json.dumps({"task": "video2audio", "pe": False, "embedding_dim": 48}) + "\n"
    )
    return argparse.Namespace(dir=d, unet=unet, vision=vision, linear=linear, vae=vae, hifi=hifi)


def _convert(mock, out, **kw):
    from foleykit.convert.vta_ldm import convert_vta_ldm

    args = {
        "checkpoint": mock.dir / "pytorch_model_2.bin",
        "output": out,
        "unet_config": mock.dir / "unet.json",
        "scheduler_config": mock.dir / "scheduler_config.json",
        "audioldm": mock.dir / "audioldm-s-full.ckpt",
        "summary": mock.dir / "summary.jsonl",
        "clip_config": CLIP,
        "vocoder_config": VOC,
    }
    return convert_vta_ldm(**{**args, **kw})


@pytest.fixture(scope="module")
def pipe(mock, tmp_path_factory):
    from foleykit.pipelines import VideoToAudioPipeline

    return VideoToAudioPipeline.from_pretrained(_convert(mock, tmp_path_factory.mktemp("o") / "vta"))


def _close(a, b, tol=1e-4):
    assert a.shape == b.shape, (a.shape, b.shape)
    err = (a - b).abs().max().item()
    assert err <= tol * max(1.0, b.abs().max().item()), err


def test_video_tokens_and_unet_match_the_released_module(mock, pipe):
    from foleykit.models.layers import Conditions

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    pix = (
        torch.from_numpy(frames).float().div(255).permute(0, 3, 1, 2)[:, :, :, 4:36]
    )  # centre crop, no normalisation
    x, t = torch.randn(2, 8, 8, 16), torch.tensor([500, 20])
    with torch.no_grad():
        ref_tok = mock.linear(mock.vision(pixel_values=pix).image_embeds)[None]  # (1, T, 48)
        ref = mock.unet(
            x,
            t,
            encoder_hidden_states=torch.cat([torch.zeros_like(ref_tok), ref_tok]),
            encoder_attention_mask=torch.ones(2, 3, dtype=torch.bool),
        ).sample
        feats = pipe.video_encoder.encode(frames)
        vc = pipe.video_condition(feats)
        tokens, mask, _ = pipe.assembler.assemble(
            {"video": (vc.expand(2, -1, -1), None)}, batch_size=2, drop={"video": torch.tensor([True, False])}
        )
        out = pipe.denoiser(x, t, Conditions(tokens=tokens, mask=mask))
    _close(vc, ref_tok)
    _close(out, ref)  # row 0: VTA-LDM's unconditional branch (zeros of the same shape, attended)


def test_codec_and_sampler(mock, pipe):
    z = torch.randn(1, 8, 8, 16)
    mel = torch.randn(1, 64, 12)
    with torch.no_grad():
        _close(pipe.codec.vae.decode(z).sample, mock.vae.decode(z))
        _close(pipe.codec.vocoder(mel.transpose(1, 2)), mock.hifi(mel)[:, 0])
    assert pipe.codec.scaling_factor == pytest.approx(1.25)
    assert (
        type(pipe.scheduler).__name__ == "DDPMScheduler"
        and pipe.scheduler.config.prediction_type == "v_prediction"
    )
    assert pipe.seq.video_fps == 2.0 and pipe.defaults["num_inference_steps"] == 300


def test_converted_folder_generates(pipe):
    frames = np.random.default_rng(2).integers(0, 256, (2, 36, 48, 3), dtype=np.uint8)
    out = pipe(frames=frames, duration=1.0, num_inference_steps=2, seed=0)
    assert out.audio.shape == (16000,) and np.isfinite(out.audio).all()


def test_unsupported_variants_are_refused(mock, tmp_path):
    from foleykit.errors import ConfigError

    (tmp_path / "s.jsonl").write_text(json.dumps({"task": "video2audio", "pe": True}) + "\n")
    with pytest.raises(ConfigError, match="position"):
        _convert(mock, tmp_path / "a", summary=tmp_path / "s.jsonl")
    sd = torch.load(mock.dir / "pytorch_model_2.bin", weights_only=True)
    sd["group_in.0.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "g.bin")
    with pytest.raises(ConfigError, match="group_in"):
        _convert(mock, tmp_path / "b", checkpoint=tmp_path / "g.bin")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_convert_vta_ldm(mock, tmp_path, monkeypatch, capsys):
    import foleykit.convert.vta_ldm as vl
    from foleykit.cli import main

    orig = vl.convert_vta_ldm
    monkeypatch.setattr(vl, "convert_vta_ldm", lambda **kw: orig(**kw, clip_config=CLIP, vocoder_config=VOC))
    d = mock.dir
    argv = [
        "models",
        "convert",
        "vta-ldm",
        "--checkpoint",
        str(d / "pytorch_model_2.bin"),
        "--unet-config",
        str(d / "unet.json"),
        "--scheduler-config",
        str(d / "scheduler_config.json"),
        "--audioldm",
        str(d / "audioldm-s-full.ckpt"),
        "--summary",
        str(d / "summary.jsonl"),
        "-o",
        str(tmp_path / "v"),
    ]
    assert main(argv) == 0
    assert (tmp_path / "v" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert "--model" in capsys.readouterr().out
