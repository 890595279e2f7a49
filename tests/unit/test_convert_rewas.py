"""``foleykit models convert rewas``: mock checkpoints in the released key layouts (tiny sizes) are converted,
and one forward of every converted module is compared with the original structure built from the mock."""

from __future__ import annotations

import argparse
import json

import convert_refs as R
import numpy as np
import pytest
import torch
import torch.nn.functional as F

T_LAT, F_LAT = 8, 16  # latent frames / bins of the mock (AudioLDM's 64 mels / 4)
HIFI = {
    "uic": 64,
    "rates": (5, 4, 2, 2, 2),
    "kernels": (16, 16, 8, 4, 4),
    "rk": (3,),
    "rd": ((1, 3, 5),),
    "mels": 64,
}
VOC_CFG = {"resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]}
CLAP_CFG = {"num_attention_heads": 2}


def _randomise(m: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return m.eval()


def _tokenizer(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<s>", "<pad>", "</s>", "<unk>", "a", "dog", "barks", "glass", "breaks", "footsteps"]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.save_pretrained(str(folder))
    return fast


def _clap():
    from transformers import RobertaConfig, RobertaModel

    cfg = RobertaConfig(
        vocab_size=10,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=40,
        type_vocab_size=1,
        pad_token_id=1,
        layer_norm_eps=1e-5,
    )
    text = _randomise(RobertaModel(cfg), 5)
    proj = _randomise(
        torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16)), 6
    )
    return text, proj


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    """The released files, tiny: ReWaS .ckpt (UNet + EMA + adapter + VAE + HiFi-GAN + CLAP), phi, Synchformer."""
    d = tmp_path_factory.mktemp("rewas")
    unet, ema = _randomise(R.LdmUNet(), 1), _randomise(R.LdmUNet(), 2)
    adapter = _randomise(R.LdmUNet(adapter=True, hint=(8, T_LAT, F_LAT)), 3)
    vae = _randomise(R.LdmVAE(ch=32, mult=(1, 2, 2)), 4)
    text, proj = _clap()
    hifi = R.HiFiGAN(**HIFI).eval()
    synch, phi = (
        _randomise(R.SynchExtractor(frames=8), 7),
        _randomise(R.Phi(d=32, heads=2, n=2, head=(8, 4)), 8),
    )
    sd = {f"model.diffusion_model.{k}": v for k, v in unet.state_dict().items()}
    sd |= {"model_ema." + ("diffusion_model." + k).replace(".", ""): v for k, v in ema.state_dict().items()}
    sd |= {"model_ema.num_updates": torch.tensor(5), "model_ema.decay": torch.tensor(0.999)}
    sd |= {f"control_model.{k}": v for k, v in adapter.state_dict().items()}
    sd |= {f"first_stage_model.{k}": v for k, v in vae.state_dict().items()}
    sd |= {f"first_stage_model.vocoder.{k}": v for k, v in hifi.state_dict().items()}
    sd |= {"first_stage_model.loss.logvar": torch.zeros(())}
    sd |= {f"cond_stage_models.0.model.text_branch.{k}": v for k, v in text.state_dict().items()}
    sd |= {f"cond_stage_models.0.model.text_projection.{k}": v for k, v in proj.state_dict().items()}
    sd |= {
        "cond_stage_models.0.model.audio_branch.fc.weight": torch.zeros(2, 2),
        "cond_stage_models.0.model.logit_scale_a": torch.zeros(()),
    }
    sd["scale_factor"] = torch.tensor(0.75)
    torch.save({"state_dict": sd, "epoch": 1, "global_step": 10}, d / "rewas.ckpt")
    torch.save({f"module.{k}": v for k, v in phi.state_dict().items()}, d / "phi.ckpt")
    junk = {"afeat_extractor.x.weight": torch.zeros(1), "transformer.y.weight": torch.zeros(1)}
    torch.save(
        {"model": {**{f"vfeat_extractor.{k}": v for k, v in synch.state_dict().items()}, **junk}, "epoch": 3},
        d / "synch.pt",
    )
    _tokenizer(d / "tokenizer")
    return argparse.Namespace(
        dir=d,
        unet=unet,
        ema=ema,
        adapter=adapter,
        vae=vae,
        text=text,
        proj=proj,
        hifi=hifi,
        synch=synch,
        phi=phi,
    )


def _convert(mock, out, **kw):
    from foleykit.convert.rewas import convert_rewas

    return convert_rewas(
        checkpoint=mock.dir / "rewas.ckpt",
        output=out,
        tokenizer=mock.dir / "tokenizer",
        phi=mock.dir / "phi.ckpt",
        synchformer=mock.dir / "synch.pt",
        num_head_channels=16,
        phi_heads=2,
        synchformer_heads=4,
        vocoder_config=VOC_CFG,
        clap_config=CLAP_CFG,
        **kw,
    )


@pytest.fixture(scope="module")
def pipe(mock, tmp_path_factory):
    from foleykit.pipelines import VideoToAudioPipeline

    folder = _convert(mock, tmp_path_factory.mktemp("out") / "rewas-converted")
    return VideoToAudioPipeline.from_pretrained(folder)


def _close(a, b, tol=1e-4):
    assert a.shape == b.shape, (a.shape, b.shape)
    err = (a - b).abs().max().item()
    assert err <= tol * max(1.0, b.abs().max().item()), err


def test_unet_and_controlnet_match_the_latent_diffusion_originals(mock, pipe):
    from foleykit.models.layers import Conditions

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 8, T_LAT, F_LAT, generator=g), torch.randn(2, 16, generator=g)
    hint, t = torch.randn(2, 8, T_LAT, F_LAT, generator=g), torch.tensor([37, 801])
    adapter = pipe.adapters["energy"]
    feats = F.silu(adapter.encoder.proj(hint))  # the hint block's FC over the frequency bins
    with torch.no_grad():
        ref = mock.ema(
            x, t, y, control=mock.adapter.control(x, hint, t, y)
        )  # ReWaS samples with the EMA UNet
        out = pipe.denoiser(x, t, Conditions(global_embed=y), controls=[(adapter.net, feats, 1.0)])
        ref_plain = mock.ema(x, t, y)
        out_plain = pipe.denoiser(x, t, Conditions(global_embed=y))
    _close(out, ref)
    _close(out_plain, ref_plain)
    assert (out - out_plain).abs().max() > 1e-3  # the adapter does act


def test_use_ema_false_takes_the_raw_unet(mock, tmp_path):
    from foleykit.models.layers import Conditions
    from foleykit.pipelines import VideoToAudioPipeline

    p = VideoToAudioPipeline.from_pretrained(_convert(mock, tmp_path / "raw", use_ema=False))
    x, y, t = torch.randn(1, 8, T_LAT, F_LAT), torch.randn(1, 16), torch.tensor([5])
    with torch.no_grad():
        _close(p.denoiser(x, t, Conditions(global_embed=y)), mock.unet(x, t, y))


def test_vae_vocoder_and_clap_match(mock, pipe):
    g = torch.Generator().manual_seed(1)
    mel_img = torch.randn(1, 1, 4 * T_LAT, 64, generator=g)
    with torch.no_grad():
        _close(pipe.codec.encode_mel_image(mel_img).mode(), mock.vae.encode_mean(mel_img))
        z = torch.randn(1, 8, T_LAT, F_LAT, generator=g)
        _close(pipe.codec.vae.decode(z).sample, mock.vae.decode(z))
        assert pipe.codec.scaling_factor == pytest.approx(0.75)
        mel = torch.randn(1, 64, 10, generator=g)
        _close(pipe.codec.vocoder(mel.transpose(1, 2)), mock.hifi(mel)[:, 0], tol=1e-4)
        tok = pipe.text_encoder.tokenizer(["a dog barks", ""], padding=True, return_tensors="pt")
        ref = F.normalize(
            mock.proj(mock.text(input_ids=tok.input_ids, attention_mask=tok.attention_mask).pooler_output),
            dim=-1,
        )
        emb = pipe.text_encoder.encode_tokens(["a dog barks", ""])
    _close(torch.cat(emb), ref)
    # AudioLDM's unconditional branch: the CLAP embedding of the empty prompt
    _close(pipe.assembler.global_null_embedding.detach()[None], ref[1:])


def test_synchformer_and_phi_match_the_released_structures(mock, pipe):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (14, 18, 22, 3), dtype=np.uint8)  # short side already 18 (= 256/224 x 16)
    feats = pipe.video_encoder.encode(frames)
    x = torch.from_numpy(frames).float().div(255).permute(0, 3, 1, 2)[:, :, 1:17, 3:19] * 2 - 1  # centre crop
    # 8-frame segments, stride 4: 2 segments cover 12 of the 14 frames, centred -> they start at frames 1 and 5
    segs = torch.stack([x[s : s + 8] for s in (1, 5)]).permute(0, 2, 1, 3, 4)
    with torch.no_grad():
        ref = mock.synch(segs).reshape(1, 8, 32)
    _close(feats, ref)
    phi = pipe.predictors["energy"]
    with torch.no_grad():
        _close(phi(feats), mock.phi(feats)[..., 0])  # batch of one, as ReWaS runs it
        two = torch.cat([feats, feats.flip(1)])
        _close(phi(two)[1:], mock.phi(feats.flip(1))[..., 0])  # clips of a batch never mix


def test_phi_control_is_smoothed_and_on_the_mel_grid(pipe):
    seq = pipe.seq.with_duration(1.0)
    out = torch.linspace(-5, 0, 24)
    c = pipe.predictors["energy"].to_control(out, seq)
    assert (
        c.kind == "energy"
        and c.rate == pytest.approx(seq.mel_rate)
        and len(c.values) == seq.num_energy_frames
    )
    from foleykit.controls.energy import savgol_smooth

    assert c.values[-1] == pytest.approx(savgol_smooth(out.numpy())[-1], abs=1e-5)


def test_converted_folder_generates_from_a_video(pipe):
    rng = np.random.default_rng(1)
    frames = rng.integers(
        0, 256, (25, 24, 30, 3), dtype=np.uint8
    )  # resized to the 18-pixel short side inside
    out = pipe(frames=frames, prompt="a dog barks", duration=1.0, num_inference_steps=2, seed=0)
    assert out.sample_rate == 16000 and out.audio.shape == (16000,) and np.isfinite(out.audio).all()
    assert out.controls["energy"].kind == "energy"
    assert pipe.defaults["num_inference_steps"] == 200 and pipe.defaults["eta"] == 1.0
    assert pipe.guidance()[0] == 3.0  # ReWaS: eps_u + 3 (eps_c - eps_u)


def test_model_index_names_no_code_and_records_the_source(pipe, mock, tmp_path):
    folder = _convert(mock, tmp_path / "f")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_foleykit"]["recipe"]["converted_from"]["checkpoint"] == "rewas.ckpt"
    for name in ("text_encoder", "video_encoder", "predictor_energy"):
        spec = json.loads((folder / name / "config.json").read_text())["_foleykit_spec"]
        assert "registry" in spec and "class" not in spec
    assert (folder / "text_encoder" / "tokenizer").is_dir()


def test_pickles_that_need_more_than_tensors_need_trust(mock, tmp_path):
    from foleykit.convert.checkpoint import load_checkpoint
    from foleykit.errors import ModelError

    p = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hparams": argparse.Namespace(lr=1)}, p)
    with pytest.raises(ModelError, match="--trust-pickle"):
        load_checkpoint(p)
    assert isinstance(load_checkpoint(p, trust_pickle=True)["hparams"], argparse.Namespace)


def test_missing_parts_are_named(mock, tmp_path):
    from foleykit.convert.rewas import convert_rewas
    from foleykit.errors import ConfigError, ModelError

    sd = torch.load(mock.dir / "rewas.ckpt", weights_only=True)["state_dict"]
    slim = {k: v for k, v in sd.items() if not k.startswith("cond_stage_models.")}
    torch.save({"state_dict": slim}, tmp_path / "slim.ckpt")
    with pytest.raises(ModelError, match="--clap"):
        convert_rewas(
            checkpoint=tmp_path / "slim.ckpt",
            output=tmp_path / "o",
            tokenizer=mock.dir / "tokenizer",
            num_head_channels=16,
            vocoder_config=VOC_CFG,
            clap_config=CLAP_CFG,
        )
    with pytest.raises(ConfigError, match="Synchformer"):
        convert_rewas(
            checkpoint=mock.dir / "rewas.ckpt",
            output=tmp_path / "o",
            tokenizer=mock.dir / "tokenizer",
            phi=mock.dir / "phi.ckpt",
        )
    assert not (tmp_path / "o").exists()


def test_cli_converts_and_generate_runs_the_folder(mock, tmp_path, capsys, monkeypatch):
    import soundfile as sf

    import foleykit.convert.rewas as rw
    from foleykit.cli import main
    from foleykit.testing import make_moving_square_video

    out = tmp_path / "rewas-cli"
    argv = [
        "models",
        "convert",
        "rewas",
        "--checkpoint",
        str(mock.dir / "rewas.ckpt"),
        "--tokenizer",
        str(mock.dir / "tokenizer"),
        "--phi",
        str(mock.dir / "phi.ckpt"),
        "--synchformer",
        str(mock.dir / "synch.pt"),
        "--output",
        str(out),
        "--fp16",
    ]
    orig = rw.convert_rewas  # the tiny mocks' head counts / vocoder sizes are not the released defaults
    monkeypatch.setattr(
        rw,
        "convert_rewas",
        lambda **kw: orig(
            **kw,
            num_head_channels=16,
            phi_heads=2,
            synchformer_heads=4,
            vocoder_config=VOC_CFG,
            clap_config=CLAP_CFG,
        ),
    )
    assert main(argv) == 0
    assert main(argv) == 2  # an existing folder is not replaced without --overwrite
    printed = capsys.readouterr()
    assert "foleykit generate VIDEO --model" in printed.out and "--overwrite" in printed.err
    video = make_moving_square_video(tmp_path / "clip.mp4", duration=1.0, size=(48, 36), move_frames=(10, 20))
    wav = tmp_path / "out.wav"
    argv = [
        "generate",
        str(video),
        "--model",
        str(out),
        "--prompt",
        "a dog barks",
        "--steps",
        "2",
        "--seed",
        "1",
    ]
    assert main([*argv, "-o", str(wav)]) == 0
    audio, sr = sf.read(wav)
    assert sr == 16000 and abs(len(audio) - 16000) <= 160 and np.isfinite(audio).all()
