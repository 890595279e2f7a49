"""Contact timing on real footage: predicted onsets against contacts annotated by looking at the frames.

Two annotations ship in ``benchmarks/data`` (each folder: ``source.json``, ``segments.json``, ``contacts.csv``,
protocol in its ``README.md``; another one with ``--annotation``):

- ``vtest`` (the default): OpenCV's ``vtest.avi`` (Debian ``opencv-doc``, BSD; 10 fps, people walking, no
  sound). One soundtrack per video cannot say whose foot landed, so the annotation picks segments and fixed
  crops in which exactly one person walks, and marks each frame where a foot lands.
- ``coin``: ``motion.mov`` of Debian ``node-opencv`` (Expat; a phone video, 30 fps, of a pen striking a coin
  on a table, **with its own recorded sound**): the frames where the pen strikes the coin.

Each segment is a clip (``<name>.mp4``): ``--video SOURCE`` cuts them (:func:`cut_clips`) into a temporary
folder, or into ``--clips DIR`` where they are kept and reused; ``--clips DIR`` alone reads clips cut before.
When the source has its own sound (``"audio": true`` in ``source.json``), the cut also writes the segment's
soundtrack (``<name>.wav``), and then:

- the ``soundtrack`` row scores the onsets of the footage's own sound by the same detector as the model rows
  (what the protocol gives the real sound itself: off-screen sounds count against its precision);
- each ``model:`` row is also scored against the soundtrack with the issue's temporal metrics (onset Acc / AP
  over the whole clip, energy MAE, E-L1 at 16 kHz; ``foleykit.evaluation.metrics``), next to a silent
  output's E-L1, and by the correlation of the two loudness curves (``matching.loudness_curve``).

Rows, each giving onset times per clip:

- ``model:<DIR>``: the model's own soundtrack, ``foleykit generate`` defaults with no prompt (``--seeds``, 0 by
  default; with several seeds every clip counts once per seed), onsets
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
    python benchmarks/eval_real_contacts.py --annotation benchmarks/data/coin \\
        --video /usr/share/doc/node-opencv/examples/files/motion.mov --rows model:...,soundtrack,motion

``vtest.avi`` is in the ``opencv-doc`` package (installed: the path above). Without installing it:
``apt-get download opencv-doc`` and ``dpkg-deb -x opencv-doc_*.deb DIR`` give
``DIR/usr/share/doc/opencv-doc/examples/data/vtest.avi``. ``foleykit data prepare-photos`` keeps the .deb it
downloads in ``$FOLEYKIT_HOME/downloads`` (but not the extracted folder, and never uses ``vtest.avi`` itself).
``motion.mov`` likewise: ``apt-get download node-opencv`` and ``dpkg-deb -x``; it is
``DIR/usr/share/doc/node-opencv/examples/files/motion.mov``.
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
#: Keys of an annotation's ``source.json``: what the annotation was made on.
SOURCE_KEYS = ("name", "frames", "width", "height", "fps", "audio")
#: Rate of the soundtracks the cut writes (``<name>.wav``); the metrics resample to their own rates.
SOUNDTRACK_RATE = 44100


def load_source(folder: Path) -> dict:
    """The annotation's ``source.json``: ``name``, ``frames``, ``width``, ``height``, ``fps`` (frame i of the
    source is at i / fps s), ``audio`` (it has its own sound)."""
    source = json.loads((folder / "source.json").read_text(encoding="utf-8"))
    missing = [k for k in SOURCE_KEYS if k not in source]
    if missing:
        raise ValueError(f"{folder / 'source.json'} lacks {', '.join(missing)}")
    return source


def load_annotation(folder: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Segments and, per segment name, the sorted contact times relative to the segment start (s)."""
    segments = json.loads((folder / "segments.json").read_text(encoding="utf-8"))
    times: dict[str, list[float]] = {s["name"]: [] for s in segments}
    with open(folder / "contacts.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            times[row["segment"]].append(float(row["rel_s"]))
    return segments, {k: np.sort(np.asarray(v, float)) for k, v in times.items()}


def cut_clips(video: Path, segments: list[dict], out: Path, source: dict | None = None) -> dict[str, Path]:
    """Write ``out/<name>.mp4`` per segment: source frames ``[start_frame, end_frame)`` cropped to ``crop``
    ``[x0, y0, x1, y1]``, silent H.264 yuv420p crf 16 at the source's frame rate; clip frame k is source frame
    start_frame + k (decode order) at pts k / fps s. With ``source["audio"]``, also ``out/<name>.wav``: the
    source's own sound over the same span (mono, :data:`SOUNDTRACK_RATE`). Clips already in ``out`` are
    reused. ``source``: the annotation's ``source.json`` (:func:`load_source`), whose frames, width and height
    the video must have; None: any video at 10 fps, no sound.

    Raises:
        ValueError: the source has fewer frames than a segment needs, a crop outside it or of odd size, or
            not the frames and size of ``source``.
    """
    import av

    fps = int(source["fps"]) if source else 10
    sound = bool(source and source["audio"])
    paths = {s["name"]: out / f"{s['name']}.mp4" for s in segments}
    todo = [
        s
        for s in segments
        if not paths[s["name"]].is_file() or (sound and not paths[s["name"]].with_suffix(".wav").is_file())
    ]
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
    if source is not None and (n, w, h) != (source["frames"], source["width"], source["height"]):
        raise ValueError(
            f"{video}: {n} frames of {w}x{h}, but the annotation was made on {source['frames']} frames of "
            f"{source['width']}x{source['height']} ({source['name']})"
        )
    for s in todo:
        x0, y0, x1, y1 = s["crop"]
        if n < s["end_frame"] or x1 > w or y1 > h:
            raise ValueError(
                f"{video} ({n} frames of {w}x{h}) does not hold segment {s['name']}: frames "
                f"{s['start_frame']}-{s['end_frame'] - 1}, crop {s['crop']}"
            )
    out.mkdir(parents=True, exist_ok=True)
    if sound:
        from foleykit.media import read_audio, write_audio

        for s in todo:
            span = (s["start_frame"] / fps, (s["end_frame"] - s["start_frame"]) / fps)
            wav = read_audio(video, sample_rate=SOUNDTRACK_RATE, start=span[0], duration=span[1])
            write_audio(paths[s["name"]].with_suffix(".wav"), wav, SOUNDTRACK_RATE, subtype="FLOAT")
    for s in todo:
        x0, y0, x1, y1 = s["crop"]
        tmp = out / f".{s['name']}.part.mp4"
        with av.open(str(tmp), "w") as oc:
            st = oc.add_stream("libx264", rate=fps)
            st.width, st.height, st.pix_fmt = x1 - x0, y1 - y0, "yuv420p"
            st.time_base = Fraction(1, fps)
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
    model: str, clip: Path, threads: int, init_audio: str | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(onsets of the generated audio, peaks of the predicted envelope, clip seconds, the audio at 16 kHz) for
    one clip; ``init_audio``: generated from that recording (``generate --init-audio``)."""
    import librosa
    import torch

    from foleykit.controls.rms import envelope_peaks
    from foleykit.media import probe
    from foleykit.product.generate import GenerateOptions, generate_audio
    from foleykit.product.runtime import load_model

    torch.set_num_threads(threads)
    pipe = load_model(model)
    res = generate_audio(pipe, clip, GenerateOptions(seed=seed, init_audio=init_audio))
    wav, sr = np.asarray(res.audio, np.float32), int(res.sample_rate)
    wav = wav if wav.ndim == 1 else wav.mean(0)
    onsets = audio_onsets(wav, sr)
    rms = next((c for c in res.controls.values() if c.kind == "rms"), None) if res.controls else None
    peaks = envelope_peaks(rms) if rms is not None else np.zeros(0)  # 6 dB rises
    return onsets, peaks, float(probe(clip).duration), librosa.resample(wav, orig_sr=sr, target_sr=16000)


def audio_onsets(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times (s) of mono audio by the onset metric's detector (at 22.05 kHz)."""
    import librosa

    from foleykit.evaluation.metrics.onset import detect_onsets

    y = librosa.resample(np.asarray(wav, np.float32), orig_sr=sample_rate, target_sr=22050)
    return detect_onsets(y) / 22050.0


def soundtrack_metrics(generated: np.ndarray, soundtrack: np.ndarray) -> dict[str, float]:
    """The issue's temporal metrics of generated audio (16 kHz) against the footage's own sound
    (:data:`SOUNDTRACK_RATE`): onset Acc / AP over the whole clip (reference mode), energy MAE, E-L1 (16 kHz),
    and the correlation of the two loudness curves (``foleykit.evaluation.metrics.matching``)."""
    import librosa

    from foleykit.evaluation.metrics import matching
    from foleykit.evaluation.metrics.energy import energy_mae
    from foleykit.evaluation.metrics.envelope import e_l1
    from foleykit.evaluation.metrics.onset import onset_metrics

    kw = {"reference_sample_rate": SOUNDTRACK_RATE}
    on = onset_metrics(generated, soundtrack, 16000, clip_seconds=None, **kw)
    return {
        "onset_acc": float(on.acc),
        "onset_ap": float(on.ap),
        "energy_mae": energy_mae(generated, soundtrack, 16000, **kw),
        "e_l1": e_l1(generated, soundtrack, 16000, target_sample_rate=16000, **kw),
        "loudness_corr": matching.curve_correlation(
            matching.loudness_curve(generated),
            matching.loudness_curve(librosa.resample(soundtrack, orig_sr=SOUNDTRACK_RATE, target_sr=16000)),
        ),
    }


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
    ap.add_argument(
        "--video", type=Path, default=None, help="the annotation's source video: cut the clips from it"
    )
    ap.add_argument("--clips", type=Path, default=None, help="clip folder (with --video: cache of cut clips)")
    ap.add_argument(
        "--rows", default="motion", help="comma-separated: model:DIR, control:DIR, motion, soundtrack"
    )
    ap.add_argument(
        "--init-audio",
        default=None,
        metavar="SOUND",
        help="model rows start from this recording (generate --init-audio, default strength)",
    )
    ap.add_argument("--seeds", default="0", help="model rows: comma-separated seeds (default: %(default)s)")
    ap.add_argument("--tolerance", type=float, default=0.1)
    ap.add_argument("--motion-z", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None, help="spectrograms of the model rows' audio (PNG)")
    args = ap.parse_args(argv)

    with contextlib.ExitStack() as stack:
        try:
            args.seed_list = [int(x) for x in args.seeds.split(",") if x.strip()]
            if not args.seed_list:
                raise ValueError("--seeds is empty")
            source = load_source(args.annotation)
            segments, truth = load_annotation(args.annotation)
            clips = _clips(args, segments, source, stack)
            tracks = _soundtracks(clips, source, args.rows)
        except ValueError as e:
            print(f"eval_real_contacts: error: {e}", file=sys.stderr)
            return 2
        results = evaluate(args, clips, truth, tracks)
    from foleykit.utils.provenance import describe, machine

    results["machine"] = machine()  # generated-sound scores differ between machines (docs/evaluation.md)
    print(f"machine: {describe(results['machine'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def _clips(
    args: argparse.Namespace, segments: list[dict], source: dict, stack: contextlib.ExitStack
) -> dict[str, Path]:
    """Clip per segment name: cut from ``--video`` (into ``--clips`` or a temporary folder) or read from ``--clips``."""
    if args.video is not None:
        if not args.video.is_file():
            raise ValueError(f"--video {args.video} is not a file")
        out = args.clips or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="real-clips-")))
        return cut_clips(args.video, segments, out, source)
    if args.clips is None:
        raise ValueError(f"give --video SOURCE ({source['name']}: the clips are cut from it) or --clips DIR")
    clips = {s["name"]: args.clips / f"{s['name']}.mp4" for s in segments}
    missing = [p.name for p in clips.values() if not p.is_file()]
    if missing:
        raise ValueError(f"{args.clips} lacks {', '.join(missing)}; give --video SOURCE to cut them")
    return clips


def _soundtracks(clips: dict[str, Path], source: dict, rows: str) -> dict[str, np.ndarray]:
    """Each clip's own sound (``<name>.wav`` beside it) at :data:`SOUNDTRACK_RATE` when the source has sound;
    {} when it has none (then the ``soundtrack`` row is refused)."""
    import soundfile as sf

    if not source["audio"]:
        if "soundtrack" in rows.split(","):
            raise ValueError(
                f"the soundtrack row needs footage with its own sound; {source['name']} has none"
            )
        return {}
    tracks = {}
    for name, clip in clips.items():
        wav_path = clip.with_suffix(".wav")
        if not wav_path.is_file():
            raise ValueError(f"{wav_path} is missing; give --video SOURCE to cut it")
        wav, sr = sf.read(wav_path, dtype="float32")
        if sr != SOUNDTRACK_RATE:
            raise ValueError(f"{wav_path}: {sr} Hz, expected {SOUNDTRACK_RATE}")
        tracks[name] = wav if wav.ndim == 1 else wav.mean(1)
    return tracks


def _row_onsets(
    args: argparse.Namespace, row: str, name: str, clip: Path, tracks: dict, cache: dict
) -> list[tuple[np.ndarray, float, np.ndarray | None]]:
    """(onsets, clip seconds, generated audio at 16 kHz or None) of a row on one clip, once per seed for the
    model and control rows."""
    if row.startswith(("model:", "control:")):
        model = row.split(":", 1)[1]
        out = []
        for seed in args.seed_list:
            key = (model, name, seed)
            if key not in cache:
                cache[key] = model_onsets(model, clip, args.threads, args.init_audio, seed)
            onsets, peaks, dur, wav = cache[key]
            out.append((onsets, dur, wav) if row.startswith("model:") else (peaks, dur, None))
            if row.startswith("control:"):
                break  # the predicted envelope does not depend on the seed
        return out
    if row == "motion":
        return [(motion_onsets(clip, args.motion_z), _duration(clip), None)]
    if row == "soundtrack":
        wav = tracks[name]
        return [(audio_onsets(wav, SOUNDTRACK_RATE), len(wav) / SOUNDTRACK_RATE, None)]
    raise SystemExit(f"unknown row {row!r}")


def evaluate(
    args: argparse.Namespace,
    clips: dict[str, Path],
    truth: dict[str, np.ndarray],
    tracks: dict[str, np.ndarray] | None = None,
) -> dict[str, dict]:
    """Scores per row (see the module docstring), printed one line per row; with soundtracks a second line per
    model row (its metrics against them)."""
    tracks = tracks or {}
    results: dict[str, dict] = {}
    cache: dict[tuple, tuple] = {}
    audio: dict[str, dict[str, np.ndarray]] = {}
    if tracks:
        from foleykit.evaluation.metrics.envelope import e_l1

        silent = {
            n: e_l1(
                np.zeros(16000), w, 16000, reference_sample_rate=SOUNDTRACK_RATE, target_sample_rate=16000
            )
            for n, w in tracks.items()
        }
        results["silent_output_e_l1"] = float(np.mean(list(silent.values())))
        print(f"{'silent output':40s} E-L1 {results['silent_output_e_l1']:.4f} against the soundtracks")
    for row in [r for r in args.rows.split(",") if r]:
        per_clip, hits, n_pred, n_true, chance = {}, 0, 0, 0, 0.0
        against: list[dict[str, float]] = []
        for name, clip in clips.items():
            t = truth[name]
            for k, (pred, dur, wav) in enumerate(_row_onsets(args, row, name, clip, tracks, cache)):
                h = match(pred, t, args.tolerance)
                key = name if k == 0 else f"{name}#seed{args.seed_list[k]}"
                per_clip[key] = {"onsets": [round(float(x), 3) for x in pred], **prf(h, len(pred), len(t))}
                hits, n_pred, n_true = hits + h, n_pred + len(pred), n_true + len(t)
                chance += chance_hits(len(pred), t, dur, args.tolerance)
                if wav is not None and k == 0:
                    audio.setdefault(row.split(":", 1)[1], {})[name] = wav
                if wav is not None and name in tracks:
                    m = soundtrack_metrics(wav, tracks[name])
                    per_clip[key]["soundtrack"] = m
                    against.append(m)
        res = {**prf(hits, n_pred, n_true), "predicted": n_pred, "contacts": n_true}
        res["chance"] = prf(chance, n_pred, n_true)
        if against:
            res["soundtrack"] = {k: float(np.mean([m[k] for m in against])) for k in against[0]}
        results[row] = {**res, "clips": per_clip}
        c = res["chance"]
        print(
            f"{row:40s} P {res['precision']:.3f} R {res['recall']:.3f} F1 {res['f1']:.3f} "
            f"({n_pred} onsets, {n_true} contacts) | same count at random times: "
            f"P {c['precision']:.3f} R {c['recall']:.3f} F1 {c['f1']:.3f}",
            flush=True,
        )
        if against:
            m = res["soundtrack"]
            print(
                f"{'':40s} against the soundtrack: onset Acc {m['onset_acc']:.3f} AP {m['onset_ap']:.3f} "
                f"energy MAE {m['energy_mae']:.3f} E-L1 {m['e_l1']:.4f} loudness corr "
                f"{m['loudness_corr']:.3f} ({len(against)} clip x seed)",
                flush=True,
            )
    if args.png and audio:
        plot_spectrograms(audio, truth, args.png, args.annotation.name)
    return results


def plot_spectrograms(
    audio: dict[str, dict[str, np.ndarray]], truth: dict[str, np.ndarray], png: Path, title: str = "vtest"
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
    axes[0].set_title(f"generated audio on the {title} clips (cyan: annotated contacts)", fontsize=7)
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
