"""The contract between the generic trainer and a training stage.

A stage says *what* is trained (its trainable modules, one per optimizer group), on *which* data, with
*which* loss, how it is validated and how its result is written as components in the model-folder layout.
The trainer (``foleykit.training.trainer``) owns *how*: accelerate, mixed precision, accumulation, EMA,
checkpoints, exact resume, logging.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from foleykit.config import SequenceConfig


@dataclasses.dataclass
class StageContext:
    """Everything a stage needs from the run.

    Attributes:
        run_config: The whole resolved run config (``foleykit.training.config``).
        cfg: This stage's resolved table (``run_config["stages"][name]``).
        run_dir: Root output folder of the run.
        stage_dir: This stage's folder (``run_dir/<stage>``): checkpoints, logs, exported components.
        data: Data handles prepared by the run (dataset folders, feature cache...), stage-specific keys.
        seq: The audio/video geometry of the recipe (sample rate, clip duration, latent / control rates).
        pipeline: The ``VideoToAudioPipeline`` being trained (built from the recipe, or loaded from the
            previous stage's export); stages train its components in place and export it whole.
    """

    run_config: Mapping[str, Any]
    cfg: Mapping[str, Any]
    run_dir: Path
    stage_dir: Path
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seq: SequenceConfig = dataclasses.field(default_factory=SequenceConfig)
    pipeline: Any = None


@dataclasses.dataclass
class StageModules:
    """The modules of a stage.

    Attributes:
        trainable: One module per optimizer group (``"main"`` always present). Each is prepared by
            accelerate (DDP/FSDP wrapping), checkpointed and optimised by its own optimizer.
        frozen: Modules used but not trained (moved to the device, eval mode, no gradients, not
            checkpointed: they are rebuilt from the recipe / earlier stages on resume).
    """

    trainable: dict[str, nn.Module]
    frozen: dict[str, nn.Module] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StepInputs:
    """What the trainer hands to ``Stage.loss`` for one micro-batch.

    Attributes:
        models: Prepared (possibly DDP-wrapped) trainable modules by group. Call them (``models[g](...)``)
            rather than their ``.module`` so that gradient synchronisation works.
        frozen: Frozen modules by name.
        batch: The collated batch, on the device.
        generator: The run's torch.Generator for noise / timesteps / dropout draws (checkpointed).
        step: Optimizer step being computed (0-based).
        scratch: Per-micro-batch dict shared between the optimizer groups of one step (GAN: the
            generator output made in the discriminator group is reused by the generator group).
    """

    models: dict[str, nn.Module]
    frozen: dict[str, nn.Module]
    batch: Any
    generator: torch.Generator
    step: int
    scratch: dict[str, Any]


class Stage(abc.ABC):
    """Base class of a training stage family (autoencoder, vocoder, prior, adapter, predictor, semantic).

    Subclasses set ``name`` and implement ``build``, ``train_dataset``, ``loss`` and ``export``.
    Optimizer groups other than ``"main"`` (discriminators) are stepped first, in ``groups`` order; EMA
    and export concern ``"main"``.
    """

    name: ClassVar[str] = "stage"

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg

    # --- what is trained ------------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self) -> StageModules:
        """Build (or load) the trainable and frozen modules."""

    def groups(self) -> list[str]:
        """Optimizer groups in stepping order; ``"main"`` must be last."""
        return ["main"]

    def group_active(self, group: str, step: int) -> bool:
        """Whether optimizer group ``group`` is trained at ``step`` (0-based); ``"main"`` always is.

        An inactive group is skipped entirely (no loss, no optimizer or LR-scheduler step): a discriminator
        that starts after a warm-up (HiFi-GAN's ``disc_start``).
        """
        return True

    def scheduler(self, optimizer: torch.optim.Optimizer, group: str, max_steps: int) -> Any | None:
        """The stage's own LR schedule for ``group`` (stepped once per optimizer step of the group), or None
        for the trainer's (``scheduler`` / ``warmup_steps``)."""
        return None

    def requirements(self) -> dict[str, str]:
        """Human-readable list of what this stage needs (data, cache, earlier components) -> why."""
        return {}

    # --- data -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def train_dataset(self) -> Dataset:
        """Training items. Randomness inside items must come from the index (deterministic resume)."""

    def val_dataset(self) -> Dataset | None:
        """Validation items, or None."""
        return None

    def collate(self, items: list[Any]) -> Any:
        """Collate items into a batch (default: torch's default_collate)."""
        return default_collate(items)

    # --- loss / validation / export --------------------------------------------------------------------
    @abc.abstractmethod
    def loss(self, inputs: StepInputs, group: str) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss of ``group`` for one micro-batch, and named float values to log."""

    def validate(
        self,
        model: nn.Module,
        frozen: Mapping[str, nn.Module],
        batches: Iterable[Any],
        generator: torch.Generator,
    ) -> dict[str, float]:
        """Validation metrics (main group, EMA weights applied, eval mode, no grad). Default: none."""
        return {}

    @abc.abstractmethod
    def export(self, model: nn.Module, frozen: Mapping[str, nn.Module], folder: Path) -> dict[str, Path]:
        """Write the trained component(s) into ``folder`` in the model-folder layout.

        Returns:
            Component name -> sub-folder written (e.g. ``{"vae": folder / "vae"}``).
        """


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside DDP/FSDP/compile wrappers."""
    while hasattr(module, "module") and isinstance(module.module, nn.Module):
        module = module.module
    orig = getattr(module, "_orig_mod", None)
    return orig if isinstance(orig, nn.Module) else module


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) batch to ``device``; other values are kept."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def fit_length(x: torch.Tensor, n: int) -> torch.Tensor:
    """Crop or zero-pad the last axis of ``x`` to ``n``."""
    if x.shape[-1] >= n:
        return x[..., :n]
    return torch.nn.functional.pad(x, (0, n - x.shape[-1]))


def as_tensor(x: Any) -> torch.Tensor:
    """A float32 tensor from a tensor or numpy array (other dtypes kept for integer arrays)."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    return t.float() if t.is_floating_point() else t


def collate_fields(
    items: list[Mapping[str, Any]], *, tensors: Mapping[str, int | None] = {}, lists: Iterable[str] = ()
) -> dict[str, Any]:
    """Collate chosen fields of dict items.

    Args:
        items: Dataset items (dicts).
        tensors: Field -> length to fit along the last axis (crop / zero-pad), or None to stack as is.
            Missing fields are skipped when absent from every item, an error when absent from some.
        lists: Fields collected into Python lists (captions, paths...).
    """
    out: dict[str, Any] = {}
    for key, n in tensors.items():
        present = [key in it and it[key] is not None for it in items]
        if not any(present):
            continue
        if not all(present):
            raise ValueError(f"field {key!r} is missing from some items of the batch")
        vals = [as_tensor(it[key]) for it in items]
        if n is not None:
            vals = [fit_length(v, n) for v in vals]
        out[key] = torch.stack(vals)
    for key in lists:
        if all(key in it for it in items):
            out[key] = [it[key] for it in items]
    return out
