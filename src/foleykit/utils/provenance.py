"""Where a measurement ran: the CPU and the versions of the libraries whose arithmetic shapes the result.

Generated sound, and so every metric of it, can differ between machines by more than the differences a
comparison decides: the sampler and the onset detector amplify tiny floating-point differences, and the
pretrained vision models' runtime (``ai-edge-litert``) picks its kernels by CPU. Evaluation reports therefore
record :func:`machine` so that two reports can be compared only when they ran on the same kind of machine.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions change the numbers (looked up in the installed metadata; nothing imported).
PACKAGES = ("foleykit", "torch", "numpy", "librosa", "ai-edge-litert", "diffusers", "transformers")

#: CPU features that change which kernels run.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> tuple[str, list[str]]:
    """``(model name, the CPU_FLAGS it has)`` from ``cpuinfo`` (Linux), else what ``platform`` says."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), []
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not name:
            name = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return name or platform.processor() or platform.machine(), [f for f in CPU_FLAGS if f in flags]


def machine() -> dict[str, Any]:
    """The CPU (model, relevant flags, count), the OS and Python, and the :data:`PACKAGES` versions
    (None when one is not installed)."""
    name, flags = cpu_model()
    versions: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "cpu": name,
        "cpu_flags": flags,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def describe(info: dict[str, Any]) -> str:
    """One line for a report's header: ``cpu (flags), N cores; torch X, ai-edge-litert Y``."""
    v = info["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("torch", "ai-edge-litert") if v.get(k))
    flags = f" ({' '.join(info['cpu_flags'])})" if info["cpu_flags"] else ""
    return f"{info['cpu']}{flags}, {info['cpu_count']} cores; {libs}"
