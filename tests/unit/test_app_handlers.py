"""The web app's handlers (no browser): working-folder confinement, limits, the timing edits, generation,
errors shown in the page, the queue settings, and `foleykit app` argument errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio")

from foleykit.app import AppConfig, FoleyApp
from foleykit.cli import main
from foleykit.controls import TemporalControl
from foleykit.testing import make_moving_square_video, make_not_media_file


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from foleykit.product.debug import save_debug_model

    d = tmp_path_factory.mktemp("app")
    model = save_debug_model(d / "model")
    clip = make_moving_square_video(d / "clip.mp4", duration=1.2, size=(64, 48), move_frames=(10,))
    wd = d / "wd"
    app = FoleyApp(AppConfig(model=str(model), workdir=wd, max_duration=5.0))
    inside = wd / "uploads" / "u1" / "clip.mp4"
    inside.parent.mkdir(parents=True)
    shutil.copy(clip, inside)
    return {"dir": d, "model": str(model), "app": app, "clip": clip, "inside": inside, "wd": wd}


def test_files_outside_the_working_folder_are_refused(setup):
    with pytest.raises(gr.Error, match="outside the app's working folder"):
        setup["app"].generate(str(setup["clip"]), "x", None, None, None)
    with pytest.raises(gr.Error, match="outside the app's working folder"):
        setup["app"].generate(str(setup["inside"]), "x", None, str(setup["clip"]), None)
    sneaky = setup["wd"] / "uploads" / ".." / ".." / "clip.mp4"  # resolves outside
    with pytest.raises(gr.Error, match="outside"):
        setup["app"].predict(str(sneaky), None)


def test_videos_over_the_duration_limit_are_refused(setup):
    app = FoleyApp(AppConfig(model=setup["model"], workdir=setup["wd"], max_duration=1.0))
    with pytest.raises(gr.Error, match=r"lasts 1\.2 s; this app accepts videos up to 1 s"):
        app.predict(str(setup["inside"]), None)


def test_user_errors_are_shown_in_the_page(setup):
    app = setup["app"]
    with pytest.raises(gr.Error, match="upload a video first"):
        app.generate(None, "x", None, None, None)
    with pytest.raises(gr.Error, match="predict the timing curve"):
        app.edit(None, 1.0, 0.0, 0.0)
    bad = make_not_media_file(setup["wd"] / "uploads" / "bad.mp4")
    with pytest.raises(gr.Error, match="not a media file"):
        app.generate(str(bad), "x", None, None, None)
    energy = setup["wd"] / "uploads" / "energy.csv"
    TemporalControl("energy", np.zeros(50, np.float32), 100.0).save(energy)
    with pytest.raises(gr.Error, match="holds 'energy'"):
        app.upload_timing(str(energy), str(setup["inside"]), None)
    with pytest.raises(gr.Error, match="timing scale must be >= 0"):
        app.generate(str(setup["inside"]), "x", None, None, None, -1.0)


def test_predict_edit_upload_and_generate(setup):
    app, video = setup["app"], str(setup["inside"])
    png, csv, state = app.predict(video, None)
    wd = setup["wd"].resolve()
    for p in (png, csv, state["base"], state["dir"]):
        assert str(p).startswith(str(wd))
    base = TemporalControl.load(state["base"])
    assert base.kind == "rms" and base.duration == pytest.approx(1.2)
    _png2, csv2, state = app.edit(state, 0.5, 0.2, 0.05)
    np.testing.assert_allclose(
        TemporalControl.load(csv2).values, base.scale(0.5).shift(0.2).smooth(0.05).values, atol=1e-6
    )
    edited = setup["wd"] / "uploads" / "edited.csv"
    base.replace(values=np.full(base.num_frames, 0.3, np.float32)).save(edited)
    _, csv3, state = app.upload_timing(str(edited), video, state)
    assert np.allclose(TemporalControl.load(csv3).values, 0.3)
    mp4, files, status, plot, timing, state = app.generate(
        video, "glass breaking", "", None, state, 2.0, 0.0, 0.0, 0.8, 3, 2.5, 9, 1.0
    )
    from foleykit.media import probe

    info = probe(mp4)
    assert info.has_video and info.has_audio and info.audio_duration == pytest.approx(1.2, abs=1e-3)
    assert [p.rsplit(".", 1)[-1] for p in files] == ["mp4", "wav", "csv"]
    assert all(str(p).startswith(str(wd)) for p in files + [plot, timing])
    assert np.allclose(TemporalControl.load(timing).values, 0.6)  # the uploaded 0.3 curve, scaled by 2
    assert "seed 9" in status and "3 steps" in status and "guidance 2.5" in status
    side = json.loads(Path(files[0] + ".json").read_text())  # result.mp4 -> result.mp4.json
    assert side["parameters"]["follow_envelope"] == 1.0


def test_the_page_queues_generations_one_at_a_time(setup, monkeypatch):
    from foleykit.app import build_app

    monkeypatch.setenv(
        "GRADIO_TEMP_DIR", "unset"
    )  # restored after the test; build_app moves it into the workdir
    demo = build_app(AppConfig(model=setup["model"], workdir=setup["wd"], max_queue=7), app=setup["app"])
    try:
        import os

        assert os.environ["GRADIO_TEMP_DIR"] == str(setup["wd"].resolve() / "uploads")
        fns = {f.name: f for f in demo.fns.values()}
        for name in ("generate", "predict", "upload_timing"):
            assert fns[name].concurrency_limit == 1 and fns[name].concurrency_id == "model"
        assert demo._queue.max_size == 7
        ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
        assert {
            "video_in",
            "prompt",
            "reference",
            "predict_btn",
            "timing_upload",
            "generate_btn",
            "result_video",
            "downloads",
            "timing_plot",
            "control_weight",
            "steps",
            "guidance",
            "seed",
            "follow_envelope",
        } <= ids
    finally:
        demo.close()


def test_app_command_refuses_unknown_models_and_bad_ports(setup, capsys, tmp_path):
    assert main(["app", "--model", "no-such-model", "--workdir", str(tmp_path / "w")]) == 2
    assert "was not found locally" in capsys.readouterr().err
    assert main(["app", "--model", setup["model"], "--port", "70000", "--workdir", str(tmp_path / "w")]) == 2
    assert "65535" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
