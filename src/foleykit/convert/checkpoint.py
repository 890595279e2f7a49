"""Reading released checkpoints safely, and the small state-dict helpers the converters share.

Released ``.ckpt`` / ``.pt`` / ``.pth`` / ``.bin`` files are Python pickles: loading one may run code. They are
read with ``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers; a file that
needs more (a pickled config object, numpy scalars, a Lightning callback state...) is refused unless the
user passes ``trust_pickle=True`` (``--trust-pickle`` on the command line) for a file they trust.
``.safetensors`` files never need it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from foleykit.errors import ModelError, WeightsNotFoundError

#: Keys under which training frameworks nest the state dict (Lightning, Synchformer, plain trainers).
NESTED_KEYS = ("state_dict", "model", "module", "generator")


def numpy_data_globals() -> list[Any]:
    """The numpy globals a plain-data pickle needs (arrays, dtypes, scalars), allowed in the restricted
    unpickler: they rebuild data and call nothing else (published PANNs / VGGish files store numpy arrays)."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    allowed += [
        type(np.dtype(t)) for t in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?")
    ]
    return allowed


def load_checkpoint(path: str | os.PathLike, *, trust_pickle: bool = False, what: str = "checkpoint") -> Any:
    """Load a released checkpoint (safetensors, or a pickle restricted to tensors and containers).

    Args:
        path: The file.
        trust_pickle: Allow a full unpickling when the restricted loader refuses the file (it may execute
            code from the file: only for files from a source you trust).
        what: Human name for messages ("ReWaS checkpoint").

    Raises:
        WeightsNotFoundError: the file does not exist.
        ModelError: the file cannot be read, or needs a full unpickling and ``trust_pickle`` is false.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsNotFoundError(f"{what}: {p} does not exist")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        with torch.serialization.safe_globals(numpy_data_globals()):
            return torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure of the restricted unpickler
        if "unsupported global" not in str(err).lower():  # corrupt, or not a pickle: not a trust question
            raise ModelError(f"{what}: cannot read {p}: {type(err).__name__}: {str(err)[:200]}") from None
        if not trust_pickle:
            raise ModelError(
                f"{what}: {p} is a pickle that holds more than tensors ({type(err).__name__}: "
                f"{str(err).splitlines()[0][:200]}). Loading it fully can run code stored in the file; if you "
                "trust its source, pass --trust-pickle (trust_pickle=True)."
            ) from None
    try:
        return torch.load(str(p), map_location="cpu", weights_only=False)
    except Exception as err:
        raise ModelError(f"{what}: cannot read {p}: {type(err).__name__}: {err}") from err


def state_dict_of(obj: Any, *, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensor mapping inside a loaded checkpoint (unwrapping ``state_dict`` / ``model`` / ``module``).

    Non-tensor entries (step counters, optimizer states stored beside the weights) are dropped; a
    DataParallel ``module.`` prefix on every key is removed.
    """
    while isinstance(obj, Mapping):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        nested = [k for k in NESTED_KEYS if isinstance(obj.get(k), Mapping)]
        if tensors and (len(tensors) >= len(obj) / 2 or not nested):
            return strip_prefix(tensors, "module.", all_keys=True)
        if not nested:
            break
        obj = obj[nested[0]]
    raise ModelError(f"{what}: no tensors found (expected a state dict, or one under 'state_dict' / 'model')")


def strip_prefix(
    sd: Mapping[str, torch.Tensor], prefix: str, *, all_keys: bool = False
) -> dict[str, torch.Tensor]:
    """Keys under ``prefix`` with the prefix removed (``all_keys``: strip only when every key has it)."""
    if all_keys:
        if sd and all(k.startswith(prefix) for k in sd):
            return {k[len(prefix) :]: v for k, v in sd.items()}
        return dict(sd)
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def load_exact(module: torch.nn.Module, sd: Mapping[str, torch.Tensor], *, what: str) -> None:
    """``load_state_dict`` that names what is missing / unexpected / mis-shaped (converted weights must fit)."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in sd and sd[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise ModelError(
            f"{what}: the converted weights do not fit the model (missing {len(missing)}: {missing[:4]}; "
            f"unexpected {len(unexpected)}: {unexpected[:4]}; shape mismatches: {shapes[:3]}). Is it the right "
            "file?"
        )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=True)


def require_keys(sd: Mapping[str, Any], prefix: str, *, what: str, hint: str) -> None:
    """Raise a :class:`ModelError` naming ``hint`` when no key starts with ``prefix``."""
    if not any(k.startswith(prefix) for k in sd):
        raise ModelError(f"{what}: no weights under {prefix!r}. {hint}")
