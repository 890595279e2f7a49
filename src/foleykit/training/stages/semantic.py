"""Stage ``semantic``: the semantic pieces — attentive pooling / frame projector and the event detector.

- Attentive pooling to K global video tokens (STA-V2A eq. 2-4) and the VTA-LDM frame projector map video
  features to cross-attention tokens; they have no target of their own, so they learn through the
  diffusion loss of the (frozen) denoiser, with the condition assembler (c = [text; video; audio],
  STA-V2A eq. 5) and condition dropout as in the prior stage.
- The Rhythmic Foley event detector (``predictor_events``) learns sound-event presence per video frame
  (BCE), as in the predictor stage.

The stage table's ``trainable`` decides which parts train (default: ``video_condition`` +
``condition_assembler`` when the pipeline has a video condition, and ``predictor_events`` when it has an
event detector); the loss is ``diffusion_weight`` x diffusion + ``event_weight`` x BCE.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from foleykit.errors import ConfigError
from foleykit.training.stages.base import Stage, StageModules, StepInputs
from foleykit.training.stages.components import dataset_split, export_pipeline
from foleykit.training.stages.denoising import collate_av
from foleykit.training.stages.predictor import TARGET_OF, PredictorStage
from foleykit.training.stages.prior import DiffusionStage
from foleykit.training.targets import WithTargets


class SemanticTask(nn.Module):
    """Both trainable units in one module (one forward per step, as DDP requires).

    Args:
        diffusion: A ``DenoiseTask`` or None.
        predictors: A ``PredictorTask`` or None.
    """

    def __init__(self, *, diffusion: nn.Module | None, predictors: nn.Module | None) -> None:
        super().__init__()
        self.diffusion = diffusion
        self.predictors = predictors

    def forward(
        self,
        diffusion_args: tuple | None,
        diffusion_kwargs: dict | None,
        predictor_inputs: torch.Tensor | None,
        seq: Any,
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        pred = self.diffusion(*diffusion_args, **diffusion_kwargs) if diffusion_args is not None else None
        outs = self.predictors(predictor_inputs, seq) if predictor_inputs is not None else {}
        return pred, outs


class _Forwarder(nn.Module):
    """Lets ``DiffusionStage.diffusion_loss`` call ``model(...)`` while the real call goes through the task."""

    def __init__(self, task: nn.Module, predictor_inputs: torch.Tensor | None, seq: Any, sink: dict) -> None:
        super().__init__()
        self.__dict__["_task"] = task
        self.__dict__["_inputs"] = predictor_inputs
        self.__dict__["_seq"] = seq
        self.__dict__["_sink"] = sink

    def parameters(self, recurse: bool = True):  # device lookup of diffusion_loss
        return self._task.parameters(recurse)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        pred, outs = self._task(args, kwargs, self._inputs, self._seq)
        self._sink["outs"] = outs
        return pred


class SemanticStage(Stage):
    """Train the semantic pieces (see module docstring)."""

    name = "semantic"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        names = list(self.cfg.get("trainable") or [])
        self.pred_names = [n for n in names if n.startswith("predictor_") or n == "video_encoder"]
        self.diff_names = [n for n in names if n not in self.pred_names]
        if not names:
            raise ConfigError(
                f"stage {ctx.stage_dir.name!r} trains nothing: set its 'trainable' component list"
            )
        self.diff = (
            DiffusionStage(dataclasses.replace(ctx, cfg={**self.cfg, "trainable": self.diff_names}))
            if self.diff_names
            else None
        )
        self.pred = (
            PredictorStage(dataclasses.replace(ctx, cfg={**self.cfg, "trainable": self.pred_names}))
            if any(n.startswith("predictor_") for n in self.pred_names)
            else None
        )

    def build(self) -> StageModules:
        comps = self.ctx.pipeline.components()
        trainable = set(self.diff_names) | set(self.pred_names)
        frozen: dict[str, nn.Module] = {}
        d_task = p_task = None
        if self.diff is not None:
            dm = self.diff.build()
            d_task, frozen = dm.trainable["main"], dict(dm.frozen)
        if self.pred is not None:
            pm = self.pred.build()
            p_task = pm.trainable["main"]
            frozen.update(pm.frozen)
        for name, module in comps.items():  # the two builds each froze the other's components
            module.requires_grad_(name in trainable)
        trained = {id(comps[n]) for n in trainable if n in comps}
        frozen = {k: m for k, m in frozen.items() if id(m) not in trained}
        return StageModules(
            trainable={"main": SemanticTask(diffusion=d_task, predictors=p_task)}, frozen=frozen
        )

    # --- data ------------------------------------------------------------------------------------------
    def _wrap(self, ds: Any) -> Any:
        if ds is None:
            return None
        kinds = [TARGET_OF[n[len("predictor_") :]] for n in self.pred_names if n.startswith("predictor_")]
        return WithTargets(ds, seq=self.ctx.seq, kinds=kinds) if kinds else ds

    def train_dataset(self) -> Dataset:
        return self._wrap(dataset_split(self.ctx, "train"))

    def val_dataset(self) -> Dataset | None:
        return self._wrap(dataset_split(self.ctx, "validation", required=False))

    def collate(self, items: list[Mapping[str, Any]]) -> dict[str, Any]:
        return collate_av(items, self.ctx.seq)

    # --- loss ------------------------------------------------------------------------------------------
    def _step(
        self,
        model: nn.Module,
        frozen: Mapping[str, nn.Module],
        batch: Mapping[str, Any],
        generator: torch.Generator,
        *,
        dropout: bool,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        inputs = self.pred._inputs(batch, frozen) if self.pred is not None else None
        logs: dict[str, float] = {}
        total = torch.zeros((), device=next(model.parameters()).device)
        sink: dict[str, Any] = {}
        if self.diff is not None:
            fwd = _Forwarder(model, inputs, self.ctx.seq, sink)
            diff = self.diff.diffusion_loss(fwd, frozen, batch, generator, dropout=dropout)
            total = total + float(self.cfg.get("diffusion_weight", 1.0)) * diff
            logs["diffusion"] = float(diff.detach())
            outs = sink.get("outs", {})
        else:
            _, outs = model(None, None, inputs, self.ctx.seq)
        if self.pred is not None:
            for k, v in self.pred._losses(outs, batch).items():
                total = total + float(self.cfg.get("event_weight", 1.0)) * v
                logs[f"loss_{k}"] = float(v.detach())
        return total, logs

    def loss(self, inputs: StepInputs, group: str) -> tuple[torch.Tensor, dict[str, float]]:
        return self._step(inputs.models["main"], inputs.frozen, inputs.batch, inputs.generator, dropout=True)

    def validate(
        self,
        model: nn.Module,
        frozen: Mapping[str, nn.Module],
        batches: Iterable[Any],
        generator: torch.Generator,
    ) -> dict[str, float]:
        batches = list(batches)
        metrics: dict[str, float] = {}
        if self.diff is not None and model.diffusion is not None:
            losses = [
                self.diff.diffusion_loss(model.diffusion, frozen, b, generator, dropout=False)
                for b in batches
            ]
            if losses:
                metrics["diffusion"] = float(torch.stack(losses).mean())
        if self.pred is not None and model.predictors is not None:
            metrics.update(
                {
                    k: v
                    for k, v in self.pred.validate(model.predictors, frozen, batches, generator).items()
                    if k != "loss"
                }
            )
        return metrics

    def export(self, model: nn.Module, frozen: Mapping[str, nn.Module], folder: Path) -> dict[str, Path]:
        return export_pipeline(self.ctx, folder)
