"""Scene features of a clip with numpy and the vision models' light runtime only (no torch): what
:class:`foleykit.vision.encoder.SceneVideoEncoder` (``video_encoder`` name ``scene``) computes.

Torch-free so that ``foleykit generate`` can compute them in a second process while the first one imports
torch and loads the model (:mod:`foleykit.product.early`).

Per frame at ``fps`` (the model's ``seq.video_fps``), five channel groups (``encoder.groups``: name -> slice
of the feature axis; names of the columns in ``encoder.channel_names``):

- ``motion`` (:data:`foleykit.vision.flow.MOTION_CHANNELS`, weight-free, always computed): optical flow with
  the camera's motion removed, camera motion itself, where things move, velocity drops / reversals,
  brightness; robust to repeated frames, cuts, fades and black bars (:mod:`foleykit.vision.flow`);
- ``pose`` (:data:`foleykit.vision.contacts.POSE_CHANNELS` + ``person_motion``, ``feet_motion``): feet and
  hands contacts of up to ``max_people`` people from BlazePose run every ``pose_every`` frames and tracked,
  or from given ``keypoints`` (the synthetic generator's ground truth, sampled on the same schedule);
  ``person_motion`` / ``feet_motion``: residual flow inside boxes around the keypoints / the feet;
- ``objects``: the SSD detector's 24 class scores (:data:`foleykit.vision.detector.CLASS_COLUMNS`) every
  ``detect_every`` frames, interpolated in between, + ``box_motion`` (residual flow inside the detected
  boxes), ``box_area`` (fraction of the picture they cover), ``box_count`` (number / 10);
- ``embedding``: the detector backbone's pooled, projected embedding (256-d), interpolated between its frames;
- ``flags``: ``vision_available`` (1 when the vision models ran), ``scene_cut``, ``duplicate_frame``.

When the TFLite files or the runtime are missing (``vision="auto"``) the ``objects`` and ``embedding``
groups are zeros, ``pose`` is zeros unless keypoints are given, ``vision_available`` is 0, and one note
line is logged. ``vision="debug"`` uses the weight-free twins of the models (tests); ``vision="off"`` never
loads them; ``vision="on"`` raises when they are missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import zlib
from typing import Any

import numpy as np

from foleykit.errors import ConfigError, WeightsNotFoundError
from foleykit.vision import contacts, flow
from foleykit.vision.detector import CLASS_COLUMNS, EMBED_DIM, PERSON

log = logging.getLogger(__name__)

POSE_EXTRA = ("person_motion", "feet_motion")
OBJECT_EXTRA = ("box_motion", "box_area", "box_count")
FLAG_CHANNELS = ("vision_available", "scene_cut", "duplicate_frame")
GROUPS: dict[str, tuple[str, ...]] = {
    "motion": flow.MOTION_CHANNELS,
    "pose": (*contacts.POSE_CHANNELS, *POSE_EXTRA),
    "objects": (*CLASS_COLUMNS, *OBJECT_EXTRA),
    "embedding": tuple(f"embedding_{i}" for i in range(EMBED_DIM)),
    "flags": FLAG_CHANNELS,
}
VISION_MODES = ("auto", "on", "off", "debug")


def group_slices() -> dict[str, slice]:
    """Channel group name -> slice of the feature axis (``SceneVideoEncoder.groups``)."""
    out, start = {}, 0
    for g, cols in GROUPS.items():
        out[g] = slice(start, start + len(cols))
        start += len(cols)
    return out


_noted = False


def _note_missing(reason: str) -> None:
    """The one line said when the vision models cannot run (once per process)."""
    global _noted
    if not _noted:
        from foleykit.vision.assets import FETCH_COMMAND

        log.warning(
            "vision models not installed (%s): run `%s` — timing from motion only", reason, FETCH_COMMAND
        )
        _noted = True


class SceneFeatures:
    """Scene features per frame (see the module docstring), ``dim`` = 332; plain Python, no torch.

    Args:
        vision: ``auto`` | ``on`` | ``off`` | ``debug`` (see the module docstring).
        fps: Frame rate of the frames given to :meth:`encode` (the model's ``seq.video_fps``).
        input_size: Short side the pipeline decodes at (people must stay large enough for the pose model).
        flow_size: About the short side optical flow runs at.
        pose_every: The pose model runs on every ``pose_every``-th frame (given keypoints are sampled alike).
        detect_every: The object detector (and person detection) runs on every ``detect_every``-th frame.
        max_people: Most people tracked at once.
        threads: TFLite interpreter threads (None: :meth:`_threads`).
        models_dir: Folder of the vision models (default ``$FOLEYKIT_HOME/vision``).
        keypoint_noise: Standard deviation of noise added to given keypoints, in leg lengths (a seed from the
            keypoints themselves keeps features reproducible); 0 = none.
    """

    def __init__(
        self,
        *,
        vision: str = "auto",
        fps: float = 25.0,
        input_size: int = 360,
        flow_size: int = 128,
        pose_every: int = 3,
        detect_every: int = 12,
        max_people: int = 2,
        threads: int | None = None,
        models_dir: str | None = None,
        keypoint_noise: float = 0.0,
    ) -> None:
        if vision not in VISION_MODES:
            raise ConfigError(f"SceneVideoEncoder: vision must be one of {VISION_MODES}, got {vision!r}")
        if not fps > 0 or pose_every < 1 or detect_every < 1 or max_people < 0 or flow_size < 16:
            raise ConfigError(
                "SceneVideoEncoder: need fps > 0, pose_every >= 1, detect_every >= 1, max_people >= 0, "
                "flow_size >= 16"
            )
        self.vision, self.fps, self.input_size, self.flow_size = (
            vision,
            float(fps),
            int(input_size),
            flow_size,
        )
        self.pose_every, self.detect_every, self.max_people = (
            int(pose_every),
            int(detect_every),
            int(max_people),
        )
        self.threads, self.models_dir, self.keypoint_noise = threads, models_dir, float(keypoint_noise)
        self.groups: dict[str, slice] = group_slices()
        names = [c for cols in GROUPS.values() for c in cols]
        self.channel_names = tuple(names)
        self.dim = len(names)
        self._models: dict[str, Any] | None = None
        self._loaded = False
        # data preparation passes a clip's pose ground truth (encode(keypoints=))
        self.accepts_keypoints = True

    def settings(self) -> dict[str, Any]:
        """Everything that decides the features (not the thread count): two encoders with equal settings give
        the same features for the same frames."""
        return {
            "vision": self.vision,
            "fps": self.fps,
            "input_size": self.input_size,
            "flow_size": self.flow_size,
            "pose_every": self.pose_every,
            "detect_every": self.detect_every,
            "max_people": self.max_people,
            "models_dir": self.models_dir,
            "keypoint_noise": self.keypoint_noise,
        }

    # --- models ---------------------------------------------------------------------------------------------
    def models(self) -> dict[str, Any] | None:
        """The vision models (``detector``, ``pose_detector``, ``landmarker``), or None when not available."""
        if self._loaded:
            return self._models
        self._loaded = True
        if self.vision == "off":
            return None
        if self.vision == "debug":
            from foleykit.vision.detector import DebugObjectDetector
            from foleykit.vision.pose import DebugPoseDetector, DebugPoseLandmarker

            self._models = {
                "detector": DebugObjectDetector(),
                "pose_detector": DebugPoseDetector(),
                "landmarker": DebugPoseLandmarker(),
            }
            return self._models
        from foleykit.vision.assets import default_vision_dir, missing_files, vision_files
        from foleykit.vision.tflite import RUNTIME_HINT, runtime_available

        folder = self.models_dir or default_vision_dir()
        reason = None
        if not runtime_available():
            reason = f"no TFLite runtime; {RUNTIME_HINT}"
        elif missing_files(folder):
            reason = f"no model files in {folder}"
        if reason is not None:
            if self.vision == "on":
                vision_files(folder)  # raises with the full story
                raise WeightsNotFoundError(f"vision models cannot run: {reason}")
            _note_missing(reason)
            return None
        from foleykit.vision.detector import ObjectDetector
        from foleykit.vision.pose import PoseDetector, PoseLandmarker

        files = vision_files(folder)
        # every thread: optical flow (a second thread) is short beside the pose model, and a model held to
        # one thread left a core idle for most of the clip (bench_e2e: video features 3.4 s -> 2.2 s)
        threads = self._threads()
        self._models = {
            "detector": ObjectDetector(
                files["object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"], threads=threads
            ),
            "pose_detector": PoseDetector(files["pose_detection.tflite"], threads=threads),
            "landmarker": PoseLandmarker(files["pose_landmark_full.tflite"], threads=threads),
        }
        return self._models

    def _threads(self) -> int:
        """TFLite threads: ``threads``, else the CPUs this process may run on."""
        if self.threads:
            return int(self.threads)
        return (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else max(1, os.cpu_count() or 1)
        )

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (data preparation sends the encoder to worker processes): the TFLite interpreters are
        not copied, each process loads its own on first use."""
        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(self.__dict__)
        state = dict(state)
        state["_models"], state["_loaded"] = None, False
        return state

    # --- encoding -------------------------------------------------------------------------------------------
    def encode_clip(
        self,
        frames: np.ndarray,
        *,
        keypoints: dict | None = None,
        timings: dict | None = None,
        trace: dict | None = None,
    ) -> np.ndarray:
        """``(T, dim)`` float32 features of one clip ``(T, H, W, 3)``.

        With two or more threads, optical flow runs in a second thread while the vision models run (both
        release the GIL), the vision models using all the threads.

        Args:
            frames: uint8 RGB frames at ``fps``.
            keypoints: Pose ground truth in the INTERFACES.md keypoint structure (a dict): replaces the pose
                model for the ``pose`` group.
            timings: Adds wall seconds per part (``prepare``, ``motion``, ``objects``, ``pose``, ``contacts``),
                the CPU seconds of each part's thread (``<part>_cpu``) and ``landmark_calls``.
            trace: Filled with what the models saw (debugging, drawings): ``crop`` (x0, y0, x1, y1 of the
                picture inside black bars), ``people`` ({frame: [(track id, landmarks (33, 4) in picture
                pixels)]}), ``detections`` ({frame: Detections}).
        """
        import concurrent.futures

        timing = _Parts()
        t0, c0 = time.perf_counter(), time.thread_time()
        T, H, W = frames.shape[:3]
        out = np.zeros((T, self.dim), np.float32)
        prep = flow.prepare(frames, self.fps, flow_size=self.flow_size)
        if trace is not None:
            trace["crop"] = prep.crop
        flags = self.groups["flags"]
        out[:, flags.start + 1] = prep.cut
        out[:, flags.start + 2] = prep.duplicate
        timing.add("prepare", time.perf_counter() - t0, time.thread_time() - c0)

        def motion() -> flow.SceneFlow:
            with timing.part("motion"):
                sf = flow.scene_flow(prep)
                out[:, self.groups["motion"]] = flow.motion_channels(prep, sf)
            return sf

        models = self.models()
        concurrent_flow = models is not None and self._threads() >= 2
        pool = concurrent.futures.ThreadPoolExecutor(1) if concurrent_flow else None
        future = pool.submit(motion) if pool is not None else None
        try:
            sf = motion() if future is None else None
            x0, y0, x1, y1 = prep.crop
            tracks: list[contacts.KeypointTrack] = []
            vision_out = None
            if models is not None:
                people = self.max_people if keypoints is None else 0  # given keypoints replace the pose model
                vision_out = self._run_models(frames[:, y0:y1, x0:x1], prep, models, people, timing, trace)
            if future is not None:
                sf = future.result()
        finally:
            if pool is not None:
                pool.shutdown()
        t2, c2 = time.perf_counter(), time.thread_time()
        if vision_out is not None:
            tracks, obj, emb, boxes = vision_out
            out[:, flags.start] = 1.0
            o = self.groups["objects"]
            out[:, o.start : o.start + len(CLASS_COLUMNS)] = obj
            out[:, self.groups["embedding"]] = emb
            mask = self._box_masks(boxes, sf.residual.shape[1:3])
            out[:, o.start + len(CLASS_COLUMNS)] = flow.region_motion(sf, mask)
            out[:, o.start + len(CLASS_COLUMNS) + 1] = mask.mean(axis=(1, 2))
            out[:, o.start + len(CLASS_COLUMNS) + 2] = np.minimum([len(b) / 10.0 for b in boxes], 1.0)
        unit = float(min(x1 - x0, y1 - y0))  # content pixels per length unit (the picture's short side)
        if keypoints is not None:
            tracks = contacts.tracks_from_json(
                keypoints, fps=self.fps, size=(W, H), num_frames=T, frames=self._schedule(prep)
            )
            for tr in tracks:
                tr.points[..., 0] -= x0
                tr.points[..., 1] -= y0
            if self.keypoint_noise > 0:
                self._add_noise(tracks)
        if tracks:
            p = self.groups["pose"]
            camera = sf.camera
            pose = contacts.pose_contacts(tracks, fps=self.fps, num_frames=T, unit=unit, camera=camera)
            out[:, p.start : p.start + pose.shape[1]] = pose
            person, feet = self._keypoint_masks(tracks, T, unit, prep)
            out[:, p.start + pose.shape[1]] = flow.region_motion(sf, person)
            out[:, p.start + pose.shape[1] + 1] = flow.region_motion(sf, feet)
        timing.add("contacts", time.perf_counter() - t2, time.thread_time() - c2)
        if timings is not None:
            for k, v in timing.report().items():
                timings[k] = timings.get(k, 0.0) + v
        return out

    def _run_models(
        self, pic, prep: flow.Prepared, models: dict[str, Any], max_people: int, timing, trace=None
    ):
        """Detector on its frames, pose on its frames (tracked): tracks, class scores, embeddings, boxes."""
        from foleykit.vision.pose import PoseTracker, roi_from_box

        T, h, w = pic.shape[:3]
        det_frames: list[int] = []
        dets = []
        tracker = PoseTracker(models["landmarker"], max_people=max(1, max_people))
        schedule = self._schedule(prep)
        pose_frames: list[int] = []
        people: list[list[tuple[int, np.ndarray]]] = []
        last_cut = -1
        for k, i in enumerate(range(0, T, self.pose_every)):
            if k > 0 and schedule[k] == schedule[k - 1]:
                continue  # the same picture as the frame analysed last (repeated frames)
            cut_since = bool(prep.cut[last_cut + 1 : i + 1].any()) if i > 0 else False
            if cut_since:
                tracker.reset()
                last_cut = i
            detect = i % self.detect_every == 0 or cut_since
            proposals = confirm = None
            if detect:
                t0, c0 = time.perf_counter(), time.thread_time()
                d = models["detector"].detect(pic[i])
                det_frames.append(i)
                dets.append(d)
                if trace is not None:
                    trace.setdefault("detections", {})[i] = d
                timing.add("objects", time.perf_counter() - t0, time.thread_time() - c0)
                if max_people:
                    t0, c0 = time.perf_counter(), time.thread_time()
                    scale = np.array([w, h, w, h], np.float32)
                    persons = d.scores[:, PERSON]
                    proposals = [(0.5 * float(s), roi_from_box(b * scale))
                                 for b, s in zip(d.boxes, persons) if s >= 0.4]  # fmt: skip
                    confirm = [b * scale for b, s in zip(d.boxes, persons) if s >= 0.25]
                    if len(tracker.tracks) < max_people:
                        found_det = models["pose_detector"].detect(pic[i])
                        proposals += found_det
                        confirm += [r.box() for _, r in found_det]
                    confirm = np.array(confirm, np.float32).reshape(-1, 4)
                    timing.add("pose", time.perf_counter() - t0, time.thread_time() - c0)
            if max_people:
                t0, c0 = time.perf_counter(), time.thread_time()
                found = tracker.step(pic[i], proposals, confirm)
                pose_frames.append(int(schedule[k]))
                people.append([(tid, r.landmarks) for tid, r in found])
                if trace is not None:
                    trace.setdefault("people", {})[i] = people[-1]
                timing.add("pose", time.perf_counter() - t0, time.thread_time() - c0)
        timing.calls += tracker.calls
        if not det_frames:
            det_frames, dets = [0], [models["detector"].detect(pic[0])]
        obj = _interp(det_frames, np.stack([d.class_scores for d in dets]), T)
        emb = _interp(det_frames, np.stack([d.embedding for d in dets]), T)
        nearest = [int(np.argmin([abs(f - i) for f in det_frames])) for i in range(T)]
        boxes = [dets[j].boxes for j in nearest]
        return contacts.tracks_from_results(pose_frames, people), obj, emb, boxes

    def _schedule(self, prep: flow.Prepared) -> np.ndarray:
        """The frames the pose is read at: every ``pose_every``-th frame, a repeated frame standing for the
        first frame of its run (the moment its picture was taken). Given keypoints are sampled alike."""
        out = np.arange(0, len(prep.duplicate), self.pose_every)
        for k, i in enumerate(out):
            while i > 0 and prep.duplicate[i]:
                i -= 1
            out[k] = i
        return out

    @staticmethod
    def _box_masks(boxes: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
        """Per-frame union masks ``(T, h, w)`` of normalised boxes at the flow size."""
        h, w = shape
        out = np.zeros((len(boxes), h, w), np.float32)
        for i, bs in enumerate(boxes):
            for b in bs:
                c0, r0 = int(np.floor(b[0] * w)), int(np.floor(b[1] * h))
                c1, r1 = int(np.ceil(b[2] * w)), int(np.ceil(b[3] * h))
                out[i, max(0, r0) : max(0, r1), max(0, c0) : max(0, c1)] = 1.0
        return out

    def _keypoint_masks(
        self, tracks, T: int, unit: float, prep: flow.Prepared
    ) -> tuple[np.ndarray, np.ndarray]:
        """Boxes around each person's keypoints and around their feet, as masks ``(T, h, w)`` at the flow size."""
        h, w = prep.gray.shape[1:3]
        scale = min(h, w) / unit  # content pixels -> flow pixels
        person = np.zeros((T, h, w), np.float32)
        feet = np.zeros((T, h, w), np.float32)
        t = np.arange(T, dtype=np.float64)
        for tr in tracks:
            if len(tr.frames) == 0:
                continue
            vis = tr.points[..., 2] >= 0.5
            for i in range(T):
                k = int(np.argmin(np.abs(tr.frames - t[i])))
                if abs(tr.frames[k] - t[i]) > self.pose_every or vis[k].sum() < 3:
                    continue
                pts = tr.points[k, vis[k], :2] * scale
                leg = max(float(np.ptp(pts[:, 1])), 4.0)
                _fill(person[i], pts.min(0) - 0.2 * leg, pts.max(0) + 0.2 * leg)
                for side in ((2, 4, 6), (3, 5, 7)):
                    fv = [j for j in side if vis[k, j]]
                    if fv:
                        c = tr.points[k, fv, :2].mean(0) * scale
                        _fill(feet[i], c - 0.2 * leg, c + 0.2 * leg)
        return person, feet

    def _add_noise(self, tracks: list[contacts.KeypointTrack]) -> None:
        for tr in tracks:
            seed = zlib.crc32(np.ascontiguousarray(tr.points, np.float64).tobytes())
            rng = np.random.RandomState(seed)
            vis = tr.points[..., 2] > 0
            legs = np.linalg.norm(tr.points[:, [0, 1], :2].mean(1) - tr.points[:, [2, 3], :2].mean(1), axis=1)
            leg = float(np.median(legs[vis[:, :4].all(1)])) if vis[:, :4].all(1).any() else 0.0
            tr.points[..., :2] += rng.standard_normal(tr.points[..., :2].shape) * self.keypoint_noise * leg


class _Parts:
    """Wall and thread-CPU seconds per part of the work (threads add their own parts)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls = 0

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu

    @contextlib.contextmanager
    def part(self, name: str):
        w, c = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - w, time.thread_time() - c)

    def report(self) -> dict[str, float]:
        """``{part: wall s, part_cpu: CPU s of its thread, landmark_calls: n}``."""
        out = dict(self.wall)
        out.update({f"{k}_cpu": v for k, v in self.cpu.items()})
        out["landmark_calls"] = float(self.calls)
        return out


def _fill(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    h, w = mask.shape
    c0, r0 = max(0, int(np.floor(lo[0]))), max(0, int(np.floor(lo[1])))
    c1, r1 = min(w, int(np.ceil(hi[0]))), min(h, int(np.ceil(hi[1])))
    if c1 > c0 and r1 > r0:
        mask[r0:r1, c0:c1] = 1.0


def _interp(frames: list[int], values: np.ndarray, T: int) -> np.ndarray:
    """Values at some frames ``(K, C)`` -> ``(T, C)``, linear in between, held at the ends."""
    t = np.arange(T, dtype=np.float64)
    f = np.asarray(frames, np.float64)
    return np.stack([np.interp(t, f, values[:, c]) for c in range(values.shape[1])], axis=1).astype(
        np.float32
    )
