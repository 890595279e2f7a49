"""extract() on media files, PNG plots, and ``foleykit controls extract|plot`` with its error exits."""

import json

import numpy as np
import pytest

from foleykit.cli import main
from foleykit.controls import TemporalControl, extract, rms_bin_edges
from foleykit.controls.plot import _class_coordinate, _rms_from_class_coordinate, plot_control
from foleykit.errors import ControlError, MediaNotFoundError, NoAudioStreamError, NoVideoStreamError
from foleykit.testing import make_moving_square_video, write_click_track

CLICKS = [0.3, 0.9, 1.5]
MOVES = (10, 30)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    wav = write_click_track(d / "clicks.wav", CLICKS, sample_rate=44100, duration=2.0)
    video = make_moving_square_video(
        d / "square.mp4", fps=25, duration=2.0, move_frames=MOVES, audio="clicks"
    )
    silent = make_moving_square_video(d / "silent.mp4", fps=25, duration=2.0, move_frames=MOVES)
    return {"wav": wav, "video": video, "silent": silent}


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# --- extract() ----------------------------------------------------------------------------------------
def test_extract_audio_kinds_from_audio_file(media):
    e = extract(media["wav"], "energy")
    assert (e.kind, e.rate, e.num_frames) == ("energy", 100.0, 200) and e.meta["input"] == str(media["wav"])
    raw = extract(media["wav"], "energy", smooth=False)
    assert raw.values.min() == pytest.approx(np.log(1e-5), abs=1e-4)  # silence between the clicks
    assert e.values.min() < raw.values.min()  # Savitzky-Golay overshoots below the floor next to a click
    r = extract(media["wav"], "rms")
    assert (r.rate, r.num_frames) == (125.0, 250)
    for t in CLICKS:  # the envelope is loud right after each click
        assert r.values[int(t * 125) : int(t * 125) + 3].max() > 0.01
    k = extract(media["wav"], "rms_class")
    assert k.kind == "rms_class" and k.values.max() > 0 and k.values.dtype == np.int64
    o = extract(media["wav"], "onsets")
    assert (o.rate, o.num_frames) == (25.0, 50)
    assert np.all(np.abs(np.array(o.meta["times"]) - CLICKS) <= 512 / 22050)
    assert np.flatnonzero(o.values).tolist() == [int(t * 25) for t in o.meta["times"]]


def test_extract_rate_segment_and_video_audio_track(media):
    e = extract(media["wav"], "energy", rate=25)
    assert (e.rate, e.num_frames) == (25.0, 50)
    seg = extract(media["wav"], "energy", start=0.5, duration=1.0)
    assert seg.start == 0.5 and seg.num_frames == 100 and seg.meta["segment_start"] == 0.5
    o = extract(media["video"], "onsets", rate=100)  # audio kind on a video: its audio track
    assert o.num_frames == 200
    assert sorted(np.flatnonzero(o.values)) == pytest.approx([i * 4 for i in MOVES], abs=3)
    m = extract(media["video"], "motion", size=48)
    assert m.rate == 25 and np.argsort(m.values)[-2:].tolist() in ([10, 30], [30, 10])
    m100 = extract(media["video"], "motion", rate=100)
    assert m100.num_frames == 200 and m100.rate == 100


def test_extract_errors(media, tmp_path):
    with pytest.raises(ControlError, match="unknown control kind 'loudness'"):
        extract(media["wav"], "loudness")
    with pytest.raises(ControlError, match="positive"):
        extract(media["wav"], "energy", rate=0)
    with pytest.raises(ControlError, match="option.*window not supported for kind 'energy'"):
        extract(media["wav"], "energy", window=3)
    with pytest.raises(ControlError, match="option not supported for kind 'onsets'"):
        extract(media["wav"], "onsets", bogus=1)  # passed through to librosa, which refuses it
    assert extract(media["wav"], "rms", lowpass=False).meta["lowpass"] is False
    assert extract(media["wav"], "onsets", delta=100.0).values.sum() == 0
    with pytest.raises(NoAudioStreamError):
        extract(media["silent"], "energy")
    with pytest.raises(NoVideoStreamError):
        extract(media["wav"], "motion")
    with pytest.raises(MediaNotFoundError):
        extract(tmp_path / "nothing.wav", "rms")


# --- plots --------------------------------------------------------------------------------------------
def test_plots_for_every_kind(tmp_path, media):
    rng = np.random.default_rng(0)
    controls = [
        TemporalControl("rms", np.abs(rng.normal(0, 0.2, 250)), 125),
        TemporalControl("rms_class", rng.integers(0, 64, 250), 125),
        TemporalControl("onsets", (rng.random(50) < 0.1).astype(np.float32), 25, 1.0),
        TemporalControl("energy", rng.normal(-5, 1, 200), 100),
        TemporalControl("motion", rng.random(50), 25),
    ]
    for c in controls:
        out = plot_control(c, tmp_path / f"{c.kind}.png", spectrogram=rng.normal(-5, 2, (64, 200)))
        assert png_size(out) == (1000, 350)
        plain = c.plot(tmp_path / f"{c.kind}-plain.png", size=(6, 3), dpi=50)
        assert png_size(plain) == (300, 150)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".png"] * 10  # no temporary files left
    with pytest.raises(ControlError, match="PNG"):
        controls[0].plot(tmp_path / "x.jpg")
    with pytest.raises(ControlError, match="n_mels, frames"):
        controls[0].plot(tmp_path / "y.png", spectrogram=np.zeros(10))


def test_mu_law_class_axis_coordinates():
    e = rms_bin_edges()
    np.testing.assert_allclose(_class_coordinate(e[:-1]), np.arange(1, 64), atol=1e-9)  # class k starts at k
    assert float(_class_coordinate(1.0)) == pytest.approx(64.0)  # the top edge closes class 63
    assert float(_class_coordinate(0.0)) < 0  # class 0 (below rms_min) lies under the class-1 edge
    u = np.linspace(0, 63.5, 50)
    np.testing.assert_allclose(_class_coordinate(_rms_from_class_coordinate(u)), u, atol=1e-9)


# --- CLI ----------------------------------------------------------------------------------------------
def test_cli_extract_audio_file_with_plot(media, tmp_path, capsys):
    out, png = tmp_path / "onsets.csv", tmp_path / "onsets.png"
    assert (
        main(
            ["controls", "extract", str(media["wav"]), "--kind", "onsets", "-o", str(out), "--plot", str(png)]
        )
        == 0
    )
    c = TemporalControl.load(out)
    assert c.kind == "onsets" and c.rate == 25.0 and c.values.sum() == len(CLICKS)
    assert png_size(png) == (1000, 350)
    assert "onsets, 50 frames at 25 Hz" in capsys.readouterr().out
    assert out.read_text().startswith("time,onsets\n0.0,0\n0.04,0\n")


def test_cli_extract_video_motion_json_and_rate(media, tmp_path):
    out = tmp_path / "motion.json"
    assert (
        main(
            [
                "controls",
                "extract",
                str(media["video"]),
                "--kind",
                "motion",
                "--fps",
                "25",
                "--size",
                "48",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["kind"] == "motion" and doc["rate"] == 25 and doc["meta"]["frame_size"] == [64, 48]
    assert np.argsort(doc["values"])[-2:].tolist() in ([10, 30], [30, 10])
    energy = tmp_path / "e.csv"
    assert (
        main(
            [
                "controls",
                "extract",
                str(media["video"]),
                "--kind",
                "energy",
                "--rate",
                "25",
                "-o",
                str(energy),
            ]
        )
        == 0
    )
    assert TemporalControl.load(energy).rate == 25.0


def test_cli_plot_edited_file(media, tmp_path):
    out = tmp_path / "rms.csv"
    assert main(["controls", "extract", str(media["wav"]), "--kind", "rms", "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    lines[20] = lines[20].split(",")[0] + ",0.5"  # a designer's edit
    out.write_text("\n".join(lines) + "\n")
    png = tmp_path / "rms.png"
    assert main(["controls", "plot", str(out), "-o", str(png), "--audio", str(media["wav"])]) == 0
    assert png_size(png) == (1000, 350)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--kind", "energy", "-o", "{tmp}/out.txt"], "use a file name ending in .csv or .json"),
        (["--kind", "energy", "-o", "{tmp}/out.csv", "--plot", "{tmp}/p.jpg"], "ending in .png"),
        (
            ["--kind", "energy", "-o", "{tmp}/out.csv", "--fps", "10"],
            "--fps and --size apply to --kind motion",
        ),
        (["--kind", "motion", "-o", "{tmp}/out.csv"], "no video stream"),
    ],
)
def test_cli_extract_errors_exit_2_without_output(media, tmp_path, capsys, args, message):
    argv = ["controls", "extract", str(media["wav"])] + [a.format(tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("foleykit: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_cli_help_is_light_and_kinds_agree():
    import subprocess
    import sys

    from foleykit.cli import controls as cli_controls
    from foleykit.controls.extract import KINDS

    assert cli_controls.KINDS == KINDS
    code = (
        "import argparse, sys; from foleykit.cli import controls; "
        "controls.add_parser(argparse.ArgumentParser().add_subparsers()); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # registering the subcommand (foleykit --help) does not import torch


def test_cli_bad_inputs_exit_2(media, tmp_path, capsys):
    out = tmp_path / "o.csv"
    assert main(["controls", "extract", str(tmp_path / "missing.mp4"), "--kind", "rms", "-o", str(out)]) == 2
    assert main(["controls", "extract", str(media["silent"]), "--kind", "energy", "-o", str(out)]) == 2
    assert "no audio stream" in capsys.readouterr().err
    assert not out.exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("time,energy\n0.0,1\n0.01,x\n")
    assert main(["controls", "plot", str(bad), "-o", str(tmp_path / "p.png")]) == 2
    assert "line 3, column 2" in capsys.readouterr().err and not (tmp_path / "p.png").exists()
    assert main(["controls"]) == 2  # no action: help on stderr
    assert "extract" in capsys.readouterr().err
    for argv in (
        ["controls", "extract", "x.wav", "--kind", "loudness", "-o", "o.csv"],
        ["controls", "extract", "x.wav", "--kind", "rms", "-o", "o.csv", "--rate", "-3"],
        ["controls", "extract", "x.wav", "--kind", "motion", "-o", "o.csv", "--size", "2"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
