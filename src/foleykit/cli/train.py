"""``foleykit train``: train every stage of a recipe (or one), on CPU, one GPU or many.

    foleykit train --recipe NAME [--config debug|small|full] [--stage STAGE|all] [--output DIR]
                   [--resume] [--data DIR] [--backbone DIR] [--print-config] [key=value ...]

Run in an empty folder with ``--config debug`` and nothing else, it makes its own tiny synthetic data,
trains a few steps of every stage and writes ``runs/<recipe>-debug/`` (checkpoints with the resolved
config, and ``model/``: a model folder ``VideoToAudioPipeline.from_pretrained`` loads).

Several GPUs / nodes: ``accelerate launch -m foleykit train ...`` or ``torchrun --nproc_per_node N -m
foleykit train ...`` (the same arguments).
"""

from __future__ import annotations

import argparse
import sys

LEVELS = ("debug", "small", "full")
STAGES = ("autoencoder", "vocoder", "prior", "semantic", "predictor", "adapter")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a recipe's stages (autoencoder, vocoder, prior, adapter, predictor, semantic)",
        description="Train every stage of a recipe (or one stage) with accelerate: CPU, one GPU or several "
        "(accelerate launch / torchrun). Checkpoints carry the resolved config and resume exactly. "
        "Extra key=value arguments override the resolved config (dotted keys: train.lr=1e-4, "
        "prior.max_steps=100, adapter.unfreeze_base=true, data.num_train=32).",
        epilog="Examples: foleykit train --recipe rewas --config debug | foleykit train --recipe stable_v2a "
        "--stage predictor --data clips/ train.batch_size=16 | foleykit train --recipe rewas --resume",
    )
    p.add_argument(
        "--recipe",
        required=True,
        help="recipe name (sta_v2a, rewas, vta_ldm, stable_v2a, rhythmic_foley, foleykit_demo)",
    )
    p.add_argument(
        "--config",
        default="small",
        choices=LEVELS,
        help="size level: debug (seconds, tests), small (CPU-sized), full (the paper's sizes)",
    )
    p.add_argument(
        "--stage",
        default="all",
        choices=("all", *STAGES),
        help="train one stage, or all of the recipe's stages in order (default)",
    )
    p.add_argument("--output", metavar="DIR", help="run folder (default: runs/<recipe>-<config> here)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output from its latest checkpoints (finished stages are skipped)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="dataset folder (from `foleykit data synth`, a clips folder or a CSV manifest); "
        "default: make synthetic data in <output>/data",
    )
    p.add_argument(
        "--backbone",
        metavar="DIR",
        help="published backbone folder (e.g. AudioLDM-M, Stable Audio Open) whose weights initialise the "
        "base; the default autoencoder / vocoder / prior stages are then skipped",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of the resolved config")
    p.set_defaults(_run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from foleykit.training.config import dump_yaml
    from foleykit.training.run import resolve_recipe_run, train_recipe

    if args.print_config:
        cfg = resolve_recipe_run(
            recipe=args.recipe,
            level=args.config,
            stage=args.stage,
            output=args.output,
            resume=args.resume,
            overrides=args.overrides,
            backbone=args.backbone,
        )
        sys.stdout.write(dump_yaml(cfg))
        return 0
    result = train_recipe(
        recipe=args.recipe,
        level=args.config,
        stage=args.stage,
        output=args.output,
        data=args.data,
        resume=args.resume,
        overrides=args.overrides,
        backbone=args.backbone,
        progress=lambda line: print(line, flush=True),
    )
    from foleykit.training.trainer import process_state

    if not process_state().is_main_process:
        return 0
    for name, res in result.stages.items():
        val = ", ".join(f"{k} {v:.4f}" for k, v in res.val_metrics.items())
        print(f"[{name}] done: {res.steps} steps" + (f"; validation: {val}" if val else ""), flush=True)
    if result.model_dir is not None:
        print(f"model folder: {result.model_dir}", flush=True)
    print(f"run folder: {result.output}", flush=True)
    return 0
