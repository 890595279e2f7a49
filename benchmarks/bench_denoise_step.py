"""CPU time of one denoising step for each recipe at its default (full) size.

One step = one classifier-free-guidance-batched denoiser forward (the conditional / unconditional pair in one
batch of 2) with every control adapter of the recipe active, over the recipe's default clip duration, with
random weights (the timing does not depend on the values). Condition tokens have realistic lengths
(16 text tokens, the recipe's video tokens, 4 reference-audio tokens).

Usage:
    .venv/bin/python benchmarks/bench_denoise_step.py                       # all recipes, full size, 2
    threads
    .venv/bin/python benchmarks/bench_denoise_step.py --recipes foleykit_demo --size full --repeats 10
    --decode
    .venv/bin/python benchmarks/bench_denoise_step.py --json results.json

Measure on an idle machine (``uptime`` load < 1): other processes on the 2 cores inflate the numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time


def _conditions(pipe, batch: int):
    import torch

    from foleykit.models.layers import Conditions

    seq = pipe.seq
    a = pipe.assembler
    parts = {}
    for name, cfg in a.config.sources.items():
        if name == "video":
            n = 4 if pipe.video_condition.__class__.__name__ == "AttentivePooling" else seq.num_video_frames
            parts[name] = (torch.randn(batch, n, cfg["dim"]), None)
        else:
            parts[name] = (torch.randn(batch, 16 if name == "text" else 4, cfg["dim"]), None)
    tokens, mask, glob = a.assemble(parts, batch_size=batch)
    return Conditions(
        tokens=tokens,
        mask=mask,
        global_embed=glob,
        seconds_start=torch.zeros(batch),
        seconds_total=torch.full((batch,), seq.duration),
    )


def _controls(pipe, batch: int):
    import torch

    seq = pipe.seq
    frames = {
        "control": seq.num_control_frames,
        "energy": seq.num_energy_frames,
        "mel": seq.num_energy_frames,
        "latent": seq.num_latent_frames,
        "video": seq.num_video_frames,
    }
    out = []
    for a in pipe.adapters.values():
        series = torch.rand(1, frames[a.grid])
        local = (
            torch.randn(1, seq.num_latent_frames, a.encoder.config.feature_dim)
            if a.features == "local"
            else None
        )
        with torch.no_grad():
            f = a.encoder(series, num_latent_frames=seq.num_latent_frames, codec=pipe.codec, features=local)
        out.append((a.net, f.expand(batch, *f.shape[1:]), 1.0))
    return out


def bench(name: str, size: str, repeats: int, decode: bool) -> dict:
    import torch

    from foleykit.errors import ConfigError
    from foleykit.recipes import build_pipeline, load_recipe

    recipe = load_recipe(name, size=size)
    t0 = time.perf_counter()
    try:
        pipe = build_pipeline(recipe, encoders=False)
    except (
        ConfigError
    ) as err:  # e.g. SAO's cosine sampler without torchsde: the step does not use the sampler
        if "torchsde" not in str(err):
            raise
        recipe["scheduler"] = {"name": "dpmsolver++", "config": {"prediction_type": "v_prediction"}}
        pipe = build_pipeline(recipe, encoders=False)
    build_s = time.perf_counter() - t0
    counts = pipe.num_parameters()
    batch = 2  # the guidance pair
    x = torch.randn(batch, *pipe.codec.latent_shape())
    cond = _conditions(pipe, batch)
    controls = _controls(pipe, batch)
    t = torch.tensor(500.0 if pipe.denoiser.kind == "unet" or pipe.denoiser.timestep_scale != 1.0 else 0.5)
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):  # the first call warms up
            s = time.perf_counter()
            pipe.denoiser(x, t, cond, controls=controls)
            if i:
                times.append(time.perf_counter() - s)
        dec = None
        if decode:
            s = time.perf_counter()
            pipe.codec.decode_latents(x[:1])
            dec = time.perf_counter() - s
    res = {
        "recipe": name,
        "size": size,
        "duration_s": pipe.seq.duration,
        "latent_shape": list(pipe.codec.latent_shape()),
        "adapters": list(pipe.adapters),
        "denoiser_params": counts.get("unet", counts.get("transformer")),
        "adapter_params": sum(
            v for k, v in counts.items() if k.startswith(("controlnet_", "control_encoder_"))
        ),
        "total_params": counts["total"],
        "step_median_s": statistics.median(times),
        "step_min_s": min(times),
        "build_s": build_s,
        "decode_s": dec,
    }
    del pipe, x, cond, controls
    gc.collect()
    return res


def main() -> None:
    from foleykit.recipes import RECIPES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES))
    ap.add_argument("--size", choices=("full", "debug"), default="full")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--decode", action="store_true", help="also time decoding one clip (VAE + vocoder)")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {args.threads} threads, load average {load:.2f}"
        + ("  (busy machine: numbers are inflated)" if load >= 1 else "")
    )
    print(
        f"{'recipe':16s} {'clip':>5s} {'latent':>14s} {'denoiser':>10s} {'adapters':>10s} "
        f"{'step median':>12s} "
        f"{'min':>8s}" + (f" {'decode':>8s}" if args.decode else "")
    )
    results = []
    for name in args.recipes:
        r = bench(name, args.size, args.repeats, args.decode)
        results.append(r)
        print(
            f"{name:16s} {r['duration_s']:5.2f} {tuple(r['latent_shape'])!s:>14s} "
            f"{r['denoiser_params'] / 1e6:9.1f}M {r['adapter_params'] / 1e6:9.1f}M "
            f"{r['step_median_s']:11.3f}s "
            f"{r['step_min_s']:7.3f}s" + (f" {r['decode_s']:7.3f}s" if args.decode else ""),
            flush=True,
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"threads": args.threads, "load": load, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
