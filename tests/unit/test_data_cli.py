"""``foleykit data``: the happy paths on a procedural bank and every error path's message."""

from __future__ import annotations

import json

import pytest

from foleykit.cli import main


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    out = tmp_path_factory.mktemp("home") / "bank"
    assert main(["data", "prepare-bank", "--procedural", "--output", str(out)]) == 0
    return out


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_prepare_procedural_and_info(bank, capsys):
    assert json.loads((bank / "bank.json").read_text())["license"] == "CC0-1.0"
    code, out, _ = run(capsys, "data", "bank-info", "--bank", str(bank))
    assert (
        code == 0
        and "footsteps/gravel" in out
        and "total                       81         27         27         27" in out
    )


def test_synth_events_cache_filter(bank, tmp_path, capsys):
    code, out, _ = run(
        capsys,
        "data",
        "synth",
        "--bank",
        str(bank),
        "--output",
        str(tmp_path / "s"),
        "--num-clips",
        "2",
        "--split",
        "test",
        "--size",
        "64x48",
        "--duration",
        "2",
        "--scenes",
        "footsteps,door",
        "--style",
        "flat",
        "--no-progress",
    )
    assert code == 0 and "wrote 2 clips" in out and "clips/s" in out
    assert (tmp_path / "s" / "test" / "manifest.csv").is_file()
    code, out, _ = run(
        capsys,
        "data",
        "events",
        "--bank",
        str(bank),
        "--output",
        str(tmp_path / "e"),
        "--num",
        "2",
        "--duration",
        "2",
    )
    assert code == 0 and len(list((tmp_path / "e").glob("*.wav"))) == 2
    code, out, _ = run(
        capsys,
        "data",
        "cache",
        "--input",
        str(tmp_path / "s" / "test"),
        "--output",
        str(tmp_path / "c"),
        "--extract",
        "rms,events",
        "--duration",
        "2",
    )
    assert code == 0 and "2 computed" in out
    code, out, _ = run(
        capsys,
        "data",
        "filter",
        "--input",
        str(tmp_path / "s" / "test"),
        "--output",
        str(tmp_path / "kept.csv"),
        "--av-align-min",
        "-1",
    )
    assert code == 0 and "kept 2 of 2" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["data", "synth", "--bank", "/nonexistent/bank", "--output", "o", "--num-clips", "1"],
            "sound bank /nonexistent/bank does not exist",
        ),
        (
            [
                "data",
                "synth",
                "--bank",
                "{bank}",
                "--output",
                "{tmp}/o",
                "--num-clips",
                "1",
                "--scenes",
                "dance",
            ],
            "unknown scene",
        ),
        (
            ["data", "cache", "--input", "{tmp}/bad.csv", "--output", "{tmp}/c", "--extract", "rms"],
            "lacks the column",
        ),
        (
            ["data", "cache", "--input", "{tmp}/nothing", "--output", "{tmp}/c", "--extract", "rms"],
            "does not exist",
        ),
        (
            ["data", "cache", "--input", "{tmp}/bad.csv", "--output", "{tmp}/c", "--extract", "latents"],
            "needs an autoencoder",
        ),
        (
            ["data", "cache", "--input", "{tmp}/bad.csv", "--output", "{tmp}/c", "--extract", "colour"],
            "unknown extractor",
        ),
        (
            ["data", "filter", "--input", "{tmp}/bad.csv", "--output", "{tmp}/k.csv", "--clap-min", "0.3"],
            "--clap-model",
        ),
        (["data", "prepare-bank", "--output", "{tmp}/b", "--extracted", "{tmp}/missing"], "does not exist"),
        (["data", "bank-info", "--bank", "{tmp}/missing"], "does not exist"),
    ],
)
def test_error_messages(bank, tmp_path, capsys, argv, message):
    (tmp_path / "bad.csv").write_text("file,text\nx.mp4,y\n")
    argv = [a.format(bank=bank, tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith("foleykit: error:") and message in err


def test_usage_errors(capsys):
    with pytest.raises(SystemExit):
        main(["data", "synth", "--output", "o", "--num-clips", "0"])
    assert "expected a number >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "synth", "--output", "o", "--num-clips", "1", "--size", "big"])
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    assert main(["data"]) == 2
