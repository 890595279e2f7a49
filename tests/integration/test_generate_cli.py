"""`foleykit generate` and `foleykit controls predict` end to end with a debug model (in-process CLI)."""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foleykit.cli import main
from foleykit.controls import TemporalControl, rms_envelope
from foleykit.media import probe, read_audio, read_video, write_audio, write_video
from foleykit.product.outputs import sidecar_path
from foleykit.testing import (
    make_audio_only_file,
    make_empty_file,
    make_legacy_codec_video,
    make_moving_square_video,
    make_not_media_file,
    make_truncated_copy,
    make_zero_frame_video,
    write_click_track,
)

SR = 16000


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A debug model (1 s windows, audible Griffin-Lim vocoder) and test media."""
    from foleykit.product.debug import save_debug_model

    d = tmp_path_factory.mktemp("media")
    model = save_debug_model(d / "model")
    clip = make_moving_square_video(d / "clip.mp4", duration=1.6, size=(64, 48), move_frames=(10, 30))
    talk = make_moving_square_video(
        d / "talk.mp4", duration=1.2, size=(64, 48), move_frames=(10,), audio="clicks"
    )
    frames = np.empty((80, 48, 64, 3), np.uint8)  # two shots: a scene cut at frame 40 (1.6 s)
    frames[:40], frames[40:] = (30, 40, 160), (200, 60, 40)
    for i in range(80):
        frames[i, 10:30, (2 * i) % 50 : (2 * i) % 50 + 10] = 128
    long = write_video(d / "long.mp4", frames, 25, crf=12)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
    ref = write_audio(d / "tone.wav", tone, SR)
    clicks = write_click_track(d / "clicks.wav", [0.4, 1.2], sample_rate=SR, duration=1.6)
    return {
        "dir": d,
        "model": str(model),
        "clip": clip,
        "talk": talk,
        "long": long,
        "ref": ref,
        "clicks": clicks,
    }


def run(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def gen(capsys, media, video, out, *extra):
    return run(capsys, "generate", video, "-o", out, "--model", media["model"], *extra)


def _video_packets(path: Path) -> list[bytes]:
    import av

    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def test_mp4_has_the_picture_untouched_and_sound_of_its_duration(media, tmp_path, capsys):
    out = tmp_path / "take.mp4"
    rc, stdout, _ = gen(capsys, media, media["clip"], out, "--prompt", "footsteps on gravel", "--seed", "5")
    assert rc == 0 and "take.mp4" in stdout
    assert _video_packets(out) == _video_packets(media["clip"])
    info = probe(out)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.audio_duration == pytest.approx(info.video_duration, abs=1e-3) and info.video_duration == 1.6
    wav = read_audio(out, sample_rate=SR)
    assert np.sqrt(np.mean(wav**2)) > 0.01  # audible
    side = json.loads(sidecar_path(out).read_text())
    assert side["parameters"]["seed"] == 5 and side["parameters"]["prompt"] == "footsteps on gravel"
    assert side["parameters"]["steps"] == 2 and side["parameters"]["guidance"] == 3.0
    assert side["model"]["recipe"] == "foleykit_demo" and len(side["model"]["fingerprint"]) == 16
    assert side["foleykit"]["version"] and side["output"]["segment"] == [0.0, 1.6]
    assert side["controls"]["rms"]["source"] == "predicted" and "total" in side["timings"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mp4", "take.mp4.json"]


def test_same_seed_same_sound_and_the_sidecar_reproduces_it(media, tmp_path, capsys):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    assert gen(capsys, media, media["clip"], a, "--seed", "11", "--prompt", "rain")[0] == 0
    cmd = shlex.split(json.loads(sidecar_path(a).read_text())["reproduce"])
    assert cmd[:2] == ["foleykit", "generate"] and "--seed" in cmd
    cmd[cmd.index("-o") + 1] = str(b)
    assert run(capsys, *cmd[1:])[0] == 0
    wa, wb = sf.read(a)[0], sf.read(b)[0]
    assert len(wa) == round(1.6 * SR) and np.array_equal(wa, wb)
    c = tmp_path / "c.wav"
    assert gen(capsys, media, media["clip"], c, "--seed", "12", "--prompt", "rain")[0] == 0
    assert not np.array_equal(sf.read(c)[0], wa)


def test_long_video_windows_meet_at_the_scene_cut_and_join_smoothly(media, tmp_path, capsys, monkeypatch):
    import foleykit.media as fm

    # every read in this process (the first window's early features come from a second one: test_generate_early)
    monkeypatch.setenv("FOLEYKIT_EARLY_FEATURES", "0")
    reads = []
    real = fm.read_video

    def spy(path, **kw):
        import inspect

        reads.append((inspect.stack()[1].function, kw))
        return real(path, **kw)

    monkeypatch.setattr(fm, "read_video", spy)
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    calls = []
    real_call = VideoToAudioPipeline.__call__

    def call_spy(self, video=None, **kw):
        out = real_call(self, video, **kw)
        calls.append((kw, out.latents))
        return out

    monkeypatch.setattr(VideoToAudioPipeline, "__call__", call_spy)
    out = tmp_path / "long.wav"
    rc, _, _ = gen(capsys, media, media["long"], out, "--seed", "1", "--save-controls", "--overlap", "0.2")
    assert rc == 0
    side = json.loads(sidecar_path(out).read_text())
    assert side["scene_cuts"] == [pytest.approx(1.6, abs=0.041)]
    wins = side["windows"]
    assert len(wins) >= 4 and all(w["end"] - w["start"] <= 1.0 + 1e-6 for w in wins)
    cut_join = [(a, b) for a, b in itertools.pairwise(wins) if a["join_out"] == "cut"]
    assert (
        len(cut_join) == 1
        and cut_join[0][0]["end"] == pytest.approx(1.64)
        and cut_join[0][1]["start"] == 1.56
    )
    # a window after an overlap join continues the previous one: its first 0.2 s (5 latent frames) are kept
    assert len(calls) == len(wins)
    for (kw, lat), w in zip(calls, wins, strict=True):
        assert kw["start"] == pytest.approx(w["start"]) and kw["seed"] == 1
        if w["join_in"] == "overlap":
            assert kw["inpaint_mask"].tolist()[:6] == [0, 0, 0, 0, 0, 1] and kw["inpaint_mask"][5:].all()
            np.testing.assert_allclose(lat[:, :, :5], kw["init_latents"][:, :, :5], atol=1e-5)
        else:  # the first window and the one after the scene cut start fresh
            assert kw["init_latents"] is None and kw["inpaint_mask"] is None
    # memory stays bounded: frames are decoded one window at a time (the cut detector reads tiny frames in chunks)
    model_reads = [kw for caller, kw in reads if caller != "detect_scene_cuts"]
    assert len(model_reads) == len(wins)  # once per window: the timing prediction and the generation share it
    assert all(kw["duration"] is not None and kw["duration"] <= 1.0 + 1e-6 for kw in model_reads)
    assert all(kw["size"] == 32 for caller, kw in reads if caller == "detect_scene_cuts")
    wav, sr = sf.read(out, dtype="float32")
    assert sr == SR and len(wav) == round(3.2 * SR)
    hop = SR // 100  # 10 ms RMS frames
    rms = np.sqrt(np.mean(wav[: len(wav) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    for a, b in itertools.pairwise(wins):  # no click, bump or gap where windows meet
        i0, i1 = round(b["start"] * 100), round(a["end"] * 100)
        around = np.concatenate([rms[max(0, i0 - 20) : i0], rms[i1 : i1 + 20]])
        assert rms[i0:i1].max() < 2.0 * np.median(around) and rms[i0:i1].min() > 0.4 * np.median(around)
    saved = TemporalControl.load(tmp_path / "long.wav.timing.csv")
    assert saved.kind == "rms" and saved.duration == pytest.approx(3.2, abs=0.01)
    assert (tmp_path / "long.wav.timing.png").stat().st_size > 1000


def test_editable_timing_loop(media, tmp_path, capsys):
    timing = tmp_path / "timing.csv"
    rc, out, _ = run(
        capsys,
        "controls",
        "predict",
        media["clip"],
        "-o",
        timing,
        "--plot",
        tmp_path / "t.png",
        "--model",
        media["model"],
    )
    assert rc == 0 and "predicted rms" in out
    c = TemporalControl.load(timing)
    assert c.kind == "rms" and c.rate == 125 and c.num_frames == 200
    edited = tmp_path / "edited.csv"
    c.replace(values=np.where(c.times < 0.8, 0.0, 0.5).astype(np.float32)).save(edited)  # silence, then sound
    out_wav = tmp_path / "take.wav"
    rc, _, err = gen(
        capsys,
        media,
        media["clip"],
        out_wav,
        "--control",
        edited,
        "--save-controls",
        "--control-scale",
        "0.7",
    )
    assert rc == 0 and "note" not in err
    used = TemporalControl.load(tmp_path / "take.wav.timing.csv")
    np.testing.assert_allclose(used.values, TemporalControl.load(edited).values, atol=1e-6)
    side = json.loads(sidecar_path(out_wav).read_text())
    assert side["controls"]["rms"]["source"] == "file" and side["parameters"]["control_scale"] == 0.7


def test_expansion_deepens_the_predicted_curve_and_is_recorded(media, tmp_path, capsys, varying_rms_mapper):
    """`--expansion G` decodes the predicted RMS curve with valley expansion G for this run (generate and
    controls predict alike); the sidecar records it and its command repeats it; misuse is one error."""
    curves = {}
    for g in ("1", "10"):
        rc, _, err = run(capsys, "controls", "predict", media["clip"], "-o", tmp_path / f"c{g}.csv",
                         "--model", media["model"], "--expansion", g)  # fmt: skip
        assert rc == 0, err
        curves[g] = TemporalControl.load(tmp_path / f"c{g}.csv").values
    rc, _, _ = run(
        capsys, "controls", "predict", media["clip"], "-o", tmp_path / "c.csv", "--model", media["model"]
    )
    assert rc == 0
    np.testing.assert_array_equal(
        TemporalControl.load(tmp_path / "c.csv").values, curves["1"]
    )  # the model's: 1
    peak = curves["1"].max()
    assert curves["10"].max() == pytest.approx(peak) and (curves["10"] <= curves["1"] + 1e-7).all()
    assert (curves["10"] < curves["1"] - 1e-6).any()  # below the peak, deeper
    out = tmp_path / "take.wav"
    rc, _, err = gen(capsys, media, media["clip"], out, "--expansion", "10", "--save-controls", "--seed", "1")
    assert rc == 0, err
    np.testing.assert_allclose(
        TemporalControl.load(tmp_path / "take.wav.timing.csv").values, curves["10"], atol=1e-6
    )
    side = json.loads(sidecar_path(out).read_text())
    assert side["parameters"]["expansion"] == 10.0 and "--expansion 10.0" in side["reproduce"]
    # regenerating a region keeps it; a new timing recording replaces the predicted curve and drops it
    again = tmp_path / "again.wav"
    assert gen(capsys, media, media["clip"], again, "--regenerate", "0.2-0.6", "--from", out)[0] == 0
    assert json.loads(sidecar_path(again).read_text())["parameters"]["expansion"] == 10.0
    other = tmp_path / "other.wav"
    rc, _, err = gen(capsys, media, media["clip"], other, "--regenerate", "0.2-0.6", "--from", out,
                     "--control-from-audio", media["ref"])  # fmt: skip
    assert rc == 0, err
    assert json.loads(sidecar_path(other).read_text())["parameters"]["expansion"] is None
    from foleykit.product.debug import save_debug_model

    energy = save_debug_model(tmp_path / "energy", recipe="rewas")  # no RMS-Mapper: refused before it loads
    with pytest.MonkeyPatch.context() as mp:
        _no_model_load(mp)
        rc, _, err = run(capsys, "generate", media["clip"], "-o", tmp_path / "e.wav", "--model", energy,
                         "--expansion", "2")  # fmt: skip
    assert rc == 2 and "no RMS timing adapter" in err and not (tmp_path / "e.wav").exists()
    for extra, message in (
        (["--expansion", "11"], "--expansion must be a number from 1 to 10"),
        (["--expansion", "2", "--control-from-audio", media["ref"]], "--expansion"),
    ):
        rc, _, err = gen(capsys, media, media["clip"], tmp_path / "bad.wav", *extra)
        assert rc == 2 and err.count("foleykit: error:") == 1 and message in err, err
        assert not (tmp_path / "bad.wav").exists()


def test_follow_envelope_pins_the_loudness_to_the_edited_curve(media, tmp_path, capsys):
    edited = tmp_path / "edited.csv"
    TemporalControl("rms", np.where(np.arange(200) < 100, 0.0, 0.05).astype(np.float32), 125.0).save(edited)
    take = {}
    for s in ("0", "1"):
        out_wav = tmp_path / f"take{s}.wav"
        rc, _, err = gen(
            capsys, media, media["clip"], out_wav, "--control", edited, "--seed", "3", "--follow-envelope", s
        )
        assert rc == 0, err
        take[s] = read_audio(out_wav, sample_rate=16000)
    side = json.loads((tmp_path / "take1.wav.json").read_text())
    assert side["parameters"]["follow_envelope"] == 1.0 and "--follow-envelope 1.0" in side["reproduce"]
    env0 = rms_envelope(take["0"], 16000).values
    env1 = rms_envelope(take["1"], 16000).values
    # first half: class 0 ("below rms_min") -> never louder than about 0.01; second half: at the curve's 0.05
    # wherever the 18 dB boost allows it (the debug model's random output is quiet in places)
    assert env1[10:90].max() < 0.0125
    reachable = (env0[115:190] * 10 ** (18 / 20)) > 0.06
    assert reachable.sum() > 20
    np.testing.assert_allclose(env1[115:190][reachable], 0.05, rtol=0.2)
    rc, _, err = gen(capsys, media, media["clip"], tmp_path / "bad.wav", "--follow-envelope", "1.5")
    assert rc == 2 and err.count("foleykit: error:") == 1 and "follow-envelope" in err
    assert not (tmp_path / "bad.wav").exists()


def test_init_audio_starts_every_window_from_the_recording_on_its_curve(media, tmp_path, capsys, monkeypatch):
    from foleykit.pipelines import VideoToAudioPipeline

    seen = []
    real = VideoToAudioPipeline.init_latents_from_audio

    def spy(self, audio, sample_rate, seq, *, envelope=None):
        seen.append((np.asarray(audio).copy(), envelope is not None))
        return real(self, audio, sample_rate, seq, envelope=envelope)

    monkeypatch.setattr(VideoToAudioPipeline, "init_latents_from_audio", spy)
    out = tmp_path / "take.wav"
    rc, _, err = gen(
        capsys,
        media,
        media["long"],
        out,
        "--init-audio",
        media["clicks"],
        "--init-strength",
        "0.5",
        "--seed",
        "1",
    )
    assert rc == 0, err
    # 3.2 s in 1 s windows: every window lays the whole recording along its own timing curve
    assert len(seen) >= 3 and all(has_env for _, has_env in seen)
    clicks = read_audio(media["clicks"], sample_rate=SR)
    for audio, _ in seen:
        np.testing.assert_allclose(audio, clicks, atol=1e-6)
    side = json.loads(sidecar_path(out).read_text())
    assert side["parameters"]["init_strength"] == 0.5 and "--init-audio" in side["reproduce"]
    assert side["inputs"]["init_audio"]["sha256"]
    bad = tmp_path / "bad.wav"
    rc, _, err = gen(
        capsys, media, media["clip"], bad, "--init-audio", media["clicks"], "--init-strength", "1.5"
    )
    assert rc == 2 and err.count("foleykit: error:") == 1 and "init-strength" in err and not bad.exists()
    rc, _, err = gen(capsys, media, media["clip"], bad, "--init-strength", "0.5")
    assert rc == 2 and "needs --init-audio" in err and not bad.exists()
    rc, _, err = gen(capsys, media, media["clip"], bad, "--init-audio", tmp_path / "missing.wav")
    assert rc != 0 and err.count("foleykit: error:") == 1 and not bad.exists()


def test_control_with_another_rate_and_length_is_fitted_with_notes(media, tmp_path, capsys):
    ctl = tmp_path / "slow.csv"
    TemporalControl("rms", np.full(64, 0.2, np.float32), 50.0).save(ctl)  # 1.28 s of 1.6 s, at 50 Hz
    rc, _, err = gen(capsys, media, media["clip"], tmp_path / "a.wav", "--control", ctl, "--save-controls")
    assert rc == 0 and "resampled to the model's 125 Hz" in err and "rest was padded" in err
    used = TemporalControl.load(tmp_path / "a.wav.timing.csv")
    assert used.rate == 50.0 and used.num_frames == 80 and np.allclose(used.values, 0.2)
    short = tmp_path / "short.csv"
    TemporalControl("rms", np.full(20, 0.2, np.float32), 50.0).save(short)  # 0.4 s: under half
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    rc, _, err = gen(capsys, media, media["clip"], out_dir / "b.mp4", "--control", short)
    assert rc == 2 and "less than half" in err and list(out_dir.iterdir()) == []


def test_control_from_a_recording_follows_its_timing(media, tmp_path, capsys):
    out = tmp_path / "a.wav"
    rc, _, _ = gen(
        capsys, media, media["clip"], out, "--control-from-audio", media["clicks"], "--save-controls"
    )
    assert rc == 0
    used = TemporalControl.load(tmp_path / "a.wav.timing.csv")
    v = used.values
    peaks = [
        used.times[i]
        for i in range(1, len(v) - 1)
        if v[i] >= v[i - 1] and v[i] > v[i + 1] and v[i] > 0.3 * v.max()
    ]
    assert len(peaks) == 2 and np.allclose(peaks, [0.4, 1.2], atol=0.03)
    assert json.loads(sidecar_path(out).read_text())["controls"]["rms"]["source"] == "audio"


def test_text_and_reference_sound_together(media, tmp_path, capsys):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    assert gen(capsys, media, media["clip"], a, "--prompt", "a bell", "--seed", "3")[0] == 0
    assert (
        gen(
            capsys,
            media,
            media["clip"],
            b,
            "--prompt",
            "a bell",
            "--audio-prompt",
            media["ref"],
            "--seed",
            "3",
        )[0]
        == 0
    )
    side = json.loads(sidecar_path(b).read_text())["parameters"]
    assert side["prompt"] == "a bell" and side["audio_prompt"].endswith("tone.wav")
    assert not np.array_equal(sf.read(a)[0], sf.read(b)[0])  # the reference sound changes the result


def test_regenerate_one_region_keeps_the_rest(media, tmp_path, capsys):
    first = tmp_path / "first.wav"
    assert gen(capsys, media, media["clip"], first, "--seed", "2", "--prompt", "steps")[0] == 0
    second = tmp_path / "second.wav"
    rc, out, _ = run(
        capsys, "generate", media["clip"], "-o", second, "--regenerate", "0.3-1.3", "--from", first
    )
    assert rc == 0 and "regenerated 0.3-1.3 s" in out
    a, b = sf.read(first, dtype="float32")[0], sf.read(second, dtype="float32")[0]
    i0, i1 = int(0.3 * SR), int(1.3 * SR)
    assert np.array_equal(a[:i0], b[:i0]) and np.array_equal(a[i1:], b[i1:])
    assert np.abs(a[i0:i1] - b[i0:i1]).mean() > 0.01
    side = json.loads(sidecar_path(second).read_text())
    assert side["parameters"]["prompt"] == "steps" and side["parameters"]["seed"] == 3  # inherited, seed + 1
    assert side["regenerated"]["region"] == [0.3, 1.3] and side["regenerated"]["fade"] == 0.1
    assert len(side["windows"]) == 2  # 0.05-1.55 s with context: two windows, the second continues the first
    # from a video: the kept parts survive the AAC round trip
    v1, v2 = tmp_path / "v1.mp4", tmp_path / "v2.mp4"
    assert gen(capsys, media, media["clip"], v1, "--seed", "2")[0] == 0
    assert gen(capsys, media, media["clip"], v2, "--regenerate", "1.0-1.6", "--from", v1)[0] == 0
    x, y = read_audio(v1, sample_rate=SR), read_audio(v2, sample_rate=SR)

    def snr(part: slice) -> float:
        return float(10 * np.log10(np.sum(x[part] ** 2) / np.sum((x[part] - y[part]) ** 2)))

    # one more AAC generation of full-scale noise costs ~18 dB; the regenerated region is a new sound (~0 dB)
    assert snr(slice(0, int(0.95 * SR))) > 15 and snr(slice(int(1.1 * SR), None)) < 5


def test_segment_and_original_audio_track(media, tmp_path, capsys):
    out = tmp_path / "seg.mp4"
    assert (
        gen(
            capsys, media, media["talk"], out, "--start", "0.4", "--duration", "0.6", "--keep-original-audio"
        )[0]
        == 0
    )
    import av

    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 2
    wav = read_audio(out, sample_rate=SR)
    assert len(wav) == round(1.2 * SR)
    assert np.abs(wav[: int(0.35 * SR)]).max() < 1e-3 and np.abs(wav[int(1.05 * SR) :]).max() < 1e-3
    assert np.sqrt(np.mean(wav[int(0.45 * SR) : int(0.95 * SR)] ** 2)) > 0.01
    seg = tmp_path / "seg.wav"
    assert gen(capsys, media, media["talk"], seg, "--start", "0.4", "--duration", "0.6")[0] == 0
    assert len(sf.read(seg)[0]) == round(0.6 * SR)


def _bad_cases(media, d: Path) -> dict[str, tuple[list, str]]:
    garbage = d / "garbage.csv"
    garbage.write_bytes(b"\x00\xff\xfe binary \x00")
    energy = d / "energy.csv"
    TemporalControl("energy", np.zeros(200, np.float32), 100.0).save(energy)
    silent = write_audio(d / "silent.wav", np.zeros(SR, np.float32), SR)
    short = write_audio(d / "short.wav", 0.5 * np.ones(800, np.float32), SR)
    clip = media["clip"]
    return {
        "missing video": ([d / "nope.mp4"], "no such file"),
        "not a video": ([make_not_media_file(d / "text.mp4")], "not a media file"),
        "truncated video": ([make_truncated_copy(clip, d / "cut.mp4", 0.5)], "corrupt"),
        "audio only": ([make_audio_only_file(d / "sound.m4a")], "no video stream"),
        "empty file": ([make_empty_file(d / "empty.mp4")], "empty"),
        "zero frames": ([make_zero_frame_video(d / "noframes.mkv")], "no frames"),
        "unknown model": ([clip, "--model", "no-such-model"], "was not found locally"),
        "unreadable control": ([clip, "--control", garbage], "garbage.csv"),
        "missing control": ([clip, "--control", d / "none.csv"], "not found"),
        "control of another kind": ([clip, "--control", energy], "holds 'energy'"),
        "silent reference": ([clip, "--audio-prompt", silent], "silent"),
        "short reference": ([clip, "--audio-prompt", short], "lasts 0.050 s"),
        "silent timing recording": ([clip, "--control-from-audio", silent], "silent"),
        "region outside": (
            [clip, "--regenerate", "1-9", "--from", media["clicks"]],
            "outside the generated segment",
        ),
        "from without region": ([clip, "--from", media["clicks"]], "go together"),
        "start past the end": ([clip, "--start", "5"], "past the end"),
    }


def test_bad_input_gives_one_clear_message_and_writes_nothing(media, tmp_path, capsys):
    cases = _bad_cases(media, tmp_path)
    for name, (args, message) in cases.items():
        out_dir = tmp_path / name.replace(" ", "_")
        out_dir.mkdir()
        video, *rest = args
        rest = rest if "--model" in rest else [*rest, "--model", media["model"]]
        rc, _, err = run(capsys, "generate", video, "-o", out_dir / "out.mp4", *rest)
        assert rc == 2, name
        assert err.count("foleykit: error:") == 1, name
        assert "Traceback" not in err, name
        assert message in err, (name, err)
        assert list(out_dir.iterdir()) == [], name
    rc, _, err = run(capsys, "generate", media["clip"], "-o", tmp_path / "x.avi", "--model", media["model"])
    assert rc == 2 and "ending in" in err


def test_batch_continues_after_a_failure_and_summarises(media, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "c.mp4"):
        (src / name).write_bytes(Path(media["clip"]).read_bytes())
    make_not_media_file(src / "b.mp4")
    rc, out, err = gen(capsys, media, src, tmp_path / "out", "--format", "wav", "--seed", "1")
    assert rc == 1
    assert "2 generated, 1 failed" in out and "b.mp4" in out
    assert "foleykit: error:" in err and "b.mp4" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.wav",
        "a.wav.json",
        "c.wav",
        "c.wav.json",
    ]
    lst = tmp_path / "list.csv"
    lst.write_text("path,prompt,seed\nin/a.mp4,thunder,4\n", encoding="utf-8")
    rc, out, _ = gen(capsys, media, lst, tmp_path / "out2")
    assert rc == 0 and "1 generated, 0 failed" in out
    side = json.loads((tmp_path / "out2" / "a.mp4.json").read_text())["parameters"]
    assert side["prompt"] == "thunder" and side["seed"] == 4


def test_batch_shards_across_processes(media, tmp_path, capsys, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (src / name).write_bytes(Path(media["clip"]).read_bytes())
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    rc, out, err = gen(capsys, media, src, tmp_path / "out", "--format", "wav", "--device", "cpu")
    assert rc == 0 and "process 2 of 2: 1 of 3 videos" in err and "(process 2 of 2)" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.wav", "b.wav.json"]


def test_console_script_exit_code_and_message(tmp_path):
    exe = Path(sys.executable).with_name("foleykit")
    proc = subprocess.run(
        [str(exe), "generate", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("foleykit: error:")
        and "missing.mp4" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    assert not (tmp_path / "o.mp4").exists()


# --- real media and the product (issue 16) ------------------------------------------------------------------
def _no_model_load(monkeypatch, error: type[Exception] = AssertionError):
    """Make loading a model fail loudly: the test proves every input was checked before it."""
    from foleykit.product import runtime

    def refuse(*a, **k):
        raise error("the model was loaded before the inputs were checked")

    monkeypatch.setattr(runtime, "load_model", refuse)


@pytest.mark.parametrize("codec", ["cinepak", "msvideo1"])
def test_a_legacy_codec_mkv_gets_every_video_output(media, tmp_path, capsys, codec):
    old = make_legacy_codec_video(tmp_path / "old.mkv", codec=codec, duration=1.2)
    src_frames = read_video(old).frames
    with pytest.MonkeyPatch.context() as mp:  # the re-encoding is announced before the model loads
        from foleykit.errors import ModelError

        _no_model_load(mp, ModelError)
        rc, _, err = gen(capsys, media, old, tmp_path / "take.mp4")
        assert rc == 2 and "take.mp4: the picture is re-encoded as h264" in err and codec in err
    for suffix in (".mp4", ".mov", ".mkv", ".webm"):
        out = tmp_path / f"take{suffix}"
        rc, _, err = gen(capsys, media, old, out, "--seed", "1")
        assert rc == 0, err
        side = json.loads(sidecar_path(out).read_text())
        plan = side["output"]["video"]
        info = probe(out)
        if plan["video"] == "copy":  # QuickTime holds Cinepak: copied untouched
            assert (suffix, codec) == (".mov", "cinepak") and info.video_codec == codec
            continue
        assert plan["source_codec"] == codec and plan["codec"] == info.video_codec
        assert info.video_codec == ("vp9" if suffix == ".webm" else "h264")
        assert "re-encoded" in " ".join(side["notes"])
        got = read_video(out)
        assert got.frames.shape == src_frames.shape  # same frames, same times
        luma = np.array(
            [0.299, 0.587, 0.114]
        )  # colour detail is subsampled (4:2:0), as in any delivery format
        assert np.abs(got.frames @ luma - src_frames @ luma).mean() < 2.5  # measured 1.3-2.0
        assert info.audio_duration == pytest.approx(1.2, abs=0.03)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if ".part-" in n or ".tmp-" in n]  # no hidden temporary file anywhere


def test_regenerating_from_a_take_of_another_video_is_refused(media, tmp_path, capsys, monkeypatch):
    take = tmp_path / "take.wav"
    assert gen(capsys, media, media["talk"], take, "--seed", "2")[0] == 0  # a take of talk.mp4 (1.2 s)
    side = json.loads(sidecar_path(take).read_text())
    assert side["inputs"]["video"]["sha256"] and side["inputs"]["video"]["bytes"] > 0
    _no_model_load(monkeypatch)
    out = tmp_path / "again.wav"
    rc, _, err = gen(capsys, media, media["clip"], out, "--regenerate", "0.2-0.6", "--from", take)
    assert rc == 2 and "made from another video" in err and "talk.mp4" in err and not out.exists()
    # a copy of the same video under another name is the same video
    copy = tmp_path / "talk_copy.mp4"
    copy.write_bytes(Path(media["talk"]).read_bytes())
    monkeypatch.undo()
    rc, _, err = gen(capsys, media, copy, out, "--regenerate", "0.2-0.6", "--from", take)
    assert rc == 0, err


def test_each_output_has_its_own_sidecar_and_old_sidecars_still_work(media, tmp_path, capsys):
    mp4, wav = tmp_path / "take.mp4", tmp_path / "take.wav"
    assert gen(capsys, media, media["clip"], mp4, "--seed", "1", "--prompt", "rain")[0] == 0
    assert gen(capsys, media, media["clip"], wav, "--seed", "2", "--prompt", "wind")[0] == 0
    a, b = json.loads(sidecar_path(mp4).read_text()), json.loads(sidecar_path(wav).read_text())
    assert (a["parameters"]["prompt"], Path(a["output"]["path"]).name) == ("rain", "take.mp4")
    assert (b["parameters"]["prompt"], Path(b["output"]["path"]).name) == ("wind", "take.wav")
    assert not (tmp_path / "take.json").exists()
    # a sidecar of an earlier version (take.json) is read for --from, but only for the output it records
    legacy = tmp_path / "old.wav"
    legacy.write_bytes(wav.read_bytes())
    doc = dict(b, output=dict(b["output"], path=str(legacy)))
    doc.pop("inputs")  # earlier sidecars had no fingerprints: same path and duration are required instead
    doc["input"] = {"video": str(Path(media["clip"]).resolve()), "video_duration": 1.6}
    (tmp_path / "old.json").write_text(json.dumps(doc))
    rc, _, err = gen(
        capsys, media, media["clip"], tmp_path / "r.wav", "--regenerate", "0.4-0.8", "--from", legacy
    )
    assert rc == 0 and "no sidecar" not in err
    assert json.loads(sidecar_path(tmp_path / "r.wav").read_text())["parameters"]["prompt"] == "wind"
    (tmp_path / "old.json").write_text(json.dumps(dict(doc, output=dict(doc["output"], path="/x/other.wav"))))
    rc, _, err = gen(
        capsys, media, media["clip"], tmp_path / "s.wav", "--regenerate", "0.4-0.8", "--from", legacy
    )
    assert rc == 0 and "no sidecar next to" in err  # take.json of another output is not this one's


def test_sigterm_while_muxing_leaves_no_temporary_file(media, tmp_path):
    out = tmp_path / "take.mp4"
    stale = tmp_path / "..take.part-0123abcd.tmp-k2j4h5g6.mp4"  # what a killed run used to leave behind
    stale.write_bytes(b"half a video")
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    code = (
        "import os, signal, sys\n"
        "from foleykit.media import mux as m\n"
        "import importlib; mod = importlib.import_module('foleykit.media.mux')\n"
        "orig = mod._AudioFeeder.finish\n"
        "def finish(self):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)  # the job scheduler stops us while the file is written\n"
        "    return orig(self)\n"
        "mod._AudioFeeder.finish = finish\n"
        "from foleykit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "generate",
            str(media["clip"]),
            "-o",
            str(out),
            "--model",
            media["model"],
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 130 and "interrupted" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # neither the output nor any temporary file; the stale one removed


def test_control_values_out_of_range_are_clamped_and_keyframes_interpolated(media, tmp_path, capsys):
    ctl = tmp_path / "loud.csv"
    values = np.full(200, 0.3, np.float32)
    values[50:60], values[120:125] = 5.0, -0.1
    TemporalControl("rms", values, 125.0).save(ctl)
    out = tmp_path / "a.wav"
    rc, _, err = gen(capsys, media, media["clip"], out, "--control", ctl, "--save-controls", "--seed", "1")
    assert rc == 0 and "15 of 200 rms values lie outside 0..1 (from -0.1 to 5" in err
    used = TemporalControl.load(tmp_path / "a.wav.timing.csv")
    assert used.values.max() == 1.0 and used.values.min() == 0.0 and used.values[0] == pytest.approx(0.3)
    assert any("clamped" in n for n in json.loads(sidecar_path(out).read_text())["notes"])
    keys = tmp_path / "keys.csv"
    keys.write_text("time,rms\n0,0\n0.5,0.4\n0.7,0.05\n1.6,0.05\n", encoding="utf-8")
    rc, _, err = gen(capsys, media, media["clip"], tmp_path / "k.wav", "--control", keys, "--save-controls")
    assert rc == 0 and "4 keyframes at uneven times" in err
    used = TemporalControl.load(tmp_path / "k.wav.timing.csv")
    np.testing.assert_allclose(used.values[[0, 25, 50]], [0.0, 0.2, 0.4], atol=1e-6)


def test_every_input_is_checked_before_the_model_loads(media, tmp_path, capsys, monkeypatch):
    d = tmp_path
    energy = d / "energy.csv"
    TemporalControl("energy", np.zeros(200, np.float32), 100.0).save(energy)
    bad_csv = d / "bad.csv"
    bad_csv.write_text("time,rms\n0,0.1\n0.01,loud\n0.02,0.3\n", encoding="utf-8")
    silent = write_audio(d / "silent.wav", np.zeros(SR, np.float32), SR)
    prev = d / "noaudio.mp4"
    prev.write_bytes(Path(media["long"]).read_bytes())  # a video without sound as a previous result
    _no_model_load(monkeypatch)
    cases = {
        "silent reference": (["--audio-prompt", silent], "silent"),
        "reference is a folder": (["--audio-prompt", d], "is a folder"),
        "silent timing recording": (["--control-from-audio", silent], "silent"),
        "unreadable control": (["--control", bad_csv], "line 3, column 2 (rms): 'loud' is not a number"),
        "control of another kind": (["--control", energy], "holds 'energy'"),
        "previous without sound": (["--regenerate", "0-1", "--from", prev], "no audio track"),
    }
    for name, (extra, message) in cases.items():
        rc, _, err = gen(capsys, media, media["clip"], d / "out.wav", *extra)
        assert rc == 2 and message in err and err.count("foleykit: error:") == 1, (name, err)
    assert not (d / "out.wav").exists()


def test_bad_batch_rows_fail_alone_with_their_csv_line(media, tmp_path, capsys, monkeypatch):
    clip = Path(media["clip"])
    lst = tmp_path / "list.csv"
    lst.write_text(
        "path,seed,steps,audio_prompt,output\n"
        f"{clip},1,,,\n"
        "\n"
        f"{clip.with_name('talk.mp4')},seven,,,\n"
        f"{tmp_path / 'missing.mp4'},2,,,\n"
        f"{clip},3,0,,\n"
        f"{clip},4,,{tmp_path / 'nope.wav'},other.wav\n",
        encoding="utf-8",
    )
    rc, out, _ = gen(capsys, media, lst, tmp_path / "out", "--format", "wav")
    assert rc == 1 and "1 generated, 4 failed" in out
    assert "list.csv line 4 (talk.mp4): column seed: 'seven' is not a whole number" in out
    assert "list.csv line 5 (missing.mp4): no such file" in out
    assert "list.csv line 6 (clip.mp4): column steps: '0' is not a whole number >= 1" in out
    assert "list.csv line 7 (clip.mp4)" in out and "nope.wav" in out
    assert str(tmp_path / "missing.mp4") not in out  # the path is not printed twice
    side = json.loads((tmp_path / "out" / "clip.wav.json").read_text())
    assert side["inputs"]["batch_list"]["sha256"] and side["parameters"]["seed"] == 1
    # nothing can run: the model is not even loaded
    _no_model_load(monkeypatch)
    lst.write_text(f"path,seed\n{clip},x\n", encoding="utf-8")
    rc, out, _ = gen(capsys, media, lst, tmp_path / "out3", "--format", "wav")
    assert rc == 1 and "0 generated, 1 failed" in out and "list.csv line 2" in out


def test_reproduce_warns_when_an_input_changed(media, tmp_path, capsys):
    video, ref = tmp_path / "v.mp4", tmp_path / "ref.wav"
    video.write_bytes(Path(media["clip"]).read_bytes())
    ref.write_bytes(Path(media["ref"]).read_bytes())
    take = tmp_path / "take.wav"
    assert gen(capsys, media, video, take, "--seed", "4", "--audio-prompt", ref)[0] == 0
    side = json.loads(sidecar_path(take).read_text())
    assert set(side["inputs"]) == {"video", "audio_prompt"}
    rc, _, err = run(capsys, "reproduce", sidecar_path(take), "-o", tmp_path / "same.wav")
    assert rc == 0 and "warning" not in err
    assert np.array_equal(sf.read(take)[0], sf.read(tmp_path / "same.wav")[0])
    write_audio(ref, 0.3 * np.sin(np.arange(SR) / 3.0).astype(np.float32), SR)  # the reference was edited
    rc, _, err = run(capsys, "reproduce", take)
    assert rc == 0 and "warning: audio_prompt" in err and "content changed" in err and "video" not in err
    assert (tmp_path / "take.reproduced.wav").exists()
    rc, _, err = run(capsys, "reproduce", take, "--strict", "-o", tmp_path / "x.wav")
    assert rc == 2 and "audio_prompt" in err and not (tmp_path / "x.wav").exists()
