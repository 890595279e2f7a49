"""foleykit.media: read_audio (== librosa.load), write_audio, and the audio error cases."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from foleykit import testing
from foleykit.errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaLimitError,
    MediaNotFoundError,
    NoAudioStreamError,
    NotMediaError,
    ZeroDurationError,
)
from foleykit.media import MediaLimits, probe, read_audio, write_audio


@pytest.fixture(scope="module")
def stereo_wav(tmp_path_factory):
    """1.5 s of 44.1 kHz stereo PCM16: a chirp on the left, noise on the right."""
    sr = 44100
    t = np.arange(int(1.5 * sr)) / sr
    rng = np.random.default_rng(0)
    y = np.stack([0.5 * np.sin(2 * np.pi * (200 + 2000 * t) * t), 0.2 * rng.standard_normal(len(t))])
    path = tmp_path_factory.mktemp("audio") / "stereo.wav"
    sf.write(path, y.T.astype(np.float32), sr, subtype="PCM_16")
    return path


@pytest.mark.parametrize("sr", [16000, 22050])
def test_read_audio_equals_librosa_load(stereo_wav, sr):
    import librosa

    ref, _ = librosa.load(stereo_wav, sr=sr)
    got = read_audio(stereo_wav, sample_rate=sr)
    assert got.dtype == np.float32 and got.shape == ref.shape == (round(1.5 * sr),)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    ref2, _ = librosa.load(stereo_wav, sr=sr, mono=False, offset=0.3, duration=0.5)
    got2 = read_audio(stereo_wav, sample_rate=sr, mono=False, start=0.3, duration=0.5)
    assert got2.shape == ref2.shape == (2, round(0.5 * sr))
    np.testing.assert_allclose(got2, ref2, atol=1e-5)


def test_native_rate_is_bit_exact(stereo_wav):
    y, _ = sf.read(stereo_wav, dtype="float32")
    got = read_audio(stereo_wav, sample_rate=44100, mono=False)
    np.testing.assert_array_equal(got, y.T)
    np.testing.assert_array_equal(read_audio(stereo_wav, sample_rate=44100), y.mean(axis=1))


def test_audio_track_of_a_video_is_in_sync(tmp_path):
    path = testing.make_moving_square_video(tmp_path / "sq.mp4", audio="clicks", move_frames=(10, 30))
    y = read_audio(path, sample_rate=16000)
    assert y.shape == (32000,)  # exactly the declared 2.0 s (AAC padding dropped)
    onsets = np.flatnonzero(np.abs(y) > 0.3)
    assert abs(onsets[0] - 6400) <= 2  # click at frame 10 / 25 fps = 0.4 s
    assert abs(onsets[onsets > 10000][0] - 19200) <= 2  # frame 30 -> 1.2 s
    seg = read_audio(path, sample_rate=16000, start=1.0, duration=0.5)
    assert seg.shape == (8000,) and abs(np.flatnonzero(np.abs(seg) > 0.3)[0] - 3200) <= 2


def test_flac_and_resampled_lengths(tmp_path):
    path = testing.write_click_track(
        tmp_path / "c.flac", [0.5], sample_rate=48000, duration=1.0, subtype="PCM_16"
    )
    y = read_audio(path, sample_rate=16000)
    assert y.shape == (16000,) and abs(int(np.argmax(np.abs(y))) - 8000) <= 3


def test_segment_past_the_end_is_cut(stereo_wav):
    assert read_audio(stereo_wav, sample_rate=8000, start=1.0, duration=5.0).shape == (4000,)


def test_read_audio_errors(tmp_path, stereo_wav):
    with pytest.raises(MediaNotFoundError):
        read_audio(tmp_path / "missing.wav", sample_rate=16000)
    with pytest.raises(EmptyMediaError):
        read_audio(testing.make_empty_file(tmp_path / "e.wav"), sample_rate=16000)
    with pytest.raises(NotMediaError):
        read_audio(testing.make_not_media_file(tmp_path / "t.wav"), sample_rate=16000)
    silent = testing.make_counter_video(tmp_path / "silent.mp4", duration=0.4)
    with pytest.raises(NoAudioStreamError, match="silent.mp4.*no audio stream"):
        read_audio(silent, sample_rate=16000)
    with pytest.raises(ZeroDurationError, match="zero duration"):
        read_audio(testing.make_zero_duration_audio(tmp_path / "z.wav"), sample_rate=16000)
    with pytest.raises(ZeroDurationError, match="beyond the end"):
        read_audio(stereo_wav, sample_rate=16000, start=1.5)
    with pytest.raises(ZeroDurationError, match="not positive"):
        read_audio(stereo_wav, sample_rate=16000, duration=-1)
    with pytest.raises(MediaLimitError, match="over the limit"):
        read_audio(stereo_wav, sample_rate=16000, limits=MediaLimits(max_duration=1.0))
    assert read_audio(
        stereo_wav, sample_rate=16000, duration=0.5, limits=MediaLimits(max_duration=1.0)
    ).shape == (8000,)
    with pytest.raises(ValueError, match="sample_rate"):
        read_audio(stereo_wav, sample_rate=0)
    # frameless video stream + 1 s of AAC: the audio still reads (Matroska keeps the AAC end padding)
    n = read_audio(testing.make_zero_frame_video(tmp_path / "z.mkv"), sample_rate=16000).shape[0]
    assert 16000 <= n < 16000 + 1024


def test_truncated_audio_is_corrupt(tmp_path, stereo_wav):
    half = testing.make_truncated_copy(stereo_wav, tmp_path / "half.wav", 0.5)
    with pytest.raises(CorruptMediaError, match="ends early"):
        read_audio(half, sample_rate=16000)
    assert read_audio(half, sample_rate=16000, duration=0.5).shape == (8000,)  # the intact part reads


def test_write_audio_formats_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    y = (0.5 * rng.standard_normal((2, 1600))).clip(-1, 1).astype(np.float32)
    p16 = write_audio(tmp_path / "a.wav", y, 16000)
    back, sr = sf.read(p16, dtype="float32")
    assert sr == 16000 and sf.info(p16).subtype == "PCM_16"
    np.testing.assert_allclose(back.T, y, atol=1 / 32768 + 1e-7)
    pf = write_audio(tmp_path / "f.wav", y[0], 16000, subtype="FLOAT")
    np.testing.assert_array_equal(sf.read(pf, dtype="float32")[0], y[0])
    pflac = write_audio(tmp_path / "a.flac", np.full(100, 2.0, np.float32), 8000)  # clipped, not wrapped
    np.testing.assert_allclose(sf.read(pflac, dtype="float32")[0], 32767 / 32768)
    assert probe(write_audio(tmp_path / "a.ogg", y, 16000)).audio_codec == "vorbis"


def test_write_audio_rejects_bad_input_and_leaves_nothing(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="NaN"):
        write_audio(tmp_path / "n.wav", np.array([0.0, np.nan], np.float32), 16000)
    with pytest.raises(ValueError, match=".mp3"):
        write_audio(tmp_path / "x.mp3", np.zeros(10, np.float32), 16000)
    with pytest.raises(ValueError, match="float"):
        write_audio(tmp_path / "i.wav", np.zeros(10, np.int16), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        write_audio(tmp_path / "s.wav", np.zeros(10, np.float32), 0)
    with pytest.raises(ValueError, match="subtype"):
        write_audio(tmp_path / "bad.wav", np.zeros(10, np.float32), 16000, subtype="NOT_A_SUBTYPE")

    def half_write(file, *args, **kwargs):  # the disk fills up half-way through the write
        with open(file, "wb") as f:
            f.write(b"RIFF....")
        raise OSError("No space left on device")

    monkeypatch.setattr(sf, "write", half_write)
    with pytest.raises(OSError, match="No space"):
        write_audio(tmp_path / "full.wav", np.zeros(10, np.float32), 16000)
    assert list(tmp_path.iterdir()) == []  # no output and no temporary file left behind
