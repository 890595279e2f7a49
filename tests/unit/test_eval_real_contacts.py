"""benchmarks/eval_real_contacts.py: the shipped vtest annotation loads, and clips cut from a source video hold
the annotated frames (clip frame k = source frame start_frame + k, cropped) or the cut refuses a short source."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

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
    with pytest.raises(ValueError, match="annotation was made on 795 frames"):
        bench.cut_clips(source, SEGMENTS, tmp_path, bench.VTEST)
    wide = [{**SEGMENTS[0], "crop": [0, 0, W + 2, 24]}]
    with pytest.raises(ValueError, match="does not hold"):
        bench.cut_clips(source, wide, tmp_path)
    assert not list(tmp_path.glob("*.mp4"))


def test_without_clips_or_video_one_error_line_and_exit_2(bench, tmp_path, capsys):
    assert bench.main(["--rows", "motion"]) == 2
    assert bench.main(["--clips", str(tmp_path)]) == 2  # no clips there
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--video" in err[0] and "lacks" in err[1]
