"""A debug model folder for trying the product commands and testing them without the shipped weights."""

from __future__ import annotations

import os
from pathlib import Path


def save_debug_model(
    path: str | os.PathLike,
    *,
    recipe: str = "foleykit_demo",
    audible: bool = True,
    window: float | None = None,
) -> Path:
    """Build a recipe's debug twin (random weights, < 1 s) and save it as a model folder.

    Args:
        path: Target folder (written atomically).
        recipe: Recipe name (``foleykit.recipes.RECIPES``).
        audible: Use the weight-free Griffin-Lim vocoder (4 iterations) instead of the randomly initialised
            HiFi-GAN, whose output is nearly silent: level checks (crossfades, regeneration) then mean something.
        window: Model clip duration in seconds (default: the debug twin's).

    Returns:
        ``path``.
    """
    from foleykit.recipes import build_pipeline, load_recipe

    r = load_recipe(recipe, size="debug")
    if audible and r.get("codec", {}).get("type", "mel") == "mel":
        r["codec"]["vocoder"] = {"type": "griffin_lim", "n_iter": 4}
    if window is not None:
        r.setdefault("sequence", {})["duration"] = float(window)
    build_pipeline(r).save_pretrained(path)
    return Path(path)
