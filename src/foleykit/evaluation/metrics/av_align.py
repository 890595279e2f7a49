"""AV-Align: IoU between audio onsets and optical-flow peaks of the video (Yariv et al., AAAI 2024).

Protocol of the reference implementation (TempoTokens ``av_align.py`` at HEAD bf0b1e3), variant
``"reference"`` (the default):

- audio: mono at 22050 Hz (``librosa.load`` defaults: channel mean, soxr_hq resampling);
  ``env = librosa.onset.onset_strength(y, sr)`` (n_fft 2048, hop 512, 128 mels) and
  ``A = frames_to_time(onset_detect(onset_envelope=env, sr))`` (delta 0.07, wait 1, pre/post max 1,
  pre_avg 4, post_avg 5).
- video: every frame at the native frame rate (no resampling, no resize); the Farneback flow trajectory
  ``traj = [flow(f0, f1)] + [flow(f[i-1], f[i]) for i in 1..N-1]`` with ``flow = mean(|F|)`` over all
  pixels and both components (``foleykit.controls.flow_trajectory``); video peaks
  ``V = {i / fps : 1 <= i <= N-2, traj[i-1] < traj[i] > traj[i+1], traj[i] >= 0.1}``.
- matching: one-to-one greedy — for each audio peak ``a`` in order, the first unused video peak ``v`` with
  ``v - 1/fps < a < v + 1/fps`` (open window) is matched; ``IoU = I / (|A| + |V| - I)``.

Variant ``"legacy"`` (the paper's original script, copied by ReWaS and STA-V2A): no flow threshold,
``flow = mean(sqrt(dx^2 + dy^2))`` (``cv2.magnitude`` then ``cv2.mean``) and many-to-one matching (a
video peak may be matched by several audio peaks), so scores can exceed 1. STA-V2A's copy adds a strict
``traj[i] > 0.1`` threshold: ``variant="legacy", flow_threshold=0.1``.

Both sets empty (silent audio on a still video): the reference divides by zero. foleykit returns
``empty_score`` (default 1.0: nothing happens in either stream, so nothing is misaligned).
"""

from __future__ import annotations

import os
import warnings
from typing import Literal

import numpy as np

from foleykit.errors import ConfigError
from foleykit.evaluation.metrics._common import count_matches, peak_iou, prepare

#: Audio rate of the AV-Align / AA-Align audio branch (librosa.load default).
AUDIO_SAMPLE_RATE = 22050
#: Minimum flow magnitude of a video peak in the reference (HEAD) protocol.
FLOW_THRESHOLD = 0.1
#: Score when neither stream has a peak (the reference divides by zero).
EMPTY_SCORE = 1.0

Variant = Literal["reference", "legacy"]
#: Per-frame flow reduction of each variant (``foleykit.controls.flow_trajectory(reduction=...)``).
FLOW_REDUCTION = {"reference": "abs", "legacy": "magnitude"}
VARIANTS: tuple[str, ...] = ("reference", "legacy")
_VARIANT_DEFAULT = "variant"


def detect_audio_peaks(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Audio onset times of the AV-Align / AA-Align audio branch.

    Args:
        wav: Audio ``(T,)`` or ``(C, T)`` at ``sample_rate``; mixed to mono and resampled to 22050 Hz.
        sample_rate: Rate of ``wav`` in Hz.

    Returns:
        Onset times in seconds, ascending, float64 ``(K,)`` (empty for empty or silent audio).
    """
    import librosa

    y = prepare(wav, sample_rate, AUDIO_SAMPLE_RATE)
    if y.size == 0 or not np.any(y):
        return np.zeros(0, dtype=np.float64)
    with warnings.catch_warnings():  # clips shorter than n_fft are fine (zero-padded frames)
        warnings.filterwarnings("ignore", message="n_fft=.*is too large", category=UserWarning)
        env = librosa.onset.onset_strength(y=y, sr=AUDIO_SAMPLE_RATE)
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=AUDIO_SAMPLE_RATE)
    return np.asarray(librosa.frames_to_time(frames, sr=AUDIO_SAMPLE_RATE), dtype=np.float64)


def detect_video_peaks(
    trajectory: np.ndarray, fps: float, *, threshold: float | None = FLOW_THRESHOLD, inclusive: bool = True
) -> np.ndarray:
    """Local maxima of a flow-magnitude trajectory, in seconds.

    Args:
        trajectory: Flow magnitude per frame ``(N,)`` (``foleykit.controls.flow_trajectory``).
        fps: Native frame rate of the video.
        threshold: Minimum magnitude of a peak; None disables it (legacy).
        inclusive: ``traj[i] >= threshold`` (reference HEAD) if True, ``traj[i] > threshold`` (STA-V2A) if False.

    Returns:
        Peak times ``i / fps`` for ``1 <= i <= N-2`` with ``traj[i-1] < traj[i] > traj[i+1]``, float64 ``(K,)``.
    """
    if fps <= 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    traj = [float(v) for v in np.asarray(trajectory, dtype=np.float64).reshape(-1)]
    peaks = []
    for i in range(1, len(traj) - 1):
        if not traj[i - 1] < traj[i] > traj[i + 1]:
            continue
        if threshold is not None and not (traj[i] >= threshold if inclusive else traj[i] > threshold):
            continue
        peaks.append(i / fps)
    return np.asarray(peaks, dtype=np.float64)


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown AV-Align variant {variant!r}; choose one of {', '.join(VARIANTS)}")


def _threshold_for(variant: str, flow_threshold: float | None | str) -> tuple[float | None, bool]:
    """(threshold, inclusive) for a variant: reference >= 0.1; legacy none (or strict > when given)."""
    if flow_threshold == _VARIANT_DEFAULT:
        return (FLOW_THRESHOLD, True) if variant == "reference" else (None, False)
    return flow_threshold, variant == "reference"  # type: ignore[return-value]


def av_align_from_peaks(
    audio_peaks: np.ndarray,
    video_peaks: np.ndarray,
    fps: float,
    *,
    variant: Variant = "reference",
    empty_score: float = EMPTY_SCORE,
) -> float:
    """AV-Align IoU from detected peaks.

    Args:
        audio_peaks: Audio onset times in seconds ``(A,)``.
        video_peaks: Video peak times in seconds ``(V,)``.
        fps: Native frame rate (the matching window is the open interval ``v +- 1/fps``).
        variant: "reference" (one-to-one, <= 1) or "legacy" (many-to-one, may exceed 1).
        empty_score: Score when both sets are empty.

    Returns:
        ``I / (|A| + |V| - I)``.
    """
    _check_variant(variant)
    if fps <= 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    a = [float(x) for x in np.asarray(audio_peaks).reshape(-1)]
    v = [float(x) for x in np.asarray(video_peaks).reshape(-1)]
    hits = count_matches(a, v, 1 / fps, one_to_one=variant == "reference")
    return peak_iou(len(a), len(v), hits, empty_score=empty_score)


def video_peaks_from_frames(
    frames: np.ndarray,
    fps: float,
    *,
    variant: Variant = "reference",
    flow_threshold: float | None | str = _VARIANT_DEFAULT,
) -> np.ndarray:
    """Video peaks of RGB frames ``(N, H, W, 3)`` uint8 at native ``fps`` (fewer than 3 frames: none)."""
    _check_variant(variant)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] < 3:
        if frames.ndim != 4 and frames.size:
            raise ConfigError(f"frames must be (N, H, W, 3) uint8 RGB; got shape {frames.shape}")
        return np.zeros(0, dtype=np.float64)
    from foleykit.controls import flow_trajectory

    threshold, inclusive = _threshold_for(variant, flow_threshold)
    traj = flow_trajectory(frames, reduction=FLOW_REDUCTION[variant])
    return detect_video_peaks(traj, fps, threshold=threshold, inclusive=inclusive)


def av_align(
    audio: np.ndarray,
    sample_rate: int,
    frames: np.ndarray,
    fps: float,
    *,
    variant: Variant = "reference",
    flow_threshold: float | None | str = _VARIANT_DEFAULT,
    empty_score: float = EMPTY_SCORE,
) -> float:
    """AV-Align of (generated) audio against the video it should accompany.

    Args:
        audio: Audio ``(T,)`` or ``(C, T)`` at ``sample_rate`` (resampled to 22050 Hz mono).
        sample_rate: Audio rate in Hz.
        frames: All video frames at the native rate, RGB uint8 ``(N, H, W, 3)`` (no resize).
        fps: Native frame rate.
        variant: "reference" (HEAD: 0.1 threshold, one-to-one) or "legacy" (no threshold, many-to-one).
        flow_threshold: Override the variant's flow threshold (None disables it; with "legacy" a value is
            compared strictly, as in STA-V2A's copy). Default: the variant's own.
        empty_score: Score when neither stream has a peak.

    Returns:
        The AV-Align score of this clip.
    """
    a = detect_audio_peaks(audio, sample_rate)
    v = video_peaks_from_frames(frames, fps, variant=variant, flow_threshold=flow_threshold)
    return av_align_from_peaks(a, v, fps, variant=variant, empty_score=empty_score)


def av_align_from_paths(
    audio_path: str | os.PathLike,
    video_path: str | os.PathLike,
    *,
    variant: Variant = "reference",
    flow_threshold: float | None | str = _VARIANT_DEFAULT,
    empty_score: float = EMPTY_SCORE,
) -> float:
    """AV-Align of an audio file against a video file (any formats FFmpeg decodes).

    The audio is decoded as ``librosa.load(path)`` does (mono, 22050 Hz, soxr_hq); the video at its native
    frame rate and size. Raises the typed ``foleykit.errors.MediaError`` subclasses on unusable files.
    """
    from foleykit.media import read_audio, read_video

    wav = read_audio(audio_path, sample_rate=AUDIO_SAMPLE_RATE, mono=True)
    clip = read_video(video_path)
    return av_align(
        wav,
        AUDIO_SAMPLE_RATE,
        clip.frames,
        clip.fps,
        variant=variant,
        flow_threshold=flow_threshold,
        empty_score=empty_score,
    )
