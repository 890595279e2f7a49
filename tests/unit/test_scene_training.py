"""Training the demonstrator on scene features: vision dropout and keypoints from the clip json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from foleykit.data.cache.extractors import clip_keypoints
from foleykit.data.manifest import ClipRecord
from foleykit.training.stages.denoising import drop_vision
from foleykit.vision.encoder import SceneVideoEncoder


def _feats(enc: SceneVideoEncoder, b: int = 64) -> torch.Tensor:
    return torch.rand(b, 5, enc.dim) + 0.5  # every channel non-zero


def test_drop_vision_zeroes_exactly_the_vision_channels_of_dropped_clips() -> None:
    enc = SceneVideoEncoder(vision="debug")
    x = _feats(enc)
    y = drop_vision(x, enc, 0.5, torch.Generator().manual_seed(0))
    dropped = (y != x).any(dim=(1, 2))
    assert 10 < int(dropped.sum()) < 54  # about half of 64 clips
    avail = enc.channel_names.index("vision_available")
    for g in ("pose", "objects", "embedding"):
        assert torch.all(y[dropped][:, :, enc.groups[g]] == 0)
    assert torch.all(y[dropped][:, :, avail] == 0)
    # the weight-free groups and the other flags are untouched, and so are the kept clips
    for g in ("motion",):
        assert torch.equal(y[:, :, enc.groups[g]], x[:, :, enc.groups[g]])
    assert torch.equal(y[~dropped], x[~dropped])
    cut = enc.channel_names.index("scene_cut")
    assert torch.equal(y[:, :, cut], x[:, :, cut])


def test_drop_vision_is_a_no_op_at_zero_and_for_encoders_without_groups() -> None:
    enc = SceneVideoEncoder(vision="debug")
    x = _feats(enc, 8)
    assert torch.equal(drop_vision(x, enc, 0.0, torch.Generator()), x)
    assert torch.equal(drop_vision(x, torch.nn.Identity(), 1.0, torch.Generator()), x)
    assert torch.all(drop_vision(x, enc, 1.0, torch.Generator())[:, :, enc.groups["objects"]] == 0)


def _record(tmp_path: Path, start: float, kp: dict | None) -> ClipRecord:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    meta = {"caption": "x"} if kp is None else {"caption": "x", "keypoints": kp}
    (tmp_path / "clip.json").write_text(json.dumps(meta))
    return ClipRecord(path=video, caption="x", start=start, end=start + 1.0)


def test_clip_keypoints_are_cut_to_the_record_window(tmp_path: Path) -> None:
    pts = [[[i / 100, 0.5, 0.9]] for i in range(100)]  # one keypoint, x = frame / 100
    kp = {"fps": 20.0, "names": ["left_ankle"], "people": [{"points": pts}]}
    got = clip_keypoints(_record(tmp_path, 0.5, kp))
    assert got is not None and got["fps"] == 20.0
    assert got["people"][0]["points"][0][0][0] == 0.10  # 0.5 s at 20 fps = frame 10
    assert len(got["people"][0]["points"]) == 90
    assert clip_keypoints(_record(tmp_path, 0.0, kp))["people"][0]["points"] == pts
    assert clip_keypoints(_record(tmp_path, 0.0, None)) is None
    rec = _record(tmp_path, 0.0, kp)
    for text in ("[1, 2]", '{"keypoints": [1]}', "{not json"):  # no keypoints there, and no error
        rec.sidecar_json.write_text(text)
        assert clip_keypoints(rec) is None


def test_warm_start_copies_every_fitting_tensor_and_reports_the_rest(tmp_path: Path) -> None:
    from foleykit.recipes import build_pipeline, load_recipe
    from foleykit.training.warm_start import warm_start

    old = load_recipe("foleykit_demo", size="debug")
    old["video_encoder"] = {"name": "debug", "dim": 16}  # the earlier release saw other video features
    old["predictors"]["rms"].pop("input_groups")  # ... and its mapper read all of them
    torch.manual_seed(0)
    src = build_pipeline(old)
    src.codec.vae.register_to_config(scaling_factor=0.455)  # measured on the earlier release's data
    folder = src.save_pretrained(tmp_path / "old", dtype=torch.float16)
    torch.manual_seed(1)
    dst = build_pipeline("foleykit_demo", size="debug")
    lines: list[str] = []
    report = warm_start(dst, folder, say=lines.append)
    s, d = src.components(), dst.components()
    assert report["transformer"].status == "all"
    for key, value in d["transformer"].state_dict().items():
        assert torch.equal(value, s["transformer"].state_dict()[key].half().float())
    # the video pooling's input projection changed shape (16 -> 332): fresh, named in the report
    vc = report["video_condition"]
    assert vc.status == "partial" and vc.skipped
    for key in vc.skipped:
        assert d["video_condition"].state_dict()[key].shape != s["video_condition"].state_dict()[key].shape
    assert any(line.startswith("[warm-start] video_condition") and "shapes changed" in line for line in lines)
    # the VAE came whole, so its latent scale came with it (the diffusion model was trained at that scale)
    assert dst.codec.vae.config.scaling_factor == pytest.approx(0.455)
    assert any(line.startswith("[warm-start] vae:") and "scaling_factor 0.4550" in line for line in lines)


def test_scene_encoder_pickles_without_its_models() -> None:
    """Data preparation sends the encoder to worker processes: loaded models stay behind, features agree."""
    import pickle

    import numpy as np

    enc = SceneVideoEncoder(vision="debug")
    frames = (np.random.default_rng(0).random((6, 48, 64, 3)) * 255).astype(np.uint8)
    first = enc.encode(frames)
    assert enc._loaded
    copy = pickle.loads(pickle.dumps(enc))
    assert not copy._loaded and copy._models is None
    assert torch.equal(copy.encode(frames), first)


class _KeypointSpy:
    """A frozen encoder that takes keypoints and records what it was given."""

    frozen, accepts_keypoints, input_size, dim = True, True, 32, 3

    def __init__(self) -> None:
        self.given: list[object] = []

    def encode(self, frames, keypoints=None):
        self.given.append(keypoints)
        return torch.zeros(1, len(frames), self.dim)


class _Clip:
    def __init__(self, record: ClipRecord) -> None:
        self.record = record

    def frames(self, size: int):
        import numpy as np

        return np.zeros((4, size, size, 3), np.uint8)


def test_stored_video_features_take_the_pose_model_unless_keypoints_are_asked_for(tmp_path: Path) -> None:
    from foleykit.data.cache import VideoInputsExtractor
    from foleykit.errors import DataError

    kp = {"fps": 20.0, "names": ["left_ankle"], "people": [{"points": [[[0.5, 0.5, 0.9]]] * 20}]}
    clip = _Clip(_record(tmp_path, 0.0, kp))
    spy = _KeypointSpy()
    default = VideoInputsExtractor(encoder=spy)
    assert default.config()["pose"] == "model" and not default.takes_keypoints
    assert default(clip)["video_features"].shape == (4, 3)
    assert spy.given == [None]  # the pose model runs, as at inference, although the clip has keypoints
    exact = VideoInputsExtractor(encoder=spy, pose="keypoints")
    assert exact.config()["pose"] == "keypoints" and exact.config() != default.config()
    exact(clip)
    assert spy.given[-1] == kp
    with pytest.raises(DataError, match="pose"):
        VideoInputsExtractor(encoder=spy, pose="exact")
    # an encoder that cannot take keypoints keeps its old store settings (no pose entry)
    spy.accepts_keypoints = False
    assert "pose" not in VideoInputsExtractor(encoder=spy, pose="keypoints").config()


def test_prepare_pose_choices_are_the_extractors() -> None:
    import argparse

    from foleykit.cli.train import _actions
    from foleykit.data.cache.extractors import POSE_SOURCES

    prepare = _actions("foleykit train")["prepare"]
    pose = next(a for a in prepare._actions if "--pose" in a.option_strings)
    assert isinstance(pose, argparse.Action)
    assert tuple(pose.choices) == POSE_SOURCES and pose.default == POSE_SOURCES[0]
