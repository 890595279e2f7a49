"""Headroom instead of a clamp: a generated soundtrack whose peak passes -1 dBFS is scaled down as a whole
(``foleykit.media.headroom_gain``), so loud transients keep their shape; the product layer gives the assembled
soundtrack of several windows one gain, so the windows keep their relative levels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from foleykit.media import PEAK_CEILING, headroom_gain

SR = 16000


def test_ceiling_is_minus_one_dbfs():
    assert 20 * np.log10(PEAK_CEILING) == pytest.approx(-1.0)


def test_gain_brings_the_peak_to_the_ceiling():
    x = np.zeros(4000, np.float32)
    x[1000] = -2.5  # one transient 8 dB over full scale (negative: the peak is of |x|)
    assert headroom_gain(x) == pytest.approx(PEAK_CEILING / 2.5)
    assert headroom_gain(x, 0.5) == pytest.approx(0.2)
    assert headroom_gain(np.full((2, 10), 1.5, np.float32)) == pytest.approx(PEAK_CEILING / 1.5)  # (C, T)


def test_quiet_waveform_is_never_boosted():
    assert headroom_gain(np.linspace(-0.5, 0.5, 100, dtype=np.float32)) == 1.0
    assert headroom_gain(np.full(10, PEAK_CEILING, np.float32)) == 1.0  # at the ceiling: left alone
    assert headroom_gain(np.zeros(10, np.float32)) == 1.0  # silence: no division by zero
    assert headroom_gain(np.zeros(0, np.float32)) == 1.0


@pytest.mark.parametrize("ceiling", [0.0, -0.5, 1.5])
def test_ceiling_out_of_range(ceiling):
    with pytest.raises(ValueError, match="ceiling"):
        headroom_gain(np.ones(4, np.float32), ceiling)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_an_error(bad):
    with pytest.raises(ValueError, match="NaN"):
        headroom_gain(np.array([0.1, bad], np.float32))


# --- the pipeline and the product ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipe():
    from foleykit.recipes import build_pipeline

    torch.set_num_threads(1)
    return build_pipeline("foleykit_demo", size="debug")


def _loud_decoder(pipe, monkeypatch, level_at):
    """Replace the decoder's output by a tone whose level per window start is ``level_at(start)``."""
    calls = []

    def decode(latents, timings):
        n = pipe.seq.num_samples * 2  # untrimmed, longer than any window
        level = level_at(len(calls))
        calls.append(level)
        t = np.arange(n) / pipe.seq.sample_rate
        return torch.from_numpy((level * np.sin(2 * np.pi * 200 * t)).astype(np.float32))[None]

    monkeypatch.setattr(pipe, "_decode_timed", decode)
    return calls


def test_pipeline_scales_a_loud_clip_to_the_ceiling(pipe, monkeypatch):
    _loud_decoder(pipe, monkeypatch, lambda k: 3.0)
    frames = np.zeros((25, 32, 32, 3), np.uint8)
    out = pipe(frames=frames, num_inference_steps=1, seed=0)
    assert np.max(np.abs(out.audio)) == pytest.approx(PEAK_CEILING, rel=1e-5)
    assert out.gain == pytest.approx(PEAK_CEILING / 3.0, rel=1e-3)
    # a sine, not a square: the samples near the peak are not flattened
    assert np.mean(np.abs(out.audio) > 0.99 * PEAK_CEILING) < 0.1
    raw = pipe(frames=frames, num_inference_steps=1, seed=0, peak_ceiling=None)
    assert raw.gain == 1.0
    assert np.max(np.abs(raw.audio)) == pytest.approx(3.0, rel=1e-3)
    np.testing.assert_allclose(out.audio, raw.audio * out.gain, rtol=1e-5, atol=1e-6)  # one factor for all


def test_regeneration_measures_the_region_only(pipe, monkeypatch, tmp_path):
    """A --regenerate run writes only the region: a loud transient in the context window before it (which is
    discarded) must not turn the regenerated region down, and the kept audio stays as it was."""
    from foleykit.media import write_audio
    from foleykit.product import GenerateOptions, generate_audio
    from foleykit.testing import make_moving_square_video

    video = make_moving_square_video(tmp_path / "long.mp4", duration=2.2, size=(32, 32), move_frames=(6, 40))
    sr = pipe.seq.sample_rate
    previous = 0.1 * np.sin(2 * np.pi * 300 * np.arange(int(2.2 * sr)) / sr).astype(np.float32)
    write_audio(tmp_path / "previous.wav", previous, sr, subtype="FLOAT")
    calls = []

    def decode(latents, timings):
        y = np.full(pipe.seq.num_samples * 2, 0.5, np.float32)
        if not calls:
            y[0] = 3.0  # at the first window's start: context before the region
        calls.append(1)
        return torch.from_numpy(y)[None]

    monkeypatch.setattr(pipe, "_decode_timed", decode)
    opts = GenerateOptions(seed=0, steps=1, regenerate=(1.2, 1.8), previous=str(tmp_path / "previous.wav"))
    result = generate_audio(pipe, video, opts)
    assert result.windows[0].start < 1.2  # the spike lies in the context, outside the region
    assert result.gain == 1.0
    i0, i1 = int(1.3 * sr), int(1.7 * sr)  # inside the region, past its crossfade
    np.testing.assert_allclose(result.audio[i0:i1], 0.5, rtol=1e-5)
    np.testing.assert_array_equal(result.audio[: int(1.0 * sr)], previous[: int(1.0 * sr)])


def test_windows_of_a_long_video_get_one_gain(pipe, monkeypatch, tmp_path):
    """The first window is 3x louder than the others and over full scale: the whole soundtrack is scaled by
    one factor, so the later windows stay 3x quieter than the first (per-window scaling would equalise them)."""
    from foleykit.product import GenerateOptions, generate_audio, write_outputs
    from foleykit.testing import make_moving_square_video

    video = make_moving_square_video(tmp_path / "long.mp4", duration=2.2, size=(32, 32), move_frames=(6, 40))
    _loud_decoder(pipe, monkeypatch, lambda k: 3.0 if k == 0 else 1.0)
    result = generate_audio(pipe, video, GenerateOptions(seed=0, overlap=0.2, steps=1))
    assert len(result.windows) >= 3
    assert result.gain == pytest.approx(PEAK_CEILING / 3.0, rel=1e-3)
    assert np.max(np.abs(result.audio)) == pytest.approx(PEAK_CEILING, rel=1e-3)
    last = result.windows[-1]
    tail = result.audio[int((last.start + 0.3) * result.sample_rate) :]
    assert np.max(np.abs(tail)) == pytest.approx(PEAK_CEILING / 3.0, rel=0.02)
    files = write_outputs(result, video, tmp_path / "out.wav", GenerateOptions(seed=0, overlap=0.2, steps=1))
    sidecar = json.loads((tmp_path / "out.wav.json").read_text())
    assert sidecar["output"]["gain_db"] == pytest.approx(20 * np.log10(result.gain), abs=1e-3)
    assert files


def test_follow_envelope_boost_is_not_clipped_and_the_pipeline_keeps_headroom():
    """The envelope-following gain stage may push a peak past full scale; it returns it as is (a clamp there
    would flatten it), and the headroom gain afterwards brings the whole clip under the ceiling."""
    from foleykit.controls import TemporalControl, follow_envelope

    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(SR)).astype(np.float32)  # RMS 0.1, peaks about 0.45
    loud = TemporalControl(
        "rms", np.full(125, 0.4, np.float32), 125.0
    )  # asks for 4x (12 dB, under the limit)
    y = follow_envelope(x, SR, loud)
    assert np.max(np.abs(y)) > 1.2  # a clamp would stop at 1.0
    assert np.max(np.abs(y * headroom_gain(y))) == pytest.approx(PEAK_CEILING, rel=1e-6)


def test_non_finite_decoder_output_is_one_model_error(pipe, monkeypatch):
    from foleykit.errors import ModelError

    monkeypatch.setattr(
        pipe, "_decode_timed", lambda latents, timings: torch.full((1, pipe.seq.num_samples), float("nan"))
    )
    with pytest.raises(ModelError, match="NaN or infinite"):
        pipe(frames=np.zeros((25, 32, 32, 3), np.uint8), num_inference_steps=1, seed=0)
