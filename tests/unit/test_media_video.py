"""foleykit.media: probe / read_video — resampling by timestamps, VFR, low fps, rotation, sizes, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from foleykit import testing
from foleykit.errors import (
    ConfigError,
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaLimitError,
    MediaNotFoundError,
    NotMediaError,
    NoVideoStreamError,
    ZeroDurationError,
    ZeroFramesError,
)
from foleykit.media import MediaLimits, probe, read_audio, read_video, write_video

VFR_TIMES = [0.0, 0.1, 0.15, 0.5, 0.52, 1.0, 1.7]  # 7 frames, the last one shown until 2.0 s


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        "c25": testing.make_counter_video(d / "c25.mp4", fps=25, duration=2.0),  # frames 0..49 at i/25
        "c5": testing.make_counter_video(d / "c5.mp4", fps=5, duration=2.0),  # frames 0..9 at i/5
        "vfr": testing.make_counter_video(d / "vfr.mp4", timestamps=VFR_TIMES, duration=2.0),
        "vfr_mkv": testing.make_counter_video(d / "vfr.mkv", timestamps=VFR_TIMES, duration=2.0),
        "seek": testing.make_counter_video(d / "seek.mkv", fps=25, duration=2.0, codec="mpeg4"),
        "sq": testing.make_moving_square_video(d / "sq.mp4", audio="clicks"),
    }


def indices(clip):
    return [testing.counter_index(f) for f in clip.frames]


def test_probe_reports_streams_and_geometry(media):
    info = probe(media["sq"])
    assert (info.duration, info.video_duration, info.audio_duration) == (2.0, 2.0, 2.0)
    assert (info.width, info.height, info.rotation, info.native_fps, info.num_frames) == (
        128,
        96,
        0,
        25.0,
        50,
    )
    assert (info.video_codec, info.audio_codec, info.sample_rate, info.channels) == ("h264", "aac", 16000, 1)
    assert info.has_video and info.has_audio and info.path == media["sq"]
    vfr = probe(media["vfr"])
    assert vfr.num_frames == 7 and vfr.native_fps == pytest.approx(3.5) and vfr.duration == 2.0
    assert not vfr.has_audio and vfr.sample_rate is None


def test_native_frames_have_their_real_timestamps(media):
    clip = read_video(media["c25"])
    assert clip.frames.shape == (50, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert indices(clip) == list(range(50))
    np.testing.assert_allclose(clip.timestamps, np.arange(50) / 25, atol=1e-9)
    assert (clip.fps, clip.native_fps, clip.duration) == (25.0, 25.0, 2.0)


@pytest.mark.parametrize("fps", [8.0, 10.0, 25.0, 30.0, 12.5])
def test_cfr_resampling_takes_the_frame_on_screen(media, fps):
    clip = read_video(media["c25"], fps=fps)
    n = round(2.0 * fps)
    assert len(clip) == n and clip.duration == pytest.approx(n / fps) and clip.fps == fps
    np.testing.assert_allclose(clip.timestamps, np.arange(n) / fps)
    # frame on screen at k / fps is floor(k * 25 / fps) (exact products land on their own frame)
    assert indices(clip) == [math.floor(k * 25 / fps + 1e-9) for k in range(n)]


@pytest.mark.parametrize("fps", [8.0, 25.0])
def test_low_fps_input_keeps_its_duration(media, fps):
    clip = read_video(media["c5"], fps=fps)
    assert len(clip) == round(2.0 * fps) and clip.duration == pytest.approx(2.0)
    assert indices(clip) == [math.floor(k * 5 / fps + 1e-9) for k in range(len(clip))]
    assert read_video(media["c5"]).native_fps == 5.0


@pytest.mark.parametrize("key", ["vfr", "vfr_mkv"])
def test_variable_frame_rate_resampling(media, key):
    clip = read_video(media[key], fps=10)
    # latest frame with pts <= k / 10 for VFR_TIMES (hand-derived), 20 frames = 2.0 s
    assert indices(clip) == [0, 1, 2, 2, 2, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6]
    assert clip.duration == pytest.approx(2.0)
    clip4 = read_video(media[key], fps=4)  # t = 0, .25, .5, .75, 1.0, ..., 1.75
    assert indices(clip4) == [0, 2, 3, 4, 5, 5, 5, 6]
    native = read_video(media[key])
    assert indices(native) == list(range(7))
    np.testing.assert_allclose(native.timestamps, VFR_TIMES, atol=1e-4)
    assert native.duration == pytest.approx(2.0)


def test_segment_with_start_and_duration(media):
    clip = read_video(media["c25"], fps=10, start=0.5, duration=0.6)
    assert indices(clip) == [12, 15, 17, 20, 22, 25]  # floor((0.5 + k / 10) * 25)
    np.testing.assert_allclose(clip.timestamps, 0.5 + np.arange(6) / 10)
    native = read_video(media["c25"], start=0.5, duration=0.2)  # pts in [0.5, 0.7): 0.52 .. 0.68
    assert indices(native) == [13, 14, 15, 16, 17] and native.duration == pytest.approx(0.2)


def test_seeking_to_a_key_frame_mid_file(media):
    clip = read_video(media["seek"], fps=10, start=1.0, duration=0.5)
    assert indices(clip) == [25, 27, 30, 32, 35]
    assert indices(read_video(media["seek"], start=1.5)) == list(range(38, 50))


def test_segment_past_the_end_is_cut(media):
    clip = read_video(media["c25"], fps=10, start=1.5, duration=2.0)
    assert len(clip) == 5 and clip.duration == pytest.approx(0.5)
    assert indices(clip) == [37, 40, 42, 45, 47]


@pytest.mark.parametrize(
    ("rotation", "shape", "red_corner"),
    [
        (90, (64, 48), (slice(0, 10), slice(-10, None))),  # stored top-left -> top-right
        (180, (48, 64), (slice(-10, None), slice(-10, None))),  # -> bottom-right
        (270, (64, 48), (slice(-10, None), slice(0, 10))),  # -> bottom-left
    ],
)
def test_rotation_metadata_is_honoured(tmp_path, rotation, shape, red_corner):
    path = testing.make_counter_video(tmp_path / "r.mp4", duration=0.4, rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation and (info.height, info.width) == shape
    clip = read_video(path)
    assert clip.frames.shape == (10, *shape, 3)
    assert np.all(clip.frames[0][red_corner][..., 0] > 180)
    assert np.all(clip.frames[0][:10, :10][..., 0] < 60) or rotation == 0
    small = read_video(path, size=24, fps=5)  # short side 24 of the displayed picture
    assert small.frames.shape == ((2, 32, 24, 3) if rotation != 180 else (2, 24, 32, 3))


def test_output_size(media):
    assert read_video(media["sq"], size=32, fps=5).frames.shape == (
        10,
        32,
        42,
        3,
    )  # 128 * 32 / 96 = 42.7 -> 42
    assert read_video(media["sq"], size=(50, 30), fps=5).frames.shape == (10, 30, 50, 3)
    clip = read_video(media["c25"], size=(16, 12), fps=5)
    assert indices(clip) == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]  # flat frames survive scaling
    with pytest.raises(ValueError):
        read_video(media["sq"], size=1)
    with pytest.raises(ValueError):
        read_video(media["sq"], fps=0)
    with pytest.raises(ValueError):
        read_video(media["sq"], start=-1)


# --- errors ------------------------------------------------------------------------------------------
def test_missing_file_and_folder(tmp_path):
    with pytest.raises(MediaNotFoundError, match="no such file") as e:
        read_video(tmp_path / "nope.mp4")
    assert isinstance(e.value, FileNotFoundError) and "nope.mp4" in str(e.value)
    with pytest.raises(MediaNotFoundError, match="folder"):
        probe(tmp_path)


def test_empty_and_not_media_files(tmp_path):
    with pytest.raises(EmptyMediaError, match="0 bytes"):
        read_video(testing.make_empty_file(tmp_path / "e.mp4"))
    with pytest.raises(NotMediaError, match="not a media file"):
        read_video(testing.make_not_media_file(tmp_path / "t.mp4"))


def test_truncated_files_are_corrupt_not_short(tmp_path):
    plain = testing.make_moving_square_video(tmp_path / "p.mp4")
    with pytest.raises(CorruptMediaError, match="MP4/MOV.*truncated"):  # index at the end: cannot open
        probe(testing.make_truncated_copy(plain, tmp_path / "p_half.mp4", 0.5))
    noise = np.random.default_rng(0).integers(
        0, 256, size=(25, 48, 64, 3), dtype=np.uint8
    )  # equal-size frames
    fast = write_video(tmp_path / "f.mp4", noise, 25.0, faststart=True)
    part = testing.make_truncated_copy(fast, tmp_path / "f_part.mp4", 0.6)
    assert probe(part).num_frames == 25  # opens (the index is first) and the first frame decodes
    with pytest.raises(CorruptMediaError, match=r"decoding stopped at \d.*truncated or corrupt"):
        read_video(part, fps=8)  # fails part-way: an error, not fewer frames
    with pytest.raises(CorruptMediaError, match="truncated or corrupt"):  # cut inside the first frame
        read_video(testing.make_truncated_copy(fast, tmp_path / "f_head.mp4", 0.05))
    mkv = testing.make_moving_square_video(tmp_path / "m.mkv")
    part = testing.make_truncated_copy(mkv, tmp_path / "m_part.mkv", 0.8)
    with pytest.raises(CorruptMediaError, match="ends early"):
        read_video(part)
    with pytest.raises(CorruptMediaError, match="ends early"):
        read_video(part, fps=10)


def test_no_video_stream_and_zero_frames(tmp_path):
    with pytest.raises(NoVideoStreamError, match="audio-only"):
        read_video(testing.make_audio_only_file(tmp_path / "a.wav"))
    zero = testing.make_zero_frame_video(tmp_path / "z.mkv")
    assert probe(zero).num_frames == 0
    with pytest.raises(ZeroFramesError, match="no frames"):
        read_video(zero)


def test_zero_duration_requests(media, tmp_path):
    with pytest.raises(ZeroDurationError, match="beyond the end"):
        read_video(media["c25"], start=2.0)
    with pytest.raises(ZeroDurationError, match="not positive"):
        read_video(media["c25"], duration=0)
    with pytest.raises(ZeroDurationError, match="shorter than one frame"):
        read_video(media["c25"], fps=8, duration=0.05)
    with pytest.raises(ZeroDurationError, match="zero duration"):
        probe(testing.make_zero_duration_audio(tmp_path / "z.wav"))


def test_limits(media, monkeypatch):
    with pytest.raises(MediaLimitError, match="FOLEYKIT_MAX_DURATION"):
        read_video(media["c25"], limits=MediaLimits(max_duration=1.0))
    assert len(read_video(media["c25"], duration=0.8, limits=MediaLimits(max_duration=1.0))) == 20  # segment
    with pytest.raises(MediaLimitError, match="1.0 s"):
        probe(media["c25"], limits=MediaLimits(max_duration=1.0))  # probe checks the whole file
    with pytest.raises(MediaLimitError, match="64x48"):
        read_video(media["c25"], limits=MediaLimits(max_pixels=32 * 32))
    monkeypatch.setenv("FOLEYKIT_MAX_RESOLUTION", "32x32")
    assert MediaLimits.from_env().max_pixels == 1024
    with pytest.raises(MediaLimitError, match="resolution"):
        read_video(media["c25"])
    monkeypatch.setenv("FOLEYKIT_MAX_RESOLUTION", "4096")
    monkeypatch.setenv("FOLEYKIT_MAX_DURATION", "0.5")
    assert MediaLimits.from_env() == MediaLimits(max_duration=0.5, max_pixels=4096)
    monkeypatch.setenv("FOLEYKIT_MAX_DURATION", "ten")
    with pytest.raises(ConfigError, match="FOLEYKIT_MAX_DURATION"):
        MediaLimits.from_env()
    monkeypatch.setenv("FOLEYKIT_MAX_DURATION", "60")
    monkeypatch.setenv("FOLEYKIT_MAX_RESOLUTION", "big")
    with pytest.raises(ConfigError, match="FOLEYKIT_MAX_RESOLUTION"):
        MediaLimits.from_env()
    with pytest.raises(ConfigError):
        MediaLimits(max_duration=0)
    assert MediaLimits() == MediaLimits(max_duration=14400.0, max_pixels=7680 * 4320)


def test_every_media_error_is_a_media_error():
    for cls in (
        CorruptMediaError,
        EmptyMediaError,
        MediaLimitError,
        MediaNotFoundError,
        NotMediaError,
        NoVideoStreamError,
        ZeroDurationError,
        ZeroFramesError,
    ):
        assert issubclass(cls, MediaError)


def test_time_zero_is_the_first_frame_despite_codec_delay(tmp_path):
    # MPEG-TS keeps AAC's priming packet 64 ms before the first frame: frames and audio must still start at 0
    clicks = testing.make_click_track([0.5], sample_rate=16000, duration=2.0)
    path = testing.make_counter_video(tmp_path / "c.ts", fps=10, duration=2.0, audio=clicks)
    native = read_video(path)
    np.testing.assert_allclose(native.timestamps, np.arange(20) / 10, atol=1e-6)
    assert indices(read_video(path, fps=5)) == list(range(0, 20, 2))
    y = read_audio(path, sample_rate=16000)
    assert abs(np.flatnonzero(np.abs(y) > 0.3)[0] - 8000) <= 2  # in sync with frame 5 at 0.5 s
