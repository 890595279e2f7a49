"""foleykit.media: write_video and mux (packets copied bit-identically, audio exactly the video's length)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from foleykit import testing
from foleykit.errors import MediaError, MediaNotFoundError, NoVideoStreamError, ZeroFramesError
from foleykit.media import MUX_SAMPLE_RATE, mux, probe, read_audio, read_video, write_video
from foleykit.media import encode as encode_mod

AAC_FRAME = 1024 / MUX_SAMPLE_RATE  # one AAC frame at the mux rate, seconds


def packets(path, kind):
    """(pts, bytes) of every packet of the first stream of ``kind``."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0] if kind == "video" else c.streams.audio[0]
        return [(p.pts, bytes(p)) for p in c.demux(stream) if p.size]


def test_write_video_round_trip_with_audio(tmp_path):
    frames = testing.make_moving_square_frames(20, size=(64, 48), move_frames=(5,))
    audio = testing.make_click_track([0.2], sample_rate=16000, duration=0.8)
    path = write_video(tmp_path / "v.mp4", iter(frames), 25.0, audio=audio, sample_rate=16000, crf=0)
    info = probe(path)
    assert (info.num_frames, info.native_fps, info.width, info.height) == (20, 25.0, 64, 48)
    assert (info.audio_codec, info.sample_rate, info.duration) == ("aac", 16000, 0.8)
    luma = np.array([0.299, 0.587, 0.114])
    clip = read_video(path)  # crf 0: luma nearly lossless (chroma is subsampled by yuv420p)
    assert np.abs(clip.frames @ luma - frames @ luma).mean() < 1.5
    y = read_audio(path, sample_rate=16000)
    assert y.shape == (12800,) and abs(np.flatnonzero(np.abs(y) > 0.3)[0] - 3200) <= 2


def test_write_video_resamples_odd_audio_rates_and_writes_vfr(tmp_path):
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    path = write_video(
        tmp_path / "v.mkv",
        frames,
        10.0,
        audio=np.zeros((2, 3000), np.float32),
        sample_rate=10000,
        timestamps=[0.0, 0.05, 0.25],
        end_time=0.3,
    )
    info = probe(path)
    assert (info.sample_rate, info.channels) == (48000, 2)  # 10 kHz is no AAC rate: resampled
    np.testing.assert_allclose(read_video(path).timestamps, [0.0, 0.05, 0.25], atol=1e-3)


def test_write_video_validates_and_is_atomic(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 15, 16, 3), np.uint8), 25.0)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 16, 16, 3), np.float32), 25.0)
    with pytest.raises(ValueError, match="frame 1 is"):
        write_video(
            tmp_path / "s.mp4", [np.zeros((16, 16, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)], 25.0
        )
    with pytest.raises(ValueError, match="at least one frame"):
        write_video(tmp_path / "e.mp4", [], 25.0)
    with pytest.raises(ValueError, match="sample_rate"):
        write_video(
            tmp_path / "a.mp4", np.zeros((2, 16, 16, 3), np.uint8), 25.0, audio=np.zeros(100, np.float32)
        )
    with pytest.raises(ValueError, match="increasing"):
        write_video(tmp_path / "t.mp4", np.zeros((2, 16, 16, 3), np.uint8), 25.0, timestamps=[0.1, 0.1])
    with pytest.raises(ValueError, match="rotation"):
        write_video(tmp_path / "r.mp4", np.zeros((2, 16, 16, 3), np.uint8), 25.0, rotation=45)
    assert list(tmp_path.iterdir()) == []  # nothing left behind, temporary files included


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("mux")
    return testing.make_moving_square_video(d / "src.mp4", fps=25, duration=2.0, audio="clicks", rotation=90)


@pytest.mark.parametrize("audio_seconds", [1.3, 2.0, 3.1])  # padded, exact, trimmed
def test_mux_copies_video_packets_and_fits_audio_to_the_video(tmp_path, source, audio_seconds):
    sr = 16000
    new = testing.make_click_track([0.5], sample_rate=sr, duration=audio_seconds, amplitude=0.5)
    out = mux(source, new, sr, tmp_path / "out.mp4")
    assert packets(out, "video") == packets(source, "video")  # bit-identical, not re-encoded
    info = probe(out)
    assert info.rotation == 90 and (info.width, info.height) == (96, 128)  # display matrix kept
    assert (info.sample_rate, info.audio_codec) == (MUX_SAMPLE_RATE, "aac")
    assert abs(info.audio_duration - info.video_duration) <= AAC_FRAME
    y = read_audio(out, sample_rate=sr)
    assert abs(len(y) - 2.0 * sr) <= AAC_FRAME * sr
    onsets = np.flatnonzero(np.abs(y) > 0.25)
    assert abs(onsets[0] - 0.5 * sr) <= 3 and np.all(onsets < 0.6 * sr)  # only the new click, in place
    assert list(tmp_path.iterdir()) == [out]


def test_mux_keeps_the_original_audio_as_a_second_track(tmp_path, source):
    out = mux(source, np.zeros(16000, np.float32), 16000, tmp_path / "out.mkv", keep_original_audio=True)
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 2
        assert c.streams.audio[0].disposition & av.stream.Disposition.default
    # Matroska has no negative timestamps: FFmpeg shifts every track alike, so compare the packet bytes
    assert [b for _, b in packets(out, "video")] == [b for _, b in packets(source, "video")]
    with av.open(str(out)) as c, av.open(str(source)) as s:
        kept = [bytes(p) for p in c.demux(c.streams.audio[1]) if p.size]
        orig = [bytes(p) for p in s.demux(s.streams.audio[0]) if p.size]
    assert kept == orig
    assert (
        np.max(np.abs(read_audio(out, sample_rate=16000))) < 1e-3
    )  # the first (default) track is the new one


def test_mux_errors_leave_nothing_behind(tmp_path, source, monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(NoVideoStreamError):
        mux(
            testing.make_audio_only_file(tmp_path / "a.wav"),
            np.zeros(100, np.float32),
            16000,
            out_dir / "o.mp4",
        )
    with pytest.raises(MediaNotFoundError):
        mux(tmp_path / "missing.mp4", np.zeros(100, np.float32), 16000, out_dir / "o.mp4")
    with pytest.raises(ZeroFramesError):
        mux(
            testing.make_zero_frame_video(tmp_path / "z.mkv"),
            np.zeros(100, np.float32),
            16000,
            out_dir / "o.mkv",
        )
    with pytest.raises(ValueError, match="mono or stereo"):
        mux(source, np.zeros((3, 100), np.float32), 16000, out_dir / "o.mp4")
    with pytest.raises(MediaError, match=r"cannot write a video file named \.wav"):
        mux(source, np.zeros(100, np.float32), 16000, out_dir / "o.wav")
    raw = write_video(tmp_path / "raw.mkv", np.zeros((2, 16, 16, 3), np.uint8), 10.0, codec="rawvideo")
    with pytest.raises(
        MediaError, match=r"o\.mp4: the \.mp4 container cannot hold rawvideo video.*Use \.mov"
    ):
        mux(raw, np.zeros(100, np.float32), 16000, out_dir / "o.mp4", video="copy")

    def boom(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(encode_mod._AudioFeeder, "finish", boom)  # fail after the video packets are written
    with pytest.raises(RuntimeError, match="disk full"):
        mux(source, np.zeros(100, np.float32), 16000, out_dir / "o.mp4")
    assert list(out_dir.iterdir()) == []
