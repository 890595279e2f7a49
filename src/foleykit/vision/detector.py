"""Objects in a frame: MediaPipe's SSD MobileNetV2 Open Images detector (24 classes) and its backbone.

One forward gives three things (:class:`ObjectDetector.detect`):

- ``class_scores``: per class, the highest sigmoid score over the 1917 anchors (a soft "is there a ...");
  column 0 (the label map's background ``???``) holds the highest score of any class instead;
- ``boxes`` / ``scores``: detections after non-maximum suppression, boxes ``(x0, y0, x1, y1)`` normalised to
  the frame, each with its 24 class scores;
- ``embedding``: the backbone's last feature map (MobileNetV2 ``Conv_1``, 10 x 10 x 1280) averaged over space
  and projected to :data:`EMBED_DIM` dimensions with a fixed orthonormal matrix (seeded; a random projection
  keeps distances, so photos of one kind stay close). Read as an extra graph output (see
  :func:`foleykit.vision.tflite.expose_tensors`).

Input: the frame stretched to 300 x 300, RGB in [-1, 1]; anchors and box coding of MediaPipe's
``object_detection_oid_v4`` graph. :class:`DebugObjectDetector` is the weight-free twin (same shapes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from foleykit.vision.tflite import BoxCoding, TFLiteModel, decode_boxes, nms, sigmoid, ssd_anchors

#: The detector's label map (``object_detection_oidv4_labelmap.txt``); index 0 is the background.
LABELS = (
    "???",
    "Bicycle",
    "Boot",
    "Laptop",
    "Person",
    "Chair",
    "Cattle",
    "Desk",
    "Cat",
    "Computer mouse",
    "Computer monitor",
    "Box",
    "Mug",
    "Coffee cup",
    "Stationary bicycle",
    "Table",
    "Bottle",
    "High heels",
    "Vehicle",
    "Footwear",
    "Dog",
    "Book",
    "Camera",
    "Car",
)
#: Names of the 24 ``class_scores`` columns (column 0: any object).
CLASS_COLUMNS = ("any_object", *(name.lower().replace(" ", "_") for name in LABELS[1:]))
PERSON = LABELS.index("Person")
INPUT_SIZE = 300
EMBED_DIM = 256
BACKBONE_TENSOR = "FeatureExtractor/MobilenetV2/Conv_1/Relu6"
BACKBONE_DIM = 1280


def projection(in_dim: int = BACKBONE_DIM, out_dim: int = EMBED_DIM, seed: int = 0) -> np.ndarray:
    """The fixed ``(in_dim, out_dim)`` orthonormal projection of the embedding (legacy RandomState: the same
    numbers on every numpy version)."""
    q, _ = np.linalg.qr(np.random.RandomState(seed).standard_normal((in_dim, out_dim)))
    return q.astype(np.float32)


@dataclass
class Detections:
    """Detector output for one frame (see the module docstring)."""

    class_scores: np.ndarray  # (24,)
    boxes: np.ndarray  # (N, 4) normalised x0, y0, x1, y1
    scores: np.ndarray  # (N, 24)
    embedding: np.ndarray  # (EMBED_DIM,)

    def person_boxes(self, min_score: float = 0.5) -> np.ndarray:
        """Boxes whose Person score is at least ``min_score``."""
        return self.boxes[self.scores[:, PERSON] >= min_score] if len(self.boxes) else self.boxes


class ObjectDetector:
    """The SSD MobileNetV2 detector (see the module docstring).

    Args:
        path: The ``.tflite`` file.
        threads: Interpreter threads.
        min_score: Detections below this score (best class) are dropped.
        nms_iou: IoU above which the weaker of two detections is suppressed (class-agnostic).
        max_detections: Most detections kept.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int = 1,
        min_score: float = 0.3,
        nms_iou: float = 0.45,
        max_detections: int = 10,
    ) -> None:
        self.model = TFLiteModel(path, threads=threads, expose=[BACKBONE_TENSOR])
        self.min_score, self.nms_iou, self.max_detections = min_score, nms_iou, max_detections
        self.anchors = ssd_anchors(
            input_size=(INPUT_SIZE, INPUT_SIZE),
            num_layers=6,
            min_scale=0.2,
            max_scale=0.95,
            strides=(16, 32, 64, 128, 256, 512),
            aspect_ratios=(1.0, 2.0, 0.5, 3.0, 0.3333),
            reduce_boxes_in_lowest_layer=True,
        )
        self.coding = BoxCoding(10.0, 10.0, 5.0, 5.0, exp_size=True)
        self.proj = projection()

    def detect(self, image: np.ndarray) -> Detections:
        """Detections of a uint8 RGB frame ``(H, W, 3)``."""
        import cv2

        x = cv2.resize(image, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        out = self.model.run(x.astype(np.float32)[None] / 127.5 - 1.0)
        by_shape = {v.shape[-1]: v for v in out.values()}
        raw, logits, feat = by_shape[4][0], by_shape[len(LABELS)][0], by_shape[BACKBONE_DIM][0]
        return _finish(raw, sigmoid(logits), feat.mean(axis=(0, 1)) @ self.proj, self)


def _finish(raw: np.ndarray, probs: np.ndarray, embedding: np.ndarray, det) -> Detections:
    """Per-anchor box regressions ``(A, 4)`` and class probabilities ``(A, 24)`` -> :class:`Detections`."""
    probs = probs.astype(np.float32)
    best = probs[:, 1:].max(axis=1)
    class_scores = probs.max(axis=0)
    class_scores[0] = best.max()
    keep = np.flatnonzero(best >= det.min_score)
    boxes = np.zeros((0, 4), np.float32)
    scores = np.zeros((0, len(LABELS)), np.float32)
    if keep.size:
        b, _ = decode_boxes(raw[keep], det.anchors[keep], det.coding)
        idx = nms(b, best[keep], iou=det.nms_iou, max_out=det.max_detections)
        boxes = np.clip(b[idx], 0.0, 1.0).astype(np.float32)
        scores = probs[keep][idx]
        scores[:, 0] = best[keep][idx]
    return Detections(class_scores.astype(np.float32), boxes, scores, np.asarray(embedding, np.float32))


class DebugObjectDetector:
    """Weight-free twin of :class:`ObjectDetector`: colour statistics stand in for the network (class scores
    from a hue histogram, one box around the most saturated pixels, the embedding a fixed projection of an
    8 x 8 thumbnail). Deterministic; same shapes and value ranges."""

    def __init__(self, *, min_score: float = 0.4, nms_iou: float = 0.45, max_detections: int = 10) -> None:
        self.min_score, self.nms_iou, self.max_detections = min_score, nms_iou, max_detections
        self.proj = (np.random.RandomState(1).standard_normal((8 * 8 * 3, EMBED_DIM)) / 14.0).astype(
            np.float32
        )

    def detect(self, image: np.ndarray) -> Detections:
        import cv2

        small = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        sat = hsv[..., 1].astype(np.float32) / 255.0
        hist = np.bincount((hsv[..., 0].ravel().astype(np.int64) * (len(LABELS) - 1)) // 180, sat.ravel(),
                           minlength=len(LABELS) - 1)  # fmt: skip
        class_scores = np.zeros(len(LABELS), np.float32)
        class_scores[1:] = np.clip(hist / max(1.0, sat.size * 0.25), 0, 1)
        class_scores[0] = class_scores[1:].max()
        boxes = np.zeros((0, 4), np.float32)
        scores = np.zeros((0, len(LABELS)), np.float32)
        ys, xs = np.nonzero((sat > 0.5) & (hsv[..., 2] > 127))
        if class_scores[0] >= self.min_score and len(xs):
            boxes = np.array(
                [[xs.min() / 32, ys.min() / 32, (xs.max() + 1) / 32, (ys.max() + 1) / 32]], np.float32
            )
            scores = class_scores[None].copy()
        thumb = cv2.resize(image, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255.0
        return Detections(class_scores, boxes, scores, (thumb @ self.proj).astype(np.float32))
