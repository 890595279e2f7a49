"""The pipeline's public stages, used by ``VideoToAudioPipeline.__call__`` and by the product layer alike (one
path through the code): :meth:`~PipelineStagesMixin.encode_video` (stages 2-3: frames -> video features, the
one caller of the video encoder), :meth:`~PipelineStagesMixin.predict_controls` (stage 4: the timing
predictors), :meth:`~PipelineStagesMixin.encode_prompt` / :meth:`~PipelineStagesMixin.encode_reference`
(stage 5's encoders, with a :class:`~foleykit.pipelines.cache.ConditionCache`), and
:meth:`~PipelineStagesMixin.guidance` (the effective classifier-free guidance scale).

A mixin of :class:`foleykit.pipelines.video_to_audio.VideoToAudioPipeline` (kept apart so that file stays
readable); it uses the pipeline's ``seq``, ``device``, encoders, ``predictors``, ``adapters`` and ``defaults``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import torch

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError
from foleykit.pipelines import timing
from foleykit.pipelines.cache import ConditionCache
from foleykit.pipelines.guidance import effective_scale


class PipelineStagesMixin:
    """Stages 2-5 of ``VideoToAudioPipeline`` as public methods (see the module docstring)."""

    # --- conditions -----------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(
        self, prompt: str | None, *, cache: ConditionCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """A text prompt -> ``(tokens Tensor[1 x L x D_text], mask BoolTensor[1 x L])`` on the pipeline's
        device (None for no prompt); with ``cache``, each distinct text is encoded once."""
        if not prompt:
            return None
        if self.text_encoder is None:
            raise ConfigError("this model has no text encoder; it cannot take a prompt")

        def encode() -> tuple[torch.Tensor, torch.Tensor]:
            tokens, mask = self.text_encoder.encode([prompt])
            return tokens.to(self.device), mask.to(self.device)

        return encode() if cache is None else cache.get(("text", prompt), encode)

    @torch.no_grad()
    def encode_reference(
        self, audio: np.ndarray | torch.Tensor, sample_rate: int, *, cache: ConditionCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reference sound ``(T,)`` / ``(C, T)`` at ``sample_rate`` -> ``(tokens Tensor[1 x L x D_audio],
        mask BoolTensor[1 x L])`` on the pipeline's device; with ``cache``, each distinct sound is encoded once.

        Raises:
            ConfigError: the model has no reference-audio encoder. WeightsNotFoundError: its encoder's package
                is not installed (the message says how to install it).
        """
        if self.audio_encoder is None:
            raise ConfigError("this model has no reference-audio encoder")

        def encode() -> tuple[torch.Tensor, torch.Tensor]:
            tok, msk = self.audio_encoder.encode([audio], int(sample_rate))
            return tok.to(self.device), msk.to(self.device)

        return encode() if cache is None else cache.get(ConditionCache.audio_key(audio, sample_rate), encode)

    # --- video ----------------------------------------------------------------------------------------
    def clip_duration(
        self,
        video: str | os.PathLike | None = None,
        *,
        frames: np.ndarray | None = None,
        start: float = 0.0,
        duration: float | None = None,
    ) -> float:
        """Seconds to generate: ``duration``, else the rest of the video from ``start`` up to the model's
        window (a file), else the frames' length, else the model's window.

        Raises:
            ConfigError: nothing to generate (zero or negative duration).
        """
        if duration is None:
            if video is not None:
                from foleykit.media import probe

                info = probe(video)
                duration = min(self.seq.duration, max(0.0, (info.video_duration or info.duration) - start))
            elif frames is not None:
                duration = len(frames) / self.seq.video_fps
            else:
                duration = self.seq.duration
        if not duration or duration <= 0:
            raise ConfigError(f"nothing to generate: duration {duration}")
        return float(duration)

    @torch.no_grad()
    def encode_video(
        self,
        video: str | os.PathLike | None = None,
        *,
        frames: np.ndarray | torch.Tensor | None = None,
        start: float = 0.0,
        duration: float | None = None,
        keypoints: Any = None,
        timings: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """The video encoder's features of a clip, ``Tensor[1 x T_v x D]`` on the pipeline's device.

        The one place the pipeline runs its video encoder: the features feed the timing predictors
        (:meth:`predict_controls`) and the conditions, so compute them once and pass them to both
        (``__call__(video_features=...)``). A file is decoded at the model's frame rate and at the encoder's
        ``input_size`` (never at full size), only over ``[start, start + duration)``.

        Args:
            video: Video file (or give ``frames``).
            frames: uint8 ``(T, H, W, 3)`` frames at ``seq.video_fps`` instead of a file.
            start, duration: The segment of the file (duration None: :meth:`clip_duration`).
            keypoints: Extra per-frame inputs for encoders that take them (``encode(frames, keypoints=)``).
            timings: Adds ``read_video`` and ``video_features`` seconds when given.

        Raises:
            ConfigError: the model has no video encoder, or neither / both of ``video`` and ``frames``.
        """
        if self.video_encoder is None:
            raise ConfigError("this model has no video encoder; it cannot use the picture of a video")
        if (video is None) == (frames is None):
            raise ConfigError("give either a video file or frames (one of them)")
        sync = self.device.type == "cuda"  # honest stage times: wait for the kernels
        t0 = time.perf_counter()
        if video is not None:
            from foleykit.media import read_video

            seconds = self.clip_duration(video, start=start, duration=duration)
            size = getattr(self.video_encoder, "input_size", None)
            frames = read_video(
                video, fps=self.seq.video_fps, size=size, start=start, duration=seconds
            ).frames
        t1 = time.perf_counter()
        kw = {} if keypoints is None else {"keypoints": keypoints}
        feats = self.video_encoder.encode(frames, **kw).to(self.device)
        if sync:
            torch.cuda.synchronize(self.device)
        if timings is not None:
            timings["read_video"] = timings.get("read_video", 0.0) + (t1 - t0)
            timings["video_features"] = timings.get("video_features", 0.0) + (time.perf_counter() - t1)
        return feats

    def predict_controls(
        self,
        video_features: torch.Tensor,
        *,
        duration: float | None = None,
        start: float = 0.0,
        adapters: list[str] | None = None,
        expansion: float | None = None,
    ) -> dict[str, Any]:
        """The timing controls the model's predictors give for a clip, by adapter name.

        Args:
            video_features: :meth:`encode_video` features of the clip, ``Tensor[1 x T_v x D]``.
            duration: Clip length in seconds (default ``T_v / seq.video_fps``).
            start: Start time written into the controls (e.g. the window's start in the video).
            adapters: Adapter names to predict for (default: all).
            expansion: Valley expansion of the RMS-Mapper's decoding for this call (None: the model's; 1:
                none; larger: deeper quiet between events). Only for RMS timing predictors.

        Returns:
            ``{adapter name: TemporalControl}`` of the adapters' control kinds (``rms``, ``energy``...).

        Raises:
            ConfigError: an adapter's control kind has no predictor in this model, or ``expansion`` is given
                for a predictor that is not an RMS-Mapper.
        """
        duration = video_features.shape[1] / self.seq.video_fps if duration is None else duration
        seq = self.seq.with_duration(duration)
        controls, _ = self._predict(
            video_features, seq, list(self.adapters) if adapters is None else adapters, expansion=expansion
        )
        return {n: (c if not start else c.replace(start=float(start))) for n, c in controls.items()}

    def _predict(
        self, feats: torch.Tensor, seq: SequenceConfig, names: list[str], *, expansion: float | None = None
    ) -> tuple[dict[str, Any], torch.Tensor | None]:
        """Predicted controls of the adapters ``names`` and STA-V2A's local features (or None)."""
        missing = sorted({self.adapters[n].control_kind for n in names} - set(self.predictors))
        if missing:
            raise ConfigError(
                f"this model has no timing predictor for {', '.join(missing)}; give the timing curve "
                "(a control file) or a recording to take it from"
            )
        if expansion is not None and "rms" not in self.predictors:
            raise ConfigError(
                "the valley expansion shapes the RMS-Mapper's timing curve; this model has no RMS timing "
                f"predictor (its predictors: {', '.join(sorted(self.predictors)) or 'none'})"
            )
        out, local = {}, None
        for name in names:
            predictor = self.predictors[self.adapters[name].control_kind]
            c, lf = timing.predict_control(
                predictor, feats, seq, expansion=expansion if predictor.kind == "rms" else None
            )
            out[name], local = c, (lf if lf is not None else local)
        return out, local

    # --- guidance -------------------------------------------------------------------------------------
    def guidance(self, guidance_scale: float | None = None) -> tuple[float, str]:
        """The classifier-free guidance scale actually used, in the standard form, and where it came from.

        An explicit ``guidance_scale`` (the API's argument, the CLI's ``--guidance``) is always in the standard
        form ``eps_u + s (eps_c - eps_u)``. The model's default is stored in its recipe's form (ReWaS /
        AudioLDM write ``(1 + w) eps_c - w eps_u``: ``w = 3`` is ``s = 4``) and converted here, once, so the
        CLI, the API and the app give the same audio for the same settings.

        Returns:
            ``(scale, origin)``: ``origin`` is ``"given"``, or ``"model default"`` plus the stored value and
            form when that form is not the standard one (e.g. ``"model default (w = 3 in the 1 + w form)"``).

        Raises:
            ConfigError: a negative or non-finite scale.
        """
        if guidance_scale is not None:
            scale, origin = float(guidance_scale), "given"
        else:
            form = self.defaults["guidance_form"]
            stored = float(self.defaults["guidance_scale"])
            scale = effective_scale(stored, form)
            origin = "model default" + ("" if form == "standard" else f" (w = {stored:g} in the 1 + w form)")
        if not (math.isfinite(scale) and scale >= 0):
            raise ConfigError(f"the guidance scale must be a number >= 0, got {scale}")
        return scale, origin
