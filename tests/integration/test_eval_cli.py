"""``foleykit eval`` on small folders: pairing by stem across extensions, errors listed, JSON shape, workers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from foleykit.cli import main
from foleykit.media import write_audio
from foleykit.testing import make_click_track, make_moving_square_video, make_not_media_file


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "foleykit-home"))  # the evaluation cache lives there


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    gen, ref, vid = root / "gen", root / "ref", root / "vid"
    for d in (gen, ref, vid):
        d.mkdir()
    # a: generated clicks at both video jumps; b: only the first. Mixed rates, channels and containers.
    a = make_click_track([0.4, 1.2], sample_rate=44100, duration=2.0)
    write_audio(gen / "a.wav", np.stack([a, a]), 44100, subtype="FLOAT")
    write_audio(gen / "b.flac", make_click_track([0.4], sample_rate=16000, duration=2.0), 16000)
    for stem in ("a", "b"):
        write_audio(
            ref / f"{stem}.flac", make_click_track([0.4, 1.2], sample_rate=22050, duration=2.0), 22050
        )
        make_moving_square_video(vid / f"{stem}.mp4", fps=25.0, duration=2.0, move_frames=(10, 30))
    (gen / "notes.txt").write_text("ignored: not a media extension")
    return gen, ref, vid


def test_cli_eval_json_and_table(folders, tmp_path, capsys):
    gen, ref, vid = folders
    out = tmp_path / "report.json"
    rc = main(
        [
            "eval",
            "--generated",
            str(gen),
            "--reference",
            str(ref),
            "--videos",
            str(vid),
            "--metrics",
            "av_align,aa_align,onset,e_l1",
            "--json",
            str(out),
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert rc == 0
    report = json.loads(out.read_text())
    assert set(report) == {"metrics", "config"}
    assert set(report["metrics"]) == {"av_align", "aa_align", "onset_acc", "onset_ap", "e_l1"}
    assert report["metrics"]["av_align"]["per_file"] == {"a": 1.0, "b": 0.5}
    assert report["metrics"]["av_align"]["mean"] == pytest.approx(0.75)
    assert report["metrics"]["aa_align"]["per_file"] == {"a": 1.0, "b": 0.5}
    cfg = report["config"]
    assert cfg["workers"] == 2 and cfg["inputs"]["num_items"] == 2
    assert cfg["native_sample_rates"] == {"generated": [16000, 44100], "reference": [22050]}
    assert cfg["channels"]["generated"] == [1, 2] and cfg["video_fps"] == [25.0]
    assert cfg["protocols"]["aa_align"]["variant"] == "reference"
    stdout = capsys.readouterr().out
    assert "| metric | value | files | protocol |" in stdout and "| av_align ↑ | 0.7500 | 2 |" in stdout


def test_cli_variant_flags(folders, tmp_path):
    gen, ref, _ = folders
    out = tmp_path / "r.json"
    rc = main(
        [
            "eval",
            "--generated",
            str(gen),
            "--reference",
            str(ref),
            "--metrics",
            "aa_align,onset",
            "--aa-align-variant",
            "one-to-one",
            "--onset-mode",
            "strict",
            "--json",
            str(out),
            "--workers",
            "1",
        ]
    )
    assert rc == 0
    cfg = json.loads(out.read_text())["config"]["protocols"]
    assert cfg["aa_align"]["variant"] == "one-to-one" and cfg["onset"]["mode"] == "strict"


def test_cli_lists_every_unpaired_file(folders, tmp_path, capsys):
    gen, ref, _ = folders
    extra_gen, extra_ref = tmp_path / "g", tmp_path / "r"
    extra_gen.mkdir()
    extra_ref.mkdir()
    for src in gen.iterdir():
        (extra_gen / src.name).write_bytes(src.read_bytes())
    for src in ref.iterdir():
        (extra_ref / src.name).write_bytes(src.read_bytes())
    write_audio(extra_gen / "c.wav", np.zeros(16000, np.float32), 16000)
    write_audio(extra_ref / "d.wav", np.zeros(16000, np.float32), 16000)
    write_audio(extra_ref / "a.wav", np.zeros(16000, np.float32), 16000)  # a.flac and a.wav: duplicate stem
    out = tmp_path / "never.json"
    rc = main(["eval", "--generated", str(extra_gen), "--reference", str(extra_ref), "--json", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert "generated/c.wav: no reference file with stem 'c'" in err
    assert "reference/d.wav: no generated file with stem 'd'" in err
    assert "stem 'a' has 2 files" in err
    rc = main(["eval", "--generated", str(extra_gen), "--reference", str(tmp_path / "missing")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_cli_bad_files_listed_or_skipped(folders, tmp_path, capsys):
    gen, ref, _ = folders
    g = tmp_path / "gen"
    g.mkdir()
    (g / "a.wav").write_bytes((gen / "a.wav").read_bytes())
    make_not_media_file(g / "b.wav")
    args = ["eval", "--generated", str(g), "--reference", str(ref), "--metrics", "aa_align", "--workers", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "could not be evaluated" in err and "b.wav" in err
    out = tmp_path / "r.json"
    assert main([*args, "--skip-errors", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report["metrics"]["aa_align"]["per_file"]) == ["a"]
    assert "b.wav" in report["config"]["inputs"]["skipped_files"][0]
    assert "skipped" in capsys.readouterr().err


def test_cli_cache_reuses_video_peaks_and_embeddings(folders, tmp_path):
    gen, ref, vid = folders
    args = [
        "eval",
        "--generated",
        str(gen),
        "--reference",
        str(ref),
        "--videos",
        str(vid),
        "--metrics",
        "av_align,fd,kl",
        "--workers",
        "1",
    ]
    first, second, off = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "3.json"
    assert main([*args, "--json", str(first)]) == 0
    assert main([*args, "--json", str(second)]) == 0
    assert main([*args, "--json", str(off), "--no-cache"]) == 0
    r1, r2, r3 = (json.loads(p.read_text()) for p in (first, second, off))
    assert r1["config"]["cache"]["hits"] == 0
    assert r2["config"]["cache"]["hits"] == 2 + 4  # two videos' peaks, four clips' embeddings
    assert r3["config"]["cache"] == {"dir": None, "hits": 0}
    assert r1["metrics"] == r2["metrics"] == r3["metrics"]
    assert str(tmp_path / "foleykit-home") in r1["config"]["cache"]["dir"]


def test_cli_missing_embedder_weights(folders, tmp_path, monkeypatch, capsys):
    gen, ref, _ = folders
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    rc = main(
        ["eval", "--generated", str(gen), "--reference", str(ref), "--metrics", "fd", "--embedder", "panns"]
    )
    assert rc == 2 and "Cnn14_mAP=0.431.pth" in capsys.readouterr().err


def test_cli_generated_videos_are_their_own_video(tmp_path, capsys):
    gen = tmp_path / "gen"
    gen.mkdir()
    # generated .mp4 files with sound: AV-Align runs by default on their own frames (clicks at the jumps)
    make_moving_square_video(gen / "x.mp4", fps=25.0, duration=2.0, move_frames=(10, 30), audio="clicks")
    out = tmp_path / "r.json"
    assert main(["eval", "--generated", str(gen), "--json", str(out), "--workers", "1"]) == 0
    report = json.loads(out.read_text())
    assert report["config"]["metrics"] == ["av_align", "is"]
    assert report["metrics"]["av_align"]["per_file"] == {"x": 1.0}
