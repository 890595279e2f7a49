"""The resolved run configuration of ``foleykit train``: layered defaults + ``key=value`` overrides.

A run config is a plain nested dict (saved as ``config.yaml`` next to every checkpoint)::

    recipe: rewas            # recipe name (configs/recipes/<name>.yaml)
    config: debug            # size level: debug | small | full
    seed: 0
    data: {...}              # where the data comes from (or how much synthetic data to make)
    train: {...}             # trainer knobs shared by every stage (steps, batch, lr, EMA, precision...)
    stages:                  # one fully-resolved table per stage the recipe trains (in training order)
      autoencoder: {...}     #   = family + trainable components + train knobs + stage knobs
      denoiser: {family: prior, trainable: [unet, condition_assembler], ...}

Resolution (later layers win): built-in defaults for the level -> the recipe YAML's ``train:`` /
``stages:`` sections (if any) -> command-line overrides. Within each layer, ``train.K`` applies to every
stage and ``stages.S.K`` to stage ``S`` only, so ``train.lr=1e-4`` on the command line beats a built-in
per-stage learning rate.

Override syntax (``foleykit train ... key=value``): a dotted path into the run config. Values are parsed as
YAML scalars/lists (``1e-4`` -> float, ``true`` -> bool, ``[0.9,0.99]`` -> list, ``null`` -> None).
Unknown keys are an error (with suggestions); prefix a key with ``+`` to add a new one.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from foleykit.errors import ConfigError

#: The size levels every recipe offers (each recipe YAML has a debug twin).
LEVELS = ("debug", "small", "full")

#: Stage families in the order ``--stage all`` runs them (later stages load earlier stages' outputs).
#: A recipe's stages are named freely (``denoiser``, ``temporal_adapter``...); each belongs to a family.
FAMILIES = ("autoencoder", "vocoder", "prior", "semantic", "predictor", "adapter")
STAGE_ORDER = FAMILIES


def family_of(name: str, table: Mapping[str, Any] | None = None) -> str:
    """The family of a stage: its ``family`` key, its name when that is a family, ``denoiser`` -> prior,
    ``*adapter`` -> adapter, ``*predictor`` -> predictor.

    Raises:
        ConfigError: the family cannot be told.
    """
    fam = (table or {}).get("family")
    if fam is None:
        if name in FAMILIES:
            fam = name
        elif name == "denoiser":
            fam = "prior"
        elif name.endswith("adapter"):
            fam = "adapter"
        elif name.endswith("predictor"):
            fam = "predictor"
    if fam not in FAMILIES:
        raise ConfigError(
            f"stage {name!r}: unknown family {fam!r}; give 'family' (one of {', '.join(FAMILIES)})"
        )
    return fam


# --- built-in defaults --------------------------------------------------------------------------------
_TRAIN_COMMON: dict[str, Any] = {
    "max_steps": 1000,
    "batch_size": 8,
    "grad_accum": 1,
    "optimizer": "adamw",  # adamw | adam
    "lr": 1.0e-4,
    "weight_decay": 1.0e-2,
    "betas": [0.9, 0.999],
    "eps": 1.0e-8,
    "scheduler": "constant_with_warmup",  # any diffusers.optimization.get_scheduler name
    "warmup_steps": 0,
    "max_grad_norm": 1.0,  # 0 or null disables clipping
    "mixed_precision": "auto",  # auto (bf16/fp16 on GPU, none on CPU) | no | bf16 | fp16
    "ema_decay": 0.999,  # 0 disables EMA
    "ema_warmup": True,  # decay ramps up as (1 + n) / (10 + n) (diffusers EMAModel's default)
    "export_ema": True,  # exported components use EMA weights when EMA is on
    "log_every": 10,
    "val_every": 500,  # 0 disables periodic validation (validation still runs at the end)
    "val_batches": 4,
    "ckpt_every": 500,
    "keep_checkpoints": 2,
    "num_workers": 0,
    "deterministic": False,  # torch.use_deterministic_algorithms (slower on GPU)
    "find_unused_parameters": True,  # DDP: null embeddings of undropped conditions get no gradient
    "tensorboard": True,
    # glob patterns over "<component>.<parameter name>" (fnmatch): when set, only the trainable components'
    # parameters that match one of them train (e.g. the DiT's cross-attention: "transformer.*.attn2.*")
    "trainable_params": None,
}

_TRAIN_LEVEL: dict[str, dict[str, Any]] = {
    "debug": {
        "max_steps": 4,
        "batch_size": 2,
        "lr": 1.0e-3,
        "log_every": 1,
        "val_every": 0,
        "val_batches": 1,
        "ckpt_every": 2,
        "keep_checkpoints": 2,
        "ema_decay": 0.9,
    },
    "small": {
        "max_steps": 300,
        "batch_size": 4,
        "lr": 3.0e-4,
        "log_every": 10,
        "val_every": 100,
        "val_batches": 2,
        "ckpt_every": 100,
        "ema_decay": 0.99,
    },
    "full": {},
}

#: Stage knobs (and per-stage trainer knobs) at every level; paper values where a paper gives them.
_STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    # AudioLDM mel VAE: L1 mel reconstruction + KL (weight 1e-6 in AudioLDM); adversarial term off.
    "autoencoder": {
        "recon_loss": "l1",
        "kl_weight": 1.0e-6,
        "adversarial": False,
        "adv_weight": 0.1,
        "adv_start": 0,
        "crop_seconds": None,
        # prepared stores (--store): crops per clip and their seed
        "crops_per_clip": 1,
        "data_seed": 0,
    },
    # HiFi-GAN (Kong et al. 2020): AdamW(0.8, 0.99); mel L1 x 45 + multi-resolution STFT; the adversarial
    # objective (MPD + MSD, least squares, feature matching x 2) is optional (off: CPU runs stay cheap).
    "vocoder": {
        "lr": 2.0e-4,
        "betas": [0.8, 0.99],
        "mel_weight": 45.0,
        "stft_weight": 1.0,
        "adversarial": False,
        "disc_start": 0,
        "disc_preset": "hifigan",  # hifigan (the paper's sizes) | debug
        "disc_width": 1.0,  # multiplies every discriminator channel count
        "disc_periods": [2, 3, 5, 7, 11],
        "disc_scales": 3,
        "adv_weight": 1.0,
        "feat_weight": 2.0,
        "lr_decay": None,  # HiFi-GAN: 0.999 per epoch
        "lr_decay_every": None,  # steps; null = one epoch of the training set
        "segment_seconds": 0.5,
        "segment_max_seconds": None,  # segment length drawn per step in [segment_seconds, this]
        "mel_source": "audio",  # audio | autoencoder: the vocoder hears the mel VAE's reconstruction
    },
    # Text/audio-to-audio prior ("T2A initialisation", STA-V2A sec. II-C1): diffusion loss, CFG dropout.
    "prior": {
        "lr": 3.0e-5,
        "cond_dropout": {"text": 0.1, "audio": 0.1, "video": 0.1},
        "snr_gamma": None,
        "conditions": None,
        "control_dropout": 0.0,
        # per clip, the video features an encoder gives without its vision models (training.stages.denoising)
        "vision_dropout": 0.0,
        # seconds of each training clip the loss sees: a random window of the latents, video features and
        # control series (null: the whole clip); validation always sees whole clips
        "crop_seconds": None,
    },
    # Semantic pieces: attentive pooling / projector (trained through the diffusion loss with the
    # denoiser frozen) and the Rhythmic Foley event detector (BCE on event presence).
    "semantic": {
        "lr": 1.0e-4,
        "cond_dropout": {"text": 0.1, "audio": 0.1, "video": 0.0},
        "event_weight": 1.0,
        "diffusion_weight": 1.0,
        "snr_gamma": None,
        "conditions": None,
        "label_sigma": 1.0,
        "label_window": 2,
        "onset_pos_weight": None,
    },
    # Timing predictors: energy MSE (ReWaS), RMS CE on Gaussian-smoothed mu-law classes (Stable-V2A:
    # Adam 1e-3 wd 1e-3), onset BCE (STA-V2A eq. 1).
    "predictor": {
        "lr": 1.0e-3,
        "weight_decay": 1.0e-3,
        "optimizer": "adam",
        "label_sigma": 1.0,
        "label_window": 2,
        "onset_pos_weight": None,
        "category_weight": 0.0,
        # prepared stores (--store): windows of window_frames video frames (null: whole clips), per clip
        "window_frames": None,
        "windows_per_clip": 1,
        "data_seed": 0,
        # per clip, the video features an encoder gives without its vision models (training.stages.denoising)
        "vision_dropout": 0.0,
    },
    # Control adapters (ControlNet): base frozen by default; ReWaS drops text with p = 0.3.
    "adapter": {
        "lr": 3.0e-5,
        "unfreeze_base": False,
        "cond_dropout": {"text": 0.3, "audio": 0.1, "video": 0.0},
        "val_steps": 4,
        "val_generate": 2,
        "snr_gamma": None,
        "conditions": None,
        "control_dropout": 0.0,
        "crop_seconds": None,  # as the prior's
        # memory (benchmarks/bench_adapter_memory.py): activation checkpointing of the base denoiser's and the
        # ControlNets' blocks; bf16 = frozen base / VAE / vocoder held in bf16 and the step under bf16 autocast
        # (trainable weights, gradients and optimizer state stay fp32; exports keep the fp32 base)
        "gradient_checkpointing": False,
        "precision": "fp32",
    },
}

_STAGE_LEVEL: dict[str, dict[str, dict[str, Any]]] = {
    "debug": {
        "vocoder": {"segment_seconds": 0.25, "lr": 1.0e-3, "disc_preset": "debug"},
        "adapter": {"val_steps": 2, "lr": 1.0e-3},
        "prior": {"lr": 1.0e-3},
        "semantic": {"lr": 1.0e-3},
    },
    "small": {
        "prior": {"lr": 2.0e-4},
        "semantic": {"lr": 2.0e-4},
        "adapter": {"lr": 2.0e-4},
        "vocoder": {"lr": 1.0e-3, "disc_width": 0.125},
    },
    "full": {},
}

#: Data of a run. ``path`` is the --data folder (null: synthetic clips are made in <output>/data from
#: ``bank``: "auto" = the prepared default bank if present, else the procedural bank; "procedural"; or a folder);
#: ``store`` a prepared store (--store, ``foleykit train prepare``) used instead.
_DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "debug": {
        "path": None,
        "bank": "auto",
        "num_train": 8,
        "num_validation": 2,
        "num_test": 2,
        "clip_seconds": None,
        "width": 64,
        "height": 48,
        "seed": 0,
        "workers": 1,
        "cache": True,
        "store": None,
    },
    "small": {
        "path": None,
        "bank": "auto",
        "num_train": 96,
        "num_validation": 8,
        "num_test": 8,
        "clip_seconds": None,
        "width": 160,
        "height": 120,
        "seed": 0,
        "workers": 2,
        "cache": True,
        "store": None,
    },
    "full": {
        "path": None,
        "bank": "auto",
        "num_train": 2000,
        "num_validation": 100,
        "num_test": 100,
        "clip_seconds": None,
        "width": 160,
        "height": 120,
        "seed": 0,
        "workers": 2,
        "cache": True,
        "store": None,
    },
}


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: values of ``update`` win; nested mappings merge key by key (copies)."""
    out = copy.deepcopy(dict(base))
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_value(text: str) -> Any:
    """Parse an override value: YAML scalar/list/mapping, with ``1e-4``-style floats understood."""
    import yaml

    s = text.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        f = float(s)
        if math.isfinite(f) or s.lower() in ("inf", "-inf", "nan"):
            return f
    except ValueError:
        pass
    try:
        return yaml.safe_load(s) if s else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot parse override value {text!r}: {e}") from e


def parse_overrides(items: Iterable[str]) -> list[tuple[str, Any, bool]]:
    """Parse ``key=value`` strings into ``(dotted_key, value, add_new)`` triples.

    Raises:
        ConfigError: an item has no ``=`` or an empty key.
    """
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. train.lr=1e-4)")
        key, _, value = item.partition("=")
        key = key.strip()
        add = key.startswith("+")
        key = key.lstrip("+")
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r} has an empty key")
        out.append((key, parse_value(value), add))
    return out


def _coerce(key: str, old: Any, new: Any) -> Any:
    """Keep the type of the default where that is unambiguous (int -> float, list stays list)."""
    if old is None or new is None:
        return new
    if isinstance(old, bool):
        if not isinstance(new, bool):
            raise ConfigError(f"{key} expects true/false, got {new!r}")
        return new
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return float(new)
    if isinstance(old, (int, float)) and (isinstance(new, bool) or not isinstance(new, (int, float))):
        raise ConfigError(f"{key} expects a number, got {new!r}")
    if isinstance(old, int) and isinstance(new, float):
        if not new.is_integer():
            raise ConfigError(f"{key} expects an integer, got {new!r}")
        return int(new)
    if isinstance(old, str) and not isinstance(new, str):
        raise ConfigError(f"{key} expects a string, got {new!r}")
    if isinstance(old, list) and not isinstance(new, list):
        raise ConfigError(f"{key} expects a list, got {new!r}")
    if isinstance(old, Mapping) and not isinstance(new, Mapping):
        raise ConfigError(f"{key} is a table; set one of its keys ({', '.join(sorted(old))}) instead")
    return new


def set_dotted(cfg: dict[str, Any], key: str, value: Any, *, add: bool = False) -> None:
    """Set ``cfg[a][b][c] = value`` for ``key == "a.b.c"`` (in place).

    Raises:
        ConfigError: the key does not exist (and ``add`` is false), with close matches suggested.
    """
    parts = key.split(".")
    node: Any = cfg
    path = []
    for part in parts[:-1]:
        path.append(part)
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {key}: {'.'.join(path[:-1])} is not a table")
        if part not in node:
            if not add:
                raise ConfigError(_unknown(key, ".".join(path), node))
            node[part] = {}
        node = node[part]
    if not isinstance(node, dict):
        raise ConfigError(f"cannot set {key}: {'.'.join(parts[:-1])} is not a table")
    last = parts[-1]
    if last not in node:
        if not add:
            raise ConfigError(_unknown(key, key, node))
        node[last] = value
        return
    node[last] = _coerce(key, node[last], value)


def _unknown(key: str, where: str, node: Mapping[str, Any]) -> str:
    prefix = where.rsplit(".", 1)[0] + "." if "." in where else ""
    options = [prefix + k for k in node]
    close = difflib.get_close_matches(where, options, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    valid = ", ".join(sorted(options))
    return f"unknown config key {key!r}.{hint} Valid keys here: {valid}. (Prefix with '+' to add a new key.)"


def get_dotted(cfg: Mapping[str, Any], key: str) -> Any:
    """``cfg[a][b][c]`` for ``key == "a.b.c"``; ConfigError if missing."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"config key {key!r} is not set")
        node = node[part]
    return node


def default_run_config(recipe: str, level: str, stages: Mapping[str, str]) -> dict[str, Any]:
    """Built-in defaults of a run (before the recipe's YAML and command-line overrides).

    Args:
        recipe: Recipe name.
        level: ``debug`` | ``small`` | ``full``.
        stages: Stage name -> family, in training order.
    """
    if level not in LEVELS:
        raise ConfigError(f"unknown config level {level!r}; valid: {', '.join(LEVELS)}")
    train = deep_merge(_TRAIN_COMMON, _TRAIN_LEVEL[level])
    tables = {}
    for name, fam in stages.items():
        fam = family_of(name, {"family": fam})
        tables[name] = {"family": fam, **deep_merge(_STAGE_DEFAULTS[fam], _STAGE_LEVEL[level].get(fam, {}))}
    return {
        "recipe": recipe,
        "config": level,
        "seed": 0,
        "data": copy.deepcopy(_DATA_DEFAULTS[level]),
        "train": train,
        "stages": tables,
    }


def resolve_run_config(
    *,
    recipe: str,
    level: str,
    stages: Iterable[str] | Mapping[str, str],
    recipe_train: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the resolved run config.

    Args:
        recipe: Recipe name.
        level: ``debug`` | ``small`` | ``full``.
        stages: The stages this recipe trains: name -> family (or names that are family names), in order.
        recipe_train: The recipe's training layer, a mapping with optional ``train`` (shared knobs),
            ``stages`` (knobs per stage name), ``data`` and ``seed`` keys.
        overrides: ``key=value`` strings from the command line.
        base: A previously resolved config (``--resume``): start from it instead of the defaults.

    Returns:
        The run config with every stage table fully resolved (train knobs + stage knobs).

    Raises:
        ConfigError: unknown level/stage/key, or a value of the wrong type.
    """
    if not isinstance(stages, Mapping):
        stages = {s: s for s in stages}
    stages = {n: family_of(n, {"family": f}) for n, f in stages.items()}
    if base is not None:
        cfg = copy.deepcopy(dict(base))
        layers: list[Mapping[str, Any]] = []
    else:
        cfg = default_run_config(recipe, level, stages)
        layers = [recipe_train or {}]
    # Layer: recipe YAML. Its `train` applies to every stage table, then its `stages.S` to one stage.
    for layer in layers:
        _apply_layer(cfg, layer, stages)
    # Layer: command line. Same rule; validate keys against the resolved tables.
    parsed = parse_overrides(overrides)
    for key, value, add in parsed:
        head = key.split(".", 1)[0]
        if head == "train":
            set_dotted(cfg, key, value, add=add)
            value = get_dotted(cfg, key)  # type-coerced
            sub = key.split(".", 1)[1]
            for s in cfg["stages"]:
                # a shared knob reaches every stage (adding it where the stage table lacks it)
                set_dotted(cfg["stages"][s], sub, copy.deepcopy(value), add=True)
        elif head in cfg["stages"] or head == "stages":
            k = key if head == "stages" else f"stages.{key}"
            _set_stage_key(cfg, k, value, add)
        else:
            set_dotted(cfg, key, value, add=add)
    # Every stage table carries the shared train knobs it did not override.
    for s in cfg["stages"]:
        cfg["stages"][s] = deep_merge(cfg["train"], cfg["stages"][s])
    validate_run_config(cfg)
    return cfg


def _set_stage_key(cfg: dict[str, Any], key: str, value: Any, add: bool) -> None:
    parts = key.split(".")
    if len(parts) < 3:
        raise ConfigError(f"override {key!r} must name a stage knob, e.g. stages.prior.lr=1e-4")
    stage = parts[1]
    if stage not in cfg["stages"]:
        raise ConfigError(
            f"stage {stage!r} is not trained by recipe {cfg.get('recipe')!r}; "
            f"its stages: {', '.join(cfg['stages'])}"
        )
    sub = ".".join(parts[2:])
    table = cfg["stages"][stage]
    head = parts[2]
    if head not in table and head in cfg["train"]:
        # a shared knob not yet copied into the stage table (before the final merge)
        table[head] = copy.deepcopy(cfg["train"][head])
    set_dotted(table, sub, value, add=add)


def _apply_layer(cfg: dict[str, Any], layer: Mapping[str, Any], stages: Mapping[str, str]) -> None:
    unknown = set(layer) - {"train", "stages", "data", "seed"}
    if unknown:
        raise ConfigError(
            f"recipe training section: unknown keys {sorted(unknown)} (allowed: train, stages, data, seed)"
        )
    if "seed" in layer:
        cfg["seed"] = int(layer["seed"])
    if "data" in layer:
        cfg["data"] = deep_merge(cfg["data"], layer["data"])
    if "train" in layer:
        cfg["train"] = deep_merge(cfg["train"], layer["train"])
        for s in stages:  # the recipe's shared knobs beat built-in per-stage defaults
            cfg["stages"][s] = deep_merge(cfg["stages"][s], layer["train"])
    for s, table in (layer.get("stages") or {}).items():
        if s not in cfg["stages"]:
            raise ConfigError(
                f"recipe training section names stage {s!r}, which this run does not train "
                f"(its stages: {', '.join(stages) or 'none'})"
            )
        cfg["stages"][s] = deep_merge(cfg["stages"][s], table)


def validate_run_config(cfg: Mapping[str, Any]) -> None:
    """Check the values a run cannot start without (positive counts, known names).

    Raises:
        ConfigError: naming the offending key and value.
    """
    for s, t in cfg["stages"].items():

        def need(cond: bool, key: str, s: str = s, t: Mapping[str, Any] = t) -> None:
            if not cond:
                raise ConfigError(f"stages.{s}.{key} has an invalid value {t.get(key)!r}")

        need(isinstance(t.get("max_steps"), int) and t["max_steps"] >= 0, "max_steps")
        need(isinstance(t.get("batch_size"), int) and t["batch_size"] > 0, "batch_size")
        need(isinstance(t.get("grad_accum"), int) and t["grad_accum"] > 0, "grad_accum")
        need(isinstance(t.get("lr"), (int, float)) and t["lr"] > 0, "lr")
        need(t.get("mixed_precision") in ("auto", "no", "bf16", "fp16"), "mixed_precision")
        need(t.get("optimizer") in ("adamw", "adam"), "optimizer")
        need(isinstance(t.get("ema_decay"), (int, float)) and 0 <= t["ema_decay"] < 1, "ema_decay")
        need(isinstance(t.get("ckpt_every"), int) and t["ckpt_every"] >= 0, "ckpt_every")
        need(isinstance(t.get("keep_checkpoints"), int) and t["keep_checkpoints"] >= 1, "keep_checkpoints")
        need(isinstance(t.get("betas"), list) and len(t["betas"]) == 2, "betas")
        cs = t.get("crop_seconds")
        need(
            cs is None or (isinstance(cs, (int, float)) and not isinstance(cs, bool) and cs > 0),
            "crop_seconds",
        )
        tp = t.get("trainable_params")
        need(
            tp is None or (isinstance(tp, list) and tp and all(isinstance(x, str) and x for x in tp)),
            "trainable_params",
        )
        vd = t.get("vision_dropout", 0.0)
        need(isinstance(vd, (int, float)) and 0 <= vd <= 1, "vision_dropout")
        for k, p in (t.get("cond_dropout") or {}).items():
            if not (isinstance(p, (int, float)) and 0 <= p <= 1):
                raise ConfigError(f"stages.{s}.cond_dropout.{k} must be a probability in [0, 1], got {p!r}")


def dump_yaml(cfg: Mapping[str, Any]) -> str:
    """The run config as YAML text (key order kept)."""
    import yaml

    return yaml.safe_dump(_plain(cfg), sort_keys=False, default_flow_style=None)


def load_yaml(text: str) -> dict[str, Any]:
    import yaml

    out = yaml.safe_load(text)
    if not isinstance(out, dict):
        raise ConfigError("run config file is not a mapping")
    return out


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
