"""Peak memory and seconds per step of each recipe's adapter stage at full size, with and without the memory knobs.

    python benchmarks/bench_adapter_memory.py [--recipes stable_v2a,rewas,...] [--options none,ckpt,bf16,ckpt+bf16]
        [--steps 3] [--warmup 1] [--threads 2] [--device cpu|cuda] [--json out.json]

Every (recipe, option) runs in a fresh Python process, so its peak resident memory (``VmHWM`` of
``/proc/self/status``; on CUDA also ``torch.cuda.max_memory_allocated``) is that configuration's alone. A
process builds the recipe's full-size pipeline with random weights from the published configs (the ``full``
training level; nothing is downloaded), trains the recipe's adapter stage(s) at batch 1 for ``warmup + steps``
optimizer steps on in-memory clips carrying what the feature cache provides (latents, video features,
reference-audio tokens), then validates (diffusion loss, one batch; no generation) and writes the stage's
checkpoint + export, like a real run's last step. Reported: the peak after building, the peak over the
training steps, the peak of the whole stage (with the final checkpoint and export), and the median seconds
per timed step.

The recipes' CLAP / CLIP encoders load from local folders; the benchmark writes random-weight folders with
transformers' default configs (``ClapConfig()`` = laion/clap-htsat-unfused, ``CLIPConfig()`` =
openai/clip-vit-base-patch32) and a small stand-in tokenizer into ``--cache`` once, and points
``FOLEYKIT_HOME`` there.

Options: ``none``; ``ckpt`` = ``<stage>.gradient_checkpointing=true``; ``bf16`` = ``<stage>.precision=bf16``;
``ckpt+bf16`` both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = ("foleykit_demo", "rewas", "rhythmic_foley", "stable_v2a")
OPTIONS = {
    "none": [],
    "ckpt": ["gradient_checkpointing=true"],
    "bf16": ["precision=bf16"],
    "ckpt+bf16": ["gradient_checkpointing=true", "precision=bf16"],
}
HUB_IDS = {"clap": "laion/clap-htsat-unfused", "clip": "openai/clip-vit-base-patch32"}


def vm_hwm_mb() -> float:
    """Peak resident set size of this process (MB): VmHWM, or ru_maxrss where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- random-weight encoder folders ----------------------------------------------------------------------------
def _tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<s>", "<pad>", "</s>", "<unk>", "knocks", "a", "the", "footsteps", "glass", "dog"]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=77,
    ).save_pretrained(str(folder))


def encoder_home(cache: Path) -> Path:
    """``FOLEYKIT_HOME`` whose ``models/`` holds random-weight CLAP and CLIP folders (written once)."""
    home = cache / "home"
    models = home / "models"
    clap, clip = models / HUB_IDS["clap"], models / HUB_IDS["clip"]
    if not (clap / "model.safetensors").is_file():
        from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

        ClapModel(ClapConfig()).save_pretrained(str(clap))
        ClapFeatureExtractor().save_pretrained(str(clap))
        _tokenizer(clap)
    if not (clip / "model.safetensors").is_file():
        from transformers import CLIPConfig, CLIPModel

        CLIPModel(CLIPConfig()).save_pretrained(str(clip))
        _tokenizer(clip)
    return home


# --- one configuration (child process) ------------------------------------------------------------------------
def build(recipe: str, level: str):
    """The recipe's pipeline (seed 0). Without ``torchsde``, Stable Audio Open's cosine DPM sampler is replaced by
    DPM-Solver++ on the same published config: the adapter stage only reads the noise schedule for training."""
    import importlib.util

    import torch

    from foleykit.recipes import build_pipeline, load_recipe

    rec = load_recipe(recipe, size="full" if level == "full" else "debug")
    sched = rec.get("scheduler") or {}
    if sched.get("name") == "cosine_dpmsolver" and importlib.util.find_spec("torchsde") is None:
        rec["scheduler"] = {**sched, "name": "dpmsolver++"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return rec, build_pipeline(rec)


def run_one(
    recipe: str, option: str, steps: int, warmup: int, device: str, level: str = "full"
) -> list[dict]:
    import torch
    from bench_train_step import Clips

    from foleykit.training.config import resolve_run_config
    from foleykit.training.run import plan_stages, recipe_layer, stage_class
    from foleykit.training.stages.base import StageContext
    from foleykit.training.trainer import Trainer

    t0 = time.perf_counter()
    rec, pipe = build(recipe, level)
    build_s, build_mb = time.perf_counter() - t0, vm_hwm_mb()
    plan = {n: t for n, t in plan_stages(rec, pipe).items() if t["family"] == "adapter"}
    overrides = [
        f"train.max_steps={warmup + steps}",
        "train.batch_size=1",
        "train.grad_accum=1",
        "train.ckpt_every=0",
        "train.val_every=0",
        "train.val_batches=1",
        "train.tensorboard=false",
        "train.log_every=1",
        "train.num_workers=0",
    ]
    for name in plan:
        overrides += [f"{name}.val_generate=0"] + [f"{name}.{o}" for o in OPTIONS[option]]
    cfg = resolve_run_config(
        recipe=rec["name"],
        level=level,
        stages={n: t["family"] for n, t in plan.items()},
        recipe_train=recipe_layer(rec, plan, level),
        overrides=overrides,
    )
    rows = []
    seq, g = pipe.seq, torch.Generator().manual_seed(0)
    vdim = getattr(pipe.video_encoder, "dim", None)
    stages = list(cfg["stages"].items())[:1]  # the first adapter stage (Rhythmic Foley's two have one size)
    with tempfile.TemporaryDirectory() as tmp:
        for name, table in stages:
            data = {"train": Clips(seq, n=2, size=32), "validation": Clips(seq, n=1, size=32)}
            for (
                ds
            ) in data.values():  # what the feature cache provides (the encoders stay loaded, as in a run)
                for it in ds.items:
                    it["latents"] = torch.randn(pipe.codec.latent_shape(seq), generator=g)
                    if vdim:
                        it["video_features"] = torch.randn(seq.num_video_frames, vdim, generator=g)
                    if pipe.audio_encoder is not None:
                        it["audio_tokens"] = torch.randn(4, pipe.audio_encoder.dim, generator=g)
                        it["audio_mask"] = torch.ones(4, dtype=torch.bool)
            ctx = StageContext(
                run_config=cfg,
                cfg=table,
                run_dir=Path(tmp),
                stage_dir=Path(tmp) / name,
                data=data,
                seq=seq,
                pipeline=pipe,
            )
            train_peak: list[float] = []
            cpu = [time.process_time()]

            def record(msg: str, peaks: list[float] = train_peak, cpu: list[float] = cpu) -> None:
                if "validation" not in msg:  # each step's log line comes before validation / checkpoint
                    peaks.append(vm_hwm_mb())
                    cpu.append(time.process_time())

            res = Trainer(stage=stage_class(table["family"])(ctx), progress=record).fit()
            timed = res.step_times[warmup:]
            trainable = sum(p.numel() for c in table["trainable"] for p in pipe.components()[c].parameters())
            row = {
                "recipe": rec["name"],
                "stage": name,
                "option": option,
                "batch": 1,
                "clip_s": seq.duration,
                "trainable_params": trainable,
                "total_params": sum(p.numel() for m in pipe.components().values() for p in m.parameters()),
                "build_s": round(build_s, 1),
                "build_peak_mb": round(build_mb),
                "train_peak_mb": round(max(train_peak)),
                "stage_peak_mb": round(vm_hwm_mb()),
                "median_step_s": round(statistics.median(timed), 2),
                "median_step_cpu_s": round(
                    statistics.median(b - a for a, b in zip(cpu[warmup:-1], cpu[warmup + 1 :])), 2
                ),
                "steps": len(timed),
                "losses": [round(h["loss"], 4) for h in res.history],
                "threads": torch.get_num_threads(),
                "device": device,
            }
            if device == "cuda":
                row["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
            rows.append(row)
            print("ROW " + json.dumps(row), flush=True)
    return rows


# --- driver -------------------------------------------------------------------------------------------------
def table(rows: list[dict]) -> str:
    head = (
        "| recipe / stage | option | trainable | total params | build peak | train peak | stage peak | s / step "
        "| CPU s / step |"
    )
    out = [head, "|" + "---|" * 9]
    for r in rows:
        out.append(
            f"| {r['recipe']} / {r['stage']} | {r['option']} | {r['trainable_params'] / 1e6:.1f}M | "
            f"{r['total_params'] / 1e6:.0f}M | {r['build_peak_mb'] / 1024:.1f} GB | {r['train_peak_mb'] / 1024:.1f} GB | "
            f"{r['stage_peak_mb'] / 1024:.1f} GB | {r['median_step_s']:.1f} | {r.get('median_step_cpu_s', float('nan')):.1f} |"
        )
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--options", default=",".join(OPTIONS))
    p.add_argument("--steps", type=int, default=3, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument(
        "--level", default="full", choices=("full", "debug"), help="debug: a quick check of the script"
    )
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "foleykit-bench-encoders"))
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--child", nargs=2, metavar=("RECIPE", "OPTION"), help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if a.child:
        import torch

        torch.set_num_threads(a.threads)
        if a.device == "cpu":
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        run_one(a.child[0], a.child[1], a.steps, a.warmup, a.device, a.level)
        return 0
    home = encoder_home(Path(a.cache))
    env = {
        **os.environ,
        "FOLEYKIT_HOME": str(home),
        "OMP_NUM_THREADS": str(a.threads),
        "MKL_NUM_THREADS": str(a.threads),
    }
    if a.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    rows = []
    for recipe in a.recipes.split(","):
        for option in a.options.split(","):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                recipe,
                option,
                "--steps",
                str(a.steps),
                "--warmup",
                str(a.warmup),
                "--threads",
                str(a.threads),
                "--device",
                a.device,
                "--level",
                a.level,
            ]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            got = [json.loads(ln[4:]) for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
            if proc.returncode != 0 or not got:
                print(f"{recipe} {option}: FAILED\n{proc.stderr[-3000:]}", file=sys.stderr, flush=True)
                continue
            for r in got:
                r["wall_s"] = round(time.perf_counter() - t0, 1)
                print(json.dumps(r), flush=True)
            rows += got
            if a.json:
                Path(a.json).write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
