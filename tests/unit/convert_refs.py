"""Tiny reference implementations of the *original* module structures the converters read.

Written for the tests from the published descriptions of the layouts (parameter names and shapes follow the
released checkpoints; the code is our own): AudioLDM's latent-diffusion UNet with FiLM, ReWaS' ControlNet
adapter, the latent-diffusion mel autoencoder, AudioLDM-training's weight-normalised HiFi-GAN, LAION-CLAP's
RoBERTa text tower, ReWaS' phi and Synchformer's divided space-time video extractor. A test builds one with
random weights, saves its ``state_dict()`` under the released key prefixes (a mock checkpoint), converts the
mock, and compares one forward of both.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn


# --- latent-diffusion UNet (AudioLDM) and ReWaS adapter ------------------------------------------------------
def t_embed(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


class Res(nn.Module):
    def __init__(self, cin: int, emb: int, cout: int) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(32, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, cout))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(32, cout), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(cout, cout, 3, padding=1)
        )
        self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Attn(nn.Module):
    def __init__(self, dim: int, heads: int, dh: int) -> None:
        super().__init__()
        self.h, self.dh = heads, dh
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, heads * dh, bias=False) for _ in range(3))
        self.to_out = nn.Sequential(nn.Linear(heads * dh, dim), nn.Dropout(0.0))

    def forward(self, x):  # context None: attends to itself
        b, n, _ = x.shape
        q, k, v = (
            f(x).view(b, n, self.h, self.dh).transpose(1, 2) for f in (self.to_q, self.to_k, self.to_v)
        )
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.dh), dim=-1)
        return self.to_out((w @ v).transpose(1, 2).reshape(b, n, -1))


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x):
        a, g = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(g)


class TBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dh: int) -> None:
        super().__init__()
        self.attn1, self.attn2 = Attn(dim, heads, dh), Attn(dim, heads, dh)
        self.ff = nn.Module()
        self.ff.net = nn.Sequential(GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim))
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim) for _ in range(3))

    def forward(self, x):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x)) + x
        return self.ff.net(self.norm3(x)) + x


class SpatialT(nn.Module):
    def __init__(self, ch: int, heads: int, dh: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(32, ch, eps=1e-6)
        self.proj_in = nn.Conv2d(ch, heads * dh, 1)
        self.transformer_blocks = nn.ModuleList([TBlock(heads * dh, heads, dh)])
        self.proj_out = nn.Conv2d(heads * dh, ch, 1)

    def forward(self, x):
        b, _c, hh, ww = x.shape
        h = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)
        for blk in self.transformer_blocks:
            h = blk(h)
        return self.proj_out(h.transpose(1, 2).reshape(b, -1, hh, ww)) + x


class Down(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Up(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Seq(nn.ModuleList):
    def forward(self, x, emb):
        for m in self:
            x = m(x, emb) if isinstance(m, Res) else m(x)
        return x


class LdmUNet(nn.Module):
    """AudioLDM-style openaimodel UNet (FiLM concatenated to the time embedding); ``adapter=True`` builds
    ReWaS' ControlNet adapter instead (encoder half + zero convs + hint block over a (C, T, F) latent)."""

    def __init__(
        self,
        *,
        cin=8,
        mc=32,
        mult=(1, 2),
        nrb=1,
        attn=(False, True),
        nhc=16,
        film=16,
        adapter=False,
        hint=(8, 8, 4),
    ):
        super().__init__()
        te = 4 * mc
        self.mc, self.adapter = mc, adapter
        self.time_embed = nn.Sequential(nn.Linear(mc, te), nn.SiLU(), nn.Linear(te, te))
        self.film_emb = nn.Linear(film, te)
        emb = 2 * te
        self.input_blocks = nn.ModuleList([Seq([nn.Conv2d(cin, mc, 3, padding=1)])])
        chans, ch = [mc], mc
        for lvl, m in enumerate(mult):
            for _ in range(nrb):
                layers = [Res(ch, emb, m * mc)]
                ch = m * mc
                if attn[lvl]:
                    layers.append(SpatialT(ch, ch // nhc, nhc))
                self.input_blocks.append(Seq(layers))
                chans.append(ch)
            if lvl < len(mult) - 1:
                self.input_blocks.append(Seq([Down(ch)]))
                chans.append(ch)
        self.middle_block = Seq([Res(ch, emb, ch), SpatialT(ch, ch // nhc, nhc), Res(ch, emb, ch)])
        if adapter:
            self.zero_convs = nn.ModuleList(Seq([nn.Conv2d(c, c, 1)]) for c in chans)
            self.middle_block_out = Seq([nn.Conv2d(ch, ch, 1)])
            c, t, f = hint
            self.input_hint_block = Seq(
                [_ToRows(), nn.Linear(f, f), nn.SiLU(), _FromRows(c, t, f), nn.Conv2d(c, mc, 3, padding=1)]
            )
            return
        self.output_blocks = nn.ModuleList()
        for lvl, m in list(enumerate(mult))[::-1]:
            for i in range(nrb + 1):
                layers = [Res(ch + chans.pop(), emb, m * mc)]
                ch = m * mc
                if attn[lvl]:
                    layers.append(SpatialT(ch, ch // nhc, nhc))
                if lvl and i == nrb:
                    layers.append(Up(ch))
                self.output_blocks.append(Seq(layers))
        self.out = nn.Sequential(nn.GroupNorm(32, ch), nn.SiLU(), nn.Conv2d(mc, cin, 3, padding=1))

    def emb(self, t, y):
        return torch.cat([self.time_embed(t_embed(t, self.mc)), self.film_emb(y)], dim=-1)

    def forward(self, x, t, y, control=None):
        emb, hs, h = self.emb(t, y), [], x
        for blk in self.input_blocks:
            h = blk(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        control = list(control) if control is not None else None
        if control:
            h = h + control.pop()
        for blk in self.output_blocks:
            skip = hs.pop() + (control.pop() if control else 0)
            h = blk(torch.cat([h, skip], dim=1), emb)
        return self.out(h)

    def control(self, x, hint, t, y):
        emb, outs = self.emb(t, y), []
        g, h = self.input_hint_block(hint, emb), x
        for i, (blk, zc) in enumerate(zip(self.input_blocks, self.zero_convs)):
            h = blk(h, emb) + (g if i == 0 else 0)
            outs.append(zc(h, emb))
        h = self.middle_block(h, emb)
        return outs + [self.middle_block_out(h, emb)]


class _ToRows(nn.Module):
    def forward(self, x):  # (b, c, t, f) -> (b*c*t, f)
        return x.reshape(-1, x.shape[-1])


class _FromRows(nn.Module):
    def __init__(self, c, t, f):
        super().__init__()
        self.shape = (c, t, f)

    def forward(self, x):
        return x.reshape(-1, *self.shape)


# --- latent-diffusion autoencoder ---------------------------------------------------------------------------
class VRes(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(32, cin, eps=1e-6), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(32, cout, eps=1e-6), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class VAttn(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(32, c, eps=1e-6)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        n = self.norm(x)
        q, k, v = (f(n).reshape(b, c, h * w) for f in (self.q, self.k, self.v))
        a = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)  # (b, hw, hw)
        return x + self.proj_out((v @ a.transpose(1, 2)).reshape(b, c, h, w))


class LdmVAE(nn.Module):
    def __init__(self, ch=32, mult=(1, 2), nrb=1, z=8, cin=1) -> None:
        super().__init__()
        self.encoder, self.decoder = nn.Module(), nn.Module()
        e, d = self.encoder, self.decoder
        e.conv_in = nn.Conv2d(cin, ch, 3, padding=1)
        e.down, c = nn.ModuleList(), ch
        for i, m in enumerate(mult):
            lvl = nn.Module()
            lvl.block = nn.ModuleList()
            for _ in range(nrb):
                lvl.block.append(VRes(c, ch * m))
                c = ch * m
            if i < len(mult) - 1:
                lvl.downsample = nn.Module()
                lvl.downsample.conv = nn.Conv2d(c, c, 3, stride=2)
            e.down.append(lvl)
        for side in (e, d):
            side.mid = nn.Module()
        e.mid.block_1, e.mid.attn_1, e.mid.block_2 = VRes(c, c), VAttn(c), VRes(c, c)
        e.norm_out, e.conv_out = nn.GroupNorm(32, c, eps=1e-6), nn.Conv2d(c, 2 * z, 3, padding=1)
        d.conv_in = nn.Conv2d(z, c, 3, padding=1)
        d.mid.block_1, d.mid.attn_1, d.mid.block_2 = VRes(c, c), VAttn(c), VRes(c, c)
        d.up = nn.ModuleList([nn.Module() for _ in mult])
        for i in reversed(range(len(mult))):
            lvl = d.up[i]
            lvl.block = nn.ModuleList()
            for _ in range(nrb + 1):
                lvl.block.append(VRes(c, ch * mult[i]))
                c = ch * mult[i]
            if i:
                lvl.upsample = nn.Module()
                lvl.upsample.conv = nn.Conv2d(c, c, 3, padding=1)
        d.norm_out, d.conv_out = nn.GroupNorm(32, c, eps=1e-6), nn.Conv2d(c, cin, 3, padding=1)
        self.quant_conv, self.post_quant_conv = nn.Conv2d(2 * z, 2 * z, 1), nn.Conv2d(z, z, 1)

    def encode_mean(self, x):
        e = self.encoder
        h = e.conv_in(x)
        for lvl in e.down:
            for b in lvl.block:
                h = b(h)
            if hasattr(lvl, "downsample"):
                h = lvl.downsample.conv(F.pad(h, (0, 1, 0, 1)))
        h = e.mid.block_2(e.mid.attn_1(e.mid.block_1(h)))
        m = self.quant_conv(e.conv_out(F.silu(e.norm_out(h))))
        return m[:, : m.shape[1] // 2]

    def decode(self, z):
        d = self.decoder
        h = d.mid.block_2(d.mid.attn_1(d.mid.block_1(d.conv_in(self.post_quant_conv(z)))))
        for i in reversed(range(len(d.up))):
            for b in d.up[i].block:
                h = b(h)
            if hasattr(d.up[i], "upsample"):
                h = d.up[i].upsample.conv(F.interpolate(h, scale_factor=2, mode="nearest"))
        return d.conv_out(F.silu(d.norm_out(h)))


# --- HiFi-GAN (weight-normalised, as saved by AudioLDM-training) ----------------------------------------------
class HiFiGAN(nn.Module):
    def __init__(self, mels=4, uic=32, rates=(2, 2), kernels=(4, 4), rk=(3,), rd=((1, 3, 5),)) -> None:
        super().__init__()
        wn = torch.nn.utils.weight_norm
        self.n_k = len(rk)
        self.conv_pre = wn(nn.Conv1d(mels, uic, 7, padding=3))
        self.ups = nn.ModuleList(
            wn(nn.ConvTranspose1d(uic // 2**i, uic // 2 ** (i + 1), k, u, padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(rates, kernels))
        )
        self.resblocks = nn.ModuleList()
        for i in range(len(rates)):
            c = uic // 2 ** (i + 1)
            for k, dil in zip(rk, rd):
                blk = nn.Module()
                blk.convs1 = nn.ModuleList(
                    wn(nn.Conv1d(c, c, k, dilation=dd, padding=(k * dd - dd) // 2)) for dd in dil
                )
                blk.convs2 = nn.ModuleList(wn(nn.Conv1d(c, c, k, padding=(k - 1) // 2)) for _ in dil)
                self.resblocks.append(blk)
        self.conv_post = wn(nn.Conv1d(c, 1, 7, padding=3))
        for p in self.parameters():  # non-trivial norms
            p.data.normal_(0, 0.3)

    def forward(self, mel):  # (B, mels, T) -> (B, 1, T * prod(rates))
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            acc = 0
            for blk in self.resblocks[i * self.n_k : (i + 1) * self.n_k]:
                y = x
                for c1, c2 in zip(blk.convs1, blk.convs2):
                    y = y + c2(F.leaky_relu(c1(F.leaky_relu(y, 0.1)), 0.1))
                acc = acc + y
            x = acc / self.n_k
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


# --- ReWaS phi -----------------------------------------------------------------------------------------------
class PhiBlock(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(
            d, heads, bias=True, add_bias_kv=True
        )  # sequence-first, as released
        self.norm_1, self.norm_2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        y = self.norm_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm_2(x))))


class Phi(nn.Module):
    def __init__(self, d=16, heads=2, n=2, head=(8, 4)) -> None:
        super().__init__()
        self.projection1 = nn.Sequential(nn.Linear(d, d))
        self.hint_blocks = nn.Module()
        self.hint_blocks.blocks = nn.Sequential(*[PhiBlock(d, heads) for _ in range(n)])
        dims, layers = [d, *head, 1], []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.projection2 = nn.Sequential(*layers[:-1])
        for blk in self.hint_blocks.blocks:
            nn.init.normal_(blk.attn.bias_k, std=0.5)
            nn.init.normal_(blk.attn.bias_v, std=0.5)

    def forward(self, x):  # fed batch-first features, exactly like the released inference
        return self.projection2(self.hint_blocks.blocks(self.projection1(x)))


# --- Synchformer video extractor (divided space-time attention, written with explicit loops) ----------------
class DivAttn(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.h = heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x, f: int, n: int, over: str):
        _b, _, d = x.shape
        dh = d // self.h
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = q * dh**-0.5
        out = torch.zeros_like(x)
        for hd in range(self.h):
            sl = slice(hd * dh, (hd + 1) * dh)
            qh, kh, vh = q[..., sl], k[..., sl], v[..., sl]
            out[:, :1, sl] = torch.softmax(qh[:, :1] @ kh.transpose(1, 2), -1) @ vh
            groups = (
                [[1 + fi * n + ni for fi in range(f)] for ni in range(n)]
                if over == "time"
                else [[1 + fi * n + ni for ni in range(n)] for fi in range(f)]
            )
            for g in groups:
                keys = [0, *g]
                w = torch.softmax(qh[:, g] @ kh[:, keys].transpose(1, 2), -1)
                out[:, g, sl] = w @ vh[:, keys]
        return self.proj(out)


class SynchExtractor(nn.Module):
    def __init__(self, d=32, heads=4, depth=2, img=16, patch=8, tub=2, frames=4) -> None:
        super().__init__()
        self.g, self.t = img // patch, frames // tub
        self.patch_embed = nn.Module()  # unused 2-D patch embedding, present in the released weights
        self.patch_embed.proj = nn.Conv2d(3, d, patch, stride=patch)
        self.patch_embed_3d = nn.Module()
        self.patch_embed_3d.proj = nn.Conv3d(3, d, (tub, patch, patch), stride=(tub, patch, patch))
        self.cls_token = nn.Parameter(torch.randn(1, 1, d))
        self.pos_embed = nn.Parameter(torch.randn(1, self.g**2 + 1, d))
        self.temp_embed = nn.Parameter(torch.randn(1, self.t, d))
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            blk = nn.Module()
            blk.norm1, blk.norm2, blk.norm3 = (nn.LayerNorm(d, eps=1e-6) for _ in range(3))
            blk.attn, blk.timeattn = DivAttn(d, heads), DivAttn(d, heads)
            blk.mlp = nn.Module()
            blk.mlp.fc1, blk.mlp.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            self.blocks.append(blk)
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.spatial_attn_agg = nn.TransformerEncoderLayer(
            d,
            heads,
            4 * d,
            dropout=0.0,
            activation=nn.GELU(),
            layer_norm_eps=1e-6,
            batch_first=True,
            norm_first=True,
        )
        self.spatial_attn_agg.cls_token = nn.Parameter(torch.randn(1, 1, d))

    def forward(self, seg):  # (N, 3, F, H, W) in [-1, 1] -> (N, t, d)
        n_seg = seg.shape[0]
        x = self.patch_embed_3d.proj(seg).flatten(2).transpose(1, 2)
        pos = torch.cat([self.pos_embed[:, 1:]] * self.t, dim=1)
        pos = pos + torch.cat(
            [self.temp_embed[:, i : i + 1].expand(-1, self.g**2, -1) for i in range(self.t)], dim=1
        )
        x = torch.cat([(self.cls_token + self.pos_embed[:, :1]).expand(n_seg, -1, -1), x + pos], dim=1)
        for b in self.blocks:
            x = x + b.timeattn(b.norm3(x), self.t, self.g**2, "time")
            x = x + b.attn(b.norm1(x), self.t, self.g**2, "space")
            x = x + b.mlp.fc2(F.gelu(b.mlp.fc1(b.norm2(x))))
        x = self.norm(x[:, 1:]).reshape(n_seg * self.t, self.g**2, -1)
        agg = self.spatial_attn_agg
        x = torch.cat([agg.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return agg(x)[:, 0].reshape(n_seg, self.t, -1)
