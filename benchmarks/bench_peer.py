"""Peer comparison: diffusers' ``AudioLDMPipeline`` vs foleykit's AudioLDM-M + energy ControlNet (``rewas``).

Both pipelines are built in the same run from the same networks: foleykit's ``rewas`` recipe at full size
(AudioLDM-M UNet 416M, AudioLDM mel VAE, AudioLDM HiFi-GAN, energy ControlNet 182.5M; the published configs in
``src/foleykit/configs/models/audioldm-m-full``) with random weights, and a diffusers ``AudioLDMPipeline``
assembled from *the very same* UNet / VAE / vocoder modules plus a tiny random ``ClapTextModelWithProjection``
(projection 512, as AudioLDM's). Text encoding is not timed on either side: diffusers gets ``prompt_embeds`` /
``negative_prompt_embeds`` (random, 1 x 512), foleykit runs without a prompt (its learned null FiLM embedding).
Random weights do not change the arithmetic, so the timings are those of the published models.

Timed per configuration, after a 1-step warm-up call: one call at ``--steps`` steps; a forward hook on the
shared UNet stamps every step, so the per-step cost is the median interval between UNet forwards (one
classifier-free-guidance-batched forward, + the ControlNet on foleykit's side, + the sampler update) and the
fixed cost is the rest of the call (latents, control encoding, video front end, VAE decoder, vocoder). The time
at N steps is ``fixed + N * step``: **extrapolated** (marked *) unless measured (the GPU branch measures 25 and
200 steps directly). Rows:

- ``diffusers AudioLDMPipeline`` in fp32 (its default dtype) and, on GPUs, fp16 (``torch_dtype=float16``);
- ``foleykit rewas`` (UNet + energy ControlNet) at each ``--precisions`` (autocast), its generator only
  (energy control given) and, with ``--video`` (default), end to end from the video file: decode at 224 px,
  a random CLIP ViT-B/32-size vision tower (foleykit's ``CLIPVideoEncoder``; ReWaS' video features), the
  energy predictor phi, the ControlNet, sampling, decoding.

It reports the ratio diffusers / foleykit at equal steps, and foleykit at ``--fast-steps`` DPM-Solver++ steps
against diffusers at its default 200 steps. On the CPU the run is reduced to 3 steps per configuration (10 s
clip; ``--seconds 2.56`` for a quick check, scaled linearly to ``--target-seconds``, which underestimates the
quadratic attention part) and the times at 25 / 200 steps are extrapolated (marked); with CUDA the default is the
full protocol (10 s clip, 25 and 200 steps measured directly).

Usage::

    .venv/bin/python benchmarks/bench_peer.py                          # CPU: reduced, extrapolated
    .venv/bin/python benchmarks/bench_peer.py --device cuda            # GPU: the full protocol
    .venv/bin/python benchmarks/bench_peer.py --device cuda --compile  # + torch.compile of the denoiser
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_e2e import DEFAULT_CACHE, benchmark_clip, environment, machine_state, write_report

#: CLIP ViT-B/32 vision tower geometry (random weights), projection 768 = the rewas energy predictor's input.
CLIP_B32 = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "image_size": 224,
    "patch_size": 32,
    "projection_dim": 768,
}


def sync(device: Any) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def build_foleykit(device: str, size: str = "full"):
    """foleykit's rewas recipe (``full``: AudioLDM-M size; ``debug``: its tiny twin), random weights, no text /
    video encoders."""
    import torch

    from foleykit.recipes import build_pipeline, load_recipe

    torch.manual_seed(0)
    return build_pipeline(load_recipe("rewas", size=size), encoders=False).to(device)


def build_diffusers(fk: Any, dtype: Any):
    """diffusers AudioLDMPipeline over foleykit's UNet / VAE / vocoder (shared modules) + a tiny CLAP text model.

    For a half-precision row the shared modules are cast (``main`` casts them back to float32 afterwards).
    """
    import diffusers
    from transformers import ClapTextConfig, ClapTextModelWithProjection

    dim = int(fk.denoiser.unet.config.projection_class_embeddings_input_dim)  # 512 for AudioLDM
    text = ClapTextModelWithProjection(
        ClapTextConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=37,
            projection_dim=dim,
            max_position_embeddings=64,
        )
    ).to(fk.device, dtype)
    sched = diffusers.DDIMScheduler.from_config(fk.scheduler.config)
    pipe = diffusers.AudioLDMPipeline(
        vae=fk.codec.vae,
        text_encoder=text,
        tokenizer=None,
        unet=fk.denoiser.unet,
        scheduler=sched,
        vocoder=fk.codec.vocoder,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(fk.device, dtype)


def energy_control(fk: Any, clip: Path, seconds: float):
    """The energy control measured on the benchmark clip's sound (its ``.wav`` twin written by ``foleykit data
    synth``, else its audio track, else a click track), for the generator rows (ReWaS' energy)."""
    from foleykit import controls
    from foleykit.media import probe, read_audio
    from foleykit.testing import make_click_track

    seq = fk.seq.with_duration(seconds)
    source = clip.with_suffix(".wav") if clip.with_suffix(".wav").exists() else clip
    if source == clip and not probe(clip).has_audio:
        wav = make_click_track(
            list(np.arange(0.25, seconds, 0.5)), sample_rate=seq.sample_rate, duration=seconds
        )
    else:
        wav = read_audio(source, sample_rate=seq.sample_rate, duration=seconds)
    return controls.energy(wav, seq.sample_rate, seq=seq)


def random_clip_folder(cache_dir: Path, projection_dim: int = 768, *, tiny: bool = False) -> Path:
    """A random CLIP vision tower (ViT-B/32 size, or ``tiny`` for tests) saved in the transformers layout
    (config.json + model.safetensors); ``projection_dim`` = the energy predictor's input size."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = dict(CLIP_B32, projection_dim=int(projection_dim))
    if tiny:
        cfg.update(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32
        )
    folder = cache_dir / f"random-clip-vision-{'tiny' if tiny else 'b32'}-{projection_dim}"
    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg)).save_pretrained(folder)
    return folder


class StepClock:
    """Records the time of every forward of the shared UNet (one per sampling step: the guidance pair is batched)."""

    def __init__(self, unet: Any, device: Any) -> None:
        self.times: list[float] = []
        self.device = device
        self.handle = unet.register_forward_pre_hook(self._tick)

    def _tick(self, *_: Any) -> None:
        sync(self.device)
        self.times.append(time.perf_counter())

    def close(self) -> None:
        self.handle.remove()


def profile(
    name: str, make_fn, steps: int, targets: list[int], unet: Any, device: Any, direct: list[int]
) -> dict[str, Any]:
    """Run ``make_fn(steps)()`` once (after a 1-step warm-up): per-step cost = median interval between UNet
    forwards, fixed cost = total - steps x per-step; times at ``targets`` extrapolated unless in ``direct``."""
    state = machine_state()
    make_fn(1)()
    sync(device)
    clock = StepClock(unet, device)
    try:
        t0 = time.perf_counter()
        make_fn(steps)()
        sync(device)
        total = time.perf_counter() - t0
    finally:
        clock.close()
    intervals = [b - a for a, b in zip(clock.times, clock.times[1:])]
    per_step = statistics.median(intervals) if intervals else total / steps
    fixed = max(0.0, total - steps * per_step)
    row: dict[str, Any] = {
        "name": name,
        "measured": {steps: total},
        "per_step": per_step,
        "fixed": fixed,
        "step_intervals": intervals,
        **state,
    }
    est = {n: {"seconds": fixed + n * per_step, "extrapolated": n != steps} for n in targets}
    for n in direct:
        if n != steps:
            t0 = time.perf_counter()
            make_fn(n)()
            sync(device)
            est[n] = {"seconds": time.perf_counter() - t0, "extrapolated": False}
            row["measured"][n] = est[n]["seconds"]
    row["at"] = est
    print(f"{name}: {per_step:.4f} s/step, fixed {fixed:.3f} s, load {state['loadavg']}", file=sys.stderr)
    return row


def markdown(report: dict[str, Any]) -> str:
    targets = report["targets"]
    head = " | ".join(f"{n} steps s" for n in targets)
    env = report["environment"]
    lines = [
        (
            f"Device {env['device']} ({env.get('gpu', env['cpu'])}); measured at {report['seconds']:g} s of "
            f"audio, {report['steps_measured']} steps; times at {report['target_seconds']:g} s scale by "
            f"{report['scale']:.3f}; * = extrapolated"
        ),
        "",
        f"| pipeline | s / step | fixed s | {head} |",
        "|---|---|---|" + "---|" * len(targets),
    ]
    for r in report["rows"]:
        cells = " | ".join(
            f"{r['scaled'][str(n)]:.3f}{'*' if r['at'][n]['extrapolated'] or report['scale'] != 1 else ''}"
            for n in targets
        )
        lines.append(
            f"| {r['name']} | {r['per_step'] * report['scale']:.4f} | {r['fixed'] * report['scale']:.3f} | "
            f"{cells} |"
        )
    lines.append("")
    for k, v in report["ratios"].items():
        lines.append(f"- {k}: **{v:.2f}x**")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--seconds", type=float, default=10.0, help="audio length measured")
    ap.add_argument("--target-seconds", type=float, default=10.0, help="length the report scales to")
    ap.add_argument("--steps", type=int, default=None, help="steps of the timed run (CPU 3; GPU 25)")
    ap.add_argument("--targets", default="25,200", help="step counts reported")
    ap.add_argument("--fast-steps", type=int, default=25, help="foleykit's fast default (DPM-Solver++)")
    ap.add_argument("--precisions", default=None, help="foleykit rows (CPU fp32,bf16; GPU bf16,fp16)")
    ap.add_argument("--diffusers-dtypes", default=None, help="diffusers rows (CPU fp32; GPU fp32,fp16)")
    ap.add_argument("--no-video", dest="video", action="store_false", help="skip the end-to-end rows")
    ap.add_argument("--compile", action="store_true", help="torch.compile foleykit's denoiser")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--size",
        default="full",
        choices=("full", "debug"),
        help="debug: the tiny twin (checks every code path in seconds; the tests run it)",
    )
    ap.add_argument("--clip", type=Path, default=None, help="video to use (default: the cached 720p clip)")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--json", type=Path, default=None, help="default <cache-dir>/bench_peer.json")
    args = ap.parse_args(argv)

    import torch

    from foleykit.pipelines.fast import attention_processors
    from foleykit.pipelines.sampling import swap_scheduler
    from foleykit.product.runtime import configure_threads, resolve_device

    device = resolve_device(args.device)
    gpu = device.startswith("cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads() if args.threads else configure_threads()
    seconds = args.seconds
    n_steps = args.steps or (25 if gpu else 3)
    targets = [int(v) for v in args.targets.split(",")]
    precisions = (args.precisions or ("bf16,fp16" if gpu else "fp32,bf16")).split(",")
    ddtypes = (args.diffusers_dtypes or ("fp32,fp16" if gpu else "fp32")).split(",")
    dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    clip = args.clip or benchmark_clip(args.cache_dir)
    direct = targets if gpu else []

    t0 = time.perf_counter()
    fk = build_foleykit(device, args.size)
    build_s = time.perf_counter() - t0
    print(
        f"built rewas ({args.size}) in {build_s:.1f} s: {fk.num_parameters()['total'] / 1e6:.1f}M params",
        file=sys.stderr,
    )
    ddim = fk.scheduler
    control = energy_control(fk, clip, seconds)
    rows = []

    # --- diffusers -------------------------------------------------------------------------------------
    for name in ddtypes:
        pipe = build_diffusers(fk, dt[name])
        emb = torch.randn(
            1,
            pipe.unet.config.projection_class_embeddings_input_dim,
            generator=torch.Generator().manual_seed(0),
        ).to(device, dt[name])

        def run_d(n: int, pipe=pipe, emb=emb):
            return lambda: pipe(
                prompt_embeds=emb,
                negative_prompt_embeds=torch.zeros_like(emb),
                num_inference_steps=n,
                audio_length_in_s=seconds,
                guidance_scale=4.0,
                generator=torch.Generator().manual_seed(0),
            )

        with torch.no_grad():
            rows.append(
                profile(
                    f"diffusers AudioLDMPipeline {name}",
                    run_d,
                    n_steps,
                    targets,
                    fk.denoiser.unet,
                    device,
                    direct,
                )
            )
        del pipe
    fk.to(device, torch.float32)  # undo the diffusers half-precision casts of the shared modules

    # --- foleykit --------------------------------------------------------------------------------------
    video_enc = None
    if args.video:
        from foleykit.encoders.video import CLIPVideoEncoder

        folder = random_clip_folder(args.cache_dir, fk.predictors["energy"].in_dim, tiny=args.size == "debug")
        video_enc = CLIPVideoEncoder(path=folder).to(device)
    for prec in precisions:
        fk.set_inference_options(precision=prec, compile=args.compile)
        fk.scheduler = ddim

        def run_f(n: int):
            return lambda: fk(controls=control, duration=seconds, num_inference_steps=n, seed=0)

        rows.append(
            profile(
                f"foleykit rewas (UNet + ControlNet) {fk.precision}, generator",
                run_f,
                n_steps,
                targets,
                fk.denoiser.unet,
                device,
                direct,
            )
        )
        if video_enc is not None:
            fk.video_encoder = video_enc

            def run_v(n: int):
                return lambda: fk(str(clip), start=0.0, duration=seconds, num_inference_steps=n, seed=0)

            rows.append(
                profile(
                    f"foleykit rewas {fk.precision}, end to end from the 720p video",
                    run_v,
                    n_steps,
                    targets,
                    fk.denoiser.unet,
                    device,
                    direct,
                )
            )
            fk.video_encoder = None
    fk.scheduler = swap_scheduler(ddim, "dpmsolver++")  # the fast sampler: same cost per step as DDIM

    scale = args.target_seconds / seconds
    for r in rows:
        r["scaled"] = {str(n): r["at"][n]["seconds"] * scale for n in targets}
    base = next(r for r in rows if r["name"].endswith("fp32") and r["name"].startswith("diffusers"))
    ratios = {}
    for r in rows:
        if r["name"].startswith("foleykit"):
            for d in rows:
                if d["name"].startswith("diffusers"):
                    ratios[f"{d['name']} / {r['name']} per step"] = d["per_step"] / r["per_step"]
            fast = r["fixed"] + args.fast_steps * r["per_step"]
            ratios[f"{base['name']} at 200 steps / {r['name']} at {args.fast_steps} steps"] = (
                base["fixed"] + 200 * base["per_step"]
            ) / fast
    report = {
        "benchmark": "bench_peer",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "environment": environment(device),
        "threads": threads,
        "seconds": seconds,
        "target_seconds": args.target_seconds,
        "scale": scale,
        "steps_measured": n_steps,
        "targets": targets,
        "fast_steps": args.fast_steps,
        "build_seconds": build_s,
        "size": args.size,
        "compile": args.compile,
        "parameters": fk.num_parameters(),
        "attention_processors": attention_processors(fk.denoiser.unet),
        "rows": rows,
        "ratios": ratios,
        "note": (
            "times at target_seconds are scaled linearly from the measured length"
            if scale != 1
            else "measured at the target length"
        ),
    }
    write_report(report, markdown(report), Path(args.json or args.cache_dir / "bench_peer.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
