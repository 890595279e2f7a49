"""Product-side speed pieces: thread count under load, inference options from the environment, the exit hook,
video decoded once per window, and the librosa-free resampler of the media layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from foleykit.errors import ConfigError
from foleykit.product import runtime


# --- threads -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cores", "busy", "expected"),
    [
        (2, None, 2),  # unknown load: all cores
        (2, 0.0, 2),  # idle
        (2, 0.2, 2),  # a little background work: 2 - 0.2 + 0.25 = 2.05 -> 2
        (2, 0.5, 1),  # half a core busy: 1.75 -> 1
        (2, 5.0, 1),  # oversubscribed: never below one thread
        (8, 3.0, 5),  # 8 - 3 + 0.25 = 5.25 -> 5
        (1, 0.0, 1),
    ],
)
def test_choose_num_threads(cores, busy, expected):
    assert runtime.choose_num_threads(cores, busy, env={}) == expected


def test_choose_num_threads_environment_override():
    assert runtime.choose_num_threads(2, 5.0, env={"FOLEYKIT_NUM_THREADS": "3"}) == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(ConfigError, match="FOLEYKIT_NUM_THREADS"):
            runtime.choose_num_threads(2, 0.0, env={"FOLEYKIT_NUM_THREADS": bad})


def test_busy_cpus_from_proc_stat(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n")

    def sleep(_):  # the machine moves on while the caller sleeps: 300 jiffies, 100 of them idle
        stat.write_text("cpu  200 0 200 900 0 0 0 0 0 0\n")

    monkeypatch.setattr(runtime.time, "sleep", sleep)
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
    assert runtime.busy_cpus(stat_path=str(stat)) == pytest.approx(2 * (1 - 100 / 300))


def test_busy_cpus_falls_back_to_the_load_average(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (1.5, 1.0, 0.5))
    assert runtime.busy_cpus(interval=0, stat_path=str(tmp_path / "missing")) == 1.5
    frozen = tmp_path / "stat"
    frozen.write_text("cpu  1 0 1 8 0 0 0 0\n")  # no time passed between the samples
    assert runtime.busy_cpus(interval=0, stat_path=str(frozen)) == 1.5


def test_configure_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(runtime, "_BASE_THREADS", [2])
    try:
        assert runtime.configure_threads(env={}, busy=0.0) == 2 and torch.get_num_threads() == 2
        assert runtime.configure_threads(env={}, busy=1.5) == 1 and torch.get_num_threads() == 1
        assert runtime.configure_threads(env={}, busy=0.0) == 2  # back up when the machine is idle again
        assert runtime.configure_threads(env={"FOLEYKIT_NUM_THREADS": "1"}, busy=0.0) == 1
        torch.set_num_threads(2)
        assert runtime.configure_threads(env={"OMP_NUM_THREADS": "2"}, busy=5.0) == 2  # the user's setting
    finally:
        torch.set_num_threads(before)


def test_gc_is_paused_while_loading_then_the_survivors_are_frozen():
    import gc

    gc.unfreeze()
    try:
        with runtime.gc_paused_while_loading():
            assert not gc.isenabled()
            kept = [[i] for i in range(1000)]  # objects created while loading
        assert gc.isenabled() and gc.get_freeze_count() >= len(kept)
        gc.disable()  # a caller that had it off keeps it off
        with runtime.gc_paused_while_loading():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_cli_registers_the_gc_exit_hook_once(monkeypatch):
    import atexit
    import gc

    registered = []
    monkeypatch.setattr(runtime, "_EXIT_HOOK", [])
    monkeypatch.setattr(atexit, "register", registered.append)
    from foleykit.cli import main

    assert main(["models", "list"]) == 0
    assert main(["models", "list"]) == 0
    assert registered == [gc.freeze]


# --- inference options from the environment ------------------------------------------------------------
class _Recorder:
    def set_inference_options(self, **kw):
        self.kw = kw
        return self


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"precision": "auto", "compile": False}),
        ({"FOLEYKIT_PRECISION": "BF16"}, {"precision": "bf16", "compile": False}),
        ({"FOLEYKIT_PRECISION": "fp32", "FOLEYKIT_COMPILE": "1"}, {"precision": "fp32", "compile": True}),
        ({"FOLEYKIT_COMPILE": "no"}, {"precision": "auto", "compile": False}),
    ],
)
def test_apply_inference_env(env, expected):
    assert runtime.apply_inference_env(_Recorder(), env=env).kw == expected


def test_apply_inference_env_errors():
    with pytest.raises(ConfigError, match="FOLEYKIT_COMPILE"):
        runtime.apply_inference_env(_Recorder(), env={"FOLEYKIT_COMPILE": "maybe"})
    from foleykit.pipelines.fast import FastInferenceMixin

    class Pipe(FastInferenceMixin):
        device = torch.device("cpu")
        denoiser = torch.nn.Linear(1, 1)

    with pytest.raises(ConfigError, match="precision must be one of"):
        runtime.apply_inference_env(Pipe(), env={"FOLEYKIT_PRECISION": "fp8"})
    assert runtime.apply_inference_env(Pipe(), env={"FOLEYKIT_PRECISION": "bf16"}).precision == "bf16"


# --- one decode per window -----------------------------------------------------------------------------
def test_window_features_decode_and_encode_once_per_window(tmp_path, monkeypatch):
    import foleykit.media
    from foleykit.product.inputs import predict_over_windows, window_features
    from foleykit.product.windows import Window
    from foleykit.recipes import build_pipeline
    from foleykit.testing import make_moving_square_video

    torch.set_num_threads(1)
    pipe = build_pipeline("foleykit_demo", size="debug")
    video = make_moving_square_video(tmp_path / "v.mp4", duration=1.8, size=(32, 32), move_frames=(6, 30))
    reads = []
    real = foleykit.media.read_video
    monkeypatch.setattr(foleykit.media, "read_video", lambda *a, **k: reads.append(k) or real(*a, **k))
    encodes = []
    real_encode = pipe.video_encoder.encode
    monkeypatch.setattr(pipe.video_encoder, "encode", lambda f: encodes.append(len(f)) or real_encode(f))
    wins = [
        Window(start=0.0, end=1.0, join_in="start", join_out="overlap"),
        Window(start=0.8, end=1.8, join_in="overlap", join_out="end"),
    ]
    video_timings: dict[str, float] = {}
    feats = window_features(pipe, video, video_timings)
    timings: dict[str, float] = {}
    controls = predict_over_windows(pipe, video, wins, features=feats, timings=timings)
    assert encodes == [25, 25] and [(k["start"], k["duration"]) for k in reads] == [(0.0, 1.0), (0.8, 1.0)]
    assert all(k["size"] == pipe.video_encoder.input_size for k in reads)  # decoded at the encoder's size
    f0 = feats(wins[0])
    assert f0 is feats(wins[0]) and f0.shape == (1, 25, pipe.video_encoder.dim)
    assert encodes == [25, 25] and len(reads) == 2  # cached: nothing decoded again
    assert set(video_timings) == {"read_video", "video_features"} and min(video_timings.values()) > 0
    assert timings["timing_prediction"] > 0
    assert controls["rms"].duration == pytest.approx(1.8, abs=0.01)
    # the same controls as without the shared cache
    again = predict_over_windows(pipe, video, wins)
    np.testing.assert_array_equal(again["rms"].values, controls["rms"].values)


def test_generation_records_precision_and_per_stage_timings(tmp_path):
    from foleykit.product import GenerateOptions, generate_audio, write_outputs
    from foleykit.product.debug import save_debug_model
    from foleykit.product.runtime import clear_model_cache, load_model
    from foleykit.testing import make_moving_square_video

    model = save_debug_model(tmp_path / "model")
    video = make_moving_square_video(tmp_path / "v.mp4", duration=1.0, size=(32, 32), move_frames=(6, 18))
    try:
        pipe = load_model(model)
        opts = GenerateOptions(prompt="x", seed=0)
        result = generate_audio(pipe, video, opts)
    finally:
        clear_model_cache()
    assert result.precision == "fp32"
    t = result.timings
    for key in (
        "read_video",
        "video_features",
        "timing_prediction",
        "controls",
        "conditions",
        "denoise",
        "decode",
        "total",
    ):
        assert key in t and t[key] >= 0, key
    parts = sum(v for k, v in t.items() if k not in ("total", "decode_vae", "decode_vocoder"))
    assert parts <= t["total"] + 1e-6  # no stage counted twice
    written = write_outputs(result, video, tmp_path / "o.wav", opts)
    import json

    assert json.loads(written["sidecar"].read_text())["precision"] == "fp32"


# --- resampling without librosa ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "sr0", "sr1"),
    [((16000,), 16000, 48000), ((2, 4411), 44100, 16000), ((1, 12345), 22050, 16000), ((3,), 16000, 48000)],
)
def test_resample_equals_librosa_soxr_hq(shape, sr0, sr1):
    import librosa

    from foleykit.media._core import _resample

    y = (np.random.default_rng(0).standard_normal(shape) * 0.3).astype(np.float32)
    expected = librosa.resample(y, orig_sr=sr0, target_sr=sr1, res_type="soxr_hq")
    got = _resample(y, sr0, sr1)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_resample_edge_cases():
    from foleykit.media._core import _resample

    y = np.ones(10, np.float32)
    assert _resample(y, 16000, 16000) is y
    assert _resample(np.zeros(0, np.float32), 16000, 48000).shape == (0,)
    assert _resample(np.zeros((2, 0), np.float32), 16000, 48000).shape == (2, 0)
    with pytest.raises(ValueError, match="finite"):
        _resample(np.array([0.0, np.nan], np.float32), 16000, 48000)
    with pytest.raises(ValueError, match="floating point"):
        _resample(np.ones(4, np.int16), 16000, 48000)
