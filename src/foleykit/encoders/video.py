"""Video encoders: per-frame features ``Tensor[B x T x dim]`` at ``seq.video_fps`` (one row per input frame).

Registered under kind ``video_encoder``:

- ``motion``: weight-free motion statistics from :func:`foleykit.controls.motion.motion_features`
  (Farneback optical flow; the WHEN of the sound).
- ``frame_cnn``: a small trainable CNN over RGB frames + frame-difference channels (material, colour,
  texture: the WHAT), cheap on CPU.
- ``motion+frame_cnn``: both, concatenated (the demonstrator's video features).
- ``clip``: CLIP vision tower (``CLIPVisionModelWithProjection``) from a local folder, frozen (VTA-LDM's
  frame features; Im2Wav / ReWaS baselines).
- ``scene``: :class:`foleykit.vision.encoder.SceneVideoEncoder`: frozen pretrained vision (BlazePose contacts,
  SSD Open Images classes and embedding; TFLite files fetched by ``foleykit models fetch-vision``) +
  camera-compensated motion, in documented channel groups (``encoder.groups``); ``{"vision": "debug"}`` is its
  weight-free twin.
- ``debug``: 2x2 mean colours + 2x2 mean absolute frame difference (16-d); no weights.

Frames are uint8 RGB ``(T, H, W, 3)`` or ``(B, T, H, W, 3)`` of any size; each encoder resizes them itself.
``input_size`` is the short side, in pixels, the encoder works at: the pipeline decodes with
``foleykit.media.read_video(..., size=encoder.input_size)`` so that no larger frames are decoded.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foleykit.encoders.base import (
    VideoEncoder,
    clip_tower_config,
    load_hf_model,
    resize_frames,
    resolve_hf_folder,
)
from foleykit.errors import ConfigError
from foleykit.registry import register

__all__ = [
    "CLIPVideoEncoder",
    "ConcatVideoEncoder",
    "DebugVideoEncoder",
    "FrameCNNVideoEncoder",
    "MotionVideoEncoder",
]


def _to_float(frames: Tensor, size: int) -> Tensor:
    """uint8 ``Tensor[B x T x H x W x 3]`` -> float ``Tensor[(B*T) x 3 x size x size]`` in [0, 1].

    On the CPU the uint8 frames are resized with OpenCV (area filter when shrinking; ~10x cheaper than
    resizing float tensors); on other devices with ``torch.nn.functional.interpolate``.
    """
    B, T, H, W, _ = frames.shape
    x = frames.reshape(B * T, H, W, 3)
    if (H, W) != (size, size) and x.device.type == "cpu":
        import cv2

        interp = cv2.INTER_AREA if min(H, W) >= size else cv2.INTER_LINEAR
        x = torch.from_numpy(np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in x.numpy()]))
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    return resize_frames(x, size)


def clip_center_crop(frames: Tensor, size: int) -> Tensor:
    """CLIP's image preprocessing without the normalisation: uint8 ``Tensor[B x T x H x W x 3]`` -> float
    ``Tensor[(B*T) x 3 x size x size]`` in [0, 1]: the shorter side resized to ``size`` (bicubic, antialiased,
    as the published ``CLIPImageProcessor``), then a ``size x size`` crop at the centre."""
    B, T, H, W, _ = frames.shape
    x = frames.reshape(B * T, H, W, 3).permute(0, 3, 1, 2).float().div_(255.0)
    scale = size / min(H, W)
    h, w = max(size, round(H * scale)), max(size, round(W * scale))
    if (h, w) != (H, W):
        x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True).clamp_(0, 1)
    top, left = (h - size) // 2, (w - size) // 2
    return x[:, :, top : top + size, left : left + size]


class DebugVideoEncoder(VideoEncoder):
    """Weight-free 16-d features for tests: 2x2 grid of mean RGB (12) + 2x2 mean |frame difference| (4).

    The difference of frame 0 is 0, so a change between frames t-1 and t shows up at row t.
    """

    def __init__(self, *, input_size: int = 32) -> None:
        super().__init__()
        self.dim, self.input_size = 16, input_size
        self.freeze()

    def _encode(self, frames: Tensor) -> Tensor:
        B, T = frames.shape[:2]
        x = _to_float(frames, self.input_size).view(B, T, 3, self.input_size, self.input_size)
        gray = x.mean(2)  # (B, T, S, S)
        diff = torch.cat([torch.zeros_like(gray[:, :1]), (gray[:, 1:] - gray[:, :-1]).abs()], dim=1)
        colour = F.adaptive_avg_pool2d(x.flatten(0, 1), 2).reshape(B, T, 12)
        motion = F.adaptive_avg_pool2d(diff.flatten(0, 1)[:, None], 2).reshape(B, T, 4)
        return torch.cat([colour, motion], dim=-1)


class MotionVideoEncoder(VideoEncoder):
    """Weight-free motion statistics per frame: :func:`foleykit.controls.motion.motion_features`.

    11 values per frame (``foleykit.controls.MOTION_FEATURE_NAMES``): Farneback flow mean |flow| (the
    AV-Align trajectory), mean / 90th-percentile magnitude, mean dx / dy, moving fraction, frame
    difference, magnitude and dy changes, motion centroid x / y. Frame ``t`` describes the motion that ends
    at frame ``t`` (frame 0 repeats frame 1's pair). Flows are in pixels per frame at the analysed size, so
    frames are always resized to one fixed geometry first.

    Args:
        input_size: Frames are resized to ``input_size`` x ``input_size`` (``keep_aspect=False``) or to that
            short side (``keep_aspect=True``) before optical flow.
        keep_aspect: Keep the aspect ratio (slower on wide videos; square makes features comparable
            across aspect ratios).
    """

    def __init__(self, *, input_size: int = 96, keep_aspect: bool = False) -> None:
        super().__init__()
        from foleykit.controls.motion import MOTION_FEATURE_NAMES

        if input_size < 8:
            raise ConfigError(f"MotionVideoEncoder: input_size must be >= 8 pixels, got {input_size}")
        self.input_size, self.keep_aspect = input_size, keep_aspect
        self.dim = len(MOTION_FEATURE_NAMES)
        self.freeze()

    def _resized(self, clip: np.ndarray) -> np.ndarray:
        import cv2

        from foleykit.controls.motion import resize_frames as resize_short_side

        if self.keep_aspect:
            return resize_short_side(clip, self.input_size)
        s = self.input_size
        if clip.shape[1:3] == (s, s):
            return clip
        interp = cv2.INTER_AREA if min(clip.shape[1:3]) >= s else cv2.INTER_LINEAR
        return np.stack([cv2.resize(f, (s, s), interpolation=interp) for f in clip])

    def _encode(self, frames: Tensor) -> Tensor:
        from foleykit.controls.motion import motion_features

        feats = []
        for clip in frames.cpu().numpy():
            clip = self._resized(clip)
            T = clip.shape[0]
            if T == 1:  # a single frame has no motion: flow of the frame with itself
                clip = np.concatenate([clip, clip])
            feats.append(torch.from_numpy(np.asarray(motion_features(clip), np.float32)[:T]))
        return torch.stack(feats).to(self.device)


class FrameCNNVideoEncoder(VideoEncoder):
    """Small trainable CNN over RGB frames + frame-difference channels -> one feature vector per frame.

    Input per frame: RGB in [-1, 1] and the difference to the previous frame (0 for the first frame),
    6 channels at ``input_size`` x ``input_size``. Four stride-2 conv + GroupNorm + SiLU stages, then
    global average (colour, texture) and max (salient parts) pooling, concatenated, and a linear layer.

    Args:
        dim: Output feature size.
        input_size: Square frame side the CNN runs at.
        channels: Conv channels of the four stages.
        use_diff: Add the frame-difference channels.
        chunk_frames: Frames per CNN batch (bounds memory on long clips).
    """

    def __init__(
        self,
        *,
        dim: int = 128,
        input_size: int = 96,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        use_diff: bool = True,
        chunk_frames: int = 256,
    ) -> None:
        super().__init__()
        if dim <= 0 or input_size < 2 ** len(channels) or not channels:
            raise ConfigError(f"FrameCNNVideoEncoder: need dim > 0 and input_size >= {2 ** len(channels)}")
        self.dim, self.input_size, self.use_diff, self.chunk_frames = dim, input_size, use_diff, chunk_frames
        layers: list[nn.Module] = []
        c_in = 6 if use_diff else 3
        for i, c in enumerate(channels):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c_in, c, k, stride=2, padding=k // 2), nn.GroupNorm(min(4, c), c), nn.SiLU()]
            c_in = c
        self.cnn = nn.Sequential(*layers)
        self.out = nn.Linear(2 * c_in, dim)
        self.frozen = False

    def _encode(self, frames: Tensor) -> Tensor:
        B, T = frames.shape[:2]
        x = (
            _to_float(frames, self.input_size)
            .mul_(2.0)
            .sub_(1.0)
            .view(B, T, 3, self.input_size, self.input_size)
        )
        if self.use_diff:
            diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
            x = torch.cat([x, diff], dim=2)
        x = x.flatten(0, 1)  # (B*T, C, S, S)
        feats = []
        for i in range(0, x.shape[0], self.chunk_frames):
            h = self.cnn(x[i : i + self.chunk_frames])
            feats.append(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))
        return self.out(torch.cat(feats)).view(B, T, self.dim)


class ConcatVideoEncoder(VideoEncoder):
    """Concatenation of several video encoders' features (``motion+frame_cnn``: the demonstrator).

    ``dim`` is the sum of the parts' dims; ``input_size`` the largest part's (the others downsample).
    Trainable when any part is.
    """

    def __init__(self, *, encoders: list[VideoEncoder]) -> None:
        super().__init__()
        if not encoders:
            raise ConfigError("ConcatVideoEncoder needs at least one encoder")
        self.parts = nn.ModuleList(encoders)
        self.dim = sum(e.dim for e in encoders)
        self.input_size = max(e.input_size for e in encoders)
        self.frozen = all(e.frozen for e in encoders)

    def train(self, mode: bool = True) -> ConcatVideoEncoder:
        nn.Module.train(self, mode)
        for e in self.parts:
            e.train(mode)  # frozen parts stay in eval mode
        return self

    def _encode(self, frames: Tensor) -> Tensor:
        return torch.cat([e.encode(frames) for e in self.parts], dim=-1)

    def encode_cached(self, frames: np.ndarray | Tensor, cached: dict[int, Tensor]) -> Tensor:
        """Features with some parts' outputs given (training with precomputed motion statistics, so that
        only the trainable parts run per step).

        Args:
            frames: uint8 ``Tensor[B x T x H x W x 3]`` (or ``T x H x W x 3``) for the parts not in ``cached``.
            cached: Part index -> its features ``Tensor[B x T x dim_part]`` (e.g. ``{0: motion}`` for
                ``motion+frame_cnn``), exactly what ``parts[i].encode(frames)`` returns.

        Returns:
            ``Tensor[B x T x dim]``, equal to ``encode(frames)`` when the cached features are exact.

        Raises:
            ConfigError: a part index out of range, or cached features of the wrong shape.
        """
        bad = [i for i in cached if not 0 <= i < len(self.parts)]
        if bad:
            raise ConfigError(
                f"encode_cached: part indices {bad} out of range (this encoder has {len(self.parts)})"
            )
        out = []
        for i, e in enumerate(self.parts):
            if i not in cached:
                out.append(e.encode(frames))
                continue
            f = torch.as_tensor(cached[i], device=self.device).float()
            f = f[None] if f.dim() == 2 else f
            if f.shape[-1] != e.dim:
                raise ConfigError(
                    f"encode_cached: part {i} gives {e.dim} features, the cached ones have {f.shape[-1]}"
                )
            out.append(f)
        t = min(o.shape[1] for o in out)
        if any(o.shape[1] != t for o in out):
            raise ConfigError(
                f"encode_cached: frame counts differ between parts: {[o.shape[1] for o in out]}"
            )
        return torch.cat(out, dim=-1)


class CLIPVideoEncoder(VideoEncoder):
    """CLIP vision tower per frame (transformers ``CLIPVisionModelWithProjection``), frozen.

    Frames are resized (shorter side) and centre-cropped to the model's ``image_size`` and normalised
    with the folder's ``preprocessor_config.json`` mean/std (CLIP's defaults when absent), as
    ``CLIPImageProcessor`` does, but batched in torch.

    Args:
        path: Local folder / cached hub id (default ``openai/clip-vit-base-patch32``).
        output: ``projected`` (``image_embeds``, projection_dim; VTA-LDM / Im2Wav style) or ``pooled``
            (the vision tower's pooled output, hidden_size).
        normalize: L2-normalise the features.
        chunk_frames: Frames per forward.
    """

    what = "CLIP vision encoder"

    def __init__(
        self,
        *,
        path: str | os.PathLike | None = None,
        output: str = "projected",
        normalize: bool = False,
        chunk_frames: int = 64,
    ) -> None:
        super().__init__()
        from transformers import CLIPVisionModelWithProjection

        if output not in ("projected", "pooled"):
            raise ConfigError(f"{self.what}: output must be projected or pooled, got {output!r}")
        self.path, self.output, self.normalize, self.chunk_frames = (
            str(path or "openai/clip-vit-base-patch32"),
            output,
            normalize,
            chunk_frames,
        )
        folder = resolve_hf_folder(self.path, what=self.what, sub="image_encoder")
        self.model = load_hf_model(
            CLIPVisionModelWithProjection, folder, what=self.what, config=clip_tower_config(folder, "vision")
        )
        cfg = self.model.config
        self.input_size = int(cfg.image_size)
        self.dim = int(cfg.projection_dim if output == "projected" else cfg.hidden_size)
        mean, std = _clip_normalisation(folder)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def preprocess(self, frames: Tensor) -> Tensor:
        """uint8 ``Tensor[B x T x H x W x 3]`` -> normalised ``Tensor[(B*T) x 3 x S x S]``, S = image_size."""
        return (clip_center_crop(frames, self.input_size) - self.mean) / self.std

    def _encode(self, frames: Tensor) -> Tensor:
        B, T = frames.shape[:2]
        x = self.preprocess(frames)
        feats = []
        for i in range(0, x.shape[0], self.chunk_frames):
            out = self.model(pixel_values=x[i : i + self.chunk_frames])
            if self.output == "projected":
                feats.append(out.image_embeds)
            else:  # CLIPVisionTransformer's pooled output: post-layernorm of the class token
                feats.append(self.model.vision_model.post_layernorm(out.last_hidden_state[:, 0]))
        y = torch.cat(feats).float()
        if self.normalize:
            y = F.normalize(y, dim=-1)
        return y.view(B, T, self.dim)


def _clip_normalisation(folder) -> tuple[list[float], list[float]]:
    import json

    mean, std = (
        [0.48145466, 0.4578275, 0.40821073],
        [0.26862954, 0.26130258, 0.27577711],
    )  # OPENAI_CLIP_MEAN/STD
    for f in (
        folder / "preprocessor_config.json",
        folder.parent / "feature_extractor" / "preprocessor_config.json",
    ):
        if f.is_file():
            cfg = json.loads(f.read_text())
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
            break
    return [float(v) for v in mean], [float(v) for v in std]


# --- registry -------------------------------------------------------------------------------------------
def _motion_frame_cnn(*, motion: dict | None = None, frame_cnn: dict | None = None) -> ConcatVideoEncoder:
    """The demonstrator's video features: motion statistics (timing) + frame CNN (material / colour)."""
    return ConcatVideoEncoder(
        encoders=[MotionVideoEncoder(**(motion or {})), FrameCNNVideoEncoder(**(frame_cnn or {}))]
    )


register("video_encoder", "debug")(DebugVideoEncoder)
register("video_encoder", "motion")(MotionVideoEncoder)
register("video_encoder", "frame_cnn")(FrameCNNVideoEncoder)
register("video_encoder", "motion+frame_cnn")(_motion_frame_cnn)
register("video_encoder", "clip")(CLIPVideoEncoder)


@register("video_encoder", "scene")
def _scene(**kwargs) -> VideoEncoder:
    """The scene encoder (vision models + motion); ``vision="debug"`` for its weight-free twin."""
    from foleykit.vision.encoder import SceneVideoEncoder

    return SceneVideoEncoder(**kwargs)


def _scene_groups() -> dict:
    from foleykit.vision.encoder import group_slices

    return group_slices()


# a recipe resolves a predictor's ``input_groups`` without building the encoder (foleykit.recipes)
_scene.channel_groups = _scene_groups  # type: ignore[attr-defined]
