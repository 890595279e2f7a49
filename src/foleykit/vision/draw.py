"""Debug drawings of what the vision models see: skeletons, ROIs and detector boxes on a frame."""

from __future__ import annotations

import numpy as np

from foleykit.vision.detector import LABELS
from foleykit.vision.pose import SKELETON

_COLOURS = ((255, 64, 64), (64, 200, 255), (255, 200, 0), (160, 255, 96), (255, 96, 255))


def annotate(
    frame: np.ndarray,
    *,
    people: list[tuple[int, np.ndarray]] = (),
    boxes: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    min_visibility: float = 0.3,
    scale: float = 1.0,
    contacts: dict[int, list[str]] | None = None,
) -> np.ndarray:
    """A copy of an RGB frame with skeletons (per track colour; feet points in white), detector boxes
    (yellow, best label and score) and optional contact labels, enlarged ``scale`` times.

    Args:
        frame: uint8 ``(H, W, 3)`` RGB.
        people: ``[(track id, landmarks (33, >=3) in pixels of frame)]``.
        boxes: ``(N, 4)`` normalised detector boxes; ``scores``: their ``(N, 24)`` class scores.
        contacts: Track id -> labels to print next to the person (e.g. ``["L"]`` on a left-foot contact).
    """
    import cv2

    img = np.ascontiguousarray(frame)
    if scale != 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    img = img.copy()
    h, w = img.shape[:2]
    if boxes is not None:
        for k, b in enumerate(boxes):
            p0 = (int(b[0] * w), int(b[1] * h))
            p1 = (int(b[2] * w), int(b[3] * h))
            cv2.rectangle(img, p0, p1, (255, 230, 0), 1)
            if scores is not None:
                c = int(np.argmax(scores[k][1:])) + 1
                cv2.putText(img, f"{LABELS[c]} {scores[k][c]:.2f}", (p0[0], max(10, p0[1] - 3)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 230, 0), 1, cv2.LINE_AA)  # fmt: skip
    for tid, lm in people:
        col = _COLOURS[tid % len(_COLOURS)]
        pts = np.asarray(lm, np.float64)
        xy = pts[:, :2] * scale
        vis = pts[:, 2] if pts.shape[1] > 2 else np.ones(len(pts))
        for a, b in SKELETON:
            if vis[a] >= min_visibility and vis[b] >= min_visibility:
                cv2.line(img, tuple(xy[a].astype(int)), tuple(xy[b].astype(int)), col, 1, cv2.LINE_AA)
        for j in (27, 28, 29, 30, 31, 32):
            cv2.circle(img, tuple(xy[j].astype(int)), 2, (255, 255, 255), -1)
        top = xy[vis >= min_visibility].min(0) if (vis >= min_visibility).any() else xy.min(0)
        label = f"#{tid}" + ("".join(f" {c}" for c in (contacts or {}).get(tid, [])))
        cv2.putText(img, label, (int(top[0]), max(10, int(top[1]) - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, col, 1,
                    cv2.LINE_AA)  # fmt: skip
    return img
