"""``foleykit models fetch-vision``: fetch, verify and unpack the pretrained vision models (set-up, once)."""

from __future__ import annotations

import argparse


def add_fetch_vision(sub) -> None:
    """Register ``fetch-vision`` under ``foleykit models``."""
    p = sub.add_parser(
        "fetch-vision",
        help="download and unpack the vision models (MediaPipe pose, SSD object detector; ~70 MB, once)",
        description="Fetch mediapipe 0.10.21 (PyPI wheel) and @mediapipe/objectron 0.4.1675468480 (npm), check "
        "their sha256 pins, and unpack only the TFLite models the scene video encoder runs (BlazePose detection "
        "+ landmarks, selfie segmentation, SSD MobileNetV2 Open Images detector + label map) with their "
        "licence (Apache-2.0) and a vision.json manifest into $FOLEYKIT_HOME/vision. Idempotent.",
    )
    p.add_argument("--output", help="target folder (default $FOLEYKIT_HOME/vision)")
    p.add_argument(
        "--wheel", help="use this mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl (no PyPI)"
    )
    p.add_argument("--objectron", help="use this @mediapipe/objectron 0.4.1675468480 .tgz (no npm registry)")
    p.add_argument("--force", action="store_true", help="unpack again even when the folder is complete")


def run_fetch_vision(args: argparse.Namespace) -> int:
    import json
    import time

    from foleykit.vision.assets import MANIFEST, prepare_vision
    from foleykit.vision.tflite import RUNTIME_HINT, runtime_available

    t0 = time.perf_counter()
    out = prepare_vision(args.output, wheel=args.wheel, objectron=args.objectron, force=args.force)
    files = json.loads((out / MANIFEST).read_text())["files"]
    size = sum(int(f["size"]) for f in files.values()) / 1e6
    print(
        f"vision models ready at {out} ({len(files)} files, {size:.1f} MB, {time.perf_counter() - t0:.1f} s)"
    )
    if not runtime_available():
        print(f"note: no TFLite runtime is installed; `{RUNTIME_HINT}` so that the encoder can run them")
    return 0
