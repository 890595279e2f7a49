"""Recipes: one YAML per seed method (+ the embedded demonstrator), each with a ``debug`` twin.

A recipe names the parts and their sizes; :func:`build_pipeline` is the only place where it becomes objects
(together with the registered builders). Sections (see docs/models.md for every key):

``sequence`` (SequenceConfig preset + overrides), ``codec`` (mel VAE + vocoder, or waveform VAE),
``denoiser`` (UNet or DiT), ``scheduler``, ``conditions`` (text / video / audio sources, nulls, FiLM),
``video_encoder``, ``predictors`` (timing predictors by control kind), ``adapters`` (control adapters),
``sampling`` (inference defaults), ``training`` (what the training stages read), ``debug`` (overrides that
make the debug twin: same architecture, tiny sizes, short clips).

Model specs (``vae``, ``unet``, ``transformer``...) are ``{preset: NAME}``, ``{published:
BACKBONE/COMPONENT}``
(the shipped published config, e.g. ``audioldm-m-full/unet``) or ``{config: {...}}``, plus key overrides.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch

from foleykit import registry
from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError
from foleykit.paths import RECIPES_DIR
from foleykit.utils.meta import empty_weights

RECIPES = ("foleykit_demo", "sta_v2a", "rewas", "vta_ldm", "stable_v2a", "rhythmic_foley")
SIZES = ("full", "debug")


# ==========================================================================================================
# Loading recipes
# ==========================================================================================================
def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` into ``base``: dicts recursively, lists of named dicts by ``name``, else replace.

    A dict override with ``_replace: true`` replaces the base value instead of merging into it.
    """
    if isinstance(override, dict) and override.get("_replace"):
        return {k: copy.deepcopy(v) for k, v in override.items() if k != "_replace"}
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = deep_merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if (
        isinstance(base, list)
        and isinstance(override, list)
        and base
        and override
        and all(isinstance(x, dict) and "name" in x for x in base + override)
    ):
        by_name = {x["name"]: x for x in base}
        unknown = [x["name"] for x in override if x["name"] not in by_name]
        if unknown:
            raise ConfigError(f"debug overrides name unknown entries {unknown}")
        return [deep_merge(x, next((o for o in override if o["name"] == x["name"]), {})) for x in base]
    return copy.deepcopy(override)


def recipe_names() -> list[str]:
    """Recipes shipped in ``configs/recipes``."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str | os.PathLike, size: str = "full") -> dict[str, Any]:
    """Read a recipe by name (``configs/recipes/<name>.yaml``) or path; ``size="debug"`` applies its twin.

    Returns:
        The recipe dict (``size`` recorded under ``"size"``; the ``debug`` section removed).
    """
    import yaml

    if size not in SIZES:
        raise ConfigError(f"recipe size must be one of {', '.join(SIZES)}, got {size!r}")
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown recipe {str(name_or_path)!r}; shipped recipes: {', '.join(recipe_names())}"
        )
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(recipe, dict) or "name" not in recipe:
        raise ConfigError(f"{path}: a recipe is a mapping with at least a 'name'")
    debug = recipe.pop("debug", None)
    if size == "debug":
        if debug is None:
            raise ConfigError(f"recipe {recipe['name']!r} has no debug twin")
        recipe = deep_merge(recipe, debug)
    recipe["size"] = size
    return recipe


# ==========================================================================================================
# Parts
# ==========================================================================================================
def build_sequence(spec: dict[str, Any]) -> SequenceConfig:
    """``{preset: default|audioldm|stable_audio_open, <SequenceConfig fields>...}`` -> SequenceConfig."""
    spec = dict(spec or {})
    preset = spec.pop("preset", "default")
    presets = {
        "default": SequenceConfig,
        "audioldm": SequenceConfig.audioldm,
        "stable_audio_open": SequenceConfig.stable_audio_open,
    }
    if preset not in presets:
        raise ConfigError(f"unknown sequence preset {preset!r}; valid: {', '.join(presets)}")
    return presets[preset]().replace(**spec) if spec else presets[preset]()


def model_config(spec: dict[str, Any], presets: dict[str, dict[str, Any]], what: str) -> dict[str, Any]:
    """Resolve a model spec (``preset`` / ``published`` / ``config`` + overrides) to constructor kwargs."""
    from foleykit.models import published_config

    spec = dict(spec or {})
    # a debug twin sets a preset over a published config: preset > config > published
    preset, inline, published = (
        spec.pop("preset", None),
        spec.pop("config", None),
        spec.pop("published", None),
    )
    if preset is not None:
        if preset not in presets:
            raise ConfigError(f"unknown {what} preset {preset!r}; valid: {', '.join(presets)}")
        cfg = dict(presets[preset])
    elif inline is not None:
        cfg = dict(inline)
    elif published is not None:
        backbone, _, component = published.partition("/")
        cfg = published_config(backbone, component)
    else:
        raise ConfigError(f"{what}: give a preset, a published config or an inline config")
    cfg.update(spec)
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def _presets() -> dict[str, dict[str, dict[str, Any]]]:
    from foleykit.models import autoencoder as ae
    from foleykit.models import dit, unet, vocoder

    return {
        "vae": {"demo": ae.DEMO_MEL_VAE, "debug": ae.DEBUG_MEL_VAE, "oobleck_debug": ae.DEBUG_OOBLECK},
        "vocoder": {"demo": vocoder.DEMO_HIFIGAN, "debug": vocoder.DEBUG_HIFIGAN},
        "istft": {"demo": vocoder.DEMO_ISTFT, "debug": vocoder.DEBUG_ISTFT},
        "unet": {
            "debug": unet.DEBUG_UNET,
            "debug_audioldm": unet.DEBUG_AUDIOLDM_UNET,
            "sd_8ch": unet.SD_UNET_8CH,
        },
        "transformer": {"demo": dit.DEMO_DIT, "debug": dit.DEBUG_DIT},
        "projection": {"demo": dit.DEMO_PROJECTION, "debug": dit.DEBUG_PROJECTION},
    }


def build_codec(
    spec: dict[str, Any], seq: SequenceConfig, *, meta: bool = False, vae: Any = None, vocoder: Any = None
):
    """The latent codec of a recipe (mel VAE + vocoder, or waveform VAE); ``vae`` / ``vocoder``: loaded
    modules (a published backbone's) used instead of building the recipe's."""
    from foleykit.models.autoencoder import (
        MelLatentCodec,
        WaveformLatentCodec,
        build_mel_vae,
        build_waveform_vae,
    )
    from foleykit.models.vocoder import GriffinLimVocoder, IstftVocoder, build_hifigan

    p = _presets()
    kind = spec.get("type", "mel")
    if kind == "waveform":
        if vae is None:
            vae = build_waveform_vae(model_config(spec["vae"], p["vae"], "vae"), meta=meta)
        return WaveformLatentCodec(vae=vae, seq=seq)
    if kind != "mel":
        raise ConfigError(f"codec type must be mel or waveform, got {kind!r}")
    from foleykit.audio import MelSpectrogram

    if vae is None:
        vae = build_mel_vae(model_config(spec["vae"], p["vae"], "vae"), meta=meta)
    vspec = dict(spec.get("vocoder", {"type": "griffin_lim"}))
    vtype = vspec.pop("type", "hifigan")
    if vocoder is not None:
        voc = vocoder
    elif vtype == "griffin_lim":
        voc = GriffinLimVocoder(seq=seq, **vspec)
    elif vtype == "hifigan":
        voc = build_hifigan(model_config(vspec, p["vocoder"], "vocoder"), meta=meta)
    elif vtype == "istft":
        voc = IstftVocoder(**model_config(vspec, p["istft"], "vocoder"))
    else:
        raise ConfigError(f"vocoder type must be hifigan, istft or griffin_lim, got {vtype!r}")
    return MelLatentCodec(vae=vae, vocoder=voc, mel=MelSpectrogram.from_sequence(seq), seq=seq)


def build_denoiser(spec: dict[str, Any], *, meta: bool = False, loaded: dict[str, Any] | None = None):
    """``UNetDenoiser`` or ``DiTDenoiser`` of a recipe; ``loaded``: modules by backbone component name
    (``unet``, ``transformer``, ``projection_model``) used instead of building the recipe's."""
    from foleykit.models.dit import DiTDenoiser, build_dit, build_projection
    from foleykit.models.unet import UNetDenoiser, build_unet

    p = _presets()
    loaded = loaded or {}
    kind = spec.get("type")
    if kind == "unet":
        unet = loaded.get("unet") or build_unet(model_config(spec["unet"], p["unet"], "unet"), meta=meta)
        return UNetDenoiser(unet=unet, conditioning=spec.get("conditioning", "cross_attention"))
    if kind == "dit":
        tr = loaded.get("transformer") or build_dit(
            model_config(spec["transformer"], p["transformer"], "transformer"), meta=meta
        )
        pr = loaded.get("projection_model") or build_projection(
            model_config(spec["projection"], p["projection"], "projection"), meta=meta
        )
        return DiTDenoiser(
            transformer=tr, projection=pr, timestep_scale=float(spec.get("timestep_scale", 1.0))
        )
    raise ConfigError(f"denoiser type must be unet or dit, got {kind!r}")


def build_scheduler_from(spec: dict[str, Any]):
    """Scheduler of a recipe: ``{name, published?, config?}``."""
    from foleykit.models import published_config
    from foleykit.pipelines.sampling import build_scheduler

    cfg: dict[str, Any] = {}
    if "published" in spec:
        backbone, _, comp = spec["published"].partition("/")
        cfg.update(published_config(backbone, comp))
    cfg.update(spec.get("config", {}))
    return build_scheduler(spec.get("name", cfg.get("_class_name", "ddim")), cfg)


def _load_backbone(recipe: dict[str, Any], backbone: str | os.PathLike, seq: SequenceConfig):
    """The published parts a recipe takes from ``backbone`` (``recipe["backbone"]["components"]``; with the
    denoiser, the backbone's own sampler too), loaded — never built first — with the folder's geometry."""
    from foleykit.pipelines.published import DENOISER_PARTS, load_backbone

    bb = recipe.get("backbone") or {}
    if not bb.get("components"):
        raise ConfigError(
            f"recipe {recipe.get('name')!r} takes nothing from a published backbone (no backbone.components); "
            "train it without --backbone"
        )
    components = list(bb["components"])
    family = bb.get("family")
    if family in DENOISER_PARTS and set(DENOISER_PARTS[family]) <= set(components):
        components += [] if "scheduler" in components else ["scheduler"]
    return load_backbone(backbone, components, seq, family=family)


# ==========================================================================================================
# Pipeline
# ==========================================================================================================
def build_pipeline(
    recipe: dict[str, Any] | str,
    *,
    size: str = "full",
    backbone: str | os.PathLike | None = None,
    meta: bool = False,
    encoders: bool = True,
):
    """Build a ``VideoToAudioPipeline`` from a recipe.

    Args:
        recipe: A recipe dict (:func:`load_recipe`) or a recipe name / path (then ``size`` applies).
        backbone: A local folder (or cached hub id) of the published backbone (AudioLDM-M, Stable Audio Open,
            diffusers layout): the recipe's ``backbone.components`` (and, with the denoiser, its sampler) are
            loaded from it instead of built, before the adapters are copied from them; ``text_encoder`` takes
            the folder's own text encoder; the sequence follows the folder's audio geometry. The pipeline's
            recipe records it under ``backbone.loaded`` (path, fingerprint, what was used).
        meta: Build on the meta device (nothing allocated: parameter counts of full-size recipes). External
            encoders are skipped (their sizes come from the recipe's ``dim``).
        encoders: Build the text / audio / video encoders (False: skip them, e.g. to count parameters).
    """
    from foleykit.pipelines import trust

    if backbone is not None and not trust.loading_active():  # the folder's trust rules cover its encoders
        with trust.loading_model():
            return build_pipeline(recipe, size=size, backbone=backbone, meta=meta, encoders=encoders)
    from foleykit.pipelines.guidance import ConditionAssembler
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    if not isinstance(recipe, dict):
        recipe = load_recipe(recipe, size=size)
    seq = build_sequence(recipe.get("sequence", {}))
    loaded = None
    if backbone is not None:
        loaded = _load_backbone(recipe, backbone, seq)
        seq = loaded.seq
        recipe = copy.deepcopy(recipe)
        recipe["backbone"]["loaded"] = loaded.record()
    parts = loaded.parts if loaded is not None else {}

    with empty_weights(meta):
        codec = build_codec(
            recipe["codec"], seq, meta=meta, vae=parts.get("vae"), vocoder=parts.get("vocoder")
        )
        den = build_denoiser(recipe["denoiser"], meta=meta, loaded=parts)
    if parts.get("scheduler") is not None and den.kind == "dit":
        from foleykit.pipelines.sampling import is_continuous

        if is_continuous(parts["scheduler"]):  # the published DiT sees the sampler's continuous timestep
            den.timestep_scale = 1.0
    specs: dict[str, dict[str, Any]] = {}
    text_spec = loaded.text_encoder if loaded is not None else None
    built = {} if meta or not encoders else _build_encoders(recipe, specs, text=text_spec)
    with empty_weights(meta):
        conds = dict(recipe.get("conditions", {}))
        global_from, global_dim = conds.pop("global_from", None), conds.pop("global_dim", None)
        if global_from is not None and den.global_dim is not None:
            global_dim = den.global_dim  # the FiLM input size is the UNet's (a backbone's may differ)
        cross_dim = den.cross_attention_dim
        video_dim = _dim(recipe.get("video_encoder"), built.get("video_encoder"), "video_encoder")
        sources, video_condition = {}, None
        empty: dict[str, torch.Tensor] = {}
        for name, c in conds.items():
            c = dict(c)
            if name == "video":
                video_condition, vspec = _video_condition(c, video_dim, cross_dim)
                specs["video_condition"] = vspec
                sources["video"] = {"dim": cross_dim, "null": c.get("null", "learned"), "project": False}
            else:
                enc = built.get(f"{name}_encoder")
                dim = _dim(c, enc, f"conditions.{name}")
                sources[name] = {
                    "dim": dim,
                    "null": c.get("null", "learned"),
                    "tokens": c.get("tokens", True),
                }
                if sources[name]["null"] == "empty_prompt":
                    if enc is not None:  # AudioLDM: the null is the encoder's embedding of ""
                        empty[name] = enc.encode_tokens([""])[0]
                    sources[name]["null_length"] = int(empty[name].shape[0]) if name in empty else 1
        assembler = ConditionAssembler(
            cross_dim=cross_dim,
            sources=sources,
            global_from=global_from,
            global_dim=global_dim,
            num_null_tokens=int(recipe.get("num_null_tokens", 1)),
        )
        for name, tokens in empty.items():
            assembler.set_prompt_null(name, tokens)
        predictors = {}
        for kind, pspec in (recipe.get("predictors") or {}).items():
            import foleykit.models.predictors  # noqa: F401  (registers the timing predictors)

            kwargs = {"size": pspec.get("size", "full"), "in_dim": video_dim, **pspec.get("kwargs", {})}
            if pspec.get("input_groups") is not None:
                kwargs["ignore_channels"] = _ignored_channels(
                    pspec["input_groups"], built.get("video_encoder"), recipe, f"predictors.{kind}"
                )
            predictors[kind] = registry.build("timing_predictor", kind, **kwargs)
            specs[f"predictor_{kind}"] = {"registry": ["timing_predictor", kind], "kwargs": kwargs}
        adapters = [_build_adapter(a, den, codec, seq) for a in recipe.get("adapters") or []]
        sampling = dict(recipe.get("sampling", {}))
        defaults = {
            "num_inference_steps": sampling.get("steps", 25),
            "guidance_scale": sampling.get("guidance_scale", 3.0),
            "guidance_form": sampling.get("guidance_form", "standard"),
            "guide_on": list(sampling.get("guide_on", ["text", "video", "audio"])),
            "eta": sampling.get("eta", 0.0),
        }
        try:
            scheduler = parts.get("scheduler") or build_scheduler_from(recipe.get("scheduler", {}))
        except ConfigError:
            if not meta:
                raise
            scheduler = None  # counting parameters does not need the sampler (e.g. torchsde missing)
        pipe = VideoToAudioPipeline(
            seq=seq,
            codec=codec,
            denoiser=den,
            scheduler=scheduler,
            assembler=assembler,
            text_encoder=built.get("text_encoder"),
            audio_encoder=built.get("audio_encoder"),
            video_encoder=built.get("video_encoder"),
            video_condition=video_condition,
            predictors=predictors,
            adapters=adapters,
            defaults=defaults,
            recipe=recipe,
            specs=specs,
        )
    return pipe


def _dim(spec: dict[str, Any] | None, module: Any, what: str) -> int | None:
    if module is not None:
        given = (spec or {}).get("dim")
        if given is not None and int(given) != int(module.dim) and what == "video_encoder":
            raise ConfigError(
                f"{what}: the encoder gives {int(module.dim)}-d features but the recipe says dim {given} "
                "(the sizes of the video condition and the timing predictors follow the recipe); use an "
                "encoder of that size or change the recipe's dim"
            )
        return int(module.dim)
    if spec is None:
        return None
    if "dim" not in spec:
        raise ConfigError(f"{what}: give 'dim' (needed when the encoder is not built)")
    return int(spec["dim"])


def _build_encoders(
    recipe: dict[str, Any],
    specs: dict[str, dict[str, Any]],
    *,
    text: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the recipe's condition encoders; ``text``: (registry name, kwargs) replacing the text encoder
    (a published backbone's own)."""
    import foleykit.encoders  # noqa: F401  (declares the encoder providers)

    out = {}
    plan = [
        (f"{n}_encoder", c)
        for n, c in (recipe.get("conditions") or {}).items()
        if n in ("text", "audio") and isinstance(c, dict) and c.get("encoder")
    ]
    if text is not None and "text" in (recipe.get("conditions") or {}):
        plan = [(k, c) for k, c in plan if k != "text_encoder"]
        plan.insert(0, ("text_encoder", {"encoder": text[0], "kwargs": dict(text[1])}))
    if recipe.get("video_encoder"):
        plan.append(
            ("video_encoder", {"encoder": recipe["video_encoder"]["name"], **recipe["video_encoder"]})
        )
    for comp, c in plan:
        kwargs = dict(c.get("kwargs", {}))
        module = registry.build(comp, c["encoder"], **kwargs)
        frozen = bool(getattr(module, "frozen", True))
        specs[comp] = {"registry": [comp, c["encoder"]], "kwargs": kwargs, "weights": not frozen}
        out[comp] = module
    return out


def _ignored_channels(wanted: Any, encoder: Any, recipe: dict[str, Any], where: str) -> list[list[int]]:
    """``[start, stop]`` ranges of the video encoder's channel groups NOT named in ``wanted`` (a predictor's
    ``input_groups``); the groups come from the built encoder, or (meta builds) from the registered builder's
    ``channel_groups()``."""
    groups = getattr(encoder, "groups", None)
    name = (recipe.get("video_encoder") or {}).get("name")
    if groups is None and name:
        layout = getattr(registry.get("video_encoder", name), "channel_groups", None)
        groups = layout() if layout is not None else None
    if not groups:
        raise ConfigError(f"{where}.input_groups: the video encoder has no channel groups")
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = [g for g in names if g not in groups]
    if unknown or not names:
        raise ConfigError(
            f"{where}.input_groups: unknown group(s) {unknown or names}; the video encoder has {', '.join(groups)}"
        )
    return [[groups[g].start, groups[g].stop] for g in groups if g not in names]


def _video_condition(c: dict[str, Any], video_dim: int | None, cross_dim: int | None):
    from foleykit.models.pooling import AttentivePooling, FrameProjector

    if video_dim is None or cross_dim is None:
        raise ConfigError("a video condition needs a video encoder and a cross-attention denoiser")
    if "pooling" in c:
        kwargs = {
            "in_dim": video_dim,
            "out_dim": cross_dim,
            "num_tokens": int(c.get("num_tokens", 4)),
            **c.get("kwargs", {}),
        }
        return AttentivePooling(**kwargs), {
            "class": "foleykit.models.pooling.AttentivePooling",
            "kwargs": kwargs,
        }
    kwargs = {"in_dim": video_dim, "out_dim": cross_dim, **(c.get("projector") or {})}
    return FrameProjector(**kwargs), {"class": "foleykit.models.pooling.FrameProjector", "kwargs": kwargs}


def _build_adapter(a: dict[str, Any], den, codec, seq: SequenceConfig):
    """One control adapter: encoder on the latent grid + ControlNet copied from the base denoiser."""
    from foleykit.models.control_adapter import (
        ControlAdapter,
        DiTControlNetModel,
        LocalFeatureControlEncoder,
        SeriesControlEncoder,
        UNetControlNetModel,
        VAEControlEncoder,
    )

    a = dict(a)
    enc = dict(a.get("encoder", {}))
    etype = enc.pop("type", "series")
    layout = "tokens" if den.kind == "dit" else "image"
    grid = a.get("grid", "control")
    if etype == "series":
        k = enc.pop("frames_per_latent", max(1, round(seq.grid(grid)[0] / seq.latent_rate)))
        encoder = SeriesControlEncoder(
            frames_per_latent=k,
            layout=layout,
            freq_bins=seq.latent_freq_bins if layout == "image" else 1,
            **enc,
        )
    elif etype == "local":
        encoder = LocalFeatureControlEncoder(
            layout=layout, freq_bins=seq.latent_freq_bins if layout == "image" else 1, **enc
        )
    elif etype == "vae":
        mode = enc.pop("mode", "tile_mel" if seq.latent_space == "mel" else "waveform")
        encoder = VAEControlEncoder(mode=mode, latent_channels=codec.latent_channels, **enc)
    else:
        raise ConfigError(
            f"adapter {a.get('name')!r}: encoder type must be series, local or vae, got {etype!r}"
        )
    out_ch = encoder.config.out_channels
    if den.kind == "unet":
        net = UNetControlNetModel.from_unet(
            den.unet,
            conditioning_channels=out_ch,
            conditioning_embedding_channels=tuple(a.get("conditioning_embedding_channels", (32,))),
        )
    else:
        net = DiTControlNetModel.from_transformer(
            den.transformer, depth_factor=float(a.get("depth_factor", 0.2)), control_dim=out_ch
        )
    return ControlAdapter(
        name=a["name"],
        encoder=encoder,
        net=net,
        control_kind=a["control_kind"],
        grid=grid,
        weight=float(a.get("weight", 1.0)),
        start=float(a.get("start", 0.0)),
        end=float(a.get("end", 1.0)),
        features=a.get("features"),
    )


# ==========================================================================================================
# Registry
# ==========================================================================================================
def _recipe_builder(name: str):
    def build(*, size: str = "full", **kwargs: Any):
        return build_pipeline(load_recipe(name, size=size), **kwargs)

    build.__doc__ = f"Build the {name} pipeline (size full/debug)."
    return build


for _name in RECIPES:
    registry.register("recipe", _name)(_recipe_builder(_name))


def _part_builder(kind: str, spec: dict[str, Any]):
    def build(*, meta: bool = False, **overrides: Any):
        from foleykit.models.autoencoder import build_mel_vae, build_waveform_vae
        from foleykit.models.dit import build_dit, build_projection
        from foleykit.models.unet import build_unet
        from foleykit.models.vocoder import build_hifigan

        given = {**spec, **overrides}
        if kind == "vocoder" and given.pop("type", "hifigan") == "istft":
            from foleykit.models.vocoder import IstftVocoder
            from foleykit.utils.meta import empty_weights

            with empty_weights(meta):
                return IstftVocoder(**model_config(given, _presets()["istft"], kind))
        cfg = model_config(given, _presets()[kind], kind)
        if kind == "vae":
            return (build_waveform_vae if "downsampling_ratios" in cfg else build_mel_vae)(cfg, meta=meta)
        fn = {
            "vocoder": build_hifigan,
            "unet": build_unet,
            "transformer": build_dit,
            "projection": build_projection,
        }
        return fn[kind](cfg, meta=meta)

    build.__doc__ = (
        f"Build the {kind} {spec} (meta=True allocates nothing; keyword overrides change the config)."
    )
    return build


#: Model parts by name (kind -> name -> spec): the presets and the published backbone configs.
PARTS: dict[str, dict[str, dict[str, Any]]] = {
    "vae": {
        "demo": {"preset": "demo"},
        "debug": {"preset": "debug"},
        "oobleck_debug": {"preset": "oobleck_debug"},
        "audioldm-m": {"published": "audioldm-m-full/vae"},
        "oobleck": {"published": "stable-audio-open-1.0/vae"},
    },
    "vocoder": {
        "demo": {"preset": "demo"},
        "debug": {"preset": "debug"},
        "audioldm-m": {"published": "audioldm-m-full/vocoder"},
        "istft-demo": {"type": "istft", "preset": "demo"},
        "istft-debug": {"type": "istft", "preset": "debug"},
    },
    "unet": {
        "debug": {"preset": "debug"},
        "debug_audioldm": {"preset": "debug_audioldm"},
        "sd_8ch": {"preset": "sd_8ch"},
        "audioldm-m": {"published": "audioldm-m-full/unet"},
    },
    "transformer": {
        "demo": {"preset": "demo"},
        "debug": {"preset": "debug"},
        "stable-audio-open": {"published": "stable-audio-open-1.0/transformer"},
    },
    "projection": {
        "demo": {"preset": "demo"},
        "debug": {"preset": "debug"},
        "stable-audio-open": {"published": "stable-audio-open-1.0/projection_model"},
    },
}
for _kind, _names in PARTS.items():
    for _pname, _spec in _names.items():
        registry.register(_kind, _pname)(_part_builder(_kind, _spec))
