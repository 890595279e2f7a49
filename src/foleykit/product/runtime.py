"""Loading models for the product commands: device choice, CPU thread count, an in-process model cache, model
identity, and sharding a work list across processes (torchrun / accelerate). (Conditions are encoded once
per run by the pipeline itself: ``foleykit.pipelines.cache.ConditionCache``.)"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from foleykit.errors import ConfigError

T = TypeVar("T")
DEVICES = ("auto", "cpu", "cuda", "mps")

_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()
#: Environment variable fixing the number of CPU threads of the product commands.
THREADS_ENV = "FOLEYKIT_NUM_THREADS"
#: Thread count of the process before :func:`configure_threads` first changed it.
_BASE_THREADS: list[int] = []


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
        raise ConfigError(
            "--device mps: Apple's MPS backend is not available here; use --device cpu (or auto)"
        )
    return name


def busy_cpus(*, interval: float = 0.05, stat_path: str = "/proc/stat") -> float | None:
    """How many CPUs other work keeps busy right now: the non-idle share of all CPUs over ``interval`` seconds
    (Linux ``/proc/stat``; this process sleeps meanwhile, so it is not counted), else the 1-minute load
    average, else None."""

    def sample() -> tuple[int, int]:
        with open(stat_path, encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
        ncpu = os.cpu_count() or 1
        if total1 > total0:
            return ncpu * (1.0 - (idle1 - idle0) / (total1 - total0))
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


def choose_num_threads(cores: int, busy: float | None, *, env: dict[str, str] | None = None) -> int:
    """CPU threads for torch: ``$FOLEYKIT_NUM_THREADS`` when set, else ``cores`` on an idle machine and fewer
    when other work keeps CPUs busy.

    On a shared machine torch's OpenMP threads wait for each other at every operation; when one of them is
    descheduled the whole step stalls (measured on 2 cores with 2 other busy processes: 5.9 s per denoising
    step with 2 threads, 0.25 s with 1; 0.12 s with 2 threads when idle; docs/speed.md). So each CPU kept
    more than a quarter busy by other work costs one thread.

    Raises:
        ConfigError: a malformed ``$FOLEYKIT_NUM_THREADS``.
    """
    env = os.environ if env is None else env
    raw = env.get(THREADS_ENV)
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"{THREADS_ENV}={raw!r}: expected a whole number >= 1")
        return n
    cores = max(1, int(cores))
    if busy is None:
        return cores
    return max(1, min(cores, int(cores - float(busy) + 0.25)))


def configure_threads(*, env: dict[str, str] | None = None, busy: float | None = None) -> int:
    """Set torch's (and OpenCV's) CPU thread count for a generation: :func:`choose_num_threads` over the
    thread count the process started with (never more). ``OMP_NUM_THREADS`` set by the user is respected.

    Args:
        env: Environment (default ``os.environ``).
        busy: Busy CPUs (default: measured with :func:`busy_cpus`).

    Returns:
        The thread count now in use.
    """
    import torch

    env = os.environ if env is None else env
    if not _BASE_THREADS:
        _BASE_THREADS.append(torch.get_num_threads())
    base = _BASE_THREADS[0]
    if env.get("OMP_NUM_THREADS") and not env.get(THREADS_ENV):
        return torch.get_num_threads()
    if env.get(THREADS_ENV):
        n = choose_num_threads(base, None, env=env)
    else:
        n = choose_num_threads(base, busy_cpus() if busy is None else busy, env=env)
    set_threads(n)
    return n


def set_threads(n: int) -> None:
    """Set torch's and OpenCV's CPU thread counts of this process to ``n``."""
    import torch

    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:  # pragma: no cover - opencv is a dependency
        pass


def load_model(
    model: str | os.PathLike | None = None, *, device: str = "cpu", recipe: str | os.PathLike | None = None
):
    """Load a ``VideoToAudioPipeline`` (a folder or a name, see ``foleykit.paths.resolve_model``), cached.

    A published AudioLDM / Stable Audio Open folder (diffusers layout) runs through a recipe
    (``foleykit.pipelines.published.load_published``; ``recipe``: default the backbone's); its
    ``model_info["note"]`` says what is not trained. The same model, recipe and device in one process (batch
    runs, the web app, tests) are loaded once. Process settings (CPU threads, the exit-time gc freeze) are
    the caller's: the CLI applies them (``foleykit.cli._args.apply_process_options``).

    Raises:
        WeightsNotFoundError: unknown model name / missing folder (nothing is downloaded).
        ConfigError: ``recipe`` given for a foleykit model folder of another recipe.
    """
    from foleykit.paths import resolve_model
    from foleykit.pipelines.published import family_of

    folder = resolve_model(model, expect="model_index.json").resolve()
    published = family_of(folder) is not None
    key = (str(folder), str(device), str(recipe) if published and recipe else "")
    with _CACHE_LOCK:
        if key not in _CACHE:
            import foleykit.encoders
            import foleykit.models.predictors  # noqa: F401  (registers the timing predictors)
            from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

            with _quiet_loading():
                if published:
                    from foleykit.pipelines.published import load_published

                    pipe = load_published(folder, recipe=recipe, device=device)
                    pipe.model_info["name"] = str(model)
                else:
                    pipe = VideoToAudioPipeline.from_pretrained(folder, device=device)
                    pipe.model_info = model_identity(model, folder)
            apply_inference_env(pipe)
            _CACHE[key] = pipe
        pipe = _CACHE[key]
    if recipe and not published and Path(str(recipe)).stem != pipe.model_info.get("recipe"):
        raise ConfigError(
            f"--recipe {recipe}: {folder} is a foleykit model of recipe {pipe.model_info.get('recipe')!r}; "
            "--recipe chooses how a published backbone folder (AudioLDM, Stable Audio Open) is run"
        )
    return pipe


_EXIT_HOOK: list[bool] = []


def freeze_gc_at_exit() -> None:
    """At interpreter exit, freeze the garbage collector first: the final collections over the million objects
    torch, diffusers and transformers create cost ~1 s of every command's exit (measured 1.2-1.3 s -> 0.18 s
    on 2 busy cores); the operating system takes the memory back anyway. Explicit finalizers (temporary
    files, ``weakref.finalize``) still run."""
    if not _EXIT_HOOK:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _EXIT_HOOK.append(True)


@contextlib.contextmanager
def gc_paused_while_loading() -> Iterator[None]:
    """The cyclic garbage collector off while the libraries import and a model loads, then the objects that
    survived frozen (``gc.freeze``: later collections skip them) and the collector back on. Importing torch,
    diffusers and transformers creates about a million long-lived objects and almost no garbage, and the
    collections triggered along the way cost a command ~1 s (docs/speed.md)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


#: Environment variables of the inference options (docs/speed.md).
PRECISION_ENV, COMPILE_ENV = "FOLEYKIT_PRECISION", "FOLEYKIT_COMPILE"


def apply_inference_env(pipe: Any, *, env: dict[str, str] | None = None) -> Any:
    """``pipe.set_inference_options`` from ``$FOLEYKIT_PRECISION`` (``auto`` by default: bf16 / fp16 autocast
    on CUDA, float32 elsewhere) and ``$FOLEYKIT_COMPILE`` (``1``: ``torch.compile`` the denoiser).

    Raises:
        ConfigError: an unknown precision or a malformed compile flag.
    """
    env = os.environ if env is None else env
    precision = (env.get(PRECISION_ENV) or "auto").strip().lower()
    flag = (env.get(COMPILE_ENV) or "0").strip().lower()
    if flag not in ("0", "1", "true", "false", "yes", "no", ""):
        raise ConfigError(f"{COMPILE_ENV}={flag!r}: use 1 or 0")
    return pipe.set_inference_options(precision=precision, compile=flag in ("1", "true", "yes"))


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
