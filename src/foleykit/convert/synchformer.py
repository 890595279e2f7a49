"""Synchformer's video feature extractor (the features ReWaS' phi reads), loadable from its released checkpoint.

Synchformer (Iashin et al., ICASSP 2024) encodes video in 16-frame segments (25 fps, 224 x 224, centre crop of
a 256-pixel short side, pixels scaled to [-1, 1]) taken with a stride of 8 frames and centred in the clip.
Each segment goes through a MotionFormer-style *divided space-time* ViT-B/16 (12 blocks of 12 heads, width
768, tubelets of 2 frames x 16 x 16 pixels -> 8 x 14 x 14 tokens + a class token; each block attends over
time, then over space, then applies an MLP; the class token attends to every token), a final LayerNorm, and
a spatial aggregator (a pre-norm ``nn.TransformerEncoderLayer`` with its own class token, run over the 196
tokens of each of the 8 time steps). A segment gives 8 vectors of 768; a 5 s clip has 14 segments, i.e. 112
feature rows (ReWaS feeds them to phi as one sequence).

The released ``24-01-04T16-39-21.pt`` (Synchformer trained on AudioSet) stores the whole audio-visual model
under ``"model"``; the extractor is the ``vfeat_extractor.`` part. Its parameter names are kept here
(``patch_embed_3d.proj``, ``pos_embed``, ``temp_embed``, ``blocks[i].{timeattn,attn}.{qkv,proj}``,
``norm1..3``, ``mlp.fc1/fc2``, ``norm``), except the aggregator's encoder layer, which lives in
``spatial_attn_agg.layer`` (:func:`convert_synchformer` moves it). The unused 2-D ``patch_embed`` is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foleykit.encoders.base import VideoEncoder
from foleykit.errors import ConfigError, ModelError

#: The released extractor (divided space-time ViT-B/16 over 16-frame segments).
SYNCHFORMER_FULL: dict[str, Any] = {
    "img_size": 224,
    "patch_size": 16,
    "tubelet": 2,
    "segment_frames": 16,
    "segment_stride": 8,
    "embed_dim": 768,
    "depth": 12,
    "num_heads": 12,
    "mlp_ratio": 4,
    "resize_to": 256,
}


class _DividedAttention(nn.Module):
    """Attention within groups of tokens (one time step, or one spatial position) + the class token.

    Tokens (after the class token) are ordered time-major: ``f`` steps of ``n`` spatial positions.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, *, frames: int, over: str) -> Tensor:
        b, n_tok, d = x.shape
        h, dh = self.heads, d // self.heads
        q, k, v = (t.reshape(b, n_tok, h, dh).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        q = q * dh**-0.5
        cls_out = torch.softmax(q[:, :, :1] @ k.transpose(-1, -2), dim=-1) @ v  # (B, H, 1, dh)
        n = (n_tok - 1) // frames

        def groups(t: Tensor) -> Tensor:  # (B, H, f*n, dh) -> (B*H*G, L, dh)
            t = t[:, :, 1:].reshape(b, h, frames, n, dh)
            if over == "time":  # one group per spatial position, attending over the time steps
                t = t.transpose(2, 3)
            return t.reshape(-1, t.shape[3], dh)

        qg, kg, vg = groups(q), groups(k), groups(v)
        reps = qg.shape[0] // (b * h)
        kc = k[:, :, :1].unsqueeze(2).expand(b, h, reps, 1, dh).reshape(-1, 1, dh)
        vc = v[:, :, :1].unsqueeze(2).expand(b, h, reps, 1, dh).reshape(-1, 1, dh)
        kg, vg = torch.cat([kc, kg], dim=1), torch.cat([vc, vg], dim=1)
        out = torch.softmax(qg @ kg.transpose(-1, -2), dim=-1) @ vg  # (B*H*G, L, dh)
        if over == "time":
            out = out.reshape(b, h, n, frames, dh).transpose(2, 3)
        out = out.reshape(b, h, frames * n, dh)
        out = torch.cat([cls_out, out], dim=2).transpose(1, 2).reshape(b, n_tok, d)
        return self.proj(out)


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim, eps=1e-6) for _ in range(3))
        self.attn = _DividedAttention(dim, heads)
        self.timeattn = _DividedAttention(dim, heads)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.mlp.fc2 = nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        x = x + self.timeattn(self.norm3(x), frames=frames, over="time")
        x = x + self.attn(self.norm1(x), frames=frames, over="space")
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class _SpatialAggregator(nn.Module):
    """Class-token pooling of each time step's spatial tokens through one pre-norm encoder layer."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=mlp_ratio * dim,
            dropout=0.0,
            activation=F.gelu,
            layer_norm_eps=1e-6,
            batch_first=True,
            norm_first=True,
        )

    def forward(self, x: Tensor) -> Tensor:  # (N, L, D) -> (N, D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.layer(x)[:, 0]


class SynchformerVideoEncoder(VideoEncoder):
    """Synchformer's frozen video feature extractor (see the module docstring).

    Args:
        img_size, patch_size, tubelet: Crop size, patch size and frames per tubelet (224, 16, 2).
        segment_frames, segment_stride: Frames per segment and stride (16, 8 at 25 fps).
        embed_dim, depth, num_heads, mlp_ratio: ViT geometry (768, 12, 12, 4).
        resize_to: Short side the frames are scaled to before the centre crop (256); also ``input_size``.
        chunk_segments: Segments per forward (memory).

    Shapes:
        ``encode(frames uint8 [B x] T x H x W x 3 at 25 fps) -> Tensor[B x S*t x embed_dim]`` with
        ``S = (T - segment_frames) // segment_stride + 1`` segments (clips shorter than one segment repeat their
        last frame) and ``t = segment_frames // tubelet`` rows each.
    """

    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        tubelet: int = 2,
        segment_frames: int = 16,
        segment_stride: int = 8,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: int = 4,
        resize_to: int = 256,
        chunk_segments: int = 4,
    ) -> None:
        super().__init__()
        if img_size % patch_size or segment_frames % tubelet or embed_dim % num_heads:
            raise ConfigError("Synchformer: img_size, segment_frames and embed_dim must divide evenly")
        self.img_size, self.tubelet, self.segment_frames, self.segment_stride = (
            img_size,
            tubelet,
            segment_frames,
            segment_stride,
        )
        self.input_size, self.dim, self.chunk_segments = int(resize_to), int(embed_dim), int(chunk_segments)
        self.frames = segment_frames // tubelet
        self.grid = img_size // patch_size
        self.patch_embed_3d = nn.Module()
        self.patch_embed_3d.proj = nn.Conv3d(
            3,
            embed_dim,
            kernel_size=(tubelet, patch_size, patch_size),
            stride=(tubelet, patch_size, patch_size),
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid**2 + 1, embed_dim))
        self.temp_embed = nn.Parameter(torch.zeros(1, self.frames, embed_dim))
        self.blocks = nn.ModuleList(_Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.spatial_attn_agg = _SpatialAggregator(embed_dim, num_heads, mlp_ratio)
        for p in (self.cls_token, self.pos_embed, self.temp_embed):
            nn.init.normal_(p, std=0.02)
        self.freeze()

    # --- frames -> segments -------------------------------------------------------------------------------
    def segments(self, frames: Tensor) -> Tensor:
        """uint8 ``Tensor[B x T x H x W x 3]`` -> normalised ``Tensor[B x S x 3 x F x C x C]`` (C = img_size)."""
        b, t = frames.shape[:2]
        x = frames.permute(0, 1, 4, 2, 3).reshape(b * t, 3, *frames.shape[2:4]).float().div_(255.0)
        h, w = x.shape[-2:]
        if min(h, w) != self.input_size:
            s = self.input_size / min(h, w)
            x = F.interpolate(
                x, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True, align_corners=False
            )
        h, w = x.shape[-2:]
        c = self.img_size
        if min(h, w) < c:
            raise ConfigError(f"Synchformer: frames of {h}x{w} are smaller than the {c}-pixel crop")
        top, left = round((h - c) / 2), round((w - c) / 2)
        x = (x[:, :, top : top + c, left : left + c] - 0.5) / 0.5
        x = x.reshape(b, t, 3, c, c)
        sf, st = self.segment_frames, self.segment_stride
        if t < sf:  # a clip shorter than one segment: repeat its last frame
            x = torch.cat([x, x[:, -1:].expand(b, sf - t, 3, c, c)], dim=1)
            t = sf
        n = (t - sf) // st + 1
        start = (t - ((n - 1) * st + sf)) // 2  # centred, as Synchformer's test-time transform
        segs = torch.stack([x[:, start + i * st : start + i * st + sf] for i in range(n)], dim=1)
        return segs.permute(0, 1, 3, 2, 4, 5)  # (B, S, 3, F, C, C)

    # --- the network ---------------------------------------------------------------------------------------
    def forward_segments(self, x: Tensor) -> Tensor:
        """``Tensor[N x 3 x F x C x C]`` segments -> ``Tensor[N x F/tubelet x D]``."""
        n = x.shape[0]
        tok = self.patch_embed_3d.proj(x.to(self.pos_embed.dtype))  # (N, D, t, g, g)
        d, t = tok.shape[1], tok.shape[2]
        if t != self.frames:
            raise ConfigError(f"Synchformer: a segment gives {t} time steps, the model has {self.frames}")
        tok = tok.flatten(2).transpose(1, 2)  # (N, t*g*g, D), time-major
        pos = self.pos_embed[:, 1:].repeat(1, t, 1) + self.temp_embed.repeat_interleave(self.grid**2, dim=1)
        cls = self.cls_token + self.pos_embed[:, :1]
        h = torch.cat([cls.expand(n, -1, -1), tok + pos], dim=1)
        for block in self.blocks:
            h = block(h, t)
        h = self.norm(h[:, 1:])  # (N, t*g*g, D)
        h = h.reshape(n * t, self.grid**2, d)
        return self.spatial_attn_agg(h).reshape(n, t, d)

    def _encode(self, frames: Tensor) -> Tensor:
        segs = self.segments(frames)
        b, s = segs.shape[:2]
        flat = segs.reshape(b * s, *segs.shape[2:])
        out = torch.cat(
            [
                self.forward_segments(flat[i : i + self.chunk_segments])
                for i in range(0, b * s, self.chunk_segments)
            ]
        )
        return out.reshape(b, s * self.frames, self.dim).float()


def synchformer_config(sd: Mapping[str, Tensor], *, num_heads: int = 12) -> dict[str, Any]:
    """:class:`SynchformerVideoEncoder` kwargs read from an extractor state dict (heads: argument)."""
    w = sd.get("patch_embed_3d.proj.weight")
    if w is None:
        raise ModelError("Synchformer: no patch_embed_3d.proj.weight in the extractor weights")
    d, tub, patch = int(w.shape[0]), int(w.shape[2]), int(w.shape[3])
    grid = round((int(sd["pos_embed"].shape[1]) - 1) ** 0.5)
    frames = int(sd["temp_embed"].shape[1])
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    mlp = int(sd["blocks.0.mlp.fc1.weight"].shape[0]) // d
    seg = frames * tub
    return dict(
        SYNCHFORMER_FULL,
        img_size=grid * patch,
        patch_size=patch,
        tubelet=tub,
        segment_frames=seg,
        segment_stride=seg // 2,
        embed_dim=d,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp,
        resize_to=max(
            grid * patch, round(grid * patch * SYNCHFORMER_FULL["resize_to"] / SYNCHFORMER_FULL["img_size"])
        ),
    )


def convert_synchformer(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Released Synchformer weights (whole model, or the extractor alone) -> :class:`SynchformerVideoEncoder`."""
    if any(k.startswith("vfeat_extractor.") for k in sd):
        sd = {k[len("vfeat_extractor.") :]: v for k, v in sd.items() if k.startswith("vfeat_extractor.")}
    out = {}
    for k, v in sd.items():
        if k.startswith(("patch_embed.", "pre_logits.", "head.")):  # unused by the feature extractor
            continue
        if k.startswith("spatial_attn_agg.") and not k.startswith("spatial_attn_agg.cls_token"):
            k = "spatial_attn_agg.layer." + k[len("spatial_attn_agg.") :]
        out[k] = v
    if "spatial_attn_agg.cls_token" not in out:
        raise ModelError(
            "Synchformer: no spatial_attn_agg weights: the checkpoint is not a Synchformer whose video extractor "
            "aggregates space with a transformer layer (expected the released 24-01-04T16-39-21.pt)"
        )
    return out


def build_synchformer(sd: Mapping[str, Tensor], *, num_heads: int = 12) -> SynchformerVideoEncoder:
    """A :class:`SynchformerVideoEncoder` holding the released extractor weights."""
    from foleykit.convert.checkpoint import load_exact

    sd = convert_synchformer(sd)
    model = SynchformerVideoEncoder(**synchformer_config(sd, num_heads=num_heads))
    load_exact(model, sd, what="Synchformer video extractor")
    return model.freeze()
