"""Discriminators for adversarial training of the vocoder and the mel autoencoder.

- :class:`MultiPeriodDiscriminator` (HiFi-GAN, Kong et al. 2020, sec. 2.2): one 2-D convolutional
  sub-discriminator per period ``p``; the waveform is reflect-padded to a multiple of ``p`` and folded into
  a ``T / p x p`` image, so each sub-discriminator sees the samples that are ``p`` apart (periodic
  structure). Strided ``k x 1`` convolutions, leaky ReLU, weight normalisation.
- :class:`MultiScaleDiscriminator` (HiFi-GAN sec. 2.3, MelGAN's layout): the same 1-D stack of strided and
  grouped convolutions on the raw waveform and on 2x and 4x average-pooled copies; spectral normalisation
  on the raw-scale discriminator, weight normalisation on the others.
- :class:`HifiganDiscriminator`: both, as one module (the set HiFi-GAN trains against).
- :class:`PatchDiscriminator`: a PatchGAN on log-mel images (LDM-style autoencoder GAN).

Sizes come from a config dict (:data:`HIFIGAN_DISCRIMINATORS`, the paper's; :data:`DEBUG_DISCRIMINATORS`,
its twin for tests) whose ``width`` multiplies every channel count, so that a CPU run can afford the
paper's structure (5 periods, 3 scales, the same depths and kernels) at a fraction of its width.

Every sub-discriminator returns ``(logits Tensor[B x N], feature maps)``; the feature maps (every layer's
activations, the logits map last) feed HiFi-GAN's feature-matching loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from foleykit.errors import ConfigError

#: The paper's discriminators (HiFi-GAN V1-V3 share them): about 41 M (MPD) + 29.6 M (MSD) parameters.
HIFIGAN_DISCRIMINATORS: dict[str, Any] = {
    "periods": [2, 3, 5, 7, 11],
    "period_channels": [32, 128, 512, 1024, 1024],
    "period_kernel": 5,
    "period_stride": 3,
    "scales": 3,
    "scale_channels": [128, 128, 256, 512, 1024, 1024, 1024],
    "scale_kernels": [15, 41, 41, 41, 41, 41, 5],
    "scale_strides": [1, 2, 2, 4, 4, 1, 1],
    "scale_groups": [1, 4, 16, 16, 16, 16, 1],
    "width": 1.0,
    "leaky_slope": 0.1,
}
#: Debug twin: the same periods, scales, depths and strides; a few thousand parameters.
DEBUG_DISCRIMINATORS: dict[str, Any] = dict(
    HIFIGAN_DISCRIMINATORS,
    period_channels=[2, 4, 8, 8, 8],
    scale_channels=[4, 4, 8, 8, 8, 8, 8],
    scale_kernels=[5, 11, 11, 11, 11, 11, 5],
    scale_groups=[1, 2, 4, 4, 4, 4, 1],
)
PRESETS: dict[str, dict[str, Any]] = {"hifigan": HIFIGAN_DISCRIMINATORS, "debug": DEBUG_DISCRIMINATORS}


class DiscriminatorOutput(NamedTuple):
    """One sub-discriminator's verdict.

    Attributes:
        logits: ``Tensor[B x N]`` (one least-squares score per output position).
        features: Activations of every layer (the logits map last), for feature matching.
    """

    logits: Tensor
    features: list[Tensor]


def _norm(spectral: bool):
    return nn.utils.parametrizations.spectral_norm if spectral else nn.utils.parametrizations.weight_norm


def scaled_channels(
    channels: Sequence[int], width: float, multiples: Sequence[int] | None = None
) -> list[int]:
    """``channels`` x ``width``, each rounded to a positive multiple of ``multiples[i]`` (default 1)."""
    mult = list(multiples) if multiples is not None else [1] * len(channels)
    return [max(m, round(c * width / m) * m) for c, m in zip(channels, mult)]


class PeriodDiscriminator(nn.Module):
    """One MPD sub-discriminator: fold ``Tensor[B x T]`` into ``B x 1 x ceil(T / p) x p``, then strided
    ``kernel x 1`` convolutions (the last hidden one unstrided) and a ``3 x 1`` output conv.

    Args:
        period: The period ``p``.
        channels: Output channels of the hidden convolutions (stride ``stride`` on all but the last).
        kernel: Kernel height.
        stride: Stride of the strided layers.
        leaky_slope: Leaky ReLU slope.
        spectral: Spectral instead of weight normalisation.
    """

    def __init__(
        self,
        period: int,
        *,
        channels: Sequence[int],
        kernel: int = 5,
        stride: int = 3,
        leaky_slope: float = 0.1,
        spectral: bool = False,
    ) -> None:
        super().__init__()
        self.period = int(period)
        self.leaky_slope = float(leaky_slope)
        norm = _norm(spectral)
        chans = [1, *channels]
        strides = [stride] * (len(channels) - 1) + [1]
        self.convs = nn.ModuleList(
            norm(nn.Conv2d(a, b, (kernel, 1), (s, 1), padding=(kernel // 2, 0)))
            for a, b, s in zip(chans[:-1], chans[1:], strides)
        )
        self.post = norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        """``Tensor[B x T]`` -> logits ``Tensor[B x N]`` and feature maps ``Tensor[B x C x T' x p]``."""
        b, t = x.shape
        rest = -t % self.period
        if rest:
            x = F.pad(x[:, None], (0, rest), mode="reflect" if rest < t else "constant")[:, 0]
        h = x.view(b, 1, -1, self.period)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.leaky_slope)
            feats.append(h)
        h = self.post(h)
        feats.append(h)
        return DiscriminatorOutput(h.flatten(1), feats)


class ScaleDiscriminator(nn.Module):
    """One MSD sub-discriminator: 1-D convolutions (strided, grouped) and a kernel-3 output conv.

    Args:
        channels: Output channels per layer.
        kernels: Kernel size per layer (padding keeps ``ceil(T / stride)`` frames).
        strides: Stride per layer.
        groups: Groups per layer (in and out channels must divide by them).
        leaky_slope: Leaky ReLU slope.
        spectral: Spectral instead of weight normalisation (HiFi-GAN: on the raw-audio scale).
    """

    def __init__(
        self,
        *,
        channels: Sequence[int],
        kernels: Sequence[int],
        strides: Sequence[int],
        groups: Sequence[int],
        leaky_slope: float = 0.1,
        spectral: bool = False,
    ) -> None:
        super().__init__()
        if not len(channels) == len(kernels) == len(strides) == len(groups):
            raise ConfigError("scale discriminator: channels, kernels, strides and groups differ in length")
        self.leaky_slope = float(leaky_slope)
        norm = _norm(spectral)
        chans = [1, *channels]
        layers = []
        for a, c, k, s, g in zip(chans[:-1], chans[1:], kernels, strides, groups):
            if a % g or c % g:
                raise ConfigError(f"scale discriminator: {a} -> {c} channels do not divide into {g} groups")
            layers.append(norm(nn.Conv1d(a, c, k, s, padding=k // 2, groups=g)))
        self.convs = nn.ModuleList(layers)
        self.post = norm(nn.Conv1d(chans[-1], 1, 3, 1, padding=1))

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        """``Tensor[B x T]`` -> logits ``Tensor[B x N]`` and feature maps ``Tensor[B x C x T']``."""
        h = x[:, None]
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.leaky_slope)
            feats.append(h)
        h = self.post(h)
        feats.append(h)
        return DiscriminatorOutput(h.flatten(1), feats)


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN MPD: one :class:`PeriodDiscriminator` per period (prime periods avoid overlaps).

    Args:
        periods: The periods (paper: 2, 3, 5, 7, 11).
        channels: Hidden widths of every sub-discriminator.
        kernel: Kernel height.
        stride: Stride of the strided layers.
        leaky_slope: Leaky ReLU slope.
    """

    def __init__(
        self,
        *,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
        kernel: int = 5,
        stride: int = 3,
        leaky_slope: float = 0.1,
    ) -> None:
        super().__init__()
        if not periods or any(int(p) < 1 for p in periods):
            raise ConfigError(f"multi-period discriminator: periods must be >= 1, got {list(periods)}")
        self.discs = nn.ModuleList(
            PeriodDiscriminator(p, channels=channels, kernel=kernel, stride=stride, leaky_slope=leaky_slope)
            for p in periods
        )

    def forward(self, x: Tensor) -> list[DiscriminatorOutput]:
        """``Tensor[B x T]`` -> one output per period."""
        return [d(x) for d in self.discs]


class MultiScaleDiscriminator(nn.Module):
    """HiFi-GAN MSD: :class:`ScaleDiscriminator` on the waveform and on average-pooled copies.

    Scale ``i`` sees the waveform pooled ``i`` times by ``AvgPool1d(4, 2, padding=2)`` (2x each time); the
    first (raw) scale uses spectral normalisation, the others weight normalisation.

    Args:
        scales: Number of scales (paper: 3).
        channels, kernels, strides, groups: Layer sizes of every sub-discriminator.
        leaky_slope: Leaky ReLU slope.
    """

    def __init__(
        self,
        *,
        scales: int = 3,
        channels: Sequence[int] = (128, 128, 256, 512, 1024, 1024, 1024),
        kernels: Sequence[int] = (15, 41, 41, 41, 41, 41, 5),
        strides: Sequence[int] = (1, 2, 2, 4, 4, 1, 1),
        groups: Sequence[int] = (1, 4, 16, 16, 16, 16, 1),
        leaky_slope: float = 0.1,
    ) -> None:
        super().__init__()
        if int(scales) < 1:
            raise ConfigError(f"multi-scale discriminator: scales must be >= 1, got {scales}")
        self.discs = nn.ModuleList(
            ScaleDiscriminator(
                channels=channels,
                kernels=kernels,
                strides=strides,
                groups=groups,
                leaky_slope=leaky_slope,
                spectral=i == 0,
            )
            for i in range(int(scales))
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x: Tensor) -> list[DiscriminatorOutput]:
        """``Tensor[B x T]`` -> one output per scale (raw first)."""
        outs = []
        for i, d in enumerate(self.discs):
            if i:
                x = self.pool(x[:, None])[:, 0]
            outs.append(d(x))
        return outs


class HifiganDiscriminator(nn.Module):
    """HiFi-GAN's discriminator set: MPD followed by MSD, from a config dict.

    Args:
        config: Sizes (keys of :data:`HIFIGAN_DISCRIMINATORS`); missing keys take the paper's values.
            ``width`` multiplies every channel count (MSD widths are rounded to what their groups need).
            ``periods: []`` or ``scales: 0`` leaves that half out.

    Shapes:
        ``forward(x: Tensor[B x T]) -> list[DiscriminatorOutput]`` (periods first, then scales).
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        cfg = resolve_discriminator_config(config)
        self.config = cfg
        w = float(cfg["width"])
        self.mpd = (
            MultiPeriodDiscriminator(
                periods=cfg["periods"],
                channels=scaled_channels(cfg["period_channels"], w),
                kernel=int(cfg["period_kernel"]),
                stride=int(cfg["period_stride"]),
                leaky_slope=float(cfg["leaky_slope"]),
            )
            if cfg["periods"]
            else None
        )
        groups = [int(g) for g in cfg["scale_groups"]]
        # channels of layer i feed layer i + 1: a multiple of both layers' groups
        mult = [math.lcm(g, h) for g, h in zip(groups, [*groups[1:], 1])]
        self.msd = (
            MultiScaleDiscriminator(
                scales=int(cfg["scales"]),
                channels=scaled_channels(cfg["scale_channels"], w, mult),
                kernels=cfg["scale_kernels"],
                strides=cfg["scale_strides"],
                groups=groups,
                leaky_slope=float(cfg["leaky_slope"]),
            )
            if int(cfg["scales"]) > 0
            else None
        )

    def forward(self, x: Tensor) -> list[DiscriminatorOutput]:
        if x.dim() != 2:
            raise ValueError(f"discriminator input must be Tensor[B x T], got shape {tuple(x.shape)}")
        outs: list[DiscriminatorOutput] = []
        for part in (self.mpd, self.msd):
            if part is not None:
                outs += part(x)
        return outs


def resolve_discriminator_config(config: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A full discriminator config: ``preset`` (``hifigan`` | ``debug``, default hifigan) + given keys.

    Raises:
        ConfigError: unknown preset or keys, a non-positive width, nothing left to discriminate with.
    """
    given = {**(config or {}), **overrides}
    preset = given.pop("preset", "hifigan")
    if preset not in PRESETS:
        raise ConfigError(f"unknown discriminator preset {preset!r}; use one of {', '.join(PRESETS)}")
    cfg = dict(PRESETS[preset])
    unknown = sorted(set(given) - set(cfg))
    if unknown:
        raise ConfigError(f"unknown discriminator keys {unknown}; valid: {', '.join(sorted(cfg))}")
    cfg.update({k: v for k, v in given.items() if v is not None})
    if not float(cfg["width"]) > 0:
        raise ConfigError(f"discriminator width must be > 0, got {cfg['width']}")
    cfg["periods"] = [int(p) for p in cfg["periods"]]
    if not cfg["periods"] and int(cfg["scales"]) <= 0:
        raise ConfigError("discriminators: give at least one period or one scale")
    return cfg


def build_discriminators(preset: str = "hifigan", **overrides: Any) -> HifiganDiscriminator:
    """A :class:`HifiganDiscriminator` from a preset name and key overrides (e.g. ``width=0.125``)."""
    return HifiganDiscriminator(resolve_discriminator_config({"preset": preset}, **overrides))


class PatchDiscriminator(nn.Module):
    """PatchGAN on log-mel images ``Tensor[B x 1 x T x F]`` -> patch logits (LDM autoencoder GAN, small).

    Args:
        channels: Width of the first conv.
        num_layers: Strided conv layers.
    """

    def __init__(self, *, channels: int = 32, num_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = channels
        for _ in range(num_layers - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.GroupNorm(min(8, 2 * c), 2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
