"""Video datasets (manifest / folder), the feature cache (resume, parallel, settings), latents extractor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from foleykit.config import SequenceConfig
from foleykit.data import cache as C
from foleykit.data.datasets import (
    VideoClipDataset,
    collate,
    fit_length,
    load_records,
    read_manifest,
    scan_folder,
)
from foleykit.errors import DataError
from foleykit.testing import make_moving_square_video

SEQ = SequenceConfig(duration=2.0)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three 2 s clips with click-track audio; the second has a synthetic-style sidecar json + wav."""
    root = tmp_path_factory.mktemp("clips")
    for i in range(3):
        make_moving_square_video(
            root / f"clip_{i}.mp4", size=(64, 48), duration=2.0, move_frames=(10, 30), audio="clicks"
        )
    sr = 16000
    wav = np.zeros(2 * sr, np.float32)
    wav[int(0.5 * sr) : int(0.5 * sr) + 80] = 0.5
    import soundfile as sf

    sf.write(str(root / "clip_1.wav"), wav, sr, subtype="FLOAT")
    (root / "clip_1.json").write_text(
        json.dumps(
            {
                "caption": "a click",
                "category": "test/click",
                "events": [{"time": 0.5, "gain": 0.5}, {"time": 1.5, "gain": 0.2}],
            }
        )
    )
    (root / "clip_2.txt").write_text("a moving square\n")
    (root / "manifest.csv").write_text(
        "path,caption,start,end,category,source\n"
        "clip_0.mp4,first,0,2,test/a,x\nclip_1.mp4,second,0.4,,test/b,y\n"
    )
    return root


def test_manifest_parsing(clips):
    recs = read_manifest(clips / "manifest.csv")
    assert [(r.caption, r.start, r.end, r.category, r.key) for r in recs] == [
        ("first", 0.0, 2.0, "test/a", "clip_0"),
        ("second", 0.4, None, "test/b", "clip_1@0.400"),
    ]
    assert recs[0].extra == {"source": "x"} and recs[0].path.is_absolute()
    assert recs[1].events() == [
        {"time": pytest.approx(0.1), "gain": 0.5},
        {"time": pytest.approx(1.1), "gain": 0.2},
    ]
    assert [r.key for r in load_records(clips)] == ["clip_0", "clip_1@0.400"]  # folder with manifest.csv


@pytest.mark.parametrize(
    "text,match",
    [
        ("path,caption,start\nclip_0.mp4,a,0\n", "lacks the column"),
        ("path,caption,start,end\nclip_0.mp4,a,zero,1\n", "must be a number"),
        ("path,caption,start,end\nclip_0.mp4,a,1,0.5\n", "must be after start"),
        ("path,caption,start,end\nmissing.mp4,a,0,1\n", "do not exist"),
        ("path,caption,start,end\n", "lists no clip"),
        ("path,caption,start,end\n,a,0,1\n", "empty path"),
    ],
)
def test_bad_manifests(clips, text, match):
    bad = clips / "bad.csv"
    bad.write_text(text)
    with pytest.raises(DataError, match=match):
        read_manifest(bad)


def test_scan_folder_and_sources(clips, tmp_path):
    recs = {r.key: r for r in scan_folder(clips)}
    assert recs["clip_0"].caption == "clip 0" and recs["clip_1"].caption == "a click"
    assert recs["clip_2"].caption == "a moving square" and recs["clip_1"].category == "test/click"
    with pytest.raises(DataError, match="no video"):
        scan_folder(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_records(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError, match="not a CSV manifest"):
        load_records(tmp_path / "x.txt")


def test_a_sidecar_that_is_not_an_object_is_no_metadata(tmp_path):
    """A clip's .json that is not valid JSON, or not a JSON object, gives no caption, events or metadata (the
    scan and the record fall back as for a clip without one) instead of failing."""
    for name, text in [
        ("listed", "[1, 2]"),
        ("broken", "{not json"),
        ("fine", '{"scene": "animal", "events": 3}'),
    ]:
        (tmp_path / f"{name}.mp4").write_bytes(b"")
        (tmp_path / f"{name}.json").write_text(text)
    recs = {r.key: r for r in scan_folder(tmp_path)}
    assert recs["listed"].caption == "listed" and recs["listed"].category is None
    assert recs["listed"].metadata() == {} and recs["listed"].events() == []
    assert recs["broken"].metadata() == {} and recs["broken"].events() == []
    assert recs["fine"].metadata()["scene"] == "animal" and recs["fine"].events() == []


def test_video_dataset_items(clips):
    recs = scan_folder(clips)
    ds = VideoClipDataset(recs, seq=SEQ, video_size=(32, 24))
    it = ds[1]  # clip_1: lossless sidecar wav preferred, events from the json
    assert it["audio"].shape == (32000,) and it["frames"].shape == (50, 24, 32, 3)
    assert float(it["audio"][8000]) == pytest.approx(0.5) and float(it["audio"][7999]) == 0.0
    assert [e["time"] for e in it["events"]] == [0.5, 1.5]
    assert np.flatnonzero(it["onsets"].numpy()).tolist() == [12, 37]  # floor(t * 25)
    short = VideoClipDataset(clips / "manifest.csv", seq=SEQ, load_video=True)[1]  # 0.4 .. 2.0: padded
    assert short["valid"] == pytest.approx(1.6) and short["audio"].shape == (32000,)
    assert float(short["audio"][-3200:].abs().max()) == 0.0 and short["frames"].shape[0] == 50
    assert [e["time"] for e in short["events"]] == pytest.approx([0.1, 1.1])
    batch = collate([ds[0], ds[2]])
    assert batch["frames"].shape == (2, 50, 24, 32, 3) and batch["caption"] == ["clip 0", "a moving square"]
    with pytest.raises(DataError):
        collate([])
    assert fit_length(np.arange(3), 5).tolist() == [0, 1, 2, 0, 0]


class Counting(C.Extractor):
    """Counts its calls; fails on a chosen clip to simulate a crash mid-run."""

    name = "count"

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(seq=SEQ)
        self.seen: list[str] = []
        self.fail_on = fail_on

    def __call__(self, clip):
        if clip.record.key == self.fail_on:
            raise RuntimeError("killed")
        self.seen.append(clip.record.key)
        return {
            "count": np.array([len(self.seen)], np.int64),
            "peak": np.array([np.abs(clip.audio).max()], np.float32),
        }


def test_cache_resume_after_crash(clips, tmp_path):
    recs = scan_folder(clips)
    first = Counting(fail_on="clip_2")
    with pytest.raises(RuntimeError, match="killed"):
        C.build_cache(recs, tmp_path, extractors=[first], seq=SEQ, shard_size=2, progress=False)
    assert first.seen == ["clip_0", "clip_1"]  # clip_0, clip_1 were packed into shard 0 before the crash
    second = Counting()
    r = C.build_cache(recs, tmp_path, extractors=[second], seq=SEQ, shard_size=2, progress=False)
    assert second.seen == ["clip_2"] and r == {"computed": 1, "skipped": 2, "total": 3}
    cache = C.FeatureCache(tmp_path)
    assert (
        cache.keys == ["clip_0", "clip_1", "clip_2"]
        and len(json.loads((tmp_path / "index.json").read_text())["shards"]) == 2
    )
    assert cache.load("clip_1")["peak"][0] == pytest.approx(0.5)  # the sidecar wav was read
    assert not list((tmp_path / "parts").glob("*.safetensors"))


def test_cache_limit_keeps_parts_then_finishes(clips, tmp_path):
    recs = scan_folder(clips)
    a = Counting()
    C.build_cache(recs, tmp_path, extractors=[a], seq=SEQ, shard_size=8, progress=False, limit=2)
    assert a.seen == ["clip_0", "clip_1"] and len(list((tmp_path / "parts").glob("*.safetensors"))) == 2
    b = Counting()
    C.build_cache(recs, tmp_path, extractors=[b], seq=SEQ, shard_size=8, progress=False)
    assert b.seen == ["clip_2"] and len(C.FeatureCache(tmp_path)) == 3


def test_cache_registered_extractors(clips, tmp_path):
    names = ["audio", "rms", "energy", "onsets", "motion", "frames", "events"]
    opts = {"frames": {"size": 24}, "motion": {"size": 24}}
    r = C.build_cache(
        clips / "manifest.csv", tmp_path, extractors=names, seq=SEQ, options=opts, progress=False
    )
    assert r["computed"] == 2
    ds = C.CachedDataset(tmp_path)
    it = ds[0]
    assert (
        it["audio"].shape == (32000,)
        and it["rms"].shape == (250,)
        and not it["rms_classes"].is_floating_point()
    )
    assert it["energy"].shape == (200,) and it["onsets"].shape == (50,) and it["motion"].shape == (50, 11)
    assert it["frames"].shape == (50, 24, 32, 3) and it["caption"] == "first"
    idx = json.loads((tmp_path / "index.json").read_text())
    assert idx["extractors"]["frames"] == {"name": "frames", "size": 24} and idx["seq"]["duration"] == 2.0
    ev = C.FeatureCache(tmp_path).load("clip_1@0.400")
    assert ev["event_times"].tolist() == pytest.approx([0.1, 1.1])
    assert ev["event_gains"].tolist() == pytest.approx([0.5, 0.2])
    with pytest.raises(DataError, match="other settings"):
        C.build_cache(clips / "manifest.csv", tmp_path, extractors=["audio"], seq=SEQ, progress=False)
    C.build_cache(
        clips / "manifest.csv", tmp_path, extractors=["audio"], seq=SEQ, overwrite=True, progress=False
    )
    assert list(C.FeatureCache(tmp_path).load("clip_0")) == ["audio"]


def test_cache_process_pool_matches_in_process(clips, tmp_path):
    kw = {
        "extractors": ["audio", "frames"],
        "seq": SEQ,
        "options": {"frames": {"size": 24}},
        "progress": False,
    }
    C.build_cache(clips, tmp_path / "one", **kw)
    C.build_cache(clips, tmp_path / "two", workers=2, **kw)
    a, b = C.FeatureCache(tmp_path / "one"), C.FeatureCache(tmp_path / "two")
    assert a.keys == b.keys == ["clip_0", "clip_1@0.400"]
    for k in a.keys:
        x, y = a.load(k), b.load(k)
        assert all(np.array_equal(x[n], y[n]) for n in ("audio", "frames"))


def test_latents_extractor_and_errors(clips, tmp_path):
    class FakeVAE:
        def encode_audio(self, wav):
            import torch

            return torch.from_numpy(wav[: len(wav) // 640 * 640].reshape(-1, 640).mean(1))[None]

    C.build_cache(
        scan_folder(clips)[:1],
        tmp_path,
        extractors=[C.LatentsExtractor(encoder=FakeVAE(), seq=SEQ)],
        seq=SEQ,
        workers=2,
        progress=False,
    )
    z = C.FeatureCache(tmp_path).load("clip_0")["latents"]
    assert z.shape == (1, 50) and z.dtype == np.float32
    with pytest.raises(DataError, match="encode_audio"):
        C.LatentsExtractor()
    with pytest.raises(DataError, match="distinct"):
        C.make_extractors(["audio", "audio"], seq=SEQ)
    with pytest.raises(DataError, match="not a feature cache"):
        C.FeatureCache(tmp_path / "nothing")
    with pytest.raises(DataError, match="not in the cache"):
        C.FeatureCache(tmp_path).load("zzz")
