"""The suite API on in-memory clips: metric selection, pairing, decode-once sharing, report shape, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from foleykit.errors import ConfigError, EvaluationError
from foleykit.evaluation import METRICS, EvalConfig, EvalReport, evaluate, get_embedder
from foleykit.evaluation.metrics import energy as EN
from foleykit.evaluation.metrics import envelope as E
from foleykit.testing import make_click_track, make_moving_square_frames

SR = 16000


def clicks(times, sr=SR, dur=2.0):
    return make_click_track(times, sample_rate=sr, duration=dur)


@pytest.fixture(scope="module")
def square():
    return make_moving_square_frames(50, move_frames=(10, 30))  # video peaks at 0.4 s and 1.2 s (25 fps)


@pytest.fixture(scope="module")
def full_report(square):
    gen = {"a": clicks([0.4, 1.2]), "b": clicks([0.4])}
    ref = {"a": clicks([0.4, 1.2]), "b": clicks([0.4, 1.2])}
    vids = {"a": (square, 25.0), "b": (square, 25.0)}
    return evaluate(gen, ref, vids, sample_rate=SR)


def test_default_runs_every_metric_the_inputs_allow(full_report):
    assert full_report.config["metrics"] == [
        "av_align",
        "aa_align",
        "onset",
        "e_l1",
        "rms_acc",
        "energy_mae",
        "loudness",
        "fd",
        "fad",
        "kl",
        "is",
        "match",
    ]
    assert list(full_report.metrics) == [
        "av_align",
        "aa_align",
        "onset_acc",
        "onset_ap",
        "e_l1",
        "rms_acc",
        "rms_acc_tol2",
        "energy_mae",
        "loudness_corr",
        "loudness_margin",
        "fd",
        "fad",
        "kl",
        "is",
        "match_rank",
    ]
    # a: clicks at both video peaks -> 1; b: one click -> 1 / (1 + 2 - 1) = 0.5
    assert full_report.metrics["av_align"].per_file == {"a": 1.0, "b": 0.5}
    assert full_report["av_align"] == pytest.approx(0.75)
    assert full_report.metrics["aa_align"].per_file == {"a": 1.0, "b": 0.5}
    assert full_report.metrics["onset_acc"].per_file == {"a": 1.0, "b": 0.5}
    assert full_report.metrics["e_l1"].per_file["a"] == 0.0
    assert full_report.metrics["energy_mae"].per_file["a"] == 0.0
    assert full_report.metrics["rms_acc"].per_file["a"] == 1.0
    assert full_report.metrics["kl"].per_file["a"] == pytest.approx(0.0, abs=1e-4)  # identical clips
    assert full_report.metrics["fd"].per_file == {} and np.isfinite(full_report["fd"])
    assert {"std", "splits"} <= set(full_report.metrics["is"].extra)


def test_report_json_shape_and_config(full_report, tmp_path):
    d = json.loads(json.dumps(full_report.to_dict()))
    assert set(d) == {"metrics", "config"}
    for res in d["metrics"].values():
        assert {"mean", "per_file"} <= set(res)
    cfg = d["config"]
    assert cfg["inputs"]["num_items"] == 2 and cfg["native_sample_rates"]["generated"] == [SR]
    assert cfg["clip_seconds"]["reference"] == {"min": 2.0, "mean": 2.0, "max": 2.0}
    assert cfg["video_fps"] == [25.0]
    assert cfg["protocols"]["av_align"]["variant"] == "reference"
    assert cfg["protocols"]["onset"]["clip_seconds"] == 2.0
    assert cfg["protocols"]["fd"]["embedder"] == "aisfx" and cfg["protocols"]["fd"]["sample_rate"] == 44100
    out = full_report.write_json(tmp_path / "r" / "report.json")
    assert json.loads(out.read_text())["metrics"]["av_align"]["mean"] == pytest.approx(0.75)
    table = full_report.to_markdown()
    assert (
        table.startswith("| metric | value | files | protocol |") and "| av_align ↑ | 0.7500 | 2 |" in table
    )


def test_selected_metrics_equal_direct_calls_across_rates_and_channels():
    rng = np.random.default_rng(0)
    g = np.stack([rng.standard_normal(44100).astype(np.float32) * 0.2] * 2)  # stereo 44.1 kHz
    r = rng.standard_normal(22050).astype(np.float32) * 0.1  # mono 22.05 kHz, different length
    rep = evaluate({"x": (g, 44100)}, {"x": (r, 22050)}, metrics="e_l1,energy_mae")
    assert rep.metrics["e_l1"].per_file["x"] == pytest.approx(
        E.e_l1(g, r, 44100, reference_sample_rate=22050)
    )
    expected = EN.energy_mae(g, r, 44100, reference_sample_rate=22050)
    assert rep.metrics["energy_mae"].per_file["x"] == pytest.approx(expected, rel=1e-6)
    assert rep.config["channels"] == {"generated": [2], "reference": [1]}


def test_variants_reach_the_metrics():
    frames = make_moving_square_frames(20, move_frames=(4, 12))  # 10 fps: peaks at 0.4 s and 1.2 s
    gen = {"v": make_click_track([0.33, 0.45, 1.2], sample_rate=22050, duration=2.0)}
    kwargs = {"sample_rate": 22050, "metrics": ["av_align"]}
    assert evaluate(gen, videos={"v": (frames, 10.0)}, **kwargs)["av_align"] == pytest.approx(2 / 3)
    legacy = evaluate(gen, videos={"v": (frames, 10.0)}, av_align_variant="legacy", **kwargs)
    assert legacy["av_align"] == pytest.approx(1.5)
    assert legacy.config["protocols"]["av_align"]["matching"] == "many-to-one"
    silent = {"v": np.zeros(2 * 22050, np.float32)}
    ref = {"v": make_click_track([0.5], sample_rate=22050, duration=2.0)}
    strict = evaluate(silent, ref, sample_rate=22050, metrics="onset", onset_mode="strict")
    assert (strict["onset_acc"], strict["onset_ap"]) == (0.0, 0.0)
    assert evaluate(silent, ref, sample_rate=22050, metrics="onset")["onset_ap"] == 1.0  # reference quirk


def test_metric_selection_errors():
    gen = {"a": clicks([0.4])}
    assert evaluate(gen, sample_rate=SR).config["metrics"] == ["is"]  # only the generated side was given
    with pytest.raises(ConfigError, match="aa_align needs --reference"):
        evaluate(gen, sample_rate=SR, metrics=["aa_align"])
    with pytest.raises(ConfigError, match="av_align needs --videos"):
        evaluate(gen, sample_rate=SR, metrics="av_align")
    with pytest.raises(ConfigError, match="clap needs --prompts and --clap-model"):
        evaluate(gen, sample_rate=SR, metrics="clap")
    with pytest.raises(ConfigError, match="unknown metric"):
        evaluate(gen, sample_rate=SR, metrics="mos")
    with pytest.raises(ConfigError, match="unknown option"):
        evaluate(gen, sample_rate=SR, onset_mod="strict")
    with pytest.raises(ConfigError, match="onset_mode"):
        EvalConfig(onset_mode="lenient")
    with pytest.raises(ConfigError, match="workers"):
        evaluate(gen, sample_rate=SR, workers=0)
    with pytest.raises(ConfigError, match="logits"):
        evaluate(gen, gen, sample_rate=SR, metrics="kl", embedder="aisfx", embedder_options={"head": None})
    assert set(METRICS) >= {
        "av_align",
        "aa_align",
        "onset",
        "e_l1",
        "rms_acc",
        "energy_mae",
        "fd",
        "kl",
        "is",
        "clap",
    }


def test_pairing_in_memory():
    gen = {"a": clicks([0.4]), "b": clicks([0.4])}
    ref = {"a": clicks([0.4]), "c": clicks([0.4])}
    with pytest.raises(EvaluationError) as err:
        evaluate(gen, ref, sample_rate=SR, metrics="aa_align")
    assert "generated clip 'b': no reference" in str(err.value) and "reference clip 'c': no generated" in str(
        err.value
    )
    rep = evaluate(gen, ref, sample_rate=SR, metrics="aa_align", allow_unpaired=True)
    assert (
        list(rep.metrics["aa_align"].per_file) == ["a"] and len(rep.config["inputs"]["unpaired_ignored"]) == 2
    )
    with pytest.raises(EvaluationError, match="no sample rate"):
        evaluate(gen, ref, metrics="aa_align")
    with pytest.raises(EvaluationError, match="not a single array"):
        evaluate(clicks([0.4]), sample_rate=SR)
    seq = evaluate(
        [clicks([0.4]), clicks([0.4])], [clicks([0.4]), clicks([1.0])], sample_rate=SR, metrics="aa_align"
    )
    assert seq.metrics["aa_align"].per_file == {"000": 1.0, "001": 0.0}


def test_file_errors_listed_or_skipped():
    gen = {"ok": clicks([0.4]), "tiny": np.zeros(100, np.float32)}  # too short for the energy mel
    ref = {"ok": clicks([0.4]), "tiny": np.zeros(100, np.float32)}
    with pytest.raises(EvaluationError, match=r"(?s)1 file\(s\) could not be evaluated.*tiny.*too short"):
        evaluate(gen, ref, sample_rate=SR, metrics="energy_mae")
    rep = evaluate(gen, ref, sample_rate=SR, metrics="energy_mae", skip_errors=True)
    assert list(rep.metrics["energy_mae"].per_file) == ["ok"]
    assert "tiny" in rep.config["inputs"]["skipped_files"][0]


def test_set_metrics_with_one_clip_are_skipped_not_fatal():
    rep = evaluate({"a": clicks([0.4])}, {"a": clicks([0.4])}, sample_rate=SR, metrics="fd,kl,is")
    assert rep["fd"] is None and "needs >= 2" in rep.metrics["fd"].extra["skipped"]
    assert rep.to_dict()["metrics"]["fd"]["mean"] is None
    assert rep["kl"] is not None and rep["is"] == pytest.approx(1.0)
    assert "n/a" in rep.to_markdown()


def test_embedder_cache_and_report_lookup():
    assert get_embedder("aisfx") is get_embedder("aisfx", {})
    rep = EvalReport(metrics={}, config={})
    assert rep.means() == {} and rep.to_markdown().count("\n") == 2


def test_cache_keys_on_file_identity_and_parameters(tmp_path):
    import os

    from foleykit.evaluation.cache import cached

    src = tmp_path / "clip.wav"
    src.write_bytes(b"x" * 10)
    calls = []

    def compute():
        calls.append(1)
        return {"v": np.arange(3.0)}

    d = str(tmp_path / "cache")
    v, hit = cached(d, "k", src, {"p": 1}, compute)
    assert not hit and v["v"].tolist() == [0.0, 1.0, 2.0]
    v, hit = cached(d, "k", src, {"p": 1}, compute)
    assert hit and v["v"].tolist() == [0.0, 1.0, 2.0] and len(calls) == 1
    assert not cached(d, "k", src, {"p": 2}, compute)[1]  # other parameters: other entry
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed: recomputed
    assert not cached(d, "k", src, {"p": 1}, compute)[1]
    for entry in (tmp_path / "cache").iterdir():
        entry.write_bytes(b"garbage")  # unreadable entries are recomputed
    assert not cached(d, "k", src, {"p": 1}, compute)[1]
    assert not cached(None, "k", src, {"p": 1}, compute)[1]  # disabled
    assert not cached(d, "k", "in-memory", {"p": 1}, compute)[1]  # only files are cached
    assert len(calls) == 6


def test_paired_difference_bootstrap():
    from foleykit.evaluation import MetricResult, paired_difference

    # a constant difference has a zero-width interval; direction decides which system is better
    a = {f"c{i}": 1.0 + i for i in range(5)}
    b = {f"c{i}": 0.5 + i for i in range(5)}
    up = paired_difference(a, b, "onset_acc")
    assert (up.diff, up.low, up.high, up.better, up.num_clips) == (0.5, 0.5, 0.5, 1.0, 5)
    assert up.significant and up.a_better
    down = paired_difference(a, b, "energy_mae")
    assert down.significant and not down.a_better and down.better == 0.0
    # d = [1, 0, 2]: mean 1, every resampled mean lies in [0, 2]; a tie counts half; reproducible by seed
    r = paired_difference(
        {"x": 1, "y": 2, "z": 3, "only_a": 9},
        MetricResult.from_values({"x": 0, "y": 2, "z": 1}),
        "av_align",
        num_resamples=2000,
        seed=3,
    )
    assert r.num_clips == 3 and r.diff == 1.0 and 0.0 <= r.low < 1.0 < r.high <= 2.0
    assert r.better == (2 + 0.5) / 3
    assert r == paired_difference(
        {"x": 1, "y": 2, "z": 3}, {"x": 0, "y": 2, "z": 1}, "av_align", num_resamples=2000, seed=3
    )
    same = paired_difference({"x": 0.2, "y": float("nan")}, {"x": 0.2, "y": 0.1}, "e_l1")
    assert same.num_clips == 1 and not same.significant and same.better == 0.5
    assert same.to_dict()["ci"] == [0.0, 0.0]
    with pytest.raises(ConfigError, match="share no"):
        paired_difference({"x": 1.0}, {"y": 1.0}, "onset_ap")
    with pytest.raises(ConfigError, match="direction"):
        paired_difference({"x": 1.0}, {"x": 1.0}, "made_up")
