"""Fine-tune a model folder's HiFi-GAN vocoder on real recordings (the sound bank), e.g. adversarially.

Runs the ``vocoder`` stage of ``foleykit.training`` (the same ``Trainer``: EMA, checkpoints, exact resume)
on windows of the bank's sounds instead of synthetic soundtracks, starting from the vocoder of ``--model``
(loaded in fp32, whatever the folder's dtype). The result is a whole model folder
(``OUT/vocoder/model``) in which only the vocoder changed: score it with ``eval_resynthesis.py``.

Data: every file of the bank split, cut into consecutive windows of at most ``--window-seconds`` (short
files are one window); windows whose RMS is below ``--min-rms`` (silence) are left out. The stage then
draws one random segment per window and step (``vocoder.segment_seconds`` .. ``segment_max_seconds``).

Commands::

    # the issue-14 pilot: adversarial fine-tuning of the shipped vocoder on one core
    python benchmarks/finetune_vocoder.py --out vocoder_pilot/gan --threads 1 \\
        vocoder.adversarial=true vocoder.disc_width=0.125 vocoder.max_steps=1200
    # the same budget without discriminators (control)
    python benchmarks/finetune_vocoder.py --out vocoder_pilot/plain --threads 1 vocoder.max_steps=1200
    # resume an interrupted run
    python benchmarks/finetune_vocoder.py --out vocoder_pilot/gan --resume [same overrides]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

#: Pilot defaults (HiFi-GAN's optimiser; overridable with key=value).
DEFAULTS = [
    "vocoder.batch_size=8",
    "vocoder.lr=2e-4",
    "vocoder.betas=[0.8,0.99]",
    "vocoder.weight_decay=0.01",
    "vocoder.lr_decay=0.999",
    "vocoder.segment_seconds=0.5",
    "vocoder.segment_max_seconds=1.0",
    "vocoder.max_steps=1000",
    "vocoder.log_every=10",
    "vocoder.val_every=250",
    "vocoder.val_batches=4",
    "vocoder.ckpt_every=250",
    "vocoder.keep_checkpoints=1",
    "vocoder.tensorboard=false",
]


class BankWindows:
    """Windows of a bank split's sounds: ``{"audio": Tensor[T]}`` items, ``T <= window`` samples.

    Args:
        bank: A ``SoundBank`` at the model's sample rate.
        files: Bank-relative paths.
        window_seconds: Longest window.
        min_rms: Windows quieter than this are left out.
        first_only: One (the first audible) window per file (validation).
    """

    def __init__(
        self, bank, files, *, window_seconds: float, min_rms: float, first_only: bool = False
    ) -> None:
        self.items: list[tuple[str, int, int]] = []
        n = round(window_seconds * bank.sample_rate)
        for f in files:
            wav = bank.load(f)
            for k in range(max(1, math.ceil(len(wav) / n))):
                seg = wav[k * n : (k + 1) * n]
                if len(seg) and float(np.sqrt(np.mean(np.square(seg)))) >= min_rms:
                    self.items.append((f, k * n, len(seg)))
                    if first_only:
                        break
        self.bank = bank

    def __len__(self) -> int:
        return len(self.items)

    def seconds(self) -> float:
        return sum(n for _, _, n in self.items) / self.bank.sample_rate

    def __getitem__(self, i: int) -> dict:
        import torch

        f, start, n = self.items[i]
        return {"audio": torch.from_numpy(np.array(self.bank.load(f)[start : start + n], np.float32))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="foleykit-demo", help="model folder whose vocoder is fine-tuned")
    ap.add_argument("--out", required=True, help="run folder (OUT/vocoder/{checkpoints,model})")
    ap.add_argument("--bank", default=None, help="bank folder (default: the prepared ufoai bank)")
    ap.add_argument("--split-seed", type=int, default=0, help="seed of the bank split")
    ap.add_argument("--window-seconds", type=float, default=2.0)
    ap.add_argument("--min-rms", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("overrides", nargs="*", help="key=value overrides of the resolved config")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, args.threads))
    from foleykit.data.bank import SoundBank, split_bank
    from foleykit.data.ufoai import default_bank_dir
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.training.config import dump_yaml, resolve_run_config
    from foleykit.training.stages.base import StageContext
    from foleykit.training.stages.vocoder import VocoderStage
    from foleykit.training.trainer import Trainer

    pipe = VideoToAudioPipeline.from_pretrained(args.model, dtype=torch.float32)
    recipe = pipe.recipe.get("name", "foleykit_demo")
    cfg = resolve_run_config(
        recipe=recipe, level="full", stages={"vocoder": "vocoder"}, overrides=[*DEFAULTS, *args.overrides]
    )
    bank = SoundBank(Path(args.bank) if args.bank else default_bank_dir(), sample_rate=pipe.seq.sample_rate)
    split = split_bank(bank, seed=args.split_seed)
    kw = {"window_seconds": args.window_seconds, "min_rms": args.min_rms}
    data = {
        "train": BankWindows(bank, split.files("train"), **kw),
        "validation": BankWindows(bank, split.files("validation"), first_only=True, **kw),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
    ctx = StageContext(
        run_config=cfg,
        cfg=cfg["stages"]["vocoder"],
        run_dir=out,
        stage_dir=out / "vocoder",
        data=data,
        seq=pipe.seq,
        pipeline=pipe,
    )
    stage = VocoderStage(ctx)
    print(
        f"{len(data['train'])} training windows ({data['train'].seconds():.0f} s), "
        f"{len(data['validation'])} validation windows; {stage.steps_per_epoch()} steps per epoch",
        flush=True,
    )

    def say(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    t0, c0 = time.perf_counter(), time.process_time()
    res = Trainer(stage=stage, progress=say).fit(resume=args.resume)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    times = res.step_times[5:] or res.step_times
    summary = {
        "steps": res.steps,
        "steps_this_run": len(res.step_times),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),  # this process (validation, checkpoints and export included)
        "seconds_per_step": round(float(np.median(times)), 3) if times else None,  # median wall time
        "val": res.val_metrics,
        "model": str(out / "vocoder" / "model"),
        "threads": args.threads,
        "overrides": [*DEFAULTS, *args.overrides],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
