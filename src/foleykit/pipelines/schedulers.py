"""Samplers foleykit adds to diffusers' (registered by class name in ``foleykit.pipelines.sampling``)."""

from __future__ import annotations

import math

import torch
from diffusers import EDMDPMSolverMultistepScheduler


class CosineDPMSolverODEScheduler(EDMDPMSolverMultistepScheduler):
    """The deterministic twin of Stable Audio Open's ``CosineDPMSolverMultistepScheduler`` (no torchsde).

    Same sigmas, same input / output preconditioning and the same timestep the DiT sees
    (``atan(sigma) * 2 / pi``), but DPM-Solver++ as an ODE solver instead of the SDE variant that needs
    ``torchsde``'s Brownian tree.
    """

    def precondition_noise(self, sigma: float | torch.Tensor) -> torch.Tensor:
        if not isinstance(sigma, torch.Tensor):
            sigma = torch.tensor([sigma])
        return sigma.atan() / math.pi * 2
