"""Fast inference for :class:`~foleykit.pipelines.video_to_audio.VideoToAudioPipeline` (docs/speed.md).

- Reduced precision: ``torch.autocast`` (bf16 / fp16) around the denoiser, the VAE decoder and the vocoder;
  the weights, the sampler arithmetic and the returned audio stay float32.
- ``torch.compile`` of the denoiser forward (optional; the first call compiles).
- Attention: diffusers' ``*AttnProcessor2_0`` processors already call
  ``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPUs);
  :func:`attention_processors` lists them so a benchmark can check it.
- The decoding stage split in two timed halves (VAE decoder, vocoder) for mel codecs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from foleykit.errors import ConfigError

#: ``precision`` values of :meth:`FastInferenceMixin.set_inference_options`.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def attention_processors(module: torch.nn.Module) -> dict[str, int]:
    """Attention processor class names used inside ``module`` and how many layers use each."""
    out: dict[str, int] = {}
    for m in module.modules():
        proc = getattr(m, "processor", None)
        if proc is not None and hasattr(m, "set_processor"):
            name = type(proc).__name__
            out[name] = out.get(name, 0) + 1
    return out


class FastInferenceMixin:
    """Inference options of the pipeline: ``precision``, ``torch.compile`` of the denoiser."""

    precision: str = "fp32"
    _compiled: Callable[..., torch.Tensor] | None = None
    device: torch.device
    denoiser: torch.nn.Module
    codec: torch.nn.Module

    def set_inference_options(
        self,
        *,
        precision: str = "auto",
        compile: bool = False,
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
    ) -> Any:
        """Choose the arithmetic of the denoising loop and of the decoders.

        Args:
            precision: ``fp32``; ``bf16`` / ``fp16``: ``torch.autocast`` around the denoiser, the VAE decoder
                and the vocoder (weights stay float32; matmuls, convolutions and attention run in the lower
                precision, reductions and the sampler in float32); ``auto``: bf16 on CUDA devices that
                support it, else fp16 on CUDA, and fp32 on the CPU and MPS (CPU autocast is correct but is
                not faster for these models, docs/speed.md).
            compile: Wrap the denoiser forward in ``torch.compile`` (the first call compiles: seconds to
                minutes; then each step is faster on GPUs). Recompiles when the clip length changes.
            compile_mode: ``torch.compile`` mode (e.g. ``"max-autotune"``, ``"reduce-overhead"``).
            compile_backend: ``torch.compile`` backend (``"eager"`` checks the wiring without code
                generation).

        Returns:
            The pipeline (for chaining).

        Raises:
            ConfigError: unknown precision, or fp16 on MPS.
        """
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        device = self.device
        if precision == "auto":
            if device.type == "cuda":
                precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            else:
                precision = "fp32"
        if precision == "fp16" and device.type == "mps":
            raise ConfigError("fp16 autocast is not supported on MPS by this pipeline; use fp32")
        self.precision = precision
        self._compiled = (
            torch.compile(self.denoiser, mode=compile_mode, backend=compile_backend, dynamic=False)
            if compile
            else None
        )
        return self

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """``torch.autocast`` for the chosen precision (a no-op in fp32)."""
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        if dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=dtype):
            yield

    @torch.no_grad()
    def _decode_timed(self, latents: torch.Tensor, timings: dict[str, float]) -> torch.Tensor:
        """``decode_latents`` (untrimmed); for mel codecs also records ``timings["decode_vae"]``."""
        mel_codec = hasattr(self.codec, "decode_mel") and getattr(self.codec, "vocoder", None) is not None
        if not mel_codec:
            return self.decode_latents(latents)
        from foleykit.models.vocoder import vocode

        t0 = time.perf_counter()
        with self.autocast():
            mel = self.codec.decode_mel(latents.to(self.device))
            timings["decode_vae"] = time.perf_counter() - t0
            return vocode(self.codec.vocoder, mel).float()
