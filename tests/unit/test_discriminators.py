"""HiFi-GAN discriminators: the paper's layout, width scaling, the debug twin, output shapes, period folding
and the multi-scale pooling."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils import parametrize

from foleykit.errors import ConfigError
from foleykit.models.discriminators import (
    DEBUG_DISCRIMINATORS,
    HifiganDiscriminator,
    PeriodDiscriminator,
    ScaleDiscriminator,
    build_discriminators,
    scaled_channels,
)


def norm_kind(conv: torch.nn.Module) -> str:
    assert parametrize.is_parametrized(conv, "weight")
    return type(conv.parametrizations.weight[0]).__name__


def test_paper_layout():
    with torch.device("meta"):
        d = build_discriminators("hifigan")
    assert [p.period for p in d.mpd.discs] == [2, 3, 5, 7, 11] and len(d.msd.discs) == 3
    conv = d.mpd.discs[0].convs
    assert [c.out_channels for c in conv] == [32, 128, 512, 1024, 1024]
    assert [c.stride for c in conv] == [(3, 1)] * 4 + [(1, 1)] and conv[0].kernel_size == (5, 1)
    msd = d.msd.discs[0].convs
    assert [c.out_channels for c in msd] == [128, 128, 256, 512, 1024, 1024, 1024]
    assert [c.groups for c in msd] == [1, 4, 16, 16, 16, 16, 1]
    assert [c.stride[0] for c in msd] == [1, 2, 2, 4, 4, 1, 1]
    # spectral norm on the raw-audio scale only, weight norm elsewhere
    assert {norm_kind(c) for c in d.msd.discs[0].convs} == {"_SpectralNorm"}
    assert {norm_kind(c) for s in d.msd.discs[1:] for c in s.convs} == {"_WeightNorm"}
    assert {norm_kind(c) for p in d.mpd.discs for c in p.convs} == {"_WeightNorm"}
    n = sum(p.numel() for p in d.parameters())
    assert 70e6 < n < 71.5e6  # MPD 41.1 M + MSD 29.6 M


def test_width_scaling_keeps_groups_valid():
    assert scaled_channels([32, 128, 512], 0.125) == [4, 16, 64]
    assert scaled_channels([128, 128, 256], 0.05, [4, 16, 16]) == [8, 16, 16]
    with torch.device("meta"):
        d = build_discriminators("hifigan", width=0.125)
    assert [c.out_channels for c in d.mpd.discs[0].convs] == [4, 16, 64, 128, 128]
    assert [c.out_channels for c in d.msd.discs[0].convs] == [16, 16, 32, 64, 128, 128, 128]
    with torch.device("meta"):
        tiny = build_discriminators("hifigan", width=0.01)  # rounded up to what the groups need
    assert all(c.in_channels % c.groups == 0 for c in tiny.msd.discs[0].convs)


def test_debug_twin_shapes():
    d = build_discriminators("debug")
    assert sum(p.numel() for p in d.parameters()) < 20_000
    x = torch.randn(3, 4003)  # not a multiple of any period
    outs = d(x)
    assert len(outs) == 5 + 3
    for o, p in zip(outs[:5], DEBUG_DISCRIMINATORS["periods"]):
        assert o.logits.shape[0] == 3 and o.logits.dim() == 2
        assert len(o.features) == 6 and all(f.shape[-1] == p for f in o.features)
        rows = math.ceil(4003 / p)  # the folded image: ceil(T / p) x p, then stride 3
        assert o.features[0].shape[2] == math.ceil(rows / 3)
        assert o.features[-1].flatten(1).shape == o.logits.shape
    lengths = [o.features[0].shape[-1] for o in outs[5:]]
    assert lengths == [4003, 2002, 1002]  # AvgPool1d(4, 2, padding=2) between scales
    assert all(len(o.features) == 8 for o in outs[5:])
    with pytest.raises(ValueError, match="B x T"):
        d(x[:, None])


def test_period_folding_keeps_phases_apart():
    """A (k x 1) conv stack never mixes samples of different phases: a change at sample j only moves
    column j % p of every feature map."""
    torch.manual_seed(0)
    disc = PeriodDiscriminator(5, channels=[2, 4, 4], kernel=5, stride=3)
    x = torch.randn(1, 400)
    y = x.clone()
    y[0, 123] += 1.0
    a, b = disc(x), disc(y)
    for fa, fb in zip(a.features, b.features):
        moved = (fa - fb).abs().sum(dim=(0, 1, 2))
        assert moved[123 % 5] > 0 and torch.count_nonzero(moved) == 1


def test_scales_see_pooled_audio():
    torch.manual_seed(0)
    d = HifiganDiscriminator({"preset": "debug", "periods": []})
    assert d.mpd is None
    x = torch.randn(2, 1000)
    outs = d(x)
    pooled = torch.nn.functional.avg_pool1d(x[:, None], 4, 2, padding=2)[:, 0]
    d.eval()  # freeze the spectral-norm power iteration so that the two calls below agree
    assert torch.allclose(d.msd.discs[1](pooled).logits, d(x)[1].logits)
    assert len(outs) == 3


def test_config_errors():
    with pytest.raises(ConfigError, match="preset"):
        build_discriminators("big")
    with pytest.raises(ConfigError, match="unknown discriminator keys"):
        build_discriminators(widht=2)
    with pytest.raises(ConfigError, match="width"):
        build_discriminators(width=0)
    with pytest.raises(ConfigError, match="at least one"):
        build_discriminators(periods=[], scales=0)
    with pytest.raises(ConfigError, match="groups"):
        ScaleDiscriminator(channels=[4, 6], kernels=[3, 3], strides=[1, 1], groups=[1, 4])
    with pytest.raises(ConfigError, match="differ in length"):
        ScaleDiscriminator(channels=[4, 8], kernels=[3], strides=[1, 1], groups=[1, 4])
