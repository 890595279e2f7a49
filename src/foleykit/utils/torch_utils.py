"""Device selection and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from foleykit.errors import ConfigError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> cuda if available, else mps if available, else cpu. Explicit names are checked."""
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps was requested but MPS is not available")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU torch.Generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator("cpu").manual_seed(seed)
