"""The generic training loop (accelerate): one ``Trainer`` runs one ``Stage``.

The same code runs on CPU, one GPU, several GPUs and several nodes: start it with ``python -m foleykit
train`` / ``foleykit train`` for one process, or ``accelerate launch -m foleykit train ...`` / ``torchrun
--nproc_per_node N -m foleykit train ...`` for several (accelerate reads the launcher's environment).

What the loop guarantees:
- mixed precision: ``mixed_precision=auto`` picks bf16 on GPUs that support it, else fp16 (with a grad
  scaler), and full precision on CPU;
- gradient accumulation (``grad_accum`` micro-batches per optimizer step, no gradient sync until the last);
- EMA of the trainable weights (exported components use them);
- seeded determinism: model init, data order (``ResumableBatchSampler``), noise/timestep/dropout draws
  (a checkpointed ``torch.Generator``), validation isolated from the training RNG streams;
- checkpoints every ``ckpt_every`` steps with the resolved config, model / optimizer / scheduler / EMA /
  RNG / data-position state; ``resume=True`` continues exactly (on CPU, a killed-and-resumed run ends
  with weights bit-identical to an uninterrupted run);
- validation every ``val_every`` steps and at the end, logged to ``metrics.jsonl`` and TensorBoard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from foleykit.errors import ConfigError, FoleykitError
from foleykit.training.checkpoint import (
    TrainState,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_rank_state,
    save_checkpoint,
)
from foleykit.training.config import dump_yaml
from foleykit.training.ema import EMA
from foleykit.training.sampler import ResumableBatchSampler
from foleykit.training.stages.base import Stage, StepInputs, to_device, unwrap
from foleykit.training.stages.components import restrict_parameters
from foleykit.utils.io import atomic_dir, atomic_write_json

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
EXPORT_DIR = "model"


class TrainingDivergedError(FoleykitError):
    """The loss became NaN or infinite."""


@dataclasses.dataclass
class TrainResult:
    """What a finished (or already complete) stage run produced.

    Attributes:
        stage: Stage name.
        steps: Optimizer steps done in total.
        history: Logged training records of this process lifetime (``{"step", "loss/main", ...}``).
        val_metrics: Last validation metrics.
        checkpoint: Last checkpoint folder (None if checkpointing is off and nothing was saved).
        exported: Component name -> exported folder (``<stage_dir>/model/<component>``).
        step_times: Wall seconds of each optimizer step run in this process lifetime.
    """

    stage: str
    steps: int
    history: list[dict[str, float]]
    val_metrics: dict[str, float]
    checkpoint: Path | None
    exported: dict[str, Path]
    step_times: list[float]


class RunLogger:
    """Writes scalar logs to ``metrics.jsonl`` (always) and TensorBoard (when installed and enabled).

    Args:
        folder: Stage folder.
        enabled: Only the main process writes.
        tensorboard: Try TensorBoard (lazy import; silently falls back to JSONL only).
    """

    def __init__(self, folder: Path, *, enabled: bool, tensorboard: bool) -> None:
        self.path = folder / METRICS_FILE
        self.enabled = enabled
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(folder / "tensorboard"))
            except Exception as e:  # noqa: BLE001 - tensorboard missing or broken: JSONL only
                log.info("TensorBoard logging off (%s); metrics go to %s", e, self.path)

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (a resumed run re-logs them)."""
        if not self.enabled or not self.path.is_file():
            return
        keep = [
            ln for ln in self.path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step
        ]
        self.path.write_text("".join(k + "\n" for k in keep))

    def log(self, step: int, split: str, values: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        rec = {"step": step, "split": split, **{k: float(v) for k, v in values.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{split}/{k}", float(v), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


def read_metrics(stage_dir: str | os.PathLike, split: str = "train") -> list[dict[str, float]]:
    """Records of a stage's ``metrics.jsonl`` for one split."""
    p = Path(stage_dir) / METRICS_FILE
    if not p.is_file():
        return []
    recs = [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
    return [r for r in recs if r.get("split") == split]


def resolve_mixed_precision(name: str, device_type: str) -> str:
    """``auto`` -> bf16 on GPUs that support it, fp16 on other GPUs, ``no`` on CPU."""
    if name != "auto":
        return name
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def process_state() -> Any:
    """accelerate's process state (rank, world size), initialised for CPU processes too.

    Under ``torchrun`` / ``accelerate launch`` on machines without CUDA, accelerate only sets up the gloo
    process group when asked for CPU explicitly; the first initialisation wins, so every part of the training
    run goes through here.
    """
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def make_accelerator(cfg: Mapping[str, Any]) -> Any:
    """An ``accelerate.Accelerator`` for a stage config (reads torchrun / accelerate-launch env vars)."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState

    process_state()
    cpu = bool(cfg.get("cpu", False)) or not (torch.cuda.is_available())
    mp = resolve_mixed_precision(str(cfg.get("mixed_precision", "auto")), "cpu" if cpu else "cuda")
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", mp) != mp:
        # a previous stage in this process used another precision: accelerate keeps one global state
        AcceleratorState._reset_state(reset_partial_state=False)
    # Condition-dropout null embeddings and per-stage unused branches leave some trainable parameters
    # without a gradient in a given step: DDP must be told, or it waits for them forever.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=bool(cfg.get("find_unused_parameters", True)))
    return Accelerator(
        mixed_precision=mp, cpu=cpu, step_scheduler_with_optimizer=False, kwargs_handlers=[ddp]
    )


class Trainer:
    """Runs one stage: build, (resume,) train, validate, checkpoint, export.

    Args:
        stage: The stage (its context holds the resolved config and folders).
        accelerator: An ``accelerate.Accelerator``; built from the stage config when None.
        on_step: Called with the step number after every optimizer step (after its checkpoint, if any);
            an exception it raises stops the run there (tests simulate a crash this way).
        progress: Called (main process only) with a one-line summary at every logging step.
    """

    def __init__(
        self,
        *,
        stage: Stage,
        accelerator: Any = None,
        on_step: Callable[[int], None] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.stage = stage
        self.progress = progress
        self.cfg = stage.cfg
        self.stage_dir = Path(stage.ctx.stage_dir)
        self.accelerator = accelerator if accelerator is not None else make_accelerator(self.cfg)
        self.on_step = on_step

    # ------------------------------------------------------------------------------------------------
    def fit(self, *, resume: bool = False) -> TrainResult:
        """Train the stage to ``max_steps`` (continuing from the latest checkpoint when ``resume``).

        Raises:
            ConfigError: the stage folder already holds checkpoints and ``resume`` is false.
            TrainingDivergedError: the loss became non-finite.
        """
        from accelerate.utils import set_seed

        acc, cfg, stage = self.accelerator, self.cfg, self.stage
        seed = int(stage.ctx.run_config.get("seed", 0))
        max_steps, accum = int(cfg["max_steps"]), int(cfg["grad_accum"])
        existing = list_checkpoints(self.stage_dir)
        if existing and not resume:
            raise ConfigError(
                f"{self.stage_dir} already holds checkpoints (latest: step {existing[-1][0]}); pass --resume to "
                "continue that run, or choose another --output folder"
            )
        if cfg.get("deterministic"):
            torch.use_deterministic_algorithms(True, warn_only=True)
        set_seed(seed, device_specific=True)

        modules = stage.build()
        patterns = cfg.get("trainable_params")
        if patterns:  # named as the run config names the stage (its folder), not by family
            table = stage.ctx.stage_dir.name
            if stage.ctx.pipeline is None:
                raise ConfigError(f"stages.{table}.trainable_params: the stage has no pipeline components")
            kept, before = restrict_parameters(stage.ctx.pipeline.components(), patterns, stage=table)
            if self.progress is not None and acc.is_main_process:
                self.progress(f"[{table}] trainable_params: {kept:,} of {before:,} parameters train")
        groups = stage.groups()
        if not groups or groups[-1] != "main" or set(groups) != set(modules.trainable):
            raise ValueError(
                f"stage {stage.name}: groups {groups} must end with 'main' and match the trainable "
                f"modules {sorted(modules.trainable)}"
            )
        trainable_ids = {id(p) for m in modules.trainable.values() for p in m.parameters() if p.requires_grad}
        for name, m in modules.frozen.items():
            if any(id(p) in trainable_ids for p in m.parameters()):
                raise ValueError(
                    f"stage {stage.name}: frozen module {name!r} shares parameters with a trainable one"
                )
            m.requires_grad_(False)
            m.eval()
            m.to(acc.device)
        models, opts, scheds = {}, {}, {}
        for g in groups:
            model = modules.trainable[g]
            params = [p for p in model.parameters() if p.requires_grad]
            if not params:
                raise ValueError(f"stage {stage.name}: group {g!r} has no trainable parameters")
            opt = self._optimizer(params, g)
            sched = stage.scheduler(opt, g, max_steps)
            if sched is None:
                sched = self._scheduler(opt, max_steps)
            models[g], opts[g], scheds[g] = acc.prepare(model, opt, sched)
            models[g].train()
        main = unwrap(models["main"])
        ema = (
            EMA(main, decay=float(cfg["ema_decay"]), warmup=bool(cfg.get("ema_warmup", True)))
            if float(cfg["ema_decay"]) > 0
            else None
        )
        gen = torch.Generator(device=acc.device).manual_seed(seed * 7919 + 17 + acc.process_index)
        tstate = TrainState(gen)
        acc.register_for_checkpointing(tstate)
        if ema is not None:
            acc.register_for_checkpointing(ema)

        logger = RunLogger(
            self.stage_dir, enabled=acc.is_main_process, tensorboard=bool(cfg.get("tensorboard", True))
        )
        ckpt = latest_checkpoint(self.stage_dir) if resume else None
        if ckpt is not None:
            load_checkpoint(acc, ckpt)
            own = load_rank_state(ckpt, acc.process_index)
            if own is not None:
                tstate.load_rank_state(own)
            logger.truncate_after(tstate.step)
            log.info("resumed %s from %s (step %d)", stage.name, ckpt, tstate.step)
        if acc.is_main_process:
            self.stage_dir.mkdir(parents=True, exist_ok=True)
            (self.stage_dir / "config.yaml").write_text(dump_yaml(stage.ctx.run_config), encoding="utf-8")

        train_ds = stage.train_dataset()
        if len(train_ds) == 0:
            raise FoleykitError(f"stage {stage.name}: the training set is empty")
        sampler = ResumableBatchSampler(
            num_items=len(train_ds),
            batch_size=int(cfg["batch_size"]),
            seed=seed,
            rank=acc.process_index,
            world_size=acc.num_processes,
        )
        stream = self._stream(train_ds, sampler, tstate, seed)
        history: list[dict[str, float]] = []
        step_times: list[float] = []
        val_metrics: dict[str, float] = {}
        last_ckpt = ckpt
        config_text = dump_yaml(stage.ctx.run_config)
        ckpt_every, val_every, log_every = (
            int(cfg["ckpt_every"]),
            int(cfg["val_every"]),
            int(cfg["log_every"]),
        )

        while tstate.step < max_steps:
            t0 = time.perf_counter()
            batches = [to_device(next(stream), acc.device) for _ in range(accum)]
            scratch: list[dict[str, Any]] = [{} for _ in batches]
            logs: dict[str, float] = defaultdict(float)
            for g in groups:
                if g != "main" and not stage.group_active(g, tstate.step):
                    continue
                for o in opts.values():
                    o.zero_grad(set_to_none=True)
                for i, b in enumerate(batches):
                    last = i == accum - 1
                    sync = (
                        contextlib.nullcontext() if last or acc.num_processes == 1 else acc.no_sync(models[g])
                    )
                    with sync:
                        with acc.autocast():
                            inputs = StepInputs(
                                models=models,
                                frozen=modules.frozen,
                                batch=b,
                                generator=gen,
                                step=tstate.step,
                                scratch=scratch[i],
                            )
                            loss, parts = stage.loss(inputs, g)
                        value = float(loss.detach().float().item())
                        if not math.isfinite(value):
                            raise TrainingDivergedError(
                                f"stage {stage.name}: loss of group {g!r} is {value} at step {tstate.step}; lower "
                                "the learning rate (train.lr=...), enable clipping (train.max_grad_norm=1.0) or "
                                "use full precision (train.mixed_precision=no)"
                            )
                        acc.backward(loss / accum)
                    logs[f"loss/{g}" if g != "main" else "loss"] += value / accum
                    for k, v in parts.items():
                        logs[k] += float(v) / accum
                if cfg.get("max_grad_norm"):
                    params = [p for p in models[g].parameters() if p.requires_grad]
                    gn = acc.clip_grad_norm_(params, float(cfg["max_grad_norm"]))
                    logs[f"grad_norm/{g}"] = float(gn)
                opts[g].step()
                scheds[g].step()
            for o in opts.values():
                o.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(main)
            tstate.step += 1
            dt = time.perf_counter() - t0
            step_times.append(dt)
            step = tstate.step
            if step % max(1, log_every) == 0 or step == max_steps:
                rec = {**logs, "lr": float(scheds["main"].get_last_lr()[0]), "step_time": dt}
                history.append({"step": step, **rec})
                logger.log(step, "train", rec)
                if self.progress is not None and acc.is_main_process:
                    self.progress(
                        f"[{self.stage_dir.name}] step {step}/{max_steps} loss {logs.get('loss', float('nan')):.4f} "
                        f"lr {rec['lr']:.2e} ({dt:.2f} s/step)"
                    )
            if (val_every and step % val_every == 0) or step == max_steps:
                val_metrics = self._validate(models, modules.frozen, ema, seed)
                if val_metrics:
                    logger.log(step, "val", val_metrics)
                    if self.progress is not None and acc.is_main_process:
                        self.progress(
                            f"[{self.stage_dir.name}] validation at step {step}: "
                            + ", ".join(f"{k} {v:.4f}" for k, v in val_metrics.items())
                        )
            if (ckpt_every and step % ckpt_every == 0) or step == max_steps:
                state = {
                    "stage": stage.name,
                    "step": step,
                    "epoch": tstate.epoch,
                    "batch": tstate.batch,
                    "max_steps": max_steps,
                    "last": {k: float(v) for k, v in logs.items()},
                    "val": val_metrics,
                }
                last_ckpt = save_checkpoint(
                    acc,
                    self.stage_dir,
                    step,
                    config_text=config_text,
                    state=state,
                    write_extra=lambda tmp: self._export(main, modules.frozen, ema, tmp / EXPORT_DIR),
                    keep=int(cfg["keep_checkpoints"]),
                    rank_state=tstate.rank_state(),
                )
            if self.on_step is not None:
                try:
                    self.on_step(step)
                except BaseException:
                    logger.close()
                    raise

        exported: dict[str, Path] = {}
        if acc.is_main_process:
            exported = self._export(main, modules.frozen, ema, self.stage_dir / EXPORT_DIR)
            atomic_write_json(
                self.stage_dir / "result.json",
                {
                    "stage": stage.name,
                    "steps": tstate.step,
                    "val": val_metrics,
                    "exported": {k: str(v) for k, v in exported.items()},
                },
            )
        acc.wait_for_everyone()
        if not exported:
            exported = (
                {p.name: p for p in sorted((self.stage_dir / EXPORT_DIR).iterdir()) if p.is_dir()}
                if (self.stage_dir / EXPORT_DIR).is_dir()
                else {}
            )
        logger.close()
        acc._models.clear()  # drop accelerate's references (free_memory() would also run a slow gc.collect)
        acc._optimizers.clear()
        acc._schedulers.clear()
        acc._custom_objects.clear()
        return TrainResult(
            stage=stage.name,
            steps=tstate.step,
            history=history,
            val_metrics=val_metrics,
            checkpoint=last_ckpt,
            exported=exported,
            step_times=step_times,
        )

    # ------------------------------------------------------------------------------------------------
    def _optimizer(self, params: list[torch.nn.Parameter], group: str) -> torch.optim.Optimizer:
        cfg = self.cfg
        kw = {
            "lr": float(cfg["lr"]),
            "betas": tuple(float(b) for b in cfg["betas"]),
            "eps": float(cfg["eps"]),
            "weight_decay": float(cfg["weight_decay"]),
        }
        if cfg["optimizer"] == "adam":
            return torch.optim.Adam(params, **kw)
        return torch.optim.AdamW(params, **kw)

    def _scheduler(self, opt: torch.optim.Optimizer, max_steps: int) -> Any:
        from diffusers.optimization import get_scheduler

        try:
            return get_scheduler(
                str(self.cfg["scheduler"]),
                opt,
                num_warmup_steps=int(self.cfg["warmup_steps"]),
                num_training_steps=max(1, max_steps),
            )
        except ValueError as e:
            raise ConfigError(f"train.scheduler: {e}") from e

    def _stream(
        self, ds: Any, sampler: ResumableBatchSampler, tstate: TrainState, seed: int
    ) -> Iterator[Any]:
        """Endless batches; ``tstate.epoch/batch`` always name the next batch to be drawn."""
        nw = int(self.cfg.get("num_workers", 0))
        while True:
            sampler.set_position(tstate.epoch, tstate.batch)
            loader = DataLoader(
                ds,
                batch_sampler=sampler,
                collate_fn=self.stage.collate,
                num_workers=nw,
                pin_memory=self.accelerator.device.type == "cuda",
                # a dedicated generator: creating the iterator must not consume the global RNG
                generator=torch.Generator().manual_seed(seed * 1_000_003 + tstate.epoch),
            )
            for b in loader:
                tstate.batch += 1
                yield b
            tstate.epoch += 1
            tstate.batch = 0

    def _validate(
        self,
        models: dict[str, torch.nn.Module],
        frozen: dict[str, torch.nn.Module],
        ema: EMA | None,
        seed: int,
    ) -> dict[str, float]:
        """Validation on the main process, EMA weights swapped in, training RNG streams untouched."""
        acc, stage = self.accelerator, self.stage
        metrics: dict[str, float] = {}
        if acc.is_main_process:
            val_ds = stage.val_dataset()
            if val_ds is not None and len(val_ds) > 0:
                main = unwrap(models["main"])
                py_state, np_state = random.getstate(), np.random.get_state()
                devices = [acc.device.index or 0] if acc.device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    # (creating a DataLoader iterator draws from the global RNG: keep it inside the fork)
                    loader = DataLoader(
                        val_ds,
                        batch_size=int(self.cfg["batch_size"]),
                        shuffle=False,
                        collate_fn=stage.collate,
                    )
                    batches = (
                        to_device(b, acc.device)
                        for b in itertools.islice(loader, int(self.cfg["val_batches"]))
                    )
                    gen = torch.Generator(device=acc.device).manual_seed(seed + 424242)
                    main.eval()
                    try:
                        swap = ema.applied(main) if ema is not None else contextlib.nullcontext()
                        with torch.no_grad(), swap, acc.autocast():
                            metrics = {
                                k: float(v) for k, v in stage.validate(main, frozen, batches, gen).items()
                            }
                    finally:
                        main.train()
                        random.setstate(py_state)
                        np.random.set_state(np_state)
        acc.wait_for_everyone()
        return metrics

    def _export(
        self, main: torch.nn.Module, frozen: dict[str, torch.nn.Module], ema: EMA | None, folder: Path
    ) -> dict[str, Path]:
        use_ema = ema is not None and bool(self.cfg.get("export_ema", True))
        with atomic_dir(folder) as tmp, ema.applied(main) if use_ema else contextlib.nullcontext():
            written = self.stage.export(main, frozen, tmp)
        return {name: folder / Path(p).relative_to(tmp) for name, p in written.items()}
