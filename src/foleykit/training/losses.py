"""Losses shared by the training stages.

- :func:`gaussian_kl`: KL(q || N(0, I)) of a diagonal Gaussian posterior (VAE training).
- :class:`MultiResolutionSTFTLoss`: L1 on log and linear STFT magnitudes over several STFT sizes (Parallel
  WaveGAN's multi-resolution idea, Yamamoto et al. 2020), used by the vocoder and the waveform autoencoder.
- GAN losses: hinge (LDM-style autoencoder GAN), least-squares and feature matching (HiFi-GAN, Kong et al.
  2020 eq. 1-3), over the outputs of the discriminators in ``foleykit.models.discriminators``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """Per-sample KL(N(mean, exp(logvar)) || N(0, I)), summed over every non-batch dim: ``Tensor[B]``."""
    kl = 0.5 * (mean.float() ** 2 + logvar.float().exp() - 1.0 - logvar.float())
    return kl.flatten(1).sum(1)


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over resolutions of L1(log |STFT|) + L1(|STFT|) (Parallel WaveGAN's multi-resolution STFT loss).

    Parallel WaveGAN pairs the log-magnitude term with spectral convergence ``||T - P|| / ||T||``; Foley clips
    contain silent segments where that ratio is undefined (it explodes as ``||T|| -> 0``), so the linear
    magnitude L1 (as in DAC / auraloss) takes its place. Magnitudes are floored at 1e-5 before the log.

    Args:
        resolutions: ``(n_fft, hop, win)`` triples.

    Shapes:
        ``forward(pred: Tensor[B x T], target: Tensor[B x T]) -> scalar``.
    """

    def __init__(
        self,
        *,
        resolutions: tuple[tuple[int, int, int], ...] = ((512, 128, 512), (1024, 256, 1024), (256, 64, 256)),
    ) -> None:
        super().__init__()
        self.resolutions = tuple(tuple(int(v) for v in r) for r in resolutions)
        for i, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(f"window_{i}", torch.hann_window(win), persistent=False)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"STFT loss: shapes differ {tuple(pred.shape)} vs {tuple(target.shape)}")
        total = pred.new_zeros((), dtype=torch.float32)
        for i, (n_fft, hop, win) in enumerate(self.resolutions):
            window = getattr(self, f"window_{i}")
            kw = {
                "n_fft": n_fft,
                "hop_length": hop,
                "win_length": win,
                "window": window,
                "return_complex": True,
            }
            p = torch.stft(pred.float(), **kw).abs()
            t = torch.stft(target.float(), **kw).abs()
            log_l1 = (t.clamp_min(1e-5).log() - p.clamp_min(1e-5).log()).abs().mean()
            total = total + log_l1 + (t - p).abs().mean()
        return total / len(self.resolutions)


# --- GAN losses ------------------------------------------------------------------------------------------
def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator hinge loss: mean relu(1 - D(real)) + mean relu(1 + D(fake)), halved."""
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


def lsgan_d_loss(real_outs: list[Tensor], fake_outs: list[Tensor]) -> Tensor:
    """HiFi-GAN discriminator loss: sum over sub-discriminators of mean (1 - D(real))^2 + D(fake)^2."""
    return sum(((1.0 - r) ** 2).mean() + (f**2).mean() for r, f in zip(real_outs, fake_outs))


def lsgan_g_loss(fake_outs: list[Tensor]) -> Tensor:
    """HiFi-GAN generator adversarial loss: sum of mean (1 - D(fake))^2."""
    return sum(((1.0 - f) ** 2).mean() for f in fake_outs)


def feature_matching_loss(real_feats: list[list[Tensor]], fake_feats: list[list[Tensor]]) -> Tensor:
    """HiFi-GAN feature-matching loss: L1 between discriminator feature maps of real and generated audio."""
    total = 0.0
    for rs, fs in zip(real_feats, fake_feats):
        for r, f in zip(rs, fs):
            total = total + (r.detach() - f).abs().mean()
    return total


def split_halves(
    outs: list[Any],
) -> tuple[list[Tensor], list[Tensor], list[list[Tensor]], list[list[Tensor]]]:
    """Split discriminator outputs of ``torch.cat([real, fake])`` into their two halves.

    Args:
        outs: ``(logits Tensor[2B x N], feature maps)`` per sub-discriminator
            (``foleykit.models.discriminators.DiscriminatorOutput``).

    Returns:
        ``(real logits, fake logits, real feature maps, fake feature maps)``, one entry per sub-discriminator.
    """
    real_l, fake_l, real_f, fake_f = [], [], [], []
    for logits, feats in outs:
        r, f = logits.chunk(2)
        real_l.append(r)
        fake_l.append(f)
        real_f.append([x.chunk(2)[0] for x in feats])
        fake_f.append([x.chunk(2)[1] for x in feats])
    return real_l, fake_l, real_f, fake_f
