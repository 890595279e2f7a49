"""Semantic conditioning pieces: attentive pooling, frame projector and positional embeddings.

- ``AttentivePooling``: STA-V2A sec. II-B-2 (eq. 2-4) — a factor-graph style attention over video frames
  (local potential + cross potential), pooled to one vector, then a Conv1D gives K global video tokens
  (K = 4 by default) that join the text tokens in cross-attention, c = [e_text; e_gv] (eq. 5).
- ``FrameProjector``: VTA-LDM sec. 3.2 — frame-level video features mapped by a projection layer to the
  condition dimension, with the optional sinusoidal position embedding of VTA-LDM appendix D.
- ``SinusoidalPositions`` / ``LearnedPositions``: positional embeddings over time tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foleykit.errors import ConfigError

__all__ = ["AttentivePooling", "FrameProjector", "LearnedPositions", "SinusoidalPositions"]


def _check_features(x: Tensor, in_dim: int, name: str) -> None:
    if x.ndim != 3 or x.shape[-1] != in_dim:
        raise ConfigError(f"{name}: expected features Tensor[B x T x {in_dim}], got shape {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ConfigError(f"{name}: got zero time steps")


def _check_mask(mask: Tensor | None, x: Tensor, name: str) -> Tensor | None:
    if mask is None:
        return None
    if mask.shape != x.shape[:2]:
        raise ConfigError(
            f"{name}: mask shape {tuple(mask.shape)} does not match features {tuple(x.shape[:2])}"
        )
    mask = mask.to(device=x.device, dtype=torch.bool)
    if not bool(mask.any(dim=1).all()):
        raise ConfigError(f"{name}: every item needs at least one valid (unmasked) time step")
    return mask


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal position embeddings (Vaswani et al.; VTA-LDM appendix D "position embedding").

    Args:
        dim: Embedding size (even).
        max_period: Longest wavelength, in positions.

    ``forward(positions)`` takes an int ``T`` (positions ``0..T-1``) or a float tensor of positions
    ``Tensor[T]`` / ``Tensor[B x T]`` and returns ``Tensor[T x dim]`` / ``Tensor[B x T x dim]``.
    """

    def __init__(self, *, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        if dim <= 0 or dim % 2:
            raise ConfigError(f"SinusoidalPositions: dim must be a positive even number, got {dim}")
        self.dim = dim
        self.max_period = float(max_period)
        half = dim // 2
        freqs = torch.exp(-math.log(self.max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, positions: int | Tensor) -> Tensor:
        if isinstance(positions, int):
            positions = torch.arange(positions, device=self.freqs.device, dtype=torch.float32)
        angles = positions.to(torch.float32)[..., None] * self.freqs  # (..., T, dim/2)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class LearnedPositions(nn.Module):
    """Learned absolute position embeddings for up to ``max_len`` positions.

    Args:
        dim: Embedding size.
        max_len: Largest number of positions.

    ``forward(T)`` returns ``Tensor[T x dim]``; ``T > max_len`` raises ConfigError.
    """

    def __init__(self, *, dim: int, max_len: int) -> None:
        super().__init__()
        if dim <= 0 or max_len <= 0:
            raise ConfigError(f"LearnedPositions: dim and max_len must be positive, got {dim}, {max_len}")
        self.dim = dim
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, dim) * 0.02)

    def forward(self, num_positions: int) -> Tensor:
        if num_positions > self.max_len:
            raise ConfigError(
                f"LearnedPositions: {num_positions} positions requested but only {self.max_len} were "
                "learned; "
                "use shorter windows or sinusoidal positions"
            )
        return self.weight[:num_positions]


class AttentivePooling(nn.Module):
    """Attentive pooling of frame features into K global video tokens (STA-V2A eq. 2-4).

    For frames ``e_u`` (after a linear map ``in_dim -> out_dim``):

    - local potential  ``theta_l(u) = v_l^T relu(V_l e_u)``;
    - cross potential  ``theta_c(u) = mean_i <W1 e_u / |W1 e_u|, W2 e_i / |W2 e_i|>`` (eq. 4, averaged
      over frames so that it does not grow with the clip length);
    - ``p(u) = softmax_u(alpha_l theta_l(u) + alpha_c theta_c(u))`` (eq. 3), ``e = sum_u p(u) e_u`` (eq. 2);
    - a Conv1D (1 -> K channels, kernel 3) over the pooled vector gives ``K`` tokens of size ``out_dim``.

    Args:
        in_dim: Input feature size.
        out_dim: Output token size (the cross-attention condition size).
        num_tokens: K, the number of global tokens (STA-V2A: 4).
        attn_dim: Hidden size of V_l, W1, W2 (default: out_dim).
        dropout: Dropout on the local-potential hidden layer.

    Shapes:
        ``forward(x: Tensor[B x T x in_dim], mask: BoolTensor[B x T] | None) -> Tensor[B x K x out_dim]``
        (mask True = valid frame).
    """

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        num_tokens: int = 4,
        attn_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if min(in_dim, out_dim, num_tokens) <= 0:
            raise ConfigError("AttentivePooling: in_dim, out_dim and num_tokens must be positive")
        self.in_dim, self.out_dim, self.num_tokens = in_dim, out_dim, num_tokens
        attn_dim = attn_dim or out_dim
        self.proj = nn.Linear(in_dim, out_dim)
        self.local_hidden = nn.Linear(out_dim, attn_dim)  # V_l
        self.local_score = nn.Linear(attn_dim, 1)  # v_l
        self.cross_query = nn.Linear(out_dim, attn_dim)  # W1
        self.cross_key = nn.Linear(out_dim, attn_dim)  # W2
        self.alpha = nn.Parameter(torch.ones(2))  # alpha_l, alpha_c
        self.dropout = nn.Dropout(dropout)
        self.to_tokens = nn.Conv1d(1, num_tokens, kernel_size=3, padding=1)

    def attention(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Frame weights p(u) and projected frames.

        Returns:
            (p Tensor[B x T], e Tensor[B x T x out_dim]).
        """
        _check_features(x, self.in_dim, "AttentivePooling")
        mask = _check_mask(mask, x, "AttentivePooling")
        e = self.proj(x)  # (B, T, out_dim)
        theta_l = self.local_score(self.dropout(F.relu(self.local_hidden(e)))).squeeze(-1)  # (B, T)
        q = F.normalize(self.cross_query(e), dim=-1)
        k = F.normalize(self.cross_key(e), dim=-1)
        sim = q @ k.transpose(1, 2)  # (B, T, T): <W1 e_u, W2 e_i>
        if mask is None:
            theta_c = sim.mean(dim=2)
        else:
            m = mask[:, None, :].to(sim.dtype)
            theta_c = (sim * m).sum(dim=2) / m.sum(dim=2)
        logits = self.alpha[0] * theta_l + self.alpha[1] * theta_c
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        return torch.softmax(logits, dim=1), e

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        p, e = self.attention(x, mask)
        pooled = torch.einsum("bt,btd->bd", p, e)  # eq. 2
        return self.to_tokens(pooled[:, None, :])  # (B, K, out_dim)


class FrameProjector(nn.Module):
    """Frame-feature projector of VTA-LDM (sec. 3.2): ``phi(f_V)`` used as the cross-attention condition.

    A linear layer (or a 2-layer MLP when ``hidden_dim`` is set) applied per frame, plus an optional
    position embedding (VTA-LDM appendix D: sinusoidal positions help temporal alignment).

    Args:
        in_dim: Video feature size.
        out_dim: Condition (cross-attention) size.
        hidden_dim: If set, Linear -> GELU -> Linear with this hidden size; else a single Linear.
        positions: "none", "sinusoidal" or "learned" (added after the projection).
        max_len: Number of learned positions (positions="learned").
        dropout: Dropout after the projection.

    Shapes:
        ``forward(x: Tensor[B x T x in_dim]) -> Tensor[B x T x out_dim]``.
    """

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        hidden_dim: int | None = None,
        positions: str = "none",
        max_len: int = 1024,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if in_dim <= 0 or out_dim <= 0:
            raise ConfigError("FrameProjector: in_dim and out_dim must be positive")
        self.in_dim, self.out_dim = in_dim, out_dim
        if hidden_dim:
            self.proj: nn.Module = nn.Sequential(
                nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim)
            )
        else:
            self.proj = nn.Linear(in_dim, out_dim)
        if positions == "none":
            self.positions: nn.Module | None = None
        elif positions == "sinusoidal":
            self.positions = SinusoidalPositions(dim=out_dim)
        elif positions == "learned":
            self.positions = LearnedPositions(dim=out_dim, max_len=max_len)
        else:
            raise ConfigError(
                f"FrameProjector: positions must be none, sinusoidal or learned, got {positions!r}"
            )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        _check_features(x, self.in_dim, "FrameProjector")
        y = self.proj(x)
        if self.positions is not None:
            y = y + self.positions(x.shape[1]).to(y.dtype)
        return self.dropout(y)
