"""Training checkpoints: atomic folders that carry everything an exact resume needs.

Layout of ``<stage_dir>/checkpoints/step_00000100/``::

    model.safetensors            trainable modules (one file per optimizer group: model_1.safetensors...)
    optimizer.bin, scheduler.bin  optimizer / LR-scheduler states (one per group)
    random_states_<rank>.pkl     python / numpy / torch / CUDA RNG states of every process
    rank_state_<rank>.pt         the noise generator of every process
    custom_checkpoint_0.pkl      TrainState: step, epoch, data position
    custom_checkpoint_1.pkl      EMA shadow weights (when EMA is on)
    config.yaml                  the resolved run config
    trainer_state.json           step, epoch, batch position, last logged values (human readable)
    model/                       the trained component(s) in the model-folder layout (config.json +
                                 safetensors), loadable like any shipped model

The first five are written by ``accelerate.Accelerator.save_state`` (so FSDP / DeepSpeed sharding is
handled by accelerate). The folder is written under a temporary name and renamed when complete: a run
killed while saving leaves the previous checkpoint as the latest one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from foleykit.errors import ConfigError

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
CONFIG_FILE = "config.yaml"
_NAME = re.compile(r"^step_(\d{8})$")


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint taken after ``step`` optimizer steps."""
    return f"step_{step:08d}"


def list_checkpoints(stage_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints of a stage folder, sorted by step."""
    root = Path(stage_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / STATE_FILE).is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(stage_dir: str | os.PathLike) -> Path | None:
    """The most recent complete checkpoint, or None."""
    ckpts = list_checkpoints(stage_dir)
    return ckpts[-1][1] if ckpts else None


class TrainState:
    """Counters shared by every process (they move in lockstep), checkpointed through
    ``accelerator.register_for_checkpointing``; the per-process noise generator is saved separately
    (``rank_state_<rank>.pt``, see :func:`save_checkpoint`).

    Attributes:
        step: Optimizer steps done.
        epoch: Current data epoch.
        batch: Batches of ``epoch`` already consumed (by every process).
        generator: This process's torch.Generator for noise, timesteps and condition dropout.
    """

    def __init__(self, generator: torch.Generator) -> None:
        self.step = 0
        self.epoch = 0
        self.batch = 0
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch = int(state["batch"])

    def rank_state(self) -> dict[str, Any]:
        """What differs between processes: the generator state."""
        return {"generator": self.generator.get_state()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def save_checkpoint(
    accelerator: Any,
    stage_dir: str | os.PathLike,
    step: int,
    *,
    config_text: str,
    state: dict[str, Any],
    write_extra: Callable[[Path], None] | None = None,
    keep: int | None = None,
    rank_state: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of ``step`` atomically (every process must call this).

    Args:
        accelerator: The run's ``accelerate.Accelerator``.
        stage_dir: Stage folder.
        step: Optimizer steps done.
        config_text: The resolved run config as YAML.
        state: JSON-serialisable trainer state (written last: its presence marks a complete folder).
        write_extra: Called on the main process with the temporary folder (component export).
        keep: Keep only this many newest checkpoints (None: keep all).
        rank_state: This process's own state (``rank_state_<rank>.pt``; accelerate saves registered objects
            from the main process only).

    Returns:
        The checkpoint folder.
    """
    root = Path(stage_dir) / CHECKPOINTS
    final = root / checkpoint_name(step)
    tmp = root / f".tmp-{checkpoint_name(step)}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if rank_state is not None:
        torch.save(rank_state, tmp / f"rank_state_{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / CONFIG_FILE).write_text(config_text, encoding="utf-8")
        if write_extra is not None:
            write_extra(tmp)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        if final.exists():  # a previous run's checkpoint at the same step (re-run after resume)
            shutil.rmtree(final)
        os.replace(tmp, final)
        if keep is not None:
            prune_checkpoints(stage_dir, keep)
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(stage_dir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest complete checkpoints (and stale temporary folders)."""
    if keep < 1:
        raise ConfigError(f"keep_checkpoints must be >= 1, got {keep}")
    removed = []
    for _, p in list_checkpoints(stage_dir)[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    root = Path(stage_dir) / CHECKPOINTS
    newest = latest_checkpoint(stage_dir)
    for p in root.glob(".tmp-step_*"):
        m = _NAME.match(p.name[len(".tmp-") :])
        if newest is not None and m and int(m.group(1)) < int(_NAME.match(newest.name).group(1)):
            shutil.rmtree(p, ignore_errors=True)
    return removed


def load_checkpoint(accelerator: Any, path: str | os.PathLike) -> dict[str, Any]:
    """Restore models, optimizers, schedulers, RNG states and registered objects from ``path``.

    Returns:
        The JSON trainer state stored with the checkpoint.

    Raises:
        ConfigError: ``path`` is not a complete checkpoint folder.
    """
    p = Path(path)
    if not (p / STATE_FILE).is_file():
        raise ConfigError(f"{p} is not a complete training checkpoint (no {STATE_FILE})")
    accelerator.load_state(str(p))
    return json.loads((p / STATE_FILE).read_text(encoding="utf-8"))


def load_rank_state(path: str | os.PathLike, rank: int) -> dict[str, Any] | None:
    """This process's own state saved with a checkpoint, or None (a run resumed on more processes)."""
    f = Path(path) / f"rank_state_{rank}.pt"
    return torch.load(f, map_location="cpu", weights_only=True) if f.is_file() else None


def read_checkpoint_config(path: str | os.PathLike) -> dict[str, Any]:
    """The resolved run config saved with a checkpoint (or a run folder)."""
    from foleykit.training.config import load_yaml

    p = Path(path) / CONFIG_FILE
    if not p.is_file():
        raise ConfigError(f"no {CONFIG_FILE} in {path}")
    return load_yaml(p.read_text(encoding="utf-8"))
