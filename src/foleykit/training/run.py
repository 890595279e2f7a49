"""``foleykit train`` end to end: recipe -> stage plan -> resolved config -> data -> stages -> model folder.

Run folder (``--output``, default ``runs/<recipe>-<config>`` in the working folder)::

    config.yaml            the resolved run config (every stage table fully resolved)
    <stage>.config.yaml    the same for a run of one ``--stage`` (so that stages can train side by side,
                           one process each, in one run folder)
    data/                  synthetic data made for the run (when neither --data nor --store is given)
    <stage>/               one folder per stage: checkpoints/step_*/ (resumable state + config + model/),
                           metrics.jsonl, tensorboard/, model/ (the pipeline after this stage), result.json
    model/                 the trained pipeline of ``--stage all`` (``VideoToAudioPipeline.from_pretrained``)

Data: ``--data`` (clip folders, decoded per step, feature cache for the diffusion stages) or ``--store`` (a
store made once by ``foleykit train prepare``: ``foleykit.training.store``).

Stages run in the order autoencoder, vocoder, predictor, prior, semantic, adapter (a recipe's own stage
names map to these families: ``denoiser`` -> prior, ``*_adapter`` -> adapter). Each stage starts from the
pipeline exported by the previous one (EMA weights), so later stages see what earlier ones trained.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from foleykit.errors import ConfigError
from foleykit.training.config import FAMILIES, LEVELS, dump_yaml, family_of, load_yaml, resolve_run_config

log = logging.getLogger(__name__)

#: Order in which families train (predictors first: their trained video encoder / onset head feed the
#: conditions and adapters of the diffusion stages).
TRAIN_ORDER = ("autoencoder", "vocoder", "predictor", "prior", "semantic", "adapter")
BASE_DENOISER = {"unet": ("unet",), "dit": ("transformer", "projection_model")}
#: Recipe stage keys that are descriptions or handled elsewhere (not trainer knobs).
_INFO_KEYS = {"trainable", "loss", "target", "data", "epochs", "steps", "objective", "family"}
#: Recipe key -> trainer key.
_RENAME = {
    "grad_accumulation": "grad_accum",
    "ema": "ema_decay",
    "label_smoothing_window": "label_window",
    "condition_dropout": "cond_dropout",
}
#: Recipe knobs that apply at every level (the rest describe the paper's full-size run).
_ALL_LEVEL_KEYS = {
    "optimizer",
    "betas",
    "weight_decay",
    "cond_dropout",
    "kl_weight",
    "label_window",
    "unfreeze_base",
    "conditions",
}


@dataclasses.dataclass
class RunResult:
    """What ``train_recipe`` produced.

    Attributes:
        output: The run folder.
        config: The resolved run config.
        stages: Per stage trained (or found complete) in this call: its ``TrainResult``.
        model_dir: The final pipeline folder (None if no stage finished).
    """

    output: Path
    config: dict[str, Any]
    stages: dict[str, Any]
    model_dir: Path | None


# --- stage plan ---------------------------------------------------------------------------------------------
def plan_stages(
    recipe: Mapping[str, Any], pipe: Any, *, loaded: Iterable[str] = ()
) -> dict[str, dict[str, Any]]:
    """The stages a recipe trains: ``{name: {"family": ..., "trainable": [...], **recipe knobs}}``, in order.

    The recipe's ``training.stages`` come first; families it does not declare get a default stage when
    the pipeline has their components: autoencoder (``vae``), vocoder (a HiFi-GAN), prior (the base denoiser
    + condition assembler + video condition), predictor (every timing predictor, + a trainable video
    encoder), adapter (every control adapter). ``loaded`` names components whose published weights were
    loaded (``--backbone``): a default autoencoder / vocoder / prior stage whose base they cover is skipped.
    """
    declared = dict((recipe.get("training") or {}).get("stages") or {})
    comps = pipe.components()
    tables: dict[str, dict[str, Any]] = {}
    for name, t in declared.items():
        t = dict(t or {})
        tables[name] = {**t, "family": family_of(name, t), "trainable": list(t.get("trainable") or [])}
    have = {t["family"] for t in tables.values()}
    trained = {c for t in tables.values() for c in t["trainable"]}
    defaults = default_stage_tables(pipe)
    for fam, table in defaults.items():
        if fam in have or (fam in ("predictor", "adapter") and set(table["trainable"]) <= trained):
            continue
        base = {
            "autoencoder": {"vae"},
            "vocoder": {"vocoder"},
            "prior": set(BASE_DENOISER[pipe.denoiser.kind]),
        }
        if fam in base and base[fam] <= set(loaded):
            continue
        if fam == "semantic":
            continue  # trained with the prior by default; run it explicitly with --stage semantic
        tables[fam] = table
    order = {f: i for i, f in enumerate(TRAIN_ORDER)}
    names = sorted(tables, key=lambda n: (order[tables[n]["family"]], list(tables).index(n)))
    for n in names:
        missing = [c for c in tables[n]["trainable"] if c not in comps]
        if missing:
            raise ConfigError(f"recipe {recipe.get('name')!r} stage {n!r}: unknown components {missing}")
    return {n: tables[n] for n in names}


def default_stage_tables(pipe: Any) -> dict[str, dict[str, Any]]:
    """Default stage per family (only families whose components the pipeline has)."""
    from foleykit.models.vocoder import GriffinLimVocoder

    comps = pipe.components()
    out: dict[str, dict[str, Any]] = {"autoencoder": {"family": "autoencoder", "trainable": ["vae"]}}
    voc = comps.get("vocoder")
    if voc is not None and not isinstance(voc, GriffinLimVocoder) and any(True for _ in voc.parameters()):
        out["vocoder"] = {"family": "vocoder", "trainable": ["vocoder"]}
    base = [c for c in BASE_DENOISER[pipe.denoiser.kind] if c in comps]
    prior = base + ["condition_assembler"] + (["video_condition"] if "video_condition" in comps else [])
    out["prior"] = {"family": "prior", "trainable": prior}
    sem = (["video_condition", "condition_assembler"] if "video_condition" in comps else []) + (
        ["predictor_events"] if "predictor_events" in comps else []
    )
    if sem:
        out["semantic"] = {"family": "semantic", "trainable": sem}
    preds = [c for c in comps if c.startswith("predictor_")]
    if preds:
        enc = pipe.video_encoder
        if enc is not None and not getattr(enc, "frozen", True) and any(True for _ in enc.parameters()):
            preds.append("video_encoder")
        out["predictor"] = {"family": "predictor", "trainable": preds}
    adapters = [c for n in pipe.adapters for c in (f"controlnet_{n}", f"control_encoder_{n}")]
    if adapters:
        out["adapter"] = {"family": "adapter", "trainable": adapters}
    return out


def recipe_layer(
    recipe: Mapping[str, Any], tables: Mapping[str, Mapping[str, Any]], level: str
) -> dict[str, Any]:
    """The recipe's training section as a config layer (key names mapped to the trainer's).

    At ``full`` every knob applies (the paper's setup); at ``debug`` / ``small`` only the knobs that do not
    set the run's size (optimizer, betas, weight decay, dropout, loss weights, unfreeze_base, conditions).
    Each stage table keeps ``family`` and ``trainable``; ``epochs`` / ``steps`` of full runs set max_steps
    (epochs are converted once the data size is known).
    """
    training = dict(recipe.get("training") or {})
    shared: dict[str, Any] = {}
    if "condition_dropout" in training:
        shared["cond_dropout"] = dict(training["condition_dropout"])
    stages: dict[str, dict[str, Any]] = {}
    for name, t in tables.items():
        out: dict[str, Any] = {"family": t["family"], "trainable": list(t["trainable"])}
        for k, v in t.items():
            k = _RENAME.get(k, k)
            if k in _INFO_KEYS:
                continue
            if level == "full" or k in _ALL_LEVEL_KEYS:
                out[k] = copy.deepcopy(v)
        if level == "full":
            if "steps" in t:
                out["max_steps"] = int(t["steps"])
            if "epochs" in t:
                out["epochs"] = int(t["epochs"])
        if t["family"] == "adapter" and t.get("data") == "audio_only":
            out["data_source"] = "audio_only"
        stages[name] = out
    return {"train": shared, "stages": stages}


def stage_class(family: str) -> type:
    """The Stage class of a family."""
    from foleykit.training.stages.adapter import AdapterStage
    from foleykit.training.stages.autoencoder import AutoencoderStage
    from foleykit.training.stages.predictor import PredictorStage
    from foleykit.training.stages.prior import PriorStage
    from foleykit.training.stages.semantic import SemanticStage
    from foleykit.training.stages.vocoder import VocoderStage

    return {
        "autoencoder": AutoencoderStage,
        "vocoder": VocoderStage,
        "prior": PriorStage,
        "semantic": SemanticStage,
        "predictor": PredictorStage,
        "adapter": AdapterStage,
    }[family]


# --- config ---------------------------------------------------------------------------------------------------
def default_output(recipe: str, level: str) -> Path:
    """``runs/<recipe>-<level>`` under the current working folder."""
    return Path.cwd() / "runs" / f"{Path(str(recipe)).stem}-{level}"


def _select(plan: Mapping[str, dict[str, Any]], stage: str, pipe: Any) -> dict[str, dict[str, Any]]:
    """The stages to run for ``--stage``: all, a stage name, or a family name."""
    if stage == "all":
        return dict(plan)
    if stage in plan:
        return {stage: plan[stage]}
    fam = [n for n, t in plan.items() if t["family"] == stage]
    if len(fam) == 1:
        return {fam[0]: plan[fam[0]]}
    if len(fam) > 1:
        raise ConfigError(f"several stages of family {stage!r}: {fam}; name one")
    defaults = default_stage_tables(pipe)
    if stage in defaults:
        return {stage: defaults[stage]}
    raise ConfigError(
        f"unknown stage {stage!r}; this recipe trains: {', '.join(plan)} (or a family: "
        f"{', '.join(f for f in FAMILIES if f in defaults)})"
    )


def _build(
    recipe: str, level: str, backbone: str | None = None, seed: int = 0, meta: bool = False
) -> tuple[dict[str, Any], Any]:
    """The recipe dict and its pipeline, initialised from ``seed`` (the global RNG is left untouched);
    ``meta=True`` allocates nothing and skips external encoders (enough to plan the stages)."""
    import torch

    from foleykit.recipes import build_pipeline, load_recipe

    if level not in LEVELS:
        raise ConfigError(f"unknown config level {level!r}; valid: {', '.join(LEVELS)}")
    size = "full" if level == "full" else "debug"
    rec = load_recipe(recipe, size=size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = build_pipeline(rec, backbone=None if meta else backbone, meta=meta)
    venc = rec.get("video_encoder") or {}
    if meta and venc.get("name"):  # weight-free encoders (motion, frame CNN) still say whether they train
        from foleykit import registry
        from foleykit.errors import FoleykitError

        try:
            import foleykit.encoders  # noqa: F401  (registers the encoders)

            pipe.video_encoder = registry.build("video_encoder", venc["name"], **venc.get("kwargs", {}))
        except (FoleykitError, OSError):
            pass
    return rec, pipe


def _seed_of(overrides: Iterable[str], saved: Path, resume: bool) -> int:
    """The run's seed before the config is resolved: a ``seed=`` override, the saved run's, or 0."""
    from foleykit.training.config import parse_overrides

    for key, value, _ in reversed(parse_overrides(overrides)):
        if key == "seed":
            return int(value)
    if resume and saved.is_file():
        return int(load_yaml(saved.read_text(encoding="utf-8")).get("seed", 0))
    return 0


def config_path(out: Path, stage: str, *, resume: bool = False) -> Path:
    """Where a run keeps its resolved config: ``config.yaml`` (``--stage all``) or ``<stage>.config.yaml``
    (one stage); resuming one stage of a run started with ``--stage all`` reads ``config.yaml``."""
    if stage == "all":
        return out / "config.yaml"
    own = out / f"{stage}.config.yaml"
    if resume and not own.is_file() and (out / "config.yaml").is_file():
        return out / "config.yaml"
    return own


def resolve_recipe_run(
    *,
    recipe: str,
    level: str = "small",
    stage: str = "all",
    output: str | os.PathLike | None = None,
    resume: bool = False,
    overrides: Iterable[str] = (),
    backbone: str | None = None,
    _built: tuple[dict[str, Any], Any] | None = None,
) -> dict[str, Any]:
    """The resolved run config of a ``foleykit train`` call (``--print-config`` shows it).

    With ``resume`` and an existing saved config (:func:`config_path`), that config is the base and
    ``overrides`` apply on top (e.g. more steps).
    """
    out = Path(output) if output is not None else default_output(recipe, level)
    saved = config_path(out, stage, resume=resume)
    rec, pipe = _built or _build(recipe, level, backbone, seed=_seed_of(overrides, saved, resume), meta=True)
    if resume and saved.is_file():
        base = load_yaml(saved.read_text(encoding="utf-8"))
        if base.get("recipe") != rec["name"] or base.get("config") != level:
            raise ConfigError(
                f"{out} holds a {base.get('recipe')}/{base.get('config')} run, not {rec['name']}/{level}"
            )
        return resolve_run_config(
            recipe=rec["name"],
            level=level,
            stages={n: t["family"] for n, t in base["stages"].items()},
            base=base,
            overrides=overrides,
        )
    loaded = (rec.get("backbone") or {}).get("components", []) if backbone else []
    plan = plan_stages(rec, pipe, loaded=loaded)
    tables = _select(plan, stage, pipe) if stage != "all" else plan
    if stage != "all":  # keep every planned stage in the config; the selected one may be a family default
        tables = {**{n: t for n, t in plan.items()}, **tables}
    layer = recipe_layer(rec, tables, level)
    return resolve_run_config(
        recipe=rec["name"],
        level=level,
        stages={n: t["family"] for n, t in tables.items()},
        recipe_train=layer,
        overrides=overrides,
    )


# --- the run --------------------------------------------------------------------------------------------------
def _stage_done(stage_dir: Path, max_steps: int) -> bool:
    import json

    res = stage_dir / "result.json"
    if not res.is_file() or not (stage_dir / "model" / "model_index.json").is_file():
        return False
    return int(json.loads(res.read_text(encoding="utf-8")).get("steps", -1)) >= max_steps


def train_recipe(
    *,
    recipe: str,
    level: str = "small",
    stage: str = "all",
    output: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
    init: str | os.PathLike | None = None,
    resume: bool = False,
    overrides: Iterable[str] = (),
    backbone: str | None = None,
    warm_start: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
    accelerator: Any = None,
    on_step: Callable[[str, int], None] | None = None,
) -> RunResult:
    """Train a recipe's stages (see the module docstring for the run folder).

    Args:
        recipe: Recipe name or YAML path.
        level: ``debug`` | ``small`` | ``full``.
        stage: ``all``, a stage name of the recipe, or a family name.
        output: Run folder (default ``runs/<recipe>-<level>`` in the working folder).
        data: Dataset folder; None makes synthetic data in ``<output>/data`` (unless ``store``).
        store: A prepared store (``foleykit train prepare``) to train on instead of ``data``.
        init: Model folder the first stage trained in this call starts from (default: the export of the
            run's previous stage, else the recipe's pipeline freshly initialised from the run's seed).
        resume: Continue from the run folder's checkpoints (finished stages are skipped).
        overrides: ``key=value`` overrides of the resolved config.
        backbone: Published backbone folder whose weights initialise the base (skips the base stages).
        warm_start: An earlier model folder: the fresh pipeline takes each of its weights that still fits
            (``foleykit.training.warm_start``); not with ``init`` or ``resume``.
        progress: Callback for one-line progress messages.
        accelerator: An ``accelerate.Accelerator`` to use (default: one per stage from its config).
        on_step: Called with (stage name, step) after every optimizer step (``Trainer(on_step=...)``).

    Returns:
        A :class:`RunResult`.

    Raises:
        ConfigError: a fresh run in a folder that already holds one (use ``resume``), bad config values.
    """
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.training.data import build_feature_cache, cache_tag, prepare_data
    from foleykit.training.stages.base import StageContext
    from foleykit.training.stages.components import quiet_libraries
    from foleykit.training.trainer import Trainer, process_state
    from foleykit.utils.io import atomic_write_text

    state = process_state()
    say = progress if (progress is not None and state.is_main_process) else (lambda line: None)
    out = Path(output) if output is not None else default_output(recipe, level)
    saved = config_path(out, stage, resume=resume)
    if data is not None and store is not None:
        raise ConfigError("give --data or --store, not both")
    if init is not None:
        from foleykit.recipes import load_recipe

        with quiet_libraries():
            pipe = VideoToAudioPipeline.from_pretrained(init)
        rec = load_recipe(recipe, size="full" if level == "full" else "debug")
    else:
        rec, pipe = _build(recipe, level, backbone, seed=_seed_of(overrides, saved, resume))
    if warm_start is not None:
        if init is not None or resume:
            raise ConfigError("--warm-start starts a fresh run: not with --init or --resume")
        from foleykit.training.warm_start import warm_start as _warm_start

        _warm_start(pipe, warm_start, say=say)
    if not resume and saved.is_file():
        raise ConfigError(
            f"{out} already holds a training run ({saved.name}); pass --resume to continue it or choose "
            "another --output"
        )
    cfg = resolve_recipe_run(
        recipe=recipe,
        level=level,
        stage=stage,
        output=out,
        resume=resume,
        overrides=overrides,
        backbone=backbone,
        _built=(rec, pipe),
    )
    if data is not None:
        cfg["data"]["path"] = str(Path(data).expanduser().resolve())
    if store is not None:
        cfg["data"]["store"] = str(Path(store).expanduser().resolve())
    store = cfg["data"].get("store")
    plan = cfg["stages"]
    selected = list(plan) if stage == "all" else list(_select(plan, stage, pipe))
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()
    if store:
        from foleykit.training.store import check_store, store_datasets

        check_store(store, pipe.seq)

        def data_of(table: Mapping[str, Any]) -> dict[str, Any]:
            return store_datasets(table["family"], store, table, train_encoder=_trains_encoder(table, pipe))

        for name in selected:
            plan[name]["max_steps"] = _resolve_steps(plan[name], data_of(plan[name]))
    else:
        size = getattr(pipe.video_encoder, "input_size", None)
        datasets = prepare_data(cfg, pipe.seq, out, data, video_size=size, say=say)
        for table in plan.values():
            table["max_steps"] = _resolve_steps(table, datasets)
    if state.is_main_process:
        atomic_write_text(saved, dump_yaml(cfg))

    results: dict[str, Any] = {}
    cached: tuple[str, dict[str, Any]] | None = None
    last_model: Path | None = None  # the export of the last completed stage: where the next one starts
    start = Path(init) if init is not None else None  # what the first stage trained here starts from
    for name, table in plan.items():
        sdir = out / name
        if name not in selected or (resume and _stage_done(sdir, int(table["max_steps"]))):
            if _stage_done(sdir, int(table["max_steps"])):
                last_model = sdir / "model"
                if name in selected:
                    say(f"[{name}] already complete ({sdir})")
            continue
        if start is None and last_model is not None:
            with quiet_libraries():
                pipe = VideoToAudioPipeline.from_pretrained(last_model)
        start = None
        diffusion = table["family"] not in ("autoencoder", "vocoder", "predictor")
        if store:
            if diffusion:
                from foleykit.training.store import ensure_arrays

                with state.main_process_first():
                    if state.is_main_process:
                        ensure_arrays(pipe, store, video=not _trains_encoder(table, pipe), say=say)
            stage_data = data_of(table)
        else:
            stage_data = datasets
            if table["family"] not in ("autoencoder", "vocoder") and cfg["data"].get("cache", True):
                video = (
                    "video_encoder" not in table["trainable"]
                )  # a trained encoder's features cannot be cached
                tag = cache_tag(pipe, video=video)
                if cached is None or cached[0] != tag:
                    cached = (tag, build_feature_cache(pipe, datasets, out, tag=tag, video=video, say=say))
                stage_data = cached[1]
            if table.get("data_source") == "audio_only":
                if "audio_only" in datasets:
                    stage_data = datasets["audio_only"]
                else:
                    say(
                        f"[{name}] no sound bank for audio-only event sequences (set data.bank): "
                        "using the clips' audio"
                    )
        ctx = StageContext(
            run_config=cfg,
            cfg=table,
            run_dir=out,
            stage_dir=sdir,
            data=stage_data,
            seq=pipe.seq,
            pipeline=pipe,
        )
        st = stage_class(table["family"])(ctx)
        say(f"[{name}] training {', '.join(table['trainable'])} for {table['max_steps']} steps")
        hook = None if on_step is None else functools.partial(on_step, name)
        trainer = Trainer(stage=st, accelerator=accelerator, progress=say, on_step=hook)
        results[name] = trainer.fit(resume=resume)
        last_model = sdir / "model"
    model_dir = None
    if stage != "all":
        done = [out / n / "model" for n in selected if (out / n / "model").is_dir()]
        model_dir = done[-1] if done else None
    elif last_model is not None and last_model.is_dir():
        model_dir = out / "model"
        if state.is_main_process:
            _publish(last_model, model_dir)
        state.wait_for_everyone()
    return RunResult(output=out, config=cfg, stages=results, model_dir=model_dir)


def _trains_encoder(table: Mapping[str, Any], pipe: Any) -> bool:
    """Whether a stage trains the video encoder (listed as trainable, and it has weights)."""
    enc = pipe.video_encoder
    return "video_encoder" in table["trainable"] and enc is not None and any(True for _ in enc.parameters())


def _resolve_steps(table: Mapping[str, Any], datasets: Mapping[str, Any]) -> int:
    """``max_steps``, or ``epochs`` x optimizer steps per epoch (over all processes) when the table gives
    epochs (full runs)."""
    epochs = table.get("epochs")
    if not epochs:
        return int(table["max_steps"])
    from foleykit.training.trainer import process_state

    train = datasets.get("train")
    n = len(train) if train is not None else 0
    per_epoch = max(
        1, n // (int(table["batch_size"]) * int(table["grad_accum"]) * process_state().num_processes)
    )
    return int(epochs) * per_epoch


def _publish(src: Path, dst: Path) -> None:
    """Copy the final pipeline folder to ``dst`` atomically."""
    from foleykit.utils.io import atomic_dir

    with atomic_dir(dst) as tmp:
        shutil.rmtree(tmp)
        shutil.copytree(src, tmp)
