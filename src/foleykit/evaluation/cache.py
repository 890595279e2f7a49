"""On-disk cache of the expensive per-file features: AV-Align video peaks and embedder outputs.

Comparing checkpoints re-evaluates the same reference audio and videos many times; their Farneback
trajectories and embeddings do not change. Entries are keyed by the file's resolved path, size and
modification time plus every parameter of the computation (variant, embedder description, foleykit
version), so an edited file or another protocol never hits a stale entry. In-memory inputs are never
cached. Location: ``$FOLEYKIT_HOME/cache/eval`` (``evaluate(cache=False)`` / ``--no-cache`` disables it).
Writes are atomic; an unreadable entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$FOLEYKIT_HOME/cache/eval``."""
    from foleykit.paths import foleykit_home

    return foleykit_home() / "cache" / "eval"


def cache_key(kind: str, path: Path, params: Any) -> str:
    """Hex key of (kind, file identity, parameters, foleykit version)."""
    import foleykit

    st = path.stat()
    ident = [kind, str(path.resolve()), st.st_size, st.st_mtime_ns, params, foleykit.__version__]
    return hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def cached(
    cache_dir: str | None, kind: str, src: Any, params: Any, compute: Callable[[], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], bool]:
    """``compute()`` through the cache when ``src`` is a file and caching is on.

    Args:
        cache_dir: Cache folder, or None to disable.
        kind: Entry family (e.g. ``"video_peaks"``, ``"embedding"``).
        src: The input the value derives from (only ``Path`` inputs are cached).
        params: JSON-serialisable parameters of the computation.
        compute: Returns a dict of numpy arrays.

    Returns:
        (value, whether it came from the cache).
    """
    if cache_dir is None or not isinstance(src, Path):
        return compute(), False
    from foleykit.utils.io import atomic_path

    entry = Path(cache_dir) / f"{kind}-{cache_key(kind, src, params)}.npz"
    if entry.is_file():
        try:
            with np.load(entry, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}, True
        except (OSError, ValueError) as err:  # truncated / foreign file: recompute
            log.warning("evaluation cache: ignoring unreadable %s (%s)", entry, err)
    value = compute()
    try:
        with atomic_path(entry) as tmp, open(tmp, "wb") as f:
            np.savez(f, **value)
    except OSError as err:  # read-only home, full disk: the cache is an optimisation only
        log.warning("evaluation cache: cannot write %s (%s)", entry, err)
    return value, False
