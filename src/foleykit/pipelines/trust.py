"""The trust model of model folders: what a folder may make foleykit build, read and unpickle.

Model folders are shared as plain folders, so loading one must never run code that came with it. Every name a
folder holds (``model_index.json`` entries, a component's ``_foleykit_spec``, a scheduler's ``_class_name``) is
checked *as a string* against what foleykit knows before anything is imported:

- foleykit builders registered in :mod:`foleykit.registry` under the component kinds of :data:`SPEC_KINDS`
  (``{"registry": [kind, name]}``);
- ``nn.Module`` (or diffusers scheduler) subclasses defined in foleykit's model packages
  (:data:`FOLEYKIT_PACKAGES`), named ``foleykit.<package>.<module>.<Class>``; after the import the class itself
  is checked (a class, defined in foleykit, of the right base);
- the diffusers / transformers classes of :data:`LIBRARY_CLASSES`, by exact library and class name.

Anything else is refused with one :class:`UntrustedModelError` line. Keyword arguments that reach a
constructor are plain JSON data (numbers, strings, lists, mappings); constructors never turn a string into code.

Files: every path the loader reads stays inside the folder — component names are plain names, links must not
lead out of it (a Hugging Face cache snapshot may link into its own repository's ``blobs/``), sharded-weight
indexes name files of their own folder, and configs naming custom code (``auto_map``) are refused. Weights are
safetensors; a component that only has pickle weights (``.bin``) is refused unless pickles are trusted
(:func:`trusting_pickle`, ``--trust-pickle`` on the command line) — even restricted unpickling runs the pickle
machinery on the file, so it is the user's explicit choice for folders from a source they trust.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from foleykit.errors import ModelError

#: Registry kinds a model folder may build by name (``{"registry": [kind, name]}``).
SPEC_KINDS = ("text_encoder", "audio_encoder", "video_encoder", "timing_predictor")
#: foleykit packages whose ``nn.Module`` / scheduler classes a model folder may name.
FOLEYKIT_PACKAGES = ("foleykit.models", "foleykit.pipelines", "foleykit.encoders", "foleykit.convert")

_DIFFUSERS_MODELS = (
    "AutoencoderKL",
    "AutoencoderOobleck",
    "UNet2DConditionModel",
    "StableAudioDiTModel",
    "StableAudioProjectionModel",
)
#: diffusers samplers (``scheduler/scheduler_config.json``).
SCHEDULERS = (
    "DDIMScheduler",
    "DDPMScheduler",
    "PNDMScheduler",
    "LMSDiscreteScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "UniPCMultistepScheduler",
    "CosineDPMSolverMultistepScheduler",
    "EDMDPMSolverMultistepScheduler",
    "EDMEulerScheduler",
)
_TRANSFORMERS_MODELS = (
    "SpeechT5HifiGan",
    "ClapModel",
    "ClapTextModelWithProjection",
    "ClapAudioModelWithProjection",
    "T5EncoderModel",
    "MT5EncoderModel",
    "UMT5EncoderModel",
    "CLIPTextModel",
    "CLIPTextModelWithProjection",
    "CLIPVisionModel",
    "CLIPVisionModelWithProjection",
    "BertModel",
    "RobertaModel",
)
#: Tokenizer classes a published folder's ``model_index.json`` may name (loaded as data by the encoders).
TOKENIZERS = (
    "RobertaTokenizer",
    "RobertaTokenizerFast",
    "T5Tokenizer",
    "T5TokenizerFast",
    "BertTokenizer",
    "BertTokenizerFast",
    "CLIPTokenizer",
    "CLIPTokenizerFast",
    "PreTrainedTokenizerFast",
    "TokenizersBackend",  # transformers 5's name for a tokenizers-backed tokenizer
)
#: ``(library, class)`` pairs a folder may name -> the package the class is taken from.
LIBRARY_CLASSES: dict[tuple[str, str], str] = {
    **{("diffusers", c): "diffusers" for c in (*_DIFFUSERS_MODELS, *SCHEDULERS)},
    # diffusers writes the pipeline module's name for this class in a StableAudioPipeline folder
    ("stable_audio", "StableAudioProjectionModel"): "diffusers",
    **{("transformers", c): "transformers" for c in (*_TRANSFORMERS_MODELS, *TOKENIZERS)},
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE = re.compile(r"foleykit(\.[a-z][a-z0-9_]*)+")
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]*(\.[A-Za-z0-9_+-]+)*")
_SPEC_KEYS = {"registry", "class", "kwargs", "weights", "pass_seq", "pass_folder"}
#: Keyword arguments only the loader may set (``pass_seq`` / ``pass_folder``): a folder cannot point them.
_RESERVED_KWARGS = ("seq", "folder")
#: Config files whose ``auto_map`` would make transformers / diffusers import code shipped with the folder.
_CODE_CONFIGS = (
    "config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "model_index.json",
)
_MAX_FILES = 20000

#: True: pickles trusted; False: a model folder is loading, pickles refused; None: neither (default).
_PICKLE: contextvars.ContextVar[bool | None] = contextvars.ContextVar("foleykit_trust_pickle", default=None)


class UntrustedModelError(ModelError):
    """A model folder names code, files or data foleykit does not load (see the module docstring)."""


# ==========================================================================================================
# Pickles
# ==========================================================================================================
@contextlib.contextmanager
def trusting_pickle(trust: bool = True) -> Iterator[None]:
    """Within the block, model folders may hold pickle weights (``.bin``); only for folders you trust."""
    token = _PICKLE.set(bool(trust))
    try:
        yield
    finally:
        _PICKLE.reset(token)


def pickle_trusted() -> bool:
    """Whether pickle weights are allowed here (:func:`trusting_pickle`)."""
    return _PICKLE.get() is True


@contextlib.contextmanager
def loading_model() -> Iterator[None]:
    """Within the block a model folder loads: what it references (an encoder's ``path`` folder) is read under
    the same rule, safetensors only, unless an enclosing :func:`trusting_pickle` allowed pickles."""
    token = _PICKLE.set(False) if _PICKLE.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _PICKLE.reset(token)


def loading_active() -> bool:
    """Whether a :func:`loading_model` or :func:`trusting_pickle` block is active."""
    return _PICKLE.get() is not None


def referenced_use_safetensors() -> bool | None:
    """``use_safetensors=`` for a folder a model references (encoders): True while a model folder loads
    (:func:`loading_model`) and pickles are not trusted; None (the library's default) otherwise."""
    return True if _PICKLE.get() is False else None


def weights_file(folder: Path, safetensors: tuple[str, ...], pickles: tuple[str, ...], *, where: str) -> bool:
    """Whether ``folder`` holds weights, refusing pickle-only weights unless pickles are trusted.

    Returns:
        True when one of ``safetensors`` (or, trusted, one of ``pickles``) is a file; False when none is.

    Raises:
        UntrustedModelError: only pickle weights, and pickles are not trusted.
    """
    if any((folder / f).is_file() for f in safetensors):
        return True
    found = next((f for f in pickles if (folder / f).is_file()), None)
    if found is None:
        return False
    if not pickle_trusted():
        raise UntrustedModelError(
            f"{where}: {found} is a pickle (loading one can run code stored in it) and foleykit loads "
            "safetensors only; convert it to .safetensors, or pass --trust-pickle (trust_pickle=True) "
            "if you trust its source"
        )
    return True


def use_safetensors() -> bool | None:
    """``use_safetensors=`` for ``from_pretrained``: True (safetensors only) unless pickles are trusted."""
    return None if pickle_trusted() else True


# ==========================================================================================================
# Names
# ==========================================================================================================
def _refuse(where: str, what: str) -> UntrustedModelError:
    return UntrustedModelError(
        f"{where}: names {what}, which foleykit does not load from a model folder (it builds only "
        "foleykit's registered parts and known diffusers / transformers classes; see docs/models.md, "
        "'Trust model')"
    )


def check_library_class(lib: Any, cls: Any, *, where: str) -> str:
    """Check a ``[library, class]`` entry as strings (nothing is imported); returns the package to take it from.

    ``lib`` is ``diffusers`` / ``transformers`` with a class of :data:`LIBRARY_CLASSES`, or a module in
    :data:`FOLEYKIT_PACKAGES` (``foleykit.models.control_adapter``) with a class name.

    Raises:
        UntrustedModelError: anything else.
    """
    if not (isinstance(lib, str) and isinstance(cls, str)):
        raise _refuse(where, f"a non-text class entry {[lib, cls]!r}"[:200])
    if (lib, cls) in LIBRARY_CLASSES:
        return LIBRARY_CLASSES[(lib, cls)]
    if _foleykit_module(lib) and _IDENT.fullmatch(cls):
        return lib
    raise _refuse(where, f"the class {_short(lib)}.{_short(cls)}")


def _short(text: str, n: int = 80) -> str:
    text = repr(text)[1:-1]
    return text if len(text) <= n else text[: n - 3] + "..."


def _foleykit_module(name: str) -> bool:
    return bool(_MODULE.fullmatch(name)) and any(
        name == p or name.startswith(p + ".") for p in FOLEYKIT_PACKAGES
    )


def library_class(lib: Any, cls: Any, *, where: str) -> type:
    """The class of a checked ``[library, class]`` entry (:func:`check_library_class` first, then imported).

    Raises:
        UntrustedModelError: the entry is not allowed, or a foleykit name is not a foleykit module / scheduler.
        ModelError: an allowed name that this installation does not have.
    """
    package = check_library_class(lib, cls, where=where)
    import importlib

    if package in ("diffusers", "transformers"):
        module = importlib.import_module(package)
        found = getattr(module, cls, None)
        if not isinstance(found, type):
            raise ModelError(f"{where}: {package} {cls} is not available in this installation of {package}")
        return found
    return _foleykit_class(package, cls, where=where)


def _foleykit_class(module_name: str, cls: str, *, where: str) -> type:
    import importlib

    from diffusers import SchedulerMixin
    from torch import nn

    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelError(f"{where}: foleykit has no module {module_name} ({err})") from None
    found = getattr(module, cls, None)
    if not (
        isinstance(found, type)
        and issubclass(found, (nn.Module, SchedulerMixin))
        and _foleykit_module(str(found.__module__))
    ):
        raise _refuse(where, f"{module_name}.{cls}, which is not a foleykit model class")
    return found


def check_plain(value: Any, *, where: str, depth: int = 0) -> None:
    """Check that ``value`` is plain JSON data (None, bool, int, float, str, lists and str-keyed mappings).

    Raises:
        UntrustedModelError: anything else, or nesting deeper than 16 levels.
    """
    if depth > 16:
        raise UntrustedModelError(f"{where}: configuration nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            check_plain(v, where=where, depth=depth + 1)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise UntrustedModelError(f"{where}: configuration keys must be text, got {k!r}"[:200])
            check_plain(v, where=where, depth=depth + 1)
        return
    raise UntrustedModelError(f"{where}: configuration values must be plain data, got {type(value).__name__}")


def check_spec(spec: Any, *, where: str) -> None:
    """Check a component's ``_foleykit_spec`` as strings and plain data, before anything is imported.

    Raises:
        UntrustedModelError: an unknown key, a registry kind outside :data:`SPEC_KINDS`, a class outside
            :data:`FOLEYKIT_PACKAGES`, keyword arguments that are not plain data or set ``seq`` / ``folder``.
    """
    if not isinstance(spec, Mapping):
        raise UntrustedModelError(f"{where}: _foleykit_spec must be a mapping")
    unknown = sorted(str(k) for k in spec if k not in _SPEC_KEYS)
    if unknown:
        raise UntrustedModelError(f"{where}: _foleykit_spec has unknown keys {unknown[:5]}")
    for flag in ("weights", "pass_seq", "pass_folder"):
        if flag in spec and not isinstance(spec[flag], bool):
            raise UntrustedModelError(f"{where}: _foleykit_spec {flag!r} must be true or false")
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise UntrustedModelError(f"{where}: _foleykit_spec kwargs must be a mapping")
    check_plain(kwargs, where=where)
    reserved = [k for k in _RESERVED_KWARGS if k in kwargs]
    if reserved:
        raise UntrustedModelError(f"{where}: _foleykit_spec kwargs may not set {', '.join(reserved)}")
    if "registry" in spec:
        entry = spec["registry"]
        if not (
            isinstance(entry, (list, tuple))
            and len(entry) == 2
            and all(isinstance(x, str) for x in entry)
            and entry[0] in SPEC_KINDS
        ):
            raise _refuse(where, f"the registry entry {_short(str(entry))}")
        return
    if "class" in spec:
        path = spec["class"]
        mod, _, cls = path.rpartition(".") if isinstance(path, str) else ("", "", "")
        if not (_foleykit_module(mod) and _IDENT.fullmatch(cls)):
            raise _refuse(where, f"the class {_short(str(path))}")
        return
    raise UntrustedModelError(f"{where}: _foleykit_spec needs 'registry' or 'class'")


def spec_class(path: str, *, where: str) -> type:
    """The foleykit ``nn.Module`` class of a checked spec's ``"class"`` (``foleykit.models.pooling.X``)."""
    mod, _, cls = path.rpartition(".")
    if not (_foleykit_module(mod) and _IDENT.fullmatch(cls)):
        raise _refuse(where, f"the class {_short(path)}")
    return _foleykit_class(mod, cls, where=where)


# ==========================================================================================================
# Paths
# ==========================================================================================================
def _containment_root(folder: Path) -> Path:
    """The folder links may point into: the folder, or a HF cache repository (``models--o--n``) for one of
    its ``snapshots/REV`` folders (whose files link to ``../../blobs``)."""
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        return folder.parent.parent
    return folder


def component_dir(folder: Path, name: Any) -> Path:
    """``folder / name`` for a component name that is one plain folder name inside ``folder``.

    Raises:
        UntrustedModelError: ``name`` is empty, absolute, holds a separator or ``..``, or leads out.
    """
    where = f"{Path(folder).name}/{INDEX}"
    if not (isinstance(name, str) and _COMPONENT.fullmatch(name) and ".." not in name):
        raise UntrustedModelError(f"{where}: {_short(str(name))!s} is not a component folder name")
    root = Path(folder).resolve()
    path = root / name
    if path.exists() and not path.resolve().is_relative_to(_containment_root(root)):
        raise UntrustedModelError(f"{where}: component {name} leads outside the model folder")
    return path


INDEX = "model_index.json"


def check_folder(folder: str | os.PathLike) -> Path:
    """Check a model folder's files before anything in it is loaded; returns the resolved folder.

    Every link must resolve inside the folder (or the HF cache repository of a snapshot), every sharded
    weight index (``*.index.json``) must name files of its own folder, and no config may name custom code
    (``auto_map``).

    Raises:
        UntrustedModelError: the first problem, in one line (relative to the folder).
    """
    root = Path(folder).resolve()
    base = _containment_root(root)
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for n in (*dirnames, *filenames):
            count += 1
            if count > _MAX_FILES:
                raise UntrustedModelError(f"{root.name}: more than {_MAX_FILES} files; is it a model folder?")
            p = d / n
            rel = p.relative_to(root).as_posix()
            if p.is_symlink() and not p.resolve().is_relative_to(base):
                raise UntrustedModelError(
                    f"{root.name}: {rel} is a link to a place outside the model folder; copy the file in"
                )
        for n in filenames:
            if n.endswith(".index.json"):
                _check_weight_index(d / n, root)
            elif n in _CODE_CONFIGS:
                _check_no_code(d / n, root)
    return root


def _read_json(path: Path, root: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        rel = path.relative_to(root).as_posix()
        raise ModelError(f"{root.name}: cannot read {rel}: {type(err).__name__}") from None


def _check_weight_index(path: Path, root: Path) -> None:
    rel = path.relative_to(root).as_posix()
    doc = _read_json(path, root)
    files = doc.get("weight_map", {}) if isinstance(doc, dict) else None
    if not isinstance(files, dict):
        raise UntrustedModelError(f"{root.name}: {rel} has no weight_map")
    for f in set(files.values()):
        if not (isinstance(f, str) and _COMPONENT.fullmatch(f) and ".." not in f):
            raise UntrustedModelError(f"{root.name}: {rel} names {_short(str(f))}, not a file of its folder")


def _check_no_code(path: Path, root: Path) -> None:
    doc = _read_json(path, root)
    if isinstance(doc, dict) and any(k in doc for k in ("auto_map", "custom_pipeline")):
        rel = path.relative_to(root).as_posix()
        raise UntrustedModelError(
            f"{root.name}: {rel} names custom code (auto_map), which foleykit never runs from a model folder"
        )
