"""The built-in offline embedder: aiSFX (Ma et al., ISMIR 2022), packaged with its weights (``aisfx``).

Frame embeddings: one 512-d vector per ~2.32 s block (100 mel frames at 44.1 kHz, hop 1024), blocks every
half block — exactly the reference-audio encoder's computation (``foleykit.encoders.audio.aisfx_*``, which
applies the RESOURCES.md workarounds: ``torch.load(weights_only=False)``, transposed librosa mel, zero
padding of clips shorter than one block). ``fd`` with this embedder is reported as FD_aisfx.

Logits (for KL / IS): the checkpoint also carries the classifier heads it was trained with (cross-dataset
training on nine sound-effect libraries). ``head`` picks one (default ``ucsMixed``: 69 classes of the
Universal Category System, the SFX industry taxonomy); clip logits are the head's logits averaged over
the clip's blocks. These KL_aisfx / IS_aisfx values are foleykit's offline stand-ins for the PANNs-based
KL / IS of the papers and are not comparable with them.
"""

from __future__ import annotations

import numpy as np

from foleykit.errors import ConfigError, ModelError, WeightsNotFoundError
from foleykit.evaluation.embedders.base import Embedder, check_mono
from foleykit.registry import register

#: Classifier heads in the aiSFX checkpoint: name -> number of classes.
HEADS = {
    "prosfx": 78,
    "soundlyTrain": 79,
    "ucsMixed": 69,
    "soundstormBalanced": 81,
    "productionelementsBalanced": 10,
    "cartoonexpressBalanced": 27,
    "hpxdigitalBalanced": 3,
    "series6000Balanced": 23,
    "series9000Balanced": 8,
}
DEFAULT_HEAD = "ucsMixed"


def _load_head(head: str):
    """The aiSFX classifier head ``Linear(512,256)-ReLU-Linear(256,128)-ReLU-Linear(128,C)`` (frozen, eval)."""
    import torch
    from torch import nn

    try:
        from aisfx.inference import get_path_modelWeights
    except ImportError:
        raise WeightsNotFoundError(
            "aisfx embedder: the package `aisfx` is not installed; `pip install --no-deps aisfx` "
            "(it carries its 25 MB checkpoint; nothing is downloaded)"
        ) from None
    path = get_path_modelWeights()
    # The checkpoint pickles (state_dict, {dataset: (index, n_classes)}) with numpy ints: needs weights_only=False.
    weights, datasets = torch.load(path, map_location="cpu", weights_only=False)
    if head not in datasets:
        raise ConfigError(f"aisfx has no classifier head {head!r}; heads: {', '.join(sorted(datasets))}")
    idx, n_classes = int(datasets[head][0]), int(datasets[head][1])
    net = nn.Sequential(
        nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, n_classes)
    )
    prefix = f"fc.{idx}."
    state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"aisfx embedder: unexpected layout of head {head!r} in {path}: {err}") from err
    net.requires_grad_(False)
    return net.eval()


class AisfxEmbedder(Embedder):
    """aiSFX frame embeddings (512-d, 44.1 kHz) and optional classifier-head logits.

    Args:
        head: Classifier head used for :meth:`logits` (see ``HEADS``); None disables logits.
        hop: Block hop as a fraction of a block (0.5 in the aiSFX paper).
        device: Torch device.
    """

    name = "aisfx"
    sample_rate = 44100
    dim = 512

    def __init__(self, *, head: str | None = DEFAULT_HEAD, hop: float = 0.5, device: str = "cpu") -> None:
        from foleykit.encoders.audio import load_aisfx

        if head is not None and head not in HEADS:
            raise ConfigError(f"aisfx has no classifier head {head!r}; heads: {', '.join(sorted(HEADS))}")
        self.head_name, self.hop, self.device = head, float(hop), device
        self.model = load_aisfx(device)
        self.head = _load_head(head).to(device) if head is not None else None
        self.num_classes = HEADS[head] if head is not None else 0

    def _block_embeddings(self, wav: np.ndarray):
        from foleykit.encoders.audio import aisfx_embed

        x = check_mono(wav, name="aisfx")
        return aisfx_embed(x, self.sample_rate, model=self.model, hop=self.hop)  # Tensor[N x 512]

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """``(T,)`` at 44.1 kHz -> ``(N, 512)`` block embeddings (N >= 1)."""
        return self._block_embeddings(wav).cpu().numpy().astype(np.float32)

    def embed_with_logits(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame embeddings ``(N, 512)`` and clip logits ``(C,)`` from one forward pass."""
        import torch

        emb = self._block_embeddings(wav)
        if self.head is None:
            return emb.cpu().numpy(), super().logits(wav)
        with torch.no_grad():
            logits = self.head(emb).mean(dim=0)
        return emb.cpu().numpy().astype(np.float32), logits.cpu().numpy().astype(np.float32)

    def logits(self, wav: np.ndarray) -> np.ndarray:
        """Clip logits ``(C,)``: the head's logits averaged over blocks."""
        return self.embed_with_logits(wav)[1]

    def describe(self) -> dict:
        return {
            **super().describe(),
            "head": self.head_name,
            "block_seconds": 100 * 1024 / 44100,
            "hop": self.hop,
        }


register("embedder", "aisfx")(AisfxEmbedder)
