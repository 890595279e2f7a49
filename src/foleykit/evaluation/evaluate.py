"""The evaluation suite: pair inputs, decode each file once, run the chosen metrics in parallel, report.

``evaluate(generated, reference=None, videos=None, ...)`` accepts folders (paired by stem) or in-memory
clips, so the CLI (``foleykit eval``), the training loop's validation and the model card share it.

Per item, each file is decoded once at its native rate and channel count (PyAV); every protocol then takes
a mono version at its own rate (22050 Hz for AV-Align / AA-Align / onsets / E-L1, 16 kHz for the RMS classes
and energy, the embedder's rate for FD / KL / IS), resampled once with soxr_hq and shared. Items run in a
process pool (``workers``); set-level metrics (FD, FAD, IS) are computed from the gathered embeddings.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import ConfigError, EvaluationError, FoleykitError, WeightsNotFoundError
from foleykit.evaluation.pairing import (
    AudioArray,
    FramesArray,
    Item,
    check_prompts,
    collect,
    is_path_like,
    video_source,
)
from foleykit.evaluation.report import EvalReport, MetricResult

log = logging.getLogger(__name__)

#: Names accepted by ``metrics=`` / ``--metrics``, in report order.
METRICS = (
    "av_align",
    "aa_align",
    "onset",
    "e_l1",
    "rms_acc",
    "energy_mae",
    "loudness",
    "fd",
    "fad",
    "kl",
    "is",
    "match",
    "clap",
)
#: Every metric but these compares each clip with its reference.
_NEEDS_REFERENCE = set(METRICS) - {"av_align", "is", "clap"}
_EMBEDDING_METRICS = {"fd", "fad", "kl", "is", "match"}
#: Fewest clips for which FD / FAD / IS are reported without a warning. They compare distributions (the
#: covariance of 128-2048-dimensional embeddings, or the spread of class predictions over 10 splits), which a
#: few clips cannot estimate: with 2 clips FD is mostly estimation noise. Published numbers use hundreds to
#: thousands of clips; KL and the per-clip metrics are averages over pairs and need no such minimum.
MIN_DISTRIBUTION_CLIPS = 50
_DISTRIBUTION_METRICS = ("fd", "fad", "is")


def few_clip_warnings(metrics: Sequence[str], num_clips: int) -> list[str]:
    """Warnings for distribution metrics computed from fewer than :data:`MIN_DISTRIBUTION_CLIPS` clips."""
    few = [m.upper() for m in metrics if m in _DISTRIBUTION_METRICS]
    if not few or num_clips >= MIN_DISTRIBUTION_CLIPS:
        return []
    message = (
        f"{' / '.join(few)} from {num_clips} clip(s): these compare whole distributions and are unreliable "
        f"below {MIN_DISTRIBUTION_CLIPS} clips (published figures use hundreds to thousands); compare "
        "systems with the per-clip metrics, or evaluate more clips"
    )
    return [message]


_PEAK_RATE = 22050
_CONTROL_RATE = 16000


@dataclass(frozen=True)
class EvalConfig:
    """How each metric is computed (recorded in the report).

    Attributes:
        av_align_variant: "reference" (HEAD: 0.1 flow threshold, one-to-one) or "legacy".
        aa_align_variant: "reference" (many-to-one) or "one-to-one".
        onset_mode: "reference" (CondFoleyGen code, quirks included) or "strict".
        onset_seconds: Clip length of the onset protocol (2 s, Greatest Hits); None: whole clips.
        energy_seconds: Energy-MAE window from 0 s (clips cut / zero-padded); None: common length.
        energy_normalize: AudioLDM waveform normalisation before the energy (as ReWaS' loader).
        e_l1_sample_rate: E-L1 rate (22050 T-Foley; 16000 Stable-V2A).
        rms_tolerance: Class tolerance of ``rms_acc_tol{t}`` (``rms_acc`` is the exact-class accuracy).
        embedder: Registered embedder for fd / fad / kl / is ("aisfx", "panns", "vggish", "clap", ...).
        embedder_options: Keyword arguments of the embedder (e.g. ``{"checkpoint": path}``).
        clap_model: CLAP model folder for the CLAP score.
    """

    av_align_variant: str = "reference"
    aa_align_variant: str = "reference"
    onset_mode: str = "reference"
    onset_seconds: float | None = 2.0
    energy_seconds: float | None = None
    energy_normalize: bool = True
    e_l1_sample_rate: int = 22050
    rms_tolerance: int = 2
    embedder: str = "aisfx"
    embedder_options: dict[str, Any] = field(default_factory=dict)
    clap_model: str | None = None

    def __post_init__(self) -> None:
        from foleykit.evaluation.metrics import aa_align, av_align, onset

        checks = [
            (
                self.av_align_variant in av_align.VARIANTS,
                f"av_align_variant must be one of {av_align.VARIANTS}",
            ),
            (
                self.aa_align_variant in aa_align.VARIANTS,
                f"aa_align_variant must be one of {aa_align.VARIANTS}",
            ),
            (self.onset_mode in onset.MODES, f"onset_mode must be one of {onset.MODES}"),
            (self.onset_seconds is None or self.onset_seconds > 0, "onset_seconds must be positive"),
            (self.energy_seconds is None or self.energy_seconds > 0, "energy_seconds must be positive"),
            (int(self.e_l1_sample_rate) > 0, "e_l1_sample_rate must be positive"),
            (int(self.rms_tolerance) >= 0, "rms_tolerance must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"evaluation: {msg}")


@dataclass(frozen=True)
class _Plan:
    metrics: tuple[str, ...]
    config: EvalConfig
    prompts: dict[str, str] | None = None
    cache_dir: str | None = None


# --- per-process state ------------------------------------------------------------------------------------
_EMBEDDERS: dict[tuple[str, str], Any] = {}


def get_embedder(name: str, options: Mapping[str, Any] | None = None):
    """A cached embedder built through ``foleykit.registry`` (kind "embedder"); one per process."""
    from foleykit import registry

    opts = dict(options or {})
    key = (name, json.dumps(opts, sort_keys=True, default=str))
    if key not in _EMBEDDERS:
        import foleykit.evaluation.embedders  # noqa: F401  (registers the built-in embedders)

        _EMBEDDERS[key] = registry.build("embedder", name, **opts)
    return _EMBEDDERS[key]


def _init_worker() -> None:
    """Process-pool initializer: one thread per worker (the pool provides the parallelism)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a dependency
        pass


# --- decoding once ----------------------------------------------------------------------------------------
class _Clip:
    """A decoded clip at its native rate; ``at(rate)`` gives mono audio at a protocol rate (cached)."""

    def __init__(self, wav: np.ndarray, sample_rate: int) -> None:
        from foleykit.evaluation.metrics._common import prepare

        self.sample_rate = int(sample_rate)
        self.mono = prepare(wav, self.sample_rate, self.sample_rate)
        self.channels = 1 if np.ndim(wav) == 1 else int(np.shape(wav)[0])
        self._cache: dict[int, np.ndarray] = {self.sample_rate: self.mono}

    @property
    def seconds(self) -> float:
        return self.mono.size / self.sample_rate

    def at(self, rate: int) -> np.ndarray:
        from foleykit.evaluation.metrics._common import prepare

        if rate not in self._cache:
            self._cache[rate] = prepare(self.mono, self.sample_rate, rate)
        return self._cache[rate]


def _load_audio(src: Path | AudioArray) -> _Clip:
    if isinstance(src, AudioArray):
        return _Clip(src.wav, src.sample_rate)
    from foleykit.errors import NoAudioStreamError
    from foleykit.media import probe, read_audio

    info = probe(src)
    if not info.has_audio or not info.sample_rate:
        raise NoAudioStreamError(f"{src}: has no audio stream")
    return _Clip(read_audio(src, sample_rate=int(info.sample_rate), mono=False), int(info.sample_rate))


def _load_video(src: Path | FramesArray) -> tuple[np.ndarray, float]:
    if isinstance(src, FramesArray):
        return src.frames, src.fps
    from foleykit.media import read_video

    clip = read_video(src)
    return clip.frames, float(clip.fps)


def _embed(embedder, wav: np.ndarray, need_logits: bool) -> tuple[np.ndarray, np.ndarray | None]:
    if need_logits and hasattr(embedder, "embed_with_logits"):
        emb, logits = embedder.embed_with_logits(wav)
        return np.asarray(emb, np.float32), np.asarray(logits, np.float32)
    emb = np.asarray(embedder.embed(wav), np.float32)
    return emb, (np.asarray(embedder.logits(wav), np.float32) if need_logits else None)


def _describe(src: Any, stem: str) -> str:
    return str(src) if isinstance(src, Path) else f"clip {stem!r}"


def _evaluate_item(item: Item, plan: _Plan) -> dict[str, Any]:
    """All per-file work of one item; errors a user can cause come back as a message."""
    import warnings

    from foleykit.evaluation.cache import cached
    from foleykit.evaluation.metrics import aa_align, av_align, energy, envelope, matching, onset

    m, cfg = set(plan.metrics), plan.config
    out: dict[str, Any] = {"stem": item.stem, "values": {}, "info": {}, "error": None}
    values, info = out["values"], out["info"]
    hits = 0
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="n_fft=.*is too large", category=UserWarning)
            gen = _load_audio(item.generated)
            info["generated"] = (gen.seconds, gen.sample_rate, gen.channels)
            ref = None
            if m & _NEEDS_REFERENCE:
                ref = _load_audio(item.reference)
                info["reference"] = (ref.seconds, ref.sample_rate, ref.channels)
            if m & {"av_align", "aa_align"}:
                g_peaks = av_align.detect_audio_peaks(gen.at(_PEAK_RATE), _PEAK_RATE)
            if "av_align" in m:

                def video_peaks() -> dict[str, np.ndarray]:
                    frames, fps = _load_video(video_source(item))
                    peaks = av_align.video_peaks_from_frames(frames, fps, variant=cfg.av_align_variant)
                    return {"peaks": peaks, "fps": np.float64(fps), "frames": np.int64(len(frames))}

                vp, hit = cached(
                    plan.cache_dir, "video_peaks", video_source(item), [cfg.av_align_variant], video_peaks
                )
                hits += hit
                fps = float(vp["fps"])
                info["video"] = (int(vp["frames"]), fps)
                values["av_align"] = av_align.av_align_from_peaks(
                    g_peaks, vp["peaks"], fps, variant=cfg.av_align_variant
                )
            if "aa_align" in m:
                r_peaks = av_align.detect_audio_peaks(ref.at(_PEAK_RATE), _PEAK_RATE)
                values["aa_align"] = aa_align.aa_align_from_peaks(
                    g_peaks, r_peaks, variant=cfg.aa_align_variant
                )
            if "onset" in m:
                s = onset.onset_metrics(
                    gen.at(_PEAK_RATE),
                    ref.at(_PEAK_RATE),
                    _PEAK_RATE,
                    mode=cfg.onset_mode,
                    clip_seconds=cfg.onset_seconds,
                )
                values["onset_acc"], values["onset_ap"] = s.acc, s.ap
            if "e_l1" in m:
                r = int(cfg.e_l1_sample_rate)
                values["e_l1"] = envelope.e_l1(gen.at(r), ref.at(r), r, target_sample_rate=r)
            if "rms_acc" in m:
                cg = envelope.rms_classes(gen.at(_CONTROL_RATE), _CONTROL_RATE)
                cr = envelope.rms_classes(ref.at(_CONTROL_RATE), _CONTROL_RATE)
                n = min(cg.size, cr.size)
                values["rms_acc"] = envelope.tolerance_accuracy(cg[:n], cr[:n], 0)
                values[f"rms_acc_tol{cfg.rms_tolerance}"] = envelope.tolerance_accuracy(
                    cg[:n], cr[:n], cfg.rms_tolerance
                )
            if "energy_mae" in m:
                values["energy_mae"] = energy.energy_mae(
                    gen.at(_CONTROL_RATE),
                    ref.at(_CONTROL_RATE),
                    _CONTROL_RATE,
                    duration=cfg.energy_seconds,
                    normalize=cfg.energy_normalize,
                )
            if "loudness" in m:
                out["gen_loud"] = matching.loudness_curve(gen.at(matching.LOUDNESS_SAMPLE_RATE))
                out["ref_loud"] = matching.loudness_curve(ref.at(matching.LOUDNESS_SAMPLE_RATE))
                if min(len(out["gen_loud"]), len(out["ref_loud"])) < 2:
                    raise EvaluationError("too short for a loudness curve (needs 2 frames of 20 ms)")
            if m & _EMBEDDING_METRICS:
                emb = get_embedder(cfg.embedder, cfg.embedder_options)
                params = [emb.describe(), bool(emb.has_logits)]
                sides = [("gen", gen, item.generated)] + (
                    [("ref", ref, item.reference)] if m & _NEEDS_REFERENCE & _EMBEDDING_METRICS else []
                )
                for side, clip, src in sides:

                    def features(clip=clip) -> dict[str, np.ndarray]:
                        e, lg = _embed(emb, clip.at(emb.sample_rate), emb.has_logits)
                        return {"emb": e, **({"logits": lg} if lg is not None else {})}

                    feats, hit = cached(plan.cache_dir, "embedding", src, params, features)
                    hits += hit
                    out[f"{side}_emb"], out[f"{side}_logits"] = feats["emb"], feats.get("logits")
            if "clap" in m:
                from foleykit.evaluation.metrics.clap_score import cosine_rows

                clap = get_embedder("clap", {"path": cfg.clap_model})
                text = clap.embed_text([plan.prompts[item.stem]])
                values["clap"] = float(
                    cosine_rows(text, clap.clip_embedding(gen.at(clap.sample_rate))[None])[0]
                )
        info["cache_hits"] = hits
    except FoleykitError as err:
        out["error"] = f"{item.stem} ({_describe(item.generated, item.stem)}): {err}"
    except Exception as err:  # noqa: BLE001 - reported with the file, the run still fails at the end
        out["error"] = f"{item.stem} ({_describe(item.generated, item.stem)}): {type(err).__name__}: {err}"
    return out


def _run(items: list[Item], plan: _Plan, *, workers: int, progress: bool) -> list[dict[str, Any]]:
    from tqdm import tqdm

    bar = tqdm(total=len(items), desc="foleykit eval", unit="file", disable=not progress, file=sys.stderr)
    results: list[dict[str, Any]] = []
    try:
        if workers <= 1 or len(items) == 1:
            for it in items:
                results.append(_evaluate_item(it, plan))
                bar.update()
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            ctx = mp.get_context("spawn")  # safe with torch / OpenCV threads, and the same on every OS
            with ProcessPoolExecutor(
                max_workers=min(workers, len(items)), mp_context=ctx, initializer=_init_worker
            ) as pool:
                futures = [pool.submit(_evaluate_item, it, plan) for it in items]
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update()
    finally:
        bar.close()
    return sorted(results, key=lambda r: r["stem"])


# --- metric selection and protocol record -------------------------------------------------------------------
def resolve_metrics(
    metrics: Sequence[str] | str | None,
    *,
    has_reference: bool,
    has_video: bool,
    has_prompts: bool,
    has_clap: bool,
    has_logits: bool = True,
    has_embedder: bool = True,
) -> tuple[str, ...]:
    """The metrics to run: the requested ones (checked against the inputs) or every one the inputs allow."""
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    available = {
        "av_align": (has_video, "--videos (or generated video files)"),
        "clap": (has_prompts and has_clap, "--prompts and --clap-model"),
        "is": (has_logits, "an embedder with classifier logits (e.g. aisfx, panns)"),
        "kl": (has_reference and has_logits, "--reference and an embedder with classifier logits"),
    }
    for name in _NEEDS_REFERENCE - {"kl"}:
        available[name] = (has_reference, "--reference")
    if not has_embedder:
        for name in _EMBEDDING_METRICS:
            available[name] = (False, "the embedder's weights")
    if metrics is None:
        chosen = tuple(n for n in METRICS if available[n][0])
        if not chosen:
            raise ConfigError("no metric can run on these inputs; give --reference and/or --videos")
        return chosen
    unknown = [n for n in metrics if n not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    missing = [f"{n} needs {available[n][1]}" for n in metrics if not available[n][0]]
    if missing:
        raise ConfigError("cannot compute: " + "; ".join(missing))
    if not metrics:
        raise ConfigError("no metric selected")
    return tuple(n for n in METRICS if n in metrics)


def _protocols(chosen: Sequence[str], cfg: EvalConfig, embedder_desc: dict | None) -> tuple[dict, dict]:
    from foleykit.evaluation.metrics import aa_align, av_align, onset

    p: dict[str, Any] = {}
    notes: dict[str, str] = {}
    if "av_align" in chosen:
        ref = cfg.av_align_variant == "reference"
        p["av_align"] = {
            "variant": cfg.av_align_variant,
            "audio_sample_rate": _PEAK_RATE,
            "video_fps": "native",
            "flow": av_align.FLOW_REDUCTION[cfg.av_align_variant],
            "flow_threshold": av_align.FLOW_THRESHOLD if ref else None,
            "matching": "one-to-one" if ref else "many-to-one",
            "window": "open, +-1/fps",
            "both_empty_score": av_align.EMPTY_SCORE,
        }
        notes["av_align"] = f"{cfg.av_align_variant}: " + (
            "flow >= 0.1, one-to-one" if ref else "no threshold, many-to-one"
        )
    if "aa_align" in chosen:
        p["aa_align"] = {
            "variant": cfg.aa_align_variant,
            "sample_rate": _PEAK_RATE,
            "window_seconds": aa_align.WINDOW_SECONDS,
            "both_empty_score": av_align.EMPTY_SCORE,
        }
        notes["aa_align"] = f"{cfg.aa_align_variant}, T = 0.1 s"
    if "onset" in chosen:
        p["onset"] = {
            "mode": cfg.onset_mode,
            "sample_rate": onset.SAMPLE_RATE,
            "clip_seconds": cfg.onset_seconds,
            "onset_delta": onset.ONSET_DELTA,
            "match_window_seconds": onset.MATCH_WINDOW_SECONDS,
            "nms_window_seconds": onset.NMS_WINDOW_SECONDS,
            "confidence_half_window_samples": onset.CONF_INTERVAL,
        }
        notes["onset_acc"] = notes["onset_ap"] = (
            f"{cfg.onset_mode}, first {cfg.onset_seconds or 'all'} s at 22.05 kHz"
        )
    if "e_l1" in chosen:
        p["e_l1"] = {
            "sample_rate": int(cfg.e_l1_sample_rate),
            "rms_frame": 512,
            "rms_hop": 128,
            "center": True,
            "peak_normalized": True,
            "lowpass": "ellip(4, 0.01, 120, 0.125) filtfilt gust",
            "length": "common",
        }
        notes["e_l1"] = f"T-Foley, {cfg.e_l1_sample_rate} Hz, common length"
    if "rms_acc" in chosen:
        p["rms_acc"] = {
            "sample_rate": _CONTROL_RATE,
            "rms_frame": 512,
            "rms_hop": 128,
            "classes": 64,
            "mu": 63,
            "rms_min": 0.01,
            "tolerance": int(cfg.rms_tolerance),
            "length": "common",
        }
        notes["rms_acc"] = "exact class, 64 mu-law classes at 125 Hz"
        notes[f"rms_acc_tol{cfg.rms_tolerance}"] = f"|class error| <= {cfg.rms_tolerance}"
    if "energy_mae" in chosen:
        p["energy_mae"] = {
            "sample_rate": _CONTROL_RATE,
            "mel": "AudioLDM 64 mels hop 160",
            "smoothing": None,
            "normalize_wav": cfg.energy_normalize,
            "crop": f"first {cfg.energy_seconds} s (zero-padded)" if cfg.energy_seconds else "common length",
        }
        notes["energy_mae"] = "ReWaS, deterministic crop" + (
            f" {cfg.energy_seconds} s" if cfg.energy_seconds else ""
        )
    emb_name = (embedder_desc or {}).get("embedder", cfg.embedder)
    for name, what in (
        ("fd", "clip embeddings (mean of frames)"),
        ("fad", "frame embeddings"),
        ("kl", "KL(gt || gen) of softmax logits, eps 1e-6, paired by stem"),
        ("is", "softmax logits, 10 splits, shuffle seed 2020"),
    ):
        if name in chosen:
            p[name] = {"what": what, **(embedder_desc or {"embedder": cfg.embedder})}
            notes[name] = f"{what.split(',')[0]} ({emb_name})"
    if "loudness" in chosen:
        from foleykit.evaluation.metrics import matching

        p["loudness"] = {
            "sample_rate": matching.LOUDNESS_SAMPLE_RATE,
            "rms_frame": matching.LOUDNESS_FRAME,
            "rms_hop": matching.LOUDNESS_HOP,
            "db": f"re the clip's peak, floor -{matching.LOUDNESS_RANGE_DB:g} dB",
            "correlation": "Pearson over the common length; 0 for a flat curve",
            "margin": "own reference minus the mean over every other clip's reference",
        }
        notes["loudness_corr"] = "dB loudness curves, Pearson"
        notes["loudness_margin"] = "own minus shuffled references"
    if "match" in chosen:
        p["match"] = {
            "what": "rank of the own reference among all references by cosine of clip embeddings, in [0, 1]",
            "chance": 0.5,
            **(embedder_desc or {"embedder": cfg.embedder}),
        }
        notes["match_rank"] = f"own-reference rank, 0 best, chance 0.5 ({emb_name})"
    if "clap" in chosen:
        p["clap"] = {"what": "cosine(text, audio) in CLAP space", "model": cfg.clap_model}
        notes["clap"] = "text-audio cosine"
    return p, notes


def _summary(values: list[float]) -> dict[str, float] | None:
    return (
        None
        if not values
        else {"min": float(min(values)), "mean": float(np.mean(values)), "max": float(max(values))}
    )


def _aggregate(
    results: list[dict[str, Any]], chosen: Sequence[str], cfg: EvalConfig
) -> dict[str, MetricResult]:
    from foleykit.evaluation.metrics import distribution, matching

    per_file: dict[str, dict[str, float]] = {}
    for r in results:
        for k, v in r["values"].items():
            per_file.setdefault(k, {})[r["stem"]] = float(v)
    order = {
        "av_align": ["av_align"],
        "aa_align": ["aa_align"],
        "onset": ["onset_acc", "onset_ap"],
        "e_l1": ["e_l1"],
        "rms_acc": ["rms_acc", f"rms_acc_tol{cfg.rms_tolerance}"],
        "energy_mae": ["energy_mae"],
        "clap": ["clap"],
    }
    out: dict[str, MetricResult] = {}
    for name in chosen:
        for key in order.get(name, []):
            out[key] = MetricResult.from_values(per_file.get(key, {}))
        if name in ("fd", "fad"):
            if name == "fd":
                gen = np.stack([r["gen_emb"].mean(axis=0) for r in results])
                ref = np.stack([r["ref_emb"].mean(axis=0) for r in results])
            else:
                gen = np.concatenate([r["gen_emb"] for r in results])
                ref = np.concatenate([r["ref_emb"] for r in results])
            if min(len(gen), len(ref)) < 2:
                out[name] = MetricResult(
                    None, extra={"skipped": f"needs >= 2 {'clips' if name == 'fd' else 'frames'} per set"}
                )
            else:
                out[name] = MetricResult(
                    distribution.fd_from_embeddings(gen, ref), extra={"num_embeddings": [len(gen), len(ref)]}
                )
        elif name == "kl":
            _, kl = distribution.kl_paired(
                {r["stem"]: r["gen_logits"] for r in results}, {r["stem"]: r["ref_logits"] for r in results}
            )
            out["kl"] = MetricResult.from_values(kl)
        elif name == "is":
            mean, std = distribution.inception_score(np.stack([r["gen_logits"] for r in results]))
            out["is"] = MetricResult(
                mean, extra={"std": std, "splits": min(distribution.IS_SPLITS, len(results))}
            )
        elif name == "loudness":
            corr, margin = matching.loudness_scores(
                {r["stem"]: r["gen_loud"] for r in results}, {r["stem"]: r["ref_loud"] for r in results}
            )
            out["loudness_corr"] = MetricResult.from_values(corr)
            out["loudness_margin"] = (
                MetricResult(None, extra={"skipped": "needs >= 2 clips"})
                if margin is None
                else MetricResult.from_values(margin)
            )
        elif name == "match":
            if len(results) < 2:
                out["match_rank"] = MetricResult(None, extra={"skipped": "needs >= 2 clips"})
            else:
                out["match_rank"] = MetricResult.from_values(
                    matching.match_ranks(
                        {r["stem"]: r["gen_emb"] for r in results}, {r["stem"]: r["ref_emb"] for r in results}
                    )
                )
    return out


def _input_name(x: Any) -> str | None:
    if x is None:
        return None
    return str(Path(x).expanduser()) if is_path_like(x) else "<in-memory>"


def evaluate(
    generated: Any,
    reference: Any = None,
    videos: Any = None,
    *,
    metrics: Sequence[str] | str | None = None,
    sample_rate: int | None = None,
    prompts: Mapping[str, str] | None = None,
    workers: int = 1,
    progress: bool = False,
    allow_unpaired: bool = False,
    skip_errors: bool = False,
    cache: bool | str | os.PathLike = True,
    config: EvalConfig | None = None,
    **options: Any,
) -> EvalReport:
    """Run the evaluation suite.

    Args:
        generated: Folder of generated audio / video files, ``{name: wav}``, ``{name: (wav, sr)}`` or a list
            of clips (``wav`` ``(T,)`` or ``(C, T)``).
        reference: Reference (ground-truth) audio in the same forms, paired by stem / name; or None.
        videos: Folder of videos or ``{name: (frames, fps)}`` / ``{name: VideoClip}`` for AV-Align; or
            None (generated video files are then used as their own video).
        metrics: Names from :data:`METRICS` (list or comma-separated); None = every metric the inputs allow.
        sample_rate: Rate of in-memory clips given without one.
        prompts: ``{stem: text}`` for the CLAP score.
        workers: Parallel worker processes over files (1: in this process).
        progress: Show a progress bar on stderr.
        allow_unpaired: Evaluate paired stems only instead of failing on unpaired files.
        skip_errors: Leave out files that fail to decode / evaluate (listed in the report) instead of failing.
        cache: Reuse AV-Align video peaks and embeddings of unchanged files (``$FOLEYKIT_HOME/cache/eval``,
            or the folder given); False disables it. In-memory inputs are never cached.
        config: An :class:`EvalConfig`; ``**options`` override its fields (e.g. ``onset_mode="strict"``).

    Returns:
        An :class:`EvalReport`.

    Raises:
        EvaluationError: pairing problems (all listed), unusable files (all listed), too few items.
        ConfigError: unknown metric / variant, or a metric whose inputs are missing.
        WeightsNotFoundError: an embedder's weights are not available locally.
    """
    import foleykit

    fields = {f.name for f in dataclasses.fields(EvalConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(
            f"evaluate(): unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}"
        )
    cfg = dataclasses.replace(config or EvalConfig(), **options)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    items, tolerated = collect(
        generated, reference, videos, sample_rate=sample_rate, allow_unpaired=allow_unpaired
    )
    has_video = all(video_source(it) is not None for it in items)
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    embedder, embedder_missing = None, None
    if metrics is None or set(metrics) & _EMBEDDING_METRICS:
        try:
            embedder = get_embedder(cfg.embedder, cfg.embedder_options)  # fail early on missing weights
        except WeightsNotFoundError as err:
            if metrics is not None:
                raise
            embedder_missing = f"fd / fad / kl / is not run: {err}"  # defaults: run what is available
            log.warning("%s", embedder_missing)
    chosen = resolve_metrics(
        metrics,
        has_reference=reference is not None,
        has_video=has_video,
        has_prompts=prompts is not None,
        has_clap=cfg.clap_model is not None,
        has_logits=embedder is None or embedder.has_logits,
        has_embedder=embedder_missing is None,
    )
    if not set(chosen) & _EMBEDDING_METRICS:
        embedder = None
    if "clap" in chosen:
        check_prompts(items, prompts or {})
        get_embedder("clap", {"path": cfg.clap_model})
    cache_dir = None
    if cache:
        from foleykit.evaluation.cache import default_cache_dir

        cache_dir = str(default_cache_dir() if cache is True else Path(cache).expanduser())
    plan = _Plan(
        metrics=chosen,
        config=cfg,
        prompts=dict(prompts) if prompts is not None else None,
        cache_dir=cache_dir,
    )
    results = _run(items, plan, workers=workers, progress=progress)

    errors = [r["error"] for r in results if r["error"]]
    if errors and not skip_errors:
        listing = "\n".join(f"  - {e}" for e in errors)
        raise EvaluationError(
            f"{len(errors)} file(s) could not be evaluated:\n{listing}\n"
            "Fix or remove them, or pass --skip-errors to leave them out."
        )
    good = [r for r in results if not r["error"]]
    if not good:
        raise EvaluationError("no file could be evaluated")
    protocols, notes = _protocols(chosen, cfg, embedder.describe() if embedder is not None else None)
    config_out = {
        "foleykit_version": foleykit.__version__,
        "metrics": list(chosen),
        "inputs": {
            "generated": _input_name(generated),
            "reference": _input_name(reference),
            "videos": _input_name(videos),
            "num_items": len(good),
            "unpaired_ignored": tolerated,
            "skipped_files": errors,
        },
        "clip_seconds": {
            k: _summary([r["info"][k][0] for r in good if k in r["info"]]) for k in ("generated", "reference")
        },
        "native_sample_rates": {
            k: sorted({r["info"][k][1] for r in good if k in r["info"]}) for k in ("generated", "reference")
        },
        "channels": {
            k: sorted({r["info"][k][2] for r in good if k in r["info"]}) for k in ("generated", "reference")
        },
        "video_fps": sorted({round(r["info"]["video"][1], 6) for r in good if "video" in r["info"]}),
        "protocols": protocols,
        "notes": notes,
        "not_run": [embedder_missing] if embedder_missing else [],
        "warnings": few_clip_warnings(chosen, len(good)),
        "workers": int(workers),
        "cache": {"dir": cache_dir, "hits": int(sum(r["info"].get("cache_hits", 0) for r in good))},
    }
    metrics_out = _aggregate(good, chosen, cfg)
    if config_out["warnings"]:
        for name in _DISTRIBUTION_METRICS:
            if name in metrics_out and metrics_out[name].mean is not None:
                metrics_out[name].extra["warning"] = (
                    f"unreliable: {len(good)} clips < {MIN_DISTRIBUTION_CLIPS}"
                )
    return EvalReport(metrics=metrics_out, config=config_out)
