"""Video encoders: debug twin, motion statistics, frame CNN, concatenation, local CLIP vision, scene, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from foleykit import registry
from foleykit.controls.motion import MOTION_FEATURE_NAMES, motion_features
from foleykit.encoders.video import (
    CLIPVideoEncoder,
    ConcatVideoEncoder,
    DebugVideoEncoder,
    FrameCNNVideoEncoder,
    MotionVideoEncoder,
)
from foleykit.errors import ConfigError, WeightsNotFoundError, ZeroFramesError


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def square_video(
    T: int = 12, size: int = 64, move_at: tuple[int, ...] = (5,), colour=(255, 40, 40)
) -> np.ndarray:
    """A grey background with a coloured square that jumps 8 px right at each frame in ``move_at``."""
    frames = np.full((T, size, size, 3), 90, np.uint8)
    x = 10
    for t in range(T):
        if t in move_at:
            x += 8
        frames[t, 20:36, x : x + 16] = colour
    return frames


# --- debug twin ---------------------------------------------------------------------------------------------
def test_debug_encoder_sees_colour_and_change():
    enc = registry.build("video_encoder", "debug")
    feats = enc.encode(square_video(move_at=(5,)))
    assert feats.shape == (1, 12, 16) and enc.dim == 16 and enc.input_size == 32
    motion = feats[0, :, 12:].sum(1)
    assert motion.argmax().item() == 5 and torch.all(motion[[0, 1, 2, 3, 4, 6, 7]] == 0)
    red = enc.encode(square_video(colour=(255, 0, 0)))[0, 0, :12].view(4, 3)
    blue = enc.encode(square_video(colour=(0, 0, 255)))[0, 0, :12].view(4, 3)
    assert red[:, 0].sum() > blue[:, 0].sum() and blue[:, 2].sum() > red[:, 2].sum()


@pytest.mark.parametrize(
    "frames, error, match",
    [
        (np.zeros((4, 8, 8, 3), np.float32), ConfigError, "uint8"),
        (np.zeros((4, 8, 8), np.uint8), ConfigError, "shape"),
        (np.zeros((0, 8, 8, 3), np.uint8), ZeroFramesError, "no video frames"),
        (np.zeros((2, 0, 8, 3), np.uint8), ConfigError, "zero height"),
        ([[1, 2, 3]], ConfigError, "numpy array or a torch tensor"),
    ],
)
def test_frame_errors(frames, error, match):
    with pytest.raises(error, match=match):
        DebugVideoEncoder().encode(frames)


# --- motion statistics --------------------------------------------------------------------------------------
def test_motion_encoder_matches_controls_motion():
    enc = registry.build("video_encoder", "motion", input_size=64)
    assert enc.dim == len(MOTION_FEATURE_NAMES) == 11
    video = square_video(T=10, size=64, move_at=(4,))
    feats = enc.encode(video)
    assert feats.shape == (1, 10, 11)
    np.testing.assert_allclose(feats[0].numpy(), motion_features(video), rtol=1e-6)
    assert feats[0, :, 0].argmax().item() == 4  # the jump ends at frame 4
    # other sizes are resized to input_size x input_size first; batches and single frames work
    big = np.repeat(np.repeat(video, 2, axis=1), 2, axis=2)
    assert enc.encode(big).shape == (1, 10, 11)
    assert enc.encode(np.stack([video, video])).shape == (2, 10, 11)
    single = enc.encode(video[:1])
    assert single.shape == (1, 1, 11) and torch.all(single[0, 0, :3] == 0)
    with pytest.raises(ConfigError, match=">= 8"):
        MotionVideoEncoder(input_size=4)


# --- frame CNN ----------------------------------------------------------------------------------------------
def test_frame_cnn_shapes_training_and_diff():
    torch.manual_seed(0)
    enc = registry.build("video_encoder", "frame_cnn", dim=24, input_size=32, channels=(8, 8, 16))
    assert enc.dim == 24 and enc.input_size == 32 and not enc.frozen
    video = square_video(T=6, size=48)
    out = enc.encode(video)
    assert out.shape == (1, 6, 24) and out.requires_grad
    out.sum().backward()
    assert enc.cnn[0].weight.grad is not None and enc.cnn[0].weight.grad.abs().sum() > 0
    enc.eval()
    with torch.no_grad():
        batch = enc.encode(np.stack([video, video[::-1].copy()]))
        assert torch.allclose(batch[0], enc.encode(video)[0], atol=1e-5)
        # frame-difference channels: a static copy of frame 3 differs from frame 3 seen after a move
        static = enc.encode(np.repeat(video[3:4], 6, axis=0))
        assert torch.allclose(static[0, 0], static[0, 4], atol=1e-6)
        moving = enc.encode(square_video(T=6, size=48, move_at=(3,)))
        assert not torch.allclose(moving[0, 3], moving[0, 4], atol=1e-4)
    with pytest.raises(ConfigError, match="input_size"):
        FrameCNNVideoEncoder(input_size=8, channels=(4, 4, 4, 4))


def test_frame_cnn_overfits_a_colour_label():
    """The CNN can tell materials / colours apart: a linear read-out of its features fits 3 colours."""
    torch.manual_seed(0)
    enc = FrameCNNVideoEncoder(dim=8, input_size=32, channels=(8, 8, 16))
    head = torch.nn.Linear(8, 3)
    colours = [(255, 40, 40), (40, 255, 40), (40, 40, 255)]
    videos = torch.from_numpy(np.stack([square_video(T=4, size=32, colour=c) for c in colours]))
    labels = torch.arange(3).repeat_interleave(4)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(head(enc.encode(videos)).view(-1, 3), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10


# --- concatenation (the demonstrator's features) ------------------------------------------------------------
def test_motion_plus_frame_cnn():
    enc = registry.build(
        "video_encoder",
        "motion+frame_cnn",
        motion={"input_size": 64},
        frame_cnn={"dim": 16, "input_size": 32, "channels": (8, 8, 16)},
    )
    assert isinstance(enc, ConcatVideoEncoder) and enc.dim == 11 + 16 and enc.input_size == 64
    assert not enc.frozen
    video = square_video(T=8, size=64, move_at=(3,))
    feats = enc.encode(video)
    assert feats.shape == (1, 8, 27)
    np.testing.assert_allclose(feats[0, :, :11].detach().numpy(), motion_features(video), rtol=1e-6)
    enc.train()
    assert enc.training and enc.parts[1].training and not enc.parts[0].training  # motion stays frozen
    with pytest.raises(ConfigError, match="at least one"):
        ConcatVideoEncoder(encoders=[])


# --- CLIP vision from a local folder ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import json

    from transformers import CLIPConfig, CLIPModel

    folder = tmp_path_factory.mktemp("clip_vision")
    torch.manual_seed(0)
    CLIPModel(
        CLIPConfig(
            text_config={
                "vocab_size": 32,
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "max_position_embeddings": 16,
            },
            vision_config={
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 32,
                "patch_size": 8,
            },
            projection_dim=8,
        )
    ).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]})
    )
    return folder


def test_clip_vision_from_folder(tiny_clip):
    enc = registry.build("video_encoder", "clip", path=tiny_clip)
    assert enc.dim == 8 and enc.input_size == 32
    video = square_video(T=5, size=64)
    wide = np.concatenate(
        [np.zeros((5, 64, 32, 3), np.uint8), video, np.zeros((5, 64, 32, 3), np.uint8)], axis=2
    )
    feats = enc.encode(wide)  # 128 x 64: resized to 64 x 32, centre crop 32 x 32 = the square video, halved
    assert feats.shape == (1, 5, 8)
    pix = enc.preprocess(torch.from_numpy(wide)[None])
    assert pix.shape == (5, 3, 32, 32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255,
        size=32,
        mode="bicubic",
        align_corners=False,
        antialias=True,
    ).clamp(0, 1)
    inner = (
        slice(None),
        slice(None),
        slice(None),
        slice(2, -2),
    )  # the crop's borders also see the black bars
    assert torch.allclose(pix[inner], ((expected - 0.5) / 0.25)[inner], atol=1e-4)
    with torch.no_grad():
        ref = enc.model(pixel_values=pix).image_embeds
    assert torch.allclose(feats[0], ref, atol=1e-5)
    pooled = CLIPVideoEncoder(path=tiny_clip, output="pooled", normalize=True)
    out = pooled.encode(video)
    assert pooled.dim == 16 and out.shape == (1, 5, 16)
    assert torch.allclose(out.norm(dim=-1), torch.ones(1, 5), atol=1e-5)


def test_clip_vision_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "home"))
    with pytest.raises(WeightsNotFoundError) as err:
        CLIPVideoEncoder(path=tmp_path / "clip-vit")
    assert "CLIP vision encoder" in str(err.value) and "clip-vit" in str(err.value)
    with pytest.raises(WeightsNotFoundError, match="openai/clip-vit-base-patch32"):
        CLIPVideoEncoder()


# --- scene encoder (vision models + camera-compensated motion) ---------------------------------------------
def walking_blob(T: int = 50, h: int = 96, w: int = 160) -> np.ndarray:
    """A bright upright blob walking right over a textured floor (the debug pose model's "person")."""
    rng = np.random.RandomState(0)
    bg = (rng.rand(h, w, 3) * 60).astype(np.uint8)
    frames = np.repeat(bg[None], T, axis=0)
    for t in range(T):
        x = 10 + 2 * t
        frames[t, 20:80, x : x + 12] = 240
    return frames


def walker_keypoints(T: int = 50, fps: float = 25.0) -> dict:
    """INTERFACES.md keypoints of a side-view walker: each foot stands 0.6 s and swings 0.4 s."""
    from foleykit.vision.contacts import KEYPOINT_NAMES

    rows = []
    for i in range(T):
        t = i / fps
        pts = {}
        for side, off in (("left", 0.0), ("right", 0.5)):
            phase, k = ((t - off) % 1.0), np.floor(t - off)
            x = 0.2 + 0.15 * (k + off) + (0.15 * (phase - 0.6) / 0.4 if phase >= 0.6 else 0.0)
            y = 0.8 - (0.03 * np.sin(np.pi * (phase - 0.6) / 0.4) if phase >= 0.6 else 0.0)
            for n, dx in (("ankle", 0.0), ("heel", -0.01), ("foot_index", 0.02)):
                pts[f"{side}_{n}"] = (x + dx, y)
            pts[f"{side}_hip"] = (0.2 + 0.15 * t, 0.5)
            pts[f"{side}_wrist"] = (0.2 + 0.15 * t, 0.55)
        rows.append([[*pts[n], 1.0] for n in KEYPOINT_NAMES])
    return {"fps": fps, "names": list(KEYPOINT_NAMES), "people": [{"points": rows}]}


def test_scene_encoder_groups_shapes_and_debug_twin():
    enc = registry.build("video_encoder", "scene", vision="debug")
    assert enc.dim == 332 == len(enc.channel_names) and enc.frozen
    spans = sorted((s.start, s.stop) for s in enc.groups.values())
    assert spans[0][0] == 0 and spans[-1][1] == enc.dim
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # contiguous, no gaps
    assert [enc.groups[g].stop - enc.groups[g].start for g in ("pose", "objects", "embedding", "flags")] == [
        17, 27, 256, 3,
    ]  # fmt: skip
    frames = walking_blob()
    out = enc.encode(frames)
    assert out.shape == (1, 50, 332) and out.dtype == torch.float32
    f = out[0].numpy()
    assert np.all(f[:, enc.groups["flags"].start] == 1.0)  # the (debug) models ran
    pose = f[:, enc.groups["pose"]]
    assert pose[:, 0].min() == 1.0  # person_present: the blob is tracked throughout
    assert np.abs(f[:, enc.groups["embedding"]]).sum() > 0 and np.abs(f[:, enc.groups["objects"]]).sum() > 0
    assert np.array_equal(enc.encode(frames)[0].numpy(), f)  # deterministic
    both = enc.encode(np.stack([frames, frames[::-1].copy()]))
    assert both.shape == (2, 50, 332) and torch.equal(both[0], out[0])


def test_scene_encoder_without_models_says_so_once_and_keeps_motion(tmp_path, monkeypatch, caplog):
    import logging

    from foleykit.vision import scene

    monkeypatch.setattr(scene, "_noted", False)
    enc = registry.build("video_encoder", "scene", models_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="foleykit.vision.scene"):
        f = enc.encode(walking_blob())[0].numpy()
        registry.build("video_encoder", "scene", models_dir=str(tmp_path)).encode(walking_blob(10))
    notes = [r.getMessage() for r in caplog.records if "vision models not installed" in r.getMessage()]
    assert len(notes) == 1 and "foleykit models fetch-vision" in notes[0] and "motion only" in notes[0]
    g = enc.groups
    assert np.all(f[:, g["flags"].start] == 0.0)
    for name in ("pose", "objects", "embedding"):
        assert np.abs(f[:, g[name]]).max() == 0.0, name
    motion = f[:, g["motion"]]
    assert motion[:, enc.channel_names.index("residual_p99")].mean() > 0.05  # the blob moves
    with pytest.raises(WeightsNotFoundError, match="fetch-vision"):
        registry.build("video_encoder", "scene", vision="on", models_dir=str(tmp_path)).encode(
            walking_blob(4)
        )


def test_scene_encoder_pose_from_given_keypoints(tmp_path):
    enc = registry.build("video_encoder", "scene", models_dir=str(tmp_path), pose_every=1)
    kp = walker_keypoints()
    f = enc.encode(walking_blob(), keypoints=kp)[0].numpy()
    col = {n: i for i, n in enumerate(enc.channel_names)}
    assert f[:, col["person_present"]].min() == 1.0
    contacts_at = np.flatnonzero(f[:, col["feet_contact"]] > 0.2) / 25.0
    assert any(abs(t - 1.0) <= 0.1 for t in contacts_at) and any(abs(t - 1.5) <= 0.1 for t in contacts_at)
    assert (
        f[:, col["vision_available"]].max() == 0.0
    )  # the models did not run; the keypoints are ground truth
    noisy = registry.build(
        "video_encoder", "scene", models_dir=str(tmp_path), pose_every=1, keypoint_noise=0.05
    )
    g = noisy.encode(walking_blob(), keypoints=kp)[0].numpy()
    assert not np.array_equal(g[:, noisy.groups["pose"]], f[:, enc.groups["pose"]])
    assert np.array_equal(noisy.encode(walking_blob(), keypoints=kp)[0].numpy(), g)  # seeded by the keypoints
    with pytest.raises(ConfigError, match="keypoints"):
        enc.encode(np.stack([walking_blob(8)] * 2), keypoints=[kp])


def test_scene_encoder_flags_cuts_and_repeated_frames():
    enc = registry.build("video_encoder", "scene", vision="off")
    a = walking_blob(30)
    b = (255 - walking_blob(30)[:, ::-1]).copy()
    frames = np.concatenate([a, b])
    frames[40] = frames[39]  # a repeated frame
    f = enc.encode(frames)[0].numpy()
    flags = f[:, enc.groups["flags"]]
    assert np.flatnonzero(flags[:, 1]).tolist() == [30]
    assert flags[40, 2] == 1.0 and flags[:, 2].sum() == 1.0
    with pytest.raises(ConfigError, match="vision"):
        registry.build("video_encoder", "scene", vision="maybe")


def test_scene_encoder_reads_each_repeated_picture_once():
    from foleykit.vision.encoder import SceneVideoEncoder

    frames = walking_blob()
    low = frames.copy()
    low[1::2] = low[0::2]  # a 12.5 fps source at 25 fps
    enc = SceneVideoEncoder(vision="debug", pose_every=1)
    full, half = {}, {}
    enc.encode_clip(frames, timings=full)
    f = enc.encode_clip(low, timings=half)
    assert half["landmark_calls"] <= 0.55 * full["landmark_calls"]
    assert f[:, enc.channel_names.index("person_present")].min() == 1.0
    from foleykit.vision import flow

    sched = enc._schedule(flow.prepare(low, 25.0))
    assert sched[:6].tolist() == [0, 0, 2, 2, 4, 4]  # a repeat stands for the first frame of its run
