"""Window plans, scene cuts, equal-power crossfades, the assembly timeline, sharding and devices."""

from __future__ import annotations

import functools
import itertools
import math
import operator

import numpy as np
import pytest

from foleykit.errors import ConfigError
from foleykit.product.runtime import resolve_device, shard, shard_info
from foleykit.product.windows import (
    Timeline,
    Window,
    correlation,
    crossfade_gains,
    cut_scores,
    detect_scene_cuts,
    merge_close_cuts,
    plan_windows,
)

GRID = 0.04  # 25 Hz latent frames


def _on_grid(t: float, start: float = 0.0) -> bool:
    k = (t - start) / GRID
    return abs(k - round(k)) < 1e-6


def _check_plan(plan: list[Window], start: float, end: float, window: float) -> None:
    assert plan[0].start == start and plan[-1].end == end
    assert plan[0].join_in == "start" and plan[-1].join_out == "end"
    for a, b in itertools.pairwise(plan):
        assert b.start < a.end, "consecutive windows must overlap"
        assert a.start < b.start, "windows must advance"
        assert a.join_out == b.join_in
        assert _on_grid(a.end, start) and _on_grid(b.start, start)
    for w in plan:
        assert w.duration <= window + 1e-9


def test_plan_short_segment_is_one_window():
    assert plan_windows(1.0, 1.9, window=1.0, overlap=0.2, grid=GRID) == [Window(1.0, 1.9)]


def test_plan_long_segment_overlaps_on_the_grid():
    plan = plan_windows(0.0, 3.3, window=1.0, overlap=0.2, grid=GRID)
    _check_plan(plan, 0.0, 3.3, 1.0)
    # full windows first (0-1, 0.8-1.8), then what is left (1.6-3.3 = 1.7 s <= 2 * 1 - 0.2) split evenly
    assert [(round(w.start, 6), round(w.end, 6)) for w in plan] == [
        (0.0, 1.0),
        (0.8, 1.8),
        (1.6, 2.56),
        (2.36, 3.3),
    ]
    assert all(round(a.end - b.start, 6) == 0.2 for a, b in itertools.pairwise(plan))


def test_plan_even_split_avoids_a_tiny_last_window():
    plan = plan_windows(0.0, 1.1, window=1.0, overlap=0.2, grid=GRID)
    assert len(plan) == 2
    assert min(w.duration for w in plan) >= 0.6 - 1e-9  # not 1.0 + a 0.3 s stub


def test_plan_puts_joins_at_scene_cuts():
    plan = plan_windows(0.0, 3.0, window=1.0, overlap=0.2, grid=GRID, cuts=[0.72, 1.52])
    _check_plan(plan, 0.0, 3.0, 1.0)
    assert (plan[0].join_out, round(plan[0].end, 6), round(plan[1].start, 6)) == ("cut", 0.76, 0.68)
    assert (plan[1].join_out, round(plan[1].end, 6), round(plan[2].start, 6)) == ("cut", 1.56, 1.48)
    assert plan[2].join_in == "cut"


def test_plan_ignores_cuts_that_would_make_a_short_window():
    plan = plan_windows(0.0, 3.0, window=1.0, overlap=0.2, grid=GRID, cuts=[0.2])
    assert plan[0].join_out == "overlap" and round(plan[0].end, 6) == 1.0


@pytest.mark.parametrize(
    "kw",
    [{"window": 0.1, "overlap": 0.04}, {"window": 1.0, "overlap": 0.6}, {"window": -1.0, "overlap": 0.2}],
)
def test_plan_rejects_bad_settings(kw):
    with pytest.raises(ConfigError):
        plan_windows(0.0, 5.0, grid=GRID, **kw)


def test_equal_power_gains():
    g_out, g_in = crossfade_gains(1000, 0.0)
    np.testing.assert_allclose(g_out**2 + g_in**2, 1.0, atol=1e-6)
    assert g_out[0] > 0.99 and g_in[-1] > 0.99 and g_out[-1] < 0.01
    g_out, g_in = crossfade_gains(1000, 1.0)  # identical signals: amplitude preserved
    np.testing.assert_allclose(g_out + g_in, 1.0, atol=1e-6)


def test_crossfade_keeps_the_power_of_independent_noise():
    rng = np.random.default_rng(0)
    sr, n = 16000, 16000
    tl = Timeline(start=0.0, num_samples=3 * n // 2, sample_rate=sr)
    a, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    rho1 = tl.place(Window(0.0, 1.0), a)
    rho2 = tl.place(Window(0.5, 1.5), b)
    assert rho1 == 0.0 and rho2 < 0.05
    fade = tl.audio[n // 2 : n]
    for chunk in np.split(fade, 8):  # power of every 62 ms slice of the fade within 15% of 1
        assert abs(float(np.mean(chunk**2)) - 1.0) < 0.15
    np.testing.assert_array_equal(tl.audio[: n // 2], a[: n // 2])
    np.testing.assert_array_equal(tl.audio[n:], b[n // 2 :])


def test_crossfade_of_a_continuation_is_seamless():
    sr = 16000
    t = np.arange(2 * sr) / sr
    sig = (0.5 * np.sin(2 * math.pi * 220 * t)).astype(np.float32)
    tl = Timeline(start=0.0, num_samples=2 * sr, sample_rate=sr)
    tl.place(Window(0.0, 1.2), sig[: int(1.2 * sr)])
    rho = tl.place(Window(0.8, 2.0), sig[int(0.8 * sr) :])
    assert rho > 0.999
    np.testing.assert_allclose(tl.audio, sig, atol=2e-3)  # no +3 dB bulge, no gap


def test_correlation_edge_cases():
    x = np.ones(10, np.float32)
    assert correlation(x, np.zeros(10, np.float32)) == 0.0
    assert correlation(x, -x) == 0.0
    assert correlation(x, 2 * x) == pytest.approx(1.0)


def _shots(n_frames: int, cut_frames: list[int], size=(64, 48)) -> np.ndarray:
    """Frames with a moving bar whose background colour changes at each cut frame."""
    w, h = size
    palette = [(30, 40, 160), (200, 60, 40), (40, 170, 60), (220, 220, 220)]
    out = np.empty((n_frames, h, w, 3), np.uint8)
    shot = 0
    for i in range(n_frames):
        if i in cut_frames:
            shot += 1
        out[i] = palette[shot % len(palette)]
        x = (3 * i) % (w - 8)
        out[i, 10:38, x : x + 8] = 128  # motion inside every shot
    return out


def test_cut_scores_peak_at_a_cut_only():
    frames = _shots(20, [12])
    hist, mad = cut_scores(frames)
    assert hist.shape == (19,) and int(np.argmax(hist)) == 11  # between frames 11 and 12
    assert hist[11] > 0.8 and np.max(np.delete(hist, 11)) < 0.05
    assert mad[11] > 0.3


def test_detect_scene_cuts_in_a_video(tmp_path):
    from foleykit.media import write_video

    fps = 25
    path = write_video(tmp_path / "shots.mp4", _shots(90, [30, 62]), fps, crf=10)
    cuts = detect_scene_cuts(path, chunk_seconds=1.0)  # chunks: a cut on a chunk edge is still found
    assert len(cuts) == 2
    np.testing.assert_allclose(cuts, [30 / fps, 62 / fps], atol=1.01 / fps)
    assert detect_scene_cuts(path, start=1.4) == pytest.approx([62 / fps], abs=1.01 / fps)


def test_flashing_picture_is_one_cut_not_a_burst(tmp_path):
    """A strobe (2.4 s of the picture flashing every 2-3 frames) between two real cuts: each flash passes the
    detector's tests, but a run of cuts closer than 0.5 s is one event (the strongest is kept)."""
    from foleykit.media import write_video

    fps = 25
    frames = _shots(150, [20, 130])  # real cuts at 0.8 s and 5.2 s
    flashes = [f for f in range(50, 110) if (f // 2) % 3 == 0 or f % 5 == 0]  # 2.0-4.4 s: 2.4 s of strobe
    frames[flashes] = 255 - frames[flashes]
    path = write_video(tmp_path / "strobe.mp4", frames, fps, crf=10)
    raw = detect_scene_cuts(path, min_gap=0.0)
    assert len([c for c in raw if 1.9 < c < 4.5]) >= 8  # what the detector sees frame by frame
    cuts = detect_scene_cuts(path)
    inside = [c for c in cuts if 1.9 < c < 4.5]
    assert len(inside) <= 1
    assert [c for c in cuts if not 1.9 < c < 4.5] == pytest.approx([20 / fps, 130 / fps], abs=1.01 / fps)
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(cuts))


def test_merge_close_cuts_keeps_the_strongest_of_each_run():
    times = [1.0, 1.2, 1.4, 1.6, 3.0, 5.0, 5.3]
    scores = [0.4, 0.9, 0.5, 0.9, 0.7, 0.5, 0.6]
    assert merge_close_cuts(times, scores, min_gap=0.5) == [1.2, 3.0, 5.3]  # ties: the earliest
    assert merge_close_cuts(times, scores, min_gap=0.0) == times
    assert merge_close_cuts([], [], min_gap=0.5) == []
    with pytest.raises(ConfigError):
        merge_close_cuts([1.0], [], min_gap=0.5)


def test_shard_info_from_torchrun_and_accelerate_env():
    assert shard_info({}) == (0, 1)
    assert shard_info({"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "0"}) == (2, 4)
    for bad in ({"RANK": "4", "WORLD_SIZE": "4"}, {"RANK": "x", "WORLD_SIZE": "2"}, {"WORLD_SIZE": "0"}):
        with pytest.raises(ConfigError):
            shard_info(bad)


def test_shards_partition_the_list():
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert parts[0] == [0, 3, 6, 9] and parts[2] == [2, 5, 8]
    assert sorted(functools.reduce(operator.iadd, parts, [])) == items


def test_resolve_device():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")
    else:  # pragma: no cover - GPU machines
        assert resolve_device("cuda", env={"LOCAL_RANK": "1"}) == "cuda:1"
