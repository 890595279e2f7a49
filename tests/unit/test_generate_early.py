"""The first window's video features computed in a second process during the command's start-up
(``foleykit.product.early``): used only when they are exactly what the loaded model computes, never a
different result, and a failed or mismatched child falls back to the normal path."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the early child is forked (Linux)"
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from foleykit.product.debug import save_debug_model
    from foleykit.testing import make_moving_square_video

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("early")
    model = save_debug_model(d / "model", window=1.0)
    video = make_moving_square_video(d / "v.mp4", duration=1.6, size=(48, 48), move_frames=(6, 30))
    return model, video


@pytest.fixture()
def pipe(setup):
    from foleykit.product.runtime import clear_model_cache, load_model

    yield load_model(setup[0])
    clear_model_cache()


def _opts(**kw):
    from foleykit.product import GenerateOptions

    return GenerateOptions(seed=0, **kw)


def _both_ways(monkeypatch, run):
    """``run(flag)`` with the early features on ("1") and off ("0"): ``{flag: (its result, the frame counts this
    process encoded)}``."""
    import foleykit.vision.scene
    from foleykit.product.early import ENV

    calls = []
    real = foleykit.vision.scene.SceneFeatures.encode_clip
    monkeypatch.setattr(
        foleykit.vision.scene.SceneFeatures,
        "encode_clip",
        lambda self, frames, **kw: calls.append(len(frames)) or real(self, frames, **kw),
    )
    outs = {}
    for flag in ("1", "0"):
        monkeypatch.setenv(ENV, flag)
        calls.clear()
        outs[flag] = (run(flag), list(calls))
    return outs


def _windows(pipe, video):
    from foleykit.product.generate import plan_for

    return plan_for(pipe, video, _opts())[0]


def test_early_features_are_what_the_model_computes(setup, pipe):
    from foleykit.product.early import EarlyFeatures

    model, video = setup
    early = EarlyFeatures.start(model, video, _opts())
    assert early is not None
    first = _windows(pipe, video)[0]  # a 1.6 s video, a 1 s model: two windows
    try:
        got = early.take(pipe, video, first.start, first.duration)
    finally:
        early.close()
    want = pipe.encode_video(video, start=first.start, duration=first.duration)[0].numpy()
    assert got is not None and got.dtype == np.float32 and len(got) > 0
    np.testing.assert_array_equal(got, want)
    assert set(early.timings) == {"read_video", "video_features"} and early.waited >= 0
    assert early.take(pipe, video, first.start, first.duration) is None  # once only


@pytest.mark.parametrize(
    "change",
    ["window", "encoder settings", "frame rate"],
)
def test_early_features_are_refused_when_anything_differs(setup, pipe, monkeypatch, change):
    from foleykit.product.early import EarlyFeatures

    model, video = setup
    early = EarlyFeatures.start(model, video, _opts())
    first = _windows(pipe, video)[0]
    start, duration = first.start, first.duration
    if change == "window":
        start += 0.04
    elif change == "encoder settings":
        monkeypatch.setattr(pipe.video_encoder, "pose_every", pipe.video_encoder.pose_every + 1)
    else:
        import dataclasses

        monkeypatch.setattr(pipe, "seq", dataclasses.replace(pipe.seq, video_fps=pipe.seq.video_fps * 2))
    try:
        assert early.take(pipe, video, start, duration) is None
        assert not early._process.is_alive()  # stopped, not left running
    finally:
        early.close()


def test_early_features_start_only_where_they_can_be_used(setup, tmp_path, monkeypatch):
    from foleykit.product.debug import save_debug_model
    from foleykit.product.early import ENV, EarlyFeatures

    model, video = setup
    monkeypatch.setenv(ENV, "0")
    assert EarlyFeatures.start(model, video, _opts()) is None  # turned off
    monkeypatch.delenv(ENV)
    assert EarlyFeatures.start(model, video, _opts(regenerate=(0.2, 0.4), previous=str(video))) is None
    assert EarlyFeatures.start(model, tmp_path / "missing.mp4", _opts()) is None  # the normal path says why
    other = save_debug_model(tmp_path / "other", recipe="sta_v2a")  # another video encoder
    cfg = json.loads((other / "video_encoder" / "config.json").read_text())
    assert cfg["_foleykit_spec"].get("registry") != ["video_encoder", "scene"]
    assert EarlyFeatures.start(other, video, _opts()) is None
    import multiprocessing.process

    # inside a daemonic worker process, which may not have children: nothing is started, no error
    monkeypatch.setitem(multiprocessing.process.current_process()._config, "daemon", True)
    assert EarlyFeatures.start(model, video, _opts()) is None


def test_a_failed_child_falls_back_to_the_normal_path(setup, pipe, monkeypatch):
    import foleykit.vision.scene
    from foleykit.product.early import EarlyFeatures
    from foleykit.product.inputs import window_features

    model, video = setup

    def broken(self, frames, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(foleykit.vision.scene.SceneFeatures, "encode_clip", broken)
    early = EarlyFeatures.start(model, video, _opts())  # the forked child inherits the broken method
    monkeypatch.undo()
    first = _windows(pipe, video)[0]
    feats = window_features(pipe, video, {}, early=early)
    try:
        got = feats(first)  # the child failed: computed here instead
    finally:
        early.close()
    want = pipe.encode_video(video, start=first.start, duration=first.duration)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_generate_command_gives_the_same_result_with_and_without_early_features(setup, tmp_path, monkeypatch):
    from foleykit.cli import main
    from foleykit.media import read_audio

    model, video = setup

    def run(flag):
        out = tmp_path / f"o{flag}.wav"
        assert main(["generate", str(video), "-o", str(out), "--model", str(model), "--seed", "3"]) == 0
        return read_audio(out, sample_rate=16000)

    outs = _both_ways(monkeypatch, run)
    # two windows: with early features this process encodes only the second one
    assert len(outs["0"][1]) == 2 and outs["1"][1] == outs["0"][1][1:]
    np.testing.assert_array_equal(outs["1"][0], outs["0"][0])


def test_the_command_measures_busy_cpus_before_it_starts_its_own_child(setup, tmp_path, monkeypatch):
    """The child is this command's own work: counted as other work, it would cost torch a thread."""
    from foleykit.cli import main
    from foleykit.product import runtime
    from foleykit.product.early import EarlyFeatures

    model, video = setup
    events, seen = [], []
    monkeypatch.setattr(runtime, "busy_cpus", lambda **k: events.append("busy") or 0.25)
    real_start = EarlyFeatures.start
    monkeypatch.setattr(
        EarlyFeatures,
        "start",
        classmethod(lambda cls, *a, **k: events.append("start") or real_start(*a, **k)),
    )
    monkeypatch.setattr(runtime, "configure_threads", lambda busy=None, **k: seen.append(busy) or 1)
    out = tmp_path / "o.wav"
    assert main(["generate", str(video), "-o", str(out), "--model", str(model), "--threads", "auto"]) == 0
    assert events == ["busy", "start"] and seen == [0.25]


def test_a_failed_model_load_stops_the_child(setup, tmp_path, capsys):
    import multiprocessing
    import shutil

    from foleykit.cli import main

    model, video = setup
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    assert main(["generate", str(video), "-o", str(tmp_path / "o.wav"), "--model", str(broken)]) == 2
    assert "foleykit: error:" in capsys.readouterr().err
    assert not [p for p in multiprocessing.active_children() if p.name == "foleykit-early-video"]
    assert not list(tmp_path.glob("o.wav*"))  # nothing written


def test_a_stop_before_the_child_resets_its_handlers_ends_it_quietly(setup, monkeypatch):
    """The command's SIGTERM handler raises KeyboardInterrupt; the forked child must never run it (it would
    raise in the child before multiprocessing guards anything, and the child could go on as a second copy of
    the command). A stop sent while the child has not yet reached its own handlers ends it by the signal."""
    import signal
    import time

    import foleykit.product.early as E
    from foleykit.cli.generate import _terminate_like_interrupt

    model, video = setup
    real = E._child
    monkeypatch.setattr(E, "_child", lambda conn, job: time.sleep(1.0) or real(conn, job))
    with _terminate_like_interrupt():
        early = E.EarlyFeatures.start(model, video, _opts())
        time.sleep(0.3)  # the child sleeps before its own handlers are set
        early.close()  # SIGTERM
    # ended by the signal itself (the inherited handler would have raised KeyboardInterrupt: exit code 1)
    assert early._process.exitcode == -signal.SIGTERM


def test_controls_predict_uses_the_early_features_and_writes_the_same_curve(setup, tmp_path, monkeypatch):
    from foleykit.cli import main

    model, video = setup

    def run(flag):
        out = tmp_path / f"curve{flag}.csv"
        assert main(["controls", "predict", str(video), "-o", str(out), "--model", str(model)]) == 0
        return out.read_text()

    outs = _both_ways(monkeypatch, run)
    assert outs["0"][0] == outs["1"][0]
    assert len(outs["0"][1]) == 2 and outs["1"][1] == outs["0"][1][1:]  # the first window came from the child
