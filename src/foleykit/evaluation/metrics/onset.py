"""Onset accuracy and onset AP: the Greatest Hits protocol of CondFoleyGen (Du et al., CVPR 2023).

Used by ReWaS (Table 3) and Rhythmic Foley. Protocol of the reference code (XYPB/CondFoleyGen
``predict_onset.py``):

- audio at 22050 Hz, mono, cut to the first ``clip_seconds`` (2 s); onsets =
  ``librosa.onset.onset_detect(y=wav, sr=22050, units='samples', delta=0.3)`` for target and generated clips;
- confidence: ``w = |generated|`` min-max normalised; ``conf(o) = max(w[o - 1102 : o + 1102])`` (0.05 s);
- NMS on the generated onsets by confidence with a 0.05 s window;
- matching: for each target onset in time order, the remaining generated onsets within 0.1 s are candidates;
  none -> ``(gt 1, pred 0)``; otherwise the candidate with the largest ``w`` at its own sample is a hit:
  ``(gt 1, pred conf)`` and it is removed. Unmatched generated onsets give ``(gt 0, pred conf)``.
- ``acc = hits / |targets|`` (0 when there is no target), ``AP = sklearn average_precision_score``.

``mode="reference"`` reproduces the published code, quirks included:

1. the matching loop stops as soon as no generated onset remains (later targets are not even listed);
2. a missed target enters AP as a detection of confidence 0, so silent output (no onsets: every entry is
   ``(1, 0)``) scores AP 1.0, and so does any output whose every onset hits a target, however many targets
   it misses;
3. NMS removes neighbours while iterating over the same Python list, which skips the element after each
   removed one (a third onset inside the window survives).

``mode="strict"`` fixes them: every target is visited, NMS removes every neighbour, and AP is the
area under the detection precision-recall curve with recall measured against *all* targets
(``hits / |targets| * average_precision_score`` over the generated onsets), so silence and missed targets
lower AP. Edge cases in strict mode: no target and no generated onset -> acc 1, AP 1; no target but
generated onsets -> acc 0, AP 0.

Both modes clamp the confidence window at the clip start (the reference slices with a negative start and
fails on onsets in the first 50 ms). Reference mode, no target and no generated onset (the reference fails
on empty arrays): acc 0 (its formula), AP 1 (its silence convention).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from foleykit.errors import ConfigError
from foleykit.evaluation.metrics._common import prepare

SAMPLE_RATE = 22050
#: Greatest Hits clips are 2 s long; the reference cuts every clip to this length.
CLIP_SECONDS = 2.0
#: onset_detect delta of the protocol.
ONSET_DELTA = 0.3
#: Matching window (the script's --delta, default 0.1 s).
MATCH_WINDOW_SECONDS = 0.1
#: NMS window in seconds.
NMS_WINDOW_SECONDS = 0.05
#: Confidence half-window in samples: int(0.05 * 22050).
CONF_INTERVAL = int(0.05 * SAMPLE_RATE)

Mode = Literal["reference", "strict"]
MODES: tuple[str, ...] = ("reference", "strict")


@dataclass(frozen=True)
class OnsetScores:
    """Result of one clip pair.

    Attributes:
        acc: Onset accuracy (hits / targets).
        ap: Onset average precision.
        hits: Matched targets.
        num_targets: Target onsets detected.
        num_generated: Generated onsets kept by NMS.
    """

    acc: float
    ap: float
    hits: int
    num_targets: int
    num_generated: int


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"unknown onset mode {mode!r}; choose one of {', '.join(MODES)}")


def load_clip(wav: np.ndarray, sample_rate: int, *, clip_seconds: float | None = CLIP_SECONDS) -> np.ndarray:
    """Mono 22050 Hz float64 audio cut to the first ``clip_seconds`` (None: the whole clip). ``(T,)``."""
    y = prepare(wav, sample_rate, SAMPLE_RATE).astype(np.float64)
    if clip_seconds is not None:
        if clip_seconds <= 0:
            raise ConfigError(f"clip_seconds must be positive, got {clip_seconds}")
        y = y[: round(SAMPLE_RATE * clip_seconds)]
    return y


def detect_onsets(y: np.ndarray) -> np.ndarray:
    """Onsets in samples of a 22050 Hz mono clip: ``onset_detect(units='samples', delta=0.3)``. ``(K,)`` int64."""
    import librosa

    if y.size == 0 or not np.any(y):
        return np.zeros(0, dtype=np.int64)
    with warnings.catch_warnings():  # clips shorter than n_fft are fine (zero-padded frames)
        warnings.filterwarnings("ignore", message="n_fft=.*is too large", category=UserWarning)
        onsets = librosa.onset.onset_detect(y=y, sr=SAMPLE_RATE, units="samples", delta=ONSET_DELTA)
    return np.asarray(onsets, dtype=np.int64)


def normalized_envelope(y: np.ndarray) -> np.ndarray:
    """``|y|`` min-max normalised to [0, 1] (a constant signal gives zeros). ``(T,)`` float64."""
    w = np.abs(np.asarray(y, dtype=np.float64))
    if w.size == 0:
        return w
    lo, hi = float(w.min()), float(w.max())
    if hi <= lo:
        return np.zeros_like(w)
    return (w - lo) / (hi - lo)


def onset_confidence(w: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """``max(w[o - 1102 : o + 1102])`` per onset, window clamped at the clip start. ``(K,)`` float64."""
    return np.asarray(
        [float(np.max(w[max(int(o) - CONF_INTERVAL, 0) : int(o) + CONF_INTERVAL])) for o in onsets],
        dtype=np.float64,
    )


def onset_nms(onsets: np.ndarray, confidence: np.ndarray, *, mode: Mode = "reference") -> np.ndarray:
    """Non-maximum suppression of onsets by confidence within 0.05 s.

    Args:
        onsets: Onset positions in samples ``(K,)``, distinct.
        confidence: Confidence per onset ``(K,)``.
        mode: "reference" keeps the published iteration quirk (the onset right after a removed neighbour is
            not examined); "strict" removes every neighbour inside the window.

    Returns:
        Kept onsets, ascending ``(K',)`` int64.
    """
    _check_mode(mode)
    onsets = np.asarray(onsets, dtype=np.int64)
    conf = np.asarray(confidence, dtype=np.float64)
    window = NMS_WINDOW_SECONDS * SAMPLE_RATE
    # reference: numpy's default argsort, reversed; strict: a stable order (ties keep the earlier onset)
    order = np.argsort(conf)[::-1] if mode == "reference" else np.argsort(-conf, kind="stable")
    remain = [int(o) for o in onsets]
    kept = []
    for idx in order:
        cur = int(onsets[idx])
        if cur not in remain:
            continue
        kept.append(cur)
        remain.remove(cur)
        i = 0
        while i < len(remain):
            if abs(cur - remain[i]) < window:
                del remain[i]
                if mode == "reference":
                    i += 1  # the reference mutates the list it iterates: the next element is skipped
            else:
                i += 1
    return np.asarray(sorted(kept), dtype=np.int64)


def onset_scores(
    target_onsets: np.ndarray,
    generated_onsets: np.ndarray,
    generated_wav: np.ndarray,
    *,
    mode: Mode = "reference",
    match_window: float = MATCH_WINDOW_SECONDS,
) -> OnsetScores:
    """Onset accuracy and AP of one clip pair from detected onsets.

    Args:
        target_onsets: Onsets of the target (ground-truth) clip in samples at 22050 Hz ``(K_t,)``.
        generated_onsets: Onsets of the generated clip in samples ``(K_g,)`` (before NMS).
        generated_wav: The generated clip at 22050 Hz ``(T,)`` (confidences come from it).
        mode: "reference" or "strict" (see the module docstring).
        match_window: Matching window in seconds (0.1).

    Returns:
        An :class:`OnsetScores`.
    """
    from sklearn.metrics import average_precision_score

    _check_mode(mode)
    targets = [int(o) for o in np.asarray(target_onsets).reshape(-1)]
    w = normalized_envelope(generated_wav)
    gen = np.asarray(generated_onsets, dtype=np.int64).reshape(-1)
    gen = onset_nms(gen, onset_confidence(w, gen), mode=mode)
    remaining = [int(o) for o in gen]
    window = match_window * SAMPLE_RATE

    def conf(o: int) -> float:
        return float(np.max(w[max(o - CONF_INTERVAL, 0) : o + CONF_INTERVAL]))

    hits = 0
    y_true: list[int] = []  # the reference's (gt, pred) list, misses included as (1, 0)
    y_score: list[float] = []
    det_true: list[int] = []  # strict: generated detections only
    det_score: list[float] = []
    for t in targets:
        cand = [k for k, o in enumerate(remaining) if abs(o - t) < window]
        if not cand:
            y_true.append(1)
            y_score.append(0.0)
            continue
        best = cand[int(np.argsort([w[remaining[k]] for k in cand])[-1])]
        hits += 1
        c = conf(remaining.pop(best))
        y_true.append(1)
        y_score.append(c)
        det_true.append(1)
        det_score.append(c)
        if mode == "reference" and not remaining:
            break
    for o in remaining:
        y_true.append(0)
        y_score.append(conf(o))
        det_true.append(0)
        det_score.append(conf(o))

    n_t, n_g = len(targets), len(gen)
    if mode == "reference":
        acc = hits / n_t if n_t else 0.0
        if not y_true:  # nothing on either side: the reference fails; its silence convention gives 1
            ap = 1.0
        elif not any(y_true):  # no target: sklearn warns and returns 0
            ap = 0.0
        else:
            ap = float(average_precision_score(y_true, y_score))
        return OnsetScores(acc=float(acc), ap=ap, hits=hits, num_targets=n_t, num_generated=n_g)

    if n_t == 0:
        perfect = float(n_g == 0)
        return OnsetScores(acc=perfect, ap=perfect, hits=0, num_targets=0, num_generated=n_g)
    ap = 0.0 if hits == 0 else hits / n_t * float(average_precision_score(det_true, det_score))
    return OnsetScores(acc=hits / n_t, ap=ap, hits=hits, num_targets=n_t, num_generated=n_g)


def onset_metrics(
    generated: np.ndarray,
    reference: np.ndarray,
    sample_rate: int,
    *,
    reference_sample_rate: int | None = None,
    mode: Mode = "reference",
    clip_seconds: float | None = CLIP_SECONDS,
    match_window: float = MATCH_WINDOW_SECONDS,
) -> OnsetScores:
    """Onset accuracy / AP of a generated clip against its target clip (Greatest Hits protocol).

    Args:
        generated: Generated audio ``(T,)`` or ``(C, T)`` at ``sample_rate``.
        reference: Target audio at ``reference_sample_rate`` (default ``sample_rate``).
        sample_rate: Rate of ``generated`` in Hz.
        reference_sample_rate: Rate of ``reference`` in Hz.
        mode: "reference" (published code, quirks included) or "strict".
        clip_seconds: Both clips are cut to their first ``clip_seconds`` (2 s in the protocol; None: whole).
        match_window: Matching window in seconds.

    Returns:
        An :class:`OnsetScores`.
    """
    _check_mode(mode)
    y_gen = load_clip(generated, sample_rate, clip_seconds=clip_seconds)
    y_ref = load_clip(reference, reference_sample_rate or sample_rate, clip_seconds=clip_seconds)
    return onset_scores(
        detect_onsets(y_ref), detect_onsets(y_gen), y_gen, mode=mode, match_window=match_window
    )
