"""Audio-only event sequences: exact mixing, onset placement, timing patterns, determinism, datasets."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foleykit.config import SequenceConfig
from foleykit.data import events as E
from foleykit.data.bank import SoundBank, split_bank
from foleykit.data.procedural import make_procedural_bank
from foleykit.errors import DataError

SR = 16000


@pytest.fixture(scope="module")
def pbank(tmp_path_factory) -> SoundBank:
    root = make_procedural_bank(
        tmp_path_factory.mktemp("pb") / "bank",
        categories=[
            "footsteps/grass",
            "footsteps/wood",
            "impact/metal",
            "break/glass",
            "door/open",
            "door/close",
            "ambience/fire",
        ],
    )
    return SoundBank(root)


def block_bank(root: Path) -> SoundBank:
    """Hand-checkable sounds: 'click' = 100 zeros then 50 samples of 0.5 (peak-normalised to 1.0)."""
    (root / "test" / "click").mkdir(parents=True)
    x = np.concatenate([np.zeros(100), np.full(50, 0.5)]).astype(np.float32)
    sf.write(str(root / "test" / "click" / "a.wav"), x, SR, subtype="FLOAT")
    return SoundBank(root)


def test_mix_is_exact_and_attack_lands_on_time(tmp_path):
    b = block_bank(tmp_path)
    onset = b.onset("test/click/a.wav")
    assert onset == pytest.approx(100 / SR, abs=2 / SR)
    ev = [
        E.Event(time=0.5, category="test/click", file="test/click/a.wav", gain=0.4, onset=100 / SR),
        E.Event(time=0.75, category="test/click", file="test/click/a.wav", gain=0.25, onset=100 / SR),
    ]
    audio, out, bed = E.mix_events(b, ev, SR)
    assert bed is None and [e.gain for e in out] == [0.4, 0.25]
    assert np.all(audio[8000:8050] == np.float32(0.4)) and audio[7999] == 0 and audio[8050] == 0
    assert np.all(audio[12000:12050] == np.float32(0.25))
    assert float(np.abs(audio).sum()) == pytest.approx(50 * 0.65, rel=1e-6)


def test_limiter_scales_gains_together(tmp_path):
    b = block_bank(tmp_path)
    ev = [
        E.Event(time=0.5, category="c", file="test/click/a.wav", gain=0.9, onset=100 / SR),
        E.Event(time=0.5 + 20 / SR, category="c", file="test/click/a.wav", gain=0.6, onset=100 / SR),
    ]
    audio, out, _ = E.mix_events(b, ev, SR)
    assert float(audio.max()) == pytest.approx(E.MIX_PEAK, abs=1e-6)
    s = E.MIX_PEAK / 1.5
    assert [e.gain for e in out] == pytest.approx([0.9 * s, 0.6 * s])
    rebuilt = np.zeros(SR)
    for e in out:
        E.place(rebuilt, b.load(e.file, normalize=True), round((e.time - e.onset) * SR), e.gain)
    np.testing.assert_allclose(audio, rebuilt, atol=1e-6)


def test_placed_real_sound_onset_within_a_hop(pbank):
    from foleykit.controls import detect_onsets

    f = pbank.category_files("impact/metal")[0]
    ev = [E.Event(time=1.0, category=f.category, file=f.path, gain=0.8, onset=pbank.onset(f))]
    audio, _, _ = E.mix_events(pbank, ev, 2 * SR)
    onsets = detect_onsets(audio, SR)
    assert len(onsets) >= 1 and abs(onsets[0] - 1.0) <= 512 / SR


def test_bed_level_and_loop(pbank):
    rng = np.random.default_rng(0)
    files = [f.path for f in pbank.category_files("ambience/fire")]
    bed = E.make_bed(pbank, rng, files, 6.0, level_db=(-30.0, -30.0))  # files are 4 s: looped
    x = E.render_bed(pbank, bed, 6 * SR)
    assert 20 * math.log10(float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))) == pytest.approx(
        -30.0, abs=0.01
    )
    assert E.make_bed(pbank, rng, [], 6.0) is None


def test_timing_patterns():
    rng = np.random.default_rng(1)
    t = E.walking_times(rng, 0.0, 10.0, cadence=(2.0, 2.0), jitter=0.0, pause_prob=0.0)
    assert np.allclose(np.diff(t), 0.5) and t[0] >= 0.1 and t[-1] < 10.0
    b = E.bounce_times(0.0, 0.49, restitution=0.5, gravity=4.9, min_interval=0.12)
    # fall 0.49 at 4.9: 0.4472 s, speed 2.1909; bounce at 1.0954 lasts 2 * 1.0954 / 4.9 = 0.4472 s
    assert b[0] == pytest.approx((math.sqrt(0.2), math.sqrt(2 * 4.9 * 0.49)))
    assert b[1][0] - b[0][0] == pytest.approx(2 * 0.5 * b[0][1] / 4.9)
    assert all(v1 == pytest.approx(0.5 * v0) for (_, v0), (_, v1) in itertools.pairwise(b))
    assert 2 * b[-1][1] * 0.5 / 4.9 < 0.12  # stopped at the first interval below min_interval
    s = E.sparse_times(np.random.default_rng(2), 0.0, 8.0, min_gap=0.35)
    assert len(s) >= 1 and np.all(np.diff(s) >= 0.35)


def test_captions():
    assert E.caption_for("footsteps/gravel") == "footsteps on gravel"
    assert E.caption_for("footsteps/wood") == "footsteps on a wooden floor"
    assert E.caption_for("break/glass") == "glass breaking"
    assert E.caption_for("animals/dog") == "dog animals"
    assert E.bed_caption("ambience/fire") == "a fire crackling"


def test_generator_deterministic_and_split_restricted(pbank):
    seq = SequenceConfig(duration=4.0)
    split = split_bank(pbank, seed=0)
    g = E.EventSequenceGenerator(pbank, seq=seq, split=split, split_name="test")
    a, b, c = g.example(7, 3), g.example(7, 3), g.example(7, 4)
    assert np.array_equal(a.audio, b.audio) and a.to_dict() == b.to_dict()
    assert not np.array_equal(a.audio, c.audio)
    test_files = set(split.files("test"))
    for i in range(8):
        ex = g.example(0, i)
        assert ex.audio.shape == (seq.num_samples,) and float(np.abs(ex.audio).max()) <= E.MIX_PEAK + 1e-6
        assert {e.file for e in ex.events} <= test_files and ex.caption
        assert ex.bed is None or ex.bed.file in test_files
    with pytest.raises(DataError, match="no test files"):
        E.EventSequenceGenerator(pbank, seq=seq, split=split, split_name="test", categories=["animals/dog"])
    with pytest.raises(DataError, match="sample rate"):
        E.EventSequenceGenerator(pbank, seq=SequenceConfig(sample_rate=22050, f_max=8000.0))


def test_event_sequence_dataset(pbank):
    from foleykit.data.datasets import EventSequenceDataset, collate

    seq = SequenceConfig(duration=2.0)
    ds = EventSequenceDataset(pbank, seq=seq, split_name="train", length=3, seed=5)
    item = ds[1]
    assert item["audio"].shape == (32000,) and item["onsets"].shape == (seq.num_latent_frames,)
    frames = {int(math.floor(e["time"] * seq.latent_rate + 1e-9)) for e in item["events"] if e["time"] < 2.0}
    assert set(np.flatnonzero(item["onsets"].numpy())) == frames
    batch = collate([ds[0], ds[1]])
    assert batch["audio"].shape == (2, 32000) and len(batch["caption"]) == 2
    with pytest.raises(IndexError):
        ds[3]
