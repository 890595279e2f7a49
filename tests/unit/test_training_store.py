"""Training from a prepared store (the CPU path of the shipped model): the array backend of the feature cache,
its datasets, the video inputs a model's encoder decides, the autoencoder's crops, the predictor's windows /
category head, control dropout, and `foleykit train prepare / --store / merge / cache / ship` end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from foleykit.errors import ConfigError, DataError
from foleykit.testing import make_moving_square_video

SEQ = None  # the debug demonstrator's geometry (1 s windows), set by the fixture
MOVES = {"a": (5, 15), "b": (3, 10, 20)}


def _debug_seq():
    from foleykit.recipes import build_pipeline

    return build_pipeline("foleykit_demo", size="debug").seq


def _dataset(root: Path) -> Path:
    """train/ and validation/ folders: 1 s moving-square videos with a click at each jump, lossless sidecar wav,
    a manifest with categories."""
    for split, keys in (("train", ["a", "b"]), ("validation", ["a"])):
        folder = root / split
        folder.mkdir(parents=True)
        rows = []
        for key in keys:
            name = f"{split}-{key}"
            make_moving_square_video(
                folder / f"{name}.mp4", duration=1.0, move_frames=MOVES[key], audio="clicks"
            )
            wav = np.zeros(16000, np.float32)
            for f in MOVES[key]:
                s = int(f / 25 * 16000)
                wav[s : s + 400] = 0.8 * np.exp(-np.arange(400) / 80)
            sf.write(folder / f"{name}.wav", wav, 16000)
            rows.append(
                {
                    "path": f"{name}.mp4",
                    "caption": f"knocks {key}",
                    "start": 0.0,
                    "end": 1.0,
                    "category": f"impact/{key}",
                }
            )
        with open(folder / "manifest.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["path", "caption", "start", "end", "category"])
            w.writeheader()
            w.writerows(rows)
    return root


def _encoder():
    """motion (32 px) + a trainable frame CNN (16 px): 16 features, as the debug predictor expects."""
    from foleykit.encoders.video import ConcatVideoEncoder, FrameCNNVideoEncoder, MotionVideoEncoder

    torch.manual_seed(0)
    return ConcatVideoEncoder(
        encoders=[
            MotionVideoEncoder(input_size=32),
            FrameCNNVideoEncoder(dim=5, input_size=16, channels=(4, 8)),
        ]
    )


def _extractors(seq, encoder):
    from foleykit.data.cache import VideoInputsExtractor, make_extractors

    return [*make_extractors(["audio", "rms"], seq=seq), VideoInputsExtractor(encoder=encoder, seq=seq)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from foleykit.data.cache import prepare_arrays

    global SEQ
    SEQ = _debug_seq()
    root = tmp_path_factory.mktemp("demo")
    data = _dataset(root / "data")
    prepare_arrays(data, root / "store", extractors=_extractors(SEQ, _encoder()), seq=SEQ)
    return root / "store"


def test_store_arrays_match_the_inference_computation(store):
    from foleykit.data.cache import ArrayDataset, encode_prepared, read_store_index
    from foleykit.encoders.video import MotionVideoEncoder
    from foleykit.media import read_video
    from foleykit.training.targets import control_targets

    meta = read_store_index(store)
    assert meta["splits"]["train"]["n"] == 2 and meta["splits"]["validation"]["n"] == 1
    assert meta["splits"]["train"]["category_names"] == ["impact/a", "impact/b"]
    ds = ArrayDataset(store, "train", fields=["video_part0", "frames"])
    it = ds[1]
    assert it["audio"].shape == (16000,) and it["frames"].shape == (25, 16, 16, 3)
    assert it["frames"].dtype == torch.uint8 and it["rms_class"].dtype == torch.int64
    assert it["category"] == "impact/b" and it["category_index"] == 1 and it["caption"] == "knocks b"
    source = Path(meta["splits"]["train"]["source"])
    clip = read_video(source / "train-b.mp4", fps=25, size=32)  # what the pipeline decodes (input_size 32)
    torch.testing.assert_close(it["video_part0"], MotionVideoEncoder(input_size=32).encode(clip.frames)[0])
    enc = _encoder()
    with torch.no_grad():
        batch = {k: it[k][None] for k in ("frames", "video_part0")}
        torch.testing.assert_close(encode_prepared(enc, batch), enc.encode(clip.frames[None]))
    ref = control_targets(sf.read(source / "train-b.wav", dtype="float32")[0], SEQ, ["rms", "rms_class"])
    np.testing.assert_allclose(it["rms"].numpy(), ref["rms"], atol=1e-6)
    assert torch.equal(it["rms_class"], torch.from_numpy(ref["rms_class"]))
    # the motion peaks at the jump frames (flow between frames k-1 and k lands on row k)
    assert set(MOVES["b"]) <= set(np.argsort(it["video_part0"][:, 0].numpy())[-3:].tolist())
    with pytest.raises(IndexError):
        ds[2]


def test_frozen_encoder_features_are_prepared_directly(tmp_path, store):
    from foleykit.data.cache import ArrayDataset, VideoInputsExtractor, encode_prepared, prepare_arrays
    from foleykit.encoders.video import DebugVideoEncoder
    from foleykit.media import read_video

    enc = DebugVideoEncoder(input_size=32)
    prepare_arrays(
        Path(store).parent / "data",
        tmp_path / "s",
        extractors=[VideoInputsExtractor(encoder=enc, seq=SEQ)],
        seq=SEQ,
        splits=["validation"],
    )
    it = ArrayDataset(tmp_path / "s", "validation")[0]
    assert "frames" not in it and not any(k.startswith("video_part") for k in it)
    clip = read_video(Path(store).parent / "data" / "validation" / "validation-a.mp4", fps=25, size=32)
    torch.testing.assert_close(it["video_features"], enc.encode(clip.frames)[0])
    assert torch.equal(
        encode_prepared(enc, {"video_features": it["video_features"][None]})[0], it["video_features"]
    )


def test_prepare_extractors_follow_the_model(tmp_path):
    from foleykit.recipes import build_pipeline
    from foleykit.training.store import prepare_extractors

    pipe = build_pipeline("foleykit_demo", size="debug")  # frozen debug encoder, RMS-Mapper + RMS adapter
    exts = prepare_extractors(pipe, extract=["onsets"])
    assert [e.name for e in exts] == ["audio", "rms", "onsets", "video"]
    assert exts[-1].layout() == ([], None)  # frozen: features, no frames
    pipe.video_encoder = _encoder()
    assert prepare_extractors(pipe)[-1].layout() == ([0], 16)  # motion features + 16 px frames for the CNN


def test_store_is_resumable_and_refuses_other_settings(store):
    from foleykit.data.cache import prepare_arrays

    data = Path(store).parent / "data"
    audio = np.load(store / "train" / "audio.npy", mmap_mode="r+")
    before = np.array(audio)
    audio[1] = 0.0  # a clip the killed run had not finished
    audio.flush()
    done = np.load(store / "train" / "done.npy", mmap_mode="r+")
    done[1] = False
    done.flush()
    del audio, done
    prepare_arrays(data, store, extractors=_extractors(SEQ, _encoder()), seq=SEQ)
    assert np.array_equal(np.load(store / "train" / "audio.npy"), before)
    with pytest.raises(DataError, match="other settings"):
        prepare_arrays(data, store, extractors=_extractors(SEQ, _encoder())[:1], seq=SEQ)
    with pytest.raises(DataError, match="none of the split"):
        prepare_arrays(Path(store).parent / "nothing", Path(store).parent / "s2", extractors=[], seq=SEQ)


def test_an_extended_dataset_grows_its_store_and_keeps_the_finished_clips(tmp_path, monkeypatch):
    """`foleykit data synth --start-index` adds clips after the prepared ones: `prepare` computes only the
    new clips, the store equals one prepared from scratch, and arrays added from the old rows are dropped."""
    import shutil

    from foleykit.data.cache import add_array, array_tag, prepare_arrays, read_store_index
    from foleykit.data.cache import arrays as A

    seq = _debug_seq()
    data = _dataset(tmp_path / "data")
    full = tmp_path / "full"
    prepare_arrays(data, full, extractors=_extractors(seq, _encoder()), seq=seq)
    # the same dataset before it was extended: the first training clip only
    small = tmp_path / "small"
    shutil.copytree(data, small)
    lines = (small / "train" / "manifest.csv").read_text().splitlines()
    (small / "train" / "manifest.csv").write_text("\n".join(lines[:2]) + "\n")
    grown = tmp_path / "grown"
    prepare_arrays(small, grown, extractors=_extractors(seq, _encoder()), seq=seq)
    add_array(grown, "train", "latents", lambda i: np.ones(3), tag="latents:x")
    computed = []
    real = A._run_clip
    monkeypatch.setattr(A, "_run_clip", lambda rec, *a: computed.append(rec.key) or real(rec, *a))
    prepare_arrays(data, grown, extractors=_extractors(seq, _encoder()), seq=seq)
    assert computed == ["train-b"]  # validation and the first training clip were kept
    assert read_store_index(grown)["splits"]["train"]["keys"] == ["train-a", "train-b"]
    for name in ("audio", "rms", "rms_classes", "video_features", "done"):
        f = f"train/{name}.npy"
        if (full / f).is_file():
            assert np.array_equal(np.load(grown / f), np.load(full / f)), name
    assert array_tag(grown, "train", "latents") is None  # made from one clip: recomputed for all
    # another list of clips (not an extension) is prepared afresh
    computed.clear()
    (data / "train" / "manifest.csv").write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n")
    prepare_arrays(data, grown, extractors=_extractors(seq, _encoder()), seq=seq)
    assert computed == ["train-b", "train-a"]


def test_one_clips_folder_or_manifest_is_prepared_as_the_training_split(tmp_path, store):
    """A folder of one's own clips (no train/ validation/ sub-folders) or a CSV manifest is the training split,
    as `foleykit train --data` reads it; a manifest that lists no clip is refused."""
    from foleykit.data.cache import ArrayDataset, prepare_arrays, read_store_index

    data = Path(read_store_index(store)["splits"]["train"]["source"])  # a folder of two clips, no splits
    for source in (data, data / "manifest.csv"):
        out = tmp_path / f"store-{source.name}"
        meta = prepare_arrays(source, out, extractors=_extractors(SEQ, _encoder()), seq=SEQ)
        assert list(meta["splits"]) == ["train"] and meta["splits"]["train"]["source"] == str(source)
        ours, theirs = (ArrayDataset(s, "train", fields=["video_part0"]) for s in (out, store))
        assert ours[1]["caption"] == theirs[1]["caption"] == "knocks b"
        torch.testing.assert_close(ours[1]["video_part0"], theirs[1]["video_part0"])
        torch.testing.assert_close(ours[1]["audio"], theirs[1]["audio"])
    empty = tmp_path / "empty.csv"
    empty.write_text("path,caption,start,end\n")
    with pytest.raises(DataError, match="lists no clip"):
        prepare_arrays(empty, tmp_path / "store-empty", extractors=_extractors(SEQ, _encoder()), seq=SEQ)


def test_store_dataset_errors(store, tmp_path):
    from foleykit.data.cache import ArrayDataset, read_store_index
    from foleykit.training.store import check_store

    with pytest.raises(DataError, match="not a prepared store"):
        read_store_index(tmp_path)
    with pytest.raises(DataError, match="no split 'test'"):
        ArrayDataset(store, "test")
    with pytest.raises(DataError, match="no \\['latents'\\] arrays"):
        ArrayDataset(store, "train", fields=["latents"])
    with pytest.raises(DataError, match="another geometry"):
        check_store(store, SEQ.with_duration(2.0))
    check_store(store, SEQ)


def test_audio_crops_and_windows(store):
    from foleykit.data.cache import ArrayDataset, AudioCrops, Windows

    crops = AudioCrops(store, "train", crop_seconds=0.25, crops_per_clip=3, seed=4)
    assert len(crops) == 6
    full = ArrayDataset(store, "train", fields=[])
    a = crops[4]["audio"]
    assert a.shape == (4000,)
    wav = full[1]["audio"].numpy()  # item 4 -> clip 1
    offsets = [o for o in range(16000 - 4000 + 1) if np.array_equal(wav[o : o + 4000], a.numpy())]
    assert offsets, "a crop is a contiguous slice of its clip"
    again = AudioCrops(store, "train", crop_seconds=0.25, crops_per_clip=3, seed=4)[4]["audio"]
    assert torch.equal(crops[4]["audio"], again)
    with pytest.raises(ConfigError):
        AudioCrops(store, "train", crop_seconds=0.0)

    win = Windows(store, "train", window_frames=10, windows_per_clip=2, seed=1)
    assert len(win) == 4 and win.categories == ["impact/a", "impact/b"]
    it = win[3]
    assert it["frames"].shape == (10, 16, 16, 3) and it["video_part0"].shape == (10, 11)
    assert it["rms_class"].shape == (50,) and it["rms"].shape == (50,) and it["category_index"] == 1
    whole = ArrayDataset(store, "train", fields=["video_part0"])[1]
    starts = [s for s in range(16) if torch.equal(whole["video_part0"][s : s + 10], it["video_part0"])]
    assert len(starts) == 1
    s = starts[0]
    assert torch.equal(it["rms_class"], whole["rms_class"][5 * s : 5 * s + 50])  # 125 Hz = 5 x 25 fps
    assert torch.equal(it["audio"], whole["audio"][640 * s : 640 * (s + 10)])
    assert Windows(store, "validation", window_frames=10**6)[0]["frames"].shape[0] == 25


def test_sequence_grids():
    from foleykit.config import SequenceConfig

    seq = SequenceConfig()
    assert seq.grid("control") == (125.0, 1250) and seq.grid("latent") == (25.0, 250)
    assert seq.grid("video") == (25.0, 250) and seq.grid("mel") == seq.grid("energy") == (100.0, 1000)
    assert seq.grid("audio") == (16000.0, 160000)
    with pytest.raises(ConfigError, match="unknown grid"):
        seq.grid("frames")


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
    from foleykit.config import SequenceConfig
    from foleykit.data.cache import AudioCrops
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
    """The debug demonstrator with a trainable motion + frame-CNN encoder of 16 features (its predictor built
    for 16-d features)."""
    from foleykit.recipes import build_pipeline, load_recipe

    rec = load_recipe("foleykit_demo", size="debug")
    rec["video_encoder"] = {"name": "debug", "dim": 16}
    rec["predictors"]["rms"].pop("input_groups")  # 16 ungrouped features: the mapper reads them all
    pipe = build_pipeline(rec)
    pipe.video_encoder = _encoder()
    return pipe


def test_predictor_windows_cached_motion_and_category_head(store, tmp_path, monkeypatch):
    from foleykit.data.cache import Windows
    from foleykit.encoders.video import MotionVideoEncoder
    from foleykit.training.stages.predictor import PredictorStage
    from foleykit.training.trainer import Trainer

    train = Windows(store, "train", window_frames=10, windows_per_clip=2)
    data = {
        "train": train,
        "validation": Windows(store, "validation", window_frames=10**6, categories=train.categories),
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
    assert batch["rms_class"].shape == (2, 50) and batch["video_part0"].shape == (2, 10, 11)
    out = st._forward(st.build().trainable["main"], batch, {})
    assert out["rms"].shape == (2, 50, 64) and out["category"].shape == (2, 2)
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
    kw = {"parts": {"text": None, "audio": None}, "drop": {}, "seconds_total": torch.full((2,), seq.duration)}
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


def test_store_stage_datasets(store):
    from foleykit.training.store import store_datasets

    ae = store_datasets("autoencoder", store, {"crop_seconds": 0.5, "crops_per_clip": 2})
    assert len(ae["train"]) == 4 and len(ae["validation"]) == 1 and ae["train"][0]["audio"].shape == (8000,)
    pred = store_datasets("predictor", store, {"window_frames": 10}, train_encoder=True)
    assert pred["train"][0]["frames"].shape[0] == 10 and pred["validation"][0]["frames"].shape[0] == 25
    assert set(pred["train"][0]) >= {"frames", "video_part0", "rms", "rms_class", "category_index"}
    voc = store_datasets("vocoder", store, {})
    assert set(voc["train"][0]) >= {"audio"} and "frames" not in voc["train"][0]


def test_train_cli_store_path_end_to_end(tmp_path, capsys):
    """The shipped model's path at debug size, through the CLI only: prepare -> stages side by side (each its
    own config) -> merge -> cache (latent scale, latents, video features, tokens) -> denoiser from the merged
    model -> ship (fp16, card, adapter weight, silence threshold)."""
    from safetensors import safe_open

    from foleykit.cli import main
    from foleykit.data.cache import ArrayDataset, array_tag
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    data = _dataset(tmp_path / "data")
    store, run = tmp_path / "store", tmp_path / "run"
    common = ["--recipe", "foleykit_demo", "--config", "debug", "--threads", "1"]
    assert main(["train", "prepare", "--data", str(data), "--store", str(store), *common]) == 0
    from foleykit.data.cache import read_store_index

    assert (
        read_store_index(store)["extractors"]["video"]["pose"] == "model"
    )  # the pose model, as at inference
    assert {"audio", "rms", "rms_classes", "video_features"} <= {
        p.stem for p in (store / "train").glob("*.npy")
    }
    knobs = ["max_steps=2", "tensorboard=false", "ckpt_every=0"]
    for stage, extra in (("autoencoder", ["crop_seconds=0.5", "crops_per_clip=2"]), ("predictor", [])):
        over = [f"{stage}.{k}" for k in knobs + extra]
        args = ["train", *common, "--stage", stage, "--store", str(store), "--output", str(run), *over]
        assert main(args) == 0
        assert (run / f"{stage}.config.yaml").is_file() and (
            run / stage / "model" / "model_index.json"
        ).is_file()
    assert not (run / "config.yaml").exists() and not (run / "model").exists()
    assert main(["train", "merge", "--run", str(run), "--output", str(run / "base")]) == 0
    base = VideoToAudioPipeline.from_pretrained(run / "base")
    ae = VideoToAudioPipeline.from_pretrained(run / "autoencoder" / "model")
    torch.testing.assert_close(base.codec.vae.state_dict(), ae.codec.vae.state_dict())
    assert (
        main(["train", "cache", "--store", str(store), "--model", str(run / "base"), "--threads", "1"]) == 0
    )
    scaled = VideoToAudioPipeline.from_pretrained(run / "base")
    assert scaled.codec.vae.config.scaling_factor != ae.codec.vae.config.scaling_factor
    tag = array_tag(store, "train", "latents")
    assert tag and ArrayDataset(store, "train", fields=["latents", "audio_tokens"])[0]["latents"].ndim == 3
    over = [f"denoiser.{k}" for k in knobs]
    args = ["train", *common, "--stage", "denoiser", "--store", str(store), "--output", str(run)]
    assert main([*args, "--init", str(run / "base"), *over]) == 0
    assert array_tag(store, "train", "latents") == tag  # made by the same VAE: kept
    assert main([*args, "--init", str(run / "base"), *over]) == 2  # a second fresh run of the stage: refused
    more = [o.replace("max_steps=2", "max_steps=3") for o in over]
    capsys.readouterr()
    assert main([*args, "--init", str(run / "base"), "--resume", *more]) == 0  # continues from step 2
    log = capsys.readouterr().out
    assert "step 3/3" in log and "step 1/3" not in log and "step 2/3" not in log
    done = json.loads((run / "denoiser" / "result.json").read_text())
    assert done["steps"] == 3 and "max_steps: 3" in (run / "denoiser.config.yaml").read_text()
    card = tmp_path / "card.md"
    card.write_text("# card\n")
    shipped = tmp_path / "shipped"
    ship = ["train", "ship", "--model", str(run / "denoiser" / "model"), "--output", str(shipped)]
    assert main([*ship, "--card", str(card), "--adapter-weight", "2.5", "--silence-threshold", "0.3"]) == 0
    assert (shipped / "MODEL_CARD.md").read_text() == "# card\n"
    for f in sorted(shipped.rglob("*.safetensors")):
        with safe_open(str(f), "pt") as s:
            assert {s.get_slice(k).get_dtype() for k in s.keys()} <= {"F16", "I64", "I32", "BOOL", "U8"}, f  # noqa: SIM118 (safe_open is not iterable)
    pipe = VideoToAudioPipeline.from_pretrained(shipped)
    assert pipe.adapters and all(a.weight == 2.5 for a in pipe.adapters.values())
    assert pipe.predictors["rms"].silence_threshold == 0.3  # stored in the spec, rebuilt on load
    model = run / "denoiser" / "model"
    assert VideoToAudioPipeline.from_pretrained(model).predictors["rms"].silence_threshold is None
    rule = tmp_path / "rule"
    assert (
        main(["train", "ship", "--model", str(model), "--output", str(rule), "--decoding", "expected"]) == 0
    )
    mapper = VideoToAudioPipeline.from_pretrained(rule).predictors["rms"]
    assert mapper.decoding == "expected" and mapper.silence_threshold is None and mapper.expansion == 1.0
    expand = ["--decoding", "expected", "--expansion", "2.5"]
    assert main(["train", "ship", "--model", str(model), "--output", str(tmp_path / "ex"), *expand]) == 0
    mapper = VideoToAudioPipeline.from_pretrained(tmp_path / "ex").predictors["rms"]
    assert (mapper.decoding, mapper.expansion) == ("expected", 2.5)  # stored in the spec, rebuilt on load
    follow = ["--follow-envelope", "1"]
    assert main(["train", "ship", "--model", str(model), "--output", str(tmp_path / "fo"), *follow]) == 0
    assert VideoToAudioPipeline.from_pretrained(tmp_path / "fo").defaults["follow_envelope"] == 1.0
    assert "follow_envelope" not in VideoToAudioPipeline.from_pretrained(model).defaults
    bad = ["--follow-envelope", "1.5"]
    assert main(["train", "ship", "--model", str(model), "--output", str(tmp_path / "fo2"), *bad]) == 2
    assert not (tmp_path / "fo2").exists()
    assert (
        main(
            ["train", "ship", "--model", str(model), "--output", str(tmp_path / "ex0"), "--expansion", "0.5"]
        )
        == 2
    )
    assert not (tmp_path / "ex0").exists()
    both = ["--decoding", "median", "--silence-threshold", "0.3"]
    assert main(["train", "ship", "--model", str(model), "--output", str(tmp_path / "both"), *both]) == 2
    assert not (tmp_path / "both").exists()
    assert (
        main(
            [
                "train",
                "ship",
                "--model",
                str(model),
                "--output",
                str(tmp_path / "bad"),
                "--silence-threshold",
                "1.5",
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "train",
                "ship",
                "--model",
                str(model),
                "--output",
                str(tmp_path / "bad"),
                "--adapter-weight",
                "-1",
            ]
        )
        == 2
    )
    assert not (tmp_path / "bad").exists()


def test_cache_sets_the_latent_scale_in_a_training_folder_only_and_recomputes_stale_latents(tmp_path, capsys):
    """`train cache` writes the measured scaling factor into a training folder's vae/config.json and touches
    nothing else there (weights, dtype, other files); latents made under another factor are recomputed; a
    shipped folder keeps its factor and is not changed at all."""
    from foleykit.cli import main
    from foleykit.data.cache import ArrayDataset
    from foleykit.recipes import build_pipeline
    from foleykit.training.store import latent_scale

    def files(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    def stored_and_fresh(model: Path) -> tuple[torch.Tensor, torch.Tensor]:
        from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

        row = ArrayDataset(store, "train", fields=["latents"])[0]
        with torch.no_grad():
            fresh = VideoToAudioPipeline.from_pretrained(model).codec.encode_audio(row["audio"][None])[0]
        return row["latents"].float(), fresh.float()

    data = _dataset(tmp_path / "data")
    store, run = tmp_path / "store", tmp_path / "run"
    common = ["--recipe", "foleykit_demo", "--config", "debug", "--threads", "1"]
    assert main(["train", "prepare", "--data", str(data), "--store", str(store), *common]) == 0
    pipe = build_pipeline("foleykit_demo", size="debug")
    pipe.save_pretrained(run)
    (run / "NOTES.md").write_text("kept\n")
    before = files(run)
    measured = latent_scale(pipe, store)
    assert measured != pytest.approx(pipe.codec.scaling_factor)
    cache = ["train", "cache", "--store", str(store), "--model", str(run), "--threads", "1"]
    assert main(cache) == 0
    after = files(run)
    assert {k for k in before if before[k] != after.get(k)} == {"vae/config.json"} and set(after) == set(
        before
    )
    assert json.loads((run / "vae" / "config.json").read_text())["scaling_factor"] == pytest.approx(measured)
    stored, fresh = stored_and_fresh(run)
    torch.testing.assert_close(stored, fresh, rtol=1e-2, atol=1e-3)

    config = json.loads((run / "vae" / "config.json").read_text())
    config["scaling_factor"] = 2 * measured  # another factor, the same weights: the latents are stale
    (run / "vae" / "config.json").write_text(json.dumps(config))
    assert main([*cache, "--no-scale"]) == 0
    restored, fresh = stored_and_fresh(run)
    torch.testing.assert_close(restored, fresh, rtol=1e-2, atol=1e-3)
    torch.testing.assert_close(restored, 2 * stored, rtol=1e-2, atol=1e-3)

    shipped = tmp_path / "shipped"
    assert main(["train", "ship", "--model", str(run), "--output", str(shipped)]) == 0
    before = files(shipped)
    capsys.readouterr()
    assert main(["train", "cache", "--store", str(store), "--model", str(shipped), "--threads", "1"]) == 0
    assert "is kept" in capsys.readouterr().out
    assert files(shipped) == before

    from foleykit.training.data import cache_tag  # the run folder's feature cache (no store) likewise

    tag = cache_tag(pipe, video=False)
    pipe.codec.vae.register_to_config(scaling_factor=3 * measured)
    assert cache_tag(pipe, video=False) != tag
