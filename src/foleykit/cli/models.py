"""``foleykit models list | info NAME | convert SEED | fetch-vision``: recipes, backbones, saved models.

``list`` prints the recipes (with their debug twins), the published backbones whose configs ship with
foleykit, and the models found locally (shipped and under ``$FOLEYKIT_HOME/models``). ``info NAME`` prints a
recipe's parts and parameter counts per component (built on the meta device: nothing is allocated or
downloaded), or a saved model folder's ``model_index.json`` summary. ``convert rewas | vta-ldm`` turns a seed
paper's released checkpoints into a foleykit model folder that ``foleykit generate --model`` runs (see
docs/models.md, "Converting ReWaS" / "Converting VTA-LDM"); released pickles are read restricted to tensors
unless ``--trust-pickle`` is given. ``fetch-vision`` fetches the pretrained vision models of the ``scene`` video
encoder at set-up (:mod:`foleykit.vision.assets`).
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models",
        help="list recipes / models and show their parts and sizes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="models_command", metavar="{list,info,convert,fetch-vision}")
    sub.add_parser("list", help="recipes, published backbones and local models")
    info = sub.add_parser("info", help="parts and parameter counts of a recipe or a model folder")
    info.add_argument("name", help="recipe name (e.g. rewas), recipe YAML, or model folder / name")
    info.add_argument("--size", choices=("full", "debug"), default="full", help="recipe size (default: full)")
    info.add_argument("--json", action="store_true", help="print JSON")
    _add_convert(sub)
    from foleykit.vision.cli import add_fetch_vision

    add_fetch_vision(sub)
    parser.set_defaults(_run=run)
    return parser


def _add_convert(sub) -> None:
    conv = sub.add_parser(
        "convert",
        help="turn a seed paper's released checkpoints into a foleykit model folder",
        description="Convert released checkpoints (ReWaS, VTA-LDM) into a model folder for `foleykit generate "
        "--model`. See docs/models.md for the files each needs.",
    )
    seeds = conv.add_subparsers(dest="seed", metavar="{rewas,vta-ldm}", required=True)
    r = seeds.add_parser("rewas", help="ReWaS (AudioLDM-M + energy ControlNet, phi, Synchformer)")
    r.add_argument("--checkpoint", required=True, help="audioldm_m_rewas_vggsound.ckpt")
    r.add_argument(
        "--tokenizer", required=True, help="RoBERTa tokenizer folder (e.g. audioldm-m-full/tokenizer)"
    )
    r.add_argument("--phi", help="phi_vggsound.ckpt (energy predictor; needs --synchformer)")
    r.add_argument("--synchformer", help="24-01-04T16-39-21.pt (Synchformer, the video features phi reads)")
    r.add_argument("--vae", help="vae_mel_16k_64bins.ckpt (only if the ReWaS checkpoint lacks the VAE)")
    r.add_argument("--vocoder", help="hifigan_16k_64bins.ckpt (only if the checkpoints lack the HiFi-GAN)")
    r.add_argument(
        "--clap", help="clap_music_speech_audioset_epoch_15_esc_89.98.pt (only if the checkpoint lacks CLAP)"
    )
    r.add_argument("--no-ema", action="store_true", help="use the UNet's raw weights, not its EMA copy")
    v = seeds.add_parser("vta-ldm", help="VTA-LDM (vta-ldm-clip4clip-v-large)")
    v.add_argument("--checkpoint", required=True, help="pytorch_model_2.bin")
    v.add_argument(
        "--unet-config", required=True, help="the UNet config named in summary.jsonl (configs/*.json)"
    )
    v.add_argument(
        "--scheduler-config", required=True, help="scheduler_config.json of summary.jsonl's scheduler_name"
    )
    v.add_argument(
        "--audioldm", required=True, help="the AudioLDM .ckpt of summary.jsonl's vae_model (VAE + HiFi-GAN)"
    )
    v.add_argument("--summary", help="summary.jsonl of the release (checked: variant, embedding size)")
    for p in (r, v):
        p.add_argument("--output", "-o", required=True, help="model folder to write")
        p.add_argument(
            "--scale-factor", type=float, help="latent scale when the checkpoint has no scale_factor"
        )
        p.add_argument("--fp16", action="store_true", help="store the weights in float16 (half the size)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
        p.add_argument(
            "--trust-pickle",
            action="store_true",
            help="allow full unpickling of released .ckpt/.pt/.bin files that hold more than tensors (it can run "
            "code from the file: only for files from a source you trust)",
        )


def _fmt(n: int) -> str:
    return f"{n / 1e6:,.1f}M" if n >= 1e5 else f"{n:,}"


def run(args: argparse.Namespace) -> int:
    from foleykit.errors import ConfigError

    cmd = getattr(args, "models_command", None)
    if cmd in (None, "list"):
        return _list()
    if cmd == "info":
        return _info(args)
    if cmd == "convert":
        return _convert(args)
    if cmd == "fetch-vision":
        from foleykit.vision.cli import run_fetch_vision

        return run_fetch_vision(args)
    raise ConfigError(f"unknown models command {cmd!r}")  # pragma: no cover - argparse rejects it first


def _local_models() -> list[tuple[str, str]]:
    from foleykit.paths import foleykit_home, shipped_models

    out = [(m, "shipped") for m in shipped_models()]
    home = foleykit_home() / "models"
    if home.is_dir():
        out += [(p.name, str(p)) for p in sorted(home.iterdir()) if (p / "model_index.json").is_file()]
    return out


def _list() -> int:
    import yaml

    from foleykit.models import PUBLISHED_BACKBONES, published_components
    from foleykit.paths import RECIPES_DIR
    from foleykit.recipes import recipe_names

    print("Recipes (foleykit models info NAME [--size debug]):")
    for name in recipe_names():
        data = yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
        twin = " (+ debug twin)" if "debug" in data else ""
        print(f"  {name:16s} {data.get('title', '')}{twin}")
    print("Published backbone configs (weights are not shipped; see docs/models.md):")
    for name, hub in PUBLISHED_BACKBONES.items():
        print(f"  {name:24s} {hub:36s} {', '.join(published_components(name))}")
    local = _local_models()
    print("Local models:" if local else "Local models: none found")
    for name, where in local:
        print(f"  {name:24s} {where}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from foleykit.errors import ConfigError
    from foleykit.recipes import build_pipeline, load_recipe, recipe_names

    name = args.name
    if name in recipe_names() or Path(name).suffix in (".yaml", ".yml"):
        recipe = load_recipe(name, size=args.size)
        pipe = build_pipeline(recipe, meta=True)
        counts = pipe.num_parameters()
        summary = {
            "recipe": recipe["name"],
            "size": args.size,
            "title": recipe.get("title", ""),
            "paper": recipe.get("paper", ""),
            "sequence": pipe.seq.to_dict(),
            "parameters": counts,
            "external_encoders": {
                k: v
                for k, v in (recipe.get("conditions") or {}).items()
                if isinstance(v, dict) and v.get("encoder")
            },
            "video_encoder": recipe.get("video_encoder"),
            "sampling": pipe.defaults,
        }
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
            return 0
        print(f"{recipe['name']} ({args.size}): {summary['title']}  [{summary['paper']}]")
        print(
            f"  audio: {pipe.seq.sample_rate} Hz, {pipe.seq.duration:g} s window, latent "
            f"{pipe.codec.latent_shape()} ({pipe.seq.latent_rate:g} frames/s), {type(pipe.codec).__name__}"
        )
        print(f"  sampling: {pipe.defaults}")
        print("  parameters (encoders that load published weights are not counted):")
        for comp, n in counts.items():
            print(f"    {comp:26s} {_fmt(n):>10s}")
        return 0
    from foleykit.errors import WeightsNotFoundError
    from foleykit.paths import resolve_model

    try:
        folder = resolve_model(name, expect="model_index.json")
    except WeightsNotFoundError as err:
        raise ConfigError(
            f"{name!r} is neither a recipe ({', '.join(recipe_names())}) nor a model: {err}"
        ) from None
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    fk = index.get("_foleykit", {})
    comps = {k: v for k, v in index.items() if not k.startswith("_")}
    if args.json:
        print(json.dumps({"folder": str(folder), "components": comps, "foleykit": fk}, indent=2, default=str))
        return 0
    print(f"{folder} ({index.get('_class_name', '?')})")
    if fk:
        print(f"  recipe: {fk.get('recipe', {}).get('name', '?')}  dtype on disk: {fk.get('dtype', '?')}")
        print(f"  sequence: {fk.get('sequence')}")
    for comp, entry in comps.items():
        print(f"  {comp:26s} {' / '.join(entry) if isinstance(entry, list) else entry}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from foleykit.errors import ConfigError

    out = Path(args.output).expanduser()
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose another --output or pass --overwrite")
    common = {
        "output": out,
        "trust_pickle": args.trust_pickle,
        "scale_factor": args.scale_factor,
        "dtype": torch.float16 if args.fp16 else None,
    }
    if args.seed == "rewas":
        from foleykit.convert.rewas import convert_rewas

        folder = convert_rewas(
            checkpoint=args.checkpoint,
            tokenizer=args.tokenizer,
            phi=args.phi,
            synchformer=args.synchformer,
            vae=args.vae,
            vocoder=args.vocoder,
            clap=args.clap,
            use_ema=not args.no_ema,
            **common,
        )
    else:
        from foleykit.convert.vta_ldm import convert_vta_ldm

        folder = convert_vta_ldm(
            checkpoint=args.checkpoint,
            unet_config=args.unet_config,
            scheduler_config=args.scheduler_config,
            audioldm=args.audioldm,
            summary=args.summary,
            **common,
        )
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    comps = sorted(k for k in index if not k.startswith("_"))
    print(f"wrote {folder} ({', '.join(comps)})")
    if args.seed == "rewas" and not args.phi:
        print("note: no --phi/--synchformer: the model takes its timing from --control or --control-audio")
    print(
        f"run: foleykit generate VIDEO --model {folder}" + (' --prompt "..."' if args.seed == "rewas" else "")
    )
    return 0
