"""Condition encoders: text (WHAT), reference audio (timbre) and video (WHEN + WHAT) -> tokens / features.

Build them by name through the registry (kinds ``text_encoder``, ``audio_encoder``, ``video_encoder``)::

    from foleykit import registry
    import foleykit.encoders  # declares the providers
    text = registry.build("text_encoder", "minilm")
    tokens, mask = text.encode(["glass breaking"])

Heavy packages (transformers, aisfx, the MiniLM weights, OpenCV) load only when an encoder is built.
"""

from __future__ import annotations

from foleykit import registry

for _kind, _module in (
    ("text_encoder", "foleykit.encoders.text"),
    ("audio_encoder", "foleykit.encoders.audio"),
    ("video_encoder", "foleykit.encoders.video"),
):
    registry.add_provider(_kind, _module)

__all__: list[str] = []
