"""Inference pipelines. ``VideoToAudioPipeline`` composes encoders, denoiser, adapters, sampler and codec.

Submodules: ``video_to_audio`` (the pipeline), ``guidance`` (condition assembly, classifier-free guidance),
``sampling`` (diffusers schedulers, training noise schedule), ``components`` (model folders).
"""

from __future__ import annotations

from typing import Any

__all__ = ["VideoToAudioOutput", "VideoToAudioPipeline"]


def __getattr__(name: str) -> Any:  # lazy: importing foleykit.pipelines stays light
    if name in __all__:
        from foleykit.pipelines import video_to_audio

        return getattr(video_to_audio, name)
    raise AttributeError(f"module 'foleykit.pipelines' has no attribute {name!r}")
