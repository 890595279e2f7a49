"""Published diffusers pipeline folders (AudioLDM / AudioLDM-M, Stable Audio Open) as foleykit backbones.

A folder written by diffusers' ``AudioLDMPipeline.save_pretrained`` (``cvssp/audioldm-m-full`` and its
siblings) or ``StableAudioPipeline.save_pretrained`` (``stabilityai/stable-audio-open-1.0``) is recognised by
the ``_class_name`` of its ``model_index.json`` (:data:`FAMILIES`). Its components load through explicit,
known classes only — every ``[library, class]`` entry of the index must be one of those listed for the family;
nothing named in a config is imported.

- :func:`load_backbone` loads the parts a recipe takes from the folder (``backbone.components``:
  the denoiser, VAE, vocoder, the backbone's own text encoder, its sampler) and adapts the recipe's
  ``SequenceConfig`` to the folder (sample rate, hop, mel bins, latent hop); ``foleykit.recipes.build_pipeline``
  builds the rest of the recipe around them (``--backbone`` in training).
- :func:`load_published` makes a runnable ``VideoToAudioPipeline`` from the folder alone (``foleykit generate
  --model FOLDER``): the recipe's parts that the folder cannot hold (control adapters, timing predictors, the
  video / reference-sound conditions) are untrained, so they are left out and one note line says so; the text
  condition is the backbone's own encoder with the backbone's own null (AudioLDM: the embedding of ``""``;
  Stable Audio Open: zeros). ``pipe.model_info`` records the backbone, the recipe and what was used.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from foleykit.errors import ConfigError, ModelError, WeightsNotFoundError
from foleykit.pipelines import trust

INDEX_FILE = "model_index.json"
#: Samplers a published folder may name (diffusers classes; loaded from ``scheduler/scheduler_config.json``).
SCHEDULERS = trust.SCHEDULERS
TOKENIZERS = (
    "RobertaTokenizer",
    "RobertaTokenizerFast",
    "T5Tokenizer",
    "T5TokenizerFast",
    "PreTrainedTokenizerFast",
    "TokenizersBackend",  # transformers 5's name for a tokenizers-backed tokenizer
)
D, T = ("diffusers",), ("transformers",)


@dataclass(frozen=True)
class BackboneFamily:
    """What foleykit knows about one published pipeline layout.

    Attributes:
        name: ``audioldm`` | ``stable_audio_open`` (a recipe's ``backbone.family``).
        title: Human name.
        pipeline: The diffusers pipeline class named in ``model_index.json``.
        classes: Component -> (allowed libraries, allowed class names) of its ``model_index.json`` entry.
        text_encoder: (text-encoder registry name, keyword arguments) of the folder's own text encoder.
        text_null: Null of the text condition as the backbone samples it (``empty_prompt`` | ``zero``).
        default_recipe: Recipe picked when none is given.
        hub_id: The published repository.
    """

    name: str
    title: str
    pipeline: str
    classes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    text_encoder: tuple[str, dict[str, Any]]
    text_null: str
    default_recipe: str
    hub_id: str


FAMILIES: dict[str, BackboneFamily] = {
    "audioldm": BackboneFamily(
        name="audioldm",
        title="AudioLDM",
        pipeline="AudioLDMPipeline",
        classes={
            "unet": (D, ("UNet2DConditionModel",)),
            "vae": (D, ("AutoencoderKL",)),
            "vocoder": (T, ("SpeechT5HifiGan",)),
            "text_encoder": (T, ("ClapTextModelWithProjection",)),
            "tokenizer": (T, TOKENIZERS),
            "scheduler": (D, SCHEDULERS),
        },
        # diffusers' AudioLDMPipeline._encode_prompt: pad to the tokenizer's model_max_length, text_embeds,
        # L2-normalised
        text_encoder=("clap", {"output": "pooled", "padding": "max_length", "max_length": None}),
        text_null="empty_prompt",
        default_recipe="rewas",
        hub_id="cvssp/audioldm-m-full",
    ),
    "stable_audio_open": BackboneFamily(
        name="stable_audio_open",
        title="Stable Audio Open",
        pipeline="StableAudioPipeline",
        classes={
            "transformer": (D, ("StableAudioDiTModel",)),
            # diffusers writes the pipeline module's name for this class: ["stable_audio", ...]
            "projection_model": (("stable_audio", "diffusers"), ("StableAudioProjectionModel",)),
            "vae": (D, ("AutoencoderOobleck",)),
            "text_encoder": (T, ("T5EncoderModel",)),
            "tokenizer": (T, TOKENIZERS),
            "scheduler": (D, SCHEDULERS),
        },
        # StableAudioPipeline.encode_prompt: pad to model_max_length, padded positions zeroed and attended
        text_encoder=("t5", {"padding": "max_length", "max_length": None, "keep_padding": True}),
        text_null="zero",
        default_recipe="stable_v2a",
        hub_id="stabilityai/stable-audio-open-1.0",
    ),
}
#: Where each backbone component goes in a foleykit pipeline.
DENOISER_PARTS = {"audioldm": ("unet",), "stable_audio_open": ("transformer", "projection_model")}


# ==========================================================================================================
# Recognising a folder
# ==========================================================================================================
def read_index(folder: Path) -> dict[str, Any]:
    """The parsed ``model_index.json`` of a folder (ModelError when it is unreadable)."""
    try:
        return json.loads((Path(folder) / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read {Path(folder) / INDEX_FILE}: {err}") from err


def family_of(folder: str | os.PathLike) -> BackboneFamily | None:
    """The :class:`BackboneFamily` of a published pipeline folder, or None (a foleykit model, or unknown)."""
    path = Path(folder) / INDEX_FILE
    if not path.is_file():
        return None
    index = read_index(Path(folder))
    if "_foleykit" in index:
        return None
    return next((f for f in FAMILIES.values() if f.pipeline == index.get("_class_name")), None)


def not_foleykit_message(folder: Path, index: dict[str, Any]) -> str:
    """What to do with a diffusers pipeline folder given where a foleykit model folder is expected."""
    fam = next((f for f in FAMILIES.values() if f.pipeline == index.get("_class_name")), None)
    what = index.get("_class_name", "diffusers")
    if fam is None:
        known = ", ".join(f"{f.pipeline} ({f.title})" for f in FAMILIES.values())
        return (
            f"{folder} is a {what} folder, neither a foleykit model nor a backbone foleykit knows ({known})"
        )
    return (
        f"{folder} is a {fam.title} folder ({what}), not a foleykit model folder: run it with `foleykit generate "
        f"VIDEO --model {folder}` (recipe {fam.default_recipe}; --recipe to choose another) or load it with "
        f"foleykit.pipelines.published.load_published('{folder}')"
    )


def recipes_for(family: BackboneFamily, *, runnable: bool = True) -> list[str]:
    """Shipped recipes whose ``backbone.family`` is ``family`` (``runnable``: the folder holds their
    denoiser, so they generate from the folder alone)."""
    from foleykit.recipes import load_recipe, recipe_names

    out = []
    for name in recipe_names():
        bb = load_recipe(name).get("backbone") or {}
        if bb.get("family") != family.name:
            continue
        if runnable and not set(DENOISER_PARTS[family.name]) <= set(bb.get("components", [])):
            continue
        out.append(name)
    return out


# ==========================================================================================================
# Loading components
# ==========================================================================================================
def _check_entry(folder: Path, index: dict[str, Any], family: BackboneFamily, name: str) -> str:
    """The class name of component ``name``: the index's entry, checked against the family's classes."""
    libs, allowed = family.classes[name]
    entry = index.get(name)
    if entry is None:
        return allowed[0]
    if not (
        isinstance(entry, (list, tuple)) and len(entry) == 2 and entry[0] in libs and entry[1] in allowed
    ):
        raise ModelError(
            f"{folder / INDEX_FILE}: component {name!r} is {entry}, but a {family.pipeline} folder holds "
            f"{libs[0]} {' / '.join(allowed)} there"
        )
    trust.check_library_class(entry[0], entry[1], where=f"{folder.name}/{INDEX_FILE} ({name})")
    return str(entry[1])


def _require(folder: Path, name: str, files: tuple[str, ...], root: Path) -> None:
    if not (folder / "config.json").is_file() and "scheduler_config.json" not in files:
        raise WeightsNotFoundError(
            f"backbone {root}: component {name!r} is missing (expected {folder}/config.json and the weights, "
            f"{' or '.join(files)}); copy the complete folder (model_index.json and every sub-folder)"
        )
    if not any((folder / f).is_file() for f in files):
        raise WeightsNotFoundError(
            f"backbone {root}: component {name!r} has no weights; expected {folder}/{' or '.join(files)}"
        )


def load_part(folder: Path, family: BackboneFamily, name: str, *, dtype: torch.dtype = torch.float32) -> Any:
    """Load one component (``unet``, ``vae``, ``vocoder``, ``transformer``, ``projection_model``) of a
    published folder with its known class.

    Raises:
        WeightsNotFoundError: the sub-folder or its weights are missing (the message names the files).
        ModelError: the index names another class than the family's.
    """
    if name not in family.classes or name in ("text_encoder", "tokenizer", "scheduler"):
        raise ConfigError(
            f"{family.title} backbones have no loadable component {name!r}; "
            f"components: {', '.join(c for c in family.classes if c != 'tokenizer')}"
        )
    index = read_index(folder)
    lib = "transformers" if family.classes[name][0] == T else "diffusers"
    # the same allowlist as foleykit model folders (foleykit.pipelines.trust): checked, then imported
    cls = trust.library_class(lib, _check_entry(folder, index, family, name), where=f"{folder.name}/{name}")
    files = (
        ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
        if lib == "diffusers"
        else ("model.safetensors", "pytorch_model.bin")
    )
    if not trust.weights_file(folder / name, files[:1], files[1:], where=f"{folder.name}/{name}"):
        _require(folder / name, name, files, folder)
    kwargs = {"torch_dtype": dtype} if lib == "diffusers" else {"dtype": dtype}
    kwargs["use_safetensors"] = trust.use_safetensors()
    try:
        with _quiet():
            return cls.from_pretrained(str(folder / name), local_files_only=True, **kwargs).eval()
    except (OSError, ValueError, RuntimeError) as err:
        raise ModelError(f"backbone {folder}: could not load {name}/ as {cls.__name__}: {err}") from err


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No per-file progress bars or notices from the libraries while a component loads."""
    import transformers

    tlog = transformers.utils.logging
    verbosity, bars = tlog.get_verbosity(), tlog.is_progress_bar_enabled()
    dlog = logging.getLogger("diffusers")
    level = dlog.level
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    dlog.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # e.g. torch's weight_norm deprecation inside AutoencoderOobleck
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        tlog.set_verbosity(verbosity)
        if bars:
            tlog.enable_progress_bar()
        dlog.setLevel(level)


def load_scheduler(folder: Path, family: BackboneFamily) -> tuple[Any, str | None]:
    """The folder's sampler and a note when it had to be replaced.

    Stable Audio Open's ``CosineDPMSolverMultistepScheduler`` needs ``torchsde``; without it the same
    sigmas and timestep conditioning are sampled by :class:`CosineDPMSolverODEScheduler`.
    """
    import diffusers

    from foleykit.pipelines.schedulers import CosineDPMSolverODEScheduler

    index = read_index(folder)
    cls_name = _check_entry(folder, index, family, "scheduler")
    path = folder / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        raise WeightsNotFoundError(f"backbone {folder}: expected the sampler's config at {path}")
    config = json.loads(path.read_text(encoding="utf-8"))
    cls_name = str(config.get("_class_name") or cls_name)
    if cls_name not in SCHEDULERS:
        raise ModelError(f"{path}: unknown sampler {cls_name!r}; known: {', '.join(SCHEDULERS)}")
    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    if cls_name == "CosineDPMSolverMultistepScheduler":
        try:
            import torchsde  # noqa: F401
        except ImportError:
            import inspect

            keep = set(inspect.signature(diffusers.EDMDPMSolverMultistepScheduler.__init__).parameters)
            ode = CosineDPMSolverODEScheduler.from_config(
                {k: v for k, v in cfg.items() if k in keep} | {"algorithm_type": "dpmsolver++"}
            )
            return ode, "torchsde is not installed: the cosine SDE sampler runs as its ODE twin (same sigmas)"
    return trust.library_class("diffusers", cls_name, where=str(path.name)).from_config(cfg), None


def text_encoder_spec(folder: Path, family: BackboneFamily) -> tuple[str, dict[str, Any]]:
    """(registry name, kwargs) of the folder's own text encoder (checked against the index first)."""
    index = read_index(folder)
    _check_entry(folder, index, family, "text_encoder")
    _check_entry(folder, index, family, "tokenizer")
    name, kwargs = family.text_encoder
    return name, {"path": str(folder), **kwargs}


def sequence_for(seq: Any, family: BackboneFamily, parts: dict[str, Any]) -> Any:
    """The recipe's ``SequenceConfig`` with the folder's own audio geometry (sample rate, mel bins, hops)."""
    vae = parts.get("vae")
    changes: dict[str, Any] = {}
    if family.name == "audioldm":
        voc = parts.get("vocoder")
        if voc is not None:
            sr, hop = int(voc.config.sampling_rate), int(math.prod(voc.config.upsample_rates))
            changes.update(sample_rate=sr, hop_length=hop, n_mels=int(voc.config.model_in_dim))
            changes["f_max"] = min(seq.f_max, sr / 2)
        if vae is not None:
            down = 2 ** (len(vae.config.block_out_channels) - 1)
            changes.update(latent_freq_downsample=down)
            changes["latent_hop"] = changes.get("hop_length", seq.hop_length) * down
    elif vae is not None:
        sr = int(getattr(vae.config, "sampling_rate", seq.sample_rate))
        changes.update(sample_rate=sr, latent_hop=int(math.prod(vae.config.downsampling_ratios)))
        changes["f_max"] = min(seq.f_max, sr / 2)
    changes = {k: v for k, v in changes.items() if getattr(seq, k) != v}
    if not changes:
        return seq
    try:
        return seq.replace(**changes)
    except ConfigError as err:
        raise ModelError(f"the backbone's audio geometry {changes} does not fit foleykit: {err}") from None


@dataclass
class LoadedBackbone:
    """Parts of a published folder, ready for ``build_pipeline``.

    Attributes:
        folder: The resolved folder.
        family: Its :class:`BackboneFamily`.
        parts: Loaded modules by component name (``unet``, ``vae``, ``vocoder``, ``transformer``,
            ``projection_model``) and ``scheduler`` when taken.
        seq: The recipe's SequenceConfig adapted to the folder.
        text_encoder: (registry name, kwargs) of the folder's text encoder when ``text_encoder`` is taken.
        notes: Adjustments (e.g. the sampler's ODE twin).
        used: Component -> the class it was loaded as (for the sidecar).
    """

    folder: Path
    family: BackboneFamily
    parts: dict[str, Any]
    seq: Any
    text_encoder: tuple[str, dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)
    used: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """Provenance for the pipeline's recipe (``recipe["backbone"]["loaded"]``, saved with the model)."""
        return {
            "family": self.family.name,
            "pipeline": self.family.pipeline,
            "path": str(self.folder),
            "hub_id": _hub_id(self.folder),
            "fingerprint": fingerprint(self.folder),
            "used": dict(self.used),
            "notes": list(self.notes),
        }


def load_backbone(
    backbone: str | os.PathLike,
    components: list[str],
    seq: Any,
    *,
    family: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> LoadedBackbone:
    """Load ``components`` of a published folder (``foleykit.paths.resolve_model``: folder, name under
    ``$FOLEYKIT_HOME/models`` or a hub id in the local HF cache).

    Args:
        backbone: The folder or name.
        components: Names among the family's components (``text_encoder``: only its spec is returned; the
            encoder is built with the recipe's other encoders).
        seq: The recipe's SequenceConfig (adapted to the folder's audio geometry).
        family: The recipe's ``backbone.family``; the folder must be of that family.

    Raises:
        WeightsNotFoundError: missing folder / files; ModelError / ConfigError: a folder of another kind.
    """
    from foleykit.paths import resolve_model

    folder = resolve_model(backbone, expect=INDEX_FILE)
    index = read_index(folder)
    if not isinstance(index, dict):
        raise ModelError(f"{folder / INDEX_FILE} is not a model index (a JSON mapping)")
    if "_foleykit" in index:
        raise ConfigError(
            f"backbone {backbone}: {folder} is a foleykit model folder (it already holds a whole pipeline); "
            "give a published AudioLDM / Stable Audio Open folder as the backbone"
        )
    fam = next((f for f in FAMILIES.values() if f.pipeline == index.get("_class_name")), None)
    if fam is None:
        raise ModelError(not_foleykit_message(folder, index))
    folder = trust.check_folder(folder)  # links, weight indexes, custom code: before anything is loaded
    if family is not None and family != fam.name:
        raise ConfigError(
            f"backbone {backbone} is {'an' if fam.title[0] in 'AEIOU' else 'a'} {fam.title} folder, but this recipe is built on "
            f"{FAMILIES[family].title if family in FAMILIES else family}; recipes for {fam.title}: "
            f"{', '.join(recipes_for(fam, runnable=False)) or 'none'}"
        )
    unknown = [c for c in components if c not in fam.classes or c == "tokenizer"]
    if unknown:
        raise ConfigError(f"{fam.title} backbones have no components {unknown}")
    out = LoadedBackbone(folder=folder, family=fam, parts={}, seq=seq)
    for name in components:
        if name == "text_encoder":
            out.text_encoder = text_encoder_spec(folder, fam)
            out.used[name] = f"{name}/ {fam.classes[name][1][0]} + tokenizer/"
        elif name == "scheduler":
            out.parts[name], note = load_scheduler(folder, fam)
            out.used[name] = f"{name}/ {type(out.parts[name]).__name__}"
            if note:
                out.notes.append(note)
        else:
            out.parts[name] = load_part(folder, fam, name, dtype=dtype)
            out.used[name] = f"{name}/ {type(out.parts[name]).__name__}"
    out.seq = sequence_for(seq, fam, out.parts)
    return out


# ==========================================================================================================
# A runnable pipeline from the folder alone
# ==========================================================================================================
def runnable_recipe(recipe: dict[str, Any], family: BackboneFamily) -> tuple[dict[str, Any], list[str]]:
    """The recipe reduced to what a bare published folder can run, and the names of the parts left out.

    Control adapters, timing predictors, the video encoder and the video / reference-sound conditions are
    untrained for a bare backbone and left out; the text condition uses the backbone's own encoder and null;
    the denoiser, codec, text encoder and sampler come from the folder.

    Raises:
        ConfigError: the recipe is not built on this family, or its denoiser is not the backbone's (it has
            to be trained or converted first).
    """
    rec = copy.deepcopy(recipe)
    bb = dict(rec.get("backbone") or {})
    if bb.get("family") != family.name:
        raise ConfigError(
            f"recipe {rec.get('name')!r} is not built on {family.title}; recipes that run on a "
            f"{family.title} folder: {', '.join(recipes_for(family)) or 'none'}"
        )
    if not set(DENOISER_PARTS[family.name]) <= set(bb.get("components", [])):
        raise ConfigError(
            f"recipe {rec.get('name')!r} takes only {', '.join(bb.get('components', []))} from the {family.title} "
            f"folder; its own denoiser must be trained (`foleykit train --recipe {rec.get('name')} --backbone "
            f"FOLDER`) or converted from released weights (`foleykit models convert`) first. Recipes that run "
            f"on this folder alone: {', '.join(recipes_for(family)) or 'none'}"
        )
    components = list(
        dict.fromkeys([*DENOISER_PARTS[family.name], *bb.get("components", []), "text_encoder", "scheduler"])
    )
    components += [c for c in ("vae", "vocoder") if c in family.classes and c not in components]
    rec["backbone"] = {**bb, "components": components}
    left_out = []
    for a in rec.pop("adapters", None) or []:
        left_out.append(f"{a['name']} ControlNet")
    for kind in rec.pop("predictors", None) or {}:
        left_out.append(f"{kind} predictor")
    rec.pop("video_encoder", None)
    conds = dict(rec.get("conditions") or {})
    for name in ("video", "audio"):
        if conds.pop(name, None) is not None:
            left_out.append({"video": "video condition", "audio": "reference-sound condition"}[name])
    text = dict(conds.get("text") or {"tokens": True})
    conds["text"] = {
        "encoder": family.text_encoder[0],
        "null": family.text_null,
        "tokens": text.get("tokens", True),
    }
    if conds.get("global_from") not in (None, "text"):
        conds.pop("global_from", None)
        conds.pop("global_dim", None)
    rec["conditions"] = conds
    sampling = dict(rec.get("sampling") or {})
    sampling["guide_on"] = ["text"]
    rec["sampling"] = sampling
    rec.pop("training", None)
    return rec, left_out


def fingerprint(folder: Path) -> str:
    """SHA-256 (16 hex digits) over ``model_index.json`` and, per weight file, its path, size and first MiB."""
    digest = hashlib.sha256((folder / INDEX_FILE).read_bytes())
    for f in sorted([*folder.rglob("*.safetensors"), *folder.rglob("*.bin")]):
        digest.update(f.relative_to(folder).as_posix().encode())
        digest.update(str(f.stat().st_size).encode())
        with open(f, "rb") as fh:
            digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:16]


def _hub_id(folder: Path) -> str | None:
    """``owner/name`` when the folder is a snapshot in the HF cache (``models--owner--name/snapshots/REV``)."""
    for part in folder.parts:
        if part.startswith("models--") and part.count("--") >= 2:
            return part[len("models--") :].replace("--", "/", 1)
    return None


def load_published(
    name_or_path: str | os.PathLike,
    *,
    recipe: str | os.PathLike | None = None,
    size: str = "full",
    device: str | torch.device = "cpu",
):
    """A runnable ``VideoToAudioPipeline`` from a published AudioLDM / Stable Audio Open folder alone.

    Args:
        name_or_path: The folder, a name under ``$FOLEYKIT_HOME/models`` or a hub id in the local HF cache.
        recipe: Recipe name / path (default: the family's, ``rewas`` / ``stable_v2a``).
        size: Recipe size (``debug`` only shortens the clips and steps; every part comes from the folder).
        device: Where to put the pipeline.

    Returns:
        The pipeline; ``pipe.model_info`` holds ``name``, ``path``, ``recipe``, ``backbone`` (family, class,
        path, hub id, fingerprint), ``used`` (component -> class), ``not_trained`` (the recipe's parts left
        out) and ``note`` (one line for the user, or None).
    """
    from foleykit.paths import resolve_model
    from foleykit.recipes import build_pipeline, load_recipe

    folder = resolve_model(name_or_path, expect=INDEX_FILE).resolve()
    fam = family_of(folder)
    if fam is None:
        raise ModelError(not_foleykit_message(folder, read_index(folder)))
    rec = load_recipe(recipe or fam.default_recipe, size=size)
    runnable, left_out = runnable_recipe(rec, fam)
    with _quiet():
        pipe = build_pipeline(runnable, backbone=folder)
    loaded = pipe.recipe["backbone"]["loaded"]
    if any(True for _ in pipe.assembler.parameters()):
        raise ModelError(
            f"{folder}: the backbone's text encoder does not match its denoiser (a projection would be "
            "untrained); is the folder complete and consistent?"
        )
    parts = []
    if left_out:
        parts.append(
            f"{' and '.join([', '.join(left_out[:-1]), left_out[-1]] if len(left_out) > 1 else left_out)} "
            f"not trained for this backbone: timing is not applied and the video sets the length only"
        )
    parts += loaded.get("notes", [])
    note = (f"{rec['name']} on {fam.title} ({folder.name}): " + "; ".join(parts)) if parts else None
    pipe.model_info = {
        "name": str(name_or_path),
        "path": str(folder),
        "recipe": rec["name"],
        "size": size,
        "backbone": {
            "family": fam.name,
            "pipeline": fam.pipeline,
            "path": str(folder),
            "hub_id": _hub_id(folder),
            "fingerprint": loaded["fingerprint"],
        },
        "used": dict(loaded["used"]),
        "not_trained": left_out,
        "note": note,
        "fingerprint": loaded["fingerprint"],
    }
    if torch.device(device).type != "cpu":
        with _quiet():
            pipe.to(device=device)
    return pipe
