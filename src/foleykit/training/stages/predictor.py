"""Stage ``predictor``: timing predictors from video features (the controls the adapters need at inference).

One stage trains every predictor its table lists (``trainable: [predictor_<kind>...]``), each on its
ground-truth control measured on the clip's audio (:mod:`foleykit.training.targets`):

- ``energy`` (ReWaS phi, sec. 4.1): MSE against the Savitzky-Golay-smoothed energy resized (nearest) to the
  video-feature length (``EnergyPredictor.loss``);
- ``rms`` (Stable-V2A RMS-Mapper, sec. III-C): cross-entropy on the 64 mu-law classes with Gaussian label
  smoothing (eq. 9, ``label_sigma``, half-width ``label_window``);
- ``onsets`` (STA-V2A onset head, eq. 1): BCE on the onset track at the latent rate (exact event times
  when the data has them, librosa onsets otherwise); ``onset_pos_weight`` up-weights the sparse positives;
- ``events`` (Rhythmic Foley event detector): BCE on event presence per video frame.

A trainable video encoder (the demonstrator's frame CNN: ``video_encoder`` in ``trainable``) learns with
them; frozen encoders run without gradients (or their features come from the cache). When the batch
carries the precomputed features of the encoder's frozen parts (``video_part<i>``, from a prepared store:
``foleykit.data.cache.VideoInputsExtractor``), only its trainable parts run per step (``encode_cached``).
Batches may be windows shorter than the model window (the targets then cover the same window).

``category_weight > 0`` adds an auxiliary cross-entropy: a linear head on the time-averaged video features
predicts the clip's category (``category_index``), so the trained features also carry WHAT sounds
(material / colour / texture) for the pooled video tokens of the diffusion stages; the head is not exported.

Validation (evaluation-suite metrics where they apply): energy MAE; RMS acc@1 / acc@5 (Stable-V2A) and
tolerance accuracy (+-2 classes); onset / event average precision and frame accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from foleykit.errors import ConfigError, DataError
from foleykit.training.stages.base import Stage, StageModules, StepInputs
from foleykit.training.stages.components import dataset_split, export_pipeline, stage_components
from foleykit.training.stages.denoising import collate_av, drop_vision
from foleykit.training.targets import WithTargets

#: Ground-truth field each predictor kind regresses.
TARGET_OF = {"energy": "energy", "rms": "rms_class", "onsets": "onsets", "events": "presence"}


class PredictorTask(nn.Module):
    """Video (features, or frames through a trainable encoder) -> every predictor's output.

    Args:
        predictors: ``{kind: TimingPredictor}``.
        video_encoder: A trainable video encoder run on ``frames`` inside the forward, or None.

    Shapes:
        ``forward(inputs: Tensor[B x T_v x D] features | uint8 Tensor[B x T_v x H x W x 3] frames, seq)``
        -> ``{"energy": Tensor[B x T_v], "rms": Tensor[B x N_ctrl x 64], "onsets": Tensor[B x N_lat],
        "events": Tensor[B x T_v]}`` (the kinds present).
    """

    def __init__(
        self,
        *,
        predictors: Mapping[str, nn.Module],
        video_encoder: nn.Module | None = None,
        num_categories: int = 0,
    ) -> None:
        super().__init__()
        self.predictors = nn.ModuleDict(dict(predictors))
        self.video_encoder = video_encoder
        self.category_head = None
        if num_categories > 0:
            dim = int(getattr(video_encoder, "dim", 0) or next(iter(self.predictors.values())).in_dim)
            self.category_head = nn.Linear(dim, num_categories)

    def forward(
        self, inputs: torch.Tensor, seq: Any, cached: Mapping[int, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """``cached``: precomputed features of some encoder parts (``ConcatVideoEncoder.encode_cached``).
        ``seq`` is the geometry of the window (``seq.with_duration`` for windows shorter than the model's)."""
        if self.video_encoder is None:
            feats = inputs
        elif cached:
            feats = self.video_encoder.encode_cached(inputs, dict(cached)).float()
        else:
            feats = self.video_encoder.encode(inputs).float()
        seq = (
            seq.with_duration(feats.shape[1] / seq.video_fps)
            if feats.shape[1] != seq.num_video_frames
            else seq
        )
        out = {}
        for kind, p in self.predictors.items():
            if kind == "rms":
                out[kind] = p(feats, seq.num_control_frames)
            elif kind == "onsets":
                out[kind] = p(feats, seq.num_latent_frames)
            else:
                out[kind] = p(feats)
        if self.category_head is not None:
            out["category"] = self.category_head(feats.mean(dim=1))
        return out


class PredictorStage(Stage):
    """Train timing predictors (see module docstring)."""

    name = "predictor"

    def build(self) -> StageModules:
        pipe = self.ctx.pipeline
        trainable, _frozen = stage_components(self.ctx)
        for name, module in pipe.components().items():
            module.requires_grad_(name in trainable)
        kinds = [n[len("predictor_") :] for n in trainable if n.startswith("predictor_")]
        other = [n for n in trainable if not n.startswith("predictor_") and n != "video_encoder"]
        if not kinds or other:
            raise ConfigError(
                f"stage {self.ctx.stage_dir.name!r} (predictor family) trains predictor_* components "
                f"(and optionally video_encoder); got {sorted(trainable)}"
            )
        unknown = [k for k in kinds if k not in TARGET_OF]
        if unknown:
            raise ConfigError(f"no training target for predictor kinds {unknown}")
        self.kinds = kinds
        encoder = pipe.video_encoder
        # an encoder without weights (motion statistics, the debug encoder) has nothing to train
        self.train_encoder = "video_encoder" in trainable and any(True for _ in encoder.parameters())
        if self.train_encoder:
            encoder.frozen = False
        self.categories: list[str] = []
        if float(self.cfg.get("category_weight") or 0.0) > 0:
            self.categories = list(getattr(dataset_split(self.ctx, "train"), "categories", None) or [])
            if not self.categories:
                raise ConfigError(
                    "stages.predictor.category_weight > 0 needs training data with a category "
                    "vocabulary (a prepared store: foleykit train --store)"
                )
        task = PredictorTask(
            predictors={k: pipe.predictors[k] for k in kinds},
            video_encoder=encoder if self.train_encoder else None,
            num_categories=len(self.categories),
        )
        moved = {} if self.train_encoder or encoder is None else {"video_encoder": encoder}
        return StageModules(trainable={"main": task}, frozen=moved)

    # --- data ------------------------------------------------------------------------------------------
    def _kinds(self) -> list[str]:
        kinds = getattr(self, "kinds", None)
        if kinds is None:
            kinds = [
                n[len("predictor_") :] for n in self.cfg.get("trainable", []) if n.startswith("predictor_")
            ]
        return kinds

    def _wrap(self, ds: Any) -> Any:
        if ds is None:
            return None
        return WithTargets(ds, seq=self.ctx.seq, kinds=[TARGET_OF[k] for k in self._kinds()])

    def train_dataset(self) -> Dataset:
        return self._wrap(dataset_split(self.ctx, "train"))

    def val_dataset(self) -> Dataset | None:
        return self._wrap(dataset_split(self.ctx, "validation", required=False))

    def collate(self, items: list[Mapping[str, Any]]) -> dict[str, Any]:
        seq = self.ctx.seq
        parts = [k for k in items[0] if str(k).startswith("video_part")]
        first = items[0].get("frames", items[0].get("video_features"))
        if first is not None and len(first) != seq.num_video_frames:  # windows shorter than the model window
            seq = seq.with_duration(len(first) / seq.video_fps)
        batch = collate_av(items, seq)
        for k in parts:
            batch[k] = torch.stack([torch.as_tensor(it[k]).float() for it in items])
        if "category_index" in items[0]:
            batch["category_index"] = torch.as_tensor([int(it["category_index"]) for it in items])
        return batch

    # --- loss ------------------------------------------------------------------------------------------
    def _cached(self, batch: Mapping[str, Any]) -> dict[int, torch.Tensor] | None:
        """Precomputed features of the encoder's frozen parts (``video_part<i>`` -> part ``i``)."""
        out = {int(k[len("video_part") :]): v for k, v in batch.items() if str(k).startswith("video_part")}
        return out or None

    def _forward(
        self,
        model: nn.Module,
        batch: Mapping[str, Any],
        frozen: Mapping[str, nn.Module],
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        x = self._inputs(batch, frozen)
        if generator is not None and not self.train_encoder:  # training: features without the vision models
            p = float(self.cfg.get("vision_dropout") or 0.0)
            x = drop_vision(x, self.ctx.pipeline.video_encoder, p, generator)
        cached = self._cached(batch) if self.train_encoder else None
        return model(x, self.ctx.seq, cached) if cached else model(x, self.ctx.seq)

    def _inputs(self, batch: Mapping[str, Any], frozen: Mapping[str, nn.Module]) -> torch.Tensor:
        if self.train_encoder:
            if "frames" not in batch:
                raise DataError("the predictor stage trains the video encoder: the data needs 'frames'")
            return batch["frames"]
        if "video_features" in batch:
            return batch["video_features"].float()
        if "frames" in batch and "video_encoder" in frozen:
            return frozen["video_encoder"].encode(batch["frames"]).float()
        raise DataError("the predictor stage needs video: items with 'frames' or cached 'video_features'")

    def _losses(self, out: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        from foleykit.controls.rms import gaussian_smoothed_targets

        pipe = self.ctx.pipeline
        losses = {}
        for kind in self.kinds:
            p = pipe.predictors[kind]
            target = batch[TARGET_OF[kind]]
            if kind == "energy":
                losses[kind] = p.loss(out[kind], target.float())
            elif kind == "rms":
                soft = gaussian_smoothed_targets(
                    target.long(),
                    n_classes=p.num_classes,
                    sigma=float(self.cfg.get("label_sigma", 1.0)),
                    window=int(self.cfg.get("label_window", 2)),
                ).float()
                losses[kind] = p.loss(out[kind], soft)
            else:
                pw = self.cfg.get("onset_pos_weight")
                losses[kind] = p.loss(out[kind], target.float(), pos_weight=None if pw is None else float(pw))
        if "category" in out:
            if "category_index" not in batch:
                raise DataError("category_weight > 0: the batch needs 'category_index'")
            target = batch["category_index"].long()
            ok = target >= 0
            ce = (
                torch.nn.functional.cross_entropy(out["category"][ok], target[ok])
                if bool(ok.any())
                else out["category"].sum() * 0.0
            )
            losses["category"] = float(self.cfg["category_weight"]) * ce
        return losses

    def loss(self, inputs: StepInputs, group: str) -> tuple[torch.Tensor, dict[str, float]]:
        out = self._forward(inputs.models["main"], inputs.batch, inputs.frozen, inputs.generator)
        losses = self._losses(out, inputs.batch)
        total = sum(losses.values())
        return total, {f"loss_{k}": float(v.detach()) for k, v in losses.items()}

    # --- validation / export ---------------------------------------------------------------------------
    def validate(
        self,
        model: nn.Module,
        frozen: Mapping[str, nn.Module],
        batches: Iterable[Any],
        generator: torch.Generator,
    ) -> dict[str, float]:
        from foleykit.evaluation.metrics.envelope import tolerance_accuracy, topk_accuracy
        from foleykit.models.predictors import resize_time

        collected: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in self.kinds}
        loss_sum, n = 0.0, 0
        cat_hits, cat_n = 0, 0
        for b in batches:
            out = self._forward(model, b, frozen)
            loss_sum += float(sum(self._losses(out, b).values()))
            n += 1
            if "category" in out:
                ok = b["category_index"] >= 0
                cat_hits += int((out["category"].argmax(-1)[ok] == b["category_index"][ok]).sum())
                cat_n += int(ok.sum())
            for kind in self.kinds:
                target = b[TARGET_OF[kind]]
                if kind == "energy":
                    target = resize_time(target.float(), out[kind].shape[1])
                collected[kind].append((out[kind].float().cpu().numpy(), target.cpu().numpy()))
        metrics: dict[str, float] = {"loss": loss_sum / max(n, 1)}
        if cat_n:
            metrics["category_acc"] = cat_hits / cat_n
        for kind, pairs in collected.items():
            if not pairs:
                continue
            pred = np.concatenate([p.reshape(-1, *p.shape[2:]) for p, _ in pairs])
            tgt = np.concatenate([t.reshape(-1) for _, t in pairs])
            if kind == "energy":
                metrics["energy_mae"] = float(np.mean(np.abs(pred - tgt)))
            elif kind == "rms":
                metrics["rms_acc1"] = topk_accuracy(pred, tgt, 1)
                metrics["rms_acc5"] = topk_accuracy(pred, tgt, 5)
                metrics["rms_acc_tol2"] = tolerance_accuracy(pred.argmax(-1), tgt, 2)
            else:
                metrics.update(_binary_metrics(kind, pred, tgt))
        return metrics

    def export(self, model: nn.Module, frozen: Mapping[str, nn.Module], folder: Path) -> dict[str, Path]:
        return export_pipeline(self.ctx, folder)


def _binary_metrics(kind: str, logits: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Frame accuracy at p >= 0.5 and average precision (when both classes occur) of a binary track."""
    from sklearn.metrics import average_precision_score

    prob = 1.0 / (1.0 + np.exp(-logits))
    out = {f"{kind}_acc": float(np.mean((prob >= 0.5) == (target >= 0.5)))}
    if 0 < target.sum() < target.size:
        out[f"{kind}_ap"] = float(average_precision_score(target >= 0.5, prob))
    return out
