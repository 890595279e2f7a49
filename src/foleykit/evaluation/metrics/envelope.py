"""Envelope metrics: E-L1 (T-Foley) and RMS class accuracy (Stable-V2A / Video-Foley).

E-L1 (T-Foley, Chung et al. ICASSP 2024; Stable-V2A eq. 11), T-Foley protocol (YoonjinXD/T-FOLEY):

- both clips mono at 22050 Hz (``sample_rate`` configurable: Stable-V2A reports it at 16 kHz), cut to
  their common length, each peak-normalised ``x / max|x|`` (a silent clip stays zero);
- ``r = librosa.feature.rms(frame_length=512, hop_length=128, center=True, pad_mode='constant')``;
- zero-phase low-pass ``b, a = scipy.signal.ellip(4, 0.01, 120, 0.125)``, ``filtfilt(method="gust")``
  (``foleykit.controls.rms.lowpass_envelope``), no clamp;
- ``E-L1 = mean_i |r_gen[i] - r_ref[i]|``.

RMS class accuracy (Stable-V2A sec. V-C, acc@k): the control envelope of ``foleykit.controls.rms``
(16 kHz, reflect pad 192, rms frame 512 hop 128 center=False, same low-pass, clamp >= 0 -> 125 Hz) is
quantised to 64 mu-law classes (mu = 63, rms_min = 0.01). ``acc@k`` is the fraction of frames whose
target class is among the k highest-scoring classes of a predictor's logits / probabilities
(``sklearn.metrics.top_k_accuracy_score``); the tolerance accuracy is the fraction of frames with
``|pred - target| <= t`` classes, usable when only class indices exist (e.g. classes of generated audio).
"""

from __future__ import annotations

import numpy as np

from foleykit.errors import EvaluationError
from foleykit.evaluation.metrics._common import prepare

#: T-Foley's E-L1 rate.
E_L1_SAMPLE_RATE = 22050
FRAME_LENGTH = 512
HOP_LENGTH = 128
#: Rate of the Stable-V2A RMS control (foleykit.controls.rms at SequenceConfig() geometry).
RMS_SAMPLE_RATE = 16000
N_CLASSES = 64


def e_l1_envelope(y: np.ndarray) -> np.ndarray:
    """T-Foley envelope of mono audio already at the protocol rate. ``(T,) -> (T // 128 + 1,)`` float64.

    Peak normalisation, ``librosa.feature.rms(frame 512, hop 128, center=True, pad_mode='constant')``,
    then the zero-phase elliptic low-pass.
    """
    import librosa

    from foleykit.controls.rms import lowpass_envelope

    x = np.asarray(y, dtype=np.float32)
    if x.size == 0:
        raise EvaluationError("E-L1: the audio is empty")
    peak = float(np.max(np.abs(x)))
    if peak > 0:
        x = x / peak
    r = librosa.feature.rms(
        y=x, frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH, center=True, pad_mode="constant"
    )[0]
    return lowpass_envelope(r)


def e_l1(
    generated: np.ndarray,
    reference: np.ndarray,
    sample_rate: int,
    *,
    reference_sample_rate: int | None = None,
    target_sample_rate: int = E_L1_SAMPLE_RATE,
) -> float:
    """E-L1 envelope distance of a generated clip to its reference (lower is better; 0 for identical clips).

    Args:
        generated: Generated audio ``(T,)`` or ``(C, T)`` at ``sample_rate``.
        reference: Reference audio at ``reference_sample_rate`` (default ``sample_rate``).
        sample_rate: Rate of ``generated`` in Hz.
        reference_sample_rate: Rate of ``reference`` in Hz.
        target_sample_rate: Protocol rate (22050 Hz T-Foley; 16000 Hz Stable-V2A).

    Returns:
        Mean absolute difference of the two envelopes over the clips' common length.
    """
    g = prepare(generated, sample_rate, target_sample_rate)
    r = prepare(reference, reference_sample_rate or sample_rate, target_sample_rate)
    n = min(g.size, r.size)
    if n == 0:
        raise EvaluationError("E-L1: one of the clips is empty")
    eg, er = e_l1_envelope(g[:n]), e_l1_envelope(r[:n])
    return float(np.mean(np.abs(eg - er)))


def rms_classes(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """64-class mu-law RMS classes of the Stable-V2A control envelope at 125 Hz. ``(T,) -> (T16k // 128,)`` int64."""
    from foleykit.controls.rms import rms_envelope, rms_to_classes

    y = prepare(wav, sample_rate, RMS_SAMPLE_RATE)
    env = rms_envelope(y, RMS_SAMPLE_RATE)
    return np.asarray(rms_to_classes(np.asarray(env.values)), dtype=np.int64)


def topk_accuracy(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    """acc@k over frames: fraction of frames whose target class is among the ``k`` best-scored classes.

    Args:
        scores: Class logits or probabilities ``(N, C)`` (any monotone score works).
        targets: Target classes ``(N,)`` in ``[0, C)``.
        k: Number of top classes (Stable-V2A reports 1, 5, 10).

    Returns:
        acc@k in [0, 1].
    """
    from sklearn.metrics import top_k_accuracy_score

    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets).reshape(-1)
    if s.ndim != 2 or s.shape[0] != t.shape[0] or s.shape[0] == 0:
        raise EvaluationError(
            f"acc@k needs scores (N, C) and targets (N,), N >= 1; got {s.shape} and {t.shape}"
        )
    if t.min() < 0 or t.max() >= s.shape[1]:
        raise EvaluationError(f"targets must be classes in [0, {s.shape[1]})")
    if k < 1:
        raise EvaluationError(f"k must be >= 1, got {k}")
    if k >= s.shape[1]:
        return 1.0  # every class is in the top k
    return float(top_k_accuracy_score(t, s, k=k, labels=np.arange(s.shape[1])))


def tolerance_accuracy(predicted: np.ndarray, targets: np.ndarray, tolerance: int = 0) -> float:
    """Fraction of frames with ``|predicted - target| <= tolerance`` classes (tolerance 0: exact accuracy).

    Args:
        predicted: Predicted classes ``(N,)``.
        targets: Target classes ``(N,)``.
        tolerance: Allowed class distance.
    """
    p = np.asarray(predicted).reshape(-1).astype(np.int64)
    t = np.asarray(targets).reshape(-1).astype(np.int64)
    if p.shape != t.shape or p.size == 0:
        raise EvaluationError(
            f"tolerance accuracy needs two non-empty class arrays of one length; got {p.shape}, {t.shape}"
        )
    if tolerance < 0:
        raise EvaluationError(f"tolerance must be >= 0, got {tolerance}")
    return float(np.mean(np.abs(p - t) <= tolerance))


def rms_class_accuracy(
    generated: np.ndarray,
    reference: np.ndarray,
    sample_rate: int,
    *,
    reference_sample_rate: int | None = None,
    tolerance: int = 0,
) -> float:
    """Tolerance accuracy of the generated clip's RMS classes against the reference clip's (common frames).

    Args:
        generated: Generated audio ``(T,)`` or ``(C, T)`` at ``sample_rate``.
        reference: Reference audio at ``reference_sample_rate`` (default ``sample_rate``).
        sample_rate: Rate of ``generated`` in Hz.
        reference_sample_rate: Rate of ``reference`` in Hz.
        tolerance: Allowed class distance (0 = exact class match).

    Returns:
        Fraction of the common frames within ``tolerance`` classes.
    """
    cg = rms_classes(generated, sample_rate)
    cr = rms_classes(reference, reference_sample_rate or sample_rate)
    n = min(cg.size, cr.size)
    return tolerance_accuracy(cg[:n], cr[:n], tolerance)
