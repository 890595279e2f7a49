"""Base classes and helpers shared by the text, audio and video condition encoders.

Contract (docs/ARCHITECTURE.md, "Conditioning interfaces"):

- text:  ``encode(prompts: list[str]) -> (tokens Tensor[B x L x dim], mask BoolTensor[B x L])``;
- audio: ``encode(wavs: list[np.ndarray], sample_rate: int) -> (tokens Tensor[B x L x dim], mask)``;
- video: ``encode(frames uint8 [B x] T x H x W x 3) -> Tensor[B x T x dim]``, plus ``input_size``.

Frozen (pretrained) encoders stay in eval mode when their parent calls ``.train()`` and never build a
graph; trainable ones (the frame CNN) behave like any module.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from foleykit.errors import ConfigError, ModelError, WeightsNotFoundError, ZeroFramesError

#: Files that mark a folder holding a tokenizer (any one is enough).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)
#: Weight files a transformers model folder may hold (any one is enough).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class ConditionEncoder(nn.Module):
    """Common parts: ``dim``, ``frozen``, ``device``; frozen encoders ignore ``train()``."""

    dim: int
    frozen: bool = True

    def __init__(self) -> None:
        super().__init__()
        # Lets weight-free encoders know which device they were moved to.
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)

    @property
    def device(self) -> torch.device:
        return self._device_anchor.device

    def freeze(self) -> ConditionEncoder:
        """Stop gradients and switch to eval mode for good."""
        self.frozen = True
        self.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> ConditionEncoder:
        return super().train(False if self.frozen else mode)


def pad_sequences(seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack ``[Tensor[L_i x D]]`` into ``(Tensor[B x L_max x D], BoolTensor[B x L_max])`` (zero padding)."""
    if not seqs:
        raise ConfigError("nothing to encode: the batch is empty")
    L = max(s.shape[0] for s in seqs)
    D = seqs[0].shape[1]
    out = seqs[0].new_zeros(len(seqs), L, D)
    mask = torch.zeros(len(seqs), L, dtype=torch.bool, device=seqs[0].device)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = True
    return out, mask


class TextEncoder(ConditionEncoder):
    """Text encoder with a per-prompt cache (the same prompt is encoded once per video / window).

    Subclasses implement ``_encode_batch(prompts) -> list[Tensor[L_i x dim]]`` (unpadded token sequences).
    """

    def __init__(self, *, cache_size: int = 4096) -> None:
        super().__init__()
        self.cache_size = cache_size
        self._cache: collections.OrderedDict[str, Tensor] = collections.OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    def _encode_batch(self, prompts: list[str]) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def clear_cache(self) -> None:
        self._cache.clear()

    def _apply(self, fn: Any, recurse: bool = True) -> TextEncoder:
        self.clear_cache()  # cached tensors must follow .to(device / dtype)
        return super()._apply(fn, recurse)

    @staticmethod
    def _check_prompts(prompts: list[str]) -> list[str]:
        if isinstance(prompts, str):
            raise ConfigError("encode() takes a list of prompts, not a single string")
        prompts = list(prompts)
        if not prompts:
            raise ConfigError("encode() got an empty list of prompts")
        for p in prompts:
            if not isinstance(p, str):
                raise ConfigError(f"prompts must be strings, got {type(p).__name__}")
        return prompts

    def encode_tokens(self, prompts: list[str]) -> list[Tensor]:
        """Unpadded token sequences ``[Tensor[L_i x dim]]``, cached per prompt while frozen."""
        prompts = self._check_prompts(prompts)
        use_cache = self.frozen and self.cache_size > 0
        if not use_cache:
            return self._encode_batch(prompts)
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))  # unique, in order
        self.cache_hits += len(prompts) - len(missing)  # prompts served without running the model
        self.cache_misses += len(missing)
        if missing:
            with torch.no_grad():
                for p, t in zip(missing, self._encode_batch(missing)):
                    self._cache[p] = t.detach()
        out = []
        for p in prompts:
            self._cache.move_to_end(p)
            out.append(self._cache[p])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def encode(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """``(tokens Tensor[B x L x dim], mask BoolTensor[B x L])``, True = real token."""
        return pad_sequences(self.encode_tokens(prompts))

    def encode_pooled(self, prompts: list[str]) -> Tensor:
        """One vector per prompt ``Tensor[B x dim]``: masked mean of the tokens (subclasses may override)."""
        tokens, mask = self.encode(prompts)
        m = mask[..., None].to(tokens.dtype)
        return (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)

    def forward(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        return self.encode(prompts)


class AudioEncoder(ConditionEncoder):
    """Reference-audio encoder: ``encode(wavs, sample_rate) -> (tokens, mask)``."""

    @staticmethod
    def _check_wavs(wavs: list[np.ndarray], sample_rate: int) -> list[np.ndarray]:
        """Validate and convert to mono float32 numpy arrays."""
        from foleykit.errors import ZeroDurationError

        if isinstance(wavs, np.ndarray | Tensor):
            raise ConfigError("encode() takes a list of waveforms (one per item), not a single array")
        wavs = list(wavs)
        if not wavs:
            raise ConfigError("encode() got an empty list of waveforms")
        if not (isinstance(sample_rate, int | np.integer) and sample_rate > 0):
            raise ConfigError(f"sample_rate must be a positive integer, got {sample_rate!r}")
        out = []
        for i, w in enumerate(wavs):
            w = w.detach().cpu().numpy() if isinstance(w, Tensor) else np.asarray(w)
            if w.ndim == 2:
                w = w.mean(axis=0)  # (C, T) -> mono
            if w.ndim != 1:
                raise ConfigError(f"waveform {i}: expected (T,) or (C, T), got shape {w.shape}")
            if w.size == 0:
                raise ZeroDurationError(f"reference audio {i} is empty (zero samples)")
            w = w.astype(np.float32, copy=False)
            if not np.all(np.isfinite(w)):
                raise ConfigError(f"reference audio {i} contains NaN or infinite samples")
            out.append(w)
        return out

    def forward(self, wavs: list[np.ndarray], sample_rate: int) -> tuple[Tensor, Tensor]:
        return self.encode(wavs, sample_rate)


def as_frame_batch(frames: np.ndarray | Tensor) -> tuple[Tensor, bool]:
    """uint8 frames ``[B x] T x H x W x 3`` -> (``Tensor[B x T x H x W x 3]`` uint8, had_batch_dim)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if not isinstance(x, Tensor):
        raise ConfigError(f"frames must be a numpy array or a torch tensor, got {type(frames).__name__}")
    if x.dtype != torch.uint8:
        raise ConfigError(f"frames must be uint8 RGB, got dtype {x.dtype}")
    batched = x.ndim == 5
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ConfigError(
            f"frames must be (T, H, W, 3) or (B, T, H, W, 3) uint8 RGB, got shape {tuple(x.shape)}"
        )
    if x.shape[1] == 0:
        raise ZeroFramesError("no video frames to encode (T = 0)")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ConfigError(f"frames have zero height or width: {tuple(x.shape)}")
    return x, batched


def resize_frames(x: Tensor, size: int) -> Tensor:
    """Float frames ``Tensor[N x 3 x H x W]`` -> ``Tensor[N x 3 x size x size]`` (area / bilinear)."""
    if x.shape[-2:] == (size, size):
        return x
    mode = "area" if x.shape[-2] >= size and x.shape[-1] >= size else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return torch.nn.functional.interpolate(x, size=(size, size), mode=mode, **kwargs)


class VideoEncoder(ConditionEncoder):
    """Video encoder: ``encode(frames) -> Tensor[B x T x dim]``; ``input_size``: short side it works at."""

    input_size: int

    def _encode(self, frames: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``uint8 Tensor[B x T x H x W x 3]`` -> ``Tensor[B x T x dim]``."""
        raise NotImplementedError

    def encode(self, frames: np.ndarray | Tensor) -> Tensor:
        """Features per frame ``Tensor[B x T x dim]`` (B = 1 for a single clip ``T x H x W x 3``)."""
        x, _ = as_frame_batch(frames)
        x = x.to(self.device)
        if self.frozen:
            with torch.no_grad():
                return self._encode(x)
        return self._encode(x)

    def forward(self, frames: np.ndarray | Tensor) -> Tensor:
        return self.encode(frames)


# --- local transformers folders -----------------------------------------------------------------------------
def resolve_hf_folder(name_or_path: str | os.PathLike, *, what: str, sub: str | None = None) -> Path:
    """Find a transformers model folder locally (never downloads) and check it holds weights.

    Args:
        name_or_path: A folder, a name under $FOLEYKIT_HOME/models, or a hub id already in the HF cache.
        what: Human name for messages (e.g. "CLAP text encoder").
        sub: Optional sub-folder holding the model when the root has none (e.g. ``text_encoder`` in
            diffusers pipeline layouts).

    Raises:
        WeightsNotFoundError: with the places searched and the files expected.
    """
    from foleykit.paths import resolve_model

    try:
        root = resolve_model(name_or_path, expect="config.json")
    except WeightsNotFoundError as err:
        if sub:
            try:
                return resolve_hf_folder(
                    resolve_model(name_or_path, expect=f"{sub}/config.json") / sub, what=what
                )
            except WeightsNotFoundError:
                pass
        raise WeightsNotFoundError(
            f"{what}: {err}\nExpected a transformers folder with config.json, the weights "
            f"({' or '.join(WEIGHT_FILES[::2])}) and the tokenizer / preprocessor files, as written by "
            "`save_pretrained` or downloaded from the model's hub page."
        ) from None
    folder = root
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise WeightsNotFoundError(
            f"{what}: {folder} has config.json but no weights (expected one of {', '.join(WEIGHT_FILES)})"
        )
    return folder


def clip_tower_config(folder: Path, tower: str) -> Any:
    """The ``text`` / ``vision`` sub-config of a CLIP folder, with the projection size of the full model.

    ``CLIPModel`` sizes its projections with the top-level ``projection_dim``; the sub-configs may carry
    another (default 512) value, and the projection weights would then not load into the tower model.
    """
    import json

    from transformers import CLIPTextConfig, CLIPVisionConfig

    cls = CLIPTextConfig if tower == "text" else CLIPVisionConfig
    config = cls.from_pretrained(str(folder), local_files_only=True)
    raw = json.loads((folder / "config.json").read_text())
    if raw.get("model_type") == "clip" and "projection_dim" in raw:
        config.projection_dim = raw["projection_dim"]
    return config


def load_hf_model(cls: Any, folder: Path, *, what: str, config: Any = None) -> nn.Module:
    """``cls.from_pretrained(folder)`` offline, in eval mode; a weight that is missing is an error."""
    import transformers

    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    from foleykit.pipelines import trust

    try:
        kwargs = {} if config is None else {"config": config}
        if trust.referenced_use_safetensors():  # referenced by a model folder: safetensors only
            trust.weights_file(folder, WEIGHT_FILES[:2], WEIGHT_FILES[2:], where=f"{what} ({folder.name})")
            kwargs["use_safetensors"] = True
        model, info = cls.from_pretrained(
            str(folder), local_files_only=True, output_loading_info=True, **kwargs
        )
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise ModelError(f"{what}: could not load {folder}: {err}") from err
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
    missing = [k for k in info.get("missing_keys", []) if "position_ids" not in k]
    if missing:
        raise ModelError(
            f"{what}: {folder} does not hold a complete {cls.__name__} ({len(missing)} weights missing, e.g. "
            f"{missing[0]}); is it the right checkpoint?"
        )
    return model.eval()


def load_hf_tokenizer(folder: Path, *, what: str, sub: str | None = "tokenizer") -> Any:
    """AutoTokenizer from ``folder`` (or its sibling ``tokenizer/`` folder in pipeline layouts), offline."""
    from transformers import AutoTokenizer

    candidates = [folder]
    if sub:
        candidates += [folder / sub, folder.parent / sub]
    errors = []
    for c in candidates:
        if not any((c / f).is_file() for f in TOKENIZER_FILES):
            continue
        try:
            return AutoTokenizer.from_pretrained(str(c), local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError, TypeError) as err:
            errors.append(f"{c}: {err}")
    raise WeightsNotFoundError(
        f"{what}: no tokenizer found in {folder} (tokenizer.json / vocab files, as `save_pretrained` "
        "writes them)" + ("".join(f"\n  - {e}" for e in errors))
    )
