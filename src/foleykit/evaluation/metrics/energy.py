"""Energy MAE (ReWaS, Jeong et al. AAAI 2025, Tables 2-3): distance between frame energies of two clips.

Protocol of the reference code (naver-ai/rewas ``eval_MAE.py`` with AudioLDM's ``AudioDataset``):

- each clip mono at 16 kHz, cut to the evaluation duration (ReWaS crops at a *random* start — foleykit
  crops deterministically from 0 s) and zero-padded to it if shorter (AudioLDM ``pad_wav``);
- AudioLDM waveform normalisation ``0.5 * (x - mean) / (max|x - mean| + 1e-8)`` (``normalize_wav``);
- AudioLDM log-mel (reflect pad 432, STFT 1024 / hop 160 Hann, magnitude, 64 Slaney mels 0-8 kHz,
  ``log(clamp(., 1e-5))``, ``foleykit.audio.log_mel``); energy = mean over the 64 mel bins (one value per
  10 ms), no smoothing (``foleykit.controls.energy.energy(smooth=False)``);
- ``MAE = mean |E_gen - E_gt|`` over frames (and clips: ``nn.L1Loss`` over the stacked clips).

With ``duration=None`` (the default) both clips are compared over their common length; with a duration
(ReWaS: 5 s on VGGSound) every clip is cut / zero-padded to it, which makes the mean over clips equal to
the reference's frame-pooled L1 loss.
"""

from __future__ import annotations

import numpy as np

from foleykit.errors import EvaluationError
from foleykit.evaluation.metrics._common import prepare

SAMPLE_RATE = 16000
#: AudioLDM normalize_wav: peak after mean removal.
NORMALIZED_PEAK = 0.5


def normalize_wav(y: np.ndarray) -> np.ndarray:
    """AudioLDM ``normalize_wav``: remove the mean, scale the peak to 0.5 (1e-8 guard). ``(T,) -> (T,)`` float32."""
    x = np.asarray(y, dtype=np.float64)
    x = x - np.mean(x)
    x = x / (np.max(np.abs(x)) + 1e-8)
    return (x * NORMALIZED_PEAK).astype(np.float32)


def clip_energy(y: np.ndarray, *, normalize: bool = True) -> np.ndarray:
    """Unsmoothed ReWaS energy of 16 kHz mono audio ``(T,) -> (T // 160,)`` float32 (log-mel bin mean)."""
    from foleykit.controls.energy import energy

    x = normalize_wav(y) if normalize else np.asarray(y, dtype=np.float32)
    return np.asarray(energy(x, SAMPLE_RATE, smooth=False).values, dtype=np.float32)


def energy_mae(
    generated: np.ndarray,
    reference: np.ndarray,
    sample_rate: int,
    *,
    reference_sample_rate: int | None = None,
    duration: float | None = None,
    normalize: bool = True,
) -> float:
    """Energy MAE of a generated clip against its reference (lower is better, 0 for identical clips).

    Args:
        generated: Generated audio ``(T,)`` or ``(C, T)`` at ``sample_rate``.
        reference: Reference audio at ``reference_sample_rate`` (default ``sample_rate``).
        sample_rate: Rate of ``generated`` in Hz.
        reference_sample_rate: Rate of ``reference`` in Hz.
        duration: Evaluation window in seconds from the start (clips cut / zero-padded to it); None: the
            clips' common length.
        normalize: Apply AudioLDM's waveform normalisation first (as the reference data loader does).

    Returns:
        Mean absolute energy difference over frames.
    """
    from foleykit.audio import mel_for

    g = prepare(generated, sample_rate, SAMPLE_RATE)
    r = prepare(reference, reference_sample_rate or sample_rate, SAMPLE_RATE)
    if duration is not None:
        if duration <= 0:
            raise EvaluationError(f"energy MAE duration must be positive, got {duration}")
        n = int(SAMPLE_RATE * duration)
    else:
        n = min(g.size, r.size)
    g, r = g[:n], r[:n]
    shortest = min(g.size, r.size)
    if shortest < mel_for().min_samples():
        raise EvaluationError(f"energy MAE: clip too short ({shortest} samples at 16 kHz)")
    if normalize:  # AudioLDM order: crop, normalise, then zero-pad to the window
        g, r = normalize_wav(g), normalize_wav(r)
    g, r = (np.pad(x, (0, n - x.size)) for x in (g, r))
    eg, er = clip_energy(g, normalize=False), clip_energy(r, normalize=False)
    return float(np.mean(np.abs(eg.astype(np.float64) - er)))
