"""Exponential moving average of the trainable weights.

Same update rule as diffusers' ``EMAModel`` (decay ramp ``min(decay, (1 + n) / (10 + n))``), but the
shadow weights are kept by parameter *name*, so that they save to safetensors and export as a component's
weights directly, and so that ``state_dict`` round-trips exactly (bit-identical resume).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class EMA:
    """Shadow copy of a module's trainable parameters, updated after each optimizer step.

    Args:
        module: The (unwrapped) module whose ``requires_grad`` parameters are tracked.
        decay: Target decay in [0, 1). 0 disables averaging (the shadow equals the weights).
        warmup: Ramp the decay as ``(1 + n) / (10 + n)`` for the first updates.
    """

    def __init__(self, module: nn.Module, *, decay: float, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().clone().float() for name, p in module.named_parameters() if p.requires_grad
        }

    def current_decay(self) -> float:
        """Decay used by the next update."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """shadow <- d * shadow + (1 - d) * weights, for every tracked parameter."""
        d = self.current_decay()
        for name, p in module.named_parameters():
            if name in self.shadow:
                s = self.shadow[name]
                if s.device != p.device:
                    self.shadow[name] = s = s.to(p.device)
                s.lerp_(p.detach().float(), 1.0 - d)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Write the shadow weights into ``module`` (in place)."""
        for name, p in module.named_parameters():
            if name in self.shadow:
                p.copy_(self.shadow[name].to(device=p.device, dtype=p.dtype))

    @contextlib.contextmanager
    def applied(self, module: nn.Module) -> Iterator[nn.Module]:
        """Temporarily swap the shadow weights into ``module`` (restored on exit, even on error)."""
        backup = {n: p.detach().clone() for n, p in module.named_parameters() if n in self.shadow}
        self.copy_to(module)
        try:
            yield module
        finally:
            with torch.no_grad():
                for n, p in module.named_parameters():
                    if n in backup:
                        p.copy_(backup[n])

    def state_dict(self) -> dict:
        return {
            "decay": self.decay,
            "warmup": self.warmup,
            "num_updates": self.num_updates,
            "shadow": {k: v.detach().cpu().clone() for k, v in self.shadow.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.shadow) - set(state["shadow"])
        extra = set(state["shadow"]) - set(self.shadow)
        if missing or extra:
            raise ValueError(
                f"EMA state does not match the model (missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(extra)[:5]})"
            )
        self.decay = float(state["decay"])
        self.warmup = bool(state["warmup"])
        self.num_updates = int(state["num_updates"])
        for k, v in state["shadow"].items():
            self.shadow[k] = v.to(self.shadow[k].device).clone()
