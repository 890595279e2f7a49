"""Filters (AV-Align, CLAP, caption keywords) and augmentations (shift, gain, concat, condition dropout)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from foleykit.config import SequenceConfig
from foleykit.data import augment as A
from foleykit.data import filters as F
from foleykit.data.manifest import ClipRecord
from foleykit.errors import DataError

SEQ = SequenceConfig(duration=2.0)


def recs(*captions: str) -> list[ClipRecord]:
    return [ClipRecord(path=Path(f"/x/{i}.mp4"), caption=c, key=str(i)) for i, c in enumerate(captions)]


def test_keyword_filter_whole_words():
    assert F.keyword_filter("a man speaking on stage") == "speaking"
    assert F.keyword_filter("People TALKING in a room") == "talking"
    assert F.keyword_filter("a cat stalks a bird") is None  # 'talk' inside another word
    assert F.keyword_filter("footsteps on gravel") is None
    assert F.keyword_filter("dog barks", ["bark", "barks"]) == "barks"


def test_filter_records_order_and_thresholds(tmp_path):
    scores = {"0": 0.35, "1": 0.9, "2": 0.1, "3": 0.5}
    called = []

    def av(r):
        called.append(r.key)
        return scores[r.key]

    res = F.filter_records(
        recs("footsteps", "a woman speaks", "glass", "door"),
        av_align_min=0.2,
        clap_min=0.3,
        av_align_fn=av,
        clap_fn=lambda r: {"0": 0.4, "3": 0.25}[r.key],
        progress=False,
    )
    assert [r.keep for r in res] == [True, False, False, False]
    assert called == ["0", "2", "3"]  # the speech clip was never decoded
    assert res[1].reasons == ["caption mentions 'speaks'"] and res[2].scores == {"av_align": 0.1}
    assert res[3].reasons == ["clap 0.250 < 0.3"]
    kept, report = F.write_filtered_manifest(res, tmp_path / "kept.csv")
    with open(kept, newline="") as fh:
        assert [r["caption"] for r in csv.DictReader(fh)] == ["footsteps"]
    with open(report, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["keep"] for r in rows] == ["1", "0", "0", "0"] and rows[0]["av_align"] == "0.3500"
    with pytest.raises(DataError, match="CLAP weights"):
        F.filter_records(recs("x"), clap_min=0.3, progress=False)
    with pytest.raises(DataError, match=r"\.csv"):
        F.write_filtered_manifest(res, tmp_path / "kept.txt")


def test_synthetic_footsteps_pass_the_av_align_filter(tmp_path):
    """A synthetic clip's own audio aligns with its video (AV-Align >= 0.2, STA-V2A / VTA-LDM filter)."""
    from foleykit.data.bank import SoundBank, split_bank
    from foleykit.data.procedural import make_procedural_bank
    from foleykit.data.synth import SynthConfig, plan_clip, write_clip

    bank = SoundBank(make_procedural_bank(tmp_path / "b", categories=["footsteps/wood"]))
    cfg = SynthConfig(
        width=160,
        height=120,
        duration=3.0,
        scene_weights={"footsteps": 1.0},
        look_variation=0.0,
        distractor_prob=0.0,
        ambience_prob=0.0,
        tracking_prob=0.0,
    )
    clip = plan_clip(bank, split_bank(bank), "train", 0, 0, cfg)
    meta = write_clip(clip, tmp_path, "c", cfg=cfg)
    score = F.av_align_of(ClipRecord(path=tmp_path / meta["video"], caption=meta["caption"]))
    assert score >= F.AV_ALIGN_MIN


def example(n: int = 32000) -> dict:
    t = np.arange(n)
    return {
        "audio": torch.from_numpy((0.1 * np.sin(t / 10)).astype(np.float32)),
        "frames": torch.from_numpy(
            np.arange(50, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3)
        ),
        "rms": np.linspace(0.0, 0.2, 250).astype(np.float32),
        "energy": np.zeros(200, np.float32),
        "onsets": np.eye(1, 50, 10, dtype=np.float32)[0],
        "caption": "a",
        "events": [{"time": 0.4, "gain": 0.5}, {"time": 1.97, "gain": 1.0}],
    }


def test_time_shift_moves_everything_together():
    ex = example()
    out = A.time_shift(ex, 0.05, seq=SEQ)  # rounded to the 40 ms common period (25/100/125 Hz, 16 kHz)
    assert out["shift"] == pytest.approx(0.04)
    assert torch.equal(out["audio"][640:], ex["audio"][:-640]) and float(out["audio"][:640].abs().max()) == 0
    assert (
        out["frames"][1:, 0, 0, 0].tolist() == list(range(49)) and int(out["frames"][0, 0, 0, 0]) == 0
    )  # edge
    assert np.array_equal(out["rms"][5:], ex["rms"][:-5]) and np.all(out["rms"][:5] == 0)
    assert np.allclose(out["energy"][:4], A.LOG_FLOOR) and out["onsets"].argmax() == 11
    assert [e["time"] for e in out["events"]] == [pytest.approx(0.44)]  # 1.97 + 0.04 left the window
    back = A.time_shift(ex, -0.08, seq=SEQ)
    assert torch.equal(back["audio"][:-1280], ex["audio"][1280:]) and back["onsets"].argmax() == 8
    with pytest.raises(DataError, match="none of the time series"):
        A.time_shift({"caption": "x"}, 0.1, seq=SEQ)
    assert A.common_period([16000, 25, 125, 100]) == pytest.approx(0.04)


def test_gain_updates_controls():
    from foleykit.controls import rms_to_classes

    ex = {**example(), "rms_classes": np.zeros(250, np.int64)}
    out = A.apply_gain(ex, 2.0)
    assert torch.allclose(out["audio"], 2 * ex["audio"]) and np.allclose(out["rms"], 2 * ex["rms"])
    assert np.allclose(out["energy"], math.log(2.0)) and out["events"][0]["gain"] == 1.0
    assert np.array_equal(out["rms_classes"], rms_to_classes(out["rms"]))
    quiet = A.apply_gain(ex, 1e-9)
    assert np.allclose(quiet["energy"], A.LOG_FLOOR)  # clamped at the log floor of silence
    with pytest.raises(DataError, match="clip"):
        A.apply_gain(ex, 20.0)
    with pytest.raises(DataError, match="> 0"):
        A.apply_gain(ex, 0.0)
    r = A.random_gain(ex, np.random.default_rng(0), db_range=(30.0, 30.0))  # limited to peak 1
    assert float(r["audio"].abs().max()) == pytest.approx(1.0, abs=1e-5)


def test_concat_augmentation():
    a, b = example(), {**example(), "caption": "b"}
    b["audio"] = -b["audio"]
    out = A.concat_examples(a, b, split=1.0, seq=SEQ)
    assert torch.equal(out["audio"][:16000], a["audio"][:16000]) and torch.equal(
        out["audio"][16000:], b["audio"][:16000]
    )
    assert out["frames"][25:, 0, 0, 0].tolist() == list(range(25)) and out["caption"] == "a, then b"
    assert [e["time"] for e in out["events"]] == pytest.approx([0.4, 1.4])
    with pytest.raises(DataError, match="different series"):
        A.concat_examples(a, {"audio": a["audio"]}, split=1.0, seq=SEQ)


def test_condition_dropout():
    g = torch.Generator().manual_seed(0)
    masks = A.ConditionDropout(probs={"text": 0.3, "video": 0.0})(20000, generator=g)
    assert masks["text"].float().mean().item() == pytest.approx(0.3, abs=0.015) and not masks["video"].any()
    assert A.ConditionDropout(probs={"text": 0.0}, joint=1.0)(5)["text"].all()
    assert A.ConditionDropout.drop_captions(["a", "b"], torch.tensor([True, False])) == ["", "b"]
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        A.ConditionDropout(probs={"text": 1.5})
