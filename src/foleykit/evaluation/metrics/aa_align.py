"""AA-Align: IoU between the onsets of generated and reference audio (STA-V2A, sec. II-D, eq. 8).

Protocol of the reference implementation (y-ren16/STAV2A ``EvalTools/aa_align.py``):

- peaks of both clips exactly as AV-Align's audio branch (mono 22050 Hz, ``librosa.onset.onset_strength``
  + ``onset_detect`` defaults, ``frames_to_time``), see :func:`foleykit.evaluation.metrics.av_align.detect_audio_peaks`;
- variant ``"reference"`` (many-to-one): each generated peak ``g`` counts once if *any* reference peak ``t``
  satisfies ``t - T < g < t + T`` (T = 0.1 s, open window); ``IoU = I / (|gen| + |gt| - I)``. Several
  generated peaks may match the same reference peak, so the score can exceed 1;
- variant ``"one-to-one"`` (foleykit): a reference peak can be matched once (first unused one in time
  order), which bounds the score by 1.

Both clips without peaks: the reference divides by zero; foleykit returns ``empty_score`` (default 1.0).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from foleykit.errors import ConfigError
from foleykit.evaluation.metrics._common import count_matches, peak_iou
from foleykit.evaluation.metrics.av_align import EMPTY_SCORE, detect_audio_peaks

#: The paper's matching half-window T in seconds.
WINDOW_SECONDS = 0.1

Variant = Literal["reference", "one-to-one"]
VARIANTS: tuple[str, ...] = ("reference", "one-to-one")


def aa_align_from_peaks(
    generated_peaks: np.ndarray,
    reference_peaks: np.ndarray,
    *,
    variant: Variant = "reference",
    window: float = WINDOW_SECONDS,
    empty_score: float = EMPTY_SCORE,
) -> float:
    """AA-Align IoU from peak times.

    Args:
        generated_peaks: Onset times of the generated clip in seconds ``(G,)``.
        reference_peaks: Onset times of the reference (ground-truth) clip in seconds ``(R,)``.
        variant: "reference" (many-to-one) or "one-to-one".
        window: Half-width T of the open matching window in seconds.
        empty_score: Score when both sets are empty.

    Returns:
        ``I / (|G| + |R| - I)``.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"unknown AA-Align variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if window <= 0:
        raise ConfigError(f"AA-Align window must be positive, got {window}")
    g = [float(x) for x in np.asarray(generated_peaks).reshape(-1)]
    r = [float(x) for x in np.asarray(reference_peaks).reshape(-1)]
    hits = count_matches(g, r, window, one_to_one=variant == "one-to-one")
    return peak_iou(len(g), len(r), hits, empty_score=empty_score)


def aa_align(
    generated: np.ndarray,
    reference: np.ndarray,
    sample_rate: int,
    *,
    reference_sample_rate: int | None = None,
    variant: Variant = "reference",
    window: float = WINDOW_SECONDS,
    empty_score: float = EMPTY_SCORE,
) -> float:
    """AA-Align of a generated clip against its reference clip.

    Args:
        generated: Generated audio ``(T,)`` or ``(C, T)`` at ``sample_rate``.
        reference: Reference audio ``(T',)`` or ``(C', T')`` at ``reference_sample_rate``.
        sample_rate: Rate of ``generated`` in Hz.
        reference_sample_rate: Rate of ``reference`` (default: ``sample_rate``). Both go to 22050 Hz mono.
        variant: "reference" (many-to-one, STA-V2A) or "one-to-one".
        window: Half-width T of the matching window (0.1 s in the paper).
        empty_score: Score when neither clip has an onset.

    Returns:
        The AA-Align score (clips of different lengths are compared as they are, like the reference).
    """
    g = detect_audio_peaks(generated, sample_rate)
    r = detect_audio_peaks(reference, reference_sample_rate or sample_rate)
    return aa_align_from_peaks(g, r, variant=variant, window=window, empty_score=empty_score)
