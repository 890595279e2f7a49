"""TFLite runtime and the geometry shared by the vision wrappers (SSD anchors, box decoding, NMS, crops).

The runtime is ``ai-edge-litert`` (PyPI; numpy 2), imported only when a model is loaded; ``tflite_runtime``
is accepted too. The anchor / decoding rules follow MediaPipe's ``SsdAnchorsCalculator`` and
``TensorsToDetectionsCalculator`` with the options of the graphs the models were published with.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import ModelError, WeightsNotFoundError

log = logging.getLogger(__name__)

RUNTIME_HINT = "pip install ai-edge-litert"


def interpreter_class() -> Any:
    """The TFLite ``Interpreter`` class (ai-edge-litert, else tflite_runtime).

    Raises:
        WeightsNotFoundError: no TFLite runtime is installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        except ImportError:
            raise WeightsNotFoundError(
                f"no TFLite runtime is installed; `{RUNTIME_HINT}` (the vision models need it)"
            ) from None
    return Interpreter


def runtime_available() -> bool:
    try:
        interpreter_class()
    except WeightsNotFoundError:
        return False
    return True


def expose_tensors(model: bytes, names: list[str]) -> tuple[bytes, list[str]]:
    """A copy of a TFLite model whose outputs also include the intermediate tensors named (by prefix).

    Reading an intermediate activation (e.g. a backbone feature map) after ``invoke`` needs it to be a graph
    output: the runtime reuses the memory of other intermediates. The flatbuffer is rewritten with the
    runtime's own schema module; weights are unchanged.

    Args:
        model: The ``.tflite`` bytes.
        names: Tensor name prefixes (the first tensor whose name starts with each is exposed).

    Returns:
        ``(new model bytes, the full names of the exposed tensors)``.

    Raises:
        ModelError: a name matches no tensor of the main subgraph.
    """
    import flatbuffers

    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - tflite_runtime has no schema module
        from tflite_runtime import schema_py_generated as schema  # type: ignore[no-redef]

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    graph = m.subgraphs[0]
    full: list[str] = []
    extra: list[int] = []
    for prefix in names:
        hit = next(
            (i for i, t in enumerate(graph.tensors) if t.name.decode("utf-8", "replace").startswith(prefix)),
            None,
        )
        if hit is None:
            raise ModelError(f"the model has no tensor named {prefix}...")
        extra.append(hit)
        full.append(graph.tensors[hit].name.decode("utf-8", "replace"))
    graph.outputs = [int(i) for i in graph.outputs] + extra
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), full


@contextlib.contextmanager
def native_stderr_to_log(source: str = "TFLite") -> Iterator[None]:
    """Route what native code writes to file descriptor 2 meanwhile into the log.

    The TFLite runtime prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` straight to the
    process's stderr when an interpreter is built, past Python's logging: on a user's terminal that is noise.
    Lines starting ``INFO:`` become debug records, any other line a warning (so a real error is not lost).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (a detached process)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
    for line in text.splitlines():
        if line.strip():
            log.log(logging.DEBUG if line.startswith("INFO:") else logging.WARNING, "%s: %s", source, line)


class TFLiteModel:
    """One TFLite model with a float32 input: ``run(x) -> {output name: array}``.

    Args:
        model: Path of the ``.tflite`` file, or its bytes.
        threads: Interpreter threads.
        expose: Intermediate tensor name prefixes to read as extra outputs (see :func:`expose_tensors`).
    """

    def __init__(
        self, model: str | os.PathLike | bytes, *, threads: int = 1, expose: list[str] | None = None
    ):
        content = model if isinstance(model, bytes) else Path(model).read_bytes()
        self.exposed: list[str] = []
        if expose:
            content, self.exposed = expose_tensors(content, expose)
        try:
            with native_stderr_to_log():
                self.interpreter = interpreter_class()(
                    model_content=content, num_threads=max(1, int(threads))
                )
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelError(
                f"cannot load the TFLite model {model if not isinstance(model, bytes) else ''}: {err}"
            )
        inp = self.interpreter.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self.outputs = [(d["name"], d["index"]) for d in self.interpreter.get_output_details()]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``x`` float32 of the input shape -> ``{output tensor name: array (copied)}``."""
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(x, dtype=np.float32))
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(i).copy() for name, i in self.outputs}


# --- SSD anchors and decoding ---------------------------------------------------------------------------
def ssd_anchors(
    *,
    input_size: tuple[int, int],
    num_layers: int,
    min_scale: float,
    max_scale: float,
    strides: tuple[int, ...],
    aspect_ratios: tuple[float, ...],
    reduce_boxes_in_lowest_layer: bool = False,
    interpolated_scale_aspect_ratio: float = 1.0,
    fixed_anchor_size: bool = False,
    offset: float = 0.5,
) -> np.ndarray:
    """SSD anchors ``(N, 4)`` as ``(x_center, y_center, w, h)`` normalised (MediaPipe's anchor layout).

    Layers sharing a stride share one feature map; their anchors are interleaved per cell.
    """

    def scale(i: int) -> float:
        n = len(strides)
        return (min_scale + max_scale) / 2 if n == 1 else min_scale + (max_scale - min_scale) * i / (n - 1)

    h_in, w_in = input_size
    anchors: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < num_layers:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            s = scale(last)
            if last == 0 and reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, s, s]
            else:
                for r in aspect_ratios:
                    ratios.append(r)
                    scales.append(s)
                if interpolated_scale_aspect_ratio > 0:
                    nxt = 1.0 if last == len(strides) - 1 else scale(last + 1)
                    ratios.append(interpolated_scale_aspect_ratio)
                    scales.append(math.sqrt(s * nxt))
            last += 1
        sizes = [(sc * math.sqrt(r), sc / math.sqrt(r)) for sc, r in zip(scales, ratios)]  # (w, h)
        fh, fw = math.ceil(h_in / strides[layer]), math.ceil(w_in / strides[layer])
        for y in range(fh):
            for x in range(fw):
                for w, h in sizes:
                    if fixed_anchor_size:
                        w = h = 1.0
                    anchors.append(((x + offset) / fw, (y + offset) / fh, w, h))
        layer = last
    return np.asarray(anchors, np.float32)


@dataclass(frozen=True)
class BoxCoding:
    """How raw box regressions are scaled (MediaPipe ``TensorsToDetectionsCalculatorOptions``)."""

    x_scale: float
    y_scale: float
    w_scale: float
    h_scale: float
    xy_order: bool = False  # True: raw = (x, y, w, h, kx, ky, ...); False: (y, x, h, w, ky, kx, ...)
    exp_size: bool = False  # sizes are exp(raw / scale) * anchor


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, coding: BoxCoding, num_keypoints: int = 0):
    """Raw regressions ``(N, 4 + 2K)`` -> boxes ``(N, 4)`` as ``(x0, y0, x1, y1)`` and keypoints ``(N, K, 2)``
    as ``(x, y)``, normalised to the model input."""
    raw = raw.astype(np.float32)
    ax, ay, aw, ah = anchors.T
    if coding.xy_order:
        rx, ry, rw, rh = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]
    else:
        ry, rx, rh, rw = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]
    cx = rx / coding.x_scale * aw + ax
    cy = ry / coding.y_scale * ah + ay
    if coding.exp_size:
        w = np.exp(rw / coding.w_scale) * aw
        h = np.exp(rh / coding.h_scale) * ah
    else:
        w = rw / coding.w_scale * aw
        h = rh / coding.h_scale * ah
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = np.zeros((raw.shape[0], num_keypoints, 2), np.float32)
    for k in range(num_keypoints):
        a, b = raw[:, 4 + 2 * k], raw[:, 5 + 2 * k]
        kx, ky = (a, b) if coding.xy_order else (b, a)
        kps[:, k, 0] = kx / coding.x_scale * aw + ax
        kps[:, k, 1] = ky / coding.y_scale * ah + ay
    return boxes, kps


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of ``(x0, y0, x1, y1)`` boxes."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return inter / np.maximum(union, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, *, iou: float, max_out: int = 100) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best first."""
    order = list(np.argsort(-scores))
    keep: list[int] = []
    while order and len(keep) < max_out:
        i = order.pop(0)
        keep.append(int(i))
        if order:
            ious = box_iou(boxes[i], boxes[order])[0]
            order = [j for j, v in zip(order, ious) if v <= iou]
    return keep


# --- rotated square crops (the ROI of a landmark model) ------------------------------------------------
@dataclass(frozen=True)
class Roi:
    """A rotated square region of an image, in pixels: centre, side, rotation (radians, counter-clockwise of
    the crop's up vector from the image's up, y pointing down)."""

    cx: float
    cy: float
    size: float
    angle: float = 0.0

    def crop_matrix(self, out: int) -> np.ndarray:
        """2x3 affine mapping crop pixel coordinates ``(u, v)`` in ``[0, out]`` to image pixels."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = self.size / out
        a = np.array([[k * c, -k * s], [k * s, k * c]], np.float64)
        t = np.array([self.cx, self.cy]) - a @ np.array([out / 2, out / 2])
        return np.concatenate([a, t[:, None]], axis=1)

    def crop(self, image: np.ndarray, out: int) -> np.ndarray:
        """The ROI resampled to ``out`` x ``out`` (zero outside the image)."""
        import cv2

        return cv2.warpAffine(
            image,
            self.crop_matrix(out),
            (out, out),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )

    def to_image(self, uv: np.ndarray, out: int) -> np.ndarray:
        """Crop pixel coordinates ``(..., 2)`` -> image pixel coordinates."""
        m = self.crop_matrix(out)
        return uv @ m[:, :2].T + m[:, 2]

    def box(self) -> np.ndarray:
        """Axis-aligned bounds ``(x0, y0, x1, y1)`` of the rotated square."""
        corners = self.to_image(np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float64), 1)
        return np.concatenate([corners.min(0), corners.max(0)])


def roi_from_points(center: np.ndarray, scale_point: np.ndarray, *, enlarge: float) -> Roi:
    """MediaPipe's alignment-points ROI: centred on ``center``, side ``2 |scale_point - center| * enlarge``,
    rotated so that ``center -> scale_point`` points up in the crop (pixel coordinates)."""
    dx, dy = float(scale_point[0] - center[0]), float(scale_point[1] - center[1])
    angle = math.pi / 2 - math.atan2(-dy, dx)
    angle = (angle + math.pi) % (2 * math.pi) - math.pi
    return Roi(float(center[0]), float(center[1]), 2.0 * math.hypot(dx, dy) * enlarge, angle)
