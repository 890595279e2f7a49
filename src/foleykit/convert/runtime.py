"""Registry entries of the modules that converted model folders name in their specs.

Imported lazily by :mod:`foleykit.registry` (a provider of the ``text_encoder``, ``video_encoder`` and
``timing_predictor`` kinds), so loading a converted folder needs no import of the converters themselves.
"""

from __future__ import annotations

from foleykit.convert.phi import ReWaSPhi
from foleykit.convert.synchformer import SynchformerVideoEncoder
from foleykit.convert.towers import ClapTowerTextEncoder, CLIPFrameEncoder
from foleykit.registry import register

register("text_encoder", "clap_tower")(ClapTowerTextEncoder)
register("video_encoder", "synchformer")(SynchformerVideoEncoder)
register("video_encoder", "clip_frames")(CLIPFrameEncoder)
register("timing_predictor", "rewas_phi")(ReWaSPhi)
