"""Benchmark: foleykit.media.read_video on a 10 s 1280x720 h264 clip vs decoding every frame in full.

Builds the clip once (cached in ``--cache-dir``): a textured background, three textured shapes moving
continuously plus fresh per-frame noise (so every frame costs real decoding work), 25 fps, libx264
``veryfast`` crf 23 (FFmpeg's default quality). Then times, ``--runs`` times each:

- ``read_video(fps=8, size=224)``: the timing-feature path (seek, decoder-side scaling, only output frames
  converted);
- ``read_video(fps=25, size=128)``: what the demonstrator model decodes;
- ``read_video()`` (every frame, full resolution, RGB): the "decode everything" reference;
- a naive peer-tool baseline: decode every frame to full-resolution RGB, resize with OpenCV, pick frames
  by timestamp (how many published V2A tools read video);
- decode only (no colour conversion): the floor set by the h264 decoder itself.

Usage::

    python benchmarks/bench_read_video.py [--runs 5] [--cache-dir DIR] [--json OUT.json]

Prints a Markdown table (median, min, max seconds; speed-up over the full decode) and optionally JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from foleykit.media import probe, read_video, write_video

WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 25, 10.0


def _frames(seed: int = 0):
    """Yield the benchmark frames: textured background, three moving textured shapes, fresh noise."""
    import cv2

    rng = np.random.default_rng(seed)
    background = cv2.resize(
        rng.uniform(0, 255, (HEIGHT // 16, WIDTH // 16, 3)).astype(np.float32),
        (WIDTH, HEIGHT),
        interpolation=cv2.INTER_CUBIC,
    )
    shapes = [
        cv2.resize(rng.uniform(0, 255, (s // 8, s // 8, 3)).astype(np.float32), (s, s))
        for s in (240, 180, 120)
    ]
    for i in range(round(SECONDS * FPS)):
        t = i / FPS
        img = background.copy()
        for k, tex in enumerate(shapes):
            s = tex.shape[0]
            x = int((WIDTH - s) * (0.5 + 0.45 * np.sin(0.7 * t * (k + 1) + k)))
            y = int((HEIGHT - s) * (0.5 + 0.45 * np.cos(0.5 * t * (k + 2) + 2 * k)))
            img[y : y + s, x : x + s] = tex
        img += rng.normal(0, 6, img.shape).astype(np.float32)
        yield np.clip(img, 0, 255).astype(np.uint8)


def build_clip(cache_dir: Path) -> Path:
    """The cached benchmark clip (built on first use)."""
    path = cache_dir / f"bench_{WIDTH}x{HEIGHT}_{FPS}fps_{int(SECONDS)}s.mp4"
    if not path.exists():
        t0 = time.perf_counter()
        write_video(path, _frames(), FPS, crf=23, preset="veryfast")
        print(f"built {path} in {time.perf_counter() - t0:.1f} s")
    return path


def naive_baseline(path: Path, fps: float, size: int) -> np.ndarray:
    """Decode every frame to full-resolution RGB, resize in OpenCV, pick the frame on screen per target."""
    import av
    import cv2

    frames, times = [], []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        for f in c.decode(stream):
            img = f.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            scale = size / min(h, w)
            frames.append(cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA))
            times.append(float(f.time))
    n = round(SECONDS * fps)
    idx = np.searchsorted(np.asarray(times), np.arange(n) / fps + 1e-6, side="right") - 1
    return np.stack([frames[i] for i in idx])


def decode_only(path: Path) -> int:
    """Decode every frame without any colour conversion (the decoder's floor)."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in c.decode(stream))


def time_runs(fn, runs: int) -> dict:
    fn()  # warm-up (page cache, codec init)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    shape = (
        list(out.frames.shape)
        if hasattr(out, "frames")
        else (list(out.shape) if hasattr(out, "shape") else out)
    )
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "runs": times,
        "output": shape,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per case (after one warm-up run)")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "foleykit-bench")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    path = build_clip(args.cache_dir)
    info = probe(path)
    cases = {
        "read_video(fps=8, size=224)": lambda: read_video(path, fps=8, size=224),
        "read_video(fps=25, size=128)": lambda: read_video(path, fps=25, size=128),
        "read_video() every frame, full res": lambda: read_video(path),
        "naive: full-res RGB + cv2.resize, fps=8 224": lambda: naive_baseline(path, 8, 224),
        "decode only (no RGB conversion)": lambda: decode_only(path),
    }
    results = {name: time_runs(fn, args.runs) for name, fn in cases.items()}
    full = results["read_video() every frame, full res"]["median_s"]
    print(
        f"\nclip: {info.width}x{info.height} {info.video_codec} {info.native_fps:g} fps, {info.duration:g} s, "
        f"{info.num_frames} frames; {os.cpu_count()} CPUs; {platform.processor() or platform.machine()}; "
        f"{args.runs} runs after 1 warm-up\n"
    )
    print("| case | output | median s | min s | max s | x real time | speed-up vs full decode |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        out = "x".join(map(str, r["output"])) if isinstance(r["output"], list) else f"{r['output']} frames"
        print(
            f"| {name} | {out} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | "
            f"{info.duration / r['median_s']:.1f} | {full / r['median_s']:.2f} |"
        )
    if args.json:
        payload = {
            "clip": {
                "path": str(path),
                "width": info.width,
                "height": info.height,
                "fps": info.native_fps,
                "duration": info.duration,
                "frames": info.num_frames,
            },
            "cpus": os.cpu_count(),
            "runs": args.runs,
            "results": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
