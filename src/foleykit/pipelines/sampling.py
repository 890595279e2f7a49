"""Samplers (diffusers schedulers) and the noise schedule used for training.

Names a recipe may use for ``sampling.scheduler``:

- ``ddim`` -> ``DDIMScheduler`` (ReWaS, STA-V2A, VTA-LDM; AudioLDM's published scheduler config),
- ``dpmsolver++`` -> ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++")`` (the demonstrator),
- ``dpmsolver++3m`` -> the same with ``solver_order=3``; ``unipc`` -> ``UniPCMultistepScheduler`` (order 2),
- ``cosine_dpmsolver`` -> ``CosineDPMSolverMultistepScheduler`` (Stable Audio Open's published scheduler),
- or any diffusers scheduler class name.

The training noise schedule (``add_noise`` / ``get_velocity``) of DDPM-family samplers is a
``DDPMScheduler`` with the same betas and prediction type: :func:`training_scheduler`.
"""

from __future__ import annotations

from typing import Any

import torch

from foleykit.errors import ConfigError

ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1}),
    "dpmsolver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmsolver": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmsolver++3m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 3}),
    "unipc": ("UniPCMultistepScheduler", {"solver_order": 2}),
    "cosine_dpmsolver": ("CosineDPMSolverMultistepScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
}
#: Config keys that describe the noise schedule itself (shared between samplers and training).
SCHEDULE_KEYS = (
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "trained_betas",
    "prediction_type",
    "rescale_betas_zero_snr",
    "timestep_spacing",
    "steps_offset",
)
#: Schedulers whose timesteps are continuous noise levels (EDM family) rather than DDPM indices.
CONTINUOUS = (
    "CosineDPMSolverMultistepScheduler",
    "CosineDPMSolverODEScheduler",  # foleykit.pipelines.schedulers: the same without torchsde
    "EDMDPMSolverMultistepScheduler",
    "EDMEulerScheduler",
)


def build_scheduler(name: str, config: dict[str, Any] | None = None):
    """A diffusers scheduler from an alias or class name plus config overrides."""
    import diffusers

    cls_name, defaults = ALIASES.get(name, (name, {}))
    cls = getattr(diffusers, cls_name, None)
    if cls is None or not cls_name.endswith("Scheduler"):
        raise ConfigError(
            f"unknown scheduler {name!r}; use one of {', '.join(ALIASES)} or a diffusers scheduler class"
        )
    kwargs = {**defaults, **{k: v for k, v in (config or {}).items() if not k.startswith("_")}}
    if cls_name == "CosineDPMSolverMultistepScheduler":
        try:
            import torchsde  # noqa: F401
        except ImportError:
            raise ConfigError(
                "CosineDPMSolverMultistepScheduler (Stable Audio Open's published sampler) needs the "
                "torchsde package: `pip install torchsde`"
            ) from None
    try:
        return cls.from_config(kwargs)
    except TypeError as err:  # pragma: no cover - diffusers ignores unknown keys, this is defensive
        raise ConfigError(f"bad config for {cls_name}: {err}") from err


def swap_scheduler(scheduler, name: str):
    """The same noise schedule with another sampler (e.g. ``ddim`` <-> ``dpmsolver++``)."""
    shared = {k: v for k, v in scheduler.config.items() if k in SCHEDULE_KEYS}
    return build_scheduler(name, shared)


def is_continuous(scheduler) -> bool:
    """True for EDM-style schedulers whose timesteps are continuous (Stable Audio Open)."""
    return type(scheduler).__name__ in CONTINUOUS


def training_scheduler(scheduler):
    """The training noise schedule of a DDPM-family sampler: a ``DDPMScheduler`` with the same betas.

    Its ``add_noise(x0, noise, t)`` and ``get_velocity(x0, noise, t)`` give the trainer the noisy input and
    the v-target; ``config.prediction_type`` says which target to regress. EDM-style samplers (Stable Audio
    Open) are trained in sigma space and have no DDPM equivalent: ConfigError.
    """
    from diffusers import DDPMScheduler

    if is_continuous(scheduler):
        raise ConfigError(
            f"{type(scheduler).__name__} is an EDM-style sampler; train with its sigma schedule"
        )
    shared = {k: v for k, v in scheduler.config.items() if k in SCHEDULE_KEYS}
    return DDPMScheduler.from_config(shared)


def inference_steps_of(scheduler) -> torch.Tensor:
    """The timesteps of the last ``set_timesteps`` call."""
    return scheduler.timesteps
