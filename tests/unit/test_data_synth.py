"""Synthetic audio-visual generator: determinism, files, audio-visual sync, split isolation, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from foleykit.data import synth as S
from foleykit.data.bank import SoundBank, split_bank
from foleykit.data.procedural import make_procedural_bank
from foleykit.errors import DataError

FOOT = {"footsteps": 1.0}


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory):
    return make_procedural_bank(
        tmp_path_factory.mktemp("pb") / "bank",
        categories=[
            "footsteps/gravel",
            "footsteps/wood",
            "footsteps/water",
            "impact/metal",
            "impact/thud",
            "impact/water",
            "break/glass",
            "door/open",
            "door/close",
            "ambience/fire",
        ],
    )


@pytest.fixture(scope="module")
def bank(bank_dir):
    return SoundBank(bank_dir)


def cfg(**kw) -> S.SynthConfig:
    base = {
        "width": 96,
        "height": 72,
        "duration": 2.0,
        "look_variation": 0.0,
        "distractor_prob": 0.0,
        "extra_event_prob": 0.0,
    }
    return S.SynthConfig(**{**base, **kw})


def test_plan_is_deterministic(bank):
    sp = split_bank(bank)
    c = cfg(width=64, height=48, look_variation=1.0, distractor_prob=0.5)
    a, b, other = (S.plan_clip(bank, sp, "train", 11, i, c) for i in (3, 3, 4))
    assert a.meta == b.meta and np.array_equal(a.audio, b.audio)
    assert np.array_equal(a.frame(10), b.frame(10)) and np.array_equal(a.frame(30), b.frame(30))
    assert other.meta != a.meta


@pytest.mark.parametrize("scene", ["footsteps", "impact", "break", "door"])
def test_every_scene_renders_with_its_sounds(bank, scene):
    sp = split_bank(bank)
    c = S.plan_clip(
        bank, sp, "validation", 2, 0, cfg(width=64, height=48, duration=3.0, scene_weights={scene: 1.0})
    )
    assert c.meta["scene"] == scene and c.meta["events"]
    assert c.audio.shape == (48000,) and c.frame(0).shape == (48, 64, 3) and c.frame(74).dtype == np.uint8
    for e in c.meta["events"]:
        assert e["time"] == pytest.approx(e["frame"] / 25.0) and 0 < e["gain"] <= 1
        assert sp.split_of(e["file"]) == "validation" and e["category"] == bank.file(e["file"]).category
    assert c.meta["caption"]


def test_footstep_contacts_are_motion_peaks_and_audio_onsets(bank):
    """The flow (AV-Align trajectory) peaks on every contact frame; audio onsets fall within one frame."""
    from foleykit.controls import detect_onsets, flow_trajectory

    c = S.plan_clip(
        bank,
        split_bank(bank),
        "train",
        0,
        1,
        cfg(width=160, height=120, duration=3.0, scene_weights=FOOT, ambience_prob=0.0),
    )
    frames = np.stack(list(c.frames()))
    traj = flow_trajectory(frames)
    contacts = [e["frame"] for e in c.meta["events"]]
    assert len(contacts) >= 4
    for k in contacts:
        assert traj[k - 1] < traj[k] > traj[k + 1], (k, traj[k - 2 : k + 3])
    onsets = detect_onsets(c.audio, 16000, hop_length=160)  # 10 ms onset frames
    for e in c.meta["events"]:
        assert np.min(np.abs(onsets - e["time"])) < 1 / 25


def test_bounce_contacts_are_motion_peaks(bank):
    from foleykit.controls import flow_trajectory

    c = S.plan_clip(
        bank,
        split_bank(bank),
        "train",
        1,
        0,
        cfg(width=160, height=120, duration=3.0, scene_weights={"impact": 1.0}),
    )
    traj = flow_trajectory(np.stack(list(c.frames())))
    hits = [k for k in (e["frame"] for e in c.meta["events"]) if traj[k - 1] < traj[k] > traj[k + 1]]
    assert (
        c.meta["scene_info"]["variant"] in ("metal_ball", "ball") and len(hits) == len(c.meta["events"]) >= 2
    )


def test_synthesize_writes_clips_manifests_and_resumes(bank_dir, tmp_path):
    out = tmp_path / "out"
    c = cfg(width=64, height=48)
    r = S.synthesize(bank_dir, out, num_clips=4, split="all", seed=1, config=c, progress=False)
    assert r.written == {"train": 2, "validation": 1, "test": 1} and r.clips_per_second > 0
    meta = json.loads((out / "train" / "train-000001.json").read_text())
    assert {"caption", "category", "events", "split", "seed", "ambience", "video", "audio"} <= set(meta)
    assert meta["split"] == "train" and meta["seed"] == 1 and meta["duration"] == 2.0
    with open(out / "train" / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == ["train-000000.mp4", "train-000001.mp4"]
    assert set(rows[0]) == {"path", "caption", "start", "end", "category"} and rows[1]["end"] == "2.0"
    from foleykit.media import probe, read_audio

    info = probe(out / "train" / "train-000001.mp4")
    assert (
        info.has_audio
        and info.width == 64
        and info.num_frames == 50
        and info.duration == pytest.approx(2.0, abs=0.05)
    )
    clip = S.plan_clip(bank_dir and SoundBank(bank_dir), split_bank(SoundBank(bank_dir)), "train", 1, 1, c)
    wav = read_audio(out / "train" / "train-000001.wav", sample_rate=16000)
    np.testing.assert_allclose(wav, clip.audio, atol=1 / 32768 + 1e-6)  # PCM_16 of the planned mix
    again = S.synthesize(bank_dir, out, num_clips=4, split="all", seed=1, config=c, progress=False)
    assert sum(again.written.values()) == 0 and again.skipped == {"train": 2, "validation": 1, "test": 1}


def test_splits_never_share_a_sound_file(bank_dir, tmp_path):
    c = cfg(width=64, height=48, ambience_prob=1.0)
    used = {}
    for split in ("train", "test"):
        S.synthesize(bank_dir, tmp_path, num_clips=3, split=split, seed=4, config=c, progress=False)
        used[split] = set()
        for p in (tmp_path / split).glob("*.json"):
            m = json.loads(p.read_text())
            used[split] |= {e["file"] for e in m["events"]} | (
                {m["ambience"]["file"]} if m["ambience"] else set()
            )
    assert used["train"] and used["test"] and not used["train"] & used["test"]


def test_silent_mp4_option(bank_dir, tmp_path):
    from foleykit.media import probe

    S.synthesize(
        bank_dir,
        tmp_path,
        num_clips=1,
        split="test",
        config=cfg(width=64, height=48, mp4_audio=False),
        progress=False,
    )
    assert not probe(tmp_path / "test" / "test-000000.mp4").has_audio
    assert (tmp_path / "test" / "test-000000.wav").is_file()


def test_errors(bank, tmp_path):
    with pytest.raises(DataError, match="even"):
        S.SynthConfig(width=63)
    with pytest.raises(DataError, match="scene_weights"):
        S.SynthConfig(scene_weights={"dance": 1.0})
    with pytest.raises(DataError, match="num-clips"):
        S.split_counts(0, "all")
    with pytest.raises(DataError, match="unknown split"):
        S.split_counts(3, "dev")
    assert S.split_counts(10, "all") == {"train": 8, "validation": 1, "test": 1}
    amb = make_procedural_bank(tmp_path / "amb", categories=["ambience/fire"])
    with pytest.raises(DataError, match="no sound for the enabled scenes"):
        S.synthesize(amb, tmp_path / "o", num_clips=1, split="train", config=cfg(), progress=False)
    with pytest.raises(DataError, match="sample rate|Hz"):
        S.plan_clip(SoundBank(amb, sample_rate=22050), split_bank(bank), "train", 0, 0, cfg())


def test_bundled_example_matches_its_description():
    """examples/footsteps.mp4 (README demo input): silent, 10 s, 25 fps, 320x240, < 1 MB, + ground truth."""
    from pathlib import Path

    from foleykit.media import probe, read_audio

    ex = Path(__file__).resolve().parents[2] / "examples"
    info = probe(ex / "footsteps.mp4")
    assert not info.has_audio and (info.width, info.height, info.num_frames) == (320, 240, 250)
    assert info.native_fps == pytest.approx(25.0) and (ex / "footsteps.mp4").stat().st_size < 1_000_000
    meta = json.loads((ex / "footsteps.json").read_text())
    assert meta["split"] == "test" and meta["scene"] == "footsteps"
    assert read_audio(ex / "footsteps_reference.wav", sample_rate=16000).shape == (160000,)
    assert all(e["time"] == pytest.approx(e["frame"] / 25) for e in meta["events"])


def test_flat_walker_keypoints_follow_the_drawn_feet(bank):
    """Flat footsteps clips carry the walker's keypoints (INTERFACES.md): at each contact the landing foot's
    ankle / heel / toe lie on the drawn shoe, and that foot moved into the contact while the other stood."""
    import dataclasses

    from foleykit.data.scenes import Walker

    sp = split_bank(bank)
    c = cfg(
        width=160, height=120, duration=3.0, scene_weights=FOOT, ambience_prob=0.0, look_variation=1.0,
        tracking_prob=1.0,
    )  # fmt: skip
    clip = next(
        cl for i in range(30) if (cl := S.plan_clip(bank, sp, "train", 4, i, c)).meta["surface"] == "wood"
    )
    kp, walker = clip.meta["keypoints"], next(a for a in clip.actors if isinstance(a, Walker))
    names, pts = kp["names"], kp["people"][0]["points"]
    assert kp["fps"] == 25.0 and len(pts) == clip.stage.num_frames and names[2] == "left_ankle"
    bare = dataclasses.replace(clip, actors=[a for a in clip.actors if not isinstance(a, Walker)])
    for (k, foot_x), e in zip(walker.landings, clip.meta["events"]):
        assert e["frame"] == k
        foot = int(np.argmin(np.abs(walker.feet[k, :, 0] - foot_x)))
        side, other = ("left", "right")[foot], ("right", "left")[foot]
        a, b = clip.frame(k).astype(int), bare.frame(k).astype(int)
        for part in ("ankle", "heel", "foot_index"):
            x, y, vis = pts[k][names.index(f"{side}_{part}")]
            assert (
                vis > 0 and np.abs(a[int(y * 120), int(x * 160)] - b[int(y * 120), int(x * 160)]).sum() > 20
            )
        step = [np.hypot(*np.subtract(pts[k][names.index(f"{s}_ankle")][:2], pts[k - 2][names.index(f"{s}_ankle")][:2])) for s in (side, other)]  # fmt: skip
        assert step[0] > 2 * step[1] + 1e-3
