"""ReWaS' released energy predictor phi, as the published code computes it.

The released ``phi_vggsound.ckpt`` holds (keys possibly prefixed ``module.``)::

    projection1.0            Linear(768, 768)
    hint_blocks.blocks.{i}   3 pre-norm blocks: norm_1 (LayerNorm eps 1e-6), attn (nn.MultiheadAttention, 8 heads,
                             bias, add_bias_kv: in_proj_weight / in_proj_bias / bias_k / bias_v / out_proj),
                             norm_2, mlp.fc1 (768 -> 3072), GELU, mlp.fc2
    projection2.{0,2,4,6}    Linear 768-128-64-16-1 with ReLU between

One property of the published code matters for reproducing it: the attention module is sequence-first
(``batch_first=False``) but receives batch-first ``B x T x D`` features, so it attends across the *batch*
axis. ReWaS runs one clip at a time, and then every video token attends only to itself and to the learned
``bias_k`` / ``bias_v`` token: phi is a per-token function of the Synchformer features. :class:`ReWaSPhi`
computes exactly that for each clip of a batch (clips never mix), so its output equals the published
module's output on a batch of one.

``to_control`` follows ReWaS' inference: Savitzky-Golay (9, 2) over the predicted sequence, then nearest
resampling to the clip's mel-rate energy frames.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError, ModelError
from foleykit.models.predictors import TimingPredictor, _masked_mean, _one_clip, resize_time


class _FrameAttention(nn.Module):
    """Multi-head attention of each token over {itself, a learned bias token} (the published phi at batch 1).

    Parameters are named like ``nn.MultiheadAttention(add_bias_kv=True)`` so the released weights load as they are.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"ReWaS phi: dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.bias_k = nn.Parameter(torch.zeros(1, 1, dim))
        self.bias_v = nn.Parameter(torch.zeros(1, 1, dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.normal_(self.bias_k, std=0.02)
        nn.init.normal_(self.bias_v, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        h, dh = self.heads, d // self.heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, t, 3, h, dh).unbind(2)
        # nn.MultiheadAttention appends bias_k / bias_v to the keys / values after the input projection
        bk, bv = self.bias_k.view(h, dh), self.bias_v.view(h, dh)
        scale = dh**-0.5
        scores = torch.stack([(q * k).sum(-1), (q * bk).sum(-1)], dim=-1) * scale  # (B, T, H, 2)
        p = scores.softmax(dim=-1)
        out = p[..., :1] * v + p[..., 1:] * bv  # (B, T, H, dh)
        return self.out_proj(out.reshape(b, t, d))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm_1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _FrameAttention(dim, heads)
        self.norm_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.mlp.fc2 = nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm_1(x))
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm_2(x))))


class ReWaSPhi(TimingPredictor):
    """ReWaS' released video-to-energy predictor phi (see the module docstring).

    Args:
        in_dim: Video feature size (Synchformer: 768); also the width of the blocks.
        num_layers: Transformer blocks (released: 3).
        num_heads: Attention heads (released: 8).
        mlp_ratio: Feed-forward expansion (4).
        head_dims: Hidden sizes of the output MLP (released: 128, 64, 16; a final 1 is appended).

    Shapes:
        ``forward(feats: Tensor[B x T x D], mask=None) -> Tensor[B x T]`` (one energy value per video token).
    """

    kind: ClassVar[str] = "energy"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"in_dim": 768, "num_layers": 3, "num_heads": 8, "head_dims": (128, 64, 16)},
        "debug": {"in_dim": 16, "num_layers": 1, "num_heads": 2, "head_dims": (8, 4)},
    }

    def __init__(
        self,
        *,
        in_dim: int = 768,
        num_layers: int = 3,
        num_heads: int = 8,
        mlp_ratio: int = 4,
        head_dims: tuple[int, ...] = (128, 64, 16),
    ) -> None:
        super().__init__()
        self.in_dim = int(in_dim)
        self.projection1 = nn.Sequential(nn.Linear(in_dim, in_dim))
        self.hint_blocks = nn.Module()
        self.hint_blocks.blocks = nn.ModuleList(
            _Block(in_dim, num_heads, mlp_ratio) for _ in range(num_layers)
        )
        layers: list[nn.Module] = []
        dims = [in_dim, *head_dims, 1]
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        self.projection2 = nn.Sequential(*layers)

    def forward(self, feats: Tensor, mask: Tensor | None = None) -> Tensor:
        if feats.ndim != 3 or feats.shape[-1] != self.in_dim:
            raise ConfigError(
                f"ReWaS phi: expected features Tensor[B x T x {self.in_dim}], got {tuple(feats.shape)}"
            )
        x = self.projection1(feats.to(self.projection1[0].weight.dtype))
        for block in self.hint_blocks.blocks:
            x = block(x)
        return self.projection2(x).squeeze(-1)

    def loss(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """MSE against the energy ``Tensor[B x T_e]`` resized (nearest) to the prediction length (ReWaS L_e)."""
        target = resize_time(target.to(pred.dtype), pred.shape[1], mode="nearest")
        return _masked_mean((pred - target) ** 2, mask)

    def to_control(self, output: Tensor, seq: SequenceConfig):
        """Energy on the mel grid of ``seq``'s clip: Savitzky-Golay (9, 2), then nearest resampling."""
        from foleykit.controls.base import TemporalControl
        from foleykit.controls.energy import savgol_smooth

        values = savgol_smooth(_one_clip(output, 1, "ReWaSPhi"))
        n = max(1, seq.num_energy_frames)
        idx = torch.div(
            torch.arange(n) * len(values), n, rounding_mode="floor"
        ).numpy()  # nearest, like F.interpolate
        return TemporalControl("energy", values[idx].astype("float32"), seq.mel_rate)


def phi_config(sd: Mapping[str, Tensor], *, num_heads: int = 8) -> dict[str, Any]:
    """:class:`ReWaSPhi` kwargs read from a released phi state dict (heads are not recoverable: argument)."""
    if "projection1.0.weight" not in sd:
        raise ModelError("ReWaS phi: no projection1.0.weight; is it phi_vggsound.ckpt?")
    dim = int(sd["projection1.0.weight"].shape[0])
    n = len({k.split(".")[2] for k in sd if k.startswith("hint_blocks.blocks.")})
    head = [
        int(sd[k].shape[0])
        for k in sorted(sd, key=_proj2_order)
        if k.startswith("projection2.") and k.endswith(".weight")
    ]
    mlp = int(sd["hint_blocks.blocks.0.mlp.fc1.weight"].shape[0]) // dim
    return {
        "in_dim": dim,
        "num_layers": n,
        "num_heads": num_heads,
        "mlp_ratio": mlp,
        "head_dims": tuple(head[:-1]),
    }


def _proj2_order(k: str) -> int:
    parts = k.split(".")
    return int(parts[1]) if k.startswith("projection2.") else -1


def build_phi(sd: Mapping[str, Tensor], *, num_heads: int = 8) -> ReWaSPhi:
    """A :class:`ReWaSPhi` holding the released weights (the state dict loads unchanged)."""
    from foleykit.convert.checkpoint import load_exact

    model = ReWaSPhi(**phi_config(sd, num_heads=num_heads))
    load_exact(model, sd, what="ReWaS phi")
    return model.eval()
