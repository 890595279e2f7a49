"""The vocoder stage's adversarial objective (HiFi-GAN): each term moves the weights it should, the
discriminators start at ``disc_start``, resume is exact with the discriminators' state, exports hold no
discriminator, length-aware segments and the exponential LR decay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from foleykit.config import SequenceConfig
from foleykit.training.checkpoint import list_checkpoints
from foleykit.training.config import resolve_run_config
from foleykit.training.stages.base import StageContext, StepInputs
from foleykit.training.stages.vocoder import VocoderStage
from foleykit.training.trainer import Trainer

SEQ = SequenceConfig(duration=1.0)


class Sounds(torch.utils.data.Dataset):
    """Decaying tones and noise bursts of different lengths (0.3 - 1 s)."""

    def __init__(self, n: int = 4, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.items = []
        for i in range(n):
            length = int(SEQ.sample_rate * (0.3 + 0.7 * (i % 3) / 2))
            t = np.arange(length) / SEQ.sample_rate
            wav = 0.4 * np.sin(2 * np.pi * (220 + 110 * i) * t) * np.exp(-3 * t)
            wav += 0.1 * rng.standard_normal(length) * np.exp(-20 * t)
            self.items.append({"audio": torch.from_numpy(wav.astype(np.float32))})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def make_stage(
    tmp_path: Path, overrides=(), *, pipeline=None, data: dict | None = None, seq=SEQ, vocoder=None
) -> VocoderStage:
    cfg = resolve_run_config(
        recipe="foleykit_demo",
        level="debug",
        stages={"vocoder": "vocoder"},
        overrides=[
            "train.tensorboard=false",
            "train.ckpt_every=0",
            "vocoder.adversarial=true",
            "vocoder.segment_seconds=0.2",
            *overrides,
        ],
    )
    ctx = StageContext(
        run_config=cfg,
        cfg=cfg["stages"]["vocoder"],
        run_dir=tmp_path,
        stage_dir=tmp_path / "vocoder",
        data=data if data is not None else {"train": Sounds(), "validation": Sounds(2, seed=1)},
        seq=pipeline.seq if pipeline is not None else seq,
        pipeline=pipeline,
    )
    if pipeline is not None:
        return VocoderStage(ctx)
    from foleykit.models.vocoder import DEBUG_HIFIGAN, build_hifigan

    torch.manual_seed(0)
    return VocoderStage(ctx, vocoder=vocoder if vocoder is not None else build_hifigan(DEBUG_HIFIGAN))


def fixed_inputs(stage: VocoderStage, modules, *, step: int = 0) -> StepInputs:
    """The same batch and the same segment draws every call."""
    batch = stage.collate([stage.train_dataset()[i] for i in range(2)])
    return StepInputs(
        models=modules.trainable,
        frozen=modules.frozen,
        batch=batch,
        generator=torch.Generator().manual_seed(3),
        step=step,
        scratch={},
    )


def descend(stage, modules, group: str, steps: int = 8, lr: float = 2e-3) -> list[float]:
    """Adam on one group with everything else fixed; the group's loss on the fixed batch after each step."""
    params = [p for p in modules.trainable[group].parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(steps + 1):
        opt.zero_grad(set_to_none=True)
        loss, _ = stage.loss(fixed_inputs(stage, modules), group)
        losses.append(float(loss.detach()))
        loss.backward()
        opt.step()
    return losses


@pytest.mark.parametrize("adversarial", [False, True])
def test_istft_vocoder_trains_in_the_vocoder_stage(tmp_path, adversarial):
    """The Vocos-style vocoder is a drop-in for the HiFi-GAN: the stage builds it, its loss falls on a fixed
    batch, every parameter gets a gradient, and the export holds it (spec + weights) without discriminators."""
    from foleykit.models.vocoder import DEBUG_ISTFT, IstftVocoder

    torch.manual_seed(0)
    stage = make_stage(
        tmp_path, [f"vocoder.adversarial={str(adversarial).lower()}"], vocoder=IstftVocoder(**DEBUG_ISTFT)
    )
    modules = stage.build()
    voc = modules.trainable["main"].vocoder
    params = [p for p in voc.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-3)
    losses, reached = [], set()
    for step in range(12):
        if adversarial:  # the discriminators step first, as in the trainer
            opt_d = torch.optim.Adam(modules.trainable["disc"].parameters(), lr=1e-4)
            inputs = fixed_inputs(stage, modules, step=step)
            d_loss, _ = stage.loss(inputs, "disc")
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        else:
            inputs = fixed_inputs(stage, modules, step=step)
        opt.zero_grad(set_to_none=True)
        loss, logs = stage.loss(inputs, "main")
        loss.backward()
        reached |= {n for n, p in voc.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        opt.step()
        losses.append(logs["mel_l1"])
    assert ("g_adv" in logs) == adversarial
    assert losses[-1] < 0.8 * losses[0], losses
    assert reached == {n for n, _ in voc.named_parameters()}
    out = stage.export(modules.trainable["main"], modules.frozen, tmp_path / "export")["vocoder"]
    assert not list(out.glob("*disc*"))
    from foleykit.pipelines.components import library_of, load_component

    back = load_component("vocoder", list(library_of(voc)), out)
    assert type(back) is IstftVocoder and back.config == voc.config
    torch.testing.assert_close(back.state_dict(), voc.state_dict())


@pytest.mark.parametrize("term", ["adv", "feat"])
def test_each_adversarial_term_trains_the_generator(tmp_path, term):
    """Only one generator term on (mel / STFT weights 0): it is positive, reaches every vocoder layer and
    falls when the generator descends it against fixed discriminators."""
    on = ["vocoder.adv_weight=1", "vocoder.feat_weight=0"] if term == "adv" else ["vocoder.adv_weight=0"]
    stage = make_stage(tmp_path, ["vocoder.mel_weight=0", "vocoder.stft_weight=0", *on])
    modules = stage.build()
    descend(stage, modules, "disc", steps=20, lr=5e-3)  # discriminators that tell real from generated
    modules.trainable["disc"].eval()  # then fixed (no spectral-norm power iteration)
    loss, logs = stage.loss(fixed_inputs(stage, modules), "main")
    assert loss > 0 and {"g_adv", "feat_match"} <= set(logs)
    loss.backward()
    voc = modules.trainable["main"].vocoder
    grads = [p.grad for p in voc.parameters() if p.requires_grad]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    losses = descend(stage, modules, "main", steps=10, lr=1e-2)
    assert losses[-1] < 0.95 * losses[0]


def test_discriminators_get_gradients_and_learn(tmp_path):
    stage = make_stage(tmp_path)
    modules = stage.build()
    disc = modules.trainable["disc"]
    loss, logs = stage.loss(fixed_inputs(stage, modules), "disc")
    assert {"d_real", "d_fake"} <= set(logs)
    loss.backward()
    for name, p in disc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # the generated half is detached: the discriminator loss never reaches the vocoder
    assert all(p.grad is None for p in modules.trainable["main"].parameters())
    losses = descend(stage, modules, "disc", lr=5e-3)
    assert losses[-1] < 0.7 * losses[0]


def test_discriminators_start_at_disc_start(tmp_path):
    stage = make_stage(
        tmp_path,
        ["vocoder.disc_start=2", "train.max_steps=3", "train.ckpt_every=1", "train.keep_checkpoints=3"],
    )
    res = Trainer(stage=stage).fit()
    ckpts = [p for _, p in list_checkpoints(tmp_path / "vocoder")]
    disc = [load_file(p / "model.safetensors") for p in ckpts]  # group order: disc, main
    assert all(torch.equal(disc[0][k], disc[1][k]) for k in disc[0])  # not stepped before step 2
    assert any(not torch.equal(disc[1][k], disc[2][k]) for k in disc[1])
    assert [("g_adv" in h, "loss/disc" in h) for h in res.history] == [(False, False)] * 2 + [(True, True)]


class Crash(RuntimeError):
    """A simulated crash after an optimizer step."""


BASE = [
    "vocoder.disc_start=1",
    "vocoder.lr_decay=0.5",
    "vocoder.lr_decay_every=1",
    "train.max_steps=4",
    "train.ckpt_every=2",
]


def test_resume_is_exact_with_discriminator_state(tmp_path):
    from foleykit.recipes import build_pipeline

    def run(folder: Path, crash_after: int | None = None, resume: bool = False):
        def on_step(step: int) -> None:
            if step == crash_after:
                raise Crash(step)

        torch.manual_seed(0)
        pipe = build_pipeline("foleykit_demo", size="debug")
        return Trainer(stage=make_stage(folder, BASE, pipeline=pipe), on_step=on_step).fit(resume=resume)

    ref = run(tmp_path / "ref")
    with pytest.raises(Crash):
        run(tmp_path / "run", crash_after=3)
    res = run(tmp_path / "run", resume=True)
    assert res.steps == 4 and [h["step"] for h in res.history] == [3, 4]
    for name in ("model.safetensors", "model_1.safetensors"):  # discriminators, vocoder (raw weights)
        a = load_file(list_checkpoints(tmp_path / "ref" / "vocoder")[-1][1] / name)
        b = load_file(list_checkpoints(tmp_path / "run" / "vocoder")[-1][1] / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert [h["lr"] for h in res.history] == [h["lr"] for h in ref.history][2:]
    assert ref.history[-1]["lr"] == pytest.approx(1e-3 * 0.5**4)  # decayed after every step (lr logged after)

    # the exported model folders (final and in checkpoints) hold the EMA vocoder and no discriminator
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    for folder in (tmp_path / "run" / "vocoder" / "model", ckpts_model(tmp_path / "run")):
        comps = VideoToAudioPipeline.from_pretrained(folder).components()
        for f in folder.rglob("*.safetensors"):
            keys = set(load_file(f))
            assert keys <= set(comps[f.parent.name].state_dict()), f  # a component's own weights only
        saved = load_file(folder / "vocoder" / "model.safetensors")
        ema = res.exported["vocoder"] / "model.safetensors"
        assert saved.keys() == set(comps["vocoder"].state_dict()) and ema.is_file()
    assert not any((tmp_path / "run" / "vocoder" / "model").rglob("*disc*"))


def ckpts_model(run: Path) -> Path:
    return list_checkpoints(run / "vocoder")[-1][1] / "model"


def test_segments_stay_inside_each_clip(tmp_path):
    """Clips of different lengths: every segment comes from inside its own clip (a clip shorter than a
    segment is taken whole, zero-padded), aligned with its mel frames."""
    ramp = [torch.arange(1, n + 1, dtype=torch.float32) / 1e5 for n in (2400, 16000, 9000)]
    stage = make_stage(tmp_path, ["vocoder.adversarial=false", "vocoder.segment_max_seconds=0.4"])
    modules = stage.build()
    batch = stage.collate([{"audio": r} for r in ramp])
    assert batch["audio"].shape == (3, 16000) and batch["audio_length"].tolist() == [2400, 16000, 9000]
    sizes = set()
    gen = torch.Generator().manual_seed(0)
    for step in range(12):
        inputs = StepInputs(
            models=modules.trainable, frozen=modules.frozen, batch=batch, generator=gen, step=step, scratch={}
        )
        mels, wavs = stage._segments(inputs)
        f = mels.shape[-1]
        sizes.add(f)
        assert wavs.shape == (3, f * 160)
        for i, n in enumerate((2400, 16000, 9000)):
            start = round(float(wavs[i, 0]) * 1e5) - 1  # the ramp's value tells its position
            assert start % 160 == 0
            if n >= f * 160:
                assert start + f * 160 <= n
            else:
                assert start == 0 and torch.count_nonzero(wavs[i]) == n
            assert torch.allclose(
                mels[i], modules.frozen["mel"](batch["audio"][i : i + 1])[0, :, start // 160 :][:, :f]
            )
    assert min(sizes) >= 20 and max(sizes) <= 40 and len(sizes) > 1  # 0.2 - 0.4 s at 100 mel frames/s


def _vae_crop(vae, mel: torch.Tensor, lo: int, hi: int, start: int, f: int) -> torch.Tensor:
    """The VAE's reconstruction (posterior mode, decoded) of ``mel[:, lo:hi]``, cut to ``[start, start + f)``."""
    with torch.no_grad():
        out = vae.decode(vae.encode(mel[:, lo:hi].T[None, None]).latent_dist.mode()).sample[0, 0].T
    return out[:, start - lo : start - lo + f]


def test_autoencoder_mel_source_feeds_the_vae_reconstruction(tmp_path):
    """``mel_source=autoencoder``: segments are whole latent frames inside each clip, the vocoder's input is the
    model VAE's reconstruction of the segment's mel (computed with context, so it differs from the true mel and
    from the segment's own round trip only near its edges), and the target stays the real waveform."""
    from foleykit.errors import ConfigError
    from foleykit.recipes import build_pipeline

    torch.manual_seed(0)
    pipe = build_pipeline("foleykit_demo", size="debug")
    ramp = [torch.arange(1, n + 1, dtype=torch.float32) / 1e5 for n in (6400, 16000, 12000)]
    stage = make_stage(
        tmp_path,
        ["vocoder.adversarial=false", "vocoder.segment_seconds=0.3", "vocoder.mel_source=autoencoder"],
        pipeline=pipe,
    )
    modules = stage.build()
    vae = modules.frozen["vae"]
    assert vae is pipe.codec.vae
    batch = stage.collate([{"audio": r} for r in ramp])
    gen = torch.Generator().manual_seed(0)
    starts, with_context = set(), 0
    for step in range(6):
        inputs = StepInputs(
            models=modules.trainable, frozen=modules.frozen, batch=batch, generator=gen, step=step, scratch={}
        )
        mels, wavs = stage._segments(inputs)
        f = mels.shape[-1]
        assert f == 28 and wavs.shape == (3, f * 160)  # 30 frames, rounded down to whole latent frames (4)
        for i, n in enumerate((6400, 16000, 12000)):
            start = round(float(wavs[i, 0]) * 1e5) - 1
            assert start % 640 == 0 and start + f * 160 <= n  # on the latent grid, inside the clip
            starts.add(start)
            full = modules.frozen["mel"](batch["audio"][i : i + 1])[0]
            s0 = start // 160
            true = full[:, s0 : s0 + f]

            context = _vae_crop(vae, full, max(0, s0 - 32), min(n // 160 // 4 * 4, s0 + f + 32), s0, f)
            assert mels[i].shape == true.shape and not torch.allclose(mels[i], true, atol=1e-2)
            torch.testing.assert_close(mels[i], context, atol=1e-5, rtol=1e-5)  # 8 latent frames a side
            if s0 >= 32:
                with_context += 1
                alone = _vae_crop(vae, full, s0, s0 + f, s0, f)
                assert not torch.allclose(mels[i], alone, atol=1e-4)  # the context matters
    assert len(starts) > 3 and with_context > 0
    with pytest.raises(ConfigError, match="mel_source"):
        make_stage(tmp_path, ["vocoder.mel_source=vae"])
    with pytest.raises(ConfigError, match="mel VAE"):
        make_stage(tmp_path, ["vocoder.mel_source=autoencoder"]).build()


def test_lr_decay_per_epoch_and_default_schedule(tmp_path):
    stage = make_stage(tmp_path, ["vocoder.lr_decay=0.5", "train.batch_size=2"])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = stage.scheduler(opt, "main", 10)
    lrs = []
    for _ in range(6):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert stage.steps_per_epoch() == 2 and lrs == [1, 1, 0.5, 0.5, 0.25, 0.25]  # 4 clips, batch 2
    assert make_stage(tmp_path, []).scheduler(opt, "main", 10) is None  # lr_decay null: trainer's schedule


def test_overrides_and_default_level_sizes(tmp_path):
    stage = make_stage(tmp_path, ["vocoder.disc_start=500", "vocoder.disc_width=0.25"])
    assert stage.adversarial and stage.group_active("disc", 499) is False and stage.group_active("disc", 500)
    assert stage.group_active("main", 0) and stage.discriminator_config()["width"] == 0.25
    cfg = resolve_run_config(recipe="foleykit_demo", level="small", stages={"vocoder": "vocoder"})
    voc = cfg["stages"]["vocoder"]
    assert voc["adversarial"] is False and voc["disc_preset"] == "hifigan" and voc["disc_width"] == 0.125
    assert make_stage(tmp_path, ["vocoder.adversarial=false"]).groups() == ["main"]
