"""What the command line says: one line for an unknown model, no library FutureWarnings, notes for clipped
segments and skipped sub-folders, a warning for FD / IS from few clips, a progress bar and the analysis size
for motion, user words instead of Python names."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from foleykit.cli import main
from foleykit.media import write_audio
from foleykit.testing import make_click_track, make_moving_square_video

SR = 16000


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from foleykit.product.debug import save_debug_model

    d = tmp_path_factory.mktemp("messages")
    return {
        "dir": d,
        "model": save_debug_model(d / "model"),
        "clip": make_moving_square_video(d / "clip.mp4", duration=1.2, size=(32, 32), move_frames=(6, 18)),
        "wide": make_moving_square_video(d / "wide.mp4", duration=1.0, size=(320, 240), move_frames=(8, 16)),
        "wav": write_audio(d / "clicks.wav", make_click_track([0.3, 0.9], sample_rate=SR, duration=1.5), SR),
    }


def _run(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_unknown_model_is_one_line(media, tmp_path, capsys):
    for args in (
        ["generate", media["clip"], "-o", tmp_path / "x.wav", "--model", "no-such-model"],
        ["controls", "predict", media["clip"], "-o", tmp_path / "t.csv", "--model", tmp_path / "nowhere"],
    ):
        rc, _, err = _run(capsys, *args)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1, err
        assert lines[0].startswith("foleykit: error: model") and "was not found locally" in lines[0]
        assert "--model DIR" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_library_future_warnings_stay_off_the_terminal(media, tmp_path, monkeypatch, capsys):
    import foleykit.cli.controls as cli_controls

    def noisy(args):
        warnings.warn("torch.foo is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("a real problem", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli_controls, "run", noisy)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["controls"]) == 0
        kinds = [w.category for w in seen]
        assert kinds == [UserWarning]  # FutureWarning / DeprecationWarning silenced, the rest kept
        seen.clear()
        assert main(["-v", "controls"]) == 0  # -v shows them
        assert [w.category for w in seen] == [FutureWarning, DeprecationWarning, UserWarning]
        seen.clear()
        warnings.warn("after the command", FutureWarning, stacklevel=1)  # nothing changed globally
        assert [w.category for w in seen] == [FutureWarning]


def test_duration_past_the_end_is_noted(media, tmp_path, capsys):
    out = tmp_path / "rms.csv"
    rc, _, err = _run(
        capsys, "controls", "extract", media["wav"], "--kind", "rms", "-o", out, "--duration", "5"
    )
    assert rc == 0 and "foleykit: note: --duration 5 s from 0 s runs past the end of clicks.wav" in err
    rc, _, err = _run(
        capsys, "controls", "extract", media["wav"], "--kind", "rms", "-o", out, "--duration", "1"
    )
    assert rc == 0 and "note" not in err
    take = tmp_path / "take.wav"
    rc, _, err = _run(
        capsys, "generate", media["clip"], "-o", take, "--model", media["model"], "--steps", "1",
        "--start", "0.4", "--duration", "3",
    )  # fmt: skip
    assert rc == 0
    assert "foleykit: note: --duration 3 s from 0.4 s runs past the end of the video (1.20 s)" in err
    from foleykit.product.outputs import read_sidecar

    assert any("runs past the end" in n for n in read_sidecar(take)["notes"])
    rc, _, err = _run(
        capsys, "controls", "predict", media["clip"], "-o", tmp_path / "p.csv", "--model", media["model"],
        "--duration", "4",
    )  # fmt: skip
    assert rc == 0 and "runs past the end of the video clip.mp4" in err


def test_motion_is_decoded_at_the_analysis_size_with_progress(media, tmp_path, monkeypatch, capsys):
    import foleykit.media
    from foleykit.cli import controls as cli_controls
    from foleykit.controls import motion

    reads = []
    real = foleykit.media.read_video
    monkeypatch.setattr(foleykit.media, "read_video", lambda *a, **k: reads.append(k) or real(*a, **k))
    ticks = []
    real_call = cli_controls._Progress.__call__
    monkeypatch.setattr(
        cli_controls._Progress, "__call__", lambda self, d, t: ticks.append((d, t)) or real_call(self, d, t)
    )
    out = tmp_path / "m.json"
    rc, _, _ = _run(capsys, "controls", "extract", media["wide"], "--kind", "motion", "-o", out)
    assert rc == 0
    assert reads[-1]["size"] == cli_controls.MOTION_SIZE == 128  # decoded small, not at 320x240
    doc = json.loads(out.read_text())
    assert min(doc["meta"]["frame_size"]) == 128 and doc["meta"]["frame_size"] == [170, 128]
    assert ticks[-1] == (24, 24) and len(ticks) == 24  # one tick per optical-flow field
    assert np.argsort(doc["values"])[-2:].tolist() in ([8, 16], [16, 8])  # the jumps
    rc, _, _ = _run(
        capsys, "controls", "extract", media["wide"], "--kind", "motion", "-o", out, "--size", "full"
    )
    assert (
        rc == 0
        and reads[-1]["size"] is None
        and json.loads(out.read_text())["meta"]["frame_size"] == [320, 240]
    )
    calls = []
    c = motion(media["clip"], size=16, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(k, c.num_frames - 1) for k in range(1, c.num_frames)]


def test_motion_on_an_audio_file_names_no_python_function(media, tmp_path, capsys):
    rc, _, err = _run(
        capsys, "controls", "extract", media["wav"], "--kind", "motion", "-o", tmp_path / "m.csv"
    )
    assert rc == 2 and "no video stream" in err and "read_audio" not in err


def test_unreadable_file_names_its_path_once(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 20)
    rc, _, err = _run(capsys, "controls", "extract", bad, "--kind", "motion", "-o", tmp_path / "m.csv")
    assert rc == 2 and err.count(str(bad)) == 1, err


def test_batch_says_which_sub_folders_it_skipped(media, tmp_path, capsys):
    import shutil

    src = tmp_path / "videos"
    (src / "day2" / "deeper").mkdir(parents=True)
    (src / "empty").mkdir()
    shutil.copy(media["clip"], src / "a.mp4")
    shutil.copy(media["clip"], src / "day2" / "deeper" / "b.mp4")
    rc, _, err = _run(
        capsys, "generate", src, "-o", tmp_path / "out", "--format", "wav", "--model", media["model"],
        "--steps", "1",
    )  # fmt: skip
    assert rc == 0
    assert "foleykit: note: sub-folders are not searched; skipped (they hold videos): day2" in err
    assert "empty" not in err
    made = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "a.wav" in made and not any(n.startswith("b.") for n in made)


def test_eval_warns_about_fd_and_is_from_few_clips(tmp_path, capsys, monkeypatch):
    from foleykit.evaluation.evaluate import MIN_DISTRIBUTION_CLIPS, few_clip_warnings

    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "home"))
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    for i, stem in enumerate(("a", "b")):
        write_audio(gen / f"{stem}.wav", make_click_track([0.3 + 0.2 * i], sample_rate=SR, duration=2.0), SR)
        write_audio(ref / f"{stem}.wav", make_click_track([0.5], sample_rate=SR, duration=2.0), SR)
    out = tmp_path / "r.json"
    rc, table, err = _run(
        capsys, "eval", "--generated", gen, "--reference", ref, "--metrics", "fd,is,kl,e_l1", "--json", out,
        "--workers", "1", "--no-progress",
    )  # fmt: skip
    assert rc == 0
    warned = [
        line for line in err.splitlines() if line.startswith("foleykit: warning: FD / IS from 2 clip(s)")
    ]
    assert len(warned) == 1 and f"below {MIN_DISTRIBUTION_CLIPS} clips" in warned[0]
    report = json.loads(out.read_text())
    assert report["config"]["warnings"] == [warned[0].removeprefix("foleykit: warning: ")]
    fd_row = next(line for line in table.splitlines() if line.startswith("| fd"))
    assert "unreliable: 2 clips" in fd_row
    assert "unreliable" not in next(line for line in table.splitlines() if line.startswith("| kl"))
    rc, _, err = _run(
        capsys, "eval", "--generated", gen, "--reference", ref, "--metrics", "e_l1", "--workers", "1",
        "--no-progress",
    )  # fmt: skip
    assert rc == 0 and "warning" not in err
    assert few_clip_warnings(["fd", "fad"], MIN_DISTRIBUTION_CLIPS) == []
    assert "FD / FAD from 49 clip(s)" in few_clip_warnings(["fd", "fad", "kl"], 49)[0]
