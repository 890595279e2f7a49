"""The demonstrator's CPU training path: the array store, its datasets, cached motion features in the video
encoder, the autoencoder's crops, the predictor's windows / category head, control dropout and the driver."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError, DataError
from foleykit.testing import make_moving_square_video

SEQ = SequenceConfig(duration=2.0)
MOVES = {"a": (10, 30), "b": (5, 20, 40)}


def _dataset(root: Path) -> Path:
    """train/ and validation/ folders: 2 s moving-square videos with a click at each jump, lossless sidecar wav,
    a manifest with categories."""
    for split, keys in (("train", ["a", "b"]), ("validation", ["a"])):
        folder = root / split
        folder.mkdir(parents=True)
        rows = []
        for key in keys:
            name = f"{split}-{key}"
            make_moving_square_video(
                folder / f"{name}.mp4", duration=2.0, move_frames=MOVES[key], audio="clicks"
            )
            wav = np.zeros(32000, np.float32)
            for f in MOVES[key]:
                s = int(f / 25 * 16000)
                wav[s : s + 400] = 0.8 * np.exp(-np.arange(400) / 80)
            sf.write(folder / f"{name}.wav", wav, 16000)
            rows.append(
                {
                    "path": f"{name}.mp4",
                    "caption": f"knocks {key}",
                    "start": 0.0,
                    "end": 2.0,
                    "category": f"impact/{key}",
                }
            )
        with open(folder / "manifest.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["path", "caption", "start", "end", "category"])
            w.writeheader()
            w.writerows(rows)
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from foleykit.training.arrays import build_store

    root = tmp_path_factory.mktemp("demo")
    data = _dataset(root / "data")
    build_store(data, root / "store", seq=SEQ, decode_size=32, frame_size=16)
    return root / "store"


def test_store_arrays_match_the_inference_computation(store):
    from foleykit.encoders.video import MotionVideoEncoder
    from foleykit.media import read_video
    from foleykit.training.arrays import StoreDataset, read_index
    from foleykit.training.targets import control_targets

    meta = read_index(store)
    assert meta["splits"]["train"]["n"] == 2 and meta["splits"]["validation"]["n"] == 1
    assert meta["splits"]["train"]["category_names"] == ["impact/a", "impact/b"]
    ds = StoreDataset(store, "train", fields=["motion", "frames"])
    it = ds[1]
    assert (
        it["audio"].shape == (32000,)
        and it["frames"].shape == (50, 16, 16, 3)
        and it["frames"].dtype == torch.uint8
    )
    assert it["category"] == "impact/b" and it["category_index"] == 1 and it["caption"] == "knocks b"
    clip = read_video(Path(meta["splits"]["train"]["source"]) / "train-b.mp4", fps=25, size=32)
    motion = MotionVideoEncoder(input_size=32).encode(clip.frames)[0]
    torch.testing.assert_close(it["motion"], motion)
    ref = control_targets(
        sf.read(Path(meta["splits"]["train"]["source"]) / "train-b.wav", dtype="float32")[0],
        SEQ,
        ["rms", "rms_class"],
    )
    np.testing.assert_allclose(it["rms"].numpy(), ref["rms"], atol=1e-6)
    assert torch.equal(it["rms_class"], torch.from_numpy(ref["rms_class"]))
    # the motion peaks at the jump frames (flow between frames k-1 and k lands on row k)
    assert set(MOVES["b"]) <= set(np.argsort(it["motion"][:, 0].numpy())[-3:].tolist())
    with pytest.raises(IndexError):
        ds[2]


def test_store_is_resumable_and_refuses_another_geometry(store):
    from foleykit.training.arrays import build_store

    before = np.load(store / "train" / "audio.npy").copy()
    build_store(Path(store).parent / "data", store, seq=SEQ, decode_size=32, frame_size=16)  # nothing to do
    assert np.array_equal(np.load(store / "train" / "audio.npy"), before)
    with pytest.raises(DataError, match="another geometry"):
        build_store(Path(store).parent / "data", store, seq=SEQ, decode_size=32, frame_size=8)
    with pytest.raises(DataError, match="none of the split"):
        build_store(Path(store).parent / "nothing", Path(store).parent / "s2", seq=SEQ)


def test_store_dataset_errors(store, tmp_path):
    from foleykit.training.arrays import StoreDataset, read_index

    with pytest.raises(DataError, match="not an array store"):
        read_index(tmp_path)
    with pytest.raises(DataError, match="no split 'test'"):
        StoreDataset(store, "test")
    with pytest.raises(DataError, match="no \\['latents'\\] arrays"):
        StoreDataset(store, "train", fields=["latents"])


def test_audio_crops_and_frame_windows(store):
    from foleykit.training.arrays import AudioCrops, FrameWindows, StoreDataset

    crops = AudioCrops(store, "train", crop_seconds=0.5, crops_per_clip=3, seed=4)
    assert len(crops) == 6
    full = StoreDataset(store, "train", fields=[])
    a = crops[4]["audio"]
    assert a.shape == (8000,)
    wav = full[1]["audio"].numpy()  # item 4 -> clip 1
    offsets = [o for o in range(32000 - 8000 + 1) if np.array_equal(wav[o : o + 8000], a.numpy())]
    assert offsets, "a crop is a contiguous slice of its clip"
    assert torch.equal(
        crops[4]["audio"], AudioCrops(store, "train", crop_seconds=0.5, crops_per_clip=3, seed=4)[4]["audio"]
    )
    with pytest.raises(ConfigError):
        AudioCrops(store, "train", crop_seconds=0.0)

    win = FrameWindows(store, "train", window_frames=20, windows_per_clip=2, seed=1)
    assert len(win) == 4 and win.categories == ["impact/a", "impact/b"]
    it = win[3]
    assert it["frames"].shape == (20, 16, 16, 3) and it["motion"].shape == (20, 11)
    assert it["rms_class"].shape == (100,) and it["rms"].shape == (100,) and it["category_index"] == 1
    whole = StoreDataset(store, "train", fields=["motion"])[1]
    starts = [s for s in range(31) if torch.equal(whole["motion"][s : s + 20], it["motion"])]
    assert len(starts) == 1
    s = starts[0]
    assert torch.equal(it["rms_class"], whole["rms_class"][5 * s : 5 * s + 100])  # 125 Hz = 5 x 25 fps
    assert FrameWindows(store, "validation", window_frames=10**6)[0]["frames"].shape[0] == 50


def test_encode_cached_equals_encode_and_errors():
    from foleykit.encoders.video import ConcatVideoEncoder, FrameCNNVideoEncoder, MotionVideoEncoder

    torch.manual_seed(0)
    enc = ConcatVideoEncoder(
        encoders=[
            MotionVideoEncoder(input_size=32),
            FrameCNNVideoEncoder(dim=5, input_size=16, channels=(4, 8)),
        ]
    )
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (1, 12, 24, 32, 3), dtype=np.uint8))
    with torch.no_grad():
        full = enc.encode(frames)
        motion = enc.parts[0].encode(frames)
        cached = enc.encode_cached(frames, {0: motion})
    torch.testing.assert_close(cached, full)
    assert cached.shape == (1, 12, 16)
    with pytest.raises(ConfigError, match="out of range"):
        enc.encode_cached(frames, {2: motion})
    with pytest.raises(ConfigError, match="gives 11 features"):
        enc.encode_cached(frames, {0: motion[..., :5]})
    with pytest.raises(ConfigError, match="frame counts differ"):
        enc.encode_cached(frames, {0: motion[:, :6]})


def _ctx(tmp_path, family, data, overrides, pipe=None):
    from foleykit.recipes import build_pipeline
    from foleykit.training.config import resolve_run_config
    from foleykit.training.stages.base import StageContext

    pipe = pipe or build_pipeline("foleykit_demo", size="debug")
    cfg = resolve_run_config(
        recipe="foleykit_demo",
        level="debug",
        stages={family: family},
        overrides=["train.tensorboard=false", "train.ckpt_every=0", *overrides],
    )
    return StageContext(
        run_config=cfg,
        cfg=cfg["stages"][family],
        run_dir=tmp_path,
        stage_dir=tmp_path / family,
        data=data,
        seq=pipe.seq,
        pipeline=pipe,
    )


def test_autoencoder_crop_seconds(store, tmp_path):
    from foleykit.training.arrays import AudioCrops
    from foleykit.training.stages.autoencoder import AutoencoderStage

    data = {"train": AudioCrops(store, "train", crop_seconds=0.32, crops_per_clip=2)}
    st = AutoencoderStage(
        _ctx(
            tmp_path,
            "autoencoder",
            data,
            ["+stages.autoencoder.trainable=[vae]", "stages.autoencoder.crop_seconds=0.32"],
        )
    )
    assert st.crop_samples() == 5120
    batch = st.collate([data["train"][0], data["train"][1]])
    assert batch["audio"].shape == (2, 5120)
    st.build()
    from foleykit.training.stages.base import StepInputs

    loss, logs = st.loss(
        StepInputs(
            models={"main": st.build().trainable["main"]},
            frozen={"mel": _mel(st)},
            batch=batch,
            generator=torch.Generator().manual_seed(0),
            step=0,
            scratch={},
        ),
        "main",
    )
    assert torch.isfinite(loss) and "mel_l1" in logs
    st_none = AutoencoderStage(_ctx(tmp_path, "autoencoder", data, ["+stages.autoencoder.trainable=[vae]"]))
    assert st_none.crop_samples() == SequenceConfig(duration=1.0).num_samples  # the debug window
    bad = AutoencoderStage(
        _ctx(
            tmp_path,
            "autoencoder",
            data,
            ["+stages.autoencoder.trainable=[vae]", "stages.autoencoder.crop_seconds=0.01"],
        )
    )
    with pytest.raises(ConfigError, match="shorter than one latent frame"):
        bad.crop_samples()


def _mel(stage):
    from foleykit.audio import MelSpectrogram

    return MelSpectrogram.from_sequence(stage.ctx.seq)


def _motion_pipe():
    """The debug demonstrator with a motion + frame-CNN encoder (16 features, as the debug predictor expects)."""
    from foleykit.encoders.video import ConcatVideoEncoder, FrameCNNVideoEncoder, MotionVideoEncoder
    from foleykit.recipes import build_pipeline

    pipe = build_pipeline("foleykit_demo", size="debug")
    pipe.video_encoder = ConcatVideoEncoder(
        encoders=[
            MotionVideoEncoder(input_size=32),
            FrameCNNVideoEncoder(dim=5, input_size=16, channels=(4, 8)),
        ]
    )
    return pipe


def test_predictor_windows_cached_motion_and_category_head(store, tmp_path, monkeypatch):
    from foleykit.encoders.video import MotionVideoEncoder
    from foleykit.training.arrays import FrameWindows
    from foleykit.training.stages.predictor import PredictorStage
    from foleykit.training.trainer import Trainer

    train = FrameWindows(store, "train", window_frames=20, windows_per_clip=2)
    data = {
        "train": train,
        "validation": FrameWindows(store, "validation", window_frames=10**6, categories=train.categories),
    }
    ctx = _ctx(
        tmp_path,
        "predictor",
        data,
        [
            "+stages.predictor.trainable=[predictor_rms,video_encoder]",
            "stages.predictor.category_weight=0.5",
            "train.max_steps=2",
        ],
        pipe=_motion_pipe(),
    )
    calls = []
    monkeypatch.setattr(MotionVideoEncoder, "_encode", lambda self, f: calls.append(1) or torch.zeros(0))
    st = PredictorStage(ctx)
    res = Trainer(stage=st).fit()
    assert not calls, "the motion statistics come from the store, not from optical flow"
    assert st.categories == ["impact/a", "impact/b"]
    assert "category" in res.history[-1] or any("category" in k for k in res.history[-1])
    assert 0.0 <= res.val_metrics["category_acc"] <= 1.0 and "rms_acc1" in res.val_metrics
    batch = st.collate([train[0], train[1]])
    assert batch["rms_class"].shape == (2, 100) and batch["motion"].shape == (2, 20, 11)
    out = st._forward(st.build().trainable["main"], batch, {})
    assert out["rms"].shape == (2, 100, 64) and out["category"].shape == (2, 2)
    # the category loss is the hand-computable cross-entropy of the head
    losses = st._losses(out, batch)
    ce = torch.nn.functional.cross_entropy(out["category"], batch["category_index"])
    torch.testing.assert_close(losses["category"], 0.5 * ce)


def test_category_weight_needs_a_vocabulary(tmp_path):
    from foleykit.training.stages.predictor import PredictorStage

    class Plain(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return {}

    ctx = _ctx(
        tmp_path,
        "predictor",
        {"train": Plain()},
        ["+stages.predictor.trainable=[predictor_rms]", "stages.predictor.category_weight=1.0"],
    )
    with pytest.raises(ConfigError, match="category vocabulary"):
        PredictorStage(ctx).build()


def test_control_dropout_rows_equal_the_base_without_adapter(tmp_path):
    from foleykit.recipes import build_pipeline
    from foleykit.training.stages.denoising import DenoiseTask

    torch.manual_seed(0)
    pipe = build_pipeline("foleykit_demo", size="debug")
    ad = pipe.adapters["rms"]
    with torch.no_grad():
        for p in ad.parameters():
            p.add_(0.05 * torch.randn_like(p))  # leave the zero initialisation: the adapter now matters
    task = DenoiseTask(
        trainable={"denoiser": pipe.denoiser, "assembler": pipe.assembler, "adapter_rms": ad},
        frozen={"codec": pipe.codec},
    )
    seq = pipe.seq
    x = torch.randn(2, *pipe.codec.latent_shape(seq))
    t = torch.tensor([300, 700])
    series = torch.rand(2, seq.num_control_frames)
    kw = dict(parts={"text": None, "audio": None}, drop={}, seconds_total=torch.full((2,), seq.duration))
    with torch.no_grad():
        base = task(x, t, **kw)
        full = task(x, t, **kw, controls=[("rms", series, None)])
        mixed = task(x, t, **kw, controls=[("rms", series, None)], control_scale=torch.tensor([0.0, 1.0]))
    assert not torch.allclose(full, base)
    torch.testing.assert_close(mixed[0], base[0])
    torch.testing.assert_close(mixed[1], full[1])


def test_prior_stage_control_dropout_draws(tmp_path, monkeypatch):
    from foleykit.recipes import build_pipeline
    from foleykit.training.stages.prior import PriorStage

    pipe = build_pipeline("foleykit_demo", size="debug")
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *a, **k):
            seen.append(k.get("control_scale"))
            return self.inner(*a, **k)

    from test_training_stages import Clips

    ctx = _ctx(
        tmp_path,
        "prior",
        {"train": Clips(pipe.seq)},
        [
            "+stages.prior.trainable=[transformer,controlnet_rms,control_encoder_rms]",
            "stages.prior.control_dropout=0.5",
            "train.batch_size=4",
        ],
        pipe=pipe,
    )
    st = PriorStage(ctx)
    mods = st.build()
    assert st.adapter_names == ["rms"]
    ds = st.train_dataset()
    batch = st.collate([ds[i] for i in range(4)])
    gen = torch.Generator().manual_seed(3)
    st.diffusion_loss(Spy(mods.trainable["main"]), mods.frozen, batch, gen)
    scale = seen[-1]
    assert scale is not None and set(scale.tolist()) <= {0.0, 1.0} and scale.shape == (4,)
    st.diffusion_loss(Spy(mods.trainable["main"]), mods.frozen, batch, gen, dropout=False)
    assert seen[-1] is None  # validation: adapters always on


def test_driver_runs_a_stage_on_the_store(store, tmp_path):
    from foleykit.training.demo import run_stage, stage_datasets

    res = run_stage(
        stage="autoencoder",
        store=store,
        run=tmp_path / "run",
        level="debug",
        progress=lambda s: None,
        overrides=[
            "autoencoder.max_steps=2",
            "autoencoder.crop_seconds=0.5",
            "autoencoder.batch_size=2",
            "autoencoder.tensorboard=false",
            "autoencoder.crops_per_clip=2",
        ],
    )
    assert res.steps == 2 and (tmp_path / "run" / "autoencoder" / "model" / "model_index.json").is_file()
    assert len(stage_datasets("autoencoder", store, {"crop_seconds": 0.5, "crops_per_clip": 2})["train"]) == 4
    ds = stage_datasets("predictor", store, {"window_frames": 10})
    assert ds["train"][0]["frames"].shape[0] == 10 and ds["validation"][0]["frames"].shape[0] == 50
    with pytest.raises(ConfigError, match="unknown stage"):
        run_stage(stage="nope", store=store, run=tmp_path / "r2")


def test_ship_writes_fp16_with_card_and_adapter_weight(tmp_path):
    from safetensors import safe_open

    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.product.debug import save_debug_model
    from foleykit.training.demo import ship

    model = save_debug_model(tmp_path / "model")
    card = tmp_path / "card.md"
    card.write_text("# card\n")
    out = ship(model, tmp_path / "shipped", card=card, adapter_weight=2.5, silence_threshold=0.3)
    assert (out / "MODEL_CARD.md").read_text() == "# card\n"
    files = sorted(out.rglob("*.safetensors"))
    assert files
    for f in files:
        with safe_open(str(f), "pt") as s:
            assert {s.get_slice(k).get_dtype() for k in s.keys()} <= {"F16", "I64", "I32", "BOOL", "U8"}, f
    pipe = VideoToAudioPipeline.from_pretrained(out)
    assert pipe.adapters and all(a.weight == 2.5 for a in pipe.adapters.values())
    assert pipe.predictors["rms"].silence_threshold == 0.3  # stored in the spec, rebuilt on load
    assert VideoToAudioPipeline.from_pretrained(model).predictors["rms"].silence_threshold is None
    with pytest.raises(ValueError, match="silence_threshold"):
        ship(model, tmp_path / "bad", silence_threshold=1.5)
    with pytest.raises(ValueError, match="adapter weight"):
        ship(model, tmp_path / "bad", adapter_weight=-1.0)
    assert not (tmp_path / "bad").exists()
