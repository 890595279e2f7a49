"""The speed harness (benchmarks/) in its reduced CPU form: every code path runs on tiny models and media, and
the reports have the promised structure. No timing is asserted (docs/speed.md holds the figures)."""

from __future__ import annotations

import csv
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield {n: importlib.import_module(n) for n in ("bench_e2e", "bench_peer", "bench_steps_sweep")}
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from foleykit.media import write_audio
    from foleykit.product.debug import save_debug_model
    from foleykit.testing import make_click_track, make_moving_square_video

    d = tmp_path_factory.mktemp("bench")
    model = save_debug_model(d / "model")
    split = d / "test"
    split.mkdir()
    rows = []
    for i, moves in enumerate([(5, 15), (8, 20)]):
        clip = make_moving_square_video(split / f"c{i}.mp4", duration=1.0, size=(48, 32), move_frames=moves)
        write_audio(
            split / f"c{i}.wav",
            make_click_track([m / 25 for m in moves], sample_rate=16000, duration=1.0),
            16000,
        )
        rows.append({"path": clip.name, "caption": "a click", "start": 0, "end": 1.0})
    with open(split / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "caption", "start", "end"])
        w.writeheader()
        w.writerows(rows)
    return {"dir": d, "model": str(model), "split": split, "clip": split / "c0.mp4"}


@pytest.fixture(autouse=True)
def _restore(monkeypatch):
    """The scripts set FOLEYKIT_* variables and torch's thread count for their run: undo both."""
    for key in ("FOLEYKIT_NUM_THREADS", "FOLEYKIT_PRECISION", "FOLEYKIT_COMPILE"):
        monkeypatch.delenv(key, raising=False)
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_e2e_report_breaks_the_generation_down_by_stage(bench, media, tmp_path, capsys):
    out = tmp_path / "e2e.json"
    rc = bench["bench_e2e"].main(
        [
            "--model",
            media["model"],
            "--clip",
            str(media["clip"]),
            "--runs",
            "2",
            "--warmup",
            "0",
            "--cli-runs",
            "0",
            "--no-startup",
            "--threads",
            "1",
            "--cache-dir",
            str(tmp_path),
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    rep = json.loads(out.read_text())
    assert len(rep["runs"]) == 2 and rep["steps"] == 2 and rep["cli_runs"] == []
    for r in rep["runs"]:
        assert set(r["stages"]) == set(bench["bench_e2e"].STAGES) | {
            "mux (+ sidecar)",
            "other (probe, plan, glue)",
        }
        assert r["stages"]["sampling (denoising loop)"] > 0 and r["stages"]["vocoder"] >= 0
        assert r["audio_seconds"] == pytest.approx(1.0) and r["rtf"] == pytest.approx(1.0 / r["wall"])
        assert r["threads"] == 1 and r["precision"] == "fp32" and r["peak_rss_mb"] > 0
        assert r["loadavg"] is not None
    assert all(name.endswith("2_0") for name in rep["attention_processors"])
    table = out.with_suffix(".md").read_text()
    assert "| sampling (denoising loop) |" in table and "real-time factor" in table
    assert table.strip() in capsys.readouterr().out


@pytest.mark.slow
def test_e2e_cli_and_startup(bench, media, tmp_path):
    out = tmp_path / "e2e.json"
    assert (
        bench["bench_e2e"].main(
            [
                "--model",
                media["model"],
                "--clip",
                str(media["clip"]),
                "--runs",
                "1",
                "--warmup",
                "0",
                "--cli-runs",
                "1",
                "--threads",
                "1",
                "--cache-dir",
                str(tmp_path),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    rep = json.loads(out.read_text())
    assert rep["cli_runs"][0]["wall"] > rep["cli_runs"][0]["generation_total"] > 0
    assert {"import_torch", "import_rest", "model_load", "interpreter_and_rest"} <= set(rep["startup"])


def test_peer_reduced_form_runs_both_pipelines(bench, media, tmp_path):
    out = tmp_path / "peer.json"
    rc = bench["bench_peer"].main(
        [
            "--size",
            "debug",
            "--seconds",
            "1",
            "--steps",
            "2",
            "--clip",
            str(media["clip"]),
            "--threads",
            "1",
            "--cache-dir",
            str(tmp_path),
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    rep = json.loads(out.read_text())
    names = [r["name"] for r in rep["rows"]]
    assert names == [
        "diffusers AudioLDMPipeline fp32",
        "foleykit rewas (UNet + ControlNet) fp32, generator",
        "foleykit rewas fp32, end to end from the 720p video",
        "foleykit rewas (UNet + ControlNet) bf16, generator",
        "foleykit rewas bf16, end to end from the 720p video",
    ]
    for r in rep["rows"]:
        assert len(r["step_intervals"]) == 1 and r["per_step"] > 0  # 2 steps: one interval between UNet calls
        assert r["at"]["25"]["extrapolated"] and r["at"]["200"]["extrapolated"]
        assert r["scaled"]["200"] == pytest.approx(r["at"]["200"]["seconds"] * 10.0)
    assert len(rep["ratios"]) == 8 and all(v > 0 for v in rep["ratios"].values())
    assert rep["parameters"]["controlnet_energy"] > 0 and rep["size"] == "debug"


def test_peer_diffusers_pipeline_shares_foleykit_networks(bench):
    fk = bench["bench_peer"].build_foleykit("cpu", "debug")
    pipe = bench["bench_peer"].build_diffusers(fk, torch.float32)
    assert pipe.unet is fk.denoiser.unet and pipe.vae is fk.codec.vae and pipe.vocoder is fk.codec.vocoder
    emb = torch.randn(1, pipe.unet.config.projection_class_embeddings_input_dim)
    audio = pipe(
        prompt_embeds=emb,
        negative_prompt_embeds=torch.zeros_like(emb),
        num_inference_steps=2,
        audio_length_in_s=1.0,
        guidance_scale=4.0,
    ).audios
    assert audio.shape == (1, 16000) and np.isfinite(audio).all()


def test_steps_sweep_scores_each_configuration(bench, media, tmp_path):
    out = tmp_path / "sweep.json"
    rc = bench["bench_steps_sweep"].main(
        [
            "--model",
            media["model"],
            "--data",
            str(media["split"]),
            "--num-clips",
            "2",
            "--samplers",
            "ddim,dpmsolver++",
            "--steps",
            "1,3",
            "--precisions",
            "fp32,bf16",
            "--threads",
            "1",
            "--cache-dir",
            str(tmp_path),
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    rep = json.loads(out.read_text())
    got = [(r["sampler"], r["steps"], r["precision"]) for r in rep["rows"]]
    assert got == [
        ("ddim", 1, "fp32"),
        ("ddim", 3, "fp32"),
        ("dpmsolver++", 1, "fp32"),
        ("dpmsolver++", 3, "fp32"),
        ("ddim", 2, "bf16"),
        ("dpmsolver++", 2, "bf16"),
    ]  # bf16 rows at the model's default steps
    assert [r["scheduler_class"] for r in rep["rows"][:3:2]] == [
        "DDIMScheduler",
        "DPMSolverMultistepScheduler",
    ]
    for r in rep["rows"]:  # FD_aisfx is a set-level figure: left out below --fd-min-clips (8) clips
        assert set(r["metrics"]) == {"onset_ap", "onset_acc", "energy_mae"}
        assert 0.0 <= r["metrics"]["onset_ap"] <= 1.0 and r["metrics"]["energy_mae"] >= 0.0
    assert rep["num_clips"] == 2 and rep["clips"] == ["c0", "c1"] and rep["recommendation"] is not None
    assert "| ddim | 1 | fp32 |" in out.with_suffix(".md").read_text()


def test_recommend_picks_the_cheapest_configuration_within_tolerance(bench):
    rec = bench["bench_steps_sweep"].recommend
    rows = [
        {
            "sampler": "ddim",
            "steps": 100,
            "cpu_per_clip": 10.0,
            "metrics": {"onset_ap": 0.60, "energy_mae": 1.00, "fd": 10.0},
        },
        {
            "sampler": "dpm",
            "steps": 10,
            "cpu_per_clip": 1.0,
            "metrics": {"onset_ap": 0.59, "energy_mae": 1.04, "fd": 10.9},
        },
        {
            "sampler": "dpm",
            "steps": 5,
            "cpu_per_clip": 0.5,
            "metrics": {"onset_ap": 0.50, "energy_mae": 1.01, "fd": 10.0},
        },
        {
            "sampler": "ddim",
            "steps": 10,
            "cpu_per_clip": 0.9,
            "metrics": {"onset_ap": 0.60, "energy_mae": 1.00, "fd": 12.0},
        },
    ]
    # 5 steps loses 0.10 AP (> 0.02); ddim-10 has FD 20% worse (> 10%); dpm-10 is within every tolerance
    assert rec(rows, tol_ap=0.02, tol_mae=0.05, tol_fd=0.10)["steps"] == 10
    assert rec(rows, tol_ap=0.02, tol_mae=0.05, tol_fd=0.10)["sampler"] == "dpm"
    assert rec(rows, tol_ap=0.2, tol_mae=0.05, tol_fd=0.10)["steps"] == 5
    assert rec([], tol_ap=0.02, tol_mae=0.05, tol_fd=0.1) is None


def test_eval_demo_mapper_breaks_scores_down_by_scene(tmp_path):
    """``eval_demo.py mapper --by-scene``: each clip's scene comes from the JSON sidecar of its record in the
    dataset the store split was prepared from (``unknown`` without one, or with one that is not an object), and
    every per-clip score is averaged within a scene."""
    sys.path.insert(0, str(BENCH))
    try:
        eval_demo = importlib.import_module("eval_demo")
    finally:
        sys.path.remove(str(BENCH))
    from foleykit.data.cache.arrays import STORE_VERSION

    src = tmp_path / "clips"
    src.mkdir()
    for key in "abcde":
        (src / f"{key}.mp4").write_bytes(b"")  # records only: nothing is decoded
    for key, scene in [("a", "animal"), ("b", "impact"), ("c", "animal")]:
        (src / f"{key}.json").write_text(json.dumps({"scene": scene}))
    (src / "e.json").write_text("[1, 2]")  # not a clip's metadata
    store = tmp_path / "store"
    store.mkdir()
    split = {"source": str(src), "keys": ["a", "b", "c", "d", "e"]}
    (store / "index.json").write_text(json.dumps({"version": STORE_VERSION, "splits": {"validation": split}}))
    scenes = eval_demo._store_scenes(str(store), "validation")
    assert scenes == ["animal", "impact", "animal", "unknown", "unknown"]
    out = eval_demo._by_scene(
        scenes, {"proxy_e_l1": [0.1, 0.5, 0.3, 0.9, 0.7], "corr": [1.0, 0.0, 0.0, 0.5, 0.5]}
    )
    assert out["animal"] == pytest.approx({"clips": 2, "proxy_e_l1": 0.2, "corr": 0.5})
    assert out["impact"] == pytest.approx({"clips": 1, "proxy_e_l1": 0.5, "corr": 0.0})
    assert out["unknown"] == pytest.approx({"clips": 2, "proxy_e_l1": 0.8, "corr": 0.5})


def _bench_module(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


def test_category_probe_names_only_the_scored_categories():
    """``probe_category.py``: the probe reads the time-pooled embedding and object scores of the scene features,
    and names, for each clip, the most probable of the categories the scored clips have (as
    ``eval_demo.category_accuracy`` restricts its own predictions)."""
    probe_category = _bench_module("probe_category")
    from foleykit.vision.scene import group_slices

    cols = group_slices()
    width = max(s.stop for s in cols.values())
    rng = np.random.default_rng(0)
    obj = cols["objects"].start

    def clip(kind: int) -> np.ndarray:
        x = rng.normal(0, 0.1, (20, width)).astype(np.float32)
        x[5:9, obj + kind] += 3.0  # one object class shows for a few frames
        return x

    kinds = [0, 1, 2] * 40
    x = np.stack([probe_category.pool_clip(clip(k)) for k in kinds])
    assert x.shape == (
        len(kinds),
        cols["embedding"].stop - cols["embedding"].start + 2 * (cols["objects"].stop - obj),
    )
    y = [("animal/dog", "impact/metal", "footsteps/wood")[k] for k in kinds]
    probe = probe_category.fit_probe(x, y, c=0.1)
    test = np.stack([probe_category.pool_clip(clip(k)) for k in (0, 1, 2)])
    assert probe_category.predict_categories(probe, test, set(y)) == [
        "animal/dog",
        "impact/metal",
        "footsteps/wood",
    ]
    # a dog's clip scored among clips that have no dog: the best of the categories they have
    restricted = probe_category.predict_categories(probe, test, {"impact/metal", "footsteps/wood"})
    assert restricted[1:] == ["impact/metal", "footsteps/wood"] and restricted[0] in {
        "impact/metal",
        "footsteps/wood",
    }
    rates = probe_category.hit_rates(
        ["animal/dog", "impact/wood", "break/glass"], ["animal/cat", "impact/wood", "door/open"]
    )
    assert rates == pytest.approx({"category_acc": 1 / 3, "family_acc": 2 / 3})
    with pytest.raises(SystemExit, match="none of the categories"):
        probe_category.predict_categories(probe, test, {"break/glass"})
    with pytest.raises(SystemExit, match="scene encoder"):
        probe_category.pool_clip(np.zeros((20, 16), np.float32))


def test_eval_demo_ceiling_pairs_hits_and_checks_its_options(tmp_path):
    """``eval_demo.py ceiling``: per-clip category hits paired against a generated row's (a - b, bootstrap
    interval), and the probe's options refused together before anything is loaded."""
    eval_demo = _bench_module("eval_demo")
    a = {
        "category_acc": {"c1": 1.0, "c2": 1.0, "c3": 0.0, "c4": 1.0},
        "family_acc": {k: 1.0 for k in ["c1", "c2", "c3", "c4"]},
    }
    b = {
        "category_acc": {"c1": 0.0, "c2": 1.0, "c3": 0.0, "c4": 0.0},
        "family_acc": {k: 1.0 for k in ["c1", "c2", "c3", "c4"]},
    }
    d = eval_demo._paired_hits(a, b)
    assert d["category_acc"]["diff"] == pytest.approx(0.5) and d["category_acc"]["num_clips"] == 4
    assert d["category_acc"]["ci"][0] <= 0.5 <= d["category_acc"]["ci"][1]
    assert d["family_acc"]["diff"] == 0.0
    with pytest.raises(SystemExit, match="go together"):
        eval_demo.main(["ceiling", "--data", str(tmp_path), "--category-from", "probe"])
    with pytest.raises(SystemExit, match="go together"):
        eval_demo.main(["ceiling", "--data", str(tmp_path), "--probe-store", str(tmp_path)])
    with pytest.raises(SystemExit, match="no such folder"):
        eval_demo.main(["ceiling", "--data", str(tmp_path), "--paired-with", str(tmp_path / "missing")])
