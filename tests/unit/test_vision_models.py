"""Vision model wrappers: anchors, box decoding, ROIs, debug twins, tracking; the real models when installed."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest

from foleykit.vision import detector, pose, tflite
from foleykit.vision.assets import default_vision_dir, missing_files

# unpacked Debian packages (opencv-doc, tuxpaint-stamps-default) under $FOLEYKIT_TEST_ASSETS/x, when present
ASSETS = Path(os.environ.get("FOLEYKIT_TEST_ASSETS", "/nonexistent"))
DATA = ASSETS / "x/usr/share/doc/opencv-doc/examples/data"
STAMPS = ASSETS / "x/usr/share/tuxpaint/stamps"
VISION_DIR = default_vision_dir()  # read at collection, before the tests' isolated $FOLEYKIT_HOME
REAL = not missing_files(VISION_DIR) and tflite.runtime_available()
real_models = pytest.mark.skipif(
    not REAL, reason="vision models not installed (foleykit models fetch-vision)"
)


def test_ssd_anchor_layouts_match_the_published_graphs():
    a = tflite.ssd_anchors(
        input_size=(300, 300), num_layers=6, min_scale=0.2, max_scale=0.95, strides=(16, 32, 64, 128, 256, 512),
        aspect_ratios=(1.0, 2.0, 0.5, 3.0, 0.3333), reduce_boxes_in_lowest_layer=True,
    )  # fmt: skip
    assert a.shape == (1917, 4)
    assert a[0].tolist() == pytest.approx([0.5 / 19, 0.5 / 19, 0.1, 0.1])
    b = tflite.ssd_anchors(
        input_size=(224, 224), num_layers=5, min_scale=0.1484375, max_scale=0.75, strides=(8, 16, 32, 32, 32),
        aspect_ratios=(1.0,), fixed_anchor_size=True,
    )  # fmt: skip
    assert b.shape == (2254, 4) and np.all(b[:, 2:] == 1.0)


def test_box_decoding_inverts_the_encoding():
    anchors = np.array([[0.5, 0.5, 0.2, 0.4], [0.25, 0.75, 0.1, 0.1]], np.float32)
    box = np.array([0.3, 0.4, 0.55, 0.9])  # x0, y0, x1, y1 of the first anchor's object
    cx, cy, w, h = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]
    coding = tflite.BoxCoding(10.0, 10.0, 5.0, 5.0, exp_size=True)
    raw = np.zeros((2, 6), np.float32)  # y, x, h, w, then one keypoint (y, x)
    raw[0, :4] = [(cy - 0.5) / 0.4 * 10, (cx - 0.5) / 0.2 * 10, np.log(h / 0.4) * 5, np.log(w / 0.2) * 5]
    raw[0, 4:] = [(0.6 - 0.5) / 0.4 * 10, (0.45 - 0.5) / 0.2 * 10]
    boxes, kps = tflite.decode_boxes(raw, anchors, coding, num_keypoints=1)
    assert boxes[0] == pytest.approx(box, abs=1e-5)
    assert kps[0, 0] == pytest.approx([0.45, 0.6], abs=1e-5)
    xy = tflite.BoxCoding(1.0, 1.0, 1.0, 1.0, xy_order=True)
    b2, _ = tflite.decode_boxes(np.array([[0.1, 0.0, 0.0, 0.0]], np.float32), anchors[1:], xy)
    assert (b2[0, 0] + b2[0, 2]) / 2 == pytest.approx(0.25 + 0.1 * 0.1)  # x moved, not y


def test_nms_and_iou():
    boxes = np.array([[0, 0, 1, 1], [0.05, 0, 1, 1], [2, 2, 3, 3]], np.float32)
    assert tflite.box_iou(boxes[:1], boxes[2:])[0, 0] == 0.0
    assert tflite.nms(boxes, np.array([0.5, 0.9, 0.7]), iou=0.5) == [1, 2]


def test_roi_crop_and_back_and_rotation_convention():
    roi = tflite.roi_from_points(np.array([100.0, 200.0]), np.array([100.0, 150.0]), enlarge=1.25)
    assert roi.angle == pytest.approx(0.0) and roi.size == pytest.approx(125.0)
    tilted = tflite.roi_from_points(np.array([0.0, 0.0]), np.array([10.0, -10.0]), enlarge=1.0)
    assert tilted.angle == pytest.approx(math.pi / 4)
    up = tilted.to_image(np.array([[128.0, 0.0]]), 256)[0]  # the crop's top centre lies up-right
    assert up[0] > 0 and up[1] < 0
    img = np.zeros((300, 300, 3), np.uint8)
    img[190:210, 140:160] = 255
    crop = tflite.Roi(150.0, 200.0, 100.0, 0.3).crop(img, 64)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    centre = tflite.Roi(150.0, 200.0, 100.0, 0.3).to_image(np.array([[xs.mean(), ys.mean()]]), 64)[0]
    assert centre == pytest.approx([150.0, 200.0], abs=1.5)


def test_debug_object_detector_has_the_real_shapes():
    rng = np.random.RandomState(0)
    img = rng.randint(0, 60, (120, 160, 3)).astype(np.uint8)
    img[30:80, 40:100] = (230, 40, 40)
    d = detector.DebugObjectDetector().detect(img)
    assert d.class_scores.shape == (24,) and d.embedding.shape == (detector.EMBED_DIM,)
    assert d.boxes.shape[1:] == (4,) and d.scores.shape == (len(d.boxes), 24) and len(d.boxes) == 1
    assert d.boxes[0] == pytest.approx([40 / 160, 30 / 120, 100 / 160, 80 / 120], abs=0.05)
    again = detector.DebugObjectDetector().detect(img)
    assert np.array_equal(again.embedding, d.embedding)  # deterministic
    assert detector.CLASS_COLUMNS[0] == "any_object" and detector.CLASS_COLUMNS[13] == "coffee_cup"


def blob_frames(n: int = 12, h: int = 120, w: int = 160) -> np.ndarray:
    """A bright upright "person" blob walking right on a dark background."""
    out = np.full((n, h, w, 3), 20, np.uint8)
    for i in range(n):
        x = 30 + 6 * i
        out[i, 30:100, x : x + 14] = 235
    return out


def test_tracker_follows_one_person_and_resets_at_cuts():
    frames = blob_frames()
    det, lm = pose.DebugPoseDetector(), pose.DebugPoseLandmarker()
    tracker = pose.PoseTracker(lm, max_people=2)
    ids, xs = [], []
    for i, f in enumerate(frames):
        found = tracker.step(f, det.detect(f) if i == 0 else None)
        assert len(found) == 1
        ids.append(found[0][0])
        xs.append(found[0][1].landmarks[[23, 24], 0].mean())
        assert found[0][1].landmarks.shape == (33, 4)
    assert len(set(ids)) == 1 and np.all(np.diff(xs) > 3)  # one track, moving right with the blob
    tracker.reset()
    assert tracker.step(frames[0]) == []


def test_tracker_drops_a_track_no_detector_confirms():
    frames = blob_frames(6)
    det, lm = pose.DebugPoseDetector(), pose.DebugPoseLandmarker()
    tracker = pose.PoseTracker(lm)
    tracker.step(frames[0], det.detect(frames[0]))
    far = np.array([[0, 0, 5, 5]], np.float32)
    assert tracker.step(frames[1], None, far) != []  # one miss is forgiven
    assert tracker.step(frames[2], None, far) == []  # the second ends it
    tracker.step(frames[3], det.detect(frames[3]))
    box = tracker.tracks[0].last.box()
    for f in frames[4:]:
        assert tracker.step(f, None, box[None]) != []


@real_models
@pytest.mark.skipif(not (DATA / "messi5.jpg").is_file(), reason="opencv-doc photos not present")
def test_real_detector_knows_a_mug_a_dog_and_a_person_and_its_embedding_groups_kinds():
    import cv2

    def load(path: Path) -> np.ndarray:
        im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if im.shape[2] == 4:  # a cut-out: on grey
            a = im[:, :, 3:4] / 255.0
            im = (im[:, :, :3] * a + 128 * (1 - a)).astype(np.uint8)
        return np.ascontiguousarray(im[:, :, ::-1])

    det = detector.ObjectDetector(VISION_DIR / "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite")
    photos = {
        "mug": STAMPS / "household/dishes/mug.png",
        "dog": STAMPS / "animals/mammals/dogs/dog.png",
        "dingo": STAMPS / "animals/mammals/dogs/dingo.png",
        "tiger": STAMPS / "animals/mammals/cats/tiger.png",
        "lion": STAMPS / "animals/mammals/cats/lion.png",
        "person": DATA / "messi5.jpg",
    }
    out = {k: det.detect(load(p)) for k, p in photos.items()}
    best = {k: detector.LABELS[int(np.argmax(d.class_scores[1:])) + 1] for k, d in out.items()}
    assert best["mug"] in ("Mug", "Coffee cup") and best["dog"] == "Dog"
    assert out["person"].class_scores[detector.PERSON] > 0.4  # (its football boot scores as high: Footwear)
    e = {k: d.embedding / np.linalg.norm(d.embedding) for k, d in out.items()}
    assert e["tiger"] @ e["lion"] > e["tiger"] @ e["mug"]
    assert e["dog"] @ e["dingo"] > e["dog"] @ e["mug"]
    assert len(out["person"].boxes) >= 1


@real_models
@pytest.mark.skipif(not (DATA / "vtest.avi").is_file(), reason="opencv-doc vtest.avi not present")
def test_real_pose_finds_the_walkers_of_vtest():
    from foleykit.media import read_video

    v = VISION_DIR
    frame = read_video(DATA / "vtest.avi", fps=25, size=360, start=4.0, duration=0.04).frames[0]
    det = detector.ObjectDetector(v / "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite")
    lm = pose.PoseLandmarker(v / "pose_landmark_full.tflite")
    h, w = frame.shape[:2]
    d = det.detect(frame)
    people = d.person_boxes()
    assert len(people) >= 3
    tracker = pose.PoseTracker(lm, max_people=3)
    found = tracker.step(frame, [(0.5, pose.roi_from_box(b * [w, h, w, h])) for b in people])
    assert len(found) >= 2
    for _, r in found:  # a standing / walking person: ankles below hips below shoulders
        y = r.landmarks[:, 1]
        assert y[[27, 28]].mean() > y[[23, 24]].mean() > y[[11, 12]].mean()


def test_a_much_larger_person_takes_the_place_of_the_smallest_tracked():
    img = np.full((200, 300, 3), 20, np.uint8)
    img[40:60, 30:36] = 235  # a small, far person
    img[60:180, 200:224] = 235  # a large, near one
    lm = pose.DebugPoseLandmarker()
    tracker = pose.PoseTracker(lm, max_people=1)
    small, large = (0.9, tflite.Roi(33.0, 50.0, 32.0)), (0.6, tflite.Roi(212.0, 120.0, 190.0))
    first = tracker.step(img, [small])
    assert len(first) == 1 and first[0][1].box()[3] < 70
    second = tracker.step(img, [small, large])
    assert len(second) == 1 and second[0][0] != first[0][0] and second[0][1].box()[3] > 150
    assert tracker.step(img, [small])[0][0] == second[0][0]  # the small one does not come back


def test_a_walking_track_needs_no_detector_confirmation():
    frames = np.full((6, 120, 200, 3), 20, np.uint8)
    for i in range(6):
        frames[i, 30:100, 20 + 20 * i : 34 + 20 * i] = 235  # 20 px per step: ~0.6 leg lengths
    det, lm = pose.DebugPoseDetector(), pose.DebugPoseLandmarker()
    tracker = pose.PoseTracker(lm)
    tracker.step(frames[0], det.detect(frames[0]))
    nothing = np.zeros((0, 4), np.float32)
    assert all(tracker.step(f, None, nothing) != [] for f in frames[1:])
    still = pose.PoseTracker(lm)
    still.step(frames[0], det.detect(frames[0]))
    assert [still.step(frames[0], None, nothing) != [] for _ in range(3)] == [True, False, False]


def test_native_stderr_lines_go_to_the_log_not_the_terminal(capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="foleykit.vision.tflite")
    with tflite.native_stderr_to_log():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nERROR: op not supported\n")
    assert capfd.readouterr().err == ""  # nothing reached the process's stderr
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels["TFLite: INFO: Created TensorFlow Lite XNNPACK delegate for CPU."] == logging.DEBUG
    assert levels["TFLite: ERROR: op not supported"] == logging.WARNING
    os.write(2, b"after\n")  # the descriptor is restored
    assert capfd.readouterr().err == "after\n"
