"""Pluggable audio embedders for FD / FAD / KL / IS and the CLAP score (registry kind ``"embedder"``).

- ``aisfx`` (:class:`AisfxEmbedder`): packaged with its weights, offline; 512-d, 44.1 kHz; logits from
  its UCS classifier head.
- ``panns`` (:class:`PannsEmbedder`): CNN14 from a local ``Cnn14_mAP=0.431.pth`` (32 kHz) or
  ``Cnn14_16k_mAP=0.438.pth``; 2048-d clip embedding, 527 AudioSet logits.
- ``vggish`` (:class:`VGGishEmbedder`): local torchvggish ``vggish-10086976.pth`` (+ optional PCA); 128-d.
- ``clap`` (:class:`ClapEmbedder`): a local transformers CLAP folder (laion/clap-htsat-*); text + audio.

Importing this package registers them; build one with ``foleykit.registry.build("embedder", name, ...)``.
"""

from foleykit.evaluation.embedders.aisfx import AisfxEmbedder
from foleykit.evaluation.embedders.base import Embedder
from foleykit.evaluation.embedders.clap import ClapEmbedder
from foleykit.evaluation.embedders.panns import Cnn14, PannsEmbedder
from foleykit.evaluation.embedders.vggish import VGGish, VGGishEmbedder

__all__ = ["AisfxEmbedder", "ClapEmbedder", "Cnn14", "Embedder", "PannsEmbedder", "VGGish", "VGGishEmbedder"]
