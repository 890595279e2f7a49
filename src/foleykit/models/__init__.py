"""Generative models: audio autoencoders, vocoders, UNet / DiT denoisers and timing-control adapters.

Import the submodules you need (``foleykit.models.autoencoder``, ``.vocoder``, ``.unet``, ``.dit``,
``.control_adapter``); this package itself only offers the published-config helpers and stays light.
The conditioning parts (``predictors.py``, ``pooling.py``) belong to the conditioning area.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from foleykit.errors import ConfigError
from foleykit.paths import MODEL_CONFIGS_DIR

#: Published backbones whose configs ship with foleykit (no weights): name -> hub id.
PUBLISHED_BACKBONES = {
    "audioldm-m-full": "cvssp/audioldm-m-full",
    "stable-audio-open-1.0": "stabilityai/stable-audio-open-1.0",
}

_CONFIG_FILES = ("config.json", "scheduler_config.json")


def published_config(name: str, component: str) -> dict[str, Any]:
    """The shipped config dict of one component of a published backbone.

    Args:
        name: A key of :data:`PUBLISHED_BACKBONES`, e.g. "audioldm-m-full".
        component: The sub-folder, e.g. "unet", "vae", "vocoder", "transformer", "projection_model",
            "scheduler".

    Returns:
        The parsed JSON (diffusers / transformers config, including ``_class_name`` where the library
        writes it).
    """
    folder = MODEL_CONFIGS_DIR / name / component
    for fname in _CONFIG_FILES:
        path = folder / fname
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    valid = ", ".join(sorted(p.name for p in MODEL_CONFIGS_DIR.iterdir() if p.is_dir()))
    raise ConfigError(f"no published config {name}/{component} (looked in {folder}); backbones: {valid}")


def published_components(name: str) -> list[str]:
    """Component sub-folders shipped for a published backbone."""
    folder = MODEL_CONFIGS_DIR / name
    if not folder.is_dir():
        raise ConfigError(
            f"unknown published backbone {name!r}; valid: {', '.join(sorted(PUBLISHED_BACKBONES))}"
        )
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def config_path(name: str, component: str) -> Path:
    """Folder holding the shipped config of ``name/component``."""
    return MODEL_CONFIGS_DIR / name / component
