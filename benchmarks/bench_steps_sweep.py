"""Quality vs sampling steps, per sampler (and precision), on the held-out synthetic test split.

Chooses the default sampler / steps of a model by measurement: for each sampler and step count, the same clips
are generated with the same seeds, prompts (each clip's caption) and predicted timing, and scored with
``foleykit.evaluation.evaluate`` against the clips' ground-truth audio:

- Onset AP (strict mode, whole 10 s clips; higher is better), also Onset Acc;
- energy MAE (ReWaS; lower is better);
- FD_aisfx (Frechet distance of aisfx embeddings between the generated and the ground-truth set; lower is
  better; with a few dozen clips it is a coarse, set-level figure);
- the CPU time of the denoising loop + decoding per clip.

Video features, predicted controls and conditions do not depend on the sampler: each clip's video features are
computed once and reused by every configuration (``VideoToAudioPipeline(video_features=...)``).

Usage (the test split is made by ``foleykit data synth --output demo-work/synth --num-clips 120 --split test
--seed 3``)::

    .venv/bin/python benchmarks/bench_steps_sweep.py --data demo-work/synth/test --num-clips 24
    .venv/bin/python benchmarks/bench_steps_sweep.py --samplers ddim,dpmsolver++,unipc,dpmsolver++3m \
        --steps 5,10,25,50,100 --precisions fp32,bf16 --json sweep.json
    .venv/bin/python benchmarks/bench_steps_sweep.py --num-clips 2 --steps 2,4    # plumbing check

With random weights (no shipped model) the numbers say nothing about quality; the script says so.
The recommendation is the cheapest configuration whose Onset AP is within ``--tol-ap`` of the best, whose
energy MAE is within ``--tol-mae`` (relative) of the best and whose FD is within ``--tol-fd`` (relative) of
the best; it is printed, never applied (the defaults live in the model folder's ``model_index.json`` /
the recipe's ``sampling`` section).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_e2e import DEFAULT_CACHE, environment, machine_state, resolve_benchmark_model, write_report

DEFAULT_DATA = "demo-work/synth/test"  # scripts/train_demo.sh's test split
METRICS = ("onset_ap", "onset_acc", "energy_mae", "fd")


def clips(data: Path, n: int) -> list[Any]:
    """The first ``n`` clips of the split's manifest (fixed order: the same subset on every run)."""
    from foleykit.data.manifest import load_records

    recs = load_records(data)
    if not recs:
        raise SystemExit(f"{data}: no clips (make the split with `foleykit data synth --split test`)")
    return recs[:n]


def reference_audio(rec: Any, sample_rate: int):
    from foleykit.media import read_audio

    wav = getattr(rec, "sidecar_wav", None) or Path(rec.path).with_suffix(".wav")
    return read_audio(wav if Path(wav).exists() else rec.path, sample_rate=sample_rate)


def video_features(pipe: Any, rec: Any):
    return pipe.encode_video(rec.path, start=rec.start, duration=pipe.seq.duration)


def score(
    generated: dict[str, Any],
    reference: dict[str, Any],
    sample_rate: int,
    workers: int,
    *,
    fd_min_clips: int = 8,
) -> dict[str, float]:
    """Onset Acc / AP (strict, whole clips), energy MAE and, with at least ``fd_min_clips`` clips, FD_aisfx."""
    from foleykit.evaluation import evaluate

    metrics = ["onset", "energy_mae"] + (["fd"] if len(generated) >= fd_min_clips else [])
    rep = evaluate(
        generated,
        reference,
        metrics=metrics,
        sample_rate=sample_rate,
        onset_mode="strict",
        onset_seconds=None,
        workers=workers,
        cache=False,
    )
    return {k: v for k, v in rep.means().items() if k in METRICS}


def recommend(rows: list[dict[str, Any]], *, tol_ap: float, tol_mae: float, tol_fd: float) -> dict | None:
    """The cheapest row (seconds per clip) within the tolerances of the best value of every metric."""
    scored = [r for r in rows if r["metrics"].get("onset_ap") is not None]
    if not scored:
        return None
    best_ap = max(r["metrics"]["onset_ap"] for r in scored)
    best_mae = min(r["metrics"]["energy_mae"] for r in scored)
    fds = [r["metrics"]["fd"] for r in scored if r["metrics"].get("fd") is not None]
    best_fd = min(fds) if fds else None

    def ok(r: dict[str, Any]) -> bool:
        m = r["metrics"]
        good = m["onset_ap"] >= best_ap - tol_ap and m["energy_mae"] <= best_mae * (1 + tol_mae)
        if best_fd is not None and m.get("fd") is not None:
            good = good and m["fd"] <= best_fd * (1 + tol_fd)
        return good

    fine = [r for r in scored if ok(r)]
    return min(fine, key=lambda r: r["cpu_per_clip"]) if fine else None


def markdown(report: dict[str, Any]) -> str:
    lines = [
        (
            f"Model: {report['model_description']}; {report['num_clips']} clips of {report['data']}; "
            f"seeds 1000+i, caption prompts, predicted timing; threads {report['threads']}"
        ),
        "",
        (
            "| sampler | steps | precision | Onset AP (strict) ↑ | Onset Acc ↑ | energy MAE ↓ | FD_aisfx ↓ | "
            "CPU s / clip | wall s / clip |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v: Any, d: int = 3) -> str:
        return "-" if v is None else f"{v:.{d}f}"

    for r in report["rows"]:
        m = r["metrics"]
        lines.append(
            f"| {r['sampler']} | {r['steps']} | {r['precision']} | {f(m.get('onset_ap'))} | "
            f"{f(m.get('onset_acc'))} | {f(m.get('energy_mae'))} | {f(m.get('fd'), 2)} | "
            f"{f(r['cpu_per_clip'], 2)} | {f(r['wall_per_clip'], 2)} |"
        )
    rec = report.get("recommendation")
    lines.append("")
    if report.get("random_weights"):
        lines.append("**Random weights: these numbers say nothing about quality (plumbing check only).**")
    if rec:
        lines.append(
            f"Cheapest configuration within tolerance of the best (AP -{report['tolerances']['ap']}, "
            f"MAE +{100 * report['tolerances']['mae']:.0f}%, FD +{100 * report['tolerances']['fd']:.0f}%): "
            f"**{rec['sampler']} {rec['steps']} steps {rec['precision']}**."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model name or folder (default: the shipped one, else random weights)")
    ap.add_argument("--data", type=Path, default=Path(DEFAULT_DATA), help="test split folder (manifest.csv)")
    ap.add_argument("--num-clips", type=int, default=24, help="first N clips of the split")
    ap.add_argument(
        "--samplers", default="ddim,dpmsolver++,unipc", help="comma list (foleykit sampler names)"
    )
    ap.add_argument("--steps", default="5,10,25,50,100", help="comma list of step counts")
    ap.add_argument(
        "--precisions", default="fp32", help="comma list: fp32, bf16, fp16 (rows at --precision-steps)"
    )
    ap.add_argument(
        "--precision-steps",
        type=int,
        default=None,
        help="steps of the non-fp32 rows (default: the model's default steps)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: chosen per load)")
    ap.add_argument("--workers", type=int, default=1, help="evaluation worker processes")
    ap.add_argument(
        "--fd-min-clips",
        type=int,
        default=8,
        help="FD_aisfx only with at least this many clips (a set-level figure)",
    )
    ap.add_argument("--tol-ap", type=float, default=0.02)
    ap.add_argument("--tol-mae", type=float, default=0.05)
    ap.add_argument("--tol-fd", type=float, default=0.10)
    ap.add_argument("--out-audio", type=Path, default=None, help="also keep the generated wavs here")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--json", type=Path, default=None, help="default <cache-dir>/bench_steps_sweep.json")
    args = ap.parse_args(argv)
    if args.threads:
        os.environ["FOLEYKIT_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("FOLEYKIT_PRECISION", "fp32")

    import numpy as np

    from foleykit.pipelines.sampling import swap_scheduler
    from foleykit.product.runtime import configure_threads, load_model

    model, description = resolve_benchmark_model(args.model, args.cache_dir)
    pipe = load_model(model, device="cpu")
    threads = configure_threads()
    recs = clips(args.data, args.num_clips)
    sr = pipe.seq.sample_rate
    print(f"model: {description}; {len(recs)} clips; threads {threads}", file=sys.stderr)
    refs = {r.key: reference_audio(r, sr) for r in recs}
    feats = {r.key: video_features(pipe, r) for r in recs}
    base_sched = pipe.scheduler
    default_steps = int(pipe.defaults["num_inference_steps"])
    configs = [(s, int(n), "fp32") for s in args.samplers.split(",") for n in args.steps.split(",")]
    default_sampler = type(base_sched).__name__
    for prec in [p for p in args.precisions.split(",") if p != "fp32"]:
        configs += [(s, args.precision_steps or default_steps, prec) for s in args.samplers.split(",")]
    rows = []
    for sampler, steps, prec in configs:
        pipe.scheduler = swap_scheduler(base_sched, sampler)
        pipe.set_inference_options(precision=prec)
        gen, cpu, wall = {}, 0.0, 0.0
        state = machine_state()
        for i, r in enumerate(recs):
            c0, t0 = time.process_time(), time.perf_counter()
            out = pipe(
                str(r.path),
                video_features=feats[r.key],
                prompt=r.caption or None,
                start=r.start,
                duration=pipe.seq.duration,
                num_inference_steps=steps,
                seed=1000 + i,
            )
            cpu += time.process_time() - c0
            wall += time.perf_counter() - t0
            gen[r.key] = out.audio
            if args.out_audio:
                import soundfile as sf

                d = args.out_audio / f"{sampler}-{steps}-{prec}"
                d.mkdir(parents=True, exist_ok=True)
                sf.write(d / f"{r.key}.wav", np.asarray(out.audio, np.float32), sr, subtype="FLOAT")
        metrics = score(gen, {k: refs[k] for k in gen}, sr, args.workers, fd_min_clips=args.fd_min_clips)
        row = {
            "sampler": sampler,
            "scheduler_class": type(pipe.scheduler).__name__,
            "steps": steps,
            "precision": prec,
            "metrics": metrics,
            "cpu_per_clip": cpu / len(recs),
            "wall_per_clip": wall / len(recs),
            **state,
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items()}, default=str), file=sys.stderr)
    pipe.scheduler = base_sched
    pipe.set_inference_options(precision="fp32")
    report = {
        "benchmark": "bench_steps_sweep",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "environment": environment("cpu"),
        "model": model,
        "model_description": description,
        "random_weights": "RANDOM" in description,
        "data": str(args.data),
        "num_clips": len(recs),
        "clips": [r.key for r in recs],
        "threads": threads,
        "default_sampler": default_sampler,
        "default_steps": default_steps,
        "rows": rows,
        "tolerances": {"ap": args.tol_ap, "mae": args.tol_mae, "fd": args.tol_fd},
    }
    report["recommendation"] = recommend(rows, tol_ap=args.tol_ap, tol_mae=args.tol_mae, tol_fd=args.tol_fd)
    write_report(report, markdown(report), Path(args.json or args.cache_dir / "bench_steps_sweep.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
