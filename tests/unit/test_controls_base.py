"""TemporalControl: validation, geometry, every resampling path and the editing operations."""

import numpy as np
import pytest

from foleykit.config import SequenceConfig
from foleykit.controls import TemporalControl, is_class_kind, is_event_kind
from foleykit.errors import ControlError


def ramp(rate, n, kind="energy", start=0.0):
    """values[i] = centre time of frame i (relative to start): every resampling must keep value == time."""
    return TemporalControl(kind, (np.arange(n) + 0.5) / rate, rate, start)


def events(rate, n, frames, kind="onsets"):
    v = np.zeros(n, np.float32)
    v[list(frames)] = 1
    return TemporalControl(kind, v, rate)


# --- construction -------------------------------------------------------------------------------------
def test_geometry_and_dtypes():
    c = TemporalControl("rms", [0.1, 0.2, 0.3, 0.4, 0.5], 125, start=1.0)
    assert c.values.dtype == np.float32 and c.num_frames == len(c) == 5
    assert c.duration == pytest.approx(0.04) and c.end == pytest.approx(1.04)
    np.testing.assert_allclose(c.times, [1.0, 1.008, 1.016, 1.024, 1.032])
    k = TemporalControl("rms_class", np.array([0.0, 3.0, 63.0]), 125)
    assert k.values.dtype == np.int64 and k.is_class and not k.is_event
    assert is_class_kind("foo_class") and is_event_kind("events") and not is_event_kind("energy")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"kind": "energy", "values": np.zeros((2, 3)), "rate": 100}, "one-dimensional"),
        ({"kind": "energy", "values": [], "rate": 100}, "no frames"),
        ({"kind": "energy", "values": [0.0, np.nan], "rate": 100}, "non-finite value .* frame 1"),
        ({"kind": "energy", "values": [0.0, np.inf], "rate": 100}, "non-finite"),
        ({"kind": "energy", "values": [1.0], "rate": 0}, "positive"),
        ({"kind": "energy", "values": [1.0], "rate": -5}, "positive"),
        ({"kind": "energy", "values": [1.0], "rate": float("inf")}, "positive"),
        ({"kind": "energy", "values": [1.0], "rate": "fast"}, "numbers"),
        ({"kind": "energy", "values": [1.0], "rate": 100, "start": float("nan")}, "finite time"),
        ({"kind": "a,b", "values": [1.0], "rate": 100}, "kind"),
        ({"kind": "", "values": [1.0], "rate": 100}, "kind"),
        ({"kind": "rms_class", "values": [1.0, 2.5], "rate": 100}, "class indices.*2.5"),
        ({"kind": "rms_class", "values": [1, -2], "rate": 100}, ">= 0"),
        ({"kind": "energy", "values": ["a", "b"], "rate": 100}, "numbers"),
        ({"kind": "energy", "values": [1.0], "rate": 100, "meta": [1]}, "meta"),
    ],
)
def test_invalid_controls_raise(kwargs, match):
    with pytest.raises(ControlError, match=match):
        TemporalControl(**kwargs)


def test_replace_copies_and_allclose():
    c = TemporalControl("energy", [1.0, 2.0], 100, meta={"a": [1]})
    d = c.replace()
    d.values[0] = 5
    d.meta["a"].append(2)
    assert c.values[0] == 1 and c.meta == {"a": [1]}
    assert c.allclose(c.replace()) and not c.allclose(d) and not c.allclose(c.replace(rate=50))


# --- resampling ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src_rate,n,dst_rate,n_out",
    [
        (100, 1000, 25, 250),
        (100, 1000, 125, 1250),
        (125, 1250, 25, 250),
        (125, 1250, 100, 1000),
        (25, 250, 100, 1000),
        (25, 250, 125, 1250),
        (100, 1024, 125, 1280),
        (100, 1024, 25, 256),
    ],
)
def test_resample_preserves_duration_and_time_mapping(src_rate, n, dst_rate, n_out):
    c = ramp(src_rate, n, start=2.0)
    out = c.resample(dst_rate)
    assert out.num_frames == n_out and out.rate == dst_rate and out.start == 2.0
    assert out.duration == pytest.approx(c.duration)
    expected = (np.arange(n_out) + 0.5) / dst_rate  # each target frame reads the source at its own centre
    half = 0.5 / src_rate  # linear interpolation holds the edge values within half a source frame
    inner = (expected > half) & (expected < c.duration - half)
    # exact for linear (upsampling) and whole-ratio area means; a fractional-ratio area mean of the
    # piecewise-constant source is off by less than half a source frame
    exact = dst_rate >= src_rate or src_rate % dst_rate == 0
    np.testing.assert_allclose(out.values[inner], expected[inner], atol=1e-5 if exact else 0.5 / src_rate)
    assert out.values.dtype == np.float32


def test_resample_rounds_frame_count_and_accepts_num_frames():
    assert ramp(100, 1003).resample(25).num_frames == 251  # 10.03 s -> round(250.75)
    out = ramp(100, 1000).resample(num_frames=400)
    assert out.rate == pytest.approx(40.0) and out.duration == pytest.approx(10.0)
    both = ramp(100, 1000).resample(25, num_frames=300)  # explicit length: edge held past the end
    assert both.num_frames == 300 and both.values[-1] == pytest.approx(ramp(100, 1000).values[-1])


def test_auto_methods_linear_up_area_down():
    # a one-frame spike at 125 Hz survives downsampling to 25 Hz as its area (linear would skip it)
    v = np.zeros(1250, np.float32)
    v[500] = 5.0
    down = TemporalControl("rms", v, 125).resample(25)
    assert down.values[100] == pytest.approx(1.0) and down.values.sum() == pytest.approx(1.0)
    assert TemporalControl("rms", v, 125).resample(25, method="linear").values.max() == 0.0
    up = TemporalControl("rms", [0.0, 1.0], 1).resample(
        4
    )  # source centres 0.5, 1.5 s; targets 0.125 .. 1.875
    np.testing.assert_allclose(up.values, [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1])


def test_nearest_for_classes():
    c = TemporalControl("rms_class", [0, 5, 5, 9], 4)
    out = c.resample(8)
    np.testing.assert_array_equal(out.values, [0, 0, 5, 5, 5, 5, 9, 9])
    assert out.values.dtype == np.int64
    np.testing.assert_array_equal(c.resample(2).values, [5, 9])
    with pytest.raises(ControlError, match="nearest"):
        c.resample(8, method="linear")


@pytest.mark.parametrize(
    "src_rate,n,frames,dst_rate,expected",
    [
        (100, 1000, [10, 55, 99, 500], 25, [2, 13, 24, 125]),  # floor((i + 0.5) / 4)
        (25, 250, [2, 13, 249], 100, [10, 54, 998]),  # each event lands in exactly one frame
        (100, 1000, [10, 55, 99], 125, [13, 69, 124]),  # floor((i + 0.5) * 1.25)
        (125, 1250, [10, 600], 25, [2, 120]),
    ],
)
def test_event_tracks_keep_every_event(src_rate, n, frames, dst_rate, expected):
    c = events(src_rate, n, frames)
    out = c.resample(dst_rate)
    assert out.num_frames == round(n * dst_rate / src_rate)
    np.testing.assert_array_equal(np.flatnonzero(out.values), expected)
    moved = np.abs(out.times[expected] + 0.5 / dst_rate - (c.times[frames] + 0.5 / src_rate))
    assert np.all(moved < 1 / dst_rate)  # each event moves by less than one target frame


def test_events_in_one_target_frame_merge_and_soft_values_take_the_max():
    c = TemporalControl("onsets", np.zeros(1250), 125)
    c.values[[10, 12]] = [0.3, 0.8]  # both fall in 25 Hz frame 2
    out = c.resample(25)
    np.testing.assert_allclose(out.values[2], 0.8)
    assert np.count_nonzero(out.values) == 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({}, "target rate"),
        ({"rate": -1.0}, "positive"),
        ({"num_frames": 0}, ">= 1"),
        ({"rate": 10.0, "method": "cubic"}, "unknown resample method"),
    ],
)
def test_resample_errors(kwargs, match):
    with pytest.raises(ControlError, match=match):
        ramp(100, 100).resample(**kwargs)


def test_to_grid_uses_sequence_config():
    seq = SequenceConfig()  # 10 s, 16 kHz
    rms = ramp(125, 1250, kind="rms")
    lat = rms.to_grid(seq, "latent")
    assert (lat.rate, lat.num_frames) == (seq.latent_rate, seq.num_latent_frames) == (25.0, 250)
    energy = ramp(100, 1000)
    ctl = energy.to_grid(seq, "control")
    assert (ctl.rate, ctl.num_frames) == (125.0, 1250)
    ldm = SequenceConfig.audioldm()  # 10.24 s: longer than the control -> padded with the edge value
    mel = energy.to_grid(ldm, "mel")
    assert mel.num_frames == ldm.num_energy_frames == 1024 and mel.values[-1] == energy.values[-1]
    assert energy.to_grid(ldm, "video").num_frames == 256
    assert energy.to_grid(seq, "energy") is not energy and energy.to_grid(seq, "energy").allclose(energy)
    with pytest.raises(ControlError, match="unknown grid"):
        energy.to_grid(seq, "audio")


# --- length and window --------------------------------------------------------------------------------
def test_fit_pads_by_kind_and_trims():
    c = TemporalControl("energy", [1.0, 2.0, 3.0], 100)
    np.testing.assert_array_equal(c.fit(5).values, [1, 2, 3, 3, 3])
    np.testing.assert_array_equal(c.fit(5, pad="zero").values, [1, 2, 3, 0, 0])
    np.testing.assert_array_equal(c.fit(5, pad=-11.5).values, [1, 2, 3, -11.5, -11.5])
    np.testing.assert_array_equal(c.fit(2).values, [1, 2])
    np.testing.assert_array_equal(events(100, 3, [2]).fit(5).values, [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(TemporalControl("rms_class", [4, 4], 10).fit(3).values, [4, 4, 0])
    with pytest.raises(ControlError, match=">= 1"):
        c.fit(0)
    with pytest.raises(ControlError, match="pad"):
        c.fit(5, pad="mirror")


def test_crop_snaps_to_grid():
    c = ramp(100, 1000, start=1.0)
    out = c.crop(3.0, 2.0)
    assert out.num_frames == 200 and out.start == pytest.approx(3.0)
    np.testing.assert_allclose(out.values[0], 2.005, atol=1e-6)
    with pytest.raises(ControlError, match="outside"):
        c.crop(0.5, 1.0)
    with pytest.raises(ControlError, match="outside"):
        c.crop(10.0, 2.0)
    with pytest.raises(ControlError, match="shorter than one frame"):
        c.crop(2.0, 0.001)
    with pytest.raises(ControlError, match="positive duration"):
        c.crop(2.0, -1.0)


# --- editing ------------------------------------------------------------------------------------------
def test_scale_offset_clip():
    c = TemporalControl("rms", [0.1, 0.2, 0.4], 125)
    np.testing.assert_allclose(c.scale(2).values, [0.2, 0.4, 0.8])
    np.testing.assert_allclose(c.offset(-0.1).values, [0.0, 0.1, 0.3], atol=1e-7)
    np.testing.assert_allclose(c.clip(0.15, 0.3).values, [0.15, 0.2, 0.3])
    np.testing.assert_allclose(c.clip(hi=0.15).values, [0.1, 0.15, 0.15])
    with pytest.raises(ControlError, match="finite"):
        c.scale(float("nan"))
    with pytest.raises(ControlError, match="finite"):
        c.offset(float("inf"))
    with pytest.raises(ControlError, match="lo, hi or both"):
        c.clip()
    with pytest.raises(ControlError, match="<= hi"):
        c.clip(1.0, 0.0)
    classes = TemporalControl("rms_class", [1, 2], 125)
    for op in (lambda k: k.scale(2), lambda k: k.offset(1), lambda k: k.smooth(frames=3)):
        with pytest.raises(ControlError, match="class indices"):
            op(classes)
    np.testing.assert_array_equal(classes.clip(0, 1).values, [1, 1])


def test_shift_keeps_length_and_pads():
    c = TemporalControl("energy", [1.0, 2.0, 3.0, 4.0, 5.0], 10)
    np.testing.assert_array_equal(c.shift(0.2).values, [1, 1, 1, 2, 3])  # later by 2 frames
    np.testing.assert_array_equal(c.shift(-0.1).values, [2, 3, 4, 5, 5])  # earlier by 1
    np.testing.assert_array_equal(c.shift(0.04).values, c.values)  # rounds to 0 frames
    np.testing.assert_array_equal(c.shift(9.0).values, [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(c.shift(-9.0, pad="zero").values, [0, 0, 0, 0, 0])
    e = events(10, 5, [1])
    np.testing.assert_array_equal(e.shift(0.2).values, [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(e.shift(-0.2).values, [0, 0, 0, 0, 0])  # moved out of the window
    assert c.shift(0.2).start == c.start
    with pytest.raises(ControlError, match="finite"):
        c.shift(float("nan"))


def test_smooth_moving_average():
    c = TemporalControl("rms", [0, 0, 0, 3, 0, 0, 0], 10)
    np.testing.assert_allclose(c.smooth(frames=3).values, [0, 0, 1, 1, 1, 0, 0])
    np.testing.assert_allclose(c.smooth(frames=2).values, [0, 0, 1, 1, 1, 0, 0])  # rounded up to odd
    np.testing.assert_allclose(c.smooth(0.3).values, [0, 0, 1, 1, 1, 0, 0])  # 0.3 s at 10 Hz
    np.testing.assert_array_equal(c.smooth(frames=1).values, c.values)
    const = TemporalControl("energy", np.full(20, -4.0), 100)
    np.testing.assert_allclose(const.smooth(0.05).values, -4.0)
    with pytest.raises(ControlError, match="either seconds or frames"):
        c.smooth()
    with pytest.raises(ControlError, match="either seconds or frames"):
        c.smooth(0.1, frames=3)
    with pytest.raises(ControlError, match=">= 0"):
        c.smooth(-1.0)
