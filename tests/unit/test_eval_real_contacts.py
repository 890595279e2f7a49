"""benchmarks/eval_real_contacts.py: the shipped vtest annotation loads, and clips cut from a source video hold
the annotated frames (clip frame k = source frame start_frame + k, cropped) or the cut refuses a short source."""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
sf = pytest.importorskip("soundfile")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_real_contacts.py"
W, H, N = 64, 48, 30


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("eval_real_contacts", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _level(i: int) -> int:
    return 20 + 7 * i  # one flat grey level per source frame


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("src") / "src.mp4"
    with av.open(str(path), "w") as oc:
        st = oc.add_stream("libx264", rate=10)
        st.width, st.height, st.pix_fmt = W, H, "yuv420p"
        st.time_base = Fraction(1, 10)
        st.options = {"crf": "0"}
        for i in range(N):
            vf = av.VideoFrame.from_ndarray(np.full((H, W, 3), _level(i), np.uint8), format="rgb24")
            vf.pts = i
            oc.mux(st.encode(vf))
        oc.mux(st.encode())
    return path


SEGMENTS = [
    {"name": "a", "start_frame": 3, "end_frame": 10, "crop": [0, 0, 32, 24]},
    {"name": "b", "start_frame": 12, "end_frame": 30, "crop": [16, 8, 64, 48]},
]


def test_default_annotation_has_4_segments_and_56_contacts(bench):
    segments, truth = bench.load_annotation(bench.DEFAULT_ANNOTATION)
    assert len(segments) == 4
    assert sum(len(t) for t in truth.values()) == 56
    for s in segments:
        assert np.all((truth[s["name"]] >= 0) & (truth[s["name"]] < (s["end_frame"] - s["start_frame"]) / 10))


def test_clips_hold_the_segment_frames_cropped(bench, source, tmp_path):
    paths = bench.cut_clips(source, SEGMENTS, tmp_path / "clips")
    for s in SEGMENTS:
        x0, y0, x1, y1 = s["crop"]
        with av.open(str(paths[s["name"]])) as c:
            frames = list(c.decode(video=0))
        assert len(frames) == s["end_frame"] - s["start_frame"]
        for k, f in enumerate(frames):
            assert (f.width, f.height) == (x1 - x0, y1 - y0)
            assert f.time == pytest.approx(k / 10, abs=1e-3)
            assert f.to_ndarray(format="rgb24").mean() == pytest.approx(_level(s["start_frame"] + k), abs=2.5)
    mtime = paths["a"].stat().st_mtime_ns
    assert bench.cut_clips(source, SEGMENTS, tmp_path / "clips") == paths  # reused, not cut again
    assert paths["a"].stat().st_mtime_ns == mtime


def test_a_source_that_does_not_match_is_refused(bench, source, tmp_path):
    long = [{**SEGMENTS[0], "end_frame": N + 5}]
    with pytest.raises(ValueError, match=f"{N} frames"):
        bench.cut_clips(source, long, tmp_path)
    vtest = bench.load_source(bench.DEFAULT_ANNOTATION)
    with pytest.raises(ValueError, match="annotation was made on 795 frames"):
        bench.cut_clips(source, SEGMENTS, tmp_path, vtest)
    wide = [{**SEGMENTS[0], "crop": [0, 0, W + 2, 24]}]
    with pytest.raises(ValueError, match="does not hold"):
        bench.cut_clips(source, wide, tmp_path)
    assert not list(tmp_path.glob("*.mp4"))


def test_without_clips_or_video_one_error_line_and_exit_2(bench, tmp_path, capsys):
    assert bench.main(["--rows", "motion"]) == 2
    assert bench.main(["--clips", str(tmp_path)]) == 2  # no clips there
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--video" in err[0] and "lacks" in err[1]


def test_coin_annotation_is_real_footage_with_its_own_sound(bench):
    folder = bench.DEFAULT_ANNOTATION.parent / "coin"
    source = bench.load_source(folder)
    assert (source["frames"], source["fps"], source["audio"]) == (242, 30, True)
    segments, truth = bench.load_annotation(folder)
    assert [s["name"] for s in segments] == ["coin_strikes"]
    t = truth["coin_strikes"]
    assert len(t) == 5 and np.all((t > 0) & (t < 242 / 30))


CLICKS = (1.25, 2.25)  # source seconds of the sound's two bursts
SR = 16000


@pytest.fixture(scope="module")
def sounding(tmp_path_factory) -> Path:
    """A 10 fps, 30-frame video with a PCM track: silence with two 40 ms noise bursts at CLICKS."""
    path = tmp_path_factory.mktemp("snd") / "src.mov"
    wav = np.zeros(int(3.0 * SR), np.float32)
    rng = np.random.default_rng(0)
    for c in CLICKS:
        i = int(c * SR)
        wav[i : i + 640] = 0.5 * rng.standard_normal(640) * np.exp(-np.arange(640) / 160)
    pcm = (wav * 32767).astype(np.int16)
    with av.open(str(path), "w") as oc:
        st = oc.add_stream("libx264", rate=10)
        st.width, st.height, st.pix_fmt = W, H, "yuv420p"
        st.time_base = Fraction(1, 10)
        au = oc.add_stream("pcm_s16le", rate=SR)
        au.layout = "mono"
        for i in range(N):
            vf = av.VideoFrame.from_ndarray(np.full((H, W, 3), _level(i), np.uint8), format="rgb24")
            vf.pts = i
            oc.mux(st.encode(vf))
        oc.mux(st.encode())
        for k in range(0, pcm.size, 1600):
            af = av.AudioFrame.from_ndarray(pcm[None, k : k + 1600], format="s16", layout="mono")
            af.sample_rate, af.pts = SR, k
            oc.mux(au.encode(af))
        oc.mux(au.encode())
    return path


def test_a_sounding_source_gives_each_clip_its_soundtrack_and_the_soundtrack_row(bench, sounding, tmp_path):
    seg = [{"name": "b", "start_frame": 5, "end_frame": 30, "crop": [0, 0, W, H]}]
    source = {"name": "test", "frames": N, "width": W, "height": H, "fps": 10, "audio": True}
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "source.json").write_text(json.dumps(source))
    (tmp_path / "ann" / "segments.json").write_text(json.dumps(seg))
    rel = [c - 0.5 for c in CLICKS]  # the segment starts at frame 5 = 0.5 s
    rows = "".join(f"b,{int(r * 10) + 5},{r + 0.5},{r},strike,sure\n" for r in rel)
    (tmp_path / "ann" / "contacts.csv").write_text("segment,frame,time_s,rel_s,event,confidence\n" + rows)
    clips = tmp_path / "clips"
    out = tmp_path / "r.json"
    args = ["--annotation", str(tmp_path / "ann"), "--video", str(sounding), "--clips", str(clips)]
    assert bench.main([*args, "--rows", "soundtrack", "--json", str(out)]) == 0
    wav, sr = sf.read(clips / "b.wav", dtype="float32")
    assert sr == bench.SOUNDTRACK_RATE and len(wav) == pytest.approx(2.5 * sr, abs=2)
    bursts = np.flatnonzero(np.abs(wav) > 0.05)
    assert bursts[0] / sr == pytest.approx(rel[0], abs=0.005)  # the clip's sound starts with the segment
    res = json.loads(out.read_text())
    assert res["soundtrack"]["f1"] == 1.0 and res["soundtrack"]["contacts"] == 2
    own = bench.soundtrack_metrics(bench_resample(wav, sr), wav)  # the sound scored against itself
    assert own["e_l1"] == pytest.approx(0.0, abs=1e-3) and own["onset_acc"] == 1.0
    assert own["loudness_corr"] == pytest.approx(1.0, abs=0.02)
    late = bench.soundtrack_metrics(np.roll(bench_resample(wav, sr), len(wav) * 16000 // sr // 2), wav)
    assert late["loudness_corr"] < 0.5  # the same sound half a clip late
    assert res["silent_output_e_l1"] > 10 * own["e_l1"]
    assert res["machine"]["versions"]["numpy"] == np.__version__ and res["machine"]["cpu"]  # where it ran


def bench_resample(wav: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    return librosa.resample(wav, orig_sr=sr, target_sr=16000)


def test_the_soundtrack_row_needs_footage_with_sound(bench, source, tmp_path, capsys):
    clips = tmp_path / "clips"
    args = ["--video", str(source), "--clips", str(clips), "--rows", "soundtrack"]
    (tmp_path / "ann").mkdir()
    src = {"name": "silent test", "frames": N, "width": W, "height": H, "fps": 10, "audio": False}
    (tmp_path / "ann" / "source.json").write_text(json.dumps(src))
    (tmp_path / "ann" / "segments.json").write_text(json.dumps(SEGMENTS))
    (tmp_path / "ann" / "contacts.csv").write_text("segment,frame,time_s,rel_s\n")
    assert bench.main([*args, "--annotation", str(tmp_path / "ann")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has none" in err[0]
