"""Warm start: a freshly built recipe pipeline takes every weight of an earlier model folder that still fits.

A new release often changes one part (e.g. the video encoder, hence the RMS-Mapper's and the video pooling's
input size) and keeps the rest (VAE, vocoder, DiT, ControlNet). ``foleykit train --warm-start MODEL`` builds
the recipe's pipeline as usual, then copies, component by component, each tensor of ``MODEL`` whose name and
shape match; the rest keeps its fresh initialisation. What was copied and what was not is reported, so a
run says exactly where it started from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch

from foleykit.errors import ConfigError


@dataclass
class ComponentTransfer:
    """What one component took from the earlier model."""

    copied: int = 0  # tensors copied
    total: int = 0  # tensors of the new component
    skipped: list[str] = field(default_factory=list)  # names present in both with different shapes
    config: dict[str, float] = field(default_factory=dict)  # config values taken along with the weights

    @property
    def status(self) -> str:
        if self.total and self.copied == self.total:
            return "all"
        return "none" if self.copied == 0 else "partial"


def transfer_weights(pipe: Any, source: Any) -> dict[str, ComponentTransfer]:
    """Copy into ``pipe`` every tensor of ``source`` (both ``VideoToAudioPipeline``s) whose component, name
    and shape match; dtypes are converted to the destination's (an fp16 release warm-starts an fp32 run).

    Returns:
        Component name -> :class:`ComponentTransfer`, for every component of ``pipe`` with tensors.
    """
    src = source.components()
    report: dict[str, ComponentTransfer] = {}
    for name, module in pipe.components().items():
        state = module.state_dict()
        if not state:
            continue
        rep = report.setdefault(name, ComponentTransfer(total=len(state)))
        other = src.get(name)
        if other is None:
            continue
        theirs = other.state_dict()
        update = {}
        for key, value in state.items():
            if key not in theirs:
                continue
            if tuple(theirs[key].shape) != tuple(value.shape):
                rep.skipped.append(key)
                continue
            update[key] = theirs[key].to(value.dtype)
        if update:
            with torch.no_grad():
                for key, value in update.items():
                    state[key].copy_(value)
        rep.copied = len(update)
    _latent_scale(pipe, source, report)
    return report


def _latent_scale(pipe: Any, source: Any, report: dict[str, ComponentTransfer]) -> None:
    """A VAE taken whole keeps its latent ``scaling_factor`` (a property of its encoder, measured on the data
    by ``foleykit train merge`` / ``cache``): without it the diffusion model would see latents of another scale."""
    if report.get("vae") is None or report["vae"].status != "all":
        return
    dst = getattr(getattr(pipe, "codec", None), "vae", None)
    src = getattr(getattr(source, "codec", None), "vae", None)
    if dst is None or src is None or "scaling_factor" not in getattr(src, "config", {}):
        return
    dst.register_to_config(scaling_factor=float(src.config.scaling_factor))
    report["vae"].config["scaling_factor"] = float(src.config.scaling_factor)


def warm_start(pipe: Any, folder: str | os.PathLike, say: Any = None) -> dict[str, ComponentTransfer]:
    """Load the model folder and :func:`transfer_weights` from it; one progress line per component.

    Raises:
        ConfigError: nothing at all could be copied (not an earlier model of this recipe).
    """
    from foleykit.training.export import load

    say = say or (lambda line: None)
    report = transfer_weights(pipe, load(folder))
    if not any(r.copied for r in report.values()):
        raise ConfigError(f"--warm-start {folder}: no weight of that model fits this recipe's pipeline")
    for name, r in report.items():
        extra = f" (shapes changed: {', '.join(r.skipped[:3])}{'...' if len(r.skipped) > 3 else ''})"
        taken = "".join(f", {k} {v:.4f}" for k, v in r.config.items())
        say(f"[warm-start] {name}: {r.copied}/{r.total} tensors{extra if r.skipped else ''}{taken}")
    return report
