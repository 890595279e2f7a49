"""``SceneVideoEncoder`` (``video_encoder`` name ``scene``): frozen pretrained vision + weight-free timing.

The features and their channel groups are :mod:`foleykit.vision.scene`'s (:class:`SceneFeatures`, torch-free);
this module makes them a frozen torch :class:`~foleykit.encoders.base.VideoEncoder` with batched tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from foleykit.encoders.base import VideoEncoder, as_frame_batch
from foleykit.errors import ConfigError
from foleykit.vision.scene import GROUPS, VISION_MODES, SceneFeatures, group_slices

__all__ = ["GROUPS", "VISION_MODES", "SceneVideoEncoder", "group_slices"]


class SceneVideoEncoder(SceneFeatures, VideoEncoder):
    """:class:`~foleykit.vision.scene.SceneFeatures` as a frozen video encoder (``dim`` = 332); the keyword
    arguments are :class:`~foleykit.vision.scene.SceneFeatures`'s (``threads`` None: torch's thread count)."""

    def __init__(self, **kwargs: Any) -> None:
        VideoEncoder.__init__(self)
        SceneFeatures.__init__(self, **kwargs)
        self.freeze()

    def _threads(self) -> int:
        return int(self.threads or max(1, torch.get_num_threads()))

    def encode(self, frames: np.ndarray | Tensor, *, keypoints: Any = None) -> Tensor:
        """Features ``Tensor[B x T x dim]`` of uint8 RGB frames ``[B x] T x H x W x 3`` at ``fps``.

        Args:
            frames: The clip(s).
            keypoints: Optional pose ground truth in the INTERFACES.md keypoint structure (a dict; a list of
                dicts or Nones for a batch): replaces the pose model for the ``pose`` group.
        """
        x, _ = as_frame_batch(frames)
        clips = x.cpu().numpy()
        if keypoints is None or isinstance(keypoints, dict):
            kps = [keypoints] * len(clips)
        else:
            kps = list(keypoints)
            if len(kps) != len(clips):
                raise ConfigError(f"keypoints: {len(kps)} entries for a batch of {len(clips)} clips")
        with torch.no_grad():
            feats = [torch.from_numpy(self.encode_clip(c, keypoints=k)) for c, k in zip(clips, kps)]
        return torch.stack(feats).to(self.device)

    def _encode(self, frames: Tensor) -> Tensor:
        return self.encode(frames)
