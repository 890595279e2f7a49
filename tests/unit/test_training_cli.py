"""`foleykit train` argument handling, --print-config, the stage plan of each recipe and CLI error paths."""

from __future__ import annotations

import pytest
import yaml

from foleykit.cli import main
from foleykit.errors import ConfigError


def test_print_config_resolves_recipe_stages_and_overrides(capsys):
    assert (
        main(
            [
                "train",
                "--recipe",
                "rewas",
                "--config",
                "debug",
                "--print-config",
                "train.lr=0.5",
                "adapter.unfreeze_base=true",
            ]
        )
        == 0
    )
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert list(cfg["stages"]) == ["autoencoder", "vocoder", "predictor", "prior", "adapter"]
    assert cfg["stages"]["adapter"]["trainable"] == ["controlnet_energy", "control_encoder_energy"]
    assert cfg["stages"]["adapter"]["unfreeze_base"] is True and cfg["stages"]["prior"]["lr"] == 0.5
    assert cfg["stages"]["adapter"]["cond_dropout"]["text"] == 0.3  # ReWaS: text dropped with p 0.3
    assert cfg["stages"]["prior"]["trainable"] == ["unet", "condition_assembler"]


def test_recipe_stage_names_and_full_level_knobs(capsys):
    assert main(["train", "--recipe", "sta_v2a", "--config", "full", "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    # STA-V2A trains the UNet, the pooling and the onset ControlNet jointly (its "denoiser" stage)
    assert list(cfg["stages"]) == ["autoencoder", "vocoder", "predictor", "denoiser"]
    den = cfg["stages"]["denoiser"]
    assert (
        den["family"] == "prior" and den["lr"] == 3e-5 and den["batch_size"] == 10 and den["grad_accum"] == 2
    )
    assert den["epochs"] == 40
    assert main(["train", "--recipe", "rhythmic_foley", "--config", "debug", "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["stages"]["temporal_adapter"]["data_source"] == "audio_only"
    assert cfg["stages"]["temporal_adapter"]["lr"] == 1e-3  # the paper's 1e-5 applies at --config full only


def test_single_stage_selection(capsys):
    assert (
        main(["train", "--recipe", "vta_ldm", "--config", "debug", "--stage", "semantic", "--print-config"])
        == 0
    )
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["stages"]["semantic"]["trainable"] == ["video_condition", "condition_assembler"]


def test_cli_errors(capsys, tmp_path):
    assert main(["train", "--recipe", "rewas", "--config", "debug", "--print-config", "train.lr_=1"]) == 2
    assert "Did you mean train.lr" in capsys.readouterr().err
    assert main(["train", "--recipe", "nope", "--config", "debug", "--print-config"]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--recipe",
                "rewas",
                "--config",
                "debug",
                "--data",
                str(tmp_path / "missing"),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(["train", "--recipe", "rewas", "--config", "debug", "--stage", "decoder", "--print-config"]) == 2
    )
    assert "unknown stage 'decoder'" in capsys.readouterr().err
    from foleykit.training.run import resolve_recipe_run

    with pytest.raises(ConfigError, match="unknown stage"):
        resolve_recipe_run(recipe="vta_ldm", level="debug", stage="predictor", output=tmp_path / "x")


def test_published_backbone_skips_the_base_stages():
    from foleykit.training.run import _build, plan_stages

    rec, pipe = _build("rewas", "debug", meta=True)
    assert list(plan_stages(rec, pipe)) == ["autoencoder", "vocoder", "predictor", "prior", "adapter"]
    assert list(plan_stages(rec, pipe, loaded=["unet", "vae", "vocoder"])) == ["predictor", "adapter"]
    assert list(plan_stages(rec, pipe, loaded=["vae"])) == ["vocoder", "predictor", "prior", "adapter"]


def test_ship_writes_its_card_with_the_weights_and_can_reship_in_place(tmp_path, capsys):
    """The card is read before anything is written, so a folder re-shipped in place with its own card keeps
    it; a card that cannot be read is refused with one line before the model is loaded."""
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.recipes import build_pipeline

    model = build_pipeline("foleykit_demo", size="debug").save_pretrained(tmp_path / "model")
    card = tmp_path / "card.md"
    card.write_text("# the card\n")
    out = tmp_path / "shipped"
    assert main(["train", "ship", "--model", str(model), "--output", str(out), "--card", str(card)]) == 0
    again = ["train", "ship", "--model", str(out), "--output", str(out), "--card", str(out / "MODEL_CARD.md")]
    assert main([*again, "--adapter-weight", "2.5"]) == 0
    assert (out / "MODEL_CARD.md").read_text() == "# the card\n"
    assert all(a.weight == 2.5 for a in VideoToAudioPipeline.from_pretrained(out).adapters.values())
    capsys.readouterr()
    missing = ["train", "ship", "--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "x")]
    assert main([*missing, "--card", str(tmp_path / "no-card.md")]) == 2
    assert "--card" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_ship_can_replace_the_hifigan_by_an_istft_vocoder(tmp_path, capsys):
    """``train ship --vocoder DIR`` where DIR's vocoder is of another kind (Vocos-style iSTFT for the recipe's
    HiFi-GAN): the shipped folder holds DIR's vocoder (its class, config and fp16 weights), the rest is the
    model's; a DIR without a vocoder (a waveform codec) is refused in one line, nothing written."""
    import torch

    from foleykit.models.vocoder import IstftVocoder
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.recipes import build_pipeline, load_recipe

    model = build_pipeline("foleykit_demo", size="debug").save_pretrained(tmp_path / "model")
    recipe = load_recipe("foleykit_demo", size="debug")
    recipe["codec"]["vocoder"] = {"type": "istft", "preset": "debug"}
    voc_model = build_pipeline(recipe).save_pretrained(tmp_path / "voc")
    out = tmp_path / "shipped"
    assert (
        main(["train", "ship", "--model", str(model), "--output", str(out), "--vocoder", str(voc_model)]) == 0
    )
    trained, donor, shipped = (VideoToAudioPipeline.from_pretrained(p) for p in (model, voc_model, out))
    assert not isinstance(trained.codec.vocoder, IstftVocoder)
    assert isinstance(shipped.codec.vocoder, IstftVocoder)
    torch.testing.assert_close(
        shipped.codec.vocoder.state_dict(),
        {k: v.half().float() for k, v in donor.codec.vocoder.state_dict().items()},
    )
    torch.testing.assert_close(
        shipped.codec.vae.state_dict(),
        {k: v.half().float() for k, v in trained.codec.vae.state_dict().items()},
    )
    waveform = build_pipeline("stable_v2a", size="debug").save_pretrained(tmp_path / "waveform")
    bad = [
        "train",
        "ship",
        "--model",
        str(model),
        "--output",
        str(tmp_path / "x"),
        "--vocoder",
        str(waveform),
    ]
    assert main(bad) == 2
    assert "vocoder" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_ship_can_replace_the_trained_vocoder_by_griffin_lim(tmp_path):
    """``train ship --vocoder griffin-lim``: the shipped folder decodes its mels with the weight-free Griffin-Lim
    inverse (no vocoder weights), and every trained component is the model's."""
    import torch

    from foleykit.models.vocoder import GriffinLimVocoder
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.recipes import build_pipeline

    model = build_pipeline("foleykit_demo", size="debug").save_pretrained(tmp_path / "model")
    out = tmp_path / "shipped"
    assert (
        main(["train", "ship", "--model", str(model), "--output", str(out), "--vocoder", "griffin-lim"]) == 0
    )
    trained, shipped = (VideoToAudioPipeline.from_pretrained(p) for p in (model, out))
    assert not isinstance(trained.codec.vocoder, GriffinLimVocoder)
    assert isinstance(shipped.codec.vocoder, GriffinLimVocoder)
    assert not list((out / "vocoder").glob("*.safetensors"))
    torch.testing.assert_close(
        shipped.codec.vae.state_dict(),
        {k: v.half().float() for k, v in trained.codec.vae.state_dict().items()},
    )
    latents = torch.randn(1, *shipped.codec.latent_shape())
    wav = shipped.decode_latents(latents)
    assert (
        wav.shape[-1] == shipped.seq.num_latent_frames * shipped.seq.latent_hop and torch.isfinite(wav).all()
    )
    # the Griffin-Lim waveform's mel is the decoded mel (the trained vocoder of a debug model is far off it)
    mel = shipped.codec.decode_mel(latents).float()
    rebuilt = shipped.codec.mel(wav.float())[..., : mel.shape[-1]]
    gl_err = (rebuilt - mel).abs().mean()
    voc_err = (
        (shipped.codec.mel(trained.decode_latents(latents).float())[..., : mel.shape[-1]] - mel).abs().mean()
    )
    assert gl_err < voc_err
