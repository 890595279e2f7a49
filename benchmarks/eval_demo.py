"""Three-row evaluation of the shipped demonstrator on the held-out synthetic test split (its model card:
docs/demonstrator_model_card.md).

Rows (same clips, seeds, prompts and sampling steps; ReWaS Table 5 style):

- ``demo``: the demonstrator as shipped: the RMS control is predicted from the video (RMS-Mapper);
- ``nocontrol``: the same model with the RMS adapter off (weight 0): text/video-to-audio only;
- ``gtcontrol``: the RMS control measured on the ground-truth audio (the upper bound).

Commands::

    python benchmarks/eval_demo.py generate --row demo --data SYNTH/test --out OUT [--model DIR] [--limit N]
        [--control-scale W]     # adapter weight of the demo / gtcontrol rows (choose it on SYNTH/validation)
        [--follow-envelope S]   # demo / gtcontrol rows with the envelope-following gain stage (-fS suffix)
        [--guidance G]          # classifier-free guidance scale instead of the model's (-gG suffix)
        [--reference category]  # reference sound: a training recording of the clip's category (-refcat)
        [--init category [--init-strength S]]  # start from such a recording (init_audio; -initcat[-sS])
    python benchmarks/eval_demo.py score --data SYNTH/test --out OUT [--rows demo,nocontrol,gtcontrol]
        [--compare demo:nocontrol,demo:gtcontrol]   # paired bootstrap 95% intervals of the differences
    python benchmarks/eval_demo.py mapper --store STORE [--model DIR]         # RMS-Mapper acc@1/5/10, tol
        [--silence-threshold T | --decoding expected|median] [--expansion G] [--proxy]  # decoded-class
                                  # accuracy, log-RMS L1, per-clip log-RMS correlation with another decoding
                                  # rule; --proxy: envelope-shaped noise scored against the truth (onsets,
                                  # energy MAE, E-L1 against the clip's own audio and a silent output's)
        [--by-scene]              # each score also per scene kind of the clips (footsteps, animal, ...)
    python benchmarks/eval_demo.py spectrograms --data SYNTH/test --out OUT --clips a,b,c,d --png-dir docs/images
    python benchmarks/eval_demo.py ceiling --data SYNTH/test [--model DIR] [--leave-one-out]   # category
                                  # accuracy of known-answer references: a bank recording of the clip's
                                  # category as it is, looped, spotted on the truth's envelope, through the
                                  # VAE+vocoder, the vocoder or Griffin-Lim alone; and of the ground truth
        [--category-from probe --probe-store STORE]  # the recordings of the category the picture's
                                  # features name (probe_category.py's probe fitted on STORE's train split)
        [--paired-with OUT/ROW]   # each row's category hits paired against a generated row's
    python benchmarks/eval_demo.py prompts --data SYNTH/validation [--limit 16] [--model DIR]   # prompt swap:
                                  # does the caption move the sound towards its category (see prompts())

``generate`` writes ``OUT/<row>/<stem>.wav`` (16 kHz) and ``OUT/<row>/timings.json``. ``score`` computes with
``foleykit.evaluation.evaluate`` (reference protocols; onsets in strict mode over the whole 10 s clip):
Onset Acc / AP, AV-Align of the generated audio against the test video (and the ground truth's own AV-Align),
energy MAE, E-L1 (with the floor a silent output scores), FD_aisfx, the nearest-category accuracy
(protocol in :func:`category_accuracy`), and whether each clip's sound belongs to its own clip rather than
another (``foleykit.evaluation.metrics.matching``: loudness-curve correlation with its own soundtrack and its
margin over the other clips' soundtracks; the rank of its own soundtrack by aisfx similarity, chance 0.5).
Row differences on the temporal metrics, the category accuracies and those three come with a paired
bootstrap 95% interval over clips (``foleykit.evaluation.paired_difference``): a margin is called clear when
the interval excludes 0.
Prompts: each clip's caption (``--prompt none`` generates without text, as the README demo does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROWS = ("demo", "nocontrol", "gtcontrol")
TEMPORAL = ("onset_acc", "onset_ap", "av_align", "energy_mae", "e_l1")
CATEGORY = ("category_acc", "family_acc")
#: Does each clip's sound belong to its own clip rather than to any other (foleykit.evaluation.metrics.matching):
#: loudness-curve correlation with its own soundtrack, its margin over the other clips' soundtracks, and the
#: rank of its own soundtrack among all by aisfx similarity (0 best, chance 0.5).
MATCH = ("loudness_corr", "loudness_margin", "match_rank")


def _records(data: str, limit: int | None):
    from foleykit.data.manifest import load_records

    recs = load_records(Path(data))
    return recs[:limit] if limit else recs


def _seed(i: int) -> int:
    return 1000 + i


def _category_references(bank: str | None):
    """``(category, i) -> audio``: the i-th (cyclically) training-split recording of the category in the bank
    (split seed 0, ``foleykit data synth``'s default), 16 kHz mono; never a validation or test recording."""
    from foleykit.data.bank import SoundBank, split_bank
    from foleykit.data.ufoai import default_bank_dir
    from foleykit.media import read_audio

    root = Path(bank) if bank else default_bank_dir()
    split = split_bank(SoundBank(root, sample_rate=16000), seed=0)

    def reference(category: str, i: int, *, with_path: bool = False):
        """The audio, or ``(audio, bank-relative path)`` with ``with_path``."""
        files = split.files("train", category)
        if not files:
            raise SystemExit(f"the bank has no training recording of {category!r}")
        audio = np.asarray(read_audio(str(root / files[i % len(files)]), sample_rate=16000))
        return (audio, files[i % len(files)]) if with_path else audio

    return reference


def generate(args: argparse.Namespace) -> None:
    import soundfile as sf
    import torch

    from foleykit.media import read_audio
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    torch.set_num_threads(args.threads)
    pipe = VideoToAudioPipeline.from_pretrained(args.model)
    name = args.row + ("" if args.prompt == "caption" else "-noprompt")
    if args.control_scale is not None and args.row != "nocontrol":
        name += f"-cs{args.control_scale:g}"
    if args.follow_envelope is not None and args.row != "nocontrol":
        name += f"-f{args.follow_envelope:g}"
    if args.guidance is not None:
        name += f"-g{args.guidance:g}"
    uses_bank = "category" in (args.reference, args.init)
    references = _category_references(args.bank) if uses_bank else None
    if args.reference == "category":
        name += "-refcat"
    if args.init == "category":
        name += "-initcat" + (f"-s{args.init_strength:g}" if args.init_strength is not None else "")
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    for i, r in enumerate(_records(args.data, args.limit)):
        if args.shard:
            k, n = (int(v) for v in args.shard.split("/"))
            if i % n != k:
                continue
        f = out / f"{r.key}.wav"
        if f.is_file():
            continue
        kw: dict = {
            "prompt": r.caption if args.prompt == "caption" else None,
            "seed": _seed(i),
            "num_inference_steps": args.steps,
        }
        if args.guidance is not None:
            kw["guidance_scale"] = args.guidance
        if args.follow_envelope is not None and args.row != "nocontrol":
            kw["follow_envelope"] = args.follow_envelope
        if args.row == "nocontrol":
            kw["adapter_weights"] = dict.fromkeys(pipe.adapters, 0.0)
        elif args.control_scale is not None:
            kw["adapter_weights"] = dict.fromkeys(pipe.adapters, args.control_scale)
        if args.row == "gtcontrol":
            kw["control_audio"] = read_audio(r.sidecar_wav, sample_rate=pipe.seq.sample_rate)
            kw["control_audio_sample_rate"] = pipe.seq.sample_rate
        if args.reference == "category":
            kw["reference_audio"] = references(r.category, i)
            kw["reference_sample_rate"] = 16000
        if args.init == "category":
            kw["init_audio"] = references(r.category, i)
            kw["init_sample_rate"] = 16000
            if args.init_strength is not None:
                kw["init_strength"] = args.init_strength
        t0 = time.perf_counter()
        res = pipe(str(r.path), **kw)
        times[r.key] = time.perf_counter() - t0
        sf.write(f, np.asarray(res.audio, np.float32).reshape(-1), res.sample_rate, subtype="FLOAT")
    shard = "-" + args.shard.replace("/", "of") if args.shard else ""
    (Path(args.out) / f"{name}.timings{shard}.json").write_text(json.dumps(times))
    if times:
        print(f"{args.row}: {len(times)} clips, {np.mean(list(times.values())):.2f} s per 10 s clip")


# --- category accuracy -------------------------------------------------------------------------------------
def bank_file_embeddings(bank: str | None, categories: list[str], model) -> dict[str, tuple[str, np.ndarray]]:
    """Bank-relative path -> (category, L2-normalised mean aisfx block embedding) of every file of the given
    categories (all splits of the bank; categories the bank lacks are skipped)."""
    from foleykit.data.bank import SoundBank
    from foleykit.data.ufoai import default_bank_dir
    from foleykit.encoders.audio import aisfx_embed

    b = SoundBank(Path(bank) if bank else default_bank_dir(), sample_rate=16000)
    have = set(b.categories)
    out = {}
    for cat in categories:
        if cat not in have:
            continue
        for e in b.category_files(cat):
            v = aisfx_embed(b.load(e), 16000, model=model).mean(0).numpy()
            out[e.path] = (cat, v / (np.linalg.norm(v) + 1e-9))
    return out


def centroids_of(
    files: dict[str, tuple[str, np.ndarray]], without: str | None = None
) -> tuple[list[str], np.ndarray]:
    """Per-category centroids (the normalised mean of the category's file embeddings), optionally leaving
    one file out."""
    by_cat: dict[str, list[np.ndarray]] = {}
    for path, (cat, v) in files.items():
        if path != without:
            by_cat.setdefault(cat, []).append(v)
    names = list(by_cat)
    cents = [np.mean(by_cat[c], 0) for c in names]
    return names, np.stack([c / (np.linalg.norm(c) + 1e-9) for c in cents])


def bank_centroids(bank: str | None, categories: list[str], model) -> tuple[list[str], np.ndarray]:
    """Per-category centroids of the bank: each sound file's aisfx block embeddings are averaged and
    L2-normalised; a category's centroid is the normalised mean of its files (all splits of the bank)."""
    return centroids_of(bank_file_embeddings(bank, categories, model))


def nearest_category(wav: np.ndarray, names: list[str], cents: np.ndarray, model) -> str:
    """The bank category whose centroid is closest (cosine) to the clip's mean aisfx embedding (16 kHz)."""
    from foleykit.encoders.audio import aisfx_embed

    v = aisfx_embed(np.asarray(wav, np.float32).reshape(-1), 16000, model=model).mean(0).numpy()
    return names[int(np.argmax(cents @ (v / (np.linalg.norm(v) + 1e-9))))]


def category_accuracy(
    wavs: dict[str, np.ndarray],
    truth: dict[str, str],
    names: list[str],
    cents: np.ndarray,
    model,
    per_clip: dict[str, dict[str, float]] | None = None,
    predicted: dict[str, str] | None = None,
    centroids_for=None,
) -> dict[str, float]:
    """Nearest-category accuracy: a clip's aisfx block embeddings (16 kHz input, resampled by the embedder) are
    averaged and L2-normalised; its prediction is the bank category with the highest cosine similarity among
    the categories the test clips have (e.g. footsteps/gravel, animal/dog). ``category_acc``: exact category;
    ``family_acc``: the part before the slash (footsteps / impact / break / animal ...). ``per_clip`` (when
    given) receives ``{"category_acc": {stem: 0/1}, "family_acc": {stem: 0/1}}`` for paired comparisons;
    ``predicted`` (when given) the nearest category per stem; ``centroids_for`` (when given) maps a stem to
    the ``(names, cents)`` that clip is scored against instead of the shared ones (leave-one-out)."""
    hits: dict[str, float] = {}
    fam: dict[str, float] = {}
    for k, wav in wavs.items():
        pred = nearest_category(wav, *(centroids_for(k) if centroids_for else (names, cents)), model)
        if predicted is not None:
            predicted[k] = pred
        hits[k] = float(pred == truth[k])
        fam[k] = float(pred.split("/")[0] == truth[k].split("/")[0])
    if per_clip is not None:
        per_clip.update({"category_acc": hits, "family_acc": fam})
    return {
        "category_acc": float(np.mean(list(hits.values()))),
        "family_acc": float(np.mean(list(fam.values()))),
    }


def score(args: argparse.Namespace) -> None:
    import soundfile as sf

    from foleykit.encoders.audio import load_aisfx
    from foleykit.evaluation import evaluate, paired_difference
    from foleykit.evaluation.metrics.envelope import e_l1

    recs = _records(args.data, args.limit)
    ref_dir, vid_dir = _links(recs, Path(args.out))
    ref = {r.key: sf.read(r.sidecar_wav, dtype="float32")[0] for r in recs}
    truth = {r.key: r.category or "" for r in recs}
    model = load_aisfx()
    cats = sorted(
        {c for c in truth.values()} | set(args.extra_categories.split(",") if args.extra_categories else [])
    )
    names, cents = bank_centroids(args.bank, cats, model)
    metrics = ["onset", "av_align", "energy_mae", "e_l1", "loudness", "fd", "match"]
    table: dict[str, dict[str, float]] = {}
    reports = {}
    hits: dict[str, dict[str, dict[str, float]]] = {}
    gt = evaluate(ref_dir, None, vid_dir, metrics=["av_align"], workers=args.workers)
    table["ground truth"] = {
        "av_align": gt.means()["av_align"],
        **category_accuracy(ref, truth, names, cents, model),
        "n": len(recs),
    }
    # the floor E-L1 puts under every row: a silent output scores the reference's mean envelope (it is
    # peak-normalised per clip), so a row above it places its energy worse than saying nothing at all
    sr_ref = sf.info(str(recs[0].sidecar_wav)).samplerate
    table["silent output"] = {
        "e_l1": float(np.mean([e_l1(np.zeros_like(y), y, sr_ref) for y in ref.values()])),
        "n": len(recs),
    }
    for row in args.rows.split(","):
        folder = Path(args.out) / row
        gen = {
            r.key: sf.read(folder / f"{r.key}.wav", dtype="float32")[0]
            for r in recs
            if (folder / f"{r.key}.wav").is_file()
        }
        if len(gen) < len(recs):
            print(f"{row}: {len(gen)} of {len(recs)} clips generated; scoring those", file=sys.stderr)
        rep = evaluate(
            folder,
            ref_dir,
            vid_dir,
            metrics=metrics,
            onset_mode="strict",
            onset_seconds=None,
            workers=args.workers,
            allow_unpaired=True,
        )
        m = {k: v for k, v in rep.means().items() if v is not None}
        clip_hits: dict[str, dict[str, float]] = {}
        m.update(category_accuracy(gen, truth, names, cents, model, clip_hits))
        m["n"] = len(gen)
        table[row] = m
        reports[row] = rep
        hits[row] = clip_hits
        rep.write_json(Path(args.out) / f"report-{row}.json")
    cols = ["onset_acc", "onset_ap", "av_align", "energy_mae", "e_l1", "fd", *CATEGORY, *MATCH]
    lines = ["| row | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row, m in table.items():
        lines.append(f"| {row} | " + " | ".join(f"{m[c]:.3f}" if c in m else "—" for c in cols) + " |")
    rows = list(reports)
    pairs = (
        [tuple(c.split(":")) for c in args.compare.split(",")]
        if args.compare
        else [(rows[0], r) for r in rows[1:]]
    )
    comparisons = []
    if pairs:
        lines += [
            "",
            (
                "Paired differences over clips (A - B, bootstrap 95% interval; share of clips where A is "
                "better; * = the interval excludes 0):"
            ),
            "",
            "| A - B | " + " | ".join(TEMPORAL + CATEGORY + MATCH) + " |",
            "|---" * (len(TEMPORAL + CATEGORY + MATCH) + 1) + "|",
        ]
    for a, b in pairs:
        cells = []
        for metric in TEMPORAL + CATEGORY + MATCH:
            if metric in CATEGORY:
                d = paired_difference(hits[a][metric], hits[b][metric], metric)
            else:
                d = paired_difference(reports[a].metrics[metric], reports[b].metrics[metric], metric)
            comparisons.append({"a": a, "b": b, **d.to_dict()})
            cells.append(
                f"{d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}] {d.better:.0%}{'*' if d.significant else ''}"
            )
        lines.append(f"| {a} - {b} | " + " | ".join(cells) + " |")
    from foleykit.utils.provenance import describe, machine

    where = machine()  # the generated rows' scores differ between machines (docs/evaluation.md)
    text = "\n".join(lines) + f"\n\nScored on: {describe(where)}"
    print(text)
    (Path(args.out) / "table.md").write_text(text + "\n")
    (Path(args.out) / "table.json").write_text(
        json.dumps(
            {
                "rows": table,
                "comparisons": comparisons,
                "categories": names,
                "clips": len(recs),
                "machine": where,
            },
            indent=1,
        )
    )


def _links(recs, out: Path) -> tuple[Path, Path]:
    """Folders of symbolic links ``OUT/_reference/<stem>.wav`` and ``OUT/_videos/<stem>.mp4`` (file inputs let
    the evaluation cache video peaks and reference embeddings between runs)."""
    ref, vid = out / "_reference", out / "_videos"
    for folder in (ref, vid):
        folder.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            f.unlink()
    for r in recs:
        os.symlink(Path(r.sidecar_wav).resolve(), ref / f"{r.key}.wav")
        os.symlink(Path(r.path).resolve(), vid / f"{r.key}{Path(r.path).suffix}")
    return ref, vid


# --- RMS-Mapper accuracy --------------------------------------------------------------------------------------
def mapper(args: argparse.Namespace) -> None:
    import torch

    from foleykit.controls import classes_to_rms
    from foleykit.data.cache import ArrayDataset, encode_prepared
    from foleykit.evaluation.metrics.envelope import tolerance_accuracy, topk_accuracy
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    torch.set_num_threads(args.threads)
    pipe = VideoToAudioPipeline.from_pretrained(args.model)
    # the prepared video inputs: frames + frozen parts' features (a trainable encoder), else the features
    names = sorted(p.stem for p in (Path(args.store) / args.split).glob("*.npy"))
    video = [n for n in names if n == "frames" or n.startswith("video_part")] or ["video_features"]
    ds = ArrayDataset(args.store, args.split, fields=[*video, *(["audio"] if args.proxy else [])])
    scores, targets, audio = [], [], []
    with torch.no_grad():
        for i in range(len(ds)):
            it = ds[i]
            feats = encode_prepared(pipe.video_encoder, {k: it[k][None] for k in video})
            logits = pipe.predictors["rms"](feats, pipe.seq.num_control_frames)[0]
            scores.append(logits.numpy())
            targets.append(it["rms_class"].numpy())
            if args.proxy:
                audio.append(it["audio"].numpy().reshape(-1))
    s, t = np.concatenate(scores), np.concatenate(targets)
    res = {f"acc@{k}": topk_accuracy(s, t, k) for k in (1, 5, 10)}
    res.update({f"tol{k}": tolerance_accuracy(s.argmax(-1), t, k) for k in (1, 2, 5)})
    # the classes the pipeline actually uses (RMSMapper.decode_classes: its rule and expansion, clip by clip)
    predictor = pipe.predictors["rms"]
    if args.silence_threshold is not None or args.decoding is not None:
        predictor.silence_threshold = None
        predictor.decoding = args.decoding or "argmax"
        predictor.silence_threshold = args.silence_threshold
    if args.expansion is not None:
        predictor.expansion = args.expansion
    d = np.concatenate([predictor.decode_classes(torch.from_numpy(c)).numpy() for c in scores])  # per clip
    log_rms = [np.log(classes_to_rms(c) + 1e-3) for c in (d, t)]
    # per clip: Pearson correlation of the decoded and true log-RMS curves (clips whose decoded curve is flat
    # count as 0: a constant control carries no timing)
    n = pipe.seq.num_control_frames
    corr = []
    for a, b in zip(log_rms[0].reshape(-1, n), log_rms[1].reshape(-1, n)):
        corr.append(float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-6 and b.std() > 1e-6 else 0.0)
    per_clip: dict[str, list[float]] = {}
    if args.proxy:
        res.update(
            _proxy_scores(
                log_rms, n, pipe.seq.control_rate, audio=audio, rate=pipe.seq.sample_rate, per_clip=per_clip
            )
        )
    if args.by_scene:
        per_clip.update(
            clip_log_rms_corr=corr,
            silent_frames_decoded=[float(np.mean(c == 0)) for c in d.reshape(-1, n)],
            silent_frames_true=[float(np.mean(c == 0)) for c in t.reshape(-1, n)],
        )
        res["by_scene"] = _by_scene(_store_scenes(args.store, args.split), per_clip)
    res.update(
        {
            "decoding": predictor.decoding,
            "silence_threshold": predictor.silence_threshold,
            "expansion": predictor.expansion,
            "clip_log_rms_corr": float(np.mean(corr)),
            "decoded_acc": float(np.mean(d == t)),
            "decoded_tol2": tolerance_accuracy(d, t, 2),
            "decoded_log_rms_l1": float(np.mean(np.abs(log_rms[0] - log_rms[1]))),
            "silent_frames_decoded": float(np.mean(d == 0)),
            "silent_frames_true": float(np.mean(t == 0)),
        }
    )
    res["clips"] = len(ds)
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


def _store_scenes(store: str, split: str) -> list[str]:
    """The ``scene`` of each clip of a prepared store's split, in store order, from the clip records of the
    dataset the split was prepared from (``ClipRecord.metadata``; ``unknown`` where a clip has none)."""
    from foleykit.data.cache.arrays import read_store_index
    from foleykit.data.manifest import load_records

    entry = read_store_index(store)["splits"][split]
    records = {r.key: r for r in load_records(entry["source"])}
    return [
        str(records[key].metadata().get("scene", "unknown")) if key in records else "unknown"
        for key in entry["keys"]
    ]


def _by_scene(scenes: list[str], per_clip: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per-clip scores averaged within each scene kind (``{scene: {"clips": n, score: mean}}``)."""
    out: dict[str, dict[str, float]] = {}
    for scene in sorted(set(scenes)):
        rows = [i for i, s in enumerate(scenes) if s == scene]
        out[scene] = {"clips": len(rows)}
        out[scene].update({k: float(np.mean([v[i] for i in rows])) for k, v in per_clip.items()})
    return out


def _proxy_scores(
    log_rms: list[np.ndarray],
    n: int,
    control_rate: float,
    rate: int = 16000,
    audio: list[np.ndarray] | None = None,
    per_clip: dict[str, list[float]] | None = None,
) -> dict:
    """Onset Acc / AP (strict, whole clip) and energy MAE of envelope-shaped noise: the decoded envelope
    against the true one, each imposed on the same white noise. The generator follows a given envelope
    closely (correlation 0.95), so this ranks decoding rules by their timing without running the diffusion.
    With each clip's ``audio`` (at ``rate``): also the E-L1 of the decoded envelope's noise against that audio,
    and of a silent output (E-L1 is peak-normalised: an envelope whose valleys sit too close to its peaks
    scores worse than silence). ``per_clip``: filled with each score's per-clip values (``--by-scene``)."""
    from foleykit.evaluation.metrics.energy import energy_mae
    from foleykit.evaluation.metrics.envelope import e_l1
    from foleykit.evaluation.metrics.onset import onset_metrics

    acc, ap, mae, el1, el1_silent = [], [], [], [], []
    rng = np.random.default_rng(0)
    for k, (a, b) in enumerate(zip(log_rms[0].reshape(-1, n), log_rms[1].reshape(-1, n))):
        samples = int(round(n / control_rate * rate))
        noise = rng.standard_normal(samples).astype(np.float32)
        t = np.arange(samples) / rate * control_rate
        wav = [noise * np.interp(t, np.arange(n), np.exp(c)) for c in (a, b)]
        s = onset_metrics(wav[0], wav[1], rate, mode="strict", clip_seconds=None)
        acc.append(s.acc)
        ap.append(s.ap)
        mae.append(energy_mae(wav[0], wav[1], rate))
        if audio:
            el1.append(e_l1(wav[0], audio[k], rate))
            el1_silent.append(e_l1(np.zeros_like(audio[k]), audio[k], rate))
    if per_clip is not None:
        per_clip.update(proxy_onset_acc=acc, proxy_energy_mae=mae)
        if audio:
            per_clip.update(proxy_e_l1=el1, silent_e_l1=el1_silent)
    out = {
        "proxy_onset_acc": float(np.mean(acc)),
        "proxy_onset_ap": float(np.nanmean(ap)),
        "proxy_energy_mae": float(np.mean(mae)),
    }
    if audio:
        out.update({"proxy_e_l1": float(np.mean(el1)), "silent_e_l1": float(np.mean(el1_silent))})
    return out


# --- what bounds the category accuracy? ------------------------------------------------------------------
#: the rows of ``ceiling``: references made from a bank recording, then the ground truth
CEILING_ROWS = (
    "recording",
    "looped",
    "spotted",
    "resynthesis",
    "spotted_resynthesis",
    "spotted_vocoder",
    "spotted_griffin_lim",
    "ground_truth",
)
#: ceiling rows made from the spotted recording's own mel -> the ``eval_resynthesis`` row that makes them
WAVEFORM_ONLY = {"spotted_vocoder": "vocoder", "spotted_griffin_lim": "griffin-lim"}


def ceiling(args: argparse.Namespace) -> None:
    """The category accuracy (:func:`category_accuracy`, the score's protocol) of known-answer references per
    clip, all made from one training-split bank recording of the clip's own category:

    - ``recording``: the recording as it is (a one-shot of 0.2-1.7 s);
    - ``looped``: the recording looped to the clip's length;
    - ``spotted``: the recording spotted on the ground truth's RMS envelope (a copy at each hit,
      :func:`foleykit.controls.rms.spot_recording`) and brought to that envelope
      (:func:`foleykit.controls.rms.follow_envelope`): the right kind of sound at the right times and levels,
      what a generator that knew WHAT exactly could at best give;
    - ``resynthesis`` / ``spotted_resynthesis``: ``recording`` / ``spotted`` through the model's VAE and
      vocoder (what the codec keeps of a sound's kind);
    - ``spotted_vocoder`` / ``spotted_griffin_lim``: ``spotted``'s own log-mel (no VAE) through the model's
      vocoder / through the weight-free Griffin-Lim inverse (32 iterations): which of the two waveform stages
      loses the kind;

    and the clip's ground-truth soundtrack (``ground_truth``: the events mixed with distractors and the ambience
    bed); with the categories each is most often taken for. ``--leave-one-out``: the recording a reference is
    made from is left out of its category's centroid (otherwise a reference is compared with centroids that
    contain its own file). ``--rows A,B``: make and score only those rows (a codec check needs two of the
    eight; the waveform-only rows cost the most)."""
    import collections

    import soundfile as sf
    import torch

    from foleykit.controls.rms import follow_envelope, rms_envelope, spot_recording
    from foleykit.encoders.audio import load_aisfx
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from eval_resynthesis import resynthesize

    from_bank = CEILING_ROWS[:-1]
    rows = [r.strip() for r in args.rows.split(",")] if args.rows else list(CEILING_ROWS)
    unknown = sorted(set(rows) - set(CEILING_ROWS))
    if unknown:  # before anything is loaded
        raise SystemExit(f"ceiling: unknown rows {unknown}; choose from {list(CEILING_ROWS)}")
    if (args.category_from == "probe") != bool(args.probe_store):
        raise SystemExit("ceiling: --category-from probe and --probe-store STORE go together")
    if args.paired_with and not Path(args.paired_with).is_dir():
        raise SystemExit(f"ceiling: --paired-with {args.paired_with}: no such folder")
    torch.set_num_threads(args.threads)
    recs = _records(args.data, args.limit)
    embedder = load_aisfx()
    files = bank_file_embeddings(args.bank, sorted({r.category for r in recs if r.category}), embedder)
    names, cents = centroids_of(files)
    recs = [r for r in recs if r.category in set(names)]
    truth = {r.key: r.category for r in recs}
    pipe = VideoToAudioPipeline.from_pretrained(args.model)
    reference = _category_references(args.bank)
    named = truth if args.category_from == "truth" else _probe_categories(pipe, recs, args.probe_store, names)
    wavs: dict[str, dict[str, np.ndarray]] = {k: {} for k in (*from_bank, "ground_truth")}
    source: dict[str, str] = {}
    for i, r in enumerate(recs):
        rec, source[r.key] = reference(named[r.key], i, with_path=True)
        truth_wav = sf.read(r.sidecar_wav, dtype="float32")[0]
        truth_wav = truth_wav.mean(axis=1) if truth_wav.ndim == 2 else truth_wav
        n = truth_wav.shape[0]
        env = rms_envelope(truth_wav, 16000)
        spotted = follow_envelope(spot_recording(rec, 16000, n, env), 16000, env)
        wavs["recording"][r.key] = rec
        wavs["looped"][r.key] = spot_recording(rec, 16000, n)
        wavs["spotted"][r.key] = spotted
        for name, x in (("resynthesis", rec), ("spotted_resynthesis", spotted)):
            if name not in rows:
                continue
            z = pipe.encode_audio(x, 16000)
            wavs[name][r.key] = pipe.decode_latents(z, len(x))[0].float().cpu().numpy()
        wavs["ground_truth"][r.key] = truth_wav
    # the spotted recordings' own mels through the vocoder / Griffin-Lim alone (eval_resynthesis's rows)
    wanted = [row for name, row in WAVEFORM_ONLY.items() if name in rows]
    if wanted:
        waveform_only, _, _ = resynthesize(pipe, wavs["spotted"], wanted)
        for name, row in WAVEFORM_ONLY.items():
            if row in wanted:
                wavs[name] = {k: w[: len(wavs["spotted"][k])] for k, w in waveform_only[row].items()}
    out: dict = {}
    if args.category_from == "probe":
        from probe_category import hit_rates  # the benchmark folder is on sys.path (above)

        out["probe"] = hit_rates([named[k] for k in truth], list(truth.values()))
        print(
            f"{'probe (no sound)':20s} category {out['probe']['category_acc']:.3f} "
            f"family {out['probe']['family_acc']:.3f}"
        )
    other_hits: dict[str, dict[str, float]] = {}
    if args.paired_with:
        other = {
            k: sf.read(Path(args.paired_with) / f"{k}.wav", dtype="float32")[0]
            for k in truth
            if (Path(args.paired_with) / f"{k}.wav").is_file()
        }
        if not other:
            raise SystemExit(
                f"ceiling: --paired-with {args.paired_with} holds no <stem>.wav of the scored clips"
            )
        acc = category_accuracy(
            other, {k: truth[k] for k in other}, names, cents, embedder, per_clip=other_hits
        )
        out["paired_with"] = {"folder": str(args.paired_with), "clips": len(other), **acc}
        print(f"{'paired-with row':20s} category {acc['category_acc']:.3f} family {acc['family_acc']:.3f}")
    for name in rows:
        group = wavs[name]
        predicted: dict[str, str] = {}
        hits: dict[str, dict[str, float]] = {}
        loo = args.leave_one_out and name in from_bank
        acc = category_accuracy(
            group,
            truth,
            names,
            cents,
            embedder,
            per_clip=hits,
            predicted=predicted,
            centroids_for=(lambda k: centroids_of(files, without=source[k])) if loo else None,
        )
        taken = collections.Counter(predicted.values()).most_common(3)
        out[name] = {**acc, "most_taken_for": taken}
        line = f"{name:20s} category {acc['category_acc']:.3f} family {acc['family_acc']:.3f} | taken for {taken}"
        if other_hits:
            out[name]["minus_paired_with"] = _paired_hits(hits, other_hits)
            line += " | minus the paired-with row: " + ", ".join(
                f"{m} {d['diff']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
                for m, d in out[name]["minus_paired_with"].items()
            )
        print(line)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "clips": len(recs),
                    "leave_one_out": bool(args.leave_one_out),
                    "category_from": args.category_from,
                    **out,
                },
                indent=1,
            )
        )


def _probe_categories(pipe, recs, store: str, names: list[str]) -> dict[str, str]:
    """Each clip's category as the picture's features name it: ``probe_category.py``'s probe fitted on the
    ``train`` split of ``store`` (pooled detector features), applied to the clip's features from the model's
    video encoder, among the categories the scored clips have (``names``)."""
    import torch

    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from probe_category import fit_probe, pool_clip, pooled_features, predict_categories

    x_tr, y_tr = pooled_features(store, "train")
    probe = fit_probe(x_tr, y_tr)
    with torch.no_grad():
        x = np.stack([pool_clip(pipe.encode_video(str(r.path))[0].float().cpu().numpy()) for r in recs])
    return dict(zip((r.key for r in recs), predict_categories(probe, x, set(names)), strict=True))


def _paired_hits(
    a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]
) -> dict[str, dict[str, object]]:
    """Paired bootstrap of per-clip category / family hits, a - b (as ``score --compare`` pairs them):
    ``{metric: PairedDifference.to_dict()}``."""
    from foleykit.evaluation import paired_difference

    return {m: paired_difference(a[m], b[m], m).to_dict() for m in CATEGORY}


# --- does the prompt decide WHAT? ----------------------------------------------------------------------------
def prompts(args: argparse.Namespace) -> None:
    """Prompt swap: each clip is generated with its own caption and with the caption of a clip of another
    family (same seed, same video features, same predicted timing). The sound's aisfx embedding is compared
    with the bank centroids of the prompt's category and of the picture's category (``bank_centroids``):
    ``shift`` = [sim(prompt cat) - sim(picture cat)] with the other caption minus the same with the clip's own
    caption. A model whose prompt decides WHAT moves towards the prompt's category (shift > 0); one that
    ignores the text does not move. ``truth_shift`` is the same swap done on the ground-truth recordings of
    the two clips: what the instrument reads when the sound really is of the other category. Also: how often
    the nearest category is the prompt's."""
    import soundfile as sf
    import torch

    from foleykit.encoders.audio import aisfx_embed, load_aisfx
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    torch.set_num_threads(args.threads)
    embedder = load_aisfx()
    recs = _records(args.data, args.limit)
    names, cents = bank_centroids(args.bank, sorted({r.category for r in recs if r.category}), embedder)
    index = {n: i for i, n in enumerate(names)}
    recs = [r for r in recs if r.category in index]  # categories the bank has a centroid for
    pipe = VideoToAudioPipeline.from_pretrained(args.model)

    def embed(wav: np.ndarray, rate: int) -> np.ndarray:
        v = aisfx_embed(np.asarray(wav, np.float32).reshape(-1), rate, model=embedder).mean(0).numpy()
        return v / (np.linalg.norm(v) + 1e-9)

    def truth(rec) -> np.ndarray:
        y, rate = sf.read(rec.sidecar_wav, dtype="float32")
        return embed(y if y.ndim == 1 else y.mean(1), rate)

    shifts, truth_shifts, own_hits, other_hits = [], [], [], []
    for i, r in enumerate(recs):
        others = [o for o in recs if o.category.split("/")[0] != r.category.split("/")[0]]
        if not others:
            continue
        o = others[i % len(others)]
        feats = pipe.encode_video(str(r.path))
        emb = {"truth_own": truth(r), "truth_other": truth(o)}
        for tag, caption in (("own", r.caption), ("other", o.caption)):
            kw = {"guidance_scale": args.guidance} if args.guidance is not None else {}
            res = pipe(str(r.path), video_features=feats, prompt=caption, seed=_seed(i), **kw)
            emb[tag] = embed(res.audio, res.sample_rate)
        toward = {
            t: float(v @ cents[index[o.category]] - v @ cents[index[r.category]]) for t, v in emb.items()
        }
        shifts.append(toward["other"] - toward["own"])
        truth_shifts.append(toward["truth_other"] - toward["truth_own"])
        own_hits.append(names[int(np.argmax(cents @ emb["own"]))] == r.category)
        other_hits.append(names[int(np.argmax(cents @ emb["other"]))] == o.category)
        print(
            f"{r.key} picture {r.category}, other prompt {o.category}: shift {shifts[-1]:+.4f} "
            f"(recordings {truth_shifts[-1]:+.4f})",
            flush=True,
        )
    rng = np.random.default_rng(0)

    def interval(x: np.ndarray) -> list[float]:
        boot = np.sort([x[rng.integers(0, x.size, x.size)].mean() for _ in range(10000)])
        return [float(boot[249]), float(boot[9749])]

    x, t = np.asarray(shifts), np.asarray(truth_shifts)
    res = {
        "clips": int(x.size),
        "shift": float(x.mean()),
        "shift_interval": interval(x),
        "truth_shift": float(t.mean()),
        "truth_shift_interval": interval(t),
        "nearest_is_caption_category_own": float(np.mean(own_hits)),
        "nearest_is_prompt_category_other": float(np.mean(other_hits)),
    }
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


# --- spectrograms ---------------------------------------------------------------------------------------------
def spectrograms(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    from foleykit.audio import log_mel

    recs = {r.key: r for r in _records(args.data, None)}
    out = Path(args.png_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [("ground truth", None)] + [(r, Path(args.out) / r) for r in args.rows.split(",")]
    for key in args.clips.split(","):
        r = recs[key]
        fig, axes = plt.subplots(len(rows), 1, figsize=(6, 1.3 * len(rows)), sharex=True)
        for ax, (name, folder) in zip(axes, rows):
            wav = sf.read(r.sidecar_wav if folder is None else folder / f"{key}.wav", dtype="float32")[0]
            mel = np.asarray(log_mel(wav, 16000))
            ax.imshow(
                mel,
                origin="lower",
                aspect="auto",
                extent=(0, len(wav) / 16000, 0, mel.shape[0]),
                vmin=-11.5,
                vmax=2,
                cmap="magma",
            )
            ax.set_ylabel(name, fontsize=7)
            ax.set_yticks([])
        for e in r.events():
            for ax in axes:
                ax.axvline(e["time"], color="c", lw=0.9, alpha=0.8)
        axes[0].set_title(f"{key}: {r.caption} (cyan: true event times)", fontsize=7)
        axes[-1].set_xlabel("s", fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"demo_{key}.png", dpi=80)
        plt.close(fig)
        print(out / f"demo_{key}.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--row", choices=ROWS, required=True)
    g.add_argument("--data", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--model", default=None)
    g.add_argument("--limit", type=int, default=None)
    g.add_argument("--steps", type=int, default=None)
    g.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance scale (default: the model's); -gG suffix",
    )
    g.add_argument("--prompt", choices=("caption", "none"), default="caption")
    g.add_argument(
        "--reference",
        choices=("none", "category"),
        default="none",
        help="category: each clip's reference sound is a training-split bank recording of its own category "
        "(an oracle of WHAT: can the generator render a kind of sound it is told?); rows get a -refcat suffix",
    )
    g.add_argument(
        "--init",
        choices=("none", "category"),
        default="none",
        help="category: each clip starts from a training-split bank recording of its own category (init_audio: "
        "a sound designer who hands in a recording of the right kind); rows get an -initcat suffix",
    )
    g.add_argument(
        "--init-strength",
        type=float,
        default=None,
        help="init_strength of --init category (default: the pipeline's); rows get an -sS suffix",
    )
    g.add_argument(
        "--bank",
        default=None,
        help="the sound bank of --reference / --init category (default: the fetched one)",
    )
    g.add_argument("--shard", default=None, help="k/n: every n-th clip from k")
    g.add_argument("--threads", type=int, default=1)
    g.add_argument(
        "--control-scale",
        type=float,
        default=None,
        help="adapter weight of the demo / gtcontrol rows (default: the model's); rows get a -csX suffix",
    )
    g.add_argument(
        "--follow-envelope",
        type=float,
        default=None,
        help="envelope-following strength of the demo / gtcontrol rows; rows get a -fS suffix",
    )
    s = sub.add_parser("score")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--rows", default=",".join(ROWS))
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--bank", default=None)
    s.add_argument("--extra-categories", default="")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument(
        "--compare",
        default=None,
        help="A:B,... row pairs for the paired differences (default: the first row against each other)",
    )
    m = sub.add_parser("mapper")
    m.add_argument("--store", required=True)
    m.add_argument("--split", default="test")
    m.add_argument("--model", default=None)
    m.add_argument("--json", default=None)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument(
        "--silence-threshold",
        type=float,
        default=None,
        help="decode with this RMSMapper silence threshold instead of the model's",
    )
    m.add_argument("--decoding", choices=("argmax", "expected", "median"), help="decode with this rule")
    m.add_argument("--expansion", type=float, default=None, help="decode with this RMSMapper expansion")
    m.add_argument("--proxy", action="store_true", help="also score envelope-shaped noise (_proxy_scores)")
    m.add_argument(
        "--by-scene",
        action="store_true",
        help="also break the per-clip scores down by the clips' scene kind (footsteps, animal, ...)",
    )
    pr = sub.add_parser("prompts", help="prompt swap: does the prompt decide WHAT (see prompts())")
    pr.add_argument("--data", required=True)
    pr.add_argument("--model", default=None)
    pr.add_argument("--limit", type=int, default=16)
    pr.add_argument("--bank", default=None)
    pr.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's)")
    pr.add_argument("--threads", type=int, default=2)
    pr.add_argument("--json", default=None)
    ce = sub.add_parser("ceiling", help="category accuracy of bank recordings, their resynthesis, the truth")
    ce.add_argument("--data", required=True)
    ce.add_argument("--model", default=None)
    ce.add_argument("--limit", type=int, default=None)
    ce.add_argument("--bank", default=None)
    ce.add_argument(
        "--leave-one-out", action="store_true", help="leave each reference's own file out of its centroid"
    )
    ce.add_argument("--threads", type=int, default=2)
    ce.add_argument("--json", default=None)
    ce.add_argument(
        "--rows", default=None, help="comma-separated rows to make and score (default: all eight)"
    )
    ce.add_argument(
        "--category-from",
        choices=("truth", "probe"),
        default="truth",
        help="whose category the bank recordings are of: the clip's true one, or the one the picture's "
        "features name (probe_category.py's probe; needs --probe-store)",
    )
    ce.add_argument("--probe-store", default=None, help="store whose train split the probe is fitted on")
    ce.add_argument(
        "--paired-with",
        default=None,
        help="a folder of generated <stem>.wav (e.g. OUT/demo-noprompt): each row's hits paired against its",
    )
    sp = sub.add_parser("spectrograms")
    sp.add_argument("--data", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--rows", default=",".join(ROWS))
    sp.add_argument("--clips", required=True)
    sp.add_argument("--png-dir", default="docs/images")
    args = p.parse_args(argv)
    {
        "generate": generate,
        "score": score,
        "mapper": mapper,
        "spectrograms": spectrograms,
        "prompts": prompts,
        "ceiling": ceiling,
    }[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
