"""The diffusion training objective matching a pipeline's sampler.

- DDPM-family samplers (DDIM, DPM-Solver++; AudioLDM / ReWaS / STA-V2A / VTA-LDM / the demonstrator): the
  noise schedule is the sampler's betas (``foleykit.pipelines.sampling.training_scheduler``); t ~ U{0..T-1},
  ``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps``; the target is the sampler's ``prediction_type``
  (``epsilon``: eps, STA-V2A eq. 6 / ReWaS L_c; ``v_prediction``: ``sqrt(a_t) eps - sqrt(1 - a_t) x_0``;
  ``sample``: x_0). Optional Min-SNR-gamma loss weights (Hang et al. 2023).
- EDM-style samplers (Stable Audio Open's ``CosineDPMSolverMultistepScheduler``, sigma_data 1): the
  v-diffusion objective Stable Audio Open trains with: t ~ U(0, 1), ``alpha = cos(t pi / 2)``,
  ``sigma = sin(t pi / 2)``, ``x_t = alpha x_0 + sigma eps``, target ``v = alpha eps - sigma x_0``; the
  denoiser sees timestep t, which equals the sampler's ``sigma_to_t`` of the EDM noise level
  ``tan(t pi / 2)`` once the sampler's input scaling ``1 / sqrt(sigma^2 + 1)`` is applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from foleykit.errors import ConfigError


@dataclass
class NoisedBatch:
    """One draw of the forward process.

    Attributes:
        noisy: ``x_t``, like ``x_0``.
        timesteps: What the denoiser receives as timestep, ``Tensor[B]``.
        target: The regression target, like ``x_0``.
        weights: Per-sample loss weights ``Tensor[B]`` (ones unless Min-SNR weighting is on).
    """

    noisy: torch.Tensor
    timesteps: torch.Tensor
    target: torch.Tensor
    weights: torch.Tensor


class DiffusionObjective:
    """Forward-process sampling and targets for a sampler (see module docstring).

    Args:
        scheduler: The pipeline's diffusers scheduler.
        snr_gamma: Min-SNR-gamma weighting (None: uniform weights). DDPM family only.
    """

    def __init__(self, scheduler: Any, *, snr_gamma: float | None = None) -> None:
        from foleykit.pipelines.sampling import is_continuous, training_scheduler

        self.continuous = is_continuous(scheduler)
        self.snr_gamma = snr_gamma
        if self.continuous:
            sd = float(getattr(scheduler.config, "sigma_data", 1.0))
            if abs(sd - 1.0) > 1e-6:
                raise ConfigError(
                    f"continuous-time training supports sigma_data = 1 (Stable Audio Open), got {sd}"
                )
            self.prediction_type = str(getattr(scheduler.config, "prediction_type", "v_prediction"))
            if self.prediction_type != "v_prediction":
                raise ConfigError(
                    f"EDM-style sampler with prediction_type {self.prediction_type!r}: only "
                    "v_prediction is supported for training"
                )
            self.num_train_timesteps = None
            self.alphas_cumprod = None
        else:
            train = training_scheduler(scheduler)
            self.prediction_type = str(train.config.prediction_type)
            if self.prediction_type not in ("epsilon", "v_prediction", "sample"):
                raise ConfigError(f"unsupported prediction_type {self.prediction_type!r}")
            self.num_train_timesteps = int(train.config.num_train_timesteps)
            self.alphas_cumprod = train.alphas_cumprod.float()

    def sample(self, x0: torch.Tensor, generator: torch.Generator) -> NoisedBatch:
        """Draw timesteps and noise for the clean latents ``x0`` (``Tensor[B x ...]``)."""
        b = x0.shape[0]
        dev = generator.device
        noise = torch.randn(x0.shape, generator=generator, device=dev).to(x0.device, torch.float32)
        x0f = x0.float()
        shape = (b,) + (1,) * (x0.ndim - 1)
        if self.continuous:
            t = torch.rand(b, generator=generator, device=dev).to(x0.device)
            alpha = torch.cos(t * math.pi / 2).view(shape)
            sigma = torch.sin(t * math.pi / 2).view(shape)
            noisy = alpha * x0f + sigma * noise
            target = alpha * noise - sigma * x0f
            return NoisedBatch(noisy, t, target, torch.ones(b, device=x0.device))
        t = torch.randint(0, self.num_train_timesteps, (b,), generator=generator, device=dev).to(x0.device)
        ac = self.alphas_cumprod.to(x0.device)[t]
        a = ac.sqrt().view(shape)
        s = (1.0 - ac).sqrt().view(shape)
        noisy = a * x0f + s * noise
        if self.prediction_type == "epsilon":
            target = noise
        elif self.prediction_type == "v_prediction":
            target = a * noise - s * x0f
        else:
            target = x0f
        weights = torch.ones(b, device=x0.device)
        if self.snr_gamma:
            snr = ac / (1.0 - ac)
            clipped = torch.clamp(snr, max=float(self.snr_gamma))
            if self.prediction_type == "epsilon":
                weights = clipped / snr
            elif self.prediction_type == "v_prediction":
                weights = clipped / (snr + 1.0)
            else:
                weights = clipped
        return NoisedBatch(noisy, t, target, weights)

    def loss(self, pred: torch.Tensor, batch: NoisedBatch) -> torch.Tensor:
        """Weighted MSE between the model output and the target (mean over elements, then batch)."""
        per = ((pred.float() - batch.target) ** 2).flatten(1).mean(1)
        return (per * batch.weights).mean()
