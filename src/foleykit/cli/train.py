"""``foleykit train``: train every stage of a recipe (or one), on CPU, one GPU or many; prepare, merge, ship.

    foleykit train --recipe NAME [--config debug|small|full] [--stage STAGE|all] [--output DIR]
                   [--data DIR | --store STORE] [--init MODEL] [--resume] [--backbone DIR] [--threads N]
                   [--print-config] [key=value ...]
    foleykit train prepare --data DIR --store STORE [--recipe NAME --config LEVEL | --model DIR] [--extract ...]
    foleykit train tokens  --store STORE [--recipe NAME --config LEVEL | --model DIR]
    foleykit train merge   --run RUN --output DIR
    foleykit train cache   --store STORE --model DIR [--no-scale]
    foleykit train ship    --model DIR --output DIR [--vocoder DIR|griffin-lim] [--adapter-weight W]
                           [--silence-threshold T | --decoding RULE] [--expansion G]
                           [--follow-envelope S] [--card FILE]

Run in an empty folder with ``--config debug`` and nothing else, it makes its own tiny synthetic data,
trains a few steps of every stage and writes ``runs/<recipe>-debug/`` (checkpoints with the resolved
config, and ``model/``: a model folder ``VideoToAudioPipeline.from_pretrained`` loads).

Several GPUs / nodes: ``accelerate launch -m foleykit train ...`` or ``torchrun --nproc_per_node N -m
foleykit train ...`` (the same arguments).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from foleykit.cli._args import positive_int

LEVELS = ("debug", "small", "full")
STAGES = ("autoencoder", "vocoder", "prior", "semantic", "predictor", "adapter")


class _TrainParser(argparse.ArgumentParser):
    """``foleykit train [options] [key=value ...]`` trains; ``foleykit train ACTION ...`` runs an action.

    Training takes free ``key=value`` positionals, which argparse cannot mix with sub-parsers, so a first
    argument that names an action hands the rest of the line to that action's own parser.
    """

    actions: dict[str, argparse.ArgumentParser]

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        if args and args[0] in getattr(self, "actions", {}):
            return self.actions[args[0]].parse_known_args(args[1:], namespace)
        return super().parse_known_args(args, namespace)


def _threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch CPU threads of this process (default: torch's own choice; on a 2-core machine running "
        "two stages side by side, 1 each)",
    )


def _model_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--recipe", default="foleykit_demo", help="recipe whose pipeline decides (default foleykit_demo)"
    )
    p.add_argument("--config", default="full", choices=LEVELS, help="size level of the recipe (default full)")
    p.add_argument("--model", metavar="DIR", help="a model folder instead of --recipe / --config")


def _actions(prog: str) -> dict[str, argparse.ArgumentParser]:
    def parser(name: str, help_: str) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog=f"{prog} {name}", description=help_)
        _threads(p)
        p.set_defaults(_run=run, _action=name)
        return p

    out = {}
    p = out["prepare"] = parser(
        "prepare",
        "Decode every clip window of a dataset once into a prepared store (memory-mapped arrays; resumable). "
        "What is stored per clip comes from the model: the soundtrack, the control targets its predictors "
        "and adapters learn, and its video encoder's inputs (the features of a frozen encoder; the frames and "
        "the frozen parts' features of a trainable one).",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="dataset folder with train/ (+ validation/, test/), or one clips folder / CSV manifest (the train split)",
    )
    p.add_argument("--store", required=True, metavar="STORE", help="output folder")
    _model_source(p)
    p.add_argument(
        "--extract",
        default="",
        metavar="NAMES",
        help="further registered extractors to store per clip, comma-separated (e.g. onsets)",
    )
    p.add_argument(
        "--pose",
        # foleykit.data.cache.extractors.POSE_SOURCES (a test keeps them equal), not imported: every foleykit
        # command builds this parser, and the store's modules would add 60 ms to each start
        choices=("model", "keypoints"),
        default="model",
        help="where the stored video features' pose comes from: the pose model run on the picture, as at "
        "inference (model, default), or the synthetic clips' exact keypoints where they have them (keypoints)",
    )
    p.add_argument("--workers", type=positive_int, default=1, help="processes (default 1)")
    p.add_argument("--limit", type=positive_int, help="only the first N clips of each split")
    p = out["tokens"] = parser(
        "tokens", "Reference-audio tokens of every stored soundtrack (the frozen audio encoder of the model)."
    )
    p.add_argument("--store", required=True, metavar="STORE")
    _model_source(p)
    p = out["merge"] = parser(
        "merge",
        "One model folder from stages trained side by side in a run folder: the predictor stage's export with "
        "the autoencoder stage's VAE and, when finished, the vocoder stage's HiFi-GAN.",
    )
    p.add_argument("--run", required=True, metavar="RUN", help="the run folder")
    p.add_argument("--output", required=True, metavar="DIR", help="the merged model folder")
    p = out["cache"] = parser(
        "cache",
        "Set the model's latent scaling factor from the store (in its vae/config.json only; a shipped or "
        "published model keeps its own) and store the latents, "
        "video features and reference-audio tokens the diffusion stages read (training computes missing or "
        "outdated ones itself; this does it ahead).",
    )
    p.add_argument("--store", required=True, metavar="STORE")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("--no-scale", action="store_true", help="keep the VAE's scaling factor")
    p = out["ship"] = parser("ship", "Write the shipped model folder: fp16 safetensors + model card.")
    p.add_argument("--model", required=True, metavar="DIR", help="the trained model folder")
    p.add_argument("--output", required=True, metavar="DIR", help="the shipped folder")
    p.add_argument("--card", metavar="FILE", help="model card copied to MODEL_CARD.md")
    p.add_argument(
        "--vocoder",
        metavar="DIR|griffin-lim",
        help="model folder whose vocoder replaces the model's, or griffin-lim: the weight-free Griffin-Lim "
        "inverse of the mel instead of a trained vocoder",
    )
    p.add_argument("--adapter-weight", type=float, help="default weight of the control adapters")
    p.add_argument(
        "--silence-threshold",
        type=float,
        help="RMS-Mapper decoding: silent where P(class 0) >= this (default: argmax)",
    )
    p.add_argument(
        "--decoding",
        choices=("argmax", "expected", "median"),
        help="RMS-Mapper decoding rule: most likely class, rounded expected class, or median class",
    )
    p.add_argument(
        "--expansion",
        type=float,
        help="RMS-Mapper dynamic-range expansion about each clip's loudest frame (1: none; default 1)",
    )
    p.add_argument(
        "--follow-envelope",
        type=float,
        help="default strength (0-1) of the gain stage that makes the output's loudness follow the RMS curve",
    )
    return out


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a recipe's stages; prepare a store, merge and ship models (foleykit train ACTION --help)",
        description="Train every stage of a recipe (or one stage) with accelerate: CPU, one GPU or several "
        "(accelerate launch / torchrun). Checkpoints carry the resolved config and resume exactly. "
        "Extra key=value arguments override the resolved config (dotted keys: train.lr=1e-4, "
        "prior.max_steps=100, adapter.unfreeze_base=true, data.num_train=32). Actions: prepare (decode a "
        "dataset once into a store for --store), tokens, merge, cache, ship; see foleykit train ACTION --help.",
        epilog="Examples: foleykit train --recipe rewas --config debug | foleykit train --recipe stable_v2a "
        "--stage predictor --data clips/ train.batch_size=16 | foleykit train --recipe rewas --resume | "
        "foleykit train prepare --data synth/ --store store/ | foleykit train --recipe foleykit_demo --config "
        "full --stage predictor --store store/ --output run/ --threads 1",
    )
    p.__class__ = _TrainParser  # actions before the key=value positionals (see _TrainParser)
    p.actions = _actions(p.prog)
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
        metavar="STAGE",
        help="all (default: every stage of the recipe in order), or one stage: a stage name of the recipe "
        "(e.g. denoiser) or a family (" + ", ".join(STAGES) + "); one stage keeps its config in "
        "<output>/<stage>.config.yaml, so stages can train side by side in one run folder",
    )
    p.add_argument(
        "--output", "--run", metavar="DIR", help="run folder (default: runs/<recipe>-<config> here)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output from its latest checkpoints (finished stages are skipped)",
    )
    data = p.add_mutually_exclusive_group()
    data.add_argument(
        "--data",
        metavar="DIR",
        help="dataset folder (from `foleykit data synth`, a clips folder or a CSV manifest); "
        "default: make synthetic data in <output>/data",
    )
    data.add_argument(
        "--store",
        metavar="STORE",
        help="a prepared store (foleykit train prepare): clips decoded once, the CPU training path",
    )
    p.add_argument(
        "--init",
        metavar="MODEL",
        help="model folder the first stage trained starts from (default: the run's previous stage, else a "
        "fresh pipeline)",
    )
    p.add_argument(
        "--warm-start",
        metavar="MODEL",
        help="an earlier model folder: the fresh pipeline takes each of its weights whose name and shape still "
        "fit (e.g. a new release that changes only the video features)",
    )
    p.add_argument(
        "--backbone",
        metavar="DIR",
        help="published backbone folder (e.g. AudioLDM-M, Stable Audio Open) whose weights initialise the "
        "base; the default autoencoder / vocoder / prior stages are then skipped",
    )
    _threads(p)
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of the resolved config")
    p.set_defaults(_run=run, _action=None)
    return p


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def _pipeline(args: argparse.Namespace, *, encoders: bool = False) -> Any:
    """The model an action works for: ``--model``, else the recipe's pipeline (``encoders``: with its
    external condition encoders; otherwise built without allocating weights)."""
    from foleykit.training.export import load

    if args.model:
        return load(args.model)
    from foleykit.training.run import _build

    return _build(args.recipe, args.config, meta=not encoders)[1]


def run_action(args: argparse.Namespace) -> int:
    action = args._action
    t0 = time.time()
    if action == "prepare":
        from foleykit.training.store import prepare_store

        extract = [n.strip() for n in args.extract.split(",") if n.strip()]
        prepare_store(
            args.data,
            args.store,
            pipe=_pipeline(args),
            extract=extract,
            pose=args.pose,
            workers=args.workers,
            limit=args.limit,
            say=_say,
        )
    elif action == "tokens":
        from foleykit.training.store import ensure_arrays

        ensure_arrays(_pipeline(args, encoders=True), args.store, latents=False, video=False, say=_say)
    elif action == "merge":
        from foleykit.training.export import merge

        _say(f"[merge] -> {merge(args.run, args.output, say=_say)}")
    elif action == "cache":
        from foleykit.training.export import load, store_latent_scale
        from foleykit.training.store import ensure_arrays

        pipe = load(args.model)
        if not args.no_scale:
            _say(store_latent_scale(args.model, pipe, args.store))
        ensure_arrays(pipe, args.store, say=_say)
    elif action == "ship":
        from foleykit.training.export import folder_size, ship

        folder = ship(
            args.model,
            args.output,
            card=args.card,
            vocoder=args.vocoder,
            adapter_weight=args.adapter_weight,
            silence_threshold=args.silence_threshold,
            decoding=args.decoding,
            expansion=args.expansion,
            follow_envelope=args.follow_envelope,
        )
        _say(f"[ship] {folder}: {folder_size(folder) / 1e6:.1f} MB")
    _say(f"[{action}] done in {time.time() - t0:.0f} s")
    return 0


def run(args: argparse.Namespace) -> int:
    """``--threads`` is applied by ``foleykit.cli.main`` (``apply_process_options``) before this runs."""
    if args._action is not None:
        return run_action(args)
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
        store=args.store,
        init=args.init,
        warm_start=args.warm_start,
        resume=args.resume,
        overrides=args.overrides,
        backbone=args.backbone,
        progress=_say,
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
