"""Person mask of a whole frame: MediaPipe's landscape selfie segmentation (``selfie_segmentation_landscape``).

Input: the frame resized to 256 x 144, RGB in [0, 1]; output: person probability per pixel, resized back to
the frame. Made for people close to the camera; for small, far people the pose model's mask in its ROI
(:attr:`foleykit.vision.pose.PoseResult.mask`) is the better foreground. :class:`DebugSegmenter` is the
weight-free twin (same shapes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from foleykit.vision.tflite import TFLiteModel

INPUT_WH = (256, 144)


class PersonSegmenter:
    """Person probability ``(H, W)`` float32 of a uint8 RGB frame ``(H, W, 3)``."""

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.model = TFLiteModel(path, threads=threads)

    def mask(self, image: np.ndarray) -> np.ndarray:
        import cv2

        x = cv2.resize(image, INPUT_WH, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        out = next(iter(self.model.run(x[None]).values()))[0, :, :, 0]
        h, w = image.shape[:2]
        return np.clip(cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0).astype(np.float32)


class DebugSegmenter:
    """Weight-free twin of :class:`PersonSegmenter`: warm, saturated (skin-like) pixels are "person"."""

    def mask(self, image: np.ndarray) -> np.ndarray:
        import cv2

        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hue, sat, val = (hsv[..., i].astype(np.float32) for i in range(3))
        warm = (hue < 25) | (hue > 165)
        return (warm & (sat > 60) & (val > 60)).astype(np.float32)
