"""Loading models for the product commands: device choice, an in-process model cache, model identity,
condition caching across windows, and sharding a work list across processes (torchrun / accelerate)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from foleykit.errors import ConfigError

T = TypeVar("T")
DEVICES = ("auto", "cpu", "cuda", "mps")

_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()


def resolve_device(name: str | None = "auto", *, env: dict[str, str] | None = None) -> str:
    """``auto`` -> ``cuda[:LOCAL_RANK]`` if available, else ``mps`` if available, else ``cpu``.

    Raises:
        ConfigError: an unknown device, or one that is not available on this machine.
    """
    import torch

    env = os.environ if env is None else env
    name = (name or "auto").lower()
    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}")
    has_cuda = torch.cuda.is_available()
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if has_cuda else "mps" if has_mps else "cpu"
    if name == "cuda":
        if not has_cuda:
            raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu (or auto)")
        local = env.get("LOCAL_RANK")
        return f"cuda:{int(local)}" if local and local.isdigit() else "cuda"
    if name == "mps" and not has_mps:
        raise ConfigError("--device mps: Apple's MPS backend is not available here; use --device cpu (or auto)")
    return name


def load_model(model: str | os.PathLike | None = None, *, device: str = "cpu"):
    """Load a ``VideoToAudioPipeline`` (a folder or a name, see ``foleykit.paths.resolve_model``), cached.

    The same model and device in one process (batch runs, the web app, tests) are loaded once.

    Raises:
        WeightsNotFoundError: unknown model name / missing folder (nothing is downloaded).
    """
    from foleykit.paths import resolve_model

    folder = resolve_model(model, expect="model_index.json").resolve()
    key = (str(folder), str(device))
    with _CACHE_LOCK:
        if key not in _CACHE:
            import foleykit.encoders
            import foleykit.models.predictors  # noqa: F401  (registers the timing predictors)
            from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

            with _quiet_loading():
                pipe = VideoToAudioPipeline.from_pretrained(folder, device=device)
            pipe.model_info = model_identity(model, folder)
            _CACHE[key] = pipe
        return _CACHE[key]


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence the libraries' per-component progress bars and dtype notices while a model folder loads."""
    import logging

    loggers = [logging.getLogger(n) for n in ("diffusers", "transformers")]
    levels = [lg.level for lg in loggers]
    try:
        from transformers.utils import logging as tlog

        bars = tlog.is_progress_bar_enabled()
        tlog.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        tlog, bars = None, False
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if tlog is not None and bars:
            tlog.enable_progress_bar()


def clear_model_cache() -> None:
    """Forget every cached model (frees their memory once nothing else refers to them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def model_identity(model: str | os.PathLike | None, folder: Path) -> dict[str, Any]:
    """What identifies a model in a sidecar: the name given, the folder, its recipe, the foleykit version it
    was saved with, and the SHA-256 of its ``model_index.json`` and weight files (first 16 hex digits)."""
    from foleykit.paths import DEFAULT_MODEL

    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    fk = index.get("_foleykit", {})
    digest = hashlib.sha256(index_path.read_bytes())
    for f in sorted(folder.rglob("*.safetensors")):
        digest.update(f.relative_to(folder).as_posix().encode())
        digest.update(str(f.stat().st_size).encode())
        with open(f, "rb") as fh:
            digest.update(fh.read(1 << 20))
    recipe = fk.get("recipe") or {}
    return {
        "name": str(model) if model is not None else DEFAULT_MODEL,
        "path": str(folder),
        "recipe": recipe.get("name"),
        "size": recipe.get("size"),
        "saved_with_foleykit": index.get("_foleykit_version"),
        "fingerprint": digest.hexdigest()[:16],
    }


class _MemoEncoder:
    """Wraps a text / reference-audio encoder so that an identical input is encoded once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.memo: dict[Any, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, items: list[Any], *args: Any) -> Any:
        key = tuple(x if isinstance(x, str) else ("array", id(x)) for x in items) + args
        if key not in self.memo:
            self.memo[key] = self.inner.encode(items, *args)
        return self.memo[key]


@contextlib.contextmanager
def conditions_encoded_once(pipe: Any) -> Iterator[None]:
    """Within the block, the pipeline's text and reference-audio encoders run once per distinct input:
    every window of a long video shares the very same prompt and timbre tokens."""
    saved = {n: getattr(pipe, n) for n in ("text_encoder", "audio_encoder")}
    try:
        for n, enc in saved.items():
            if enc is not None:
                setattr(pipe, n, _MemoEncoder(enc))
        yield
    finally:
        for n, enc in saved.items():
            setattr(pipe, n, enc)


# --- sharding ---------------------------------------------------------------------------------------------
def shard_info(env: dict[str, str] | None = None) -> tuple[int, int]:
    """``(rank, world_size)`` of this process under ``torchrun`` / ``accelerate launch`` (both set RANK and
    WORLD_SIZE), else ``(0, 1)``.

    Raises:
        ConfigError: malformed values (e.g. RANK >= WORLD_SIZE).
    """
    env = os.environ if env is None else env
    raw_rank, raw_world = env.get("RANK"), env.get("WORLD_SIZE")
    if raw_world is None:
        return 0, 1
    try:
        rank, world = int(raw_rank or 0), int(raw_world)
    except ValueError:
        raise ConfigError(f"RANK={raw_rank!r} / WORLD_SIZE={raw_world!r} must be whole numbers") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} / WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE")
    return rank, world


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """This process's share of ``items``: every ``world_size``-th item from ``rank`` (round robin, so long and
    short files spread evenly). The shards of all ranks partition the list."""
    return list(items[rank::world_size])
