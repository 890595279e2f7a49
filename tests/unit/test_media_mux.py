"""foleykit.media.mux: containers that cannot hold the source's codec get the picture re-encoded (same frames
and timestamps), .webm outputs (VP9 + Opus), the plan made before anything is written."""

from __future__ import annotations

import importlib

import av
import numpy as np
import pytest

from foleykit import testing
from foleykit.errors import MediaError
from foleykit.media import mux_video, plan_mux, probe, read_audio, write_video

SR = 16000
mux_mod = importlib.import_module("foleykit.media.mux")  # `foleykit.media.mux` is also the function


def frames_and_times(path):
    """Decoded frames as YUV 4:4:4 planes ``(T, 3, H, W)`` float and their times from the stream start (s)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        start = vs.start_time or 0
        frames, times = [], []
        for f in c.decode(vs):
            if f.format.name.startswith(("rgb5", "pal")):  # as players show it (5-bit 31 -> 255)
                f = f.reformat(format="rgb24")
            frames.append(f.reformat(format="yuv444p").to_ndarray().astype(np.float64))
            times.append(float((f.pts - start) * vs.time_base))
    return np.stack(frames), np.array(times)


def luma_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a[:, 0] - b[:, 0]) ** 2)))


@pytest.mark.parametrize("codec", ["msvideo1", "cinepak"])
def test_legacy_codec_mkv_gets_every_video_container_with_the_same_frames(tmp_path, codec):
    src = testing.make_legacy_codec_video(tmp_path / f"old_{codec}.mkv", codec=codec, duration=1.0)
    assert probe(src).video_codec == codec and probe(src).format_name.startswith("matroska")
    ref, ref_t = frames_and_times(src)
    for suffix in (".mp4", ".mkv"):
        out = tmp_path / f"out{suffix}"
        plan = plan_mux(src, out)
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
            src.name
        ]  # nothing written
        assert (plan.video, plan.source_codec, plan.codec) == ("encode", codec, "h264")
        assert plan.note and codec in plan.note and plan.encoder == "libx264 crf 14 yuv420p"
        done = mux_video(src, np.full(SR, 0.1, np.float32), SR, out)
        assert done == plan
        got, got_t = frames_and_times(out)
        assert len(got) == len(ref) == 20
        np.testing.assert_allclose(got_t, ref_t, atol=1e-3)  # every frame at its own time
        assert luma_psnr(ref, got) > 45  # near-lossless picture
        info = probe(out)
        assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 320, 240)
        assert info.video_duration == pytest.approx(1.0, abs=1e-3)
        assert abs(info.audio_duration - info.video_duration) <= 0.05
        out.unlink()


def test_copy_only_refuses_with_the_containers_that_hold_the_codec(tmp_path):
    src = testing.make_legacy_codec_video(tmp_path / "old.avi", codec="cinepak", duration=0.5)
    out = tmp_path / "out" / "take.mp4"
    with pytest.raises(
        MediaError, match=r"take\.mp4: the \.mp4 container cannot hold cinepak video.*Use \.mov"
    ):
        mux_video(src, np.zeros(SR, np.float32), SR, out, video="copy")
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    plan = plan_mux(src, tmp_path / "take.mov")  # QuickTime holds Cinepak: copied
    assert plan.video == "copy" and plan.note is None


def test_prores_is_copied_into_mov_and_reencoded_for_mp4(tmp_path):
    frames = testing.make_moving_square_frames(10, size=(64, 48), move_frames=(4,))
    src = tmp_path / "master.mov"
    with av.open(str(src), "w") as c:
        s = c.add_stream("prores_ks", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv422p10le"
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    mov = mux_video(src, np.zeros(SR, np.float32), SR, tmp_path / "a.mov")
    assert mov.video == "copy"
    mp4 = tmp_path / "a.mp4"
    plan = mux_video(src, np.zeros(SR, np.float32), SR, mp4)
    assert (plan.video, plan.codec, probe(mp4).video_codec) == ("encode", "h264", "h264")
    a, b = frames_and_times(src)[0], frames_and_times(mp4)[0]
    assert len(a) == len(b) == 10 and luma_psnr(a, b) > 45


def test_webm_output_is_vp9_and_opus_with_timestamps_and_rotation_kept(tmp_path):
    src = testing.make_counter_video(
        tmp_path / "vfr.mp4", timestamps=[0.0, 0.04, 0.2, 0.24, 0.5], duration=0.6, rotation=90
    )
    out = tmp_path / "take.webm"
    wav = testing.make_click_track([0.3], sample_rate=SR, duration=0.6, amplitude=0.5)
    plan = mux_video(src, wav, SR, out, keep_original_audio=True)
    assert (plan.video, plan.codec, plan.audio_codec) == ("encode", "vp9", "opus")
    info = probe(out)
    assert (info.video_codec, info.audio_codec, info.rotation) == ("vp9", "opus", 90)
    np.testing.assert_allclose(frames_and_times(out)[1], [0.0, 0.04, 0.2, 0.24, 0.5], atol=1e-3)
    y = read_audio(out, sample_rate=SR)
    assert abs(np.flatnonzero(np.abs(y) > 0.2)[0] - 0.3 * SR) < 0.01 * SR  # the click stays in place
    # a VP9 source is copied into .webm untouched; an AAC original track is re-encoded as Opus
    vp9 = write_video(
        tmp_path / "vp9.mkv",
        testing.make_moving_square_frames(5, size=(64, 48), move_frames=(2,)),
        25,
        codec="libvpx-vp9",
        audio=wav,
        sample_rate=SR,
    )
    plan = plan_mux(vp9, tmp_path / "v.webm", keep_original_audio=True)
    assert (plan.video, plan.original_audio) == ("copy", "encode")
    mux_video(vp9, wav, SR, tmp_path / "v.webm", keep_original_audio=True, plan=plan)
    with av.open(str(tmp_path / "v.webm")) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["opus", "opus"]


def test_a_copy_that_ffmpeg_rejects_midway_is_reencoded(tmp_path, monkeypatch):
    src = testing.make_legacy_codec_video(tmp_path / "old.avi", codec="msvideo1", duration=0.5)
    monkeypatch.setattr(mux_mod, "_can_hold", lambda suffix, streams: None)  # the dry run is fooled
    out = tmp_path / "o" / "take.mp4"
    plan = mux_video(src, np.zeros(SR, np.float32), SR, out)
    assert plan.video == "encode" and "could not copy" in plan.reason
    assert probe(out).video_codec == "h264" and [p.name for p in out.parent.iterdir()] == ["take.mp4"]


def test_av1_is_copied_although_its_decoder_cannot_encode(tmp_path):
    frames = testing.make_moving_square_frames(4, size=(64, 64), move_frames=(2,))  # SVT-AV1: >= 64 px
    src = write_video(tmp_path / "av1.mkv", frames, 25, codec="libsvtav1")
    assert probe(src).video_codec in ("libdav1d", "av1")  # FFmpeg names the decoder
    for suffix in (".mp4", ".webm"):
        out = tmp_path / f"o{suffix}"
        plan = mux_video(src, np.zeros(SR, np.float32), SR, out)
        assert (plan.video, plan.source_codec) == ("copy", "av1")
        with av.open(str(src)) as a, av.open(str(out)) as b:
            assert [bytes(p) for p in a.demux(a.streams.video[0]) if p.size] == [
                bytes(p) for p in b.demux(b.streams.video[0]) if p.size
            ]
