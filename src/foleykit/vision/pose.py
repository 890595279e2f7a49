"""Human pose on video frames: BlazePose (MediaPipe's pose detector + full-body landmark model), tracked.

- :class:`PoseDetector`: people in a whole frame -> rotated ROIs (``pose_detection.tflite``: 224 x 224
  letterboxed input in [-1, 1], 2254 SSD anchors, 4 keypoints per detection; the ROI is centred on the hip
  centre, its side twice the distance to the full-body scale point, enlarged 1.25x).
- :class:`PoseLandmarker`: 33 landmarks ``(x, y, visibility, presence)`` in image pixels, a presence score,
  the next frame's ROI (from the two auxiliary landmarks) and a person mask in the ROI
  (``pose_landmark_full.tflite``: 256 x 256 crop in [0, 1]).
- :class:`PoseTracker`: several people over a sequence of analysed frames: each track's ROI comes from its
  previous landmarks; new people come from proposals (the pose detector's ROIs, person boxes of the object
  detector) on detection frames, up to ``max_people``.
- ``Debug*`` twins: deterministic, weight-free, same shapes (tests; ``vision="debug"`` encoders).

Landmark names and order are BlazePose's (:data:`LANDMARK_NAMES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from foleykit.vision.tflite import (
    BoxCoding,
    Roi,
    TFLiteModel,
    box_iou,
    decode_boxes,
    roi_from_points,
    sigmoid,
)

LANDMARK_NAMES = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
#: Lines drawn for a skeleton (pairs of landmark indices).
SKELETON = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (27, 29), (29, 31), (27, 31), (24, 26), (26, 28), (28, 30), (30, 32), (28, 32),
    (0, 11), (0, 12), (15, 19), (16, 20),
)  # fmt: skip
ROI_ENLARGE = 1.25
LANDMARK_SIZE = 256
DETECTOR_SIZE = 224


@dataclass
class PoseResult:
    """One person in one frame.

    Attributes:
        landmarks: ``(33, 4)`` float32: x, y in image pixels, visibility, presence (both in [0, 1]).
        score: Pose presence probability.
        roi: The ROI the landmarks were read in.
        next_roi: The ROI for the next frame (from the auxiliary landmarks).
        mask: ``(S, S)`` float32 person probability in ``roi`` (None when the model gives none).
    """

    landmarks: np.ndarray
    score: float
    roi: Roi
    next_roi: Roi
    mask: np.ndarray | None = None

    def box(self, min_visibility: float = 0.3) -> np.ndarray:
        """Axis-aligned bounds ``(x0, y0, x1, y1)`` of the visible landmarks, in pixels."""
        lm = self.landmarks
        vis = lm[:, 2] >= min_visibility
        pts = lm[vis, :2] if vis.sum() >= 4 else lm[:, :2]
        return np.concatenate([pts.min(0), pts.max(0)]).astype(np.float32)


def roi_from_box(box: np.ndarray, *, enlarge: float = 1.3) -> Roi:
    """An upright square ROI around a person box ``(x0, y0, x1, y1)`` in pixels (the box's long side,
    enlarged)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * enlarge, 0.0)


# --- the models -------------------------------------------------------------------------------------------
class PoseDetector:
    """BlazePose person detector on a whole frame -> ``[(score, Roi)]`` best first."""

    def __init__(self, path, *, threads: int = 1, min_score: float = 0.5, nms_iou: float = 0.3) -> None:
        from foleykit.vision.tflite import ssd_anchors

        self.model = TFLiteModel(path, threads=threads)
        self.min_score, self.nms_iou = min_score, nms_iou
        self.anchors = ssd_anchors(
            input_size=(DETECTOR_SIZE, DETECTOR_SIZE),
            num_layers=5,
            min_scale=0.1484375,
            max_scale=0.75,
            strides=(8, 16, 32, 32, 32),
            aspect_ratios=(1.0,),
            fixed_anchor_size=True,
        )
        self.coding = BoxCoding(DETECTOR_SIZE, DETECTOR_SIZE, DETECTOR_SIZE, DETECTOR_SIZE, xy_order=True)

    def detect(self, image: np.ndarray) -> list[tuple[float, Roi]]:
        import cv2

        h, w = image.shape[:2]
        side = max(h, w)
        pad_x, pad_y = (side - w) / 2, (side - h) / 2
        square = cv2.copyMakeBorder(
            image, int(pad_y), side - h - int(pad_y), int(pad_x), side - w - int(pad_x), cv2.BORDER_CONSTANT
        )
        x = cv2.resize(square, (DETECTOR_SIZE, DETECTOR_SIZE), interpolation=cv2.INTER_AREA)
        out = list(self.model.run(x.astype(np.float32)[None] / 127.5 - 1.0).values())
        raw, logits = (out[0], out[1]) if out[0].shape[-1] == 12 else (out[1], out[0])
        scores = sigmoid(np.clip(logits[0, :, 0], -100, 100))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        boxes, kps = decode_boxes(raw[0, keep], self.anchors[keep], self.coding, num_keypoints=4)
        found = weighted_nms(boxes, kps, scores[keep], iou=self.nms_iou)
        rois = []
        for score, kp in found:
            pts = kp * side - np.array([int(pad_x), int(pad_y)])
            rois.append((score, roi_from_points(pts[0], pts[1], enlarge=ROI_ENLARGE)))
        return rois


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, *, iou: float):
    """MediaPipe's weighted NMS: each kept detection's keypoints are the score-weighted mean of those it
    suppresses. Returns ``[(score, keypoints (K, 2))]`` best first."""
    order = list(np.argsort(-scores))
    out = []
    while order:
        i = order[0]
        ious = box_iou(boxes[i], boxes[order])[0]
        group = [j for j, v in zip(order, ious) if v > iou]
        wts = scores[group][:, None, None]
        out.append((float(scores[i]), (kps[group] * wts).sum(0) / wts.sum()))
        order = [j for j, v in zip(order, ious) if v <= iou]
    return out


class PoseLandmarker:
    """BlazePose full-body landmarks in a ROI."""

    def __init__(self, path, *, threads: int = 1) -> None:
        self.model = TFLiteModel(path, threads=threads)

    def landmarks(self, image: np.ndarray, roi: Roi) -> PoseResult:
        crop = roi.crop(image, LANDMARK_SIZE).astype(np.float32) / 255.0
        out = self.model.run(crop[None])
        by_shape = {v.shape[1:]: v for v in out.values()}
        raw = by_shape[(195,)][0].reshape(39, 5)
        score = float(by_shape[(1,)].reshape(-1)[0])
        seg = by_shape.get((LANDMARK_SIZE, LANDMARK_SIZE, 1))
        mask = None if seg is None else sigmoid(seg[0, :, :, 0]).astype(np.float32)
        return _result(raw, score, roi, mask)


def _result(raw: np.ndarray, score: float, roi: Roi, mask: np.ndarray | None) -> PoseResult:
    """Raw ``(39, 5)`` landmark rows in crop pixels (x, y, z, visibility logit, presence logit) -> result."""
    pts = roi.to_image(raw[:, :2].astype(np.float64), LANDMARK_SIZE)
    lm = np.concatenate([pts[:33], sigmoid(raw[:33, 3:5])], axis=1).astype(np.float32)
    nxt = roi_from_points(pts[33], pts[34], enlarge=ROI_ENLARGE)
    return PoseResult(lm, score, roi, nxt, mask)


# --- weight-free twins ------------------------------------------------------------------------------------
def _bright_blob(image: np.ndarray) -> tuple[float, float, float, float] | None:
    """Centre, height and mass of the pixels brighter than the frame's 90th percentile (a stand-in person)."""
    g = image.mean(axis=2)
    base, top = float(np.median(g)), float(g.max())
    if top - base < 30:
        return None
    ys, xs = np.nonzero(g > (base + top) / 2)
    if len(xs) < 4:
        return None
    return float(xs.mean()), float(ys.mean()), float(ys.max() - ys.min() + 1), len(xs) / g.size


class DebugPoseDetector:
    """Weight-free twin of :class:`PoseDetector`: the bright blob of the frame is "the person"."""

    def detect(self, image: np.ndarray) -> list[tuple[float, Roi]]:
        blob = _bright_blob(image)
        if blob is None:
            return []
        cx, cy, h, _ = blob
        return [(0.9, Roi(cx, cy, max(8.0, h * 1.6), 0.0))]


class DebugPoseLandmarker:
    """Weight-free twin of :class:`PoseLandmarker`: a fixed stick figure scaled into the bright blob of the
    ROI (presence = whether the ROI holds one), so tracking and contact code run on real shapes."""

    def landmarks(self, image: np.ndarray, roi: Roi) -> PoseResult:
        crop = roi.crop(image, 64)
        blob = _bright_blob(crop)
        raw = np.zeros((39, 5), np.float32)
        score = 0.0
        if blob is not None:
            cx, cy, h, _ = blob
            s = LANDMARK_SIZE / 64
            template = _stick_figure()  # (33, 2) in body heights around the centre
            raw[:33, :2] = (np.array([cx, cy]) + template * max(h, 4.0)) * s
            raw[33, :2] = np.array([cx, cy]) * s
            raw[34, :2] = np.array([cx, cy - 0.64 * max(h, 4.0)]) * s  # next ROI: 1.6 x the blob height
            raw[:33, 3:5] = 4.0
            score = 0.95
        else:
            raw[33, :2] = LANDMARK_SIZE / 2
            raw[34, :2] = (LANDMARK_SIZE / 2, 0)
        mask = None
        if blob is not None:
            import cv2

            g = crop.mean(axis=2)
            bright = (g > (np.median(g) + g.max()) / 2).astype(np.float32)
            mask = cv2.resize(bright, (LANDMARK_SIZE, LANDMARK_SIZE))
        return _result(raw, score, roi, mask)


def _stick_figure() -> np.ndarray:
    """33 BlazePose points of an upright person, in body heights relative to the body's centre."""
    pts = np.zeros((33, 2), np.float32)
    pts[0:11] = (0.0, -0.42)
    pts[11], pts[12] = (0.08, -0.3), (-0.08, -0.3)
    pts[13], pts[14] = (0.1, -0.15), (-0.1, -0.15)
    pts[[15, 17, 19, 21]], pts[[16, 18, 20, 22]] = (0.1, 0.0), (-0.1, 0.0)
    pts[23], pts[24] = (0.05, 0.02), (-0.05, 0.02)
    pts[25], pts[26] = (0.05, 0.25), (-0.05, 0.25)
    pts[27], pts[28] = (0.05, 0.46), (-0.05, 0.46)
    pts[29], pts[30] = (0.04, 0.48), (-0.06, 0.48)
    pts[31], pts[32] = (0.09, 0.49), (-0.01, 0.49)
    return pts


# --- tracking ---------------------------------------------------------------------------------------------
@dataclass
class Track:
    """A tracked person: id, ROI for the next analysed frame, latest result."""

    id: int
    roi: Roi
    last: PoseResult | None = None
    age: int = 0
    unconfirmed: int = 0
    anchor: np.ndarray | None = None  # hip centre at the last confirmation check


@dataclass
class PoseTracker:
    """Several people across analysed frames (ROI tracking from landmarks, proposals for new people).

    Args:
        landmarker: :class:`PoseLandmarker` or its debug twin.
        max_people: Most people tracked at once.
        min_presence: Tracks whose pose presence falls below this end.
        max_overlap: A proposal overlapping a tracked person's box more than this (IoU) is the same person;
            two tracks overlapping more than this are merged (the more confident stays).
        replace: When ``max_people`` are tracked, a proposal whose ROI is this many times the height of the
            smallest tracked person replaces that person (a ROI is ~1.3-1.6 x the body's height, so 2.0 means
            a person ~1.4 x taller).
    """

    landmarker: object
    max_people: int = 2
    min_presence: float = 0.5
    max_overlap: float = 0.3
    replace: float = 2.0
    tracks: list[Track] = field(default_factory=list)
    calls: int = 0
    _next_id: int = 0

    def reset(self) -> None:
        """Forget everyone (a scene cut)."""
        self.tracks = []

    def step(
        self,
        image: np.ndarray,
        proposals: list[tuple[float, Roi]] | None = None,
        confirm: np.ndarray | None = None,
    ) -> list[tuple[int, PoseResult]]:
        """Update the tracks on one frame.

        Args:
            image: The frame (uint8 RGB).
            proposals: ``[(score, ROI)]`` that may start new tracks.
            confirm: Person boxes ``(N, 4)`` in pixels from a detector run on this frame: a track that meets
                none of them and has not moved (0.3 leg lengths since the last check) twice in a row ends (the
                landmark model also "finds" people in posts and signs; they neither move nor look like people
                to the detector).

        Returns:
            ``[(track id, result)]`` of the people present in this frame.
        """
        alive: list[Track] = []
        for t in self.tracks:
            r = self._run(image, t.roi)
            if r.score >= self.min_presence and _sane(r, image.shape):
                t.last, t.roi, t.age = r, r.next_roi, t.age + 1
                if confirm is not None:
                    hip = r.landmarks[[23, 24], :2].mean(0)
                    moved = t.anchor is not None and np.linalg.norm(hip - t.anchor) > 0.3 * hip_scale(
                        r.landmarks
                    )
                    t.unconfirmed = 0 if (moved or _meets(r.box(), confirm)) else t.unconfirmed + 1
                    t.anchor = hip
                if t.unconfirmed < 2:
                    alive.append(t)
        alive = self._dedupe(alive)
        # larger (nearer) people first: they are heard, and their landmarks are steadier
        for _, roi in sorted(proposals or [], key=lambda p: -p[1].size * (0.5 + p[0])):
            box = roi.box()
            if alive and max(float(box_iou(box, t.last.box())[0, 0]) for t in alive) > self.max_overlap:
                continue
            if alive and any(_inside(t.last.box(), roi.cx, roi.cy) for t in alive):
                continue
            smallest = min(alive, key=lambda t: _height(t.last), default=None)
            if len(alive) >= self.max_people and (
                smallest is None or roi.size < self.replace * _height(smallest.last)
            ):
                continue  # full, and not much larger than anyone tracked
            r = self._run(image, roi)
            if r.score < self.min_presence or not _sane(r, image.shape):
                continue
            r = self._run(image, r.next_roi)  # once more from the landmarks' own ROI (better framed)
            if r.score < self.min_presence or not _sane(r, image.shape):
                continue
            if len(alive) >= self.max_people:
                alive.remove(smallest)
            self._next_id += 1
            alive = self._dedupe([*alive, Track(self._next_id, r.next_roi, r, 1)])
        self.tracks = alive
        return [(t.id, t.last) for t in alive if t.last is not None]

    def _run(self, image: np.ndarray, roi: Roi) -> PoseResult:
        self.calls += 1
        return self.landmarker.landmarks(image, roi)

    def _dedupe(self, tracks: list[Track]) -> list[Track]:
        kept: list[Track] = []
        for t in sorted(tracks, key=lambda t: (-t.age, -(t.last.score if t.last else 0.0))):
            if all(float(box_iou(t.last.box(), k.last.box())[0, 0]) <= 0.5 for k in kept):
                kept.append(t)
        return kept


def _meets(box: np.ndarray, boxes: np.ndarray) -> bool:
    """Whether a box overlaps (IoU > 0.1) or contains the centre of / lies around one of ``boxes``."""
    if len(boxes) == 0:
        return False
    if float(box_iou(box, boxes).max()) > 0.1:
        return True
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(_inside(b, cx, cy) or _inside(box, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes)


def _height(r: PoseResult) -> float:
    b = r.box()
    return float(b[3] - b[1])


def _inside(box: np.ndarray, x: float, y: float) -> bool:
    return bool(box[0] <= x <= box[2] and box[1] <= y <= box[3])


def _sane(r: PoseResult, shape: tuple[int, ...]) -> bool:
    """A result whose body is mostly inside the frame and not degenerate (a lost track drifts off)."""
    h, w = shape[:2]
    b = r.box()
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    size = max(b[2] - b[0], b[3] - b[1])
    return bool(-0.1 * w <= cx <= 1.1 * w and -0.1 * h <= cy <= 1.1 * h and 4.0 <= size <= 3.0 * max(h, w))


def hip_scale(landmarks: np.ndarray) -> float:
    """Body scale of one pose in pixels: hip centre to ankle centre (leg length), else torso length."""
    hip = landmarks[[23, 24], :2].mean(0)
    ankle = landmarks[[27, 28], :2].mean(0)
    shoulder = landmarks[[11, 12], :2].mean(0)
    return float(max(np.linalg.norm(ankle - hip), 0.8 * np.linalg.norm(shoulder - hip), 1.0))


__all__ = [
    "LANDMARK_NAMES",
    "SKELETON",
    "DebugPoseDetector",
    "DebugPoseLandmarker",
    "PoseDetector",
    "PoseLandmarker",
    "PoseResult",
    "PoseTracker",
    "Track",
    "hip_scale",
    "roi_from_box",
]
