"""Contact timing on real footage: predicted onsets against foot contacts annotated by looking at the frames.

The footage is OpenCV's ``vtest.avi`` (Debian ``opencv-doc``, BSD; 10 fps, people walking, no sound). One
soundtrack per video cannot say whose foot landed, so the annotation (``benchmarks/data/vtest``:
``segments.json`` + ``contacts.csv``, protocol in ``README.md``; another one with ``--annotation``) picks
segments and fixed crops in which exactly one person walks, and marks each frame where a foot lands. Each
crop is a clip (``<name>.mp4``): ``--video vtest.avi`` cuts them (:func:`cut_clips`) into a temporary
folder, or into ``--clips DIR`` where they are kept and reused; ``--clips DIR`` alone reads clips cut before.

Rows, each giving onset times per clip:

- ``model:<DIR>``: the model's own soundtrack, ``foleykit generate`` defaults with no prompt (seed 0), onsets
  of the generated audio by the onset metric's detector (``librosa.onset.onset_detect``, delta 0.3, 22.05
  kHz: :func:`foleykit.evaluation.metrics.onset.detect_onsets`); with ``--init-audio SOUND`` generated from
  that recording (``foleykit generate --init-audio``, the sound designer's route to WHAT);
- ``control:<DIR>``: peaks of the RMS envelope the model predicts from the picture (no audio generated):
  local maxima of the decoded envelope at least 6 dB above the minimum since the previous peak;
- ``motion``: the optical-flow heuristic: peaks of the AV-Align flow trajectory
  (:func:`foleykit.controls.motion.flow_trajectory`), at least ``--motion-z`` standard deviations high.

Scores per row over all clips: precision, recall and F1 of one-to-one matches within ``--tolerance`` seconds
(0.1 s = one frame at 10 fps), closest pairs first; every row is shown next to chance: the same number of
onsets per clip at uniformly random times (mean of 200 seeded draws).

    python benchmarks/eval_real_contacts.py --video /usr/share/doc/opencv-doc/examples/data/vtest.avi \\
        --rows model:src/foleykit/weights/foleykit-demo,model:OLD,control:...,motion --json out.json

``vtest.avi`` is in the ``opencv-doc`` package (installed: the path above). Without installing it:
``apt-get download opencv-doc`` and ``dpkg-deb -x opencv-doc_*.deb DIR`` give
``DIR/usr/share/doc/opencv-doc/examples/data/vtest.avi``. ``foleykit data prepare-photos`` keeps the .deb it
downloads in ``$FOLEYKIT_HOME/downloads`` (but not the extracted folder, and never uses ``vtest.avi`` itself).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

DEFAULT_ANNOTATION = Path(__file__).resolve().parent / "data" / "vtest"
#: The source the default annotation was made on: frames, width, height.
VTEST = (795, 768, 576)
FPS = 10


def load_annotation(folder: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Segments and, per segment name, the sorted contact times relative to the segment start (s)."""
    segments = json.loads((folder / "segments.json").read_text(encoding="utf-8"))
    times: dict[str, list[float]] = {s["name"]: [] for s in segments}
    with open(folder / "contacts.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            times[row["segment"]].append(float(row["rel_s"]))
    return segments, {k: np.sort(np.asarray(v, float)) for k, v in times.items()}


def cut_clips(
    video: Path, segments: list[dict], out: Path, expect: tuple[int, int, int] | None = None
) -> dict[str, Path]:
    """Write ``out/<name>.mp4`` per segment: source frames ``[start_frame, end_frame)`` cropped to ``crop``
    ``[x0, y0, x1, y1]``, silent H.264 yuv420p crf 16 at 10 fps; clip frame k is source frame start_frame + k
    (decode order) at pts k/10 s. Clips already in ``out`` are reused. ``expect`` = (frames, width, height)
    the source must have.

    Raises:
        ValueError: the source has fewer frames than a segment needs, a crop outside it or of odd size, or
            not the ``expect``-ed frames and size.
    """
    import av

    paths = {s["name"]: out / f"{s['name']}.mp4" for s in segments}
    todo = [s for s in segments if not paths[s["name"]].is_file()]
    if not todo:
        return paths
    for s in todo:
        x0, y0, x1, y1 = s["crop"]
        if (x1 - x0) % 2 or (y1 - y0) % 2 or x1 <= x0 or y1 <= y0:
            raise ValueError(
                f"segment {s['name']}: crop {s['crop']} must have a positive, even width and height"
            )
    crops: dict[str, list[np.ndarray]] = {s["name"]: [] for s in todo}
    n, w, h = 0, 0, 0
    with av.open(str(video)) as c:
        for n, f in enumerate(c.decode(video=0), 1):
            w, h = f.width, f.height
            live = [s for s in todo if s["start_frame"] <= n - 1 < s["end_frame"]]
            if live:
                rgb = f.to_ndarray(format="rgb24")
                for s in live:
                    x0, y0, x1, y1 = s["crop"]
                    crops[s["name"]].append(rgb[y0:y1, x0:x1].copy())
    if expect is not None and (n, w, h) != tuple(expect):
        raise ValueError(
            f"{video}: {n} frames of {w}x{h}, but the annotation was made on {expect[0]} frames of "
            f"{expect[1]}x{expect[2]} (OpenCV's vtest.avi)"
        )
    for s in todo:
        x0, y0, x1, y1 = s["crop"]
        if n < s["end_frame"] or x1 > w or y1 > h:
            raise ValueError(
                f"{video} ({n} frames of {w}x{h}) does not hold segment {s['name']}: frames "
                f"{s['start_frame']}-{s['end_frame'] - 1}, crop {s['crop']}"
            )
    out.mkdir(parents=True, exist_ok=True)
    for s in todo:
        x0, y0, x1, y1 = s["crop"]
        tmp = out / f".{s['name']}.part.mp4"
        with av.open(str(tmp), "w") as oc:
            st = oc.add_stream("libx264", rate=FPS)
            st.width, st.height, st.pix_fmt = x1 - x0, y1 - y0, "yuv420p"
            st.time_base = Fraction(1, FPS)
            st.options = {"crf": "16", "preset": "medium", "g": "10"}
            for k, rgb in enumerate(crops[s["name"]]):
                vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                vf.pts = k
                oc.mux(st.encode(vf))
            oc.mux(st.encode())
        os.replace(tmp, paths[s["name"]])
    return paths


def match(pred: np.ndarray, truth: np.ndarray, tolerance: float) -> int:
    """Number of one-to-one matches within ``tolerance``, closest pairs first."""
    pairs = sorted(
        (abs(p - t), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth) if abs(p - t) <= tolerance
    )
    used_p, used_t, n = set(), set(), 0
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            n += 1
    return n


def prf(hits: int, n_pred: int, n_true: int) -> dict[str, float]:
    p = hits / n_pred if n_pred else 0.0
    r = hits / n_true if n_true else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def model_onsets(
    model: str, clip: Path, threads: int, init_audio: str | None = None
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(onsets of the generated audio, peaks of the predicted envelope, clip seconds, the audio at 16 kHz) for
    one clip; ``init_audio``: generated from that recording (``generate --init-audio``)."""
    import librosa
    import torch

    from foleykit.controls.rms import envelope_peaks
    from foleykit.evaluation.metrics.onset import detect_onsets
    from foleykit.media import probe
    from foleykit.product.generate import GenerateOptions, generate_audio
    from foleykit.product.runtime import load_model

    torch.set_num_threads(threads)
    pipe = load_model(model)
    res = generate_audio(pipe, clip, GenerateOptions(seed=0, init_audio=init_audio))
    wav, sr = np.asarray(res.audio, np.float32), int(res.sample_rate)
    wav = wav if wav.ndim == 1 else wav.mean(0)
    y = librosa.resample(wav, orig_sr=sr, target_sr=22050)
    onsets = detect_onsets(y) / 22050.0
    rms = next((c for c in res.controls.values() if c.kind == "rms"), None) if res.controls else None
    peaks = envelope_peaks(rms) if rms is not None else np.zeros(0)  # 6 dB rises
    return onsets, peaks, float(probe(clip).duration), librosa.resample(wav, orig_sr=sr, target_sr=16000)


def motion_onsets(clip: Path, z: float) -> np.ndarray:
    """Peaks of the AV-Align flow trajectory higher than mean + z * std (the optical-flow heuristic)."""
    from scipy.signal import find_peaks

    from foleykit.controls.motion import flow_trajectory
    from foleykit.media import read_video

    v = read_video(clip)
    traj = np.asarray(flow_trajectory(v.frames), float)
    idx, _ = find_peaks(traj, height=traj.mean() + z * traj.std())
    return np.asarray(v.timestamps)[idx]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--annotation", type=Path, default=DEFAULT_ANNOTATION, help="default: %(default)s")
    ap.add_argument("--video", type=Path, default=None, help="the source vtest.avi: cut the clips from it")
    ap.add_argument("--clips", type=Path, default=None, help="clip folder (with --video: cache of cut clips)")
    ap.add_argument("--rows", default="motion", help="comma-separated: model:DIR, control:DIR, motion")
    ap.add_argument(
        "--init-audio",
        default=None,
        metavar="SOUND",
        help="model rows start from this recording (generate --init-audio, default strength)",
    )
    ap.add_argument("--tolerance", type=float, default=0.1)
    ap.add_argument("--motion-z", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None, help="spectrograms of the model rows' audio (PNG)")
    args = ap.parse_args(argv)

    segments, truth = load_annotation(args.annotation)
    with contextlib.ExitStack() as stack:
        try:
            clips = _clips(args, segments, stack)
        except ValueError as e:
            print(f"eval_real_contacts: error: {e}", file=sys.stderr)
            return 2
        results = evaluate(args, clips, truth)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def _clips(args: argparse.Namespace, segments: list[dict], stack: contextlib.ExitStack) -> dict[str, Path]:
    """Clip per segment name: cut from ``--video`` (into ``--clips`` or a temporary folder) or read from ``--clips``."""
    if args.video is not None:
        if not args.video.is_file():
            raise ValueError(f"--video {args.video} is not a file")
        out = args.clips or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vtest-clips-")))
        expect = VTEST if args.annotation.resolve() == DEFAULT_ANNOTATION else None
        return cut_clips(args.video, segments, out, expect)
    if args.clips is None:
        raise ValueError("give --video vtest.avi (clips are cut from it) or --clips DIR (clips cut before)")
    clips = {s["name"]: args.clips / f"{s['name']}.mp4" for s in segments}
    missing = [p.name for p in clips.values() if not p.is_file()]
    if missing:
        raise ValueError(f"{args.clips} lacks {', '.join(missing)}; give --video vtest.avi to cut them")
    return clips


def evaluate(
    args: argparse.Namespace, clips: dict[str, Path], truth: dict[str, np.ndarray]
) -> dict[str, dict]:
    """Scores per row (see the module docstring), printed one line per row."""
    results: dict[str, dict] = {}
    cache: dict[str, dict[str, tuple]] = {}
    audio: dict[str, dict[str, np.ndarray]] = {}
    for row in [r for r in args.rows.split(",") if r]:
        per_clip, hits, n_pred, n_true, chance = {}, 0, 0, 0, 0.0
        for name, clip in clips.items():
            t = truth[name]
            if row.startswith(("model:", "control:")):
                model = row.split(":", 1)[1]
                if name not in cache.setdefault(model, {}):
                    cache[model][name] = model_onsets(model, clip, args.threads, args.init_audio)
                onsets, peaks, dur, _ = cache[model][name]
                pred = onsets if row.startswith("model:") else peaks
            elif row == "motion":
                pred, dur = motion_onsets(clip, args.motion_z), _duration(clip)
            else:
                raise SystemExit(f"unknown row {row!r}")
            h = match(pred, t, args.tolerance)
            per_clip[name] = {"onsets": [round(float(x), 3) for x in pred], **prf(h, len(pred), len(t))}
            hits, n_pred, n_true = hits + h, n_pred + len(pred), n_true + len(t)
            chance += chance_hits(len(pred), t, dur, args.tolerance)
        res = {**prf(hits, n_pred, n_true), "predicted": n_pred, "contacts": n_true}
        res["chance"] = prf(chance, n_pred, n_true)
        results[row] = {**res, "clips": per_clip}
        if args.png and row.startswith("model:"):
            audio[row.split(":", 1)[1]] = {n: v[3] for n, v in cache[row.split(":", 1)[1]].items()}
        c = res["chance"]
        print(
            f"{row:40s} P {res['precision']:.3f} R {res['recall']:.3f} F1 {res['f1']:.3f} "
            f"({n_pred} onsets, {n_true} contacts) | same count at random times: "
            f"P {c['precision']:.3f} R {c['recall']:.3f} F1 {c['f1']:.3f}",
            flush=True,
        )
    if args.png and audio:
        plot_spectrograms(audio, truth, args.png)
    return results


def plot_spectrograms(
    audio: dict[str, dict[str, np.ndarray]], truth: dict[str, np.ndarray], png: Path
) -> None:
    """One panel per (clip, model): log-mel of the generated audio (16 kHz), cyan lines at the annotated
    contacts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from foleykit.audio import log_mel

    names = sorted(truth)
    models = list(audio)
    fig, axes = plt.subplots(len(names) * len(models), 1, figsize=(7, 1.1 * len(names) * len(models)))
    axes = np.atleast_1d(axes)
    for i, name in enumerate(names):
        for j, model in enumerate(models):
            ax = axes[i * len(models) + j]
            wav = audio[model][name]
            mel = np.asarray(log_mel(wav, 16000))
            extent = (0, len(wav) / 16000, 0, mel.shape[0])
            ax.imshow(mel, origin="lower", aspect="auto", extent=extent, vmin=-11.5, vmax=2, cmap="magma")
            for t in truth[name]:
                ax.axvline(t, color="c", lw=0.8, alpha=0.8)
            ax.set_ylabel(f"{name[:12]}\n{Path(model).name[:14]}", fontsize=6)
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
    axes[0].set_title("generated audio on vtest.avi crops (cyan: annotated foot contacts)", fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    plt.close(fig)
    print(png)


def chance_hits(k: int, truth: np.ndarray, dur: float, tolerance: float, draws: int = 200) -> float:
    """Mean number of matches of ``k`` onsets at uniformly random times in ``[0, dur]`` (seeded draws)."""
    rng = np.random.default_rng(0)
    return float(np.mean([match(np.sort(rng.uniform(0, dur, k)), truth, tolerance) for _ in range(draws)]))


def _duration(clip: Path) -> float:
    from foleykit.media import probe

    return float(probe(clip).duration)


if __name__ == "__main__":
    sys.exit(main())
