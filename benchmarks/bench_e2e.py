"""End-to-end speed of ``foleykit generate`` on a 10 s 1280x720 clip, stage by stage, plus the CLI as a user runs it.

One command (re-run it on an idle machine for the figures of record)::

    .venv/bin/python benchmarks/bench_e2e.py                         # shipped model, or a random one
    .venv/bin/python benchmarks/bench_e2e.py --model DIR --runs 7 --cli-runs 5 --json out.json

What it does:

1. the model: ``--model`` (a name or folder), else the shipped ``foleykit-demo`` when it is installed, else the
   ``foleykit_demo`` recipe with random weights saved (fp16, like the shipped one) under ``--cache-dir``;
   the timing of every stage does not depend on the weight values;
2. the clip: a 10 s 1280x720 25 fps h264 clip made once with ``foleykit data synth --size 1280x720``
   (cached under ``--cache-dir``);
3. start-up in a fresh interpreter: Python, ``import torch``, the other imports, model load — apart;
4. ``--runs`` generations in this process through the product layer (``foleykit.product.generate_audio`` +
   ``write_outputs``, the code path of ``foleykit generate``), after ``--warmup`` untimed ones, each broken down
   by stage: decode (``read_video``), video features, timing prediction, condition encoding (conditions +
   control features + control files), sampling (the denoising loop), autoencoder decode, vocoder, mux, other;
   wall and CPU time (``time.process_time``), real-time factor, peak RSS (and CUDA max allocated on GPUs),
   the load average and the CPUs busy with other work at the start of each run;
5. ``--cli-runs`` runs of the ``foleykit generate`` command itself (wall time as a user sees it: interpreter,
   imports, model load, generation, mux, sidecar), with the children's CPU time; ``--compare-early`` alternates
   them with runs that compute the video features after the model load (``FOLEYKIT_EARLY_FEATURES=0``; by
   default the command computes the first window's in a second process during its start-up,
   ``foleykit.product.early``).

Prints a Markdown table (median, min, max over the runs) and writes the JSON report (``--json``; default
``<cache-dir>/bench_e2e.json``) and the table next to it (``.md``). Thread count: as the product chooses it
(``foleykit.product.runtime.configure_threads``: all cores when idle, fewer when other work is running), or
``--threads N``. Precision / ``torch.compile``: ``--precision`` / ``--compile`` (through ``FOLEYKIT_PRECISION``
and ``FOLEYKIT_COMPILE``, which ``load_model`` reads, so the CLI runs use them too). On a CUDA machine the same
command measures the GPU (``--device cuda``; per-stage times are synchronised).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / "cache" / "bench"
PROMPT = "footsteps on gravel"
#: Report rows: label -> timing keys summed (``foleykit.product`` / ``VideoToAudioPipeline`` stage names).
STAGES: dict[str, tuple[str, ...]] = {
    "decode (read_video)": ("read_video",),
    "video features": ("video_features",),
    "timing prediction": ("timing_prediction",),
    "condition encoding": ("conditions", "control_features", "controls"),
    "sampling (denoising loop)": ("denoise",),
    "autoencoder decode": ("decode_vae",),
    "vocoder": ("decode_vocoder",),
}


# --------------------------------------------------------------------------------------------------------
# shared with bench_steps_sweep.py / bench_peer.py
# --------------------------------------------------------------------------------------------------------
def machine_state() -> dict[str, Any]:
    """Load average and CPUs busy with other work right now (measured like the product does)."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - non-Unix
        load = None
    try:
        from foleykit.product.runtime import busy_cpus
    except ImportError:  # an older foleykit (before/after comparisons)
        busy = None
    else:
        busy = busy_cpus()
    return {"loadavg": load, "busy_cpus": None if busy is None else round(busy, 2)}


def environment(device: str) -> dict[str, Any]:
    import torch

    from foleykit.utils.provenance import cpu_model

    name, flags = cpu_model()
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": name,
        "cpu_flags": flags,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "device": device,
    }
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:  # pragma: no cover
        pass
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def resolve_benchmark_model(model: str | None, cache_dir: Path) -> tuple[str, str]:
    """``(name_or_folder, description)``: the given model, the shipped one, or a cached random-weight twin."""
    from foleykit.errors import WeightsNotFoundError
    from foleykit.paths import resolve_model

    if model:
        return model, f"{model} (given)"
    try:
        folder = resolve_model(None, expect="model_index.json")
        return str(folder), "shipped foleykit-demo (src/foleykit/weights/foleykit-demo)"
    except WeightsNotFoundError:
        pass
    return str(random_model(cache_dir, "foleykit_demo")), "foleykit_demo recipe, RANDOM weights (fp16 folder)"


def random_model(cache_dir: Path, recipe: str, *, size: str = "full") -> Path:
    """A random-weight model folder of ``recipe`` (cached; rebuilt when the recipe file changes)."""
    import torch

    from foleykit.recipes import build_pipeline, load_recipe

    text = repr(load_recipe(recipe, size=size))
    tag = hashlib.sha256(text.encode()).hexdigest()[:10]
    folder = cache_dir / f"random-{recipe}-{size}-{tag}"
    if not (folder / "model_index.json").exists():
        t0 = time.perf_counter()
        torch.manual_seed(0)
        pipe = build_pipeline(load_recipe(recipe, size=size))
        pipe.save_pretrained(folder, dtype=torch.float16)
        print(f"built random {recipe} model in {time.perf_counter() - t0:.1f} s: {folder}", file=sys.stderr)
    return folder


def benchmark_clip(cache_dir: Path, *, size: str = "1280x720", seconds: float = 10.0) -> Path:
    """A synthetic ``size`` h264 clip of ``seconds`` at 25 fps (``foleykit data synth``), made once."""
    out = cache_dir / f"clip_{size}_{seconds:g}s"
    clip = out / "test" / "test-000000.mp4"
    if not clip.exists():
        cmd = [
            sys.executable,
            "-m",
            "foleykit",
            "data",
            "synth",
            "--output",
            str(out),
            "--num-clips",
            "1",
            "--split",
            "test",
            "--size",
            size,
            "--duration",
            f"{seconds:g}",
            "--seed",
            "11",
            "--no-progress",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not clip.exists():
            raise SystemExit(f"could not make the benchmark clip ({' '.join(cmd)}):\n{done.stderr}")
    return clip


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


# --------------------------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------------------------
_STARTUP = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import foleykit.encoders, foleykit.models.predictors
import foleykit.pipelines.video_to_audio
from foleykit.product import generate_audio, write_outputs
from foleykit.product.runtime import load_model
t2 = time.perf_counter()
pipe = load_model(sys.argv[1], device=sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"import_torch": t1 - t0, "import_rest": t2 - t1, "model_load": t3 - t2,
                  "threads": torch.get_num_threads()}))
"""


def startup(model: str, device: str, env: dict[str, str]) -> dict[str, float]:
    """Interpreter start, ``import torch``, the other imports and the model load, in a fresh process."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _STARTUP, model, device], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"start-up measurement failed:\n{done.stderr}")
    parts = json.loads(done.stdout.strip().splitlines()[-1])
    parts["interpreter_and_rest"] = wall - parts["import_torch"] - parts["import_rest"] - parts["model_load"]
    parts["wall"] = wall
    return parts


def run_inprocess(pipe: Any, clip: Path, out_dir: Path, *, steps: int | None, seed: int) -> dict[str, Any]:
    """One generation through the product layer, written as an mp4 like ``foleykit generate``."""
    import torch

    from foleykit.product import GenerateOptions, generate_audio, write_outputs

    state = machine_state()
    try:
        from foleykit.product.runtime import configure_threads
    except ImportError:  # an older foleykit: torch's own thread count
        threads = torch.get_num_threads()
    else:
        threads = configure_threads(busy=state["busy_cpus"])
    cuda = pipe.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    opts = GenerateOptions(prompt=PROMPT, seed=seed, steps=steps)
    c0, t0 = time.process_time(), time.perf_counter()
    result = generate_audio(pipe, clip, opts)
    t1 = time.perf_counter()
    write_outputs(
        result,
        clip,
        out_dir / "bench.mp4",
        opts,
        model_info=getattr(pipe, "model_info", {}),
        device=str(pipe.device),
    )
    t2 = time.perf_counter()
    cpu = time.process_time() - c0
    stages = {label: sum(result.timings.get(k, 0.0) for k in keys) for label, keys in STAGES.items()}
    stages["mux (+ sidecar)"] = t2 - t1
    stages["other (probe, plan, glue)"] = (t2 - t0) - sum(stages.values())
    audio_seconds = len(result.audio) / result.sample_rate
    rec = {
        "wall": t2 - t0,
        "cpu": cpu,
        "audio_seconds": audio_seconds,
        "rtf": audio_seconds / (t2 - t0),
        "stages": stages,
        "raw_timings": result.timings,
        "steps": result.steps,
        "threads": threads,
        "precision": getattr(result, "precision", "fp32"),
        "peak_rss_mb": peak_rss_mb(),
        **state,
    }
    if cuda:
        rec["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return rec


def run_cli(
    model: str, clip: Path, out_dir: Path, *, steps: int | None, seed: int, device: str, env: dict[str, str]
) -> dict[str, Any]:
    """``foleykit generate`` as a user runs it: wall time and the child's CPU time."""
    exe = Path(sys.executable).with_name("foleykit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "foleykit"]
    out = out_dir / "cli.mp4"
    cmd += [
        "generate",
        str(clip),
        "-o",
        str(out),
        "--model",
        model,
        "--prompt",
        PROMPT,
        "--seed",
        str(seed),
        "--device",
        device,
    ]
    if steps:
        cmd += ["--steps", str(steps)]
    state = machine_state()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    side = json.loads(out.with_name(out.name + ".json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall": wall,
        "cpu": cpu,
        "generation_total": side["timings"]["total"],
        "command": " ".join(cmd),
        "children_peak_rss_mb": after.ru_maxrss / 1024,
        **state,
    }


def write_report(report: dict[str, Any], table: str, out: Path) -> None:
    """Print the Markdown table and write the JSON report (with the table) to ``out`` and the table next to
    it (``.md``); shared by the benchmarks of this folder."""
    report["markdown"] = table
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"\nwrote {out} and {out.with_suffix('.md')}", file=sys.stderr)


def markdown(report: dict[str, Any]) -> str:
    runs = report["runs"]
    lines = [
        (
            f"Model: {report['model_description']}; clip {report['clip_info']}; {report['steps']} steps; "
            f"device {report['environment']['device']}, precision {runs[0]['precision'] if runs else '?'}, "
            f"threads {sorted({r['threads'] for r in runs})}; {len(runs)} runs"
        ),
        "",
        "| stage | median s | min s | max s | share |",
        "|---|---|---|---|---|",
    ]
    total = statistics.median([r["wall"] for r in runs]) if runs else None
    for label in list(STAGES) + ["mux (+ sidecar)", "other (probe, plan, glue)"]:
        s = summary([r["stages"][label] for r in runs])
        share = f"{100 * s['median'] / total:.0f}%" if total and s["median"] is not None else "-"
        lines.append(f"| {label} | {fmt(s['median'])} | {fmt(s['min'])} | {fmt(s['max'])} | {share} |")
    for key, label in (("wall", "**generation, in process (wall)**"), ("cpu", "CPU time (process_time)")):
        s = summary([r[key] for r in runs])
        lines.append(f"| {label} | {fmt(s['median'])} | {fmt(s['min'])} | {fmt(s['max'])} | |")
    s = summary([r["rtf"] for r in runs])
    lines.append(
        f"| real-time factor (x) | {fmt(s['median'], 2)} | {fmt(s['min'], 2)} | {fmt(s['max'], 2)} | |"
    )
    cli = report.get("cli_runs") or []
    if cli:
        for key, label in (("wall", "**`foleykit generate` command (wall)**"), ("cpu", "command CPU time")):
            s = summary([r[key] for r in cli])
            lines.append(f"| {label} | {fmt(s['median'])} | {fmt(s['min'])} | {fmt(s['max'])} | |")
    late = report.get("cli_runs_no_early") or []
    if late:
        for key, label in (
            ("wall", "command without early video features (wall)"),
            ("cpu", "command without early video features (CPU)"),
        ):
            s = summary([r[key] for r in late])
            lines.append(f"| {label} | {fmt(s['median'])} | {fmt(s['min'])} | {fmt(s['max'])} | |")
    st = report.get("startup")
    if st:
        lines.append(f"| start-up: interpreter + exit | {fmt(st['interpreter_and_rest'])} | | | |")
        lines.append(f"| start-up: import torch | {fmt(st['import_torch'])} | | | |")
        lines.append(
            f"| start-up: other imports (diffusers, transformers, foleykit) | {fmt(st['import_rest'])} | | | |"
        )
        lines.append(f"| start-up: model load | {fmt(st['model_load'])} | | | |")
    lines.append("")
    mem = f"peak RSS {max(r['peak_rss_mb'] for r in runs):.0f} MB" if runs else ""
    if runs and "cuda_max_allocated_mb" in runs[0]:
        mem += f", CUDA max allocated {max(r['cuda_max_allocated_mb'] for r in runs):.0f} MB"
    loads = [r["loadavg"][0] for r in runs + cli if r.get("loadavg")]
    busy = [r["busy_cpus"] for r in runs + cli if r.get("busy_cpus") is not None]
    lines.append(
        f"{mem}; load average (1 min) during the runs {min(loads, default=0):.2f}-"
        f"{max(loads, default=0):.2f}; CPUs busy with other work {min(busy, default=0):.2f}-"
        f"{max(busy, default=0):.2f} (of {report['environment']['cpu_count']})."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model name or folder (default: the shipped one, else random weights)")
    ap.add_argument("--runs", type=int, default=5, help="timed in-process generations")
    ap.add_argument("--warmup", type=int, default=1, help="untimed in-process generations first")
    ap.add_argument("--cli-runs", type=int, default=3, help="runs of the foleykit generate command")
    ap.add_argument(
        "--compare-early",
        action="store_true",
        help="alternate each command run with one without early video features (FOLEYKIT_EARLY_FEATURES=0)",
    )
    ap.add_argument(
        "--no-startup",
        dest="startup",
        action="store_false",
        help="skip the start-up measurement (a fresh interpreter)",
    )
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    ap.add_argument(
        "--precision",
        default=None,
        choices=("auto", "fp32", "bf16", "fp16"),
        help="FOLEYKIT_PRECISION for this run (default: the environment's, else auto)",
    )
    ap.add_argument("--compile", action="store_true", help="FOLEYKIT_COMPILE=1 (torch.compile the denoiser)")
    ap.add_argument(
        "--threads", type=int, default=None, help="FOLEYKIT_NUM_THREADS (default: chosen per load)"
    )
    ap.add_argument("--clip", type=Path, default=None, help="video to use instead of the synthetic 720p clip")
    ap.add_argument("--clip-size", default="1280x720")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument(
        "--json", type=Path, default=None, help="report path (default <cache-dir>/bench_e2e.json)"
    )
    args = ap.parse_args(argv)
    if args.precision:
        os.environ["FOLEYKIT_PRECISION"] = args.precision
    if args.compile:
        os.environ["FOLEYKIT_COMPILE"] = "1"
    if args.threads:
        os.environ["FOLEYKIT_NUM_THREADS"] = str(args.threads)
    env = dict(os.environ)
    args.cache_dir.mkdir(parents=True, exist_ok=True)

    from foleykit.product.runtime import load_model, resolve_device

    device = resolve_device(args.device)
    clip = args.clip or benchmark_clip(args.cache_dir, size=args.clip_size, seconds=args.seconds)
    model, description = resolve_benchmark_model(args.model, args.cache_dir)
    report: dict[str, Any] = {
        "benchmark": "bench_e2e",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "environment": environment(device),
        "model": model,
        "model_description": description,
        "clip": str(clip),
        "clip_info": (f"{clip.name}" if args.clip else f"{args.clip_size} h264 25 fps, {args.seconds:g} s"),
    }
    print(f"model: {description}\nclip: {clip}", file=sys.stderr)
    if args.startup:
        report["startup"] = startup(model, device, env)
    t0 = time.perf_counter()
    pipe = load_model(model, device=device)
    report["model_load_in_process"] = time.perf_counter() - t0
    report["steps"] = args.steps or pipe.defaults["num_inference_steps"]
    try:
        from foleykit.pipelines.fast import attention_processors
    except ImportError:  # an older foleykit
        report["attention_processors"] = None
    else:
        report["attention_processors"] = attention_processors(pipe.denoiser)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.warmup + args.runs):
            rec = run_inprocess(pipe, clip, Path(tmp), steps=args.steps, seed=0)
            rec["warmup"] = i < args.warmup
            (runs if not rec["warmup"] else report.setdefault("warmup_runs", [])).append(rec)
            print(
                f"run {i}: {rec['wall']:.2f} s wall, {rec['cpu']:.2f} s CPU, load {rec['loadavg']}, "
                f"busy {rec['busy_cpus']}, threads {rec['threads']}{' (warm-up)' if rec['warmup'] else ''}",
                file=sys.stderr,
            )
        report["runs"] = runs
        cli, late = [], []
        for i in range(args.cli_runs):
            variants = [("", env, cli)]
            if args.compare_early:
                variants.append((" (no early features)", {**env, "FOLEYKIT_EARLY_FEATURES": "0"}, late))
            for label, run_env, into in variants:
                rec = run_cli(model, clip, Path(tmp), steps=args.steps, seed=0, device=device, env=run_env)
                into.append(rec)
                print(
                    f"cli {i}{label}: {rec['wall']:.2f} s wall, {rec['cpu']:.2f} s CPU, load {rec['loadavg']}",
                    file=sys.stderr,
                )
        report["cli_runs"] = cli
        if late:
            report["cli_runs_no_early"] = late
    write_report(report, markdown(report), Path(args.json or args.cache_dir / "bench_e2e.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
