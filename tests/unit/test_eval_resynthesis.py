"""benchmarks/eval_resynthesis.py on a debug model and two generated sounds: rows, lengths, metric sanity
(zero for a perfect reconstruction, ordered for worse ones) and the paired comparison."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_resynthesis.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("eval_resynthesis", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_metrics_are_zero_for_the_original_and_grow_with_damage(bench):
    from foleykit.config import SequenceConfig

    seq = SequenceConfig(duration=1.0)
    rng = np.random.default_rng(0)
    ref = {"a": (0.3 * rng.standard_normal(7000)).astype(np.float32)}  # not a whole number of hops
    pad = np.zeros(7040, np.float32)
    pad[:7000] = ref["a"]
    same = bench.clip_metrics(ref, {"a": pad}, seq)
    assert same["mr_stft"]["a"] == pytest.approx(0, abs=1e-6) and same["mel_l1"]["a"] == 0
    small = bench.clip_metrics(ref, {"a": pad + 0.01 * rng.standard_normal(7040).astype(np.float32)}, seq)
    big = bench.clip_metrics(ref, {"a": pad + 0.3 * rng.standard_normal(7040).astype(np.float32)}, seq)
    for m in ("mr_stft", "mel_l1"):
        assert 0 < small[m]["a"] < big[m]["a"]


def test_end_to_end_on_a_folder(bench, tmp_path):
    from foleykit.recipes import build_pipeline

    build_pipeline("foleykit_demo", size="debug").save_pretrained(tmp_path / "model")
    audio = tmp_path / "audio" / "sub"
    audio.mkdir(parents=True)
    t = np.arange(12000) / 16000
    sf.write(audio / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    sf.write(audio.parent / "noise.flac", (0.1 * np.random.default_rng(1).standard_normal(9000)), 16000)
    out = tmp_path / "r.json"
    argv = ["--audio", str(tmp_path / "audio"), "--model", str(tmp_path / "model"), "--json", str(out)]
    extra = ["--griffin-lim", "--gl-from-vocoder", "--gl-iters", "8"]
    assert bench.main([*argv, "--compare", str(tmp_path / "model"), *extra]) == 0
    rep = json.loads(out.read_text())
    rows = rep["model"]["rows"]
    names = ["vocoder", "vae+vocoder", "griffin-lim", "vae+griffin-lim", "vocoder+gl", "vae+vocoder+gl"]
    assert sorted(rows) == sorted(names) and rep["model"]["num_clips"] == 2
    assert all(rows[r]["waveform_seconds"] > 0 for r in rows)
    # Griffin-Lim from the (untrained) vocoder's phase fits the mel far better than that vocoder does
    assert rows["vocoder+gl"]["mel_l1"] < rows["vocoder"]["mel_l1"]
    assert set(rows["vocoder"]["per_clip"]["mel_l1"]) == {"noise", "sub__tone"}
    # an untrained debug vocoder is far worse than Griffin-Lim on magnitudes
    assert rows["griffin-lim"]["mel_l1"] < rows["vocoder"]["mel_l1"]
    assert all(np.isfinite(rows[r][m]) for r in rows for m in ("mr_stft", "mel_l1", "fd", "fad"))
    assert rep["model"]["vae_mel_l1"] > 0
    assert all(d["diff"] == 0 for d in rep["differences"].values())  # the same model twice
