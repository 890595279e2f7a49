"""End to end: synthetic data -> feature cache -> train every stage (debug) -> checkpoints -> crash + resume
(bit-identical) -> generate with the trained model folder -> evaluate; every recipe's debug run; the CLI in
an empty folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from foleykit.training.checkpoint import list_checkpoints
from foleykit.training.run import train_recipe

RECIPES = ("sta_v2a", "rewas", "vta_ldm", "stable_v2a", "rhythmic_foley", "foleykit_demo")
FAST = [
    "train.max_steps=1",
    "train.ckpt_every=1",
    "train.batch_size=1",
    "+train.val_generate=0",
    "train.tensorboard=false",
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Synthetic clips made once: procedural bank -> 3 train + 1 validation 2-s clips (64x48)."""
    from foleykit.data.procedural import make_procedural_bank
    from foleykit.data.synth import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("av")
    bank = make_procedural_bank(
        root / "bank", categories=("footsteps/wood", "footsteps/gravel", "impact/metal", "impact/thud")
    )
    cfg = SynthConfig(
        width=64,
        height=48,
        duration=2.0,
        scene_weights={"footsteps": 1.0, "impact": 1.0},
        ambience_prob=0.0,
        distractor_prob=0.0,
    )
    for split, n in (("train", 3), ("validation", 1)):
        synthesize(bank, root / "data", num_clips=n, split=split, config=cfg, progress=False)
    return root / "data"


def safetensors_of(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {str(p.relative_to(folder)): load_file(p) for p in sorted(folder.rglob("*.safetensors"))}


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = safetensors_of(a), safetensors_of(b)
    return wa.keys() == wb.keys() and all(
        wa[f].keys() == wb[f].keys() and all(torch.equal(wa[f][k], wb[f][k]) for k in wa[f]) for f in wa
    )


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_trains_every_stage(tmp_path, clips, recipe):
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    res = train_recipe(recipe=recipe, level="debug", output=tmp_path / "run", data=clips, overrides=FAST)
    cfg = res.config
    assert list(res.stages) == list(cfg["stages"]) and res.stages
    for name, table in cfg["stages"].items():
        ck = list_checkpoints(tmp_path / "run" / name)
        assert [s for s, _ in ck] == [1], name
        saved = ck[-1][1]
        assert (saved / "model.safetensors").is_file() and (saved / "config.yaml").is_file()
        assert (saved / "model" / "model_index.json").is_file()
        assert table["family"] in ("autoencoder", "vocoder", "prior", "semantic", "predictor", "adapter")
    pipe = VideoToAudioPipeline.from_pretrained(res.model_dir)
    assert pipe.recipe["name"] == recipe
    assert (tmp_path / "run" / "cache" / "train" / "index.json").is_file() or list(cfg["stages"]) == [
        "autoencoder"
    ]


def test_cli_debug_in_an_empty_folder(tmp_path, monkeypatch):
    """`foleykit train --recipe vta_ldm --config debug` with nothing else: own data, runs/<recipe>-debug/."""
    from foleykit.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "FOLEYKIT_HOME", str(tmp_path / "home")
    )  # no prepared bank: the procedural one is made
    assert main(["train", "--recipe", "vta_ldm", "--config", "debug"]) == 0
    run = tmp_path / "runs" / "vta_ldm-debug"
    assert (run / "model" / "model_index.json").is_file() and (run / "bank" / "bank.json").is_file()
    assert len(list((run / "data" / "train").glob("*.mp4"))) == 8
    for stage in ("autoencoder", "vocoder", "denoiser"):  # vta_ldm names its prior stage "denoiser"
        last = list_checkpoints(run / stage)[-1][1]
        assert last.name == "step_00000004" and (last / "model.safetensors").is_file()
        assert "recipe: vta_ldm" in (last / "config.yaml").read_text()
    assert main(["train", "--recipe", "vta_ldm", "--config", "debug"]) == 2  # refuses to overwrite
    assert main(["train", "--recipe", "vta_ldm", "--config", "debug", "--resume"]) == 0  # all stages complete
    assert main(["train", "--recipe", "nope", "--config", "debug"]) == 2


def test_synth_cache_train_crash_resume_generate_eval(tmp_path, clips):
    """The whole path on Stable-V2A (waveform VAE, RMS-Mapper, DiT + RMS ControlNet): a crash in the adapter
    stage after step 1, resumed, ends bit-identical to an uninterrupted run; the model folder then generates
    audio (RMS predicted from the video) that the evaluation suite scores."""
    from foleykit.evaluation import evaluate
    from foleykit.media import read_audio, read_video
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    over = ["train.max_steps=2", "train.ckpt_every=1", "adapter.val_generate=1", "train.tensorboard=false"]
    ref = train_recipe(
        recipe="stable_v2a", level="debug", output=tmp_path / "ref", data=clips, overrides=over
    )
    assert set(ref.stages["adapter"].val_metrics) >= {
        "diffusion",
        "gen_energy_mae",
        "gen_onset_acc",
        "gen_av_align",
    }
    cache = json.loads((tmp_path / "ref" / "cache" / "train" / "index.json").read_text())
    assert set(cache["extractors"]) == {"latents", "energy", "rms", "video_features", "audio_tokens"}
    assert len(cache["items"]) == 3
    assert list(ref.stages) == ["autoencoder", "predictor", "prior", "adapter"]

    class Crash(RuntimeError):
        pass

    def crash(stage: str, step: int) -> None:
        if (stage, step) == ("adapter", 1):
            raise Crash

    with pytest.raises(Crash):
        train_recipe(
            recipe="stable_v2a",
            level="debug",
            output=tmp_path / "run",
            data=clips,
            overrides=over,
            on_step=crash,
        )
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "adapter")] == [1]
    res = train_recipe(recipe="stable_v2a", level="debug", output=tmp_path / "run", data=clips, resume=True)
    assert list(res.stages) == ["adapter"]  # the other stages were complete and skipped
    assert same_weights(ref.model_dir, res.model_dir)
    for stage in ("predictor", "adapter"):
        assert same_weights(
            list_checkpoints(tmp_path / "ref" / stage)[-1][1],
            list_checkpoints(tmp_path / "run" / stage)[-1][1],
        )

    pipe = VideoToAudioPipeline.from_pretrained(res.model_dir)
    video = next((clips / "validation").glob("*.mp4"))
    frames = read_video(video, fps=pipe.seq.video_fps, duration=pipe.seq.duration).frames
    out = pipe(frames=frames, prompt="footsteps", num_inference_steps=2, seed=0)
    assert out.audio.shape[-1] == pipe.seq.num_samples and np.isfinite(out.audio).all()
    assert "rms" in out.controls  # predicted by the trained RMS-Mapper from the video
    gt = read_audio(video.with_suffix(".wav"), sample_rate=pipe.seq.sample_rate, duration=pipe.seq.duration)
    report = evaluate(
        {"clip": (out.audio, out.sample_rate)},
        {"clip": (gt, pipe.seq.sample_rate)},
        metrics=["energy_mae", "aa_align"],
        cache=False,
    )
    assert report["energy_mae"] is not None and report["energy_mae"] >= 0
