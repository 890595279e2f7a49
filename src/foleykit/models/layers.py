"""Small primitives shared by the generative models: conditions, zero-init, resampling, parameter counts.

Everything here is backbone-agnostic: the UNet and DiT denoisers, the control adapters and the pipeline all
speak in terms of :class:`Conditions` (cross-attention tokens c = [text; video; audio], STA-V2A eq. 5, plus
global / duration conditioning) and of latent-grid control features.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Conditions:
    """Everything a denoiser is conditioned on, batched.

    Attributes:
        tokens: Cross-attention tokens ``Tensor[B x L x D]`` (c = [text; video; audio], STA-V2A eq. 5), or
            None.
        mask: ``BoolTensor[B x L]``, True where a token is valid; None means all valid.
        global_embed: A pooled embedding ``Tensor[B x D_g]`` used as FiLM / class conditioning (AudioLDM feeds
            the CLAP embedding through ``class_labels``), or None.
        seconds_start: ``Tensor[B]`` start of the window in seconds (Stable Audio Open timing conditioning).
        seconds_total: ``Tensor[B]`` total duration in seconds (Stable Audio Open timing conditioning).
    """

    tokens: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    global_embed: torch.Tensor | None = None
    seconds_start: torch.Tensor | None = None
    seconds_total: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        for v in (self.tokens, self.global_embed, self.seconds_start, self.seconds_total):
            if v is not None:
                return int(v.shape[0])
        raise ValueError("Conditions is empty: cannot infer the batch size")

    def map(self, fn) -> Conditions:
        """Apply ``fn`` to every tensor field (None stays None)."""
        return Conditions(
            **{
                f.name: (None if (v := getattr(self, f.name)) is None else fn(v))
                for f in dataclasses.fields(self)
            }
        )

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Conditions:
        """Move to a device; floating tensors (not masks) are cast to ``dtype`` when given."""

        def mv(v: torch.Tensor) -> torch.Tensor:
            if dtype is not None and v.is_floating_point():
                return v.to(device=device, dtype=dtype)
            return v.to(device=device)

        return self.map(mv)

    def repeat(self, n: int) -> Conditions:
        """Repeat the batch ``n`` times (``[a, b] -> [a, b, a, b]`` for n = 2)."""
        return self.map(lambda v: torch.cat([v] * n, dim=0))

    @staticmethod
    def cat(items: list[Conditions]) -> Conditions:
        """Concatenate along the batch; token sequences of different lengths are right-padded (mask False)."""
        out: dict[str, torch.Tensor | None] = {}
        with_tokens = [c for c in items if c.tokens is not None]
        if with_tokens and len(with_tokens) != len(items):
            raise ValueError("cannot concatenate Conditions with and without tokens")
        if with_tokens:
            length = max(c.tokens.shape[1] for c in items)
            toks, masks = [], []
            for c in items:
                b, n, _ = c.tokens.shape
                m = (
                    c.mask
                    if c.mask is not None
                    else torch.ones(b, n, dtype=torch.bool, device=c.tokens.device)
                )
                toks.append(F.pad(c.tokens, (0, 0, 0, length - n)))
                masks.append(F.pad(m, (0, length - n), value=False))
            out["tokens"] = torch.cat(toks, 0)
            out["mask"] = torch.cat(masks, 0)
        for name in ("global_embed", "seconds_start", "seconds_total"):
            vals = [getattr(c, name) for c in items]
            if all(v is None for v in vals):
                out[name] = None
            elif any(v is None for v in vals):
                raise ValueError(f"cannot concatenate Conditions where only some have {name}")
            else:
                out[name] = torch.cat(vals, 0)
        return Conditions(**out)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero every parameter of ``module`` in place and return it (ControlNet "zero convolution")."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (works on meta-device modules: no memory is touched)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def resample_series(series: torch.Tensor, num_frames: int, *, mode: str = "linear") -> torch.Tensor:
    """Resample a batch of time series to ``num_frames`` frames (same start and end time).

    Args:
        series: ``Tensor[B x T]`` or ``Tensor[B x T x D]`` (time on dim 1).
        num_frames: Output length.
        mode: "linear" or "nearest" (ReWaS resizes energy with nearest neighbours).

    Returns:
        ``Tensor[B x num_frames]`` or ``Tensor[B x num_frames x D]``.
    """
    if series.ndim not in (2, 3):
        raise ValueError(f"series must be B x T or B x T x D, got shape {tuple(series.shape)}")
    squeeze = series.ndim == 2
    x = series.unsqueeze(1) if squeeze else series.transpose(1, 2)  # (B, D, T)
    if x.shape[-1] == num_frames:
        y = x
    elif mode == "nearest":
        y = F.interpolate(x.float(), size=num_frames, mode="nearest").to(x.dtype)
    else:
        y = F.interpolate(x.float(), size=num_frames, mode="linear", align_corners=False).to(x.dtype)
    return y.squeeze(1) if squeeze else y.transpose(1, 2)


def series_to_latent_grid(
    series: torch.Tensor, *, num_latent_frames: int, frames_per_latent: int
) -> torch.Tensor:
    """Fold a 1-D series onto the latent grid: ``Tensor[B x T] -> Tensor[B x num_latent_frames x k]``.

    The series is first resampled to ``num_latent_frames * k`` frames (exactly the identity when it is already
    at k frames per latent frame, e.g. the 125 Hz RMS envelope on the 25 Hz latent grid, k = 5), then each
    latent frame receives its k consecutive values.
    """
    k = int(frames_per_latent)
    x = resample_series(series, num_latent_frames * k)
    return x.reshape(x.shape[0], num_latent_frames, k)


def timestep_tensor(timestep: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    """A ``Tensor[B]`` of timesteps from a scalar, 0-d or 1-d input."""
    t = torch.as_tensor(timestep, device=device)
    if t.ndim == 0:
        t = t[None]
    return t.expand(batch) if t.shape[0] == 1 else t
