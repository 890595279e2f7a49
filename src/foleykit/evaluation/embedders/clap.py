"""CLAP (LAION, Wu et al. ICASSP 2023) from a local transformers folder: CLAP score and FD on CLAP embeddings.

Layout: a ``transformers`` ``ClapModel`` folder as published on the hub (laion/clap-htsat-unfused,
laion/clap-htsat-fused, laion/larger_clap_*): ``config.json``, ``model.safetensors`` (or
``pytorch_model.bin``), the ``ClapProcessor`` files (``preprocessor_config.json`` or
``processor_config.json``, tokenizer files). Nothing is downloaded: pass the folder (or a name under
``$FOLEYKIT_HOME/models``, or a hub id already in the local HF cache).

Audio goes in at the feature extractor's rate (48 kHz), cut into chunks of at most ``max_length_s``
(10 s) so that no random crop happens ("rand_trunc" never truncates; fused models use "fusion");
each chunk gives one projected embedding. Text: the tokenizer, then ``get_text_features``.
"""

from __future__ import annotations

import os

import numpy as np

from foleykit.errors import EvaluationError, WeightsNotFoundError
from foleykit.evaluation.embedders.base import Embedder, check_mono
from foleykit.registry import register

WHAT = "CLAP embedder"


def _pooled(out):
    """transformers 4 returns a Tensor from get_*_features, transformers 5 a ModelOutput."""
    import torch

    return out if isinstance(out, torch.Tensor) else out.pooler_output


class ClapEmbedder(Embedder):
    """CLAP audio / text embeddings (projection space, e.g. 512-d for laion/clap-htsat-*).

    Args:
        path: Model folder (or a locally resolvable name); required.
        device: Torch device.

    Raises:
        WeightsNotFoundError: the folder, its weights or its processor files are missing.
    """

    name = "clap"

    def __init__(self, *, path: str | os.PathLike | None = None, device: str = "cpu") -> None:
        from transformers import ClapModel, ClapProcessor

        from foleykit.encoders.base import load_hf_model, resolve_hf_folder

        if path is None:
            raise WeightsNotFoundError(
                f"{WHAT}: no model folder given. Download a CLAP checkpoint in the transformers layout (e.g. "
                "`huggingface-cli download laion/clap-htsat-unfused --local-dir DIR` on a connected machine) "
                "and pass --clap-model DIR."
            )
        self.folder = resolve_hf_folder(path, what=WHAT)
        try:
            self.processor = ClapProcessor.from_pretrained(str(self.folder), local_files_only=True)
        except (OSError, ValueError, TypeError) as err:
            raise WeightsNotFoundError(
                f"{WHAT}: {self.folder} lacks the ClapProcessor files (preprocessor/processor config and "
                f"tokenizer, as `ClapProcessor.save_pretrained` writes them): {err}"
            ) from None
        self.model = load_hf_model(ClapModel, self.folder, what=WHAT).to(device)
        self.device = device
        fe = self.processor.feature_extractor
        self.sample_rate = int(fe.sampling_rate)
        self.chunk_samples = round(float(fe.max_length_s) * self.sample_rate)
        self.truncation = "fusion" if self.model.config.audio_config.enable_fusion else "rand_trunc"
        self.dim = int(self.model.config.projection_dim)

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """``(T,)`` at 48 kHz -> ``(N, D)`` L2-normalised projected embeddings, one per <= 10 s chunk."""
        import torch

        x = check_mono(wav, name="clap")
        chunks = [x[i : i + self.chunk_samples] for i in range(0, x.size, self.chunk_samples)]
        feats = self.processor.feature_extractor(
            chunks, sampling_rate=self.sample_rate, return_tensors="pt", truncation=self.truncation
        )
        with torch.no_grad():
            emb = _pooled(self.model.get_audio_features(**{k: v.to(self.device) for k, v in feats.items()}))
        return torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()

    def clip_embedding(self, wav: np.ndarray) -> np.ndarray:
        """Mean of the chunk embeddings, L2-normalised again ``(D,)``."""
        e = self.embed(wav).mean(axis=0)
        return (e / max(float(np.linalg.norm(e)), 1e-12)).astype(np.float32)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """``len(texts)`` prompts -> ``(B, D)`` L2-normalised projected text embeddings."""
        import torch

        if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
            raise EvaluationError("CLAP text embedding needs a non-empty list of strings")
        batch = self.processor.tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True)
        with torch.no_grad():
            emb = _pooled(self.model.get_text_features(**{k: v.to(self.device) for k, v in batch.items()}))
        return torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()

    def describe(self) -> dict:
        return {**super().describe(), "model": str(self.folder), "truncation": self.truncation}


register("embedder", "clap")(ClapEmbedder)
