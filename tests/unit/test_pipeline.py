"""VideoToAudioPipeline on the demonstrator's debug twin: generation, guidance, adapters, inpaint, save."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from foleykit.controls import TemporalControl
from foleykit.errors import ConfigError, ControlError, WeightsNotFoundError
from foleykit.pipelines import VideoToAudioPipeline
from foleykit.pipelines.guidance import combine, effective_scale
from foleykit.recipes import build_pipeline


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _active(pipe) -> VideoToAudioPipeline:
    """Make the zero-initialised adapters matter (as after training)."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for a in pipe.adapters.values():
            for name, p in a.net.named_parameters():
                if name.startswith("control_"):
                    p.add_(torch.randn(p.shape, generator=g) * 0.2)
    return pipe


@pytest.fixture(scope="module")
def pipe() -> VideoToAudioPipeline:
    return build_pipeline("foleykit_demo", size="debug")


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    from foleykit.testing import make_moving_square_frames

    return make_moving_square_frames(25, size=(32, 32), move_frames=(6, 18))


def _inputs(pipe, frames):
    feats = pipe.video_encoder.encode(frames)
    cond, uncond = pipe.encode_conditions(prompt="glass breaking", video_features=feats)
    rms = TemporalControl("rms", np.abs(np.sin(np.linspace(0, 6, 125))).astype(np.float32) * 0.3, 125.0)
    return cond, uncond, rms


def test_generation_output_and_stages(pipe, frames):
    out = pipe(
        frames=frames,
        prompt="glass breaking",
        reference_audio=np.zeros(8000, np.float32),
        reference_sample_rate=16000,
    )
    assert out.audio.dtype == np.float32 and out.audio.shape == (16000,) and out.sample_rate == 16000
    assert np.all(np.abs(out.audio) <= 1.0) and np.isfinite(out.audio).all()
    assert list(out.controls) == ["rms"] and out.controls["rms"].kind == "rms"
    assert (
        out.controls["rms"].num_frames == 125 and out.controls["rms"].rate == 125.0
    )  # predicted, control grid
    assert {"video_features", "controls", "conditions", "denoise", "decode", "total"} <= set(out.timings)
    assert out.latents.shape == (1, 8, 25, 16)


def test_any_duration_is_generated_padded_and_trimmed(pipe, frames):
    out = pipe(frames=frames[:17], prompt="steps")  # 0.68 s of video at 25 fps
    assert out.audio.shape == (round(0.68 * 16000),)
    assert out.latents.shape[2] == 17  # ceil(10880 / 640)
    assert pipe(
        prompt="rain", duration=0.3, controls={"rms": TemporalControl("rms", np.ones(40, np.float32), 125)}
    ).audio.shape == (4800,)


def test_same_seed_same_audio(pipe, frames):
    a = pipe(frames=frames, prompt="dog", seed=3).audio
    assert np.array_equal(a, pipe(frames=frames, prompt="dog", seed=3).audio)
    assert not np.array_equal(a, pipe(frames=frames, prompt="dog", seed=4).audio)


def test_guidance_scale_one_equals_the_conditional_output(pipe, frames):
    cond, uncond, _ = _inputs(pipe, frames)
    assert torch.equal(combine(torch.ones(2), torch.zeros(2), 1.0), torch.ones(2))
    assert torch.equal(combine(torch.ones(2), torch.zeros(2), 3.0), torch.full((2,), 3.0))
    assert effective_scale(3.0, "one_plus_w") == 4.0 and effective_scale(3.0) == 3.0
    kw = {"num_inference_steps": 2}
    plain = pipe.denoise(cond, generator=_gen(), **kw)
    assert torch.equal(pipe.denoise(cond, uncond=uncond, guidance_scale=1.0, generator=_gen(), **kw), plain)
    guided = pipe.denoise(cond, uncond=uncond, guidance_scale=3.0, generator=_gen(), **kw)
    assert not torch.allclose(guided, plain)
    # the conditional half of the batched pair equals the conditional forward alone
    from foleykit.models.layers import Conditions

    x = torch.randn(1, *pipe.codec.latent_shape(), generator=_gen(1))
    both = pipe.denoiser(torch.cat([x, x]), 500, Conditions.cat([uncond, cond]))
    assert torch.allclose(both[1:], pipe.denoiser(x, 500, cond), atol=1e-5)


def test_guidance_per_condition_keeps_the_video(pipe, frames):
    feats = pipe.video_encoder.encode(frames)
    _, text_only = pipe.encode_conditions(prompt="dog", video_features=feats, guide_on=["text"])
    _, everything = pipe.encode_conditions(prompt="dog", video_features=feats, guide_on=["text", "video"])
    cond, _ = pipe.encode_conditions(prompt="dog", video_features=feats)
    n_text = pipe.text_encoder.encode(["dog"])[0].shape[1]
    video = slice(n_text, n_text + 4)  # K = 4 pooled tokens follow the text (STA-V2A eq. 5)
    assert torch.equal(text_only.tokens[:, video], cond.tokens[:, video])  # eq. 7: video stays
    assert not torch.equal(everything.tokens[:, video], cond.tokens[:, video])
    assert torch.equal(text_only.tokens[0, 0], pipe.assembler.null["text"][0])  # learned null text
    _, neg = pipe.encode_conditions(prompt="dog", negative_prompt="music", video_features=feats)
    assert not torch.equal(neg.tokens[:, :1], text_only.tokens[:, :1])


def test_adapter_weight_and_window(frames):
    p = _active(build_pipeline("foleykit_demo", size="debug"))
    cond, uncond, rms = _inputs(p, frames)

    def run(**w):
        controls = p.prepare_controls({"rms": rms}, **w)
        return p.denoise(cond, uncond=uncond, generator=_gen(), num_inference_steps=4, controls=controls)

    base = p.denoise(cond, uncond=uncond, generator=_gen(), num_inference_steps=4)
    on = run()
    assert not torch.allclose(on, base)
    assert torch.equal(run(weights={"rms": 0.0}), base)  # weight 0 == no adapter
    assert torch.equal(run(windows={"rms": (1.0, 1.0)}), base)  # window outside every step == no adapter
    half = run(windows={"rms": (0.0, 0.5)})
    assert not torch.allclose(half, base) and not torch.allclose(half, on)
    with pytest.raises(ConfigError, match="unknown adapters"):
        run(weights={"nope": 1.0})
    with pytest.raises(ConfigError, match="start"):
        run(windows={"rms": (0.8, 0.2)})


def test_follow_envelope_after_decoding(pipe, frames, monkeypatch):
    from foleykit.controls import follow_envelope, rms_envelope

    rms = TemporalControl("rms", np.where(np.arange(125) < 60, 0.0, 0.05).astype(np.float32), 125.0)
    plain = pipe(frames=frames, prompt="steps", controls={"rms": rms}, seed=1)
    pinned = pipe(frames=frames, prompt="steps", controls={"rms": rms}, seed=1, follow_envelope=1.0)
    assert "follow_envelope" in pinned.timings and "follow_envelope" not in plain.timings
    np.testing.assert_allclose(pinned.audio, follow_envelope(plain.audio, 16000, rms), atol=1e-6)
    assert rms_envelope(pinned.audio, 16000).values[5:50].max() < 0.0125
    with pytest.raises(ConfigError, match="follow_envelope"):
        pipe(frames=frames, follow_envelope=2.0)
    # a model default (the shipped model sets one) follows like an explicit strength, but not while the
    # RMS adapter is turned off ("no control"); an explicit strength still applies then
    monkeypatch.setitem(pipe.defaults, "follow_envelope", 1.0)
    default = pipe(frames=frames, prompt="steps", controls={"rms": rms}, seed=1)
    np.testing.assert_allclose(default.audio, pinned.audio, atol=1e-6)
    off = {"rms": 0.0}
    free = pipe(frames=frames, prompt="steps", controls={"rms": rms}, seed=1, adapter_weights=off)
    assert "follow_envelope" not in free.timings
    forced = pipe(
        frames=frames, prompt="steps", controls={"rms": rms}, seed=1, adapter_weights=off, follow_envelope=1.0
    )
    np.testing.assert_allclose(forced.audio, follow_envelope(free.audio, 16000, rms), atol=1e-6)
    monkeypatch.setattr(pipe.adapters["rms"], "control_kind", "energy")  # a model without an RMS adapter
    with pytest.raises(ConfigError, match="RMS timing adapter"):
        pipe(frames=frames, follow_envelope=0.5)


def test_fresh_adapter_leaves_the_base_unchanged(pipe, frames):
    cond, uncond, rms = _inputs(pipe, frames)
    base = pipe.denoise(cond, uncond=uncond, generator=_gen(), num_inference_steps=2)
    with_adapter = pipe.denoise(
        cond,
        uncond=uncond,
        generator=_gen(),
        num_inference_steps=2,
        controls=pipe.prepare_controls({"rms": rms}),
    )
    assert torch.equal(with_adapter, base)


def test_inpainting_keeps_the_known_region(pipe, frames):
    cond, uncond, _ = _inputs(pipe, frames)
    init = torch.randn(1, *pipe.codec.latent_shape(), generator=_gen(9))
    mask = torch.zeros(25)
    mask[10:15] = 1
    out = pipe.denoise(
        cond, uncond=uncond, generator=_gen(), num_inference_steps=3, init_latents=init, inpaint_mask=mask
    )
    keep = mask == 0
    assert torch.equal(out[:, :, keep], init[:, :, keep])
    assert not torch.allclose(out[:, :, 10:15], init[:, :, 10:15])
    nothing = pipe.denoise(
        cond, generator=_gen(), num_inference_steps=2, init_latents=init, inpaint_mask=torch.zeros(25)
    )
    assert torch.equal(nothing, init)
    with pytest.raises(ConfigError, match="inpaint_mask"):
        pipe.denoise(cond, num_inference_steps=2, init_latents=init)
    with pytest.raises(ConfigError, match="T_lat=25"):
        pipe.denoise(cond, num_inference_steps=2, init_latents=init, inpaint_mask=torch.ones(24))


def test_start_latents_run_only_the_last_share_of_the_schedule(pipe, frames):
    cond, uncond, _ = _inputs(pipe, frames)
    start = torch.randn(1, *pipe.codec.latent_shape(), generator=_gen(9)) * 3
    seen = []

    def run(strength, **kw):
        seen.clear()
        return pipe.denoise(
            cond,
            uncond=uncond,
            generator=_gen(),
            num_inference_steps=10,
            start_latents=start,
            strength=strength,
            callback=lambda i, t, x: seen.append(int(t)),
            **kw,
        )

    full = run(1.0)
    assert len(seen) == 10
    plain = pipe.denoise(cond, uncond=uncond, generator=_gen(), num_inference_steps=10)
    assert torch.equal(full, plain)  # strength 1: sampled from noise, the start latents play no part
    timesteps = list(seen)
    near = run(0.3)
    assert seen == timesteps[7:]  # the last 3 of the 10 steps
    far = run(0.8)
    assert seen == timesteps[2:]

    def dist(x):
        return float((x - start).pow(2).mean())

    assert dist(near) < dist(far) < dist(full)
    with pytest.raises(ConfigError, match="strength"):
        run(0.0)


def test_init_audio_is_spotted_on_the_envelope_retimed_and_encoded(pipe, frames, monkeypatch):
    from foleykit.controls import rms_envelope

    seq = pipe.seq.with_duration(1.0)
    rec = (np.random.default_rng(0).standard_normal(4000) * 0.3).astype(np.float32)  # 0.25 s of noise
    rms = TemporalControl("rms", np.where(np.arange(125) < 60, 0.0, 0.05).astype(np.float32), 125.0)
    encoded = []
    monkeypatch.setattr(pipe, "encode_audio", lambda wav, sr: encoded.append(wav) or torch.zeros(1))
    pipe.init_latents_from_audio(rec, 16000, seq, envelope=rms)
    wav = encoded[-1]
    assert wav.shape == (16000,)
    env = rms_envelope(wav, 16000).values
    assert env[10:50].max() < 0.0125 and np.allclose(env[75:115], 0.05, rtol=0.2)  # re-timed to the curve
    pipe.init_latents_from_audio(rec, 16000, seq)
    np.testing.assert_array_equal(encoded[-1][4000:8000], rec)  # no envelope: the recording looped as it is
    click = np.zeros(8000, np.float32)
    click[2000:2040] = 0.9
    hit = np.full(125, 0.002, np.float32)
    hit[80] = 0.2  # one hit at 0.644 s
    pipe.init_latents_from_audio(click, 16000, seq, envelope=TemporalControl("rms", hit, 125.0))
    assert abs(np.argmax(np.abs(encoded[-1])) / 16000 - 80.5 / 125) < 0.01  # spotted: the click on the hit
    pipe.init_latents_from_audio(np.tile(rec, 2), 8000, seq)  # resampled to the model's rate
    assert encoded[-1].shape == (16000,)
    with pytest.raises(ConfigError, match="silent"):
        pipe.init_latents_from_audio(np.zeros(4000, np.float32), 16000, seq)


def test_generation_from_a_recording(pipe, frames):
    rms = TemporalControl("rms", np.full(125, 0.05, np.float32), 125.0)
    rec = (np.random.default_rng(1).standard_normal(16000) * 0.1).astype(np.float32)
    base = pipe(frames=frames, controls={"rms": rms}, seed=2)
    near = pipe(
        frames=frames,
        controls={"rms": rms},
        seed=2,
        init_audio=rec,
        init_sample_rate=16000,
        init_strength=0.2,
    )
    start = pipe.init_latents_from_audio(rec, 16000, pipe.seq.with_duration(1.0), envelope=rms)
    assert "init_audio" in near.timings and "init_audio" not in base.timings
    assert float((near.latents - start).pow(2).mean()) < float((base.latents - start).pow(2).mean())
    with pytest.raises(ConfigError, match="init_strength"):
        pipe(frames=frames, controls={"rms": rms}, init_audio=rec, init_sample_rate=16000, init_strength=1.5)


def test_encode_audio_resamples_and_matches_the_latent_grid(pipe):
    z = pipe.encode_audio(np.zeros(22050, np.float32), 22050)
    assert z.shape == (1, 8, 25, 16)
    assert pipe.decode_latents(z, 16000).shape == (1, 16000)


def test_controls_given_by_the_user_or_measured_on_audio(pipe, frames, tmp_path):
    from foleykit.controls import save_control
    from foleykit.testing import make_click_track

    values = np.linspace(0, 0.5, 125).astype(np.float32)
    given = TemporalControl("rms", values, 125.0)
    out = pipe(frames=frames, controls=given)
    assert np.array_equal(out.controls["rms"].values, values)
    path = save_control(given, tmp_path / "rms.json")
    assert np.array_equal(pipe(frames=frames, controls=[path]).controls["rms"].values, values)
    classes = TemporalControl("rms_class", np.full(125, 40), 125.0)  # mu-law classes are decoded
    assert pipe(frames=frames, controls={"rms": classes}).controls["rms"].kind == "rms"
    with pytest.raises(ControlError, match="'onsets' control was given"):
        pipe(frames=frames, controls={"rms": TemporalControl("onsets", np.zeros(25, np.float32), 25.0)})
    clicks = make_click_track([0.5], sample_rate=16000, duration=1.0)
    env = pipe(frames=frames, control_audio=clicks, control_audio_sample_rate=16000).controls["rms"]
    assert (
        abs(int(np.argmax(env.values)) / 125.0 - 0.5) < 0.05
    )  # the click's envelope peak drives the adapter
    with pytest.raises(ControlError, match="needs a 'rms' control"):
        pipe(prompt="rain", duration=1.0)  # no video, no control
    with pytest.raises(ConfigError, match="either a video file or frames"):
        pipe("x.mp4", frames=frames)


def test_video_file_input(pipe, tmp_path):
    from foleykit.testing import make_moving_square_video

    path = make_moving_square_video(tmp_path / "v.mp4", duration=0.8, size=(64, 48), move_frames=(5, 12))
    out = pipe(path, prompt="clack")
    assert out.audio.shape == (12800,)  # the video is shorter than the model window


def test_save_and_load_round_trip_is_bit_identical(pipe, frames, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "model")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "VideoToAudioPipeline"
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert index["vocoder"] == ["transformers", "SpeechT5HifiGan"]
    assert index["transformer"] == ["diffusers", "StableAudioDiTModel"]
    assert index["controlnet_rms"] == ["foleykit.models.control_adapter", "DiTControlNetModel"]
    assert index["text_encoder"] == ["foleykit.spec", "DebugTextEncoder"]
    assert index["_foleykit"]["recipe"]["name"] == "foleykit_demo"
    back = VideoToAudioPipeline.from_pretrained(folder)
    a, b = pipe.components(), back.components()
    assert a.keys() == b.keys()
    for name in a:
        sa, sb = a[name].state_dict(), b[name].state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name
    assert back.defaults == pipe.defaults and back.seq == pipe.seq
    assert np.array_equal(back(frames=frames, prompt="dog").audio, pipe(frames=frames, prompt="dog").audio)


def test_fp16_save_loads_in_float32(pipe, frames, tmp_path):
    full = pipe.save_pretrained(tmp_path / "fp32")
    half = pipe.save_pretrained(tmp_path / "fp16", dtype=torch.float16)

    def size(folder):
        return (folder / "transformer" / "diffusion_pytorch_model.safetensors").stat().st_size

    assert size(half) < 0.6 * size(full)
    back = VideoToAudioPipeline.from_pretrained(half)
    assert back.dtype == torch.float32
    w, w16 = pipe.denoiser.transformer.proj_in.weight, back.denoiser.transformer.proj_in.weight
    assert torch.equal(w16, w.half().float())
    assert np.isfinite(back(frames=frames, prompt="dog").audio).all()


def test_saving_is_atomic_and_loading_checks_components(pipe, tmp_path, monkeypatch):
    folder = pipe.save_pretrained(tmp_path / "model")
    import foleykit.pipelines.components as comp

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(comp, "save_component", boom)
    with pytest.raises(RuntimeError):
        pipe.save_pretrained(tmp_path / "model")
    assert (folder / "model_index.json").is_file()  # the previous folder is intact
    assert not any(p.name.startswith(".model.tmp") for p in tmp_path.iterdir())
    monkeypatch.undo()
    import shutil

    shutil.rmtree(folder / "controlnet_rms")
    with pytest.raises(WeightsNotFoundError, match="controlnet_rms"):
        VideoToAudioPipeline.from_pretrained(folder)
    with pytest.raises(WeightsNotFoundError, match="not-a-model"):
        VideoToAudioPipeline.from_pretrained("not-a-model")


def test_condition_assembler_nulls_and_film_embedding():
    from foleykit.pipelines.guidance import ConditionAssembler

    torch.manual_seed(0)
    asm = ConditionAssembler(
        cross_dim=4,
        sources={
            "text": {"dim": 6, "null": "zero"},
            "video": {"dim": 4, "null": "learned", "project": False},
        },
        global_from="text",
        global_dim=3,
    )
    text = (torch.ones(2, 3, 6), torch.tensor([[True, True, False], [True, True, True]]))
    video = (torch.full((2, 2, 4), 5.0), None)
    tok, mask, glob = asm.assemble(
        {"text": text, "video": video},
        batch_size=2,
        drop={"text": torch.tensor([True, False]), "video": False},
    )
    assert tok.shape == (2, 5, 4) and glob.shape == (2, 3)
    assert torch.all(tok[0, :3] == 0) and mask[0, :3].all()  # zero null: zeros that are attended to
    assert torch.equal(tok[:, 3:], video[0])  # video kept, not projected
    assert torch.equal(glob[0], asm.global_null_embedding) and not torch.equal(
        glob[1], asm.global_null_embedding
    )
    tok2, _mask2, _ = asm.assemble({"text": None, "video": None}, batch_size=1)
    assert tok2.shape == (1, 2, 4) and torch.equal(tok2[0, 1], asm.null["video"][0])  # absent -> nulls
    with pytest.raises(ConfigError, match="not used by this model"):
        asm.assemble({"audio": None}, batch_size=1)
    with pytest.raises(ConfigError, match="batch"):
        asm.assemble({"text": text}, batch_size=3)
    with pytest.raises(ConfigError, match="unknown condition sources"):
        ConditionAssembler(cross_dim=4, sources={"smell": {"dim": 2}})


def test_samplers_and_training_schedule():
    from foleykit.pipelines.sampling import build_scheduler, is_continuous, swap_scheduler, training_scheduler

    dpm = build_scheduler(
        "dpmsolver++", {"prediction_type": "v_prediction", "beta_schedule": "squaredcos_cap_v2"}
    )
    assert type(dpm).__name__ == "DPMSolverMultistepScheduler" and dpm.config.algorithm_type == "dpmsolver++"
    ddim = swap_scheduler(dpm, "ddim")
    assert type(ddim).__name__ == "DDIMScheduler" and ddim.config.prediction_type == "v_prediction"
    train = training_scheduler(dpm)
    assert torch.equal(train.alphas_cumprod, ddim.alphas_cumprod) and not is_continuous(dpm)
    with pytest.raises(ConfigError, match="unknown scheduler"):
        build_scheduler("warp-drive")


def test_griffin_lim_pipeline_saves_without_vocoder_weights(frames, tmp_path):
    from foleykit.recipes import load_recipe

    recipe = load_recipe("foleykit_demo", size="debug")
    recipe["codec"]["vocoder"] = {"type": "griffin_lim", "n_iter": 4}
    p = build_pipeline(recipe)
    out = p(frames=frames, prompt="door")
    folder = p.save_pretrained(tmp_path / "gl")
    assert json.loads((folder / "vocoder" / "config.json").read_text())["_foleykit_spec"]["pass_seq"] is True
    assert not (folder / "vocoder" / "model.safetensors").exists()
    back = VideoToAudioPipeline.from_pretrained(folder)
    assert back.codec.vocoder.n_iter == 4
    assert np.array_equal(back(frames=frames, prompt="door").audio, out.audio)


def test_istft_vocoder_pipeline_saves_its_spec_and_weights(frames, tmp_path):
    from foleykit.models.vocoder import IstftVocoder
    from foleykit.recipes import load_recipe

    recipe = load_recipe("foleykit_demo", size="debug")
    recipe["codec"]["vocoder"] = {"type": "istft", "preset": "debug", "num_layers": 3}
    p = build_pipeline(recipe)
    assert isinstance(p.codec.vocoder, IstftVocoder) and len(p.codec.vocoder.blocks) == 3
    out = p(frames=frames, prompt="door")
    folder = p.save_pretrained(tmp_path / "istft")
    spec = json.loads((folder / "vocoder" / "config.json").read_text())["_foleykit_spec"]
    assert spec["class"] == "foleykit.models.vocoder.IstftVocoder" and spec["kwargs"]["num_layers"] == 3
    assert (folder / "vocoder" / "model.safetensors").is_file()
    back = VideoToAudioPipeline.from_pretrained(folder)
    assert isinstance(back.codec.vocoder, IstftVocoder)
    np.testing.assert_allclose(back(frames=frames, prompt="door").audio, out.audio, atol=1e-5)


def test_expansion_decodes_the_predicted_curve_of_this_call_only(
    pipe, frames, monkeypatch, varying_rms_mapper
):
    """``pipe(..., expansion=G)`` and ``predict_controls(..., expansion=G)`` decode the RMS-Mapper's curve with
    valley expansion G for that call: the same curve as a mapper built with G, the model's own unchanged."""
    mapper = pipe.predictors["rms"]
    feats = pipe.video_encoder.encode(frames)
    own = pipe.predict_controls(feats)["rms"].values
    deep = pipe.predict_controls(feats, expansion=10.0)["rms"].values
    assert mapper.expansion == 1.0 and (deep <= own + 1e-7).all() and (deep < own - 1e-6).any()
    monkeypatch.setattr(mapper, "expansion", 10.0)
    np.testing.assert_array_equal(pipe.predict_controls(feats)["rms"].values, deep)
    monkeypatch.setattr(mapper, "expansion", 1.0)
    out = pipe(frames=frames, prompt="steps", seed=1, expansion=10.0)
    np.testing.assert_allclose(out.controls["rms"].values, deep, atol=1e-6)
    with pytest.raises(ConfigError, match="expansion"):
        pipe(frames=frames, expansion=0.5)
    energy = build_pipeline("rewas", size="debug")  # no RMS-Mapper: nothing to expand
    with pytest.raises(ConfigError, match="RMS"):
        energy.predict_controls(energy.video_encoder.encode(frames), expansion=2.0)
    with pytest.raises(ConfigError, match="RMS"):
        energy(frames=frames, expansion=2.0)
