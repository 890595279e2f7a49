"""Photo-real synthetic clips: asset preparation (fake packages in tmp_path, no fetch), splits by photo and
sound, determinism, frame / size variation, events on frames, walker keypoints, the ambience bed, errors."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from foleykit.data import photos as PH
from foleykit.data import stamps as TX
from foleykit.data.bank import SoundBank, split_bank
from foleykit.data.procedural import make_procedural_bank
from foleykit.data.synth import SynthConfig, plan_clip, synthesize
from foleykit.errors import DataError

COPYRIGHT_TUX = "Format: x\n\nFiles: *\nCopyright: 2002-2022 Bill Kendrick\nLicense: GPL-2\n"
COPYRIGHT_OCV = "Format: x\n\nFiles: *\nCopyright: 2000 Intel\nLicense: Apache-2.0 AND BSD-3-Clause\n"


def _photo(rng, h, w, alpha=None):
    """A textured (photo-like) RGB(A) picture: smooth colour noise + fine grain."""
    import cv2

    base = cv2.resize(rng.uniform(0, 255, (h // 8 + 2, w // 8 + 2, 3)).astype(np.float32), (w, h))
    img = (base + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
    if alpha is None:
        return img
    return np.concatenate([img, alpha[..., None]], 2)


def _ellipse_alpha(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((((xx - w / 2) / (w / 2.2)) ** 2 + ((yy - h / 2) / (h / 2.2)) ** 2) < 1).astype(np.uint8) * 255


def _sound(path: Path, rng, freq: float) -> None:
    import soundfile as sf

    sr = 22050
    t = np.arange(int(0.5 * sr)) / sr
    x = np.concatenate([np.zeros(int(0.05 * sr)), np.sin(2 * math.pi * freq * t) * np.exp(-t / 0.1)])
    x += rng.normal(0, 0.01, x.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.8 * x).astype(np.float32), sr, format="OGG", subtype="VORBIS")


def _png(path: Path, rgba: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    code = cv2.COLOR_RGBA2BGRA if rgba.shape[-1] == 4 else cv2.COLOR_RGB2BGR
    assert cv2.imwrite(str(path), cv2.cvtColor(rgba, code))


def fake_tuxpaint(root: Path) -> Path:
    rng = np.random.default_rng(1)
    st = root / TX.STAMPS_PATH
    a = _ellipse_alpha(120, 150)
    paired = {
        "animals/mammals/dogs/dog": 300.0,
        "animals/mammals/bovines/cow": 200.0,
        "animals/mammals/equines/horse": 500.0,
        "animals/birds/crow": 900.0,
        "animals/birds/hen": 1200.0,
        "animals/birds/owl": 700.0,
    }
    for i, (rel, f) in enumerate(paired.items()):
        _png(st / f"{rel}.png", _photo(rng, 120, 150, a))
        _sound(st / f"{rel}.ogg", rng, f)
        (st / f"{rel}.txt").write_text(f"A {Path(rel).name}.\nfr.utf8=x\n")
        _sound(st / f"{rel}_desc_fr.ogg", rng, 150.0 + i)  # spoken description: never used
    hammer = np.zeros((60, 140), np.uint8)
    hammer[26:34, 0:120] = 255  # handle
    hammer[5:55, 110:138] = 255  # head
    _png(st / "household/tools/hammer.png", _photo(rng, 60, 140, hammer))
    _sound(st / "household/tools/hammer.ogg", rng, 2500.0)
    for rel in (
        "food/fruit/apple_green",
        "food/vegetables/onion",
        "sports/tennis_ball",
        "household/dishes/teapot",
    ):
        _png(st / f"{rel}.png", _photo(rng, 90, 90, _ellipse_alpha(90, 90)))
    for rel in ("vehicles/auto/sedan", "plants/flowers/rose", "animals/fish/trout"):
        _png(st / f"{rel}.png", _photo(rng, 80, 120, _ellipse_alpha(80, 120)))
    flat = np.zeros((100, 100, 4), np.uint8)
    flat[10:90, 10:90] = (200, 30, 30, 255)  # drawn clip-art: flat colour
    _png(st / "town/houses/cottage.png", flat)
    _png(st / "symbols/alphabets/a.png", _photo(rng, 100, 100, _ellipse_alpha(100, 100)))
    cr = root / TX.COPYRIGHT_PATH
    cr.parent.mkdir(parents=True, exist_ok=True)
    cr.write_text(COPYRIGHT_TUX)
    return root


def fake_opencv(root: Path) -> Path:
    rng = np.random.default_rng(2)
    d = root / PH.OPENCV_DATA
    for name in ("leuvenA.jpg", "messi5.jpg", "fruits.jpg", "home.jpg", "building.jpg", "baboon.jpg"):
        _png(d / name, _photo(rng, 240, 320))
    (d / "vtest.avi").write_bytes(b"not for training")
    (root / PH.OPENCV_COPYRIGHT).write_text(COPYRIGHT_OCV)
    return root


def fake_skimage(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "grass.png", "gravel.png"):
        _png(root / name, _photo(rng, 200, 200))
    return root


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("assets")
    tux, ocv = fake_tuxpaint(tmp / "tux"), fake_opencv(tmp / "ocv")
    sk, skl = fake_skimage(tmp / "sk"), tmp / "skl"
    _png(skl / "china.jpg", _photo(np.random.default_rng(4), 200, 300))
    bank = make_procedural_bank(
        tmp / "bank",
        categories=[
            "footsteps/gravel", "footsteps/wood", "footsteps/grass", "impact/metal", "impact/thud",
            "break/glass", "ambience/fire", "ambience/wind",
        ],
    )  # fmt: skip
    assert TX.add_stamps_to_bank(bank, tux) == 7
    photos = PH.prepare_photos(
        tmp / "photos", opencv_extracted=ocv, stamps_extracted=tux, skimage_data=sk, sklearn_images=skl
    )
    return {"bank": bank, "photos": photos, "tux": tux, "ocv": ocv, "sk": sk, "skl": skl}


def cfg(assets, **kw) -> SynthConfig:
    base = {
        "style": "photoreal",
        "duration": 2.5,
        "photos": str(assets["photos"]),
        "width": 128,
        "height": 96,
    }
    return SynthConfig(**{**base, **kw})


def test_prepare_photos_indexes_sources_licences_and_roles(assets):
    m = json.loads((assets["photos"] / "photos.json").read_text())
    by_id = {p["id"]: p for p in m["photos"]}
    assert by_id["opencv:leuvenA.jpg"]["license"] == "Apache-2.0 AND BSD-3-Clause"
    assert (
        by_id["opencv:leuvenA.jpg#0"]["kind"] == "texture"
        and by_id["opencv:leuvenA.jpg#0"]["surface"] == "stone"
    )
    assert by_id["skimage:grass"]["surface"] == "grass" and by_id["skimage:chelsea"]["license"] == "CC0-1.0"
    assert by_id["sklearn:china"]["license"] == "CC-BY-2.0"
    dog = by_id["tuxpaint:animals/mammals/dogs/dog.png"]
    assert dog["role"] == "animal" and dog["sound"] == "animal/mammal/dog.ogg" and dog["noun"] == "a dog"
    assert by_id["tuxpaint:household/tools/hammer.png"]["role"] == "strike"
    assert by_id["tuxpaint:household/dishes/teapot.png"]["drop_category"] == "break/glass"
    assert by_id["tuxpaint:sports/tennis_ball.png"]["physics"] == "ball"
    assert not any("vtest" in i or "cottage" in i or "symbols/" in i for i in by_id)  # eval video, clip-art
    assert (assets["photos"] / "copyright.opencv-doc").is_file()
    lib = PH.PhotoLibrary(assets["photos"])
    assert lib.image(dog["id"]).shape[-1] == 4 and lib.image("opencv:home.jpg").shape[-1] == 3
    stamp = (assets["photos"] / "photos.json").stat().st_mtime_ns
    PH.prepare_photos(assets["photos"], opencv_extracted=assets["ocv"], stamps_extracted=assets["tux"])
    assert (assets["photos"] / "photos.json").stat().st_mtime_ns == stamp  # complete: left as it is


def test_photo_test_tells_photos_from_clip_art():
    rng = np.random.default_rng(0)
    assert TX.is_photo(_photo(rng, 100, 100, _ellipse_alpha(100, 100)))
    flat = np.zeros((100, 100, 4), np.uint8)
    flat[5:95, 5:95] = (10, 200, 10, 255)
    assert not TX.is_photo(flat)


def test_stamp_sounds_join_the_bank_with_licence_and_caption(assets):
    bank = SoundBank(assets["bank"])
    dog = bank.file("animal/mammal/dog.ogg")
    assert dog.license == "GPL-2" and dog.caption == "a dog barks" and dog.stamp == "animals/mammals/dogs/dog"
    assert bank.counts()["animal/bird"] == 3 and not any("_desc_" in f.path for f in bank.files)
    assert "tuxpaint-stamps-default" in bank.manifest["packages"]


def test_splits_never_share_photos_or_sounds_and_pairs_stay_together(assets, tmp_path):
    bank = SoundBank(assets["bank"])
    bsplit = split_bank(bank)
    lib = PH.PhotoLibrary(assets["photos"])
    ps = PH.split_photos(lib, bank_split=bsplit)
    for p in lib.photos:
        if p.sound:
            assert ps.split_of(p.id) == bsplit.split_of(p.sound)
    used: dict[str, tuple[set, set]] = {}
    for split in ("train", "test"):
        synthesize(
            assets["bank"], tmp_path, num_clips=4, split=split, seed=3, config=cfg(assets), progress=False
        )
        photos_used, sounds_used = set(), set()
        for f in (tmp_path / split).glob("*.json"):
            m = json.loads(f.read_text())
            photos_used |= set(m["photos"])
            sounds_used |= {e["file"] for e in m["events"]} | (
                {m["ambience"]["file"]} if m["ambience"] else set()
            )
            assert all(ps.split_of(p) == split for p in m["photos"])
        used[split] = (photos_used, sounds_used)
    assert used["train"][0] and used["test"][0]
    assert not used["train"][0] & used["test"][0] and not used["train"][1] & used["test"][1]


def test_plan_is_deterministic(assets):
    bank = SoundBank(assets["bank"])
    sp = split_bank(bank)
    c = cfg(assets, vary_size=True, vary_fps=True)
    a, b, other = (plan_clip(bank, sp, "train", 5, i, c) for i in (2, 2, 3))
    assert a.meta == b.meta and np.array_equal(a.audio, b.audio)
    assert np.array_equal(a.frame(7), b.frame(7)) and np.array_equal(a.frame(20), b.frame(20))
    assert np.array_equal(a.frame(20), a.frame(20)) and other.meta != a.meta


def test_events_land_on_frames_and_size_fps_vary_or_hold(assets, tmp_path):
    bank = SoundBank(assets["bank"])
    sp = split_bank(bank)
    varied = cfg(assets, vary_size=True, vary_fps=True)
    sizes, rates, repeated = set(), set(), 0
    for i in range(40):
        m = plan_clip(bank, sp, "train", 0, i, varied).meta
        repeated += m["content_fps"] < m["fps"] and bool(m["events"])
        w, h = m["size"]
        assert 160 <= h <= 480 and w % 2 == 0 and h % 2 == 0 and 12 <= m["fps"] <= 60
        assert m["num_frames"] == round(2.5 * m["fps"]) and m["content_fps"] <= m["fps"]
        for e in m["events"]:
            assert (
                e["time"] == pytest.approx(e["frame"] / m["fps"], abs=1e-6)
                and 0 <= e["frame"] < m["num_frames"]
            )
            assert e["source"] in ("ufoai", "tuxpaint")
        sizes.add((w, h))
        rates.add(m["fps"])
    assert len(sizes) >= 3 and len(rates) >= 2 and repeated >= 2  # some 12 / 15 fps content written at 24-30
    fixed = cfg(assets, width=96, height=64, fps=15.0)
    clip = plan_clip(bank, sp, "train", 0, 1, fixed)
    assert clip.meta["size"] == [96, 64] and clip.meta["fps"] == 15.0 and clip.frame(0).shape == (64, 96, 3)
    out = synthesize(
        assets["bank"], tmp_path, num_clips=1, split="train", config=varied, progress=False, seed=9
    )
    assert sum(out.written.values()) == 1
    from foleykit.media import probe

    m = json.loads(next((tmp_path / "train").glob("*.json")).read_text())
    info = probe(tmp_path / "train" / m["video"])
    assert [info.width, info.height] == m["size"] and info.num_frames == m["num_frames"]
    assert info.native_fps == pytest.approx(m["fps"], rel=1e-2)


def test_repeated_content_frames_and_events_on_first_showing(assets):
    from foleykit.data.camera import Timeline

    tl = Timeline(fps=25.0, content_fps=12.0, num_frames=250)
    shown = [tl.content_index(j) for j in range(tl.num_frames)]
    assert shown[:6] == [0, 0, 0, 1, 1, 2] and tl.num_content == 120
    for k in range(1, 119):
        j = tl.first_written(k)
        assert shown[j] == k and shown[j - 1] == k - 1


def test_walker_keypoints_lie_on_the_drawn_feet_at_contacts(assets):
    bank = SoundBank(assets["bank"])
    c = cfg(assets, scene_weights={"footsteps": 1.0}, look_variation=0.0, distractor_prob=0.0,
            multi_source_prob=0.0, width=320, height=240)  # fmt: skip
    clip = plan_clip(bank, split_bank(bank), "train", 1, 0, c)
    walker = next(a for a in clip.actors if type(a).__name__ == "PhotoWalker")
    walker.shadow_strength = 0.0  # only the body changes the picture
    kp = clip.meta["keypoints"]
    names = kp["names"]
    assert kp["fps"] == clip.meta["fps"] and len(kp["people"][0]["points"]) == clip.meta["num_frames"]
    H, W = clip.meta["size"][1], clip.meta["size"][0]
    checked = 0
    for (k, foot_x), e in zip(walker.landings, clip.meta["events"]):
        j = e["frame"]
        foot = int(np.argmin(np.abs(walker.feet[k, :, 0] - foot_x)))
        side = ("left", "right")[foot]
        with_body = clip.frame(j).astype(int)
        without = clip.frame(j, actors=False).astype(int)
        pts = kp["people"][0]["points"][j]
        for part in ("ankle", "heel", "foot_index"):
            x, y, vis = pts[names.index(f"{side}_{part}")]
            px, py = int(x * W), int(y * H)
            assert vis > 0 and np.abs(with_body[py, px] - without[py, px]).sum() > 20, (j, part)
        # the landing foot swung into this contact; the other foot stood still
        prev = kp["people"][0]["points"][max(0, j - 2)]
        other = ("right", "left")[foot]
        moved = [
            np.hypot(*(np.subtract(pts[names.index(f"{s}_ankle")][:2], prev[names.index(f"{s}_ankle")][:2])))
            for s in (side, other)
        ]
        assert moved[0] > 2 * moved[1] + 1e-3, (j, moved)
        # a point well below the sole is floor: unchanged by the body
        x, y, _ = pts[names.index(f"{side}_heel")]
        assert np.abs(with_body[int(y * H) + 12, int(x * W)] - without[int(y * H) + 12, int(x * W)]).sum() < 6
        checked += 1
    assert checked >= 3


def test_ambience_bed_is_quiet_but_present_under_louder_events(assets):
    from foleykit.data.events import render_bed

    bank = SoundBank(assets["bank"])
    sp = split_bank(bank)
    c = cfg(assets, ambience_prob=1.0)
    for i in range(4):
        clip = plan_clip(bank, sp, "train", 2, i, c)
        bed = clip.meta["ambience"]
        assert bed is not None
        from foleykit.data.events import Bed

        b = render_bed(bank, Bed(bed["category"], bed["file"], bed["offset"], bed["gain"]), clip.audio.size)
        bed_rms = float(np.sqrt(np.mean(b.astype(np.float64) ** 2)))
        assert 10 ** (-62 / 20) < bed_rms < 10 ** (-30 / 20)  # quiet, not dead
        sr = 16000
        for e in clip.meta["events"]:
            a = round(e["time"] * sr)
            seg = clip.audio[a : a + 1600].astype(np.float64)
            if seg.size == 1600:
                assert np.sqrt(np.mean(seg**2)) > 3 * bed_rms  # events stand >= 9.5 dB above the bed


def test_missing_photos_name_the_prepare_command(assets, tmp_path):
    bank = SoundBank(assets["bank"])
    with pytest.raises(DataError, match="prepare-photos"):
        plan_clip(bank, split_bank(bank), "train", 0, 0, cfg(assets, photos=str(tmp_path / "none")))
    from foleykit.cli import main

    code = main(["data", "synth", "--bank", str(assets["bank"]), "--output", str(tmp_path / "o"),
                 "--num-clips", "1", "--photos", str(tmp_path / "none"), "--no-progress"])  # fmt: skip
    assert code == 2


def test_cli_prepare_photos_and_synth(assets, tmp_path, capsys):
    from foleykit.cli import main

    out = tmp_path / "ph"
    code = main(["data", "prepare-photos", "--output", str(out), "--opencv-extracted", str(assets["ocv"]),
                 "--stamps-extracted", str(assets["tux"]), "--skimage-data", str(assets["sk"]),
                 "--sklearn-images", str(assets["skl"]), "--bank", str(assets["bank"])])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0 and "photos ready" in text and "cutout" in text
    code = main(["data", "synth", "--bank", str(assets["bank"]), "--output", str(tmp_path / "s"), "--num-clips",
                 "2", "--split", "train", "--photos", str(out), "--duration", "2", "--scenes", "animal,strike",
                 "--no-progress"])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0 and "wrote 2 clips" in text and "photoreal" in text
    metas = [json.loads(p.read_text()) for p in (tmp_path / "s" / "train").glob("*.json")]
    assert {m["scene"] for m in metas} <= {"animal", "strike"} and all(
        m["style"] == "photoreal" for m in metas
    )
    code = main(["data", "synth", "--bank", str(assets["bank"]), "--output", str(tmp_path / "l"), "--num-clips",
                 "1", "--split", "train", "--photos", str(out), "--duration", "3", "--scenes", "launch",
                 "--no-progress"])  # fmt: skip
    metas = [json.loads(p.read_text()) for p in (tmp_path / "l" / "train").glob("*.json")]
    assert code == 0 and [m["scene"] for m in metas] == ["launch"]


def test_launch_objects_start_moving_on_the_hit_and_slide_to_rest_silently(assets):
    bank = SoundBank(assets["bank"])
    c = cfg(assets, scene_weights={"launch": 1.0}, look_variation=0.0, distractor_prob=0.0,
            multi_source_prob=0.0, width=320, height=240, duration=6.0)  # fmt: skip
    checked = 0
    for index in range(4):
        clip = plan_clip(bank, split_bank(bank), "train", 3, index, c)
        assert clip.meta["scene"] == "launch"
        launch = next(a for a in clip.actors if type(a).__name__ == "SpriteLaunch")
        tl, hits = clip.timeline, [k for k, _ in launch.contacts]
        # one sound per hit, on the hit's first written frame; none where the object comes to rest
        assert [e["frame"] for e in clip.meta["events"]] == [tl.first_written(k) for k in hits]
        v = np.abs(np.diff(launch.x))  # world px per content frame; v[k - 1] is the motion into frame k
        for j, (k, speed) in enumerate(launch.contacts):
            assert np.all(v[max(0, k - 3) : k] == 0)  # still up to the hit
            assert v[k] > 0 and speed > 0  # moving on the frame after it
            assert launch.tip[k] == pytest.approx(launch.x[k] - launch.d * launch.r)  # the tool touches it
            end = hits[j + 1] if j + 1 < len(hits) else len(launch.x) - 1
            slide = v[k:end]
            moving = slide[slide > 0]
            assert np.all(np.diff(moving) <= 1e-9)  # friction: it only slows down
            if slide[-1] == 0:  # at rest before the next hit (or the clip's end)
                assert moving[-1] < 0.5 * moving[0]  # gently, not with a sudden stop
            checked += 1
        # the picture shows it: the object's pixels change on the hit, not in the frames before it
        k = hits[0]
        before = [
            np.abs(clip.content(i).astype(int) - clip.content(i - 1).astype(int)).sum()
            for i in (k - 1, k + 1)
        ]
        assert before[1] > before[0]
    assert checked >= 4


def test_launch_and_walkdepth_are_named_only_and_the_default_mix_keeps_the_published_splits(assets):
    from foleykit.data.photoreal import DEFAULT_WEIGHTS, NAMED_ONLY, SCENE_WEIGHTS

    assert set(NAMED_ONLY) == {"launch", "walkdepth"}
    assert all(k not in DEFAULT_WEIGHTS and SCENE_WEIGHTS[k] > 0 for k in NAMED_ONLY)
    assert {k: v for k, v in SCENE_WEIGHTS.items() if k not in NAMED_ONLY} == DEFAULT_WEIGHTS
    assert not set(NAMED_ONLY) & set(cfg(assets).weights)


def _picture_point(kp, names, size, j, side, part="ankle"):
    """Pixel position of keypoint ``side_part`` on written frame ``j``."""
    return np.array(kp[j][names.index(f"{side}_{part}")][:2]) * size


def test_walkdepth_walker_lands_in_perspective_and_its_keypoints_lie_on_the_drawn_feet(assets):
    """A walker going away from a raised camera shrinks and climbs the picture (toward it: grows and comes
    down); each landing foot swung into its contact and then stands still in the picture; keypoints lie on
    the drawn feet; a step further away is quieter."""
    bank = SoundBank(assets["bank"])
    c = cfg(assets, scene_weights={"walkdepth": 1.0}, look_variation=0.0, distractor_prob=0.0,
            multi_source_prob=0.0, width=320, height=240, duration=5.0, fps=25.0)  # fmt: skip
    seen = set()
    for index in range(4):
        clip = plan_clip(bank, split_bank(bank), "train", 1, index, c)
        assert clip.meta["scene"] == "walkdepth"
        w = next(a for a in clip.actors if type(a).__name__ == "DepthWalker")
        w.shadow_strength = 0.0
        seen.add(w.away)
        kp, names = clip.meta["keypoints"]["people"][0]["points"], clip.meta["keypoints"]["names"]
        W, H = clip.meta["size"]
        n = clip.meta["num_frames"]
        hip_y = [kp[j][names.index("left_hip")][1] for j in (0, n - 1)]
        ankle_y = [kp[j][names.index("left_ankle")][1] for j in (0, n - 1)]
        size = [a - h for a, h in zip(ankle_y, hip_y)]  # hip-to-ankle height in the picture
        if w.away:
            assert size[1] < 0.8 * size[0] and ankle_y[1] < ankle_y[0]
        else:
            assert size[1] > 1.25 * size[0] and ankle_y[1] > ankle_y[0]
        events = clip.meta["events"]
        assert [e["frame"] for e in events] == [clip.timeline.first_written(k) for k, _ in w.landings]
        for (k, foot_x), e in zip(w.landings[1:-1], events[1:-1]):
            j = e["frame"]
            foot = int(np.argmin(np.abs(w.feet[k, :, 0] - foot_x)))
            side, other = ("left", "right")[foot], ("right", "left")[foot]
            at = functools.partial(_picture_point, kp, names, (W, H))
            swung = np.hypot(*(at(j, side) - at(j - 2, side)))
            assert swung > 2 * np.hypot(*(at(j, other) - at(j - 2, other))) + 1e-3
            assert np.hypot(*(at(j + 1, side) - at(j, side))) < 0.2 * swung  # planted: stands still
            with_body = clip.frame(j).astype(int)
            without = clip.frame(j, actors=False).astype(int)
            for part in ("ankle", "foot_index"):
                px, py = at(j, side, part).astype(int)
                diff = np.abs(
                    with_body[py - 1 : py + 2, px - 1 : px + 2] - without[py - 1 : py + 2, px - 1 : px + 2]
                )
                assert diff.sum(-1).max() > 8, (index, j, part)  # the body is drawn there (3x3 px)
            px, py = (at(j, side) + [0, 0.5 * size[0] * H + 3]).astype(int)
            if py < H:  # floor below the feet: untouched (no shadow, no noise)
                assert np.abs(with_body[py, px] - without[py, px]).sum() < 3
        gains = [e["gain"] for e in events]
        scale = [float(w.scale(w.progress(w.feet[k, :, 0]).mean())) for k, _ in w.landings]
        assert np.corrcoef(scale, gains)[0, 1] > 0  # nearer steps are louder
    assert seen == {True, False}


def test_launch_tools_are_long_thin_cutouts_of_the_split(assets, tmp_path):
    from foleykit.data.photoreal import TOOL_ELONGATION, _elongation, _tool_ids

    stick, disc = np.zeros((40, 200), np.uint8), _ellipse_alpha(90, 90)
    stick[15:25, 10:190] = 255
    _png(tmp_path / "stick.png", _photo(np.random.default_rng(0), 40, 200, stick))
    _png(tmp_path / "disc.png", _photo(np.random.default_rng(0), 90, 90, disc))
    assert (
        _elongation(str(tmp_path / "stick.png")) >= TOOL_ELONGATION > _elongation(str(tmp_path / "disc.png"))
    )
    lib = PH.PhotoLibrary(assets["photos"])
    ps = PH.split_photos(lib)
    tools = {s: _tool_ids(lib, ps, s) for s in ("train", "validation", "test")}
    everywhere = [i for ids in tools.values() for i in ids]
    assert len(everywhere) == len(set(everywhere))  # split by photo like every other picture
    assert "tuxpaint:household/tools/hammer.png" in everywhere  # the striking role always qualifies
    assert not any("vehicles/" in i for i in everywhere)
