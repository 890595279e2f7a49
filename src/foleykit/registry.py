"""Name -> builder registry: the only place where configuration becomes objects (audiocraft builders.py).

Builders register under a kind ("recipe", "model", "encoder", "metric", "embedder", ...) and a name.
Modules register themselves at import; ``build`` imports the providers of a kind lazily so that
``import foleykit`` stays light. Kinds and names are looked up, never imported: a name only finds a builder that
installed code registered. A model folder may name builders of the component kinds only
(``foleykit.pipelines.trust.SPEC_KINDS``: text / audio / video encoders, timing predictors).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from foleykit.errors import ConfigError

_BUILDERS: dict[str, dict[str, Callable[..., Any]]] = {}

#: Modules imported before a kind is looked up (they call ``register`` at import time). Packages may
#: declare more with ``add_provider``; these defaults make ``build(kind, ...)`` work without prior imports.
_PROVIDERS: dict[str, list[str]] = {
    "recipe": ["foleykit.recipes"],
    "vae": ["foleykit.recipes"],
    "vocoder": ["foleykit.recipes"],
    "unet": ["foleykit.recipes"],
    "transformer": ["foleykit.recipes"],
    "projection": ["foleykit.recipes"],
    "text_encoder": ["foleykit.encoders", "foleykit.convert.runtime"],
    "audio_encoder": ["foleykit.encoders"],
    "video_encoder": ["foleykit.encoders", "foleykit.convert.runtime"],
    "timing_predictor": ["foleykit.models.predictors", "foleykit.convert.runtime"],
    "embedder": ["foleykit.evaluation.embedders"],
    "extractor": ["foleykit.data.cache"],
}


def register(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn`` as the builder of ``name`` within ``kind``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        table = _BUILDERS.setdefault(kind, {})
        if name in table and table[name] is not fn:
            raise ConfigError(f"{kind} {name!r} is registered twice")
        table[name] = fn
        return fn

    return deco


def add_provider(kind: str, module: str) -> None:
    """Declare that importing ``module`` registers builders of ``kind``."""
    _PROVIDERS.setdefault(kind, [])
    if module not in _PROVIDERS[kind]:
        _PROVIDERS[kind].append(module)


def _load(kind: str) -> dict[str, Callable[..., Any]]:
    for mod in _PROVIDERS.get(kind, []):
        importlib.import_module(mod)
    return _BUILDERS.get(kind, {})


def names(kind: str) -> list[str]:
    """Registered names of a kind, sorted."""
    return sorted(_load(kind))


def get(kind: str, name: str) -> Callable[..., Any]:
    """The builder registered as ``name`` under ``kind``; ConfigError lists the valid names otherwise."""
    table = _load(kind)
    if name not in table:
        valid = ", ".join(sorted(table)) or "(none registered)"
        raise ConfigError(f"unknown {kind} {name!r}; valid names: {valid}")
    return table[name]


def build(kind: str, name: str, /, **kwargs: Any) -> Any:
    """Build ``name`` of ``kind`` with keyword arguments."""
    return get(kind, name)(**kwargs)
