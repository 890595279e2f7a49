"""Saving and loading pipeline components in diffusers / transformers folder layouts.

A model folder holds ``model_index.json`` and one sub-folder per component (diffusers' pipeline layout):

- diffusers models (``AutoencoderKL``, ``UNet2DConditionModel``, ``StableAudioDiTModel``, foleykit's own
  ``ModelMixin`` modules...): ``config.json`` (with ``_class_name``) +
  ``diffusion_pytorch_model.safetensors``;
- transformers models (``SpeechT5HifiGan``): ``config.json`` + ``model.safetensors``;
- schedulers: ``scheduler_config.json``;
- any other ``nn.Module`` (the conditioning area's encoders, predictors, pooling): ``config.json`` holding
  ``_class_name`` and the build spec (registry kind/name or class path + keyword arguments) +
  ``model.safetensors`` (omitted for packaged frozen encoders, which are referenced by name).

``model_index.json`` maps each component to ``[library, class]`` like diffusers (``"foleykit.spec"`` for
spec-built modules), so published component folders (AudioLDM-M ``unet/``, Stable Audio Open
``transformer/``...) drop in unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from foleykit.errors import FoleykitError, ModelError, WeightsNotFoundError
from foleykit.utils.io import atomic_write_json

DIFFUSERS_WEIGHTS = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.bin",
)
TRANSFORMERS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
SPEC_LIBRARY = "foleykit.spec"


def library_of(obj: Any) -> tuple[str, str]:
    """``[library, class]`` entry of model_index.json for a component object."""
    from diffusers import ModelMixin, SchedulerMixin

    cls = type(obj)
    mod = cls.__module__
    if isinstance(obj, (ModelMixin, SchedulerMixin)):
        return ("diffusers" if mod.startswith("diffusers") else mod, cls.__name__)
    if mod.startswith("transformers"):
        return ("transformers", cls.__name__)
    return (SPEC_LIBRARY, cls.__name__)


def _state_for_saving(module: nn.Module, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The tensors to write, without copying the ones safetensors can write in place.

    A contiguous CPU tensor that owns its storage is written as it is (no clone: saving a 1B-parameter model
    would otherwise hold a second copy of it); views into a larger storage and tensors sharing memory with
    another (tied weights) are cloned, as safetensors requires.
    """
    out, seen = {}, set()
    for k, v in module.state_dict().items():
        v = v.detach()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        v = v.cpu().contiguous()
        storage = v.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != v.numel() * v.element_size():
            v = v.clone()
        seen.add(v.untyped_storage().data_ptr())
        out[k] = v
    return out


def _drop_origin(config: Path) -> None:
    """Remove diffusers' ``_name_or_path`` (the folder a model was loaded from: a path of the machine that
    saved it) from a written config."""
    cfg = json.loads(config.read_text(encoding="utf-8"))
    if cfg.pop("_name_or_path", None) is not None:
        atomic_write_json(config, cfg)


def save_component(
    obj: Any, folder: Path, *, dtype: torch.dtype | None = None, spec: dict[str, Any] | None = None
) -> tuple[str, str]:
    """Write one component into ``folder`` (created) and return its ``[library, class]`` entry.

    Args:
        obj: A diffusers model / scheduler, a transformers model, or any ``nn.Module`` with a ``spec``.
        folder: The component sub-folder.
        dtype: Cast floating weights to this dtype on disk (e.g. ``torch.float16``); None keeps them.
        spec: Build spec of a non-library module: ``{"registry": [kind, name]} | {"class": "pkg.mod.Class"}``,
            ``"kwargs"``, and ``"weights": bool`` (False: frozen packaged model, referenced by name only).
    """
    from diffusers import ModelMixin, SchedulerMixin
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    lib, cls = library_of(obj)
    if isinstance(obj, SchedulerMixin):
        obj.save_config(folder)
        _drop_origin(folder / "scheduler_config.json")
    elif isinstance(obj, ModelMixin):
        obj.save_config(folder)
        _drop_origin(folder / "config.json")
        save_file(_state_for_saving(obj, dtype), folder / DIFFUSERS_WEIGHTS[0], metadata={"format": "pt"})
    elif lib == "transformers":
        obj.config.architectures = [cls]  # as PreTrainedModel.save_pretrained records it
        obj.config.save_pretrained(folder)
        save_file(_state_for_saving(obj, dtype), folder / TRANSFORMERS_WEIGHTS[0], metadata={"format": "pt"})
    else:
        if spec is None:
            raise ModelError(
                f"cannot save {cls}: it is not a diffusers/transformers model and has no build spec"
            )
        atomic_write_json(folder / "config.json", {"_class_name": cls, "_foleykit_spec": spec})
        if spec.get("weights", True) and any(True for _ in obj.state_dict()):
            save_file(
                _state_for_saving(obj, dtype), folder / TRANSFORMERS_WEIGHTS[0], metadata={"format": "pt"}
            )
        extra = getattr(obj, "save_extra_files", None)
        if callable(extra):  # files a module reads back from its folder (a tokenizer), spec "pass_folder"
            extra(folder)
    return lib, cls


def _require(folder: Path, name: str, files: tuple[str, ...], what: str) -> None:
    if not folder.is_dir():
        raise WeightsNotFoundError(
            f"component {name!r} is missing: expected the folder {folder} with {what}. "
            f"Copy the complete model "
            f"folder (model_index.json and every component sub-folder)."
        )
    if files and not any((folder / f).is_file() for f in files):
        raise WeightsNotFoundError(
            f"component {name!r}: {folder} has no weights; expected one of {', '.join(files)} "
            f"next to its config."
        )


def build_from_spec(
    spec: dict[str, Any], *, seq: Any = None, folder: Path | None = None, where: str = "component spec"
) -> nn.Module:
    """Build a module from ``{"registry": [kind, name], "kwargs": {...}}`` or ``{"class": path, ...}``.

    ``"pass_seq": true`` adds ``seq=`` (the pipeline's SequenceConfig) to the keyword arguments;
    ``"pass_folder": true`` adds ``folder=`` (the component's own folder, for files such as a tokenizer).
    The spec is checked first (:func:`foleykit.pipelines.trust.check_spec`): registry kinds of components,
    classes of foleykit's model packages, plain-data keyword arguments; nothing else is imported or built.

    Raises:
        UntrustedModelError: the spec names anything else (``where`` prefixes the message).
    """
    from foleykit.pipelines import trust

    trust.check_spec(spec, where=where)
    kwargs = dict(spec.get("kwargs", {}))
    if spec.get("pass_seq"):
        kwargs["seq"] = seq
    if spec.get("pass_folder"):
        kwargs["folder"] = str(folder)
    if "registry" in spec:
        from foleykit import registry

        kind, name = spec["registry"]
        return registry.build(kind, name, **kwargs)
    return trust.spec_class(spec["class"], where=where)(**kwargs)


def _where(folder: Path, file: str) -> str:
    """``MODEL/COMPONENT/file`` for messages (no server path)."""
    return f"{folder.parent.name}/{folder.name}/{file}"


def _read_spec(name: str, folder: Path) -> dict[str, Any]:
    """The checked ``_foleykit_spec`` of a spec-built component folder."""
    from foleykit.pipelines import trust

    _require(folder, name, ("config.json",), "config.json (+ model.safetensors)")
    where = _where(folder, "config.json")
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{where}: cannot read it ({type(err).__name__})") from None
    spec = cfg.get("_foleykit_spec") if isinstance(cfg, dict) else None
    if spec is None:
        raise ModelError(f"component {name!r}: {where} has no _foleykit_spec")
    trust.check_spec(spec, where=where)
    return spec


def load_component(
    name: str,
    entry: list[str] | tuple[str, str],
    folder: Path,
    *,
    dtype: torch.dtype = torch.float32,
    seq: Any = None,
) -> Any:
    """Load one component written by :func:`save_component` (or a published diffusers/transformers folder).

    Only what :mod:`foleykit.pipelines.trust` allows is built (checked as strings before any import), and only
    safetensors weights are read unless pickles are trusted (``trust.trusting_pickle``).

    Raises:
        WeightsNotFoundError: the sub-folder or its weights are missing (the message names what is expected).
        UntrustedModelError: the entry, spec or weights are not allowed (one line).
        ModelError: the files are there but cannot be loaded (a truncated or damaged weights file, a config the
            class refuses, weights of other shapes); the library's error is chained.
    """
    try:
        return _load_component(name, entry, folder, dtype=dtype, seq=seq)
    except (FoleykitError, MemoryError):
        raise
    except Exception as err:  # whatever the library raises: one typed error that says where
        raise ModelError(
            f"component {name!r} ({_where(folder, '')[:-1]}): its files cannot be loaded "
            f"({type(err).__name__}); the folder is damaged or was not written for this class; save or copy "
            "it again"
        ) from err


def _load_component(
    name: str, entry: list[str] | tuple[str, str], folder: Path, *, dtype: torch.dtype, seq: Any
) -> Any:
    from foleykit.pipelines import trust

    where = _where(folder, "")[:-1]
    if not (isinstance(entry, (list, tuple)) and len(entry) == 2):
        raise trust.UntrustedModelError(
            f"{where}: model_index.json entry {str(entry)[:80]} is not [library, class]"
        )
    lib, cls_name = entry
    if lib == SPEC_LIBRARY:
        spec = _read_spec(name, folder)
        module = build_from_spec(spec, seq=seq, folder=folder, where=_where(folder, "config.json"))
        wfile = folder / TRANSFORMERS_WEIGHTS[0]
        if spec.get("weights", True) and any(True for _ in module.state_dict()):
            _require(folder, name, (TRANSFORMERS_WEIGHTS[0],), "model.safetensors")
            from safetensors.torch import load_file

            state = load_file(str(wfile))
            state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
            missing, unexpected = module.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ModelError(
                    f"component {name!r}: weights do not match {cls_name} (missing {missing[:3]}, "
                    f"unexpected {unexpected[:3]})"
                )
        return module.to(dtype) if spec.get("weights", True) else module
    cls = trust.library_class(lib, cls_name, where=where)
    from diffusers import ModelMixin, SchedulerMixin

    if lib == "transformers":
        from transformers import PreTrainedModel

        bases: tuple[type, ...] = (PreTrainedModel,)
    else:
        bases = (ModelMixin, SchedulerMixin)
    if not issubclass(cls, bases):  # e.g. a tokenizer, or a module built from a spec
        raise trust.UntrustedModelError(
            f"{where}: {cls_name} is not a component class (a diffusers / transformers model or sampler)"
        )
    if lib == "transformers":
        if not trust.weights_file(folder, TRANSFORMERS_WEIGHTS[:2], TRANSFORMERS_WEIGHTS[2:], where=where):
            _require(
                folder, name, TRANSFORMERS_WEIGHTS, "config.json and model.safetensors (transformers layout)"
            )
        return cls.from_pretrained(
            str(folder), dtype=dtype, local_files_only=True, use_safetensors=trust.use_safetensors()
        )
    if issubclass(cls, SchedulerMixin):
        _require(folder, name, ("scheduler_config.json",), "scheduler_config.json")
        return cls.from_pretrained(str(folder))
    if not trust.weights_file(folder, DIFFUSERS_WEIGHTS[:2], DIFFUSERS_WEIGHTS[2:], where=where):
        _require(
            folder,
            name,
            DIFFUSERS_WEIGHTS,
            "config.json and diffusion_pytorch_model.safetensors (diffusers layout)",
        )
    return cls.from_pretrained(
        str(folder), torch_dtype=dtype, local_files_only=True, use_safetensors=trust.use_safetensors()
    )


class LazyMelSpectrogram(nn.Module):
    """``foleykit.audio.MelSpectrogram.from_sequence(seq)``, built on first use.

    A loaded pipeline needs the mel transform only to *encode* audio (continuing a window, regenerating a
    region); building it imports librosa for the filter bank (~0.3 s of a command's start-up), so generation
    alone never pays for it. ``Tensor[B x T] -> Tensor[B x n_mels x T_mel]``, exactly like the eager module.
    """

    def __init__(self, *, seq: Any) -> None:
        super().__init__()
        self.seq = seq
        self.inner: nn.Module | None = None

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if self.inner is None:
            from foleykit.audio import MelSpectrogram

            self.inner = MelSpectrogram.from_sequence(self.seq).to(wav.device)
        return self.inner(wav)


# ==========================================================================================================
# Whole pipelines
# ==========================================================================================================
INDEX_FILE = "model_index.json"


def save_pipeline(
    pipe: Any, path: Path, *, dtype: torch.dtype | None = None, files: Mapping[str, str] | None = None
) -> Path:
    """Write ``pipe`` (a ``VideoToAudioPipeline``) to ``path`` atomically; see the module docstring.

    ``files``: extra text files written into the folder in the same atomic step (e.g. ``MODEL_CARD.md``).
    """
    import foleykit
    from foleykit.models.autoencoder import MelLatentCodec
    from foleykit.utils.io import atomic_dir

    def spec_of(name: str) -> dict[str, Any]:
        if name not in pipe.specs:
            raise ModelError(
                f"cannot save component {name!r}: no build spec is known for it (build the pipeline "
                f"with foleykit.recipes.build_pipeline, or set pipe.specs[{name!r}])"
            )
        return pipe.specs[name]

    entries: dict[str, tuple[str, str]] = {}
    codec, den = pipe.codec, pipe.denoiser
    den_cfg = (
        {"type": "unet", "conditioning": den.conditioning}
        if den.kind == "unet"
        else {"type": "dit", "timestep_scale": den.timestep_scale}
    )
    with atomic_dir(path, marker="model_index.json", what="a model folder") as tmp:
        for name, module in pipe.components().items():
            spec = None
            if callable(getattr(module, "build_spec", None)):  # a module that knows its own spec (vocoders)
                spec = module.build_spec()
            elif library_of(module)[0] == SPEC_LIBRARY:
                spec = spec_of(name)
            entries[name] = save_component(module, tmp / name, dtype=dtype, spec=spec)
        entries["scheduler"] = save_component(pipe.scheduler, tmp / "scheduler")
        index: dict[str, Any] = {
            "_class_name": "VideoToAudioPipeline",
            "_foleykit_version": foleykit.__version__,
        }
        index.update({k: list(v) for k, v in entries.items()})
        index["_foleykit"] = {
            "sequence": pipe.seq.to_dict(),
            "codec": "mel" if isinstance(codec, MelLatentCodec) else "waveform",
            "denoiser": den_cfg,
            "defaults": pipe.defaults,
            "adapters": [a.settings() for a in pipe.adapters.values()],
            "specs": {k: v for k, v in pipe.specs.items() if k in entries},
            "dtype": str(dtype or pipe.dtype).replace("torch.", ""),
            "recipe": pipe.recipe,
        }
        atomic_write_json(tmp / INDEX_FILE, index)
        for name, text in (files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
    return path


def check_index(folder: Path, index: Any) -> None:
    """Check a foleykit ``model_index.json`` and every component's spec before anything is loaded.

    Component names must be plain folder names inside ``folder``; entries ``[library, class]`` known
    (:func:`foleykit.pipelines.trust.check_library_class`) or ``foleykit.spec`` with a checked spec; the
    ``_foleykit`` section plain data. Nothing is imported.

    Raises:
        UntrustedModelError: the first problem, in one line.
    """
    from foleykit.pipelines import trust

    where = f"{folder.name}/{INDEX_FILE}"
    if not isinstance(index, dict):
        raise trust.UntrustedModelError(f"{where}: not a mapping")
    trust.check_plain(index, where=where)
    fk = index.get("_foleykit")
    names = [k for k in index if not k.startswith("_")]
    if isinstance(fk, dict):
        names += [
            f"{p}_{a.get('name')}"
            for a in fk.get("adapters") or []
            if isinstance(a, dict)
            for p in ("controlnet", "control_encoder")
        ]
    for name in names:
        sub = trust.component_dir(folder, name)
        entry = index.get(name)
        if entry is None:
            continue
        if not (isinstance(entry, list) and len(entry) == 2):
            raise trust.UntrustedModelError(f"{where}: entry {name!r} is not [library, class]")
        if entry[0] == SPEC_LIBRARY:
            if sub.is_dir():
                _read_spec(name, sub)
        else:
            trust.check_library_class(entry[0], entry[1], where=f"{where} ({name})")


def load_pipeline(
    cls: Any,
    name_or_path: Any,
    *,
    device: Any = "cpu",
    dtype: torch.dtype = torch.float32,
    trust_pickle: bool | None = None,
) -> Any:
    """Load a folder written by :func:`save_pipeline` (names: ``foleykit.paths.resolve_model``).

    The folder is checked first (:mod:`foleykit.pipelines.trust`: its files, every class it names, plain-data
    configs); then only known classes are built and only safetensors read.

    Args:
        trust_pickle: Allow components whose weights are only pickles (``.bin``); None: as the caller's
            ``trust.trusting_pickle`` block says (default no).

    Raises:
        UntrustedModelError: the folder names code or files foleykit does not load (one line, nothing run).
    """
    from foleykit.pipelines import trust

    if (
        trust_pickle is not None or not trust.loading_active()
    ):  # the rules hold for what the folder references
        with trust.trusting_pickle(trust_pickle) if trust_pickle is not None else trust.loading_model():
            return load_pipeline(cls, name_or_path, device=device, dtype=dtype)
    from foleykit.config import SequenceConfig
    from foleykit.models.autoencoder import MelLatentCodec, WaveformLatentCodec
    from foleykit.models.control_adapter import ControlAdapter
    from foleykit.models.dit import DiTDenoiser
    from foleykit.models.unet import UNetDenoiser
    from foleykit.paths import resolve_model

    folder = resolve_model(name_or_path, expect=INDEX_FILE)
    try:
        index = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read {folder / INDEX_FILE}: {err}") from err
    if not isinstance(index, dict):
        raise ModelError(f"{folder / INDEX_FILE} is not a model index (a JSON mapping)")
    fk = index.get("_foleykit")
    if fk is None:  # a published pipeline folder: say how to run it (foleykit.pipelines.published)
        from foleykit.pipelines.published import not_foleykit_message

        raise ModelError(not_foleykit_message(folder, index))
    folder = trust.check_folder(folder)
    check_index(folder, index)
    seq = SequenceConfig.from_dict(fk["sequence"])

    def comp(name: str) -> Any:
        if name not in index:
            raise WeightsNotFoundError(
                f"{folder / INDEX_FILE} lists no component {name!r}; the folder is incomplete"
            )
        sub = trust.component_dir(folder, name)
        return load_component(name, index[name], sub, dtype=dtype, seq=seq)

    vae = comp("vae")
    if fk["codec"] == "mel":
        codec = MelLatentCodec(vae=vae, vocoder=comp("vocoder"), mel=LazyMelSpectrogram(seq=seq), seq=seq)
    else:
        codec = WaveformLatentCodec(vae=vae, seq=seq)
    dcfg = fk["denoiser"]
    if dcfg["type"] == "unet":
        denoiser = UNetDenoiser(unet=comp("unet"), conditioning=dcfg["conditioning"])
    else:
        denoiser = DiTDenoiser(
            transformer=comp("transformer"),
            projection=comp("projection_model"),
            timestep_scale=dcfg["timestep_scale"],
        )
    optional = {
        n: comp(n)
        for n in ("text_encoder", "audio_encoder", "video_encoder", "video_condition")
        if n in index
    }
    optional["predictors"] = {n[len("predictor_") :]: comp(n) for n in index if n.startswith("predictor_")}
    adapters = [
        ControlAdapter(encoder=comp(f"control_encoder_{s['name']}"), net=comp(f"controlnet_{s['name']}"), **s)
        for s in fk.get("adapters", [])
    ]
    pipe = cls(
        seq=seq,
        codec=codec,
        denoiser=denoiser,
        scheduler=comp("scheduler"),
        assembler=comp("condition_assembler"),
        adapters=adapters,
        defaults=fk.get("defaults"),
        recipe=fk.get("recipe"),
        specs=fk.get("specs"),
        **optional,
    )
    return pipe.to(device=device)
