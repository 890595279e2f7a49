"""Frozen encoders that converted model folders carry *with their weights* (nothing else to install).

- :class:`ClapTowerTextEncoder`: AudioLDM's CLAP text tower (``ClapTextModelWithProjection``, RoBERTa +
  ReLU projection) with its RoBERTa tokenizer; one token per prompt, the L2-normalised ``text_embeds``
  (AudioLDM's / ReWaS' FiLM condition; the empty prompt gives their unconditional embedding).
- :class:`CLIPFrameEncoder`: a CLIP vision tower (``CLIPVisionModelWithProjection``) per frame, with
  VTA-LDM's preprocessing: bicubic resize of the short side, centre crop, pixels in [0, 1] *without* CLIP's
  mean / std normalisation (VTA-LDM's released inference leaves it out), projected ``image_embeds``.

Both are built from a config dict (kept in the model folder's spec) and save their weights in the component
folder; the text encoder also keeps its tokenizer files there (``tokenizer/``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from foleykit.encoders.base import TextEncoder, VideoEncoder
from foleykit.encoders.video import clip_center_crop
from foleykit.errors import ConfigError, WeightsNotFoundError


class ClapTowerTextEncoder(TextEncoder):
    """CLAP text tower + tokenizer carried by a model folder (see the module docstring).

    Args:
        text_config: ``ClapTextConfig`` kwargs.
        folder: The component folder (its ``tokenizer/`` is loaded); or give ``tokenizer``.
        tokenizer: A transformers tokenizer (conversion time).
        max_length: Token limit (AudioLDM: 512).
    """

    def __init__(
        self,
        *,
        text_config: dict[str, Any],
        folder: str | os.PathLike | None = None,
        tokenizer: Any = None,
        max_length: int = 512,
        cache_size: int = 4096,
    ) -> None:
        super().__init__(cache_size=cache_size)
        from transformers import ClapTextConfig, ClapTextModelWithProjection

        self.text_config, self.max_length = dict(text_config), int(max_length)
        self.model = ClapTextModelWithProjection(ClapTextConfig(**self.text_config))
        if tokenizer is None:
            if folder is None:
                raise ConfigError("ClapTowerTextEncoder needs its folder (tokenizer/) or a tokenizer")
            tokenizer = load_tokenizer(Path(folder) / "tokenizer", what="CLAP text tower")
        self.tokenizer = tokenizer
        self.dim = int(self.model.config.projection_dim)
        self.freeze()

    def _encode_batch(self, prompts: list[str]) -> list[Tensor]:
        batch = self.tokenizer(
            prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        with torch.no_grad():
            emb = self.model(**batch).text_embeds.float()
        return [e[None] for e in F.normalize(emb, dim=-1)]

    def save_extra_files(self, folder: Path) -> None:
        """Write the tokenizer next to the weights (``folder/tokenizer``)."""
        self.tokenizer.save_pretrained(str(Path(folder) / "tokenizer"))


def load_tokenizer(folder: str | os.PathLike, *, what: str) -> Any:
    """A transformers tokenizer from a local folder (never downloads)."""
    from transformers import AutoTokenizer

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise WeightsNotFoundError(f"{what}: tokenizer folder {folder} does not exist")
    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as err:
        raise WeightsNotFoundError(
            f"{what}: no tokenizer in {folder} ({err}); expected the files `save_pretrained` writes "
            "(tokenizer.json, or vocab.json + merges.txt for RoBERTa)"
        ) from None


class CLIPFrameEncoder(VideoEncoder):
    """CLIP vision tower per frame with VTA-LDM's preprocessing (see the module docstring).

    Args:
        vision_config: ``CLIPVisionConfig`` kwargs (``projection_dim`` included).
        normalize_pixels: Apply CLIP's mean / std (False: VTA-LDM's released inference).
        mean, std: CLIP's pixel statistics (used when ``normalize_pixels``).
        chunk_frames: Frames per forward.

    Shapes:
        ``encode(frames uint8 [B x] T x H x W x 3) -> Tensor[B x T x projection_dim]``.
    """

    def __init__(
        self,
        *,
        vision_config: dict[str, Any],
        normalize_pixels: bool = False,
        mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073),
        std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711),
        chunk_frames: int = 32,
    ) -> None:
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        self.vision_config = dict(vision_config)
        self.model = CLIPVisionModelWithProjection(CLIPVisionConfig(**self.vision_config))
        self.input_size = int(self.model.config.image_size)
        self.dim = int(self.model.config.projection_dim)
        self.normalize_pixels, self.chunk_frames = bool(normalize_pixels), int(chunk_frames)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def preprocess(self, frames: Tensor) -> Tensor:
        """uint8 ``Tensor[B x T x H x W x 3]`` -> ``Tensor[(B*T) x 3 x S x S]`` (S = image_size)."""
        x = clip_center_crop(frames, self.input_size)
        return (x - self.mean) / self.std if self.normalize_pixels else x

    def _encode(self, frames: Tensor) -> Tensor:
        b, t = frames.shape[:2]
        x = self.preprocess(frames).to(self.model.dtype)
        out = [
            self.model(pixel_values=x[i : i + self.chunk_frames]).image_embeds
            for i in range(0, x.shape[0], self.chunk_frames)
        ]
        return torch.cat(out).float().view(b, t, self.dim)
