"""foleykit.testing: the factories produce media whose content matches the hand-derived expectations."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from foleykit import testing
from foleykit.media import probe, read_video


def test_moving_square_frames_change_only_at_move_frames():
    frames = testing.make_moving_square_frames(20, size=(64, 48), move_frames=(5, 12))
    assert frames.shape == (20, 48, 64, 3) and frames.dtype == np.uint8
    changed = [i for i in range(1, 20) if not np.array_equal(frames[i], frames[i - 1])]
    assert changed == [5, 12]
    assert np.array_equal(frames[0], frames[12])  # back at the start position after two jumps
    # side 48 // 2 = 24 at x0 = (64 - 24) // 2 - 2 = 18, y0 = 12; the jump is max(4, 64 // 16) = 4 px right
    assert np.array_equal(frames[5, 12:36, 22:46], frames[4, 12:36, 18:42])
    diff_cols = np.flatnonzero(np.any(frames[5] != frames[4], axis=(0, 2)))
    assert diff_cols.min() >= 18 and diff_cols.max() <= 45


@pytest.mark.parametrize("bad", [(0,), (20,), (-1,)])
def test_moving_square_frames_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match="move_frames"):
        testing.make_moving_square_frames(20, move_frames=bad)


def test_moving_square_video_flow_peaks_exactly_at_move_frames(tmp_path):
    import cv2

    path = testing.make_moving_square_video(tmp_path / "sq.mp4", move_frames=(10, 30))
    clip = read_video(path)
    assert len(clip) == 50 and clip.frames.shape[1:] == (96, 128, 3)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip.frames]
    traj = np.array(
        [0.0]
        + [
            float(
                np.abs(
                    cv2.calcOpticalFlowFarneback(gray[i - 1], gray[i], None, 0.5, 3, 15, 3, 5, 1.2, 0)
                ).mean()
            )
            for i in range(1, len(gray))
        ]
    )
    peaks = [i for i in range(1, len(traj) - 1) if traj[i - 1] < traj[i] > traj[i + 1] and traj[i] >= 0.1]
    assert peaks == [10, 30]  # AV-Align's video peaks (threshold 0.1) land exactly on the jumps


def test_moving_square_video_with_click_audio(tmp_path):
    path = testing.make_moving_square_video(tmp_path / "sq.mp4", audio="clicks", move_frames=(10, 30))
    info = probe(path)
    assert info.has_audio and info.sample_rate == 16000 and info.num_frames == 50
    with pytest.raises(ValueError, match="clicks"):
        testing.make_moving_square_video(tmp_path / "x.mp4", audio="beeps")


def test_click_track_starts_exactly_at_the_given_samples():
    sr = 16000
    y = testing.make_click_track([0.1, 0.5, 0.9371], sample_rate=sr, duration=1.0, amplitude=0.8)
    assert y.dtype == np.float32 and y.shape == (16000,)
    starts = [1600, 8000, round(0.9371 * sr)]
    for s in starts:
        assert y[s] == pytest.approx(0.8) and np.all(y[s - 20 : s] == 0)
    # decaying: 10 ms after the start the click is below exp(-10/3) * 0.8
    assert np.abs(y[1600 + 160]) <= 0.8 * np.exp(-160 / 48) + 1e-6
    with pytest.raises(ValueError, match="outside"):
        testing.make_click_track([1.0], sample_rate=sr, duration=1.0)


def test_write_click_track_round_trip(tmp_path):
    path = testing.write_click_track(tmp_path / "c.wav", [0.25], sample_rate=8000, duration=0.5)
    y, sr = sf.read(path, dtype="float32")
    assert sr == 8000 and np.array_equal(y, testing.make_click_track([0.25], sample_rate=8000, duration=0.5))


def test_counter_video_frames_decode_to_their_index(tmp_path):
    path = testing.make_counter_video(tmp_path / "c.mp4", fps=10, duration=3.0)
    clip = read_video(path)
    assert [testing.counter_index(f) for f in clip.frames] == list(range(30))
    assert np.all(clip.frames[0, :12, :16, 0] > 180)  # red block in the stored top-left corner
    with pytest.raises(ValueError, match="50"):
        testing.make_counter_video(tmp_path / "long.mp4", fps=25, duration=3.0)


def test_bad_file_factories(tmp_path):
    assert testing.make_empty_file(tmp_path / "e.mp4").stat().st_size == 0
    assert testing.make_not_media_file(tmp_path / "t.mp4").read_text().startswith("This is a text file")
    src = testing.make_counter_video(tmp_path / "c.mp4")
    dst = testing.make_truncated_copy(src, tmp_path / "half.mp4", 0.5)
    assert dst.stat().st_size == src.stat().st_size // 2
    with pytest.raises(ValueError):
        testing.make_truncated_copy(src, tmp_path / "x.mp4", 1.5)
    with pytest.raises(ValueError, match="mkv"):
        testing.make_zero_frame_video(tmp_path / "z.mp4")
    info = probe(testing.make_audio_only_file(tmp_path / "a.m4a", duration=0.5))
    assert info.has_audio and not info.has_video
    assert sf.info(testing.make_zero_duration_audio(tmp_path / "z.wav")).frames == 0
