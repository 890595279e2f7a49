"""ReWaS energy control: frame-wise mean of the AudioLDM log-mel, Savitzky-Golay smoothed.

ReWaS (Jeong et al., AAAI'25) sec. 4.1: ``e_a = Smoothing(1/D * sum_d mel[w, d])`` with a second-order
Savitzky-Golay filter of window 9 (scipy.signal.savgol_filter), the mel being AudioLDM's (16 kHz, 64 mels,
hop 160 -> one value per 10 ms). The energy MAE metric uses the unsmoothed energy (``smooth=False``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from foleykit.audio import log_mel, to_mono
from foleykit.config import SequenceConfig
from foleykit.controls.base import TemporalControl

#: ReWaS smoothing: Savitzky-Golay window length and polynomial order.
SAVGOL_WINDOW = 9
SAVGOL_ORDER = 2


def savgol_smooth(x: np.ndarray, *, window: int = SAVGOL_WINDOW, order: int = SAVGOL_ORDER) -> np.ndarray:
    """Savitzky-Golay smoothing along the last axis (``scipy.signal.savgol_filter``, mode ``interp``).

    Series shorter than ``window`` use the largest odd window that fits (at least ``order + 1``; shorter
    series than that are returned unchanged), so very short clips still get a value per frame.

    Args:
        x: ``(..., W)`` float array.
        window: Odd window length (ReWaS: 9).
        order: Polynomial order (ReWaS: 2).

    Returns:
        ``(..., W)`` float64 smoothed array.
    """
    from scipy.signal import savgol_filter

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    w = min(window, n if n % 2 else n - 1)
    if w <= order:
        return x.copy()
    return savgol_filter(x, w, order, axis=-1)


def energy_from_mel(mel: np.ndarray | Tensor, *, smooth: bool = True) -> np.ndarray | Tensor:
    """Energy of a (batch of) log-mel spectrogram(s): mean over the mel axis, optionally smoothed.

    Args:
        mel: ``(..., n_mels, W)`` log-mel (numpy or Tensor, e.g. ``MelSpectrogram`` output ``Tensor[B x n_mels x W]``).
        smooth: Apply the ReWaS Savitzky-Golay (9, 2) filter along time.

    Returns:
        ``(..., W)`` energy, same type as the input (a Tensor stays on its device; the filter runs on CPU).
    """
    if isinstance(mel, Tensor):
        e = mel.mean(dim=-2)
        if smooth:
            e = torch.from_numpy(savgol_smooth(e.detach().cpu().numpy())).to(device=mel.device, dtype=e.dtype)
        return e
    e = np.asarray(mel, dtype=np.float64).mean(axis=-2)
    return (savgol_smooth(e) if smooth else e).astype(np.float32)


def energy(
    wav: np.ndarray | Tensor, sample_rate: int, *, smooth: bool = True, seq: SequenceConfig | None = None
) -> TemporalControl:
    """ReWaS energy control of a waveform.

    The audio is resampled to ``seq.sample_rate`` (16 kHz by default) with soxr, turned into the AudioLDM
    log-mel (:func:`foleykit.audio.log_mel`), averaged over mel bins and (by default) Savitzky-Golay
    (9, 2) smoothed. Silence gives ``log(1e-5) = -11.5129`` per frame.

    Args:
        wav: Mono ``(T,)`` or channels-first ``(C, T)`` waveform in [-1, 1] (channels are averaged).
        sample_rate: Sample rate of ``wav`` in Hz.
        smooth: Savitzky-Golay smoothing (ReWaS control path). ``False`` gives the raw energy used by the
            energy MAE metric.
        seq: Mel geometry (default ``SequenceConfig()``, AudioLDM).

    Returns:
        ``TemporalControl(kind="energy")`` at ``seq.mel_rate`` (100 Hz) with ``T' // hop_length`` frames.
    """
    seq = seq or SequenceConfig()
    x = to_mono(wav)
    mel = log_mel(x, sample_rate, seq)  # (n_mels, W)
    e = energy_from_mel(mel, smooth=smooth)
    meta = {
        "source": "audio",
        "smoothed": bool(smooth),
        "sample_rate": seq.sample_rate,
        "hop_length": seq.hop_length,
        "n_mels": seq.n_mels,
    }
    if smooth:
        meta["savgol"] = [SAVGOL_WINDOW, SAVGOL_ORDER]
    return TemporalControl("energy", e, seq.mel_rate, 0.0, meta)
