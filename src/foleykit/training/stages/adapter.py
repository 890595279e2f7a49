"""Stage ``adapter``: timing-control adapters (ControlNets) on a pretrained, frozen base.

ReWaS (sec. 4.2) and Stable-V2A (sec. IV-D) train their adapters on ground-truth controls measured on the
training audio (energy / RMS envelope); Rhythmic Foley trains its temporal adapter on onset masks of
pure audio (sec. III-A); at inference a timing predictor supplies the control from video. The controls
here come from :mod:`foleykit.training.targets` (the :mod:`foleykit.controls` signals), put on each
adapter's grid exactly as the pipeline does (``TemporalControl.to_grid``). STA-V2A's adapter reads the
local video features e_lv of the (frozen) onset head.

The base denoiser is frozen (``unfreeze_base=false``, the default); ``unfreeze_base=true`` also trains
the denoiser (STA-V2A sec. III-C "CN Frozen" ablation: the paper trains both). Text is dropped with
``cond_dropout.text`` (ReWaS 0.3).

Memory knobs (full-size backbones on small machines; figures in docs/speed.md):

- ``gradient_checkpointing=true``: the blocks of the base denoiser (diffusers' UNet / the DiT's blocks, run
  through ``DiTDenoiser.run_block``) and of the UNet ControlNets recompute their activations in the backward
  pass instead of keeping them (the base's activations are needed: the ControlNet residuals feed it).
- ``precision=bf16``: the frozen base denoiser, VAE and vocoder are held in bfloat16 and the step runs under
  bf16 autocast; trainable weights, their gradients, the optimizer state and the EMA stay float32. The fp32
  weights of the cast components are kept on disk (in the stage folder) and written into every export, so the
  exported model's base is bit-identical to the one the stage started from.

Validation: diffusion loss, plus a quick generation of ``val_generate`` clips with ``val_steps`` sampling
steps driven by their ground-truth controls, scored with the evaluation suite's temporal metrics (energy
MAE, E-L1, AA-Align, onset accuracy; AV-Align when the clip has frames).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from foleykit.errors import ConfigError
from foleykit.training.stages.components import BASE_COMPONENTS
from foleykit.training.stages.prior import DiffusionStage

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
#: Frozen components cast by ``precision=bf16`` (when the stage does not train them).
CAST_COMPONENTS = ("unet", "transformer", "projection_model", "vae", "vocoder")


class AdapterStage(DiffusionStage):
    """Train the recipe's control adapters (see module docstring)."""

    name = "adapter"

    def extra_trainable(self) -> tuple[str, ...]:
        return BASE_COMPONENTS if self.cfg.get("unfreeze_base") else ()

    def build(self):
        precision = str(self.cfg.get("precision", "fp32"))
        if precision not in PRECISIONS:
            raise ConfigError(
                f"stages.{self.ctx.stage_dir.name}.precision must be one of {', '.join(PRECISIONS)}, got "
                f"{precision!r}"
            )
        modules = super().build()
        if not self.adapter_names:
            raise ConfigError(
                f"stage {self.ctx.stage_dir.name!r} (adapter family) trains no controlnet_* / "
                "control_encoder_* component"
            )
        if self.cfg.get("gradient_checkpointing"):
            enable_checkpointing(self.ctx.pipeline, self.adapter_names)
        self.amp_dtype = PRECISIONS[precision]
        self.fp32_files: dict[str, Path] = {}
        if self.amp_dtype is not None:
            self.fp32_files = self._cast_frozen(self.amp_dtype)
            modules.trainable["main"].autocast_dtype = self.amp_dtype
        return modules

    # --- precision -----------------------------------------------------------------------------------------
    def _cast_frozen(self, dtype: torch.dtype) -> dict[str, Path]:
        """Cast the frozen base / codec to ``dtype``, keeping their fp32 weights in files for the exports."""
        from safetensors.torch import save_file

        comps = self.ctx.pipeline.components()
        names = [
            n
            for n in CAST_COMPONENTS
            if n in comps
            and any(True for _ in comps[n].parameters())
            and not any(p.requires_grad for p in comps[n].parameters())
        ]
        if not names:
            return {}
        self.ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        keep = Path(tempfile.mkdtemp(prefix="fp32-", dir=self.ctx.stage_dir))
        weakref.finalize(self, shutil.rmtree, keep, True)
        files = {}
        for n in names:
            module = comps[n]
            state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
            files[n] = keep / f"{n}.safetensors"
            save_file(_unshared(state), files[n], metadata={"format": "pt"})
            del state
            module.to(dtype=dtype)
        return files

    def export(self, model: nn.Module, frozen: Mapping[str, nn.Module], folder: Path) -> dict[str, Path]:
        out = super().export(model, frozen, folder)
        if self.fp32_files:  # the cast components go out with their original fp32 weights
            for name, src in self.fp32_files.items():
                targets = sorted((folder / name).glob("*.safetensors"))
                if len(targets) != 1:
                    raise ConfigError(f"export of {name!r}: expected one weights file in {folder / name}")
                shutil.copyfile(src, targets[0])
            index = folder / "model_index.json"
            data = json.loads(index.read_text(encoding="utf-8"))
            data.setdefault("_foleykit", {})["dtype"] = "float32"
            from foleykit.utils.io import atomic_write_json

            atomic_write_json(index, data)
        return out

    def _generation_metrics(
        self, batches: list[Mapping[str, Any]], n: int, generator: torch.Generator
    ) -> dict[str, float]:
        """As the diffusion stages; with ``precision=bf16`` the pipeline's own bf16 autocast mixes the bf16
        base with the fp32 adapters (the diffusion loss autocasts inside ``DenoiseTask``)."""
        pipe = self.ctx.pipeline
        if getattr(self, "amp_dtype", None) is None:
            return super()._generation_metrics(batches, n, generator)
        old, pipe.precision = pipe.precision, "bf16"
        try:
            return super()._generation_metrics(batches, n, generator)
        finally:
            pipe.precision = old


def enable_checkpointing(pipe: Any, adapter_names: Iterable[str]) -> list[str]:
    """Activation checkpointing of the base denoiser's blocks and of the adapters' copied blocks.

    Returns:
        What was switched on (for logs / tests).
    """
    done = []
    den = pipe.denoiser
    base = den.unet if den.kind == "unet" else den.transformer  # DiT ControlNets run through den.run_block
    base.enable_gradient_checkpointing()
    done.append("unet" if den.kind == "unet" else "transformer")
    for n in adapter_names:
        net = pipe.adapters[n].net
        if getattr(net, "_supports_gradient_checkpointing", False):
            net.enable_gradient_checkpointing()
            done.append(f"controlnet_{n}")
    return done


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Clone the tensors that share memory with an earlier one or view a larger storage (safetensors)."""
    seen, out = set(), {}
    for k, v in state.items():
        s = v.untyped_storage()
        if s.data_ptr() in seen or s.nbytes() != v.numel() * v.element_size():
            v = v.clone()
        seen.add(v.untyped_storage().data_ptr())
        out[k] = v
    return out
