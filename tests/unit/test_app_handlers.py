"""The web app's handlers (no browser): working-folder confinement, limits, the timing edits, generation,
errors shown in the page, the queue settings, and `foleykit app` argument errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio")

from foleykit.app import AppConfig, FoleyApp
from foleykit.cli import main
from foleykit.controls import TemporalControl
from foleykit.testing import make_moving_square_video, make_not_media_file, write_click_track


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
    start_from = setup["wd"] / "uploads" / "start.wav"
    write_click_track(start_from, [0.2, 0.7], sample_rate=16000, duration=1.0)
    *_, files, _status, _plot, _timing, state = app.generate(
        video, "", "", None, state, 1.0, 0.0, 0.0, 1.0, 2, None, 4, None, str(start_from), 0.6
    )
    side = json.loads(Path(files[0] + ".json").read_text())
    assert side["parameters"]["init_strength"] == 0.6 and side["inputs"]["init_audio"]["sha256"]
    with pytest.raises(gr.Error, match="outside the app's working folder"):
        app.generate(
            video, "", "", None, state, 1.0, 0.0, 0.0, 1.0, 2, None, 4, None, str(setup["clip"]), 0.6
        )


def test_the_expansion_slider_decodes_the_predicted_curve(setup, varying_rms_mapper):
    """The page's valley expansion: predict decodes with it, generate re-predicts when it changed (for a
    predicted curve, not an uploaded one), and the model's own value counts as the default."""
    app, video = setup["app"], str(setup["inside"])
    assert app.expansion_default() == app.pipe.predictors["rms"].expansion == 1.0
    _, csv1, state = app.predict(video, None, 1.0, 0.0, 0.0, 1.0)
    assert state["expansion"] is None  # the model's own
    own = TemporalControl.load(csv1).values
    _, csv10, state = app.predict(video, state, 1.0, 0.0, 0.0, 10.0)
    deep = TemporalControl.load(csv10).values
    assert state["expansion"] == 10.0 and (deep <= own + 1e-7).all() and (deep < own - 1e-6).any()
    *_, timing, state = app.generate(
        video, "", "", None, state, 1.0, 0.0, 0.0, 1.0, 2, None, 1, None, None, None, 1.0
    )
    np.testing.assert_allclose(TemporalControl.load(timing).values, own, atol=1e-6)  # re-predicted at 1
    *_, timing, state = app.generate(
        video, "", "", None, state, 1.0, 0.0, 0.0, 1.0, 2, None, 1, None, None, None, 10.0
    )
    np.testing.assert_allclose(TemporalControl.load(timing).values, deep, atol=1e-6)
    flat = setup["wd"] / "uploads" / "flat.csv"
    TemporalControl("rms", np.full(150, 0.2, np.float32), 125.0).save(flat)
    *_, state = app.upload_timing(str(flat), video, state)
    *_, timing, state = app.generate(
        video, "", "", None, state, 1.0, 0.0, 0.0, 1.0, 2, None, 1, None, None, None, 1.0
    )
    assert np.allclose(TemporalControl.load(timing).values, 0.2)  # an uploaded curve is kept as it is


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
            "init_audio",
            "init_strength",
            "expansion",
        } <= ids
    finally:
        demo.close()


def test_app_command_refuses_unknown_models_and_bad_ports(setup, capsys, tmp_path):
    assert main(["app", "--model", "no-such-model", "--workdir", str(tmp_path / "w")]) == 2
    assert "was not found locally" in capsys.readouterr().err
    assert main(["app", "--model", setup["model"], "--port", "70000", "--workdir", str(tmp_path / "w")]) == 2
    assert "65535" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


# --- uploads: size, type by content, names ------------------------------------------------------------------
def _upload(setup, name: str, source: Path | None = None, data: bytes | None = None) -> Path:
    """A file in the app's upload folder under the client's ``name`` (copied from ``source`` or ``data``)."""
    p = setup["wd"] / "uploads" / "client" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copy(source, p)
    else:
        p.write_bytes(data or b"")
    return p


def test_uploads_over_the_size_limit_are_refused(setup):
    app = FoleyApp(AppConfig(model=setup["model"], workdir=setup["wd"], max_upload_mb=1))
    big = _upload(setup, "big.mp4", data=b"\0" * ((1 << 20) + 1))
    with pytest.raises(gr.Error, match=r"1\.0 MB; this app accepts uploads up to 1 MB"):
        app.predict(str(big), None)
    with pytest.raises(gr.Error, match="up to 1 MB"):
        app.upload_timing(str(big), None, None)


def test_uploads_are_judged_by_content_and_used_under_the_app_s_names(setup):
    app = setup["app"]
    # a real video whose client name says otherwise (and holds characters a path should not)
    odd = _upload(setup, "my clip; rm -rf ~ $(x).wav", source=setup["clip"])
    _png, _csv, state = app.predict(str(odd), None)
    used = Path(state["video"])
    assert used.parent == Path(state["dir"]) / "inputs" and re.fullmatch(
        r"video-[0-9a-f]{12}\.mp4", used.name
    )
    assert used.read_bytes() == setup["clip"].read_bytes()
    # text named like a video, a silent video as the reference sound
    fake = _upload(setup, "fake.mp4", data=b"just some text, not a video\n" * 20)
    with pytest.raises(gr.Error, match="fake.mp4: not a media file"):
        app.predict(str(fake), None)
    with pytest.raises(gr.Error, match="reference sound has no sound"):
        app.generate(str(setup["inside"]), "x", None, str(setup["inside"]), None)
    # a timing file: binary refused whatever its name; JSON accepted under a .csv name
    binary = _upload(setup, "curve.csv", data=bytes(range(256)) * 8)
    with pytest.raises(gr.Error, match="not a text file"):
        app.upload_timing(str(binary), None, None)
    rms = TemporalControl("rms", np.full(120, 0.2, np.float32), 100.0)
    rms.save(setup["dir"] / "curve.json")
    as_csv = _upload(setup, "curve-really-json.csv", source=setup["dir"] / "curve.json")
    _, csv, state = app.upload_timing(str(as_csv), None, None)
    assert np.allclose(TemporalControl.load(csv).values, 0.2)
    assert re.fullmatch(r"timing-[0-9a-f]{12}\.json", next((Path(state["dir"]) / "inputs").iterdir()).name)


def test_client_state_cannot_point_outside_the_sessions(setup, tmp_path):
    app, outside = setup["app"], tmp_path / "elsewhere"
    outside.mkdir()
    _png, _csv, state = app.predict(str(setup["inside"]), {"dir": str(outside), "base": None, "count": 0})
    assert Path(state["dir"]).parent == setup["wd"].resolve() / "results" and not any(outside.iterdir())
    secret = tmp_path / "secret.json"
    TemporalControl("rms", np.zeros(10, np.float32), 100.0).save(secret)
    with pytest.raises(gr.Error, match="predict the timing curve"):
        app.edit(dict(state, base=str(secret)), 1.0, 0.0, 0.0)


# --- messages and the log ------------------------------------------------------------------------------------
def test_user_errors_name_no_server_path_and_log_one_line(setup, caplog):
    app = setup["app"]
    bad = _upload(setup, "broken.mp4", data=b"\x00\x01 not media" * 50)
    with caplog.at_level("INFO", logger="foleykit.app"), pytest.raises(gr.Error) as info:
        app.predict(str(bad), None)
    message = info.value.message
    assert "broken.mp4" in message and "not a media file" in message
    for root in (str(setup["wd"]), str(setup["wd"].resolve()), str(setup["dir"]), "/tmp"):
        assert root not in message
    assert info.value.print_exception is False  # Gradio prints no traceback for it
    records = [r for r in caplog.records if r.name == "foleykit.app"]
    assert len(records) == 1 and records[0].levelname == "WARNING" and records[0].exc_info is None
    assert str(setup["wd"].resolve()) not in records[0].getMessage()


def test_unexpected_errors_log_a_traceback_and_show_a_generic_message(setup, caplog, monkeypatch):
    from foleykit.product import generate

    def boom(*args, **kwargs):
        raise RuntimeError("internal failure in /srv/secret/module.py")

    monkeypatch.setattr(generate, "predict_timing", boom)
    with caplog.at_level("INFO", logger="foleykit.app"), pytest.raises(gr.Error) as info:
        setup["app"].predict(str(setup["inside"]), None)
    assert "/srv/secret" not in info.value.message and "log has the details" in info.value.message
    records = [r for r in caplog.records if r.name == "foleykit.app"]
    assert len(records) == 1 and records[0].levelname == "ERROR" and records[0].exc_info is not None


def test_public_message_keeps_names_and_drops_folders():
    from foleykit.app.uploads import public_message

    assert public_message("/srv/app/uploads/ab12/clip.mp4: not a media file") == "clip.mp4: not a media file"
    assert (
        public_message("see https://hf.co/x/y and C:\\Users\\me\\a.wav") == "see https://hf.co/x/y and a.wav"
    )
    assert public_message("scale must be >= 0 (got -1/2)") == "scale must be >= 0 (got -1/2)"


# --- guidance: the app's default is the model's effective scale ----------------------------------------------
def test_guidance_default_is_the_effective_scale_and_matches_the_cli(setup, tmp_path):
    from foleykit.app.app import _defaults
    from foleykit.product.debug import save_debug_model

    model = save_debug_model(tmp_path / "rewas", recipe="rewas")  # stores w = 3 in the 1 + w form
    app = FoleyApp(AppConfig(model=str(model), workdir=setup["wd"], max_duration=5.0))
    scale = _defaults(app)["guidance"]
    assert scale == app.pipe.guidance()[0] == 4.0
    mp4, _files, status, *_ = app.generate(
        str(setup["inside"]), "rain", "", None, None, 1.0, 0.0, 0.0, 1.0, 2, scale, 5, 0.0
    )
    app_side = json.loads(Path(mp4 + ".json").read_text())["parameters"]
    out = tmp_path / "cli.wav"
    assert main(["generate", str(setup["inside"]), "-o", str(out), "--model", str(model), "--steps", "2",
                 "--seed", "5", "--prompt", "rain"]) == 0  # fmt: skip
    cli_side = json.loads(Path(str(out) + ".json").read_text())["parameters"]
    for side in (app_side, cli_side):
        assert side["guidance"] == 4.0 and side["guidance_origin"].startswith("model default")
    assert "guidance 4" in status
