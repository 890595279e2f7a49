"""Contact timing on real footage: predicted onsets against foot contacts annotated by looking at the frames.

The footage is OpenCV's ``vtest.avi`` (Debian ``opencv-doc``, BSD; 10 fps, people walking, no sound). One
soundtrack per video cannot say whose foot landed, so the annotation (``ANNOT/segments.json`` +
``ANNOT/contacts.csv``, protocol in ``ANNOT/README.md``) picks segments and fixed crops in which exactly
one person walks, and marks each frame where a foot lands. Each crop is a clip (``CLIPS/<name>.mp4``).

Rows, each giving onset times per clip:

- ``model:<DIR>``: the model's own soundtrack, ``foleykit generate`` defaults with no prompt (seed 0), onsets
  of the generated audio by the onset metric's detector (``librosa.onset.onset_detect``, delta 0.3, 22.05
  kHz: :func:`foleykit.evaluation.metrics.onset.detect_onsets`);
- ``control:<DIR>``: peaks of the RMS envelope the model predicts from the picture (no audio generated):
  local maxima of the decoded envelope at least 6 dB above the minimum since the previous peak;
- ``motion``: the optical-flow heuristic: peaks of the AV-Align flow trajectory
  (:func:`foleykit.controls.motion.flow_trajectory`), at least ``--motion-z`` standard deviations high.

Scores per row over all clips: precision, recall and F1 of one-to-one matches within ``--tolerance`` seconds
(0.1 s = one frame at 10 fps), closest pairs first; every row is shown next to chance: the same number of
onsets per clip at uniformly random times (mean of 200 seeded draws).

    python benchmarks/eval_real_contacts.py --annotation ANNOT --clips CLIPS \\
        --rows model:src/foleykit/weights/foleykit-demo,model:OLD,control:...,motion --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np


def load_annotation(folder: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Segments and, per segment name, the sorted contact times relative to the segment start (s)."""
    segments = json.loads((folder / "segments.json").read_text(encoding="utf-8"))
    times: dict[str, list[float]] = {s["name"]: [] for s in segments}
    with open(folder / "contacts.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            times[row["segment"]].append(float(row["rel_s"]))
    return segments, {k: np.sort(np.asarray(v, float)) for k, v in times.items()}


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


def model_onsets(model: str, clip: Path, threads: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(onsets of the generated audio, peaks of the predicted envelope, clip seconds) for one clip."""
    import librosa
    import torch

    from foleykit.evaluation.metrics.onset import detect_onsets
    from foleykit.media import probe
    from foleykit.product.generate import GenerateOptions, generate_audio
    from foleykit.product.runtime import load_model

    torch.set_num_threads(threads)
    pipe = load_model(model)
    res = generate_audio(pipe, clip, GenerateOptions(seed=0))
    wav, sr = np.asarray(res.audio, np.float32), int(res.sample_rate)
    wav = wav if wav.ndim == 1 else wav.mean(0)
    y = librosa.resample(wav, orig_sr=sr, target_sr=22050)
    onsets = detect_onsets(y) / 22050.0
    rms = next((c for c in res.controls.values() if c.kind == "rms"), None) if res.controls else None
    peaks = envelope_peaks(rms) if rms is not None else np.zeros(0)
    return onsets, peaks, float(probe(clip).duration)


def envelope_peaks(control, peak_db: float = 6.0) -> np.ndarray:
    """Times of local maxima of an RMS envelope that rise ``peak_db`` above the minimum since the last peak."""
    v = 20 * np.log10(np.maximum(np.asarray(control.values, float).reshape(-1), 1e-5))
    out, low = [], v[0] if len(v) else 0.0
    for i in range(1, len(v) - 1):
        low = min(low, v[i])
        if v[i] >= v[i - 1] and v[i] > v[i + 1] and v[i] - low >= peak_db:
            out.append(control.start + (i + 0.5) / control.rate)
            low = v[i]
    return np.asarray(out)


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
    ap.add_argument("--annotation", required=True, type=Path)
    ap.add_argument("--clips", required=True, type=Path)
    ap.add_argument("--rows", default="motion", help="comma-separated: model:DIR, control:DIR, motion")
    ap.add_argument("--tolerance", type=float, default=0.1)
    ap.add_argument("--motion-z", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    segments, truth = load_annotation(args.annotation)
    clips = {s["name"]: args.clips / f"{s['name']}.mp4" for s in segments}
    results: dict[str, dict] = {}
    cache: dict[str, dict[str, tuple]] = {}
    for row in [r for r in args.rows.split(",") if r]:
        per_clip, hits, n_pred, n_true, chance = {}, 0, 0, 0, 0.0
        for name, clip in clips.items():
            t = truth[name]
            if row.startswith(("model:", "control:")):
                model = row.split(":", 1)[1]
                if name not in cache.setdefault(model, {}):
                    cache[model][name] = model_onsets(model, clip, args.threads)
                onsets, peaks, dur = cache[model][name]
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
        c = res["chance"]
        print(
            f"{row:40s} P {res['precision']:.3f} R {res['recall']:.3f} F1 {res['f1']:.3f} "
            f"({n_pred} onsets, {n_true} contacts) | same count at random times: "
            f"P {c['precision']:.3f} R {c['recall']:.3f} F1 {c['f1']:.3f}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def chance_hits(k: int, truth: np.ndarray, dur: float, tolerance: float, draws: int = 200) -> float:
    """Mean number of matches of ``k`` onsets at uniformly random times in ``[0, dur]`` (seeded draws)."""
    rng = np.random.default_rng(0)
    return float(np.mean([match(np.sort(rng.uniform(0, dur, k)), truth, tolerance) for _ in range(draws)]))


def _duration(clip: Path) -> float:
    from foleykit.media import probe

    return float(probe(clip).duration)


if __name__ == "__main__":
    sys.exit(main())
