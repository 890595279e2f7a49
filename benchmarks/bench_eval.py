"""Benchmark of ``foleykit eval``: N synthetic ten-second clip pairs (+ videos), default metrics.

Makes N generated / reference audio pairs (click tracks with noise bursts at random times, 16 kHz) and N
moving-square videos (25 fps), runs the suite with every default metric (AV-Align, AA-Align, onsets, E-L1,
RMS classes, energy MAE, FD/FAD/KL/IS with the packaged aisfx embedder) and reports files/s and the
projected wall time for 1,000 clips. ``--breakdown`` also times each metric family alone on a few files
(one process) to show where the time goes.

    python benchmarks/bench_eval.py --n 40 --workers 2 --breakdown
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_data(
    root: Path, n: int, *, seconds: float, fps: float, size: tuple[int, int], seed: int = 0
) -> None:
    """N generated/reference pairs and videos named clip_000 ... in root/{gen,ref,vid}."""
    from foleykit.media import write_audio
    from foleykit.testing import make_click_track, make_moving_square_video

    rng = np.random.default_rng(seed)
    sr = 16000
    for d in ("gen", "ref", "vid"):
        (root / d).mkdir(parents=True, exist_ok=True)
    n_frames = round(seconds * fps)
    for i in range(n):
        moves = np.sort(rng.choice(np.arange(5, n_frames - 5, 8), size=6, replace=False))
        times = moves / fps
        ref = make_click_track(times, sample_rate=sr, duration=seconds)
        jitter = np.clip(times + rng.normal(0, 0.03, times.size), 0, seconds - 0.1)
        gen = make_click_track(jitter[rng.random(times.size) < 0.8], sample_rate=sr, duration=seconds)
        for y in (ref, gen):
            y += (0.01 * rng.standard_normal(y.size)).astype(np.float32)  # room noise
        write_audio(root / "ref" / f"clip_{i:03d}.wav", ref, sr)
        write_audio(root / "gen" / f"clip_{i:03d}.wav", gen, sr)
        make_moving_square_video(
            root / "vid" / f"clip_{i:03d}.mp4",
            fps=fps,
            size=size,
            duration=seconds,
            move_frames=[int(m) for m in moves],
        )


def breakdown(root: Path, k: int) -> dict[str, float]:
    """Seconds per file of each metric family alone (in this process, after a warm-up run)."""
    from foleykit.evaluation import evaluate

    names = ["av_align", "aa_align", "onset", "e_l1", "rms_acc", "energy_mae", "fd,fad,kl,is"]
    gen, ref, vid = (sorted((root / d).iterdir())[:k] for d in ("gen", "ref", "vid"))
    tmp = {d: Path(tempfile.mkdtemp(prefix=f"bench-{d}-")) for d in ("gen", "ref", "vid")}
    for d, files in zip(("gen", "ref", "vid"), (gen, ref, vid), strict=True):
        for f in files:
            (tmp[d] / f.name).symlink_to(f)
    out = {}
    evaluate(str(tmp["gen"]), str(tmp["ref"]), str(tmp["vid"]), metrics="aa_align,fd", cache=False)  # warm-up
    for m in names:
        t = time.perf_counter()
        evaluate(str(tmp["gen"]), str(tmp["ref"]), str(tmp["vid"]), metrics=m, cache=False)
        out[m] = (time.perf_counter() - t) / k
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="number of clip pairs (and videos)")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip duration")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--size", default="256x192", help="video WxH")
    ap.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    ap.add_argument("--breakdown", action="store_true", help="also time each metric family alone")
    ap.add_argument("--data", help="reuse / keep the synthetic data in this folder")
    ap.add_argument("--no-cache", action="store_true", help="do not reuse cached video peaks / embeddings")
    args = ap.parse_args(argv)

    from foleykit.evaluation import evaluate

    w, h = (int(v) for v in args.size.lower().split("x"))
    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="bench-eval-"))
    if not (root / "gen").is_dir() or len(list((root / "gen").iterdir())) < args.n:
        t = time.perf_counter()
        make_data(root, args.n, seconds=args.seconds, fps=args.fps, size=(w, h))
        print(
            f"made {args.n} pairs + videos in {time.perf_counter() - t:.1f} s under {root}", file=sys.stderr
        )

    t = time.perf_counter()
    report = evaluate(
        str(root / "gen"),
        str(root / "ref"),
        str(root / "vid"),
        workers=args.workers,
        progress=True,
        cache=not args.no_cache,
    )
    elapsed = time.perf_counter() - t
    rate = report.config["inputs"]["num_items"] / elapsed
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}"
    )
    print(
        f"clips: {args.n} x {args.seconds:g} s audio pairs + {w}x{h} {args.fps:g} fps videos; workers {args.workers}"
    )
    print(f"metrics: {', '.join(report.metrics)}")
    print(
        f"wall time: {elapsed:.1f} s (includes starting {args.workers} worker processes and loading aisfx); "
        f"cache: {report.config['cache']['hits']} hits in {report.config['cache']['dir']}"
    )
    print(f"throughput: {rate:.2f} files/s -> projected for 1,000 clips: {1000 / rate / 60:.1f} min")
    print(report.to_markdown())
    if args.breakdown:
        k = min(4, args.n)
        for m, s in breakdown(root, k).items():
            print(f"  {m:>14}: {s:.2f} s per file (1 process, {k} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
