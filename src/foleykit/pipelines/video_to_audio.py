"""``VideoToAudioPipeline``: silent video (+ optional text / reference sound / timing controls) -> waveform.

Inference only. ``__call__`` runs the numbered stages below; the denoising core (:meth:`denoise`) is a method
of its own taking conditions, prepared controls and optionally ``init_latents`` + ``inpaint_mask`` (regenerate
one region of a previous result, keep the rest), and :meth:`encode_audio` maps a waveform to latents. Stages
2-5 are public methods (``foleykit.pipelines.stages``): ``encode_video`` (the one caller of the video encoder),
``predict_controls``, ``encode_prompt`` / ``encode_reference`` with a ``ConditionCache``, and ``guidance``
(the effective guidance scale); the product layer calls those and never replaces the pipeline's parts.

1. geometry (duration -> ``SequenceConfig``), 2. video frames, 3. video features, 4. timing controls
(given by the user / taken from a reference audio / predicted from the video), 5. conditions
c = [text; video; audio] and their null counterparts, 6. control features, 7. denoising with classifier-free
guidance and the control adapters, 8. decoding (VAE -> vocoder) and trimming to the clip length.

Fast inference (:meth:`VideoToAudioPipeline.set_inference_options`): reduced precision (bf16 / fp16 autocast)
for the denoiser and the decoders, and optional ``torch.compile`` of the denoiser; attention always goes
through ``torch.nn.functional.scaled_dot_product_attention`` (diffusers' ``*AttnProcessor2_0``), which picks
the flash / memory-efficient kernels on GPUs. See docs/speed.md.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError, ControlError, ModelError
from foleykit.media.audio import PEAK_CEILING, headroom_gain
from foleykit.models.control_adapter import ControlAdapter, adapter_active, check_window
from foleykit.models.layers import Conditions
from foleykit.pipelines import timing
from foleykit.pipelines.cache import ConditionCache
from foleykit.pipelines.fast import FastInferenceMixin
from foleykit.pipelines.guidance import combine
from foleykit.pipelines.stages import PipelineStagesMixin

#: Default share of the sampling schedule re-run from a recording (``init_audio``): chosen on the photo-real
#: validation split (docs/demonstrator_model_card.md, "Starting from a recording").
INIT_STRENGTH = 0.8

DEFAULTS: dict[str, Any] = {
    "num_inference_steps": 25,
    "guidance_scale": 3.0,
    "guidance_form": "standard",
    "guide_on": ["text", "video", "audio"],
    "eta": 0.0,
}


@dataclass
class VideoToAudioOutput:
    """Result of one generation.

    Attributes:
        audio: ``float32`` waveform ``(T,)`` (mono) or ``(C, T)``, ``T = round(duration * sample_rate)``.
        sample_rate: Hz.
        controls: The timing controls actually used, by adapter name (after resampling to their grid).
        timings: Seconds spent per stage (and ``total``).
        latents: Final latents ``Tensor[1 x ...]`` (for regeneration / inpainting), on the CPU.
        gain: The headroom gain applied to the decoded audio (1.0: its peak was below ``peak_ceiling``).
    """

    audio: np.ndarray
    sample_rate: int
    controls: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    latents: torch.Tensor | None = None
    gain: float = 1.0


@dataclass
class PreparedControl:
    """A control adapter ready for the denoising loop: encoded features and the weight / window in use."""

    adapter: ControlAdapter
    features: torch.Tensor
    weight: float
    start: float
    end: float


class VideoToAudioPipeline(FastInferenceMixin, PipelineStagesMixin):
    """Latent-diffusion video-to-audio pipeline (see the module docstring for the stages).

    Args:
        seq: Audio / video geometry; ``seq.duration`` is the default clip length.
        codec: ``MelLatentCodec`` or ``WaveformLatentCodec``.
        denoiser: ``UNetDenoiser`` or ``DiTDenoiser``.
        scheduler: A diffusers scheduler (its ``prediction_type`` matches the training objective).
        assembler: ``ConditionAssembler`` (projections + null embeddings).
        text_encoder, audio_encoder, video_encoder: Condition encoders (conditioning area) or None.
        video_condition: Video features -> cross-attention tokens (``AttentivePooling`` /
            ``FrameProjector``), or None.
        predictors: Timing predictors by the control kind they produce (``energy``: ``EnergyPredictor``,
            ``rms``: ``RMSMapper``, ``onsets``: ``OnsetHead``, ``events``: ``EventDetector``).
        adapters: Control adapters, applied together.
        defaults: Sampling defaults (``num_inference_steps``, ``guidance_scale``, ``guidance_form``,
            ``guide_on``, ``eta``; optionally ``follow_envelope``).
        recipe: The recipe dict this pipeline was built from (saved for provenance).
        specs: Build specs of the conditioning-area components, by component name (for saving).
    """

    def __init__(
        self,
        *,
        seq: SequenceConfig,
        codec: nn.Module,
        denoiser: nn.Module,
        scheduler: Any,
        assembler: nn.Module,
        text_encoder: nn.Module | None = None,
        audio_encoder: nn.Module | None = None,
        video_encoder: nn.Module | None = None,
        video_condition: nn.Module | None = None,
        predictors: dict[str, nn.Module] | None = None,
        adapters: list[ControlAdapter] | tuple = (),
        defaults: dict[str, Any] | None = None,
        recipe: dict[str, Any] | None = None,
        specs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.seq = seq
        self.codec = codec
        self.denoiser = denoiser
        self.scheduler = scheduler
        self.assembler = assembler
        self.text_encoder = text_encoder
        self.audio_encoder = audio_encoder
        self.video_encoder = video_encoder
        self.video_condition = video_condition
        self.predictors = nn.ModuleDict(dict(predictors or {}))
        self.adapters = nn.ModuleDict({a.name: a for a in adapters})
        self.defaults = {**DEFAULTS, **(defaults or {})}
        self.recipe = recipe or {}
        self.specs = dict(specs or {})
        self.precision = "fp32"
        self._compiled: Callable[..., torch.Tensor] | None = None
        for m in self.modules().values():
            m.eval()

    # --- modules / devices ----------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The top-level modules (None entries omitted)."""
        names = (
            "codec",
            "denoiser",
            "assembler",
            "text_encoder",
            "audio_encoder",
            "video_encoder",
            "video_condition",
            "predictors",
            "adapters",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def components(self) -> dict[str, nn.Module]:
        """Every saved component by its model-folder name (``vae``, ``vocoder``, ``unet`` or ``transformer`` +
        ``projection_model``, ``condition_assembler``, encoders, ``video_condition``, ``predictor_<kind>``,
        ``controlnet_<name>``, ``control_encoder_<name>``): the names training stages refer to."""
        out: dict[str, nn.Module] = {"vae": self.codec.vae}
        if getattr(self.codec, "vocoder", None) is not None:
            out["vocoder"] = self.codec.vocoder
        if self.denoiser.kind == "unet":
            out["unet"] = self.denoiser.unet
        else:
            out["transformer"] = self.denoiser.transformer
            out["projection_model"] = self.denoiser.projection
        out["condition_assembler"] = self.assembler
        for n in ("text_encoder", "audio_encoder", "video_encoder", "video_condition"):
            if getattr(self, n) is not None:
                out[n] = getattr(self, n)
        for kind, p in self.predictors.items():
            out[f"predictor_{kind}"] = p
        for name, a in self.adapters.items():
            out[f"controlnet_{name}"] = a.net
            out[f"control_encoder_{name}"] = a.encoder
        return out

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.denoiser.parameters()).dtype

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> VideoToAudioPipeline:
        for m in self.modules().values():
            m.to(device=device, dtype=dtype)
        return self

    def num_parameters(self) -> dict[str, int]:
        """Parameter count per component (and ``total``)."""
        from foleykit.models.layers import count_parameters

        counts = {n: count_parameters(m) for n, m in self.components().items()}
        counts["total"] = sum(counts.values())
        return counts

    # --- conditions -----------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_conditions(
        self,
        *,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        video_features: torch.Tensor | None = None,
        reference_audio: np.ndarray | None = None,
        reference_sample_rate: int | None = None,
        seq: SequenceConfig | None = None,
        seconds_start: float = 0.0,
        guide_on: list[str] | None = None,
        cache: ConditionCache | None = None,
    ) -> tuple[Conditions, Conditions]:
        """Conditional and unconditional :class:`Conditions` for one clip (batch 1).

        The unconditional branch drops the conditions listed in ``guide_on`` (STA-V2A eq. 7 guides on the
        text only: the video stays); a ``negative_prompt`` replaces the null text there.

        Args:
            cache: A :class:`ConditionCache` shared by the clips of one run: the prompt, negative prompt and
                reference sound are encoded once (every window of a long video gets the same tokens).
        """
        seq = seq or self.seq
        guide_on = list(self.defaults["guide_on"] if guide_on is None else guide_on)
        device = self.device
        sources = set(self.assembler.config.sources)
        parts: dict[str, Any] = {}
        if "text" in sources:
            parts["text"] = self.encode_prompt(prompt, cache=cache)
        elif prompt:
            raise ConfigError("this model takes no text prompt")
        if "video" in sources:
            parts["video"] = None
            if video_features is not None and self.video_condition is not None:
                parts["video"] = (self.video_condition(video_features.to(device)), None)
        if "audio" in sources:
            parts["audio"] = None
            if reference_audio is not None:
                parts["audio"] = self.encode_reference(
                    reference_audio, int(reference_sample_rate or seq.sample_rate), cache=cache
                )
        elif reference_audio is not None:
            raise ConfigError("this model takes no reference audio")
        tokens, mask, glob = self.assembler.assemble(parts, batch_size=1, device=device)
        u_parts = dict(parts)
        drop = {n: True for n in guide_on if n in sources}
        if negative_prompt and "text" in sources:
            u_parts["text"] = self.encode_prompt(negative_prompt, cache=cache)
            drop.pop("text", None)
        u_tokens, u_mask, u_glob = self.assembler.assemble(u_parts, batch_size=1, drop=drop, device=device)
        secs = {
            "seconds_start": torch.tensor([float(seconds_start)], device=device),
            "seconds_total": torch.tensor([float(seq.duration)], device=device),
        }
        return (
            Conditions(tokens=tokens, mask=mask, global_embed=glob, **secs),
            Conditions(tokens=u_tokens, mask=u_mask, global_embed=u_glob, **secs),
        )

    # --- controls -------------------------------------------------------------------------------------
    def prepare_controls(
        self,
        controls: dict[str, Any],
        *,
        seq: SequenceConfig | None = None,
        local_features: torch.Tensor | None = None,
        weights: dict[str, float] | None = None,
        windows: dict[str, tuple[float, float]] | None = None,
    ) -> list[PreparedControl]:
        """Encode one ``TemporalControl`` per adapter (by adapter name) onto the latent grid.

        Args:
            controls: ``{adapter name: TemporalControl}`` (already on any grid; resampled here).
            seq: Geometry of the clip.
            local_features: ``Tensor[1 x T x D]`` for adapters with ``features="local"`` (STA-V2A e_lv).
            weights: Per-adapter weight overrides (0 disables an adapter).
            windows: Per-adapter ``(start, end)`` overrides (fractions of the denoising steps).
        """
        seq = seq or self.seq
        weights, windows = dict(weights or {}), dict(windows or {})
        unknown = (set(weights) | set(windows)) - set(self.adapters)
        if unknown:
            raise ConfigError(
                f"unknown adapters {sorted(unknown)}; this model has {sorted(self.adapters) or 'none'}"
            )
        out = []
        for name, adapter in self.adapters.items():
            weight = float(weights.get(name, adapter.weight))
            start, end = windows.get(name, (adapter.start, adapter.end))
            check_window(start, end, what=f"adapter {name!r}")
            control = controls.get(name)
            if control is None:
                raise ControlError(f"adapter {name!r} needs a {adapter.control_kind!r} control")
            series = torch.from_numpy(control.to_grid(seq, adapter.grid).values.astype(np.float32))[None]
            with torch.no_grad():
                feats = adapter.encoder(
                    series.to(self.device),
                    num_latent_frames=seq.num_latent_frames,
                    codec=self.codec,
                    features=local_features,
                )
            out.append(PreparedControl(adapter, feats, weight, float(start), float(end)))
        return out

    def control_from_audio(
        self, kind: str, audio: Any, sample_rate: int | None, seq: SequenceConfig, start: float = 0.0
    ):
        """A timing control of ``kind`` measured on a recording (``timing.control_from_audio``)."""
        return timing.control_from_audio(kind, audio, sample_rate, seq, start)

    # --- latents ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_audio(self, wav: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Waveform ``(T,)`` / ``(C, T)`` at ``sample_rate`` -> latents ``Tensor[1 x ...]`` (VAE mode)."""
        from foleykit.audio import resample

        x = wav if isinstance(wav, torch.Tensor) else torch.from_numpy(np.asarray(wav, dtype=np.float32))
        if int(sample_rate) != self.seq.sample_rate:
            x = resample(x, int(sample_rate), self.seq.sample_rate)
        return self.codec.encode_audio(x[None].float().to(self.device))

    def _read_audio_input(self, audio: Any, sample_rate: int | None) -> tuple[Any, int | None]:
        """A sound given as a file path is read at the model's rate: ``(array, seq.sample_rate)``; an array (or
        None) comes back with its ``sample_rate`` as given."""
        if isinstance(audio, (str, os.PathLike)):
            from foleykit.media import read_audio

            return read_audio(audio, sample_rate=self.seq.sample_rate), self.seq.sample_rate
        return audio, sample_rate

    def init_latents_from_audio(
        self, audio: Any, sample_rate: int | None, seq: SequenceConfig, *, envelope: Any = None
    ) -> torch.Tensor:
        """The starting latents of a clip from a recording, ``Tensor[1 x ...]`` (VAE-encoded).

        Without ``envelope`` the recording is looped (or cut) to ``seq.num_samples``. With one (an ``rms`` /
        ``rms_class`` control on the clip's time axis, frame 0 at the clip's start) it is spotted on the
        envelope's hits (:func:`foleykit.controls.rms.spot_recording`: a copy whose loudest moment lands on each
        hit) and its loudness brought to the envelope (:func:`foleykit.controls.follow_envelope`, full
        strength).

        Raises:
            ConfigError: a file that cannot be read, an empty or silent recording.
        """
        from foleykit.audio import resample, to_mono

        audio, sample_rate = self._read_audio_input(audio, sample_rate)
        x = to_mono(np.asarray(audio, dtype=np.float32))
        if int(sample_rate or seq.sample_rate) != seq.sample_rate:
            x = resample(x, int(sample_rate), seq.sample_rate)
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if x.size == 0 or not np.all(np.isfinite(x)) or float(np.max(np.abs(x))) == 0.0:
            raise ConfigError("the init recording is empty, silent or has non-finite samples")
        if envelope is None:
            x = np.tile(x, -(-seq.num_samples // x.size))[: seq.num_samples]
        else:
            from foleykit.controls.rms import follow_envelope, spot_recording

            envelope = envelope.replace(start=0.0)
            x = spot_recording(x, seq.sample_rate, seq.num_samples, envelope)
            x = follow_envelope(x, seq.sample_rate, envelope, strength=1.0)
        return self.encode_audio(x, seq.sample_rate)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, num_samples: int | None = None) -> torch.Tensor:
        """Latents -> waveform ``Tensor[B x T]`` (or ``B x C x T``), trimmed to ``num_samples`` when given."""
        with self.autocast():
            wav = self.codec.decode_latents(latents.to(self.device)).float()
        return wav[..., :num_samples] if num_samples is not None else wav

    @torch.no_grad()
    def denoise(
        self,
        conditions: Conditions,
        *,
        uncond: Conditions | None = None,
        controls: list[PreparedControl] | tuple = (),
        seq: SequenceConfig | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        init_latents: torch.Tensor | None = None,
        inpaint_mask: torch.Tensor | None = None,
        start_latents: torch.Tensor | None = None,
        strength: float = 1.0,
        callback: Callable[[int, Any, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """The sampling loop: noise -> latents ``Tensor[B x latent_shape(seq)]``.

        Args:
            conditions: Conditional :class:`Conditions` (batch B).
            uncond: Unconditional counterpart; None (or guidance scale 1) disables guidance.
            controls: Prepared control adapters (batch 1 or B features).
            seq: Geometry (duration) of the clip.
            num_inference_steps, guidance_scale: Default from the recipe; the scale is in the standard form.
            generator: Seeds the initial noise (and stochastic samplers).
            latents: Start from these noise latents instead of drawing them.
            init_latents: Known latents ``Tensor[B x ...]`` to keep outside ``inpaint_mask``.
            inpaint_mask: ``Tensor[T_lat]`` or ``Tensor[B x T_lat]``, 1 (True) where latents are
                regenerated, 0 where
                ``init_latents`` are kept; at every step the kept region is replaced by ``init_latents``
                noised to
                the next noise level (mask blending, as diffusers' inpainting with non-inpainting models).
            start_latents, strength: Start from ``start_latents`` instead of pure noise (SDEdit; diffusers'
                image-to-image ``strength``): they are noised to the level of the step that leaves
                ``round(strength * steps)`` steps (at least one) and only those are run. ``strength`` 1 (or
                no ``start_latents``) samples from noise as usual.
            callback: ``callback(step, timestep, latents)`` after each step.
        """
        seq = seq or self.seq
        steps = int(num_inference_steps or self.defaults["num_inference_steps"])
        scale = self.guidance(guidance_scale)[0]
        device, dtype = self.device, self.dtype
        batch = conditions.batch_size
        shape = (batch, *self.codec.latent_shape(seq))
        do_cfg = uncond is not None and scale != 1.0
        cond = (Conditions.cat([uncond, conditions]) if do_cfg else conditions).to(device, dtype)
        feats = []
        for pc in controls:
            f = pc.features.to(device, dtype)
            f = f.expand(batch, *f.shape[1:]) if f.shape[0] == 1 else f
            feats.append(torch.cat([f, f]) if do_cfg else f)

        # 1. timesteps and initial noise
        self.scheduler.set_timesteps(steps, device=device)
        timesteps = self.scheduler.timesteps
        noise = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)
        x = (noise if latents is None else latents.to(device, dtype)) * self.scheduler.init_noise_sigma
        if start_latents is not None and not 0.0 < strength <= 1.0:
            raise ConfigError(f"strength must be in (0, 1], got {strength}")
        if start_latents is not None and strength < 1.0:
            skip = steps - max(1, int(round(steps * strength)))
            timesteps = timesteps[skip:]
            if hasattr(self.scheduler, "set_begin_index"):
                self.scheduler.set_begin_index(skip * getattr(self.scheduler, "order", 1))
            start = start_latents.to(device, dtype).expand(shape)
            x = self.scheduler.add_noise(start, noise, timesteps[:1])
        mask = None
        if init_latents is not None:
            mask = self._latent_mask(inpaint_mask, shape, device, dtype)
            init = init_latents.to(device, dtype).expand(shape)
            x = mask * x + (1 - mask) * self.scheduler.add_noise(init, noise, timesteps[:1])
        step_kw = (
            {"eta": self.defaults["eta"]}
            if "eta" in inspect.signature(self.scheduler.step).parameters
            else {}
        )
        if "generator" in inspect.signature(self.scheduler.step).parameters:
            step_kw["generator"] = generator
        for i, t in enumerate(timesteps):
            # 2. adapters acting at this step (weight 0 or outside their window: skipped)
            active = [
                (pc.adapter.net, f, pc.weight)
                for pc, f in zip(controls, feats)
                if pc.weight != 0.0 and adapter_active(i, len(timesteps), pc.start, pc.end)
            ]
            # 3. model input: the unconditional / conditional pair in one batch
            model_in = torch.cat([x, x]) if do_cfg else x
            model_in = self.scheduler.scale_model_input(model_in, t)
            # 4. denoiser forward (+ control residuals)
            with self.autocast():
                forward = self.denoiser if self._compiled is None else self._compiled
                out = forward(model_in, t, cond, controls=active)
            out = out.to(x.dtype)
            # 5. classifier-free guidance
            if do_cfg:
                out_u, out_c = out.chunk(2)
                out = combine(out_c, out_u, scale)
            # 6. scheduler step
            x = self.scheduler.step(out, t, x, **step_kw).prev_sample
            # 7. inpainting: put back the kept region at the next noise level
            if mask is not None:
                known = (
                    init
                    if i == len(timesteps) - 1
                    else self.scheduler.add_noise(init, noise, timesteps[i + 1 : i + 2])
                )
                x = mask * x + (1 - mask) * known
            if callback is not None:
                callback(i, t, x)
        return x

    @staticmethod
    def _latent_mask(mask: torch.Tensor | None, shape: tuple[int, ...], device, dtype) -> torch.Tensor:
        if mask is None:
            raise ConfigError("init_latents needs an inpaint_mask (1 where latents are regenerated)")
        m = torch.as_tensor(mask, device=device).to(dtype)
        if m.ndim == 1:
            m = m[None]
        if m.ndim != 2 or m.shape[-1] != shape[2]:
            raise ConfigError(
                f"inpaint_mask must be Tensor[T_lat] or Tensor[B x T_lat] with T_lat={shape[2]}, "
                f"got {tuple(m.shape)}"
            )
        return m.view(m.shape[0], 1, shape[2], *([1] * (len(shape) - 3)))

    # --- generation -------------------------------------------------------------------------------------
    def __call__(
        self,
        video: str | os.PathLike | None = None,
        *,
        frames: np.ndarray | None = None,
        video_features: torch.Tensor | None = None,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        reference_audio: Any = None,
        reference_sample_rate: int | None = None,
        controls: Any = None,
        control_audio: Any = None,
        control_audio_sample_rate: int | None = None,
        start: float = 0.0,
        duration: float | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        adapter_weights: dict[str, float] | None = None,
        adapter_windows: dict[str, tuple[float, float]] | None = None,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
        init_latents: torch.Tensor | None = None,
        inpaint_mask: torch.Tensor | None = None,
        init_audio: Any = None,
        init_sample_rate: int | None = None,
        init_strength: float | None = None,
        follow_envelope: float | None = None,
        expansion: float | None = None,
        peak_ceiling: float | None = PEAK_CEILING,
        condition_cache: ConditionCache | None = None,
    ) -> VideoToAudioOutput:
        """Generate audio for a video (or ``frames`` at ``seq.video_fps``, or text only + ``duration``).

        Args:
            video: Video file; ``start`` / ``duration`` select a segment (default: the model window).
            frames: uint8 ``(T, H, W, 3)`` frames at ``seq.video_fps`` instead of a file.
            video_features: The segment's features from :meth:`encode_video`, ``Tensor[1 x T_v x D]``,
                computed earlier: nothing is decoded or encoded again (the product layer computes them once
                per window for the timing prediction and the generation).
            prompt, negative_prompt: Text condition and the text of the unconditional branch.
            reference_audio: Timbre reference (array at ``reference_sample_rate``, or a file).
            controls: ``TemporalControl`` objects / control files, one per adapter: a dict by adapter name or
                by kind, a single control, or a list. They override predicted controls.
            control_audio: Audio (array or file) whose measured controls drive the adapters.
            num_inference_steps, guidance_scale: Override the recipe's defaults (an explicit scale is in the
                standard form; the default is converted from the recipe's form, see :meth:`guidance`).
            adapter_weights, adapter_windows: Per-adapter weight / ``(start, end)`` overrides.
            seed / generator: Random state of the initial noise (same seed -> same audio).
            init_latents, inpaint_mask: Regenerate only the masked latent frames of a previous result.
            init_audio, init_sample_rate, init_strength: Start from a recording (array at ``init_sample_rate``,
                or a file) instead of pure noise. With an RMS adapter it is laid along the RMS control (a copy
                at each hit, loudness brought to the curve: :meth:`init_latents_from_audio`), else looped or
                cut to the clip; it is then VAE-encoded and denoised from ``init_strength`` of the way
                (:meth:`denoise`; None: ``INIT_STRENGTH``; 1: from noise, only the timing survives; lower keeps
                more of the recording's sound). The recording decides WHAT far more than a reference sound's
                embedding does (docs/product.md).
            follow_envelope: Strength in [0, 1] of the gain stage that makes the output's loudness follow the
                RMS control (``foleykit.controls.follow_envelope``); None: the model's default (0 unless the
                model sets one; a default is not applied while ``adapter_weights`` turns the RMS adapter off, so
                "no control" stays no control). Needs a model with an RMS adapter.
            expansion: Valley expansion of the RMS-Mapper's decoding when the RMS control is predicted here
                (:meth:`predict_controls`; None: the model's). Needs an RMS timing predictor.
            peak_ceiling: When the decoded audio's sample peak passes this level (default -1 dBFS), the clip is
                scaled down as a whole to it (:func:`foleykit.media.headroom_gain`); None: the decoder's output
                as is (it may pass full scale; the product layer uses None per window and one gain for the
                assembled soundtrack).
            condition_cache: A :class:`ConditionCache` for the whole run (prompt / reference sound encoded once).
        """
        timings: dict[str, float] = {}
        t_all = clock = time.perf_counter()

        cuda = self.device.type == "cuda"

        def tick(name: str) -> None:
            nonlocal clock
            if cuda:  # honest per-stage times: wait for the kernels of the stage
                torch.cuda.synchronize(self.device)
            now = time.perf_counter()
            timings[name] = now - clock
            clock = now

        follow = float(
            self.defaults.get("follow_envelope", 0.0) if follow_envelope is None else follow_envelope
        )
        strength = INIT_STRENGTH if init_strength is None else float(init_strength)
        if init_audio is not None and not (math.isfinite(strength) and 0.0 < strength <= 1.0):
            raise ConfigError(f"init_strength must be in (0, 1], got {init_strength}")
        if not (math.isfinite(follow) and 0.0 <= follow <= 1.0):
            raise ConfigError(f"follow_envelope must be in [0, 1], got {follow_envelope}")
        if expansion is not None:
            from foleykit.models.predictors import check_expansion

            check_expansion(expansion)
            if "rms" not in self.predictors:
                raise ConfigError("expansion needs a model with an RMS timing predictor (RMS-Mapper)")
        follow_on = next((n for n, a in self.adapters.items() if a.control_kind == "rms"), None)
        if follow_envelope is None and follow_on is not None and (adapter_weights or {}).get(follow_on) == 0:
            follow = 0.0  # the model's default follows the control only while the control is on
        if follow > 0 and follow_on is None:
            raise ConfigError(
                "follow_envelope needs a model with an RMS timing adapter; this one has "
                f"{', '.join(a.control_kind for a in self.adapters.values()) or 'none'}"
            )
        # 1. Geometry
        if video is not None and frames is not None:
            raise ConfigError("give either a video file or frames, not both")
        if duration is None and video is None and frames is None and video_features is not None:
            duration = video_features.shape[1] / self.seq.video_fps  # the clip the features describe
        seq = self.seq.with_duration(self.clip_duration(video, frames=frames, start=start, duration=duration))
        # 2-3. Video frames and features (read_video / video_features timed inside)
        feats = None
        if video_features is not None:
            if video_features.ndim != 3 or video_features.shape[0] != 1:
                raise ConfigError(
                    f"video_features must be Tensor[1 x T_v x D], got {tuple(video_features.shape)}"
                )
            feats = video_features.to(self.device)
            timings.update(read_video=0.0, video_features=0.0)
        elif (video is not None or frames is not None) and self.video_encoder is not None:
            feats = self.encode_video(
                video, frames=frames, start=start, duration=seq.duration, timings=timings
            )
        else:
            timings.update(read_video=0.0, video_features=0.0)
        clock = time.perf_counter()
        # 4. Timing controls: user > reference audio > predictor
        given = timing.normalise_controls(controls)
        used, local = {}, None
        for name, adapter in self.adapters.items():
            c = given.get(name, given.get(adapter.control_kind))
            if c is None and control_audio is not None:
                c = self.control_from_audio(
                    adapter.control_kind, control_audio, control_audio_sample_rate, seq, start
                )
            if c is None and feats is not None and adapter.control_kind in self.predictors:
                predicted, lf = self._predict(feats, seq, [name], expansion=expansion)
                c, local = predicted[name], (lf if lf is not None else local)
            if c is None:
                raise ControlError(
                    f"adapter {name!r} needs a {adapter.control_kind!r} control: pass controls=, "
                    f"control_audio=, or a video for the model's predictor"
                )
            used[name] = timing.convert_kind(c, adapter.control_kind).to_grid(seq, adapter.grid)
        if any(a.features == "local" for a in self.adapters.values()) and local is None:
            if feats is None:
                raise ConfigError("this model's adapter needs local video features: give a video")
            local = (
                timing.predict_control(self.predictors["onsets"], feats, seq)[1]
                if "onsets" in self.predictors
                else feats
            )
        tick("controls")
        # 5. Conditions
        reference_audio, reference_sample_rate = self._read_audio_input(
            reference_audio, reference_sample_rate
        )
        cond, uncond = self.encode_conditions(
            prompt=prompt,
            negative_prompt=negative_prompt,
            video_features=feats,
            reference_audio=reference_audio,
            reference_sample_rate=reference_sample_rate,
            seq=seq,
            seconds_start=start,
            cache=condition_cache,
        )
        tick("conditions")
        # 6. Control features
        prepared = self.prepare_controls(
            used, seq=seq, local_features=local, weights=adapter_weights, windows=adapter_windows
        )
        tick("control_features")
        # 7. Denoising (from noise, or from a recording re-timed to the RMS control)
        if generator is None and seed is not None:
            generator = torch.Generator("cpu").manual_seed(int(seed))
        start_latents = None
        if init_audio is not None:
            start_latents = self.init_latents_from_audio(
                init_audio, init_sample_rate, seq, envelope=used.get(follow_on) if follow_on else None
            )
            tick("init_audio")
        latents = self.denoise(
            cond,
            uncond=uncond,
            controls=prepared,
            seq=seq,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=generator,
            init_latents=init_latents,
            inpaint_mask=inpaint_mask,
            start_latents=start_latents,
            strength=strength if start_latents is not None else 1.0,
        )
        tick("denoise")
        # 8. Decode and trim to the clip (mel codecs: VAE decoder, then vocoder; timed apart)
        wav = self._decode_timed(latents, timings)[..., : seq.num_samples]
        wav = wav[0].float().cpu().numpy()
        tick("decode")
        if follow > 0:  # follow_on is set (checked above); the control's frame 0 is the window's start
            from foleykit.controls import follow_envelope as follow_rms

            wav = follow_rms(wav, seq.sample_rate, used[follow_on].replace(start=0.0), strength=follow)
            tick("follow_envelope")
        if not np.all(np.isfinite(wav)):
            raise ModelError(
                "the decoded audio has NaN or infinite samples: the model's arithmetic overflowed "
                "(a half-precision run of a model that needs fp32, or broken weights)"
            )
        # one gain for the clip, never a clamp (it would flatten the transients)
        gain = 1.0 if peak_ceiling is None else headroom_gain(wav, peak_ceiling)
        if gain < 1.0:
            wav = wav * np.float32(gain)
        if "decode_vae" in timings:
            timings["decode_vocoder"] = timings["decode"] - timings["decode_vae"]
        timings["total"] = time.perf_counter() - t_all
        return VideoToAudioOutput(
            audio=wav.astype(np.float32),
            sample_rate=seq.sample_rate,
            controls=used,
            timings=timings,
            latents=latents.cpu(),
            gain=gain,
        )

    # --- save / load ------------------------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike, *, dtype: torch.dtype | None = None) -> Path:
        """Write the model folder atomically (``model_index.json`` + one sub-folder per component).

        Args:
            path: Target folder, replaced as a whole: it must not exist, be empty, or be a model folder.
            dtype: Weight dtype on disk (``torch.float16`` halves the size; loading casts back to float32).

        Raises:
            ConfigError: ``path`` is a file or a folder with other content (nothing is written or deleted).
        """
        from foleykit.pipelines.components import save_pipeline

        return save_pipeline(self, Path(path), dtype=dtype)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        trust_pickle: bool | None = None,
    ) -> VideoToAudioPipeline:
        """Load a model folder or a name (``resolve_model``; default: the shipped demonstrator).

        Only what ``foleykit.pipelines.trust`` allows is built and only safetensors are read;
        ``trust_pickle=True`` also reads pickle weights (``.bin``: only for folders from a source you trust).
        """
        from foleykit.pipelines.components import load_pipeline

        return load_pipeline(cls, name_or_path, device=device, dtype=dtype, trust_pickle=trust_pickle)

    def __repr__(self) -> str:
        counts = self.num_parameters()
        parts = ", ".join(f"{k}={v / 1e6:.2f}M" for k, v in counts.items())
        return f"VideoToAudioPipeline({self.recipe.get('name', '?')}: {parts})"
