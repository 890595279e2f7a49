"""AudioLDM-training's HiFi-GAN and LAION-CLAP text tower -> transformers modules.

- HiFi-GAN (``hifigan_16k_64bins.ckpt``, ``{"generator": state dict}``; or the copy inside a latent-diffusion
  checkpoint under ``first_stage_model.vocoder.``): ``conv_pre`` / ``ups[i]`` / ``resblocks[k].convs1|2[j]`` /
  ``conv_post``, with weight normalisation either still applied (``weight_g`` / ``weight_v``) or already
  folded. It becomes transformers' ``SpeechT5HifiGan`` (``upsampler[i]`` instead of ``ups[i]``; the weight
  norm folded: ``w = g * v / |v|`` with the norm over every axis but the first).
- LAION-CLAP's text tower (``clap_music_speech_audioset_epoch_15_esc_89.98.pt``, or the copy under
  ``cond_stage_models.0.model.``): ``text_branch`` is a RoBERTa ``RobertaModel`` with its pooler and
  ``text_projection`` a ``Linear -> ReLU -> Linear`` on the pooled output; AudioLDM L2-normalises the result.
  It becomes transformers' ``ClapTextModelWithProjection`` (``text_model`` / ``text_projection.linear1|2``),
  whose ``text_embeds`` are that projection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from foleykit.convert.ldm import Renamer, Tensors, _indices
from foleykit.errors import ModelError

#: AudioLDM-training's 16 kHz, 64-mel HiFi-GAN (the one ReWaS and VTA-LDM decode with).
HIFIGAN_16K_64: dict[str, Any] = {
    "model_in_dim": 64,
    "sampling_rate": 16000,
    "upsample_initial_channel": 1024,
    "upsample_rates": [5, 4, 2, 2, 2],
    "upsample_kernel_sizes": [16, 16, 8, 4, 4],
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "leaky_relu_slope": 0.1,
    "normalize_before": False,
}
#: roberta-base, the text branch of LAION-CLAP (``RobertaModel.from_pretrained("roberta-base")``).
ROBERTA_BASE: dict[str, Any] = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "projection_hidden_act": "relu",
}


def fold_weight_norm(sd: Mapping[str, torch.Tensor]) -> Tensors:
    """Replace every ``X.weight_g`` / ``X.weight_v`` pair by ``X.weight = g * v / |v|`` (norm over dims > 0)."""
    out: Tensors = {}
    for k, v in sd.items():
        if k.endswith(".weight_g"):
            continue
        if k.endswith(".weight_v"):
            base = k[: -len("_v")]
            g = sd.get(base + "_g")
            if g is None:
                raise ModelError(f"HiFi-GAN: {k} has no matching weight_g")
            dims = tuple(range(1, v.ndim))
            out[base] = v * (g / v.norm(dim=dims, keepdim=True))
            continue
        out[k] = v
    return out


def hifigan_config(sd: Mapping[str, torch.Tensor], overrides: Mapping[str, Any] | None = None) -> dict:
    """``SpeechT5HifiGanConfig`` kwargs: AudioLDM's 16 kHz HiFi-GAN, checked against the tensor shapes."""
    cfg = {**HIFIGAN_16K_64, **(overrides or {})}
    pre = sd["conv_pre.weight"]
    cfg["model_in_dim"], cfg["upsample_initial_channel"] = int(pre.shape[1]), int(pre.shape[0])
    ups = _indices(sd, "ups")
    kernels = [int(sd[f"ups.{i}.weight"].shape[-1]) for i in ups]
    if kernels != list(cfg["upsample_kernel_sizes"]):
        raise ModelError(
            f"HiFi-GAN: upsampling kernels {kernels} differ from the expected {cfg['upsample_kernel_sizes']} "
            "(AudioLDM's 16 kHz 64-mel vocoder); give the vocoder's own config"
        )
    n_k = len(cfg["resblock_kernel_sizes"])
    found = [int(sd[f"resblocks.{k}.convs1.0.weight"].shape[-1]) for k in range(n_k)]
    if found != list(cfg["resblock_kernel_sizes"]):
        raise ModelError(f"HiFi-GAN: residual kernels {found} differ from {cfg['resblock_kernel_sizes']}")
    return cfg


def convert_hifigan(sd: Mapping[str, torch.Tensor]) -> Tensors:
    """HiFi-GAN generator state dict (no prefix) -> ``SpeechT5HifiGan`` state dict (mean 0 / scale 1 added)."""
    sd = fold_weight_norm(sd)
    r = Renamer(sd, what="HiFi-GAN")
    r.take("conv_pre", "conv_pre")
    for i in _indices(sd, "ups"):
        r.take(f"ups.{i}", f"upsampler.{i}")
    for k in _indices(sd, "resblocks"):
        r.take(f"resblocks.{k}", f"resblocks.{k}")
    r.take("conv_post", "conv_post")
    out = r.check_all_used()
    n_mels = int(sd["conv_pre.weight"].shape[1])
    out["mean"], out["scale"] = torch.zeros(n_mels), torch.ones(n_mels)
    return out


def build_hifigan(cfg: Mapping[str, Any], sd: Mapping[str, torch.Tensor]):
    """A ``SpeechT5HifiGan`` with the converted weights (eval mode)."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    from foleykit.convert.checkpoint import load_exact

    model = SpeechT5HifiGan(SpeechT5HifiGanConfig(**cfg))
    load_exact(model, sd, what="HiFi-GAN")
    return model.eval()


# --- CLAP text tower ---------------------------------------------------------------------------------------
def clap_text_config(sd: Mapping[str, torch.Tensor], overrides: Mapping[str, Any] | None = None) -> dict:
    """``ClapTextConfig`` kwargs: roberta-base, with the sizes read from the tensors (heads are not)."""
    cfg = {**ROBERTA_BASE, **(overrides or {})}
    emb = sd["text_branch.embeddings.word_embeddings.weight"]
    cfg["vocab_size"], cfg["hidden_size"] = int(emb.shape[0]), int(emb.shape[1])
    cfg["max_position_embeddings"] = int(sd["text_branch.embeddings.position_embeddings.weight"].shape[0])
    cfg["type_vocab_size"] = int(sd["text_branch.embeddings.token_type_embeddings.weight"].shape[0])
    cfg["num_hidden_layers"] = len(_indices(sd, "text_branch.encoder.layer"))
    cfg["intermediate_size"] = int(sd["text_branch.encoder.layer.0.intermediate.dense.weight"].shape[0])
    cfg["projection_dim"] = int(sd["text_projection.2.weight"].shape[0])
    return cfg


def convert_clap_text(sd: Mapping[str, torch.Tensor]) -> Tensors:
    """LAION-CLAP state dict (no prefix; audio branch ignored) -> ``ClapTextModelWithProjection`` state dict."""
    text = {
        k: v
        for k, v in sd.items()
        if k.startswith(("text_branch.", "text_projection.")) and not k.endswith("embeddings.position_ids")
    }
    if "text_projection.0.weight" not in text or "text_branch.pooler.dense.weight" not in text:
        raise ModelError(
            "CLAP: no text_branch (RoBERTa with pooler) / text_projection weights: not a LAION-CLAP checkpoint "
            "with a RoBERTa text tower"
        )
    r = Renamer(text, what="CLAP text tower")
    r.take("text_branch", "text_model")
    r.take("text_projection.0", "text_projection.linear1")
    r.take("text_projection.2", "text_projection.linear2")
    return r.check_all_used()


def build_clap_text(cfg: Mapping[str, Any], sd: Mapping[str, torch.Tensor]):
    """A ``ClapTextModelWithProjection`` with the converted weights (eval mode)."""
    from transformers import ClapTextConfig, ClapTextModelWithProjection

    from foleykit.convert.checkpoint import load_exact

    model = ClapTextModelWithProjection(ClapTextConfig(**cfg))
    own = model.state_dict()
    sd = dict(sd)
    for k in own:  # non-persistent-looking buffers some versions keep in the state dict
        if k not in sd and k.endswith(("position_ids", "token_type_ids")):
            sd[k] = own[k]
    load_exact(model, sd, what="CLAP text tower")
    return model.eval()
