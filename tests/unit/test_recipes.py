"""Recipes: every debug twin trains one step (forward + backward) and generates in 2 steps; loading rules;
full sizes on the meta device; the ``foleykit models`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from foleykit import registry
from foleykit.errors import ConfigError
from foleykit.models.layers import Conditions
from foleykit.pipelines.sampling import training_scheduler
from foleykit.recipes import RECIPES, build_pipeline, deep_merge, load_recipe, recipe_names


def _condition_parts(pipe, batch: int, frames: np.ndarray):
    parts = {}
    sources = pipe.assembler.sources
    if "text" in sources:
        parts["text"] = pipe.text_encoder.encode(["glass breaking", "dog barking"][:batch])
    feats = pipe.video_encoder.encode(np.stack([frames] * batch))
    if "video" in sources:
        parts["video"] = (pipe.video_condition(feats), None)
    if "audio" in sources:
        parts["audio"] = pipe.audio_encoder.encode([np.zeros(8000, np.float32)] * batch, 16000)
    return parts, feats


@pytest.mark.parametrize("name", RECIPES)
def test_debug_twin_trains_one_step_and_generates(name):
    torch.manual_seed(0)
    pipe = build_pipeline(name, size="debug")
    seq = pipe.seq
    frames = np.random.default_rng(0).integers(0, 255, (seq.num_video_frames, 32, 32, 3), dtype=np.uint8)
    # --- one training step: noisy latents -> denoiser (+ adapters) -> loss -> backward -----------------
    batch = 2
    with torch.no_grad():
        z0 = pipe.codec.encode_audio(torch.randn(batch, seq.num_samples) * 0.1)
    assert z0.shape == (batch, *pipe.codec.latent_shape())
    sched = training_scheduler(pipe.scheduler)
    noise = torch.randn_like(z0)
    t = torch.tensor([10, 700])
    zt = sched.add_noise(z0, noise, t)
    target = sched.get_velocity(z0, noise, t) if sched.config.prediction_type == "v_prediction" else noise
    parts, feats = _condition_parts(pipe, batch, frames)
    drop = {n: torch.tensor([True, False]) for n in pipe.assembler.sources}  # condition dropout
    tokens, mask, glob = pipe.assembler.assemble(parts, batch_size=batch, drop=drop)
    cond = Conditions(
        tokens=tokens,
        mask=mask,
        global_embed=glob,
        seconds_start=torch.zeros(batch),
        seconds_total=torch.full((batch,), seq.duration),
    )
    controls = []
    for a in pipe.adapters.values():
        series = torch.rand(
            batch,
            {
                "control": seq.num_control_frames,
                "energy": seq.num_energy_frames,
                "mel": seq.num_energy_frames,
                "latent": seq.num_latent_frames,
            }[a.grid],
        )
        local = (
            pipe.predictors["onsets"](feats, seq.num_latent_frames, return_features=True)[1]
            if a.features == "local"
            else None
        )
        controls.append(
            (
                a.net,
                a.encoder(series, num_latent_frames=seq.num_latent_frames, codec=pipe.codec, features=local),
                1.0,
            )
        )
    out = pipe.denoiser(zt, t, cond, controls=controls)
    assert out.shape == z0.shape
    loss = torch.nn.functional.mse_loss(out, target)
    loss.backward()
    backbone = pipe.denoiser.unet if pipe.denoiser.kind == "unet" else pipe.denoiser.transformer
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.parameters())
    for a in pipe.adapters.values():  # the zero-initialised output layers receive gradients
        zero_layers = (
            a.net.controlnet_down_blocks if hasattr(a.net, "controlnet_down_blocks") else a.net.control_out
        )
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in zero_layers.parameters())
    # --- a 2-step generation ------------------------------------------------------------------------------
    kw = (
        {"reference_audio": np.zeros(8000, np.float32), "reference_sample_rate": 16000}
        if "audio" in pipe.assembler.sources
        else {}
    )
    result = pipe(frames=frames, prompt="glass breaking", num_inference_steps=2, **kw)
    channels = pipe.codec.audio_channels
    assert result.audio.shape == ((seq.num_samples,) if channels == 1 else (channels, seq.num_samples))
    assert np.isfinite(result.audio).all() and result.sample_rate == seq.sample_rate
    assert sorted(result.controls) == sorted(pipe.adapters)


def test_recipes_are_shipped_with_debug_twins():
    assert set(RECIPES) <= set(recipe_names())
    for name in RECIPES:
        full, debug = load_recipe(name), load_recipe(name, size="debug")
        assert full["size"] == "full" and debug["size"] == "debug" and "debug" not in full
        assert debug["sampling"]["steps"] == 2 and full["sampling"]["steps"] >= 10
        assert debug["denoiser"]["type"] == full["denoiser"]["type"]  # same architecture family
    rewas, sta = load_recipe("rewas"), load_recipe("sta_v2a")
    assert (
        rewas["sampling"]["guidance_form"] == "one_plus_w"
        and rewas["training"]["condition_dropout"]["text"] == 0.3
    )
    assert sta["sampling"]["guide_on"] == ["text"] and sta["sampling"]["steps"] == 200
    assert load_recipe("stable_v2a")["adapters"][0]["depth_factor"] == 0.2


def test_recipe_loading_errors(tmp_path):
    with pytest.raises(ConfigError, match="shipped recipes: .*rewas"):
        load_recipe("nope")
    with pytest.raises(ConfigError, match="size"):
        load_recipe("rewas", size="tiny")
    (tmp_path / "a.yaml").write_text("name: a\ncodec: {}\n")
    assert load_recipe(tmp_path / "a.yaml")["name"] == "a"
    with pytest.raises(ConfigError, match="no debug twin"):
        load_recipe(tmp_path / "a.yaml", size="debug")
    (tmp_path / "b.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_recipe(tmp_path / "b.yaml")
    with pytest.raises(ConfigError, match="preset"):
        build_pipeline({"name": "x", "codec": {"vae": {"preset": "huge"}}, "denoiser": {"type": "dit"}})


def test_deep_merge_rules():
    base = {"a": {"b": 1, "c": 2}, "adapters": [{"name": "x", "w": 1}, {"name": "y", "w": 2}], "l": [1, 2]}
    out = deep_merge(base, {"a": {"c": 3}, "adapters": [{"name": "y", "w": 5}], "l": [9]})
    assert out == {
        "a": {"b": 1, "c": 3},
        "adapters": [{"name": "x", "w": 1}, {"name": "y", "w": 5}],
        "l": [9],
    }
    assert deep_merge(base, {"a": {"_replace": True, "z": 0}})["a"] == {"z": 0}
    with pytest.raises(ConfigError, match="unknown entries"):
        deep_merge(base, {"adapters": [{"name": "q"}]})
    assert base["a"] == {"b": 1, "c": 2}  # inputs untouched


def test_full_recipes_on_the_meta_device():
    rewas = build_pipeline("rewas", meta=True).num_parameters()
    assert rewas["unet"] == 415_954_568
    assert abs(rewas["controlnet_energy"] - 182e6) / 182e6 < 0.01  # ReWaS: "182M trainable" energy adapter
    sv2a = build_pipeline("stable_v2a", meta=True)
    assert len(sv2a.adapters["rms"].net.transformer_blocks) == 5  # 20% of 24 SAO blocks
    assert sv2a.num_parameters()["transformer"] == 1_056_939_136
    assert sv2a.codec.latent_shape() == (64, 216)  # 10 s at 44.1 kHz, 2048 samples per latent


def test_registry_builds_recipes_whose_stages_name_components():
    pipe = registry.build("recipe", "rewas", size="debug")
    trainable = pipe.recipe["training"]["stages"]["adapter"]["trainable"]
    assert sorted(trainable) == ["control_encoder_energy", "controlnet_energy"]
    assert set(trainable) <= set(pipe.components())
    assert training_scheduler(pipe.scheduler).config.num_train_timesteps == 1000


def test_models_command(capsys):
    from foleykit.cli import main

    assert main(["models", "list"]) == 0
    text = capsys.readouterr().out
    assert "rewas" in text and "stable-audio-open-1.0" in text and "(+ debug twin)" in text
    assert main(["models", "info", "vta_ldm", "--size", "debug", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["recipe"] == "vta_ldm" and info["parameters"]["total"] == sum(
        v for k, v in info["parameters"].items() if k != "total"
    )
    assert main(["models", "info", "definitely-not-a-model"]) == 2
    assert "neither a recipe" in capsys.readouterr().err


def test_models_info_on_a_saved_folder(tmp_path, capsys):
    from foleykit.cli import main

    folder = build_pipeline("vta_ldm", size="debug").save_pretrained(tmp_path / "m")
    assert main(["models", "info", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "recipe: vta_ldm" in text and "unet" in text and "diffusers / UNet2DConditionModel" in text
