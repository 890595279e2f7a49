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

Validation: diffusion loss, plus a quick generation of ``val_generate`` clips with ``val_steps`` sampling
steps driven by their ground-truth controls, scored with the evaluation suite's temporal metrics (energy
MAE, E-L1, AA-Align, onset accuracy; AV-Align when the clip has frames).
"""

from __future__ import annotations

from foleykit.errors import ConfigError
from foleykit.training.stages.components import BASE_COMPONENTS
from foleykit.training.stages.prior import DiffusionStage


class AdapterStage(DiffusionStage):
    """Train the recipe's control adapters (see module docstring)."""

    name = "adapter"

    def extra_trainable(self) -> tuple[str, ...]:
        return BASE_COMPONENTS if self.cfg.get("unfreeze_base") else ()

    def build(self):
        modules = super().build()
        if not self.adapter_names:
            raise ConfigError(
                f"stage {self.ctx.stage_dir.name!r} (adapter family) trains no controlnet_* / "
                "control_encoder_* component"
            )
        return modules
