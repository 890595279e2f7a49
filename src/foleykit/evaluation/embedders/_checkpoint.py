"""Loading published ``.pth`` checkpoints from local files (PANNs, VGGish): never downloads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from foleykit.errors import ModelError, WeightsNotFoundError


def find_checkpoint(
    path: str | os.PathLike | None, *, filename: str, what: str, search: list[Path], source: str
) -> Path:
    """Resolve a checkpoint file: the given path (a file, or a folder holding ``filename``), else ``search``.

    Args:
        path: User-given file or folder, or None to search the default places.
        filename: The published file name (e.g. ``Cnn14_mAP=0.431.pth``).
        what: Human name for messages.
        search: Default folders to look in when ``path`` is None.
        source: Where the user can get the file (URL / instructions), quoted in the error.

    Raises:
        WeightsNotFoundError: nothing found; the message lists every place searched and the source.
    """
    candidates: list[Path] = []
    if path is not None:
        p = Path(path).expanduser()
        candidates.append(p / filename if p.is_dir() else p)
    else:
        candidates += [Path(d).expanduser() / filename for d in search]
    for c in candidates:
        if c.is_file():
            return c
    places = "\n".join(f"  - {c}" for c in candidates)
    raise WeightsNotFoundError(
        f"{what}: checkpoint not found (foleykit never downloads weights). Looked for:\n{places}\n"
        f"Get {filename} from {source} and pass its path (or a folder holding it)."
    )


def load_state(path: Path, *, what: str, trust_pickle: bool = False) -> dict[str, Any]:
    """Load a published checkpoint on CPU and return its state dict (``ckpt["model"]`` or the dict itself).

    Read by :func:`foleykit.convert.checkpoint.load_checkpoint`: tensors, containers and numpy data only;
    a file that needs more (published PANNs files pickle their data sampler's state) is refused unless
    ``trust_pickle`` (``foleykit eval --trust-pickle``), because a full unpickling can run code from the file.
    """
    from foleykit.convert.checkpoint import load_checkpoint

    obj = load_checkpoint(path, trust_pickle=trust_pickle, what=what)
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ModelError(f"{what}: {path} does not hold a state dict (got {type(obj).__name__})")
    return obj
