"""Stage ``prior``: the text/audio(/video)-to-audio latent diffusion model (STA-V2A's "T2A initialisation").

The denoiser and the condition assembler (projections + learned null embeddings) learn the diffusion loss
of the recipe's sampler (:class:`~foleykit.training.diffusion.DiffusionObjective`: epsilon for the
AudioLDM family, v for the DiT / Stable Audio Open family) on clean latents from the frozen autoencoder
(the feature cache's ``latents``, or encoded on the fly), conditioned on c = [text; video; audio] (STA-V2A
eq. 5). Each condition is replaced by its null with probability ``cond_dropout.<name>`` per clip, so the
model learns the unconditional branch of classifier-free guidance (STA-V2A eq. 7; ReWaS p_text = 0.3).

``conditions`` (stage knob) restricts which conditions are shown to the model (STA-V2A's prior is
text-to-audio: ``[text]``); the others stay null. Which components train is the recipe's
``training.stages.prior.trainable`` (VTA-LDM trains the frame projector with the denoiser).

Validation: the diffusion loss on validation clips with fixed noise (STA-V2A keeps the checkpoint with the
best validation loss).

A prior stage may also list control adapters in ``trainable`` (joint training of the base and its
ControlNet, as STA-V2A trains its UNet with the onset ControlNet): ``control_dropout`` is then the
probability, per clip, that the adapters are switched off (residual scale 0), so the same base also learns
to denoise without any timing control (the no-control twin of an ablation is this model with adapter weight 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from foleykit.errors import ConfigError
from foleykit.training.diffusion import DiffusionObjective
from foleykit.training.stages.base import Stage, StageModules, StepInputs
from foleykit.training.stages.components import dataset_split, export_pipeline, stage_components
from foleykit.training.stages.denoising import (
    CropWindow,
    DenoiseTask,
    batch_latents,
    collate_av,
    draw_dropout,
    drop_vision,
    raw_parts,
    video_features,
)
from foleykit.training.targets import WithTargets

#: Target field and its natural rate for each control kind an adapter consumes.
_KIND_TARGET = {"energy": "energy", "rms": "rms", "onsets": "onsets", "events": "presence"}


#: The grid (``SequenceConfig.grid``) each control kind's target lives on.
_KIND_GRID = {"energy": "energy", "rms": "control", "onsets": "latent", "events": "video"}


def _natural_rate(kind: str, seq: Any) -> float:
    return seq.grid(_KIND_GRID[kind])[0]


class AdapterControls:
    """Dataset view: adds ``control_<adapter>`` = the ground-truth control on the adapter's grid."""

    def __init__(self, base: Any, *, seq: Any, adapters: Mapping[str, tuple[str, str]]) -> None:
        self.base, self.seq, self.adapters = base, seq, dict(adapters)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from foleykit.controls.base import TemporalControl

        item = dict(self.base[index])
        for name, (kind, grid) in self.adapters.items():
            values = np.asarray(item[_KIND_TARGET[kind]], dtype=np.float32)
            c = TemporalControl(kind, values, _natural_rate(kind, self.seq))
            item[f"control_{name}"] = torch.from_numpy(
                np.ascontiguousarray(c.to_grid(self.seq, grid).values, dtype=np.float32)
            )
        return item


class DiffusionStage(Stage):
    """Common part of the stages trained with the diffusion loss (prior, adapter, semantic).

    Subclasses choose the components (``extra_trainable``), the control targets their adapters need
    (``target_kinds``) and the adapter inputs (``controls``).
    """

    name = "prior"

    # --- components ------------------------------------------------------------------------------------
    def extra_trainable(self) -> tuple[str, ...]:
        return ()

    def build(self) -> StageModules:
        pipe = self.ctx.pipeline
        trainable, _frozen = stage_components(self.ctx, extra=self.extra_trainable())
        comps = pipe.components()
        for name, module in comps.items():
            module.requires_grad_(name in trainable)
        pieces: dict[str, nn.Module] = {"denoiser": pipe.denoiser, "assembler": pipe.assembler}
        if pipe.video_condition is not None:
            pieces["video_condition"] = pipe.video_condition
        self.adapter_names = [
            n for n in pipe.adapters if f"controlnet_{n}" in trainable or f"control_encoder_{n}" in trainable
        ]
        for n in self.adapter_names:
            pieces[f"adapter_{n}"] = pipe.adapters[n]
        table = self.ctx.stage_dir.name  # the stage's name in the run config (self.name is its family)
        local = [n for n in self.adapter_names if pipe.adapters[n].features == "local"]
        if self.cfg.get("crop_seconds") and local:
            raise ConfigError(
                f"stages.{table}.crop_seconds: adapter(s) {local} read local video features on the whole clip's "
                "grid; train them on whole clips (crop_seconds: null)"
            )
        train_pieces = {k: m for k, m in pieces.items() if any(p.requires_grad for p in m.parameters())}
        frozen_pieces = {k: m for k, m in pieces.items() if k not in train_pieces}
        frozen_pieces["codec"] = pipe.codec
        if not train_pieces:
            raise ConfigError(f"stage {table!r}: none of {sorted(trainable)} is used by the diffusion loss")
        self.task_pieces = sorted(train_pieces)
        task = DenoiseTask(trainable=train_pieces, frozen=frozen_pieces)
        self.objective = DiffusionObjective(pipe.scheduler, snr_gamma=self.cfg.get("snr_gamma"))
        self.sources = list(pipe.assembler.config.sources)
        use = self.cfg.get("conditions")
        self.use = list(self.sources if use in (None, "all") else use)
        bad = [c for c in self.use if c not in ("text", "video", "audio")]
        if bad:
            raise ConfigError(f"stages.{table}.conditions: unknown condition(s) {bad} (text, video, audio)")
        # frozen modules the trainer moves to the device (fully frozen ones only)
        moved = {"codec": pipe.codec}
        for n in ("text_encoder", "audio_encoder", "video_encoder"):
            m = getattr(pipe, n)
            if m is not None and not any(p.requires_grad for p in m.parameters()):
                moved[n] = m
        for k, m in frozen_pieces.items():
            moved.setdefault(k, m)
        for kind, p in pipe.predictors.items():
            if not any(q.requires_grad for q in p.parameters()):
                moved[f"predictor_{kind}"] = p
        trainable_modules = {"main": task}
        return StageModules(trainable=trainable_modules, frozen=moved)

    # --- data ------------------------------------------------------------------------------------------
    def _adapters(self) -> dict[str, tuple[str, str]]:
        pipe = self.ctx.pipeline
        names = getattr(self, "adapter_names", None)
        if names is None:  # datasets may be requested before build()
            names = list(pipe.adapters)
        out = {}
        for n in names:
            a = pipe.adapters[n]
            if a.control_kind not in _KIND_TARGET:
                raise ConfigError(f"adapter {n!r}: cannot measure a {a.control_kind!r} control from audio")
            out[n] = (a.control_kind, a.grid)
        return out

    def target_kinds(self) -> list[str]:
        return [_KIND_TARGET[kind] for kind, _ in self._adapters().values()]

    def _wrap(self, ds: Any) -> Any:
        if ds is None:
            return None
        return AdapterControls(
            WithTargets(ds, seq=self.ctx.seq, kinds=self.target_kinds()),
            seq=self.ctx.seq,
            adapters=self._adapters(),
        )

    def collate(self, items: list[Mapping[str, Any]]) -> dict[str, Any]:
        batch = collate_av(items, self.ctx.seq)
        for name in self._adapters():
            batch[f"control_{name}"] = torch.stack([it[f"control_{name}"] for it in items])
        return batch

    def controls(
        self, batch: Mapping[str, Any], frozen: Mapping[str, nn.Module], feats: torch.Tensor | None
    ) -> list[tuple[str, torch.Tensor | None, torch.Tensor | None]]:
        pipe = self.ctx.pipeline
        out = []
        for name in self.adapter_names:
            adapter = pipe.adapters[name]
            series = batch[f"control_{name}"].float()
            local = None
            if adapter.features == "local":
                if feats is None:
                    raise ConfigError(
                        f"adapter {name!r} reads local video features: the data needs frames or "
                        "cached video_features"
                    )
                local = feats
                head = frozen.get("predictor_onsets")
                if head is not None:  # STA-V2A e_lv from the onset pretext head
                    with torch.no_grad():
                        local = head(feats, self.ctx.seq.num_latent_frames, return_features=True)[1]
                if not getattr(adapter.encoder.config, "series_channels", 1):
                    series = None
            out.append((name, series, local))
        return out

    def train_dataset(self) -> Dataset:
        return self._wrap(dataset_split(self.ctx, "train"))

    def val_dataset(self) -> Dataset | None:
        return self._wrap(dataset_split(self.ctx, "validation", required=False))

    # --- loss ------------------------------------------------------------------------------------------
    def diffusion_loss(
        self,
        model: nn.Module,
        frozen: Mapping[str, nn.Module],
        batch: Mapping[str, Any],
        generator: torch.Generator,
        *,
        dropout: bool = True,
    ) -> torch.Tensor:
        """The (weighted) diffusion loss of one batch."""
        pipe = self.ctx.pipeline
        device = next(iter(model.parameters())).device
        x0 = batch_latents(batch, frozen["codec"])
        b = x0.shape[0]
        window = self.crop_window(b, generator) if dropout else None
        if window is not None:
            x0 = window.crop(x0, "latent", dim=2)
        noised = self.objective.sample(x0, generator)
        parts = raw_parts(
            batch,
            sources=self.sources,
            use=self.use,
            text_encoder=pipe.text_encoder,
            audio_encoder=pipe.audio_encoder,
            sample_rate=self.ctx.seq.sample_rate,
            device=device,
        )
        feats = (
            video_features(batch, pipe.video_encoder)
            if ("video" in self.sources and "video" in self.use)
            or any(pipe.adapters[n].features == "local" for n in self.adapter_names)
            else None
        )
        if window is not None:
            feats = None if feats is None else window.crop(feats, "video", dim=1)
            batch = {
                **batch,
                **{
                    f"control_{n}": window.crop(batch[f"control_{n}"], g, dim=-1)
                    for n, (_, g) in self._adapters().items()
                },
            }
        if feats is not None and dropout:
            feats = drop_vision(
                feats, pipe.video_encoder, float(self.cfg.get("vision_dropout") or 0.0), generator
            )
        probs = (self.cfg.get("cond_dropout") or {}) if dropout else {}
        drop = draw_dropout(probs, self.sources, b, generator)
        if "video" in self.sources and "video" not in self.use:
            drop["video"] = torch.ones(b, dtype=torch.bool)
        secs = torch.full((b,), float(self.ctx.seq.duration), device=device)
        scale = None
        p_ctrl = float(self.cfg.get("control_dropout") or 0.0) if dropout else 0.0
        if p_ctrl > 0 and self.adapter_names:  # rows denoised without the adapters: the no-control twin
            u = torch.rand(b, generator=generator, device=generator.device).cpu()
            scale = (u >= p_ctrl).float().to(device)
        pred = model(
            noised.noisy,
            noised.timesteps,
            parts=parts,
            drop=drop,
            seconds_total=secs,
            video_features=feats if "video" in self.use else None,
            controls=self.controls(batch, frozen, feats),
            control_scale=scale,
        )
        return self.objective.loss(pred, noised)

    def crop_window(self, batch_size: int, generator: torch.Generator) -> CropWindow | None:
        """The random training windows of a batch (``crop_seconds``), or None to train on whole clips."""
        seconds = self.cfg.get("crop_seconds")
        return CropWindow.draw(self.ctx.seq, float(seconds), batch_size, generator) if seconds else None

    def loss(self, inputs: StepInputs, group: str) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.diffusion_loss(inputs.models["main"], inputs.frozen, inputs.batch, inputs.generator)
        return loss, {"diffusion": float(loss.detach())}

    # --- validation / export ---------------------------------------------------------------------------
    def validate(
        self,
        model: nn.Module,
        frozen: Mapping[str, nn.Module],
        batches: Iterable[Any],
        generator: torch.Generator,
    ) -> dict[str, float]:
        """Diffusion loss on validation clips (fixed generator, no condition dropout); with trained adapters
        and ``val_generate > 0``, timing metrics of a quick generation too."""
        batches = list(batches)
        losses = [self.diffusion_loss(model, frozen, b, generator, dropout=False) for b in batches]
        metrics = {"diffusion": float(torch.stack(losses).mean())} if losses else {}
        n = int(self.cfg.get("val_generate", 0))
        if n > 0 and batches and self.adapter_names:
            metrics.update(self._generation_metrics(batches, n, generator))
        return metrics

    def _generation_metrics(
        self, batches: list[Mapping[str, Any]], n: int, generator: torch.Generator
    ) -> dict[str, float]:
        """Generate ``n`` validation clips driven by the controls measured on their own audio, and score their
        timing against the originals with the evaluation suite (energy MAE, E-L1, AA-Align, onset acc / AP
        in strict mode; AV-Align against the clip's frames when it has them).

        Clips without frames are skipped when an adapter needs local video features.
        """
        from foleykit.evaluation import evaluate

        pipe, seq = self.ctx.pipeline, self.ctx.seq
        sr = seq.sample_rate
        needs_frames = any(a.features == "local" for a in pipe.adapters.values())
        generated, reference, videos = {}, {}, {}
        for b in batches:
            for i in range(len(b["audio"])):
                frames = b["frames"][i].cpu().numpy() if "frames" in b else None
                if len(generated) >= n or (needs_frames and frames is None):
                    break
                ref = b["audio"][i].float().cpu().numpy()
                prompt = b["caption"][i] if "caption" in b and pipe.text_encoder is not None else None
                seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
                out = pipe(
                    frames=frames,
                    prompt=prompt,
                    control_audio=ref,
                    control_audio_sample_rate=sr,
                    duration=seq.duration,
                    num_inference_steps=int(self.cfg.get("val_steps", 4)),
                    seed=seed,
                )
                name = f"clip{len(generated):03d}"
                generated[name], reference[name] = (out.audio, sr), (ref, sr)
                if frames is not None:
                    videos[name] = (frames, seq.video_fps)
        if not generated:
            return {}
        metrics = ["energy_mae", "e_l1", "aa_align", "onset"] + (
            ["av_align"] if len(videos) == len(generated) else []
        )
        report = evaluate(
            generated, reference, videos or None, metrics=metrics, onset_mode="strict", cache=False
        )
        return {f"gen_{k}": float(v) for k, v in report.means().items() if v is not None}

    def export(self, model: nn.Module, frozen: Mapping[str, nn.Module], folder: Path) -> dict[str, Path]:
        return export_pipeline(self.ctx, folder)


class PriorStage(DiffusionStage):
    """Stage ``prior`` (see module docstring)."""

    name = "prior"
