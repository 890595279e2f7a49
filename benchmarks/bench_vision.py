"""Cost of the scene video encoder (``video_encoder`` ``scene``) on 10 s of 720p video, part by part.

One command::

    .venv/bin/python benchmarks/bench_vision.py                  # 2 threads, 3 runs
    .venv/bin/python benchmarks/bench_vision.py --threads 2 --runs 5 --json out.json

The budget (issue 14): a 10 s 720p clip end to end at >= 1x real time on 2 CPU cores, the rest of the pipeline
taking ~2 s, so the encoder (decode excluded) must stay under ~4 s per 10 s of 720p video with 2 threads.

Clips (frames as the pipeline hands them over: 25 fps, decoded at the encoder's ``input_size`` short side, so
a 1280x720 video arrives as 640x360):

- ``vtest-pan``: OpenCV's ``vtest.avi`` (real people walking; opencv-doc) seen through a slowly panning and
  zooming 16:9 window, so that every one of the 250 frames differs (the source is 10 fps: without the moving
  window most frames would repeat, which the encoder handles cheaply) — the costly case: people to track,
  camera motion, a new flow field per frame;
- ``vtest``: the same footage as it is (10 fps source, repeated frames), letterboxed into 16:9;
- ``synthetic``: a moving square on a textured background (``foleykit.testing``), no people.

Reports per part (``prepare``: bars, repeats, cuts, grey frames; ``motion``: optical flow + camera fit + motion
channels, in its own thread when there are 2+ threads; ``objects``: the SSD detector; ``pose``: person
detection + landmarks + tracking; ``contacts``: pose channels and region motion) the wall seconds and the CPU
seconds of the part's thread (median over ``--runs`` after one warm-up), the real-time factor, the number of
pose landmark calls and the load average. Other work on the machine inflates wall times; thread CPU seconds
move much less, so an idle-machine estimate is printed too: prepare + max(motion, objects + pose) + contacts
(CPU seconds; the flow thread beside the models). Missing vision models are reported and the weight-free part
is still measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

#: Debian's opencv-doc copy (elsewhere: set $FOLEYKIT_VTEST).
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def vtest_path() -> Path | None:
    for p in (Path(os.environ.get("FOLEYKIT_VTEST", "")), VTEST):
        if p.is_file():
            return p
    return None


def make_clips(names: list[str], size: tuple[int, int], seconds: float = 10.0) -> dict[str, Any]:
    """uint8 ``(T, H, W, 3)`` frames at 25 fps per clip name (see the module docstring)."""
    import cv2
    import numpy as np

    from foleykit.media import read_video

    w, h = size
    t = round(seconds * 25)
    clips: dict[str, Any] = {}
    src = vtest_path()
    for name in names:
        if name.startswith("vtest") and src is None:
            print(f"skipping {name}: vtest.avi (opencv-doc) not found", file=sys.stderr)
            continue
        if name == "vtest-pan":
            big = read_video(src, fps=25, size=(960, 720), duration=seconds).frames
            out = []
            for i in range(min(t, len(big))):
                z = 1.0 - 0.15 * i / t  # slow zoom in while panning right
                cw, ch = int(960 * z), int(960 * z * h / w)
                x0 = int((960 - cw) * i / t)
                y0 = (720 - ch) // 2
                out.append(
                    cv2.resize(big[i, y0 : y0 + ch, x0 : x0 + cw], (w, h), interpolation=cv2.INTER_AREA)
                )
            clips[name] = np.stack(out)
        elif name == "vtest":
            frames = read_video(src, fps=25, size=(h * 4 // 3, h), duration=seconds).frames
            pad = (w - frames.shape[2]) // 2
            clips[name] = np.pad(frames, ((0, 0), (0, 0), (pad, w - frames.shape[2] - pad), (0, 0)))
        elif name == "synthetic":
            rng = np.random.RandomState(0)
            bg = cv2.resize(rng.randint(0, 255, (h // 8, w // 8, 3)).astype(np.uint8), (w, h))
            out = []
            for i in range(t):
                f = bg.copy()
                x = int((w - 80) * (0.5 + 0.5 * np.sin(i / 12)))
                cv2.rectangle(f, (x, h // 2 - 40), (x + 80, h // 2 + 40), (255, 255, 255), -1)
                out.append(f)
            clips[name] = np.stack(out)
        else:
            raise SystemExit(f"unknown clip {name!r}")
    return clips


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch / TFLite / OpenCV threads")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clips", default="vtest-pan,vtest,synthetic")
    ap.add_argument("--vision", default="auto", help="auto | off | debug (the encoder's vision mode)")
    ap.add_argument("--models-dir", help="vision model folder (default $FOLEYKIT_HOME/vision)")
    ap.add_argument("--pose-every", type=int)
    ap.add_argument("--detect-every", type=int)
    ap.add_argument("--max-people", type=int)
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import cv2
    import torch

    from foleykit.vision.encoder import SceneVideoEncoder

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    kw = {k: v for k, v in (("pose_every", args.pose_every), ("detect_every", args.detect_every),
                            ("max_people", args.max_people)) if v is not None}  # fmt: skip
    enc = SceneVideoEncoder(vision=args.vision, threads=args.threads, models_dir=args.models_dir, **kw)
    t0 = time.perf_counter()
    models = enc.models()
    load_s = time.perf_counter() - t0
    w = round(enc.input_size * 16 / 9 / 2) * 2
    clips = make_clips(args.clips.split(","), (w, enc.input_size))
    report: dict[str, Any] = {
        "threads": args.threads,
        "vision_models": models is not None,
        "model_load_s": round(load_s, 3),
        "encoder": {
            k: getattr(enc, k)
            for k in ("input_size", "flow_size", "pose_every", "detect_every", "max_people")
        },
        "clips": {},
    }
    print(f"vision models: {'loaded' if models else 'absent'} ({load_s:.2f} s); threads {args.threads}")
    for name, frames in clips.items():
        seconds = len(frames) / 25.0
        walls, cpus, parts = [], [], []
        for run in range(args.runs + 1):
            timings: dict[str, float] = {}
            c0, w0 = time.process_time(), time.perf_counter()
            enc.encode_clip(frames, timings=timings)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            if run == 0:
                continue
            walls.append(wall)
            cpus.append(cpu)
            parts.append(timings)
        med = {k: statistics.median(p.get(k, 0.0) for p in parts) for k in parts[0]}
        wall_parts = {k: round(v, 3) for k, v in med.items() if not k.endswith(("_cpu", "calls"))}
        cpu_parts = {k[:-4]: round(v, 3) for k, v in med.items() if k.endswith("_cpu")}
        # idle-machine estimate: the flow thread runs beside the models (2+ threads), else one after the other
        c = {k: cpu_parts.get(k, 0.0) for k in ("prepare", "motion", "objects", "pose", "contacts")}
        side = max(c["motion"], c["objects"] + c["pose"]) if (models and args.threads >= 2) else (
            c["motion"] + c["objects"] + c["pose"])  # fmt: skip
        row = {
            "frames": list(frames.shape),
            "seconds": seconds,
            "wall_s": statistics.median(walls),
            "cpu_s": statistics.median(cpus),
            "real_time_factor": seconds / statistics.median(walls),
            "parts_wall_s": wall_parts,
            "parts_thread_cpu_s": cpu_parts,
            "idle_wall_estimate_s": round(c["prepare"] + side + c["contacts"], 3),
            "landmark_calls": int(med.get("landmark_calls", 0)),
            "loadavg": [round(v, 2) for v in os.getloadavg()],
        }
        report["clips"][name] = row
        print(
            f"{name:10s} {frames.shape[2]}x{frames.shape[1]} {seconds:.0f} s: wall {row['wall_s']:.2f} s "
            f"({row['real_time_factor']:.1f}x real time), process CPU {row['cpu_s']:.2f} s, idle-machine "
            f"estimate {row['idle_wall_estimate_s']:.2f} s; landmark calls {row['landmark_calls']}, load "
            f"{row['loadavg'][0]}\n    wall per part  "
            + ", ".join(f"{k} {v:.2f}" for k, v in wall_parts.items())
            + "\n    CPU per part   "
            + ", ".join(f"{k} {v:.2f}" for k, v in cpu_parts.items())
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
