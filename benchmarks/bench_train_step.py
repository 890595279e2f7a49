"""Wall time per training step of every stage of a recipe (CPU or GPU), and loss curves of a run.

    python benchmarks/bench_train_step.py --recipe foleykit_demo --config small [--steps 8] [--warmup 2]
    python benchmarks/bench_train_step.py --curves runs/foleykit_demo-small

Step timing: each stage of the recipe's plan trains ``warmup + steps`` optimizer steps with the stage's
resolved config (batch size, accumulation, precision of the ``--config`` level) on in-memory synthetic clips
(decaying noise bursts + flashing frames, so data loading costs ~nothing) carrying what a real run's feature
cache provides (latents and reference-audio tokens for the diffusion stages, video features for stages that
do not train the video encoder); the median and mean of the timed steps are reported (a step = fetch + forward + backward + clip +
optimizer + EMA). Checkpointing and validation are outside the timed steps. Curves: loss at the first, middle and last logged step of each stage
of a finished run (``metrics.jsonl``), plus the last validation metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


class Clips(torch.utils.data.Dataset):
    """In-memory clips at a recipe's geometry: bursts at random times, frames flashing on those frames."""

    def __init__(self, seq, *, n: int, size: int = 64) -> None:
        self.items = []
        for i in range(n):
            rng = np.random.default_rng(i)
            a = np.zeros(seq.num_samples, np.float32)
            frames = np.full((seq.num_video_frames, size, size, 3), 40, np.uint8)
            times = np.sort(rng.uniform(0.05, max(0.1, seq.duration - 0.2), size=3))
            for t in times:
                s = int(t * seq.sample_rate)
                m = min(1600, seq.num_samples - s)
                a[s : s + m] += (0.5 * rng.standard_normal(m) * np.exp(-np.arange(m) / 300)).astype(
                    np.float32
                )
                frames[min(int(t * seq.video_fps), seq.num_video_frames - 1)] = 250
            self.items.append(
                {
                    "audio": torch.from_numpy(a),
                    "frames": torch.from_numpy(frames),
                    "caption": "knocks",
                    "events": [{"time": float(t)} for t in times],
                    "key": f"c{i}",
                }
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


@torch.no_grad()
def cache_like(ds: Clips, pipe, *, video: bool) -> None:
    """Add the arrays a run's feature cache would provide (latents, video features) to in-memory clips."""
    for it in ds.items:
        it["latents"] = pipe.codec.encode_audio(it["audio"][None])[0]
        if video and pipe.video_encoder is not None:
            it["video_features"] = pipe.video_encoder.encode(it["frames"].numpy())[0].float()
        if pipe.audio_encoder is not None:
            tokens, mask = pipe.audio_encoder.encode([it["audio"].numpy()], pipe.seq.sample_rate)
            it["audio_tokens"], it["audio_mask"] = tokens[0].float(), mask[0]


def bench(
    recipe: str, level: str, steps: int, warmup: int, only: list[str] | None, overrides: list[str]
) -> list[dict]:
    from foleykit.training.config import resolve_run_config
    from foleykit.training.run import _build, plan_stages, recipe_layer, stage_class
    from foleykit.training.stages.base import StageContext
    from foleykit.training.trainer import Trainer

    rec, pipe = _build(recipe, level)
    plan = plan_stages(rec, pipe)
    if only:
        plan = {n: t for n, t in plan.items() if n in only or t["family"] in only}
    cfg = resolve_run_config(
        recipe=rec["name"],
        level=level,
        stages={n: t["family"] for n, t in plan.items()},
        recipe_train=recipe_layer(rec, plan, level),
        overrides=[
            f"train.max_steps={warmup + steps}",
            "train.ckpt_every=0",
            "train.val_every=0",
            "train.tensorboard=false",
            "train.log_every=1",
            "+train.val_generate=0",
            *overrides,
        ],
    )
    size = getattr(pipe.video_encoder, "input_size", 64) or 64
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, table in cfg["stages"].items():
            _, pipe = _build(recipe, level)  # every stage from a fresh pipeline (timing only)
            n = max(8, 2 * int(table["batch_size"]) * int(table["grad_accum"]))
            data = {"train": Clips(pipe.seq, n=n, size=size), "validation": Clips(pipe.seq, n=2, size=size)}
            if table["family"] not in ("autoencoder", "vocoder"):  # what the run's feature cache holds
                for ds in data.values():
                    cache_like(ds, pipe, video="video_encoder" not in table["trainable"])
            ctx = StageContext(
                run_config=cfg,
                cfg=table,
                run_dir=Path(tmp),
                stage_dir=Path(tmp) / name,
                data=data,
                seq=pipe.seq,
                pipeline=pipe,
            )
            res = Trainer(stage=stage_class(table["family"])(ctx)).fit()
            timed = res.step_times[warmup:]
            trainable = sum(p.numel() for c in table["trainable"] for p in pipe.components()[c].parameters())
            rows.append(
                {
                    "recipe": rec["name"],
                    "config": level,
                    "stage": name,
                    "family": table["family"],
                    "batch": int(table["batch_size"]) * int(table["grad_accum"]),
                    "clip_s": pipe.seq.duration,
                    "trainable_params": trainable,
                    "median_s": statistics.median(timed),
                    "mean_s": statistics.fmean(timed),
                    "steps": len(timed),
                    "device": "cuda" if torch.cuda.is_available() else "cpu",
                    "threads": torch.get_num_threads(),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def curves(run: Path) -> None:
    """Loss at the start / middle / end of each stage of a finished run, and its last validation."""
    from foleykit.training.trainer import read_metrics

    cfg_stages = [p.parent.name for p in sorted(run.glob("*/result.json"), key=lambda p: p.stat().st_mtime)]
    print(f"{'stage':<18} {'steps':>6} {'loss@start':>11} {'loss@middle':>12} {'loss@end':>10}  validation")
    for name in cfg_stages:
        recs = read_metrics(run / name)
        if not recs:
            continue
        k = len(recs)
        window = max(1, k // 10)  # mean over ~10% of the logged steps around each point (losses are noisy)

        def at(i: int, recs: list = recs, k: int = k, window: int = window) -> float:
            lo, hi = max(0, i - window // 2), min(k, i - window // 2 + window)
            return statistics.fmean(r["loss"] for r in recs[lo:hi])

        val = read_metrics(run / name, "val")
        last = {m: round(v, 4) for m, v in val[-1].items() if m not in ("step", "split")} if val else {}
        print(
            f"{name:<18} {recs[-1]['step']:>6} {at(0):>11.4f} {at(k // 2):>12.4f} {at(k - 1):>10.4f}  {last}"
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="foleykit_demo")
    p.add_argument("--config", default="small", choices=("debug", "small", "full"))
    p.add_argument("--steps", type=int, default=8, help="timed steps per stage")
    p.add_argument("--warmup", type=int, default=2, help="untimed first steps per stage")
    p.add_argument("--stages", nargs="*", help="stage or family names (default: every stage of the recipe)")
    p.add_argument("--curves", metavar="RUN_DIR", help="print the loss curves of a finished run instead")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    a = p.parse_args()
    if a.curves:
        curves(Path(a.curves))
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    bench(a.recipe, a.config, a.steps, a.warmup, a.stages, a.overrides)
    print(f"total {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
