"""Published backbone folders as diffusers writes them (``AudioLDMPipeline`` / ``StableAudioPipeline``
``save_pretrained``, tiny random weights): `foleykit generate --model FOLDER` runs them with nothing else, the
guidance of AudioLDM recipes equals diffusers' AudioLDMPipeline step for step, and ``--backbone`` trains."""

from __future__ import annotations

import itertools
import json
import shlex
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
import torch

from foleykit.errors import ConfigError, ModelError

PROMPT = "a dog barks on gravel"


# --- tiny published folders, built from the diffusers / transformers classes -------------------------------
def _roberta_tokenizer(folder: Path, max_length: int):
    """A byte-level BPE (RoBERTa) tokenizer over single letters, like CLAP's (no merges, no download)."""
    import inspect

    from transformers import RobertaTokenizer

    tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "\u0120", *string.ascii_lowercase]
    vocab = {t: i for i, t in enumerate(tokens)}
    if "vocab" in inspect.signature(RobertaTokenizer.__init__).parameters:  # transformers 5
        return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=max_length)
    folder.mkdir(parents=True, exist_ok=True)  # transformers 4 reads files
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return RobertaTokenizer(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        model_max_length=max_length,
    )


def write_tiny_audioldm(folder: Path) -> Path:
    """An AudioLDM folder (AudioLDM geometry: 16 kHz, 64 mels, hop 160, 4x VAE, 8 latent channels) written by
    diffusers' ``AudioLDMPipeline.save_pretrained``; CLAP projection 24-d (the debug recipes say 16)."""
    from diffusers import AudioLDMPipeline, AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import (
        ClapTextConfig,
        ClapTextModelWithProjection,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
    )

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=8,
        out_channels=8,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(16, 32),
        attention_head_dim=4,
        class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=24,
        class_embeddings_concat=True,
    )
    vae = AutoencoderKL(
        in_channels=1,
        out_channels=1,
        latent_channels=8,
        block_out_channels=(8, 8, 8),
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        norm_num_groups=4,
        scaling_factor=0.9,
    )
    vocoder = SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=64,
            sampling_rate=16000,
            upsample_initial_channel=16,
            upsample_rates=[5, 4, 4, 2],
            upsample_kernel_sizes=[10, 8, 8, 4],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1]],
            normalize_before=False,
        )
    )
    text = ClapTextModelWithProjection(
        ClapTextConfig(
            vocab_size=40,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            projection_dim=24,
            max_position_embeddings=32,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
    )
    scheduler = DDIMScheduler(  # AudioLDM's published sampler config
        beta_start=0.0015,
        beta_end=0.0195,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    tokenizer = _roberta_tokenizer(folder.parent / f"{folder.name}-tokenizer-files", max_length=24)
    AudioLDMPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler, vocoder=vocoder
    ).save_pretrained(str(folder))
    return folder


def write_tiny_stable_audio(folder: Path) -> Path:
    """A Stable Audio Open folder (44.1 kHz stereo Oobleck, 2048 samples per latent) written by diffusers'
    ``StableAudioPipeline.save_pretrained`` (EDM sampler, as diffusers' own tests, no torchsde needed)."""
    from diffusers import (
        AutoencoderOobleck,
        EDMDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = StableAudioDiTModel(
        sample_size=32,
        in_channels=8,
        out_channels=8,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        num_key_value_attention_heads=1,
        cross_attention_dim=16,
        time_proj_dim=16,
        global_states_input_dim=32,
        cross_attention_input_dim=16,
    )
    projection = StableAudioProjectionModel(
        text_encoder_dim=16, conditioning_dim=16, min_value=0, max_value=64
    )
    vae = AutoencoderOobleck(
        encoder_hidden_size=16,
        downsampling_ratios=[2, 4, 4, 8, 8],
        channel_multiples=[1, 1, 1, 1, 1],
        decoder_channels=4,
        decoder_input_channels=8,
        audio_channels=2,
        sampling_rate=44100,
    )
    t5 = T5EncoderModel(T5Config(vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2))
    words = ["<pad>", "</s>", "<unk>", *PROMPT.split(), "glass", "breaking"]
    wordlevel = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    wordlevel.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordlevel, pad_token="<pad>", unk_token="<unk>", eos_token="</s>", model_max_length=8
    )
    scheduler = EDMDPMSolverMultistepScheduler(
        sigma_min=0.3,
        sigma_max=500,
        sigma_data=1.0,
        sigma_schedule="exponential",
        prediction_type="v_prediction",
    )
    StableAudioPipeline(
        vae=vae,
        text_encoder=t5,
        projection_model=projection,
        tokenizer=tokenizer,
        transformer=transformer,
        scheduler=scheduler,
    ).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def audioldm_folder(tmp_path_factory) -> Path:
    return write_tiny_audioldm(tmp_path_factory.mktemp("published") / "audioldm")


@pytest.fixture(scope="module")
def stable_audio_folder(tmp_path_factory) -> Path:
    return write_tiny_stable_audio(tmp_path_factory.mktemp("published") / "stable-audio-open")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from foleykit.testing import make_moving_square_video

    return make_moving_square_video(tmp_path_factory.mktemp("video") / "clip.mp4", duration=1.5)


# --- guidance exactly as AudioLDM ----------------------------------------------------------------------------
def _steps_diffusers(
    folder: Path, latents: torch.Tensor, *, steps: int, scale: float, **kw
) -> list[torch.Tensor]:
    from diffusers import AudioLDMPipeline

    ref = AudioLDMPipeline.from_pretrained(str(folder))
    ref.set_progress_bar_config(disable=True)
    seen: list[torch.Tensor] = []
    ref(
        audio_length_in_s=1.0,
        num_inference_steps=steps,
        guidance_scale=scale,
        latents=latents.clone(),
        callback=lambda i, t, x: seen.append(x.clone()),
        callback_steps=1,
        **kw,
    )
    return seen


def _steps_foleykit(pipe, latents: torch.Tensor, *, steps: int, scale: float, **kw) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    cond, uncond = pipe.encode_conditions(**kw)
    pipe.denoise(
        cond,
        uncond=uncond,
        latents=latents.clone(),
        num_inference_steps=steps,
        guidance_scale=scale,
        callback=lambda i, t, x: seen.append(x.clone()),
    )
    return seen


def test_guided_steps_equal_diffusers_audioldm_pipeline(audioldm_folder):
    """Same folder, same latents, same sampler: AudioLDM's unconditional branch is the CLAP embedding of ""
    (or of the negative prompt), the guided noise eps_u + w (eps_c - eps_u); a run without prompt uses ""."""
    from foleykit.pipelines.published import load_published

    pipe = load_published(audioldm_folder)
    assert pipe.assembler.config.sources["text"]["null"] == "empty_prompt"
    embeds = pipe.text_encoder.encode_tokens([PROMPT, "", "glass breaking"])
    assert all(not torch.allclose(a, b) for a, b in itertools.pairwise(embeds))  # the prompts matter
    pipe.text_encoder.clear_cache()  # encoded one at a time below, as diffusers does (batching moves ~1e-7)
    latents = torch.randn(
        1, *pipe.codec.latent_shape(pipe.seq.with_duration(1.0)), generator=torch.Generator().manual_seed(0)
    )
    ours = _steps_foleykit(pipe, latents, steps=3, scale=2.5, prompt=PROMPT)
    ref = _steps_diffusers(audioldm_folder, latents, steps=3, scale=2.5, prompt=PROMPT)
    assert len(ours) == len(ref) == 3
    assert not torch.allclose(ref[0], latents * pipe.scheduler.init_noise_sigma)  # the step does something
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    for kw in ({"prompt": None}, {"prompt": PROMPT, "negative_prompt": "glass breaking"}):
        ours = _steps_foleykit(pipe, latents, steps=1, scale=2.5, **kw)
        ref = _steps_diffusers(
            audioldm_folder, latents, steps=1, scale=2.5, **{**kw, "prompt": kw["prompt"] or ""}
        )
        torch.testing.assert_close(ours[0], ref[0], rtol=0, atol=1e-6)


def test_empty_prompt_null_is_the_encoders_embedding_of_nothing(audioldm_folder, tmp_path):
    """Dropped rows (training dropout, the unconditional branch) and absent prompts become the tokens of "";
    the embedding is a saved buffer, not a trained parameter."""
    from foleykit.pipelines.guidance import ConditionAssembler
    from foleykit.pipelines.published import load_published

    pipe = load_published(audioldm_folder)
    enc, asm = pipe.text_encoder, pipe.assembler
    empty = enc.encode_tokens([""])[0]
    assert torch.equal(asm.prompt_null("text"), empty) and not list(asm.parameters())
    tok, mask = enc.encode([PROMPT, "glass"])
    _, _, glob = asm.assemble({"text": (tok, mask)}, batch_size=2, drop={"text": torch.tensor([True, False])})
    torch.testing.assert_close(glob[0], empty[0], rtol=0, atol=0)
    torch.testing.assert_close(glob[1], tok[1, 0], rtol=0, atol=0)
    _, _, absent = asm.assemble({"text": None}, batch_size=1)
    torch.testing.assert_close(absent[0], empty[0], rtol=0, atol=0)
    asm.save_pretrained(tmp_path / "asm")
    back = ConditionAssembler.from_pretrained(tmp_path / "asm")
    assert torch.equal(back.prompt_null("text"), empty)
    with pytest.raises(ConfigError, match="shape"):
        asm.set_prompt_null("text", torch.zeros(2, empty.shape[-1]))


# --- generate --model FOLDER, nothing else installed -------------------------------------------------------
def _generate(monkeypatch, tmp_path, capsys, argv: list[str]) -> tuple[int, str]:
    from foleykit.cli import main
    from foleykit.product.runtime import clear_model_cache

    home = tmp_path / "clean-home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("FOLEYKIT_HOME", str(home))
    clear_model_cache()
    capsys.readouterr()
    rc = main(["generate", *argv])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("which", ["audioldm", "stable_audio_open"])
def test_generate_runs_a_published_folder_alone(
    which, audioldm_folder, stable_audio_folder, clip, tmp_path, monkeypatch, capsys
):
    import soundfile as sf

    from foleykit.media import probe

    folder = audioldm_folder if which == "audioldm" else stable_audio_folder
    out = tmp_path / f"{which}.wav"
    rc, err = _generate(
        monkeypatch,
        tmp_path,
        capsys,
        [
            str(clip),
            "-o",
            str(out),
            "--model",
            str(folder),
            "--prompt",
            PROMPT,
            "--steps",
            "2",
            "--seed",
            "3",
        ],
    )
    assert rc == 0, err
    wav, sr = sf.read(out)
    assert sr == (16000 if which == "audioldm" else 44100)
    assert len(wav) == round(probe(clip).video_duration * sr)
    assert np.isfinite(wav).all() and np.abs(wav).max() > 0
    notes = [line for line in err.splitlines() if line.startswith("foleykit: note:")]
    assert len(notes) == 1 and "not trained for this backbone: timing is not applied" in notes[0], err
    side = json.loads(Path(f"{out}.json").read_text())
    model = side["model"]
    recipe = "rewas" if which == "audioldm" else "stable_v2a"
    assert model["recipe"] == recipe and model["backbone"]["path"] == str(folder.resolve())
    assert model["backbone"]["pipeline"] == (
        "AudioLDMPipeline" if which == "audioldm" else "StableAudioPipeline"
    )
    assert len(model["backbone"]["fingerprint"]) == 16
    text = "ClapTextModelWithProjection" if which == "audioldm" else "T5EncoderModel"
    assert text in model["used"]["text_encoder"] and model["not_trained"]
    assert model["note"] == notes[0][len("foleykit: note: ") :]
    # the recorded command runs the backbone with the same recipe again
    assert shlex.split(side["reproduce"])[5:9] == ["--model", str(folder.resolve()), "--recipe", recipe]


def test_stable_audio_open_published_sampler_without_torchsde(stable_audio_folder, tmp_path):
    """The published CosineDPMSolverMultistepScheduler needs torchsde: without it the same sigmas and DiT
    timesteps (atan(sigma) 2/pi) run as DPM-Solver++ ODE, said in the note."""
    from foleykit.models import published_config
    from foleykit.pipelines.published import load_published

    pytest.importorskip("diffusers")
    try:
        import torchsde  # noqa: F401

        pytest.skip("torchsde is installed: the published sampler itself runs")
    except ImportError:
        pass
    folder = tmp_path / "sao"
    shutil.copytree(stable_audio_folder, folder)
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(published_config("stable-audio-open-1.0", "scheduler"))
    )
    index = json.loads((folder / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "CosineDPMSolverMultistepScheduler"]
    (folder / "model_index.json").write_text(json.dumps(index))
    pipe = load_published(folder)
    sched = pipe.scheduler
    assert type(sched).__name__ == "CosineDPMSolverODEScheduler" and "torchsde" in pipe.model_info["note"]
    sched.set_timesteps(4)
    torch.testing.assert_close(sched.timesteps, sched.sigmas[:-1].atan() * 2 / torch.pi)
    assert float(sched.sigmas[0]) == pytest.approx(500.0) and pipe.denoiser.timestep_scale == 1.0
    out = pipe(prompt=PROMPT, duration=0.2, num_inference_steps=2)
    assert out.audio.shape == (2, round(0.2 * 44100)) and np.isfinite(out.audio).all()


def test_recipe_choice_and_errors(audioldm_folder, stable_audio_folder, clip, tmp_path, monkeypatch, capsys):
    from foleykit.pipelines import VideoToAudioPipeline

    def run(*argv: str) -> tuple[int, str]:
        return _generate(
            monkeypatch, tmp_path, capsys, [str(clip), "-o", str(tmp_path / "x.wav"), "--steps", "1", *argv]
        )

    rc, err = run("--model", str(stable_audio_folder), "--recipe", "rewas")
    assert rc == 2 and "not built on Stable Audio Open" in err and "stable_v2a" in err
    rc, err = run("--backbone", str(audioldm_folder), "--recipe", "vta_ldm")
    assert rc == 2 and "trained" in err and "convert" in err and len(err.strip().splitlines()) == 1
    rc, err = run("--model", str(audioldm_folder), "--backbone", str(audioldm_folder))
    assert rc == 2 and "not both" in err
    rc, err = run("--backbone", str(audioldm_folder), "--recipe", "rewas")
    assert rc == 0, err
    # a foleykit loader given a published folder says how to run it, naming the folder's own recipe
    with pytest.raises(ModelError) as info:
        VideoToAudioPipeline.from_pretrained(stable_audio_folder)
    assert "stable_v2a" in str(info.value) and "rewas" not in str(info.value)


def test_folders_load_through_known_classes_only(audioldm_folder, tmp_path):
    from foleykit.pipelines.published import load_published

    folder = tmp_path / "audioldm"
    shutil.copytree(audioldm_folder, folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["unet"] = ["my_package.models", "EvilUNet"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelError, match="UNet2DConditionModel"):
        load_published(folder)


# --- --backbone in training ----------------------------------------------------------------------------------
def test_debug_adapter_on_a_full_backbone_builds_from_the_folder(audioldm_folder):
    """``--config debug --backbone FOLDER``: debug-size adapter, predictor and video encoder around the
    folder's UNet, VAE, vocoder, CLAP text tower and sampler; the FiLM input follows the UNet (24, not the
    debug recipe's 16)."""
    from foleykit.recipes import build_pipeline, load_recipe

    pipe = build_pipeline(load_recipe("rewas", size="debug"), backbone=audioldm_folder)
    assert pipe.denoiser.global_dim == 24 and pipe.assembler.config.global_dim == 24
    assert type(pipe.text_encoder.model).__name__ == "ClapTextModelWithProjection"
    assert pipe.recipe["backbone"]["loaded"]["path"] == str(audioldm_folder.resolve())
    adapter = pipe.adapters["energy"]
    assert adapter.encoder.config.out_channels == 4  # the debug adapter
    assert torch.equal(adapter.net.conv_in.weight, pipe.denoiser.unet.conv_in.weight)
    cond, uncond = pipe.encode_conditions(prompt=PROMPT)
    controls = pipe.prepare_controls({"energy": _energy(pipe)})
    x = pipe.denoise(cond, uncond=uncond, controls=controls, num_inference_steps=1)
    assert x.shape[1:] == pipe.codec.latent_shape() and torch.isfinite(x).all()


def _energy(pipe):
    from foleykit.controls import TemporalControl

    n = round(pipe.seq.duration * pipe.seq.mel_rate)
    return TemporalControl(
        kind="energy", values=np.linspace(-8, -2, n, dtype=np.float32), rate=pipe.seq.mel_rate
    )


def test_train_debug_adapter_with_backbone(audioldm_folder, tmp_path, monkeypatch, capsys):
    """`foleykit train --config debug --backbone FOLDER` trains (it crashed on the 16-d FiLM input before), and
    a recipe or folder that does not fit stops before anything is written, in one line."""
    from foleykit.cli import main

    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    base = ["train", "--config", "debug", "--backbone", str(audioldm_folder), "--output", str(out)]
    for recipe, match in (
        ("foleykit_demo", "takes nothing from a published backbone"),
        ("stable_v2a", "an AudioLDM"),
    ):
        capsys.readouterr()
        assert main([*base, "--recipe", recipe]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0] and not out.exists()
    assert main([*base, "--recipe", "rewas", "--stage", "adapter", "adapter.max_steps=1"]) == 0
    model = next(p for p in (out / "model", out / "adapter" / "model") if (p / "model_index.json").is_file())
    index = json.loads((model / "model_index.json").read_text())
    loaded = index["_foleykit"]["recipe"]["backbone"]["loaded"]
    assert loaded["path"] == str(audioldm_folder.resolve()) and "unet" in loaded["used"]


def test_a_hub_id_in_the_local_cache(audioldm_folder, tmp_path, monkeypatch):
    """`--model cvssp/audioldm-m-full` finds the snapshot in the local Hugging Face cache (never downloads) and
    the sidecar identity names the hub id."""
    import huggingface_hub.constants

    from foleykit.pipelines.published import load_published

    repo = tmp_path / "hub" / "models--cvssp--audioldm-m-full"
    shutil.copytree(audioldm_folder, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "home"))
    pipe = load_published("cvssp/audioldm-m-full")
    info = pipe.model_info
    assert info["name"] == "cvssp/audioldm-m-full" and info["backbone"]["hub_id"] == "cvssp/audioldm-m-full"
    assert info["recipe"] == "rewas" and pipe.text_encoder.folder.parent == Path(info["path"])
