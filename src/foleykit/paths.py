"""Where weights live. One function resolves every model name; nothing is ever downloaded.

Resolution order for ``resolve_model(name_or_path)``:
  1. an existing local folder (absolute or relative to the caller's working folder, as given);
  2. a model shipped inside the package (``foleykit/weights/<name>``), e.g. the embedded default;
  3. ``$FOLEYKIT_HOME/models/<name>`` (default ``~/.cache/foleykit/models/<name>``);
  4. a Hugging Face hub id already present in the local HF cache (``local_files_only=True``).
Otherwise a WeightsNotFoundError says exactly where the files are expected.
"""

from __future__ import annotations

import os
from pathlib import Path

from foleykit.errors import WeightsNotFoundError

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_WEIGHTS_DIR = PACKAGE_DIR / "weights"
CONFIGS_DIR = PACKAGE_DIR / "configs"
RECIPES_DIR = CONFIGS_DIR / "recipes"
MODEL_CONFIGS_DIR = CONFIGS_DIR / "models"

#: Name of the embedded default model (trained by foleykit, shipped in the package).
DEFAULT_MODEL = "foleykit-demo"


def foleykit_home() -> Path:
    """Root folder for user-provided weights and caches: $FOLEYKIT_HOME or ~/.cache/foleykit."""
    env = os.environ.get("FOLEYKIT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "foleykit"


def shipped_models() -> list[str]:
    """Names of the models shipped inside the package."""
    if not SHIPPED_WEIGHTS_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_WEIGHTS_DIR.iterdir() if (p / "model_index.json").is_file())


def _hf_cached_snapshot(repo_id: str) -> Path | None:
    """Path of a hub repo's snapshot if it is already in the local HF cache, else None. Never downloads."""
    if repo_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except (ImportError, OSError, ValueError):  # missing package; not cached / offline (OSError); bad id
        return None


def resolve_model(name_or_path: str | os.PathLike | None = None, *, expect: str = "model_index.json") -> Path:
    """Resolve a model name or folder to a local folder.

    Args:
        name_or_path: A folder, a shipped model name, a name under $FOLEYKIT_HOME/models, or a hub id
            already in the local HF cache. None means the embedded default model.
        expect: A file the folder must contain (relative path), used to recognise a valid model folder.

    Returns:
        The model folder.

    Raises:
        WeightsNotFoundError: nothing usable was found; the message lists every place that was searched.
    """
    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    candidates: list[Path] = []
    p = Path(name).expanduser()
    candidates.append(p)
    candidates.append(SHIPPED_WEIGHTS_DIR / name)
    candidates.append(foleykit_home() / "models" / name)
    for c in candidates:
        if c.is_dir() and (not expect or (c / expect).exists()):
            return c
    snap = _hf_cached_snapshot(name)
    if snap is not None and (not expect or (snap / expect).exists()):
        return snap
    searched = ", ".join(dict.fromkeys(str(c) for c in candidates))  # a path given as-is appears once
    shipped = ", ".join(shipped_models()) or "none"
    raise WeightsNotFoundError(  # one line: the CLI prints it as one error line
        f"model {name!r} was not found locally (foleykit never downloads weights): no folder holding "
        f"{expect} at {searched}, nor in the Hugging Face cache; shipped models: {shipped}. Download a model "
        f"folder on a connected machine and pass --model DIR, or copy it to {foleykit_home() / 'models'}/NAME"
    )
