"""Training stages on the recipes' debug pipelines with in-memory clips: what trains, what stays frozen,
the losses' hand-derived values, condition dropout, targets, validation metrics and every error path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from foleykit.errors import ConfigError, DataError
from foleykit.training.config import resolve_run_config
from foleykit.training.diffusion import DiffusionObjective
from foleykit.training.losses import MultiResolutionSTFTLoss, gaussian_kl
from foleykit.training.stages.base import StageContext
from foleykit.training.stages.denoising import CropWindow, draw_dropout
from foleykit.training.targets import WithTargets, control_targets
from foleykit.training.trainer import Trainer

CLICKS = (0.2, 0.55)  # seconds


def clip(seq, index: int) -> dict:
    """Two decaying noise bursts at CLICKS (+ 0.1 * index) and frames that flash on those frames."""
    rng = np.random.default_rng(index)
    a = np.zeros(seq.num_samples, np.float32)
    frames = np.full((seq.num_video_frames, 32, 32, 3), 40, np.uint8)
    times = []
    for t in CLICKS:
        t = min(t + 0.1 * (index % 3), seq.duration - 0.1)
        s = int(t * seq.sample_rate)
        n = min(1600, seq.num_samples - s)
        a[s : s + n] += (0.5 * rng.standard_normal(n) * np.exp(-np.arange(n) / 300)).astype(np.float32)
        frames[int(t * seq.video_fps)] = 250
        times.append(t)
    return {
        "audio": torch.from_numpy(a),
        "frames": torch.from_numpy(frames),
        "caption": "two knocks",
        "events": [{"time": t} for t in times],
        "key": f"clip{index}",
    }


class Clips(torch.utils.data.Dataset):
    def __init__(self, seq, n: int = 4) -> None:
        self.items = [clip(seq, i) for i in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def pipeline(recipe: str):
    from foleykit.recipes import build_pipeline

    return build_pipeline(recipe, size="debug")


def make(
    tmp_path: Path, recipe: str, family: str, trainable: list[str], overrides=(), steps: int = 2, pipe=None
):
    from foleykit.training.run import stage_class

    pipe = pipe or pipeline(recipe)
    cfg = resolve_run_config(
        recipe=recipe,
        level="debug",
        stages={family: family},
        overrides=[
            f"+stages.{family}.trainable=[{','.join(trainable)}]",
            f"train.max_steps={steps}",
            "train.tensorboard=false",
            "train.ckpt_every=0",
            *overrides,
        ],
    )
    seq = pipe.seq
    ctx = StageContext(
        run_config=cfg,
        cfg=cfg["stages"][family],
        run_dir=tmp_path,
        stage_dir=tmp_path / family,
        data={"train": Clips(seq), "validation": Clips(seq, 2)},
        seq=seq,
        pipeline=pipe,
    )
    return stage_class(family)(ctx), pipe


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def loaded(result, name: str = "model"):
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    folder = next(iter(result.exported.values())).parent
    return VideoToAudioPipeline.from_pretrained(folder)


# --- autoencoder / vocoder ----------------------------------------------------------------------------------
def test_autoencoder_trains_only_the_vae_and_exports_a_loadable_pipeline(tmp_path):
    stage, pipe = make(tmp_path, "vta_ldm", "autoencoder", ["vae"], ["train.ema_decay=0"])
    vae0, unet0 = snapshot(pipe.codec.vae), snapshot(pipe.denoiser.unet)
    res = Trainer(stage=stage).fit()
    assert changed(vae0, pipe.codec.vae) and not changed(unet0, pipe.denoiser.unet)
    assert set(res.history[-1]) >= {"loss", "mel_l1", "kl"} and res.val_metrics["mel_l1"] > 0
    back = loaded(res)
    assert all(torch.equal(back.codec.vae.state_dict()[k], v) for k, v in pipe.codec.vae.state_dict().items())


def test_decoder_only_adversarial_fine_tune_keeps_the_latent_space(tmp_path):
    """autoencoder.trainable_params=[vae.decoder.*,vae.post_quant_conv.*] with the PatchGAN: the decoder and the
    discriminator train, the encoder does not, so a clip encodes to the same latents as before (a denoiser
    trained on them stays valid)."""
    pats = "[vae.decoder.*,vae.post_quant_conv.*]"
    overrides = [f"autoencoder.trainable_params={pats}", "autoencoder.adversarial=true", "train.ema_decay=0"]
    stage, pipe = make(tmp_path, "foleykit_demo", "autoencoder", ["vae"], overrides, steps=3)
    vae = pipe.codec.vae
    wav = Clips(pipe.seq, 1)[0]["audio"][None]
    z0 = pipe.codec.encode_audio(wav).detach().clone()
    enc0, dec0, mel0 = (
        snapshot(vae.encoder),
        snapshot(vae.decoder),
        pipe.codec.decode_mel(z0).detach().clone(),
    )
    res = Trainer(stage=stage).fit()
    assert not changed(enc0, vae.encoder) and changed(dec0, vae.decoder)
    assert torch.equal(pipe.codec.encode_audio(wav), z0)
    assert not torch.allclose(pipe.codec.decode_mel(z0), mel0)
    assert res.history[-1]["loss/disc"] > 0 and "g_adv" in res.history[-1]


def test_waveform_autoencoder_and_adversarial_mel_vae(tmp_path):
    stage, _pipe = make(tmp_path / "wave", "stable_v2a", "autoencoder", ["vae"], steps=1)
    res = Trainer(stage=stage).fit()
    assert "wave_l1" in res.history[-1] and "wave_l1" in res.val_metrics
    stage, _ = make(
        tmp_path / "adv", "vta_ldm", "autoencoder", ["vae"], ["autoencoder.adversarial=true"], steps=1
    )
    res = Trainer(stage=stage).fit()
    assert {"loss/disc", "g_adv", "d_real"} <= set(res.history[-1])
    with pytest.raises(ConfigError, match="only implemented for mel"):
        make(tmp_path / "x", "stable_v2a", "autoencoder", ["vae"], ["autoencoder.adversarial=true"])[
            0
        ].build()


def test_vocoder_with_discriminators(tmp_path):
    stage, pipe = make(tmp_path, "vta_ldm", "vocoder", ["vocoder"], ["vocoder.adversarial=true"], steps=1)
    voc0 = snapshot(pipe.codec.vocoder)
    res = Trainer(stage=stage).fit()
    assert {"loss/disc", "mel_l1", "stft", "g_adv", "feat_match"} <= set(res.history[-1])
    assert changed(voc0, pipe.codec.vocoder) and res.val_metrics["mel_l1"] > 0
    assert stage.segment_frames() == round(0.25 * pipe.seq.mel_rate)
    with pytest.raises(ConfigError, match="mel-latent"):
        make(tmp_path / "w", "stable_v2a", "vocoder", ["vae"])


# --- diffusion stages -----------------------------------------------------------------------------------------
def test_adapter_trains_adapter_only_unless_base_is_unfrozen(tmp_path):
    comps = ["controlnet_energy", "control_encoder_energy"]
    stage, pipe = make(tmp_path / "a", "rewas", "adapter", comps, ["adapter.val_generate=1"])
    net0, unet0 = snapshot(pipe.adapters["energy"].net), snapshot(pipe.denoiser.unet)
    res = Trainer(stage=stage).fit()
    assert changed(net0, pipe.adapters["energy"].net) and not changed(unet0, pipe.denoiser.unet)
    assert {"diffusion", "gen_energy_mae", "gen_aa_align", "gen_onset_acc", "gen_av_align"} <= set(
        res.val_metrics
    )
    stage, pipe = make(tmp_path / "b", "rewas", "adapter", comps, ["adapter.unfreeze_base=true"], steps=1)
    unet0 = snapshot(pipe.denoiser.unet)
    Trainer(stage=stage).fit()
    assert changed(unet0, pipe.denoiser.unet)


def test_joint_denoiser_stage_reads_local_features(tmp_path):
    """STA-V2A: the denoiser stage trains the UNet, pooling and the onset ControlNet on e_lv."""
    comps = ["unet", "condition_assembler", "video_condition", "controlnet_onsets", "control_encoder_onsets"]
    stage, pipe = make(tmp_path, "sta_v2a", "prior", comps, steps=1)
    pool0, head0 = snapshot(pipe.video_condition), snapshot(pipe.predictors["onsets"])
    res = Trainer(stage=stage).fit()
    assert stage.adapter_names == ["onsets"] and changed(pool0, pipe.video_condition)
    assert not changed(head0, pipe.predictors["onsets"]) and math.isfinite(res.history[-1]["loss"])


def test_dit_prior_and_text_only_conditions(tmp_path):
    comps = ["transformer", "projection_model", "condition_assembler", "video_condition"]
    stage, pipe = make(tmp_path, "foleykit_demo", "prior", comps, ["prior.conditions=[text]"], steps=1)
    pool0 = snapshot(pipe.video_condition)
    Trainer(stage=stage).fit()
    assert not changed(pool0, pipe.video_condition)  # never shown: video stays null in a text-only prior


def test_prior_trains_on_windows_of_its_clips_and_validates_on_whole_clips(tmp_path):
    """crop_seconds: the denoiser and the RMS ControlNet see the same 0.4 s of each clip in training, whole
    clips in validation."""
    comps = ["transformer", "projection_model", "condition_assembler", "video_condition"]
    comps += ["controlnet_rms", "control_encoder_rms"]
    stage, pipe = make(
        tmp_path, "foleykit_demo", "prior", comps, ["prior.crop_seconds=0.4", "train.val_every=1"], steps=1
    )
    seq, seen = pipe.seq, []
    pipe.denoiser.register_forward_pre_hook(lambda m, args: seen.append(("latent", args[0].shape[2])))
    pipe.adapters["rms"].encoder.register_forward_pre_hook(
        lambda m, args: seen.append(("control", args[0].shape[-1]))
    )
    res = Trainer(stage=stage).fit()
    assert math.isfinite(res.history[-1]["loss"]) and "diffusion" in res.val_metrics
    window = [
        ("control", seq.frames_at(seq.control_rate, 0.4)),
        ("latent", seq.frames_at(seq.latent_rate, 0.4)),
    ]
    whole = [("control", seq.num_control_frames), ("latent", seq.num_latent_frames)]
    assert seen[:2] == window and seen[2:] == whole * (len(seen[2:]) // 2) and len(seen) > 2


def test_trainable_params_train_only_the_parameters_they_name(tmp_path):
    """trainable_params: of the listed components, only the DiT's cross-attention and the assembler train."""
    comps = ["transformer", "projection_model", "condition_assembler", "video_condition"]
    pats = "[transformer.transformer_blocks.*.attn2.*,condition_assembler.*]"
    stage, pipe = make(
        tmp_path,
        "foleykit_demo",
        "prior",
        comps,
        [f"prior.trainable_params={pats}", "train.ema_decay=0"],
        steps=2,
    )
    dit = pipe.denoiser.transformer
    before = {
        n: snapshot(m) for n, m in [("dit", dit), ("asm", pipe.assembler), ("proj", pipe.denoiser.projection)]
    }
    before["pool"] = snapshot(pipe.video_condition)
    lines = []
    Trainer(stage=stage, progress=lines.append).fit()
    moved = {k for k, v in dit.state_dict().items() if not torch.equal(before["dit"][k], v)}
    cross = {k for k in before["dit"] if ".attn2." in k}
    assert moved and moved <= cross and len(moved) > len(cross) // 2
    assert changed(before["asm"], pipe.assembler)
    assert not changed(before["proj"], pipe.denoiser.projection)
    assert not changed(before["pool"], pipe.video_condition)
    assert any("trainable_params" in line for line in lines)
    bad = ["prior.trainable_params=[transformer.*.attn9.*]"]
    stage, _ = make(tmp_path / "typo", "foleykit_demo", "prior", comps, bad, steps=1)
    with pytest.raises(ConfigError, match=r"attn9.*match no trainable parameter"):
        Trainer(stage=stage).fit()
    with pytest.raises(ConfigError, match="trainable_params"):
        make(tmp_path / "empty", "foleykit_demo", "prior", comps, ["prior.trainable_params=[]"])


def test_crop_window_cuts_the_same_stretch_of_time_on_every_grid():
    seq = pipeline("foleykit_demo").seq
    win = CropWindow.draw(seq, 0.4, 8, torch.Generator().manual_seed(0))
    assert len(set(win.starts)) > 1 and all(0 <= s <= seq.duration - 0.4 + 1e-9 for s in win.starts)

    def clock(grid: str, shape: tuple[int, ...], dim: int) -> torch.Tensor:
        """A tensor whose value is the time in seconds of its frame along ``dim``."""
        rate, n = seq.grid(grid)
        t = torch.arange(n, dtype=torch.float64) / rate
        view = [1] * len(shape)
        view[dim] = n
        return t.view(view).expand(shape)

    lat, rate_l = seq.num_latent_frames, seq.latent_rate
    cuts = {
        "latent": win.crop(clock("latent", (8, 2, lat, 3), 2), "latent", dim=2)[:, 0, :, 0],
        "video": win.crop(clock("video", (8, seq.num_video_frames, 4), 1), "video", dim=1)[..., 0],
        "control": win.crop(clock("control", (8, seq.num_control_frames), 1), "control", dim=-1),
    }
    for grid, cut in cuts.items():
        rate = seq.grid(grid)[0]
        assert cut.shape == (8, seq.frames_at(rate, 0.4))
        for row, start in zip(cut, win.starts, strict=True):
            assert torch.allclose(row, start + torch.arange(row.numel(), dtype=torch.float64) / rate)
    assert all(abs(s * rate_l - round(s * rate_l)) < 1e-9 for s in win.starts)  # whole latent frames
    for bad in (0.0, seq.duration + 0.5, 0.5 / rate_l):
        with pytest.raises(ConfigError, match="crop_seconds"):
            CropWindow.draw(seq, bad, 2, torch.Generator())
    with pytest.raises(DataError, match="latent-grid"):
        win.crop(torch.zeros(8, 2, lat - 1, 3), "latent", dim=2)


def test_semantic_stage_pooling_and_event_detector(tmp_path):
    stage, pipe = make(
        tmp_path,
        "rhythmic_foley",
        "semantic",
        ["video_condition", "condition_assembler", "predictor_events"],
        steps=1,
    )
    proj0, det0 = snapshot(pipe.video_condition), snapshot(pipe.predictors["events"])
    res = Trainer(stage=stage).fit()
    assert changed(proj0, pipe.video_condition) and changed(det0, pipe.predictors["events"])
    assert {"diffusion", "loss_events"} <= set(res.history[-1]) and "events_acc" in res.val_metrics


# --- predictors -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "recipe,kinds,metric",
    [
        ("rewas", ["energy"], "energy_mae"),
        ("foleykit_demo", ["rms"], "rms_acc1"),
        ("rhythmic_foley", ["events", "onsets"], "onsets_ap"),
    ],
)
def test_predictors(tmp_path, recipe, kinds, metric):
    stage, _pipe = make(tmp_path, recipe, "predictor", [f"predictor_{k}" for k in kinds], steps=1)
    res = Trainer(stage=stage).fit()
    assert {f"loss_{k}" for k in kinds} <= set(res.history[-1]) and metric in res.val_metrics


def test_rms_loss_uses_gaussian_smoothed_targets(tmp_path):
    from foleykit.controls.rms import gaussian_smoothed_targets

    stage, _pipe = make(
        tmp_path, "foleykit_demo", "predictor", ["predictor_rms"], ["predictor.label_window=1"]
    )
    stage.build()
    logits = torch.zeros(1, 3, 64)
    classes = torch.tensor([[0, 10, 63]])
    got = stage._losses({"rms": logits}, {"rms_class": classes})["rms"]
    soft = gaussian_smoothed_targets(classes, n_classes=64, window=1)
    # uniform logits: CE per frame = sum(targets) * log(64); class 0 one-hot, 10 and 63 smoothed
    expected = float(soft.sum(-1).mean()) * math.log(64)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert float(soft[0, 1].sum()) == pytest.approx(1 + 2 * math.exp(-0.5))


# --- errors ---------------------------------------------------------------------------------------------------
def test_stage_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown components"):
        make(tmp_path, "rewas", "predictor", ["predictor_rms"])[0].build()
    with pytest.raises(ConfigError, match="predictor_"):
        make(tmp_path, "rewas", "predictor", ["unet"])[0].build()
    with pytest.raises(ConfigError, match="trains no controlnet"):
        make(tmp_path, "rewas", "adapter", ["unet"])[0].build()
    with pytest.raises(ConfigError, match="trains nothing"):
        make(tmp_path, "rewas", "prior", [])[0].build()
    stage, _ = make(tmp_path, "rewas", "predictor", ["predictor_energy"])
    stage.build()
    with pytest.raises(DataError, match="needs video"):
        stage._inputs({"audio": torch.zeros(1, 10)}, {})
    local = ["unet", "condition_assembler", "controlnet_onsets", "control_encoder_onsets"]
    stage, _ = make(tmp_path, "sta_v2a", "prior", local, ["prior.crop_seconds=0.4"], steps=1)
    stage.ctx.stage_dir = tmp_path / "denoiser"  # a prior-family stage the run config calls "denoiser"
    with pytest.raises(ConfigError, match=r"stages\.denoiser\.crop_seconds.*local video features"):
        stage.build()  # refused before any training
    with pytest.raises(ConfigError, match="crop_seconds"):
        make(tmp_path, "rewas", "prior", ["unet"], ["prior.crop_seconds=-1"])
    stage, _ = make(tmp_path, "rewas", "prior", ["unet", "condition_assembler"], ["prior.conditions=[smell]"])
    with pytest.raises(ConfigError, match="smell"):
        stage.build()


# --- pieces -----------------------------------------------------------------------------------------------------
def test_condition_dropout_draws():
    g = torch.Generator().manual_seed(0)
    d = draw_dropout({"text": 1.0, "video": 0.0, "audio": 0.3}, ["text", "video", "audio"], 2000, g)
    assert d["text"].all() and not d["video"].any()
    assert 0.25 < d["audio"].float().mean() < 0.35
    again = draw_dropout({"audio": 0.3}, ["audio"], 2000, torch.Generator().manual_seed(0))
    assert not torch.equal(again["audio"], d["audio"])  # different draw order -> different rows
    assert torch.equal(
        draw_dropout({"audio": 0.3}, ["audio"], 50, torch.Generator().manual_seed(1))["audio"],
        draw_dropout({"audio": 0.3}, ["audio"], 50, torch.Generator().manual_seed(1))["audio"],
    )


def test_diffusion_objective_targets():
    from diffusers import DDIMScheduler

    x0 = torch.randn(3, 2, 4)
    for pred in ("epsilon", "v_prediction", "sample"):
        obj = DiffusionObjective(DDIMScheduler(prediction_type=pred))
        nb = obj.sample(x0, torch.Generator().manual_seed(0))
        ac = obj.alphas_cumprod[nb.timesteps].view(3, 1, 1)
        noise = (nb.noisy - ac.sqrt() * x0) / (1 - ac).sqrt()
        expected = {"epsilon": noise, "v_prediction": ac.sqrt() * noise - (1 - ac).sqrt() * x0, "sample": x0}[
            pred
        ]
        assert torch.allclose(nb.target, expected, atol=1e-4)
        assert obj.loss(nb.target, nb).item() == pytest.approx(0.0, abs=1e-10)
    obj = DiffusionObjective(edm_scheduler())
    nb = obj.sample(x0, torch.Generator().manual_seed(0))
    a, s = (
        torch.cos(nb.timesteps * math.pi / 2).view(3, 1, 1),
        torch.sin(nb.timesteps * math.pi / 2).view(3, 1, 1),
    )
    noise = (nb.noisy - a * x0) / s
    assert obj.continuous and torch.allclose(nb.target, a * noise - s * x0, atol=1e-4)
    snr = DiffusionObjective(DDIMScheduler(), snr_gamma=5.0)
    nb = snr.sample(x0, torch.Generator().manual_seed(0))
    ac = snr.alphas_cumprod[nb.timesteps]
    assert torch.allclose(nb.weights, torch.clamp(ac / (1 - ac), max=5.0) / (ac / (1 - ac)))
    with pytest.raises(ConfigError, match="v_prediction"):
        DiffusionObjective(edm_scheduler(prediction_type="epsilon"))
    with pytest.raises(ConfigError, match="sigma_data"):
        DiffusionObjective(edm_scheduler(sigma_data=0.5))


def edm_scheduler(**config):
    """A stand-in for diffusers' CosineDPMSolverMultistepScheduler (which needs torchsde): same name, config."""
    from types import SimpleNamespace

    cfg = SimpleNamespace(**{"sigma_data": 1.0, "prediction_type": "v_prediction", **config})
    return type("CosineDPMSolverMultistepScheduler", (), {"config": cfg})()


def test_control_targets_from_known_events():
    from foleykit.config import SequenceConfig

    seq = SequenceConfig(duration=1.0)
    item = clip(seq, 0)
    out = control_targets(
        item["audio"], seq, ["energy", "rms", "rms_class", "onsets", "presence"], onset_times=[0.2, 0.55]
    )
    assert out["energy"].shape == (100,) and out["rms"].shape == (125,) and out["rms_class"].dtype == np.int64
    assert np.flatnonzero(out["onsets"]).tolist() == [5, 13]  # 0.2 s and 0.55 s at 25 Hz
    assert out["presence"][5] == 1 and out["presence"][0] == 0 and out["presence"].shape == (25,)
    assert out["energy"][0] == pytest.approx(math.log(1e-5), abs=1e-3)  # silence before the first burst
    view = WithTargets([item], seq=seq, kinds=["onsets"])
    assert view[0]["onset_times"] == [0.2, 0.55] and np.flatnonzero(view[0]["onsets"]).tolist() == [5, 13]
    with pytest.raises(ConfigError, match="unknown control target"):
        control_targets(item["audio"], seq, ["pitch"])


def test_losses_hand_values():
    stft = MultiResolutionSTFTLoss()
    x = torch.randn(2, 4000)
    assert stft(x, x).item() == 0.0 and stft(torch.zeros(2, 4000), x).item() > 0
    silent = stft(x * 1e-3, torch.zeros(2, 4000)).item()
    assert math.isfinite(silent)  # silence as target stays finite (no spectral convergence)
    mean, logvar = torch.zeros(1, 3), torch.zeros(1, 3)
    assert gaussian_kl(mean, logvar).item() == 0.0
    assert gaussian_kl(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(
        1.0
    )  # 0.5 * (1 + 1 - 1 - 0) * 2
    with pytest.raises(ValueError, match="shapes differ"):
        stft(torch.zeros(1, 10), torch.zeros(1, 11))
