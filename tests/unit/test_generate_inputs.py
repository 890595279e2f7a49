"""Checked user inputs of `foleykit generate`: control fitting, reference sounds, batch lists, output names."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
import pytest

from foleykit.cli.generate import parse_region
from foleykit.controls import TemporalControl
from foleykit.errors import ConfigError, ControlError, DataError, MediaError
from foleykit.product.batch import collect_items, is_batch_input
from foleykit.product.generate import GenerateOptions
from foleykit.product.inputs import assign_controls, fit_control, read_reference_sound
from foleykit.product.outputs import check_output, companion_paths


def _rms(n: int, rate: float = 125.0, start: float = 0.0) -> TemporalControl:
    return TemporalControl("rms", np.linspace(0.0, 1.0, n, dtype=np.float32), rate, start)


def test_fit_control_exact_length_has_no_note():
    c, notes = fit_control(_rms(250), start=0.0, duration=2.0, what="x")
    assert c.num_frames == 250 and notes == []


def test_fit_control_pads_and_trims_with_a_note():
    c, notes = fit_control(_rms(200), start=0.0, duration=2.0, what="control file t.csv")
    assert c.num_frames == 250 and c.values[-1] == pytest.approx(1.0) and c.values[199] == pytest.approx(1.0)
    assert "padded" in notes[0] and "t.csv" in notes[0]
    c, notes = fit_control(_rms(300), start=0.0, duration=2.0, what="x")
    assert c.num_frames == 250 and "trimmed" in notes[0]
    np.testing.assert_array_equal(c.values, _rms(300).values[:250])


def test_fit_control_keeps_its_rate_and_pads_events_with_zeros():
    ev = TemporalControl("onsets", np.ones(30, np.float32), 25.0)
    c, notes = fit_control(ev, start=0.0, duration=2.0, what="x")
    assert c.rate == 25.0 and c.num_frames == 50 and c.values[30:].sum() == 0 and c.values[:30].sum() == 30
    assert "zeros" in notes[0]


def test_fit_control_crops_an_absolute_control_to_the_segment():
    c, notes = fit_control(_rms(500), start=1.0, duration=2.0, what="x")  # control covers 0-4 s
    assert "its 1-3 s are used" in notes[0] and c.start == 1.0 and c.num_frames == 250
    np.testing.assert_array_equal(c.values, _rms(500).values[125:375])


def test_fit_control_refuses_a_control_under_half_the_segment():
    with pytest.raises(ControlError, match="less than half"):
        fit_control(_rms(100), start=0.0, duration=2.0, what="x")


def test_fit_control_relative_when_it_does_not_cover_the_segment():
    c, notes = fit_control(_rms(250, start=5.0), start=1.0, duration=2.0, what="x")
    assert c.start == 1.0 and "taken as starting at the segment start" in notes[0]


def test_assign_controls_by_kind():
    pipe = SimpleNamespace(adapters={"rms": SimpleNamespace(control_kind="rms")})
    classes = TemporalControl("rms_class", np.zeros(10, np.int64), 125.0)
    assert assign_controls(pipe, [classes]) == {"rms": classes}
    with pytest.raises(ControlError, match="follows a 'rms' timing control, but the file holds 'energy'"):
        assign_controls(pipe, [TemporalControl("energy", np.zeros(10, np.float32), 100.0)])
    with pytest.raises(ControlError, match="no timing-control adapter"):
        assign_controls(SimpleNamespace(adapters={}), [classes])


def test_reference_sound_checks(tmp_path):
    from foleykit.media import write_audio

    sr = 16000
    write_audio(tmp_path / "silent.wav", np.zeros(sr, np.float32), sr)
    write_audio(tmp_path / "short.wav", 0.5 * np.ones(sr // 10, np.float32), sr)
    tone = (0.3 * np.sin(np.arange(sr) * 0.1)).astype(np.float32)
    write_audio(tmp_path / "ok.wav", tone, sr)
    with pytest.raises(MediaError, match="silent"):
        read_reference_sound(tmp_path / "silent.wav", sr)
    with pytest.raises(MediaError, match=r"lasts 0\.100 s"):
        read_reference_sound(tmp_path / "short.wav", sr)
    with pytest.raises(MediaError, match="no such file"):
        read_reference_sound(tmp_path / "missing.wav", sr)
    wav = read_reference_sound(tmp_path / "ok.wav", 8000)
    assert wav.shape == (8000,) and wav.dtype == np.float32


def test_options_check():
    GenerateOptions().check()
    GenerateOptions(init_audio="steps.wav", init_strength=1.0).check()
    GenerateOptions(expansion=1.0).check()
    bad = [
        {"control": "a.csv", "control_from_audio": "b.wav"},
        {"steps": 0},
        {"guidance": -1.0},
        {"start": -1.0},
        {"duration": 0.0},
        {"regenerate": (1.0, 2.0)},
        {"previous": "x.wav"},
        {"regenerate": (2.0, 1.0), "previous": "x.wav"},
        {"control_scale": float("nan")},
        {"init_audio": "steps.wav", "init_strength": 0.0},
        {"init_audio": "steps.wav", "init_strength": 1.5},
        {"init_strength": 0.5},  # without a recording to start from
        {"expansion": 0.5},
        {"expansion": float("nan")},
        {"expansion": 2.0, "control": "a.csv"},  # the curve is given: nothing to expand
        {"expansion": 2.0, "control_from_audio": "b.wav"},
    ]
    for kw in bad:
        with pytest.raises(ConfigError):
            GenerateOptions(**kw).check()


def test_parse_region():
    assert parse_region("2.5-4") == (2.5, 4.0)
    assert parse_region(" 1:3.25 ") == (1.0, 3.25)
    for text in ("4-2", "abc", "1-", "-1-2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_region(text)


def test_check_output(tmp_path):
    assert check_output(tmp_path / "a.mp4") == tmp_path / "a.mp4"
    with pytest.raises(ConfigError, match="ending in"):
        check_output(tmp_path / "a.avi")
    (tmp_path / "d.mp4").mkdir()
    with pytest.raises(ConfigError, match="folder"):
        check_output(tmp_path / "d.mp4")
    v = tmp_path / "v.mp4"
    v.write_bytes(b"x")
    with pytest.raises(ConfigError, match="input video"):
        check_output(v, video=v)
    with pytest.raises(ConfigError, match="keep-original-audio"):
        check_output(tmp_path / "a.wav", keep_original_audio=True)


def test_companion_paths():
    p = companion_paths("/x/take.mp4", ["rms"])
    assert p == {"sidecar": p["sidecar"], "csv:rms": p["csv:rms"], "png:rms": p["png:rms"]}
    assert (p["sidecar"].name, p["csv:rms"].name, p["png:rms"].name) == (
        "take.mp4.json",
        "take.mp4.timing.csv",
        "take.mp4.timing.png",
    )
    assert companion_paths("/x/take.wav", ["a", "b"])["csv:b"].name == "take.wav.timing_b.csv"


def test_batch_from_a_folder(tmp_path):
    for name in ("b.mp4", "a.MOV", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    items = collect_items(tmp_path, tmp_path / "out", fmt="wav")
    assert [(i.video.name, i.output.name) for i in items] == [("a.MOV", "a.wav"), ("b.mp4", "b.wav")]
    assert (
        is_batch_input(tmp_path)
        and is_batch_input(tmp_path / "list.csv")
        and not is_batch_input(tmp_path / "a")
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no video files"):
        collect_items(empty, tmp_path / "out")
    with pytest.raises(ConfigError, match="--format"):
        collect_items(tmp_path, tmp_path / "out", fmt="avi")
    with pytest.raises(ConfigError, match="output folder"):
        collect_items(tmp_path, tmp_path / "out.mp4")


def test_batch_from_a_csv(tmp_path):
    lst = tmp_path / "list.csv"
    lst.write_text(
        "path,prompt,seed,control\nclips/a.mp4,rain on a roof,7,a.csv\n\nb.mp4,,,\n", encoding="utf-8"
    )
    items = collect_items(lst, tmp_path / "out")
    assert [i.video for i in items] == [tmp_path / "clips/a.mp4", tmp_path / "b.mp4"]
    assert items[0].overrides == {"prompt": "rain on a roof", "seed": 7, "control": str(tmp_path / "a.csv")}
    assert items[1].overrides == {} and items[1].output == tmp_path / "out" / "b.mp4"
    assert items[0].line == 2


@pytest.mark.parametrize(
    "text,match",
    [
        ("video_file,prompt\na.mp4,x\n", "needs a 'path' column"),
        ("path,colour\na.mp4,red\n", "unknown column"),
        ("path\n", "no rows"),
    ],
)
def test_batch_csv_errors(tmp_path, text, match):  # whole-file problems; a bad row fails alone (below)
    lst = tmp_path / "list.csv"
    lst.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        collect_items(lst, tmp_path / "out")


def test_write_outputs_is_all_or_nothing(tmp_path, monkeypatch):
    from foleykit.product.generate import GenerationResult
    from foleykit.product.outputs import write_outputs
    from foleykit.product.windows import Window

    sr = 16000
    rms = TemporalControl("rms", np.full(125, 0.1, np.float32), 125.0)
    result = GenerationResult(
        audio=np.zeros(sr, np.float32),
        sample_rate=sr,
        start=0.0,
        end=1.0,
        video_duration=1.0,
        controls={"rms": rms},
        control_sources={"rms": "predicted"},
        windows=[Window(0.0, 1.0)],
        seed=1,
        steps=2,
        guidance=3.0,
        timings={"total": 1.0},
    )
    opts = GenerateOptions(save_controls=True)
    (tmp_path / "old.wav").write_bytes(b"previous take")

    def broken_plot(self, path, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(TemporalControl, "plot", broken_plot)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(result, tmp_path / "v.mp4", tmp_path / "old.wav", opts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.wav"]  # nothing new, nothing half-written
    assert (tmp_path / "old.wav").read_bytes() == b"previous take"
    monkeypatch.undo()
    written = write_outputs(result, tmp_path / "v.mp4", tmp_path / "old.wav", opts, model_info={"name": "m"})
    assert sorted(p.name for p in written.values()) == [
        "old.wav",
        "old.wav.json",
        "old.wav.timing.csv",
        "old.wav.timing.png",
    ]


def test_batch_csv_takes_a_recording_to_start_from(tmp_path):
    lst = tmp_path / "list.csv"
    lst.write_text(
        "path,init_audio,init_strength\na.mp4,steps/gravel.wav,0.6\nb.mp4,x.wav,0\n", encoding="utf-8"
    )
    items = collect_items(lst, tmp_path / "out")
    assert items[0].overrides == {"init_audio": str(tmp_path / "steps/gravel.wav"), "init_strength": 0.6}
    assert items[1].error == "column init_strength: '0' is not a number in (0, 1]"


def test_bad_batch_rows_fail_alone(tmp_path):
    lst = tmp_path / "list.csv"
    lst.write_text(
        "path,seed,steps,follow_envelope,expansion\na.mp4,seven,,,\n\nb.mp4,1,0,,\nc.mp4,,,2,\nd.mp4,,,,2.5\n"
        "sub/d.mp4\n,3,,,\ne.mp4,,,,0.5\n",
        encoding="utf-8",
    )
    items = collect_items(lst, tmp_path / "out")
    errors = {(i.line, i.video.name): i.error for i in items}
    assert errors == {
        (2, "a.mp4"): "column seed: 'seven' is not a whole number from 0 to 2^63 - 1",
        (4, "b.mp4"): "column steps: '0' is not a whole number >= 1",
        (5, "c.mp4"): "column follow_envelope: '2' is not a number from 0 to 1",
        (6, "d.mp4"): None,
        (
            7,
            "d.mp4",
        ): f"it would write {tmp_path / 'out' / 'd.mp4'} like list.csv line 6 (d.mp4); give the CSV "
        "an 'output' column or rename one of the videos",
        (8, "list.csv"): "the 'path' cell is empty",
        (9, "e.mp4"): "column expansion: '0.5' is not a number from 1 to 10",
    }
    assert next(i for i in items if i.line == 6).overrides == {"expansion": 2.5}
    assert items[0].label == "list.csv line 2 (a.mp4)" and items[-2].label == "list.csv line 8"
