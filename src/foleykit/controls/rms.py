"""Stable-V2A RMS envelope control and its 64-class mu-law quantisation.

Stable-V2A (Gramaccioni et al.) sec. III-B/C and Video-Foley (Lee et al.), as in the specification's
REFERENCE.md ("E-L1 and RMS classes"):

- envelope: reflect-pad ``(frame - hop) / 2`` samples, ``librosa.feature.rms(center=False)`` (computed by
  :func:`framed_rms`, equal to it; eq. 7:
  ``r_i = sqrt(1/W sum y^2)`` with W = 512, h = 128 at 16 kHz -> 1250 frames for 10 s), zero-phase
  elliptic low-pass ``ellip(4, 0.01, 120, 0.125)`` with ``filtfilt(method="gust")``, clamped at 0;
- mu-law classes (eq. 8): 64 classes, mu = 63, rms_min = 0.01; bin edges
  ``inverse_mu(linspace(mu(rms_min), 1, 64))``; ``class = bucketize(r, edges, right=True)`` (class 0 below
  rms_min);
- Gaussian label smoothing of the class targets (eq. 9).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from torch import Tensor

from foleykit.audio import resample, to_mono
from foleykit.config import SequenceConfig
from foleykit.controls.base import TemporalControl
from foleykit.errors import ControlError

N_CLASSES = 64
MU = 63
RMS_MIN = 0.01


# --- envelope --------------------------------------------------------------------------------------------
def lowpass_envelope(envelope: np.ndarray, *, clamp: bool = False) -> np.ndarray:
    """Zero-phase elliptic low-pass of an RMS envelope (T-Foley E-L1 / Stable-V2A control).

    ``b, a = scipy.signal.ellip(4, 0.01, 120, 0.125)`` (4th order, 0.01 dB ripple, 120 dB stop band, cut-off
    at 0.125 x Nyquist of the envelope rate), applied forwards and backwards with
    ``scipy.signal.filtfilt(b, a, x, method="gust")``.

    Args:
        envelope: ``(..., N)`` envelope(s), filtered along the last axis.
        clamp: Clamp the result at 0 (the Stable-V2A control does; the E-L1 metric does not).

    Returns:
        ``(..., N)`` float64 filtered envelope.
    """
    from scipy.signal import ellip, filtfilt

    x = np.asarray(envelope, dtype=np.float64)
    if x.shape[-1] < 1:
        raise ControlError("lowpass_envelope: the envelope is empty")
    b, a = ellip(4, 0.01, 120, 0.125)
    y = filtfilt(b, a, x, axis=-1, method="gust")
    return np.maximum(y, 0.0) if clamp else y


def framed_rms(x: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS of each full frame of a 1-D signal: ``librosa.feature.rms(y=x, frame_length=, hop_length=,
    center=False)[0]``, computed with numpy so that the gain stage on every generation's path
    (:func:`follow_envelope`) does not import librosa's numba and scipy stack (2.2 s on 2 cores, measured with
    the model loaded); the equality is a test."""
    frames = np.lib.stride_tricks.sliding_window_view(x, frame_length)[::hop_length]
    return np.sqrt(np.mean(np.abs(frames) ** 2, axis=-1))


def rms_envelope(
    wav: np.ndarray | Tensor,
    sample_rate: int,
    *,
    frame_length: int = 512,
    hop_length: int = 128,
    lowpass: bool = True,
    seq: SequenceConfig | None = None,
) -> TemporalControl:
    """Stable-V2A RMS envelope of a waveform.

    Args:
        wav: Mono ``(T,)`` or channels-first ``(C, T)`` waveform in [-1, 1] (channels are averaged).
        sample_rate: Sample rate of ``wav`` in Hz.
        frame_length: RMS window W in samples (Stable-V2A: 512 at 16 kHz).
        hop_length: RMS hop h in samples (Stable-V2A: 128 at 16 kHz -> 125 Hz).
        lowpass: Apply the zero-phase elliptic low-pass and clamp >= 0 (the control); ``False`` gives the
            raw padded RMS.
        seq: If given, the audio is first resampled to ``seq.sample_rate`` and the hop is
            ``seq.control_hop`` (frame ``4 * control_hop``), so the envelope lands on the model's control
            grid (``seq.control_rate``); ``frame_length`` / ``hop_length`` are then ignored.

    Returns:
        ``TemporalControl(kind="rms")`` at ``sample_rate / hop_length`` Hz with ``T // hop_length`` frames
        (10 s at 16 kHz -> 1250 frames). A constant-amplitude sine of amplitude A gives A / sqrt(2).
    """
    x = to_mono(wav)
    if seq is not None:
        x = resample(x, sample_rate, seq.sample_rate)
        sample_rate, hop_length, frame_length = seq.sample_rate, seq.control_hop, 4 * seq.control_hop
    if not 0 < hop_length <= frame_length:
        raise ControlError(
            f"rms_envelope: need 0 < hop_length <= frame_length, got {hop_length}, {frame_length}"
        )
    total = frame_length - hop_length
    left, right = total // 2, total - total // 2
    if x.shape[0] <= right or x.shape[0] < hop_length:
        raise ControlError(
            f"audio too short for the RMS envelope: {x.shape[0]} samples, need more than "
            f"{max(right, hop_length - 1)} at {sample_rate} Hz"
        )
    padded = np.pad(x, (left, right), mode="reflect")
    r = framed_rms(padded, frame_length, hop_length)
    if lowpass:
        r = lowpass_envelope(r, clamp=True)
    meta = {
        "source": "audio",
        "sample_rate": int(sample_rate),
        "frame_length": int(frame_length),
        "hop_length": int(hop_length),
        "lowpass": bool(lowpass),
    }
    return TemporalControl("rms", r.astype(np.float32), sample_rate / hop_length, 0.0, meta)


# --- mu-law classes --------------------------------------------------------------------------------------
def mu_law(x: np.ndarray, mu: float = MU) -> np.ndarray:
    """Stable-V2A eq. 8: ``sign(x) * log(1 + mu |x|) / log(1 + mu)``."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def inverse_mu_law(y: np.ndarray, mu: float = MU) -> np.ndarray:
    """Inverse of :func:`mu_law`: ``sign(y) * ((1 + mu) ** |y| - 1) / mu``."""
    y = np.asarray(y, dtype=np.float64)
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def rms_bin_edges(n_classes: int = N_CLASSES, mu: float = MU, rms_min: float = RMS_MIN) -> np.ndarray:
    """The ``n_classes`` mu-law bin edges: ``inverse_mu(linspace(mu(rms_min), 1, n_classes))``.

    ``edges[0] == rms_min`` and ``edges[-1] == 1.0``; the edges are evenly spaced in the mu-law domain
    (about 0.5 dB apart at the top for 64 classes).

    Returns:
        ``(n_classes,)`` float64 increasing edges.
    """
    if n_classes < 2:
        raise ControlError(f"need at least 2 RMS classes, got {n_classes}")
    if not 0 < rms_min < 1:
        raise ControlError(f"rms_min must be in (0, 1), got {rms_min}")
    if mu <= 0:
        raise ControlError(f"mu must be positive, got {mu}")
    edges = inverse_mu_law(np.linspace(mu_law(rms_min, mu), 1.0, n_classes), mu)
    edges[0], edges[-1] = rms_min, 1.0  # exact despite the log/exp round trip
    return edges


def rms_to_classes(
    rms: np.ndarray | TemporalControl, n_classes: int = N_CLASSES, mu: float = MU, rms_min: float = RMS_MIN
) -> np.ndarray | TemporalControl:
    """Quantise RMS values to mu-law classes (``torch.bucketize(r, edges, right=True)`` semantics).

    Class 0 means ``r < rms_min`` (silence, negative values included); class ``k >= 1`` means
    ``edges[k-1] <= r < edges[k]``. Values ``>= 1.0`` (which the reference maps to an out-of-range index
    ``n_classes``) are put in the top class ``n_classes - 1``.

    Args:
        rms: ``(..., N)`` RMS values, or a ``TemporalControl(kind="rms")``.

    Returns:
        int64 classes of the same shape, or a ``TemporalControl(kind="rms_class")`` for a control input.
    """
    edges = rms_bin_edges(n_classes, mu, rms_min)
    if isinstance(rms, TemporalControl):
        if rms.is_class or rms.is_event:
            raise ControlError(f"rms_to_classes needs an RMS envelope, got a {rms.kind!r} control")
        classes = rms_to_classes(rms.values, n_classes, mu, rms_min)
        meta = dict(rms.meta, n_classes=n_classes, mu=mu, rms_min=rms_min)
        return TemporalControl("rms_class", classes, rms.rate, rms.start, meta)
    # Compare in float32 (the dtype of controls and of the reference's torch tensors), so that decoded
    # float32 edge values re-encode to exactly their class.
    r = np.asarray(rms, dtype=np.float32)
    classes = np.searchsorted(edges.astype(np.float32), r, side="right")  # == bucketize(right=True)
    return np.minimum(classes, n_classes - 1).astype(np.int64)


def classes_to_rms(
    classes: np.ndarray | TemporalControl,
    n_classes: int = N_CLASSES,
    mu: float = MU,
    rms_min: float = RMS_MIN,
    *,
    variant: Literal["lower", "reference"] = "lower",
) -> np.ndarray | TemporalControl:
    """Decode mu-law classes to RMS values (an edge value per class; class 0 -> 0.0).

    Variants:
        - ``lower`` (default): class k -> ``edges[k-1]``, the lower edge of its bin, so that
          ``rms_to_classes(classes_to_rms(c)) == c`` exactly (edited curves re-encode to the same classes).
        - ``reference``: class k -> ``edges[k]``, the upper edge, as Video-Foley's ``undiscretize_rms``
          (``mu_bins[k]`` with ``mu_bins[0] = 0``); re-encoding moves every class 1..62 up by one.

    Args:
        classes: int ``(..., N)`` classes in ``[0, n_classes)``, or a ``TemporalControl(kind="rms_class")``.

    Returns:
        float32 RMS values of the same shape, or a ``TemporalControl(kind="rms")`` for a control input.
    """
    if isinstance(classes, TemporalControl):
        if not classes.is_class:
            raise ControlError(f"classes_to_rms needs a class control (rms_class), got {classes.kind!r}")
        values = classes_to_rms(classes.values, n_classes, mu, rms_min, variant=variant)
        meta = dict(classes.meta, decoded=variant)
        return TemporalControl("rms", values, classes.rate, classes.start, meta)
    c = np.asarray(classes)
    if c.dtype.kind not in "iu":
        if c.dtype.kind != "f" or not np.array_equal(c, np.rint(c)):
            raise ControlError(f"classes must be integers, got dtype {c.dtype}")
        c = c.astype(np.int64)
    if c.size and (c.min() < 0 or c.max() >= n_classes):
        raise ControlError(f"classes must be in [0, {n_classes}), got values from {c.min()} to {c.max()}")
    edges = rms_bin_edges(n_classes, mu, rms_min)
    if variant == "lower":
        table = np.concatenate([[0.0], edges[:-1]])
    elif variant == "reference":
        table = np.concatenate([[0.0], edges[1:]])
    else:
        raise ControlError(f"unknown decode variant {variant!r}; use 'lower' or 'reference'")
    return table[c].astype(np.float32)


def gaussian_smoothed_targets(
    classes: np.ndarray | Tensor,
    n_classes: int = N_CLASSES,
    sigma: float = 1.0,
    window: int = 2,
    *,
    variant: Literal["paper", "video_foley"] = "paper",
) -> np.ndarray | Tensor:
    """Gaussian label smoothing of class targets (Stable-V2A eq. 9).

    For a target class ``c_gt != 0``: class ``c`` gets 1.0 when ``c == c_gt``, ``g(|c - c_gt|)`` when
    ``1 <= |c - c_gt| <= window`` and ``c != 0``, else 0. A target of class 0 (silence) stays one-hot.
    The rows are not normalised (as in the paper and the reference code).

    Variants of ``g(d)``:
        - ``paper`` (default): ``exp(-d^2 / (2 sigma^2))``;
        - ``video_foley``: ``exp(-2^d / (2 * 2^sigma))`` (Video-Foley's ``gaussian_val``, likely a typo of
          the paper's form; with sigma = 1: ``exp(-2^d / 4)``).

    Args:
        classes: ``(..., N)`` integer classes (numpy or Tensor).
        n_classes: Number of classes C.
        sigma: Gaussian width in classes.
        window: W, the largest smoothed distance (Video-Foley's ``gls_blur_range``: 2).
        variant: See above.

    Returns:
        ``(..., N, C)`` float32 soft targets, same type (and device) as the input.
    """
    import torch

    is_tensor = isinstance(classes, Tensor)
    c = torch.as_tensor(classes).long()
    if c.numel() and (int(c.min()) < 0 or int(c.max()) >= n_classes):
        raise ControlError(
            f"classes must be in [0, {n_classes}), got values from {int(c.min())} to {int(c.max())}"
        )
    if window < 0 or sigma <= 0:
        raise ControlError(f"need window >= 0 and sigma > 0, got window {window}, sigma {sigma}")
    d = torch.arange(n_classes, device=c.device).view(*([1] * c.ndim), n_classes) - c.unsqueeze(-1)
    dist = d.abs().double()
    if variant == "paper":
        g = torch.exp(-(dist**2) / (2 * sigma**2))
    elif variant == "video_foley":
        g = torch.exp(-torch.pow(2.0, dist) / (2 * 2.0**sigma))
    else:
        raise ControlError(f"unknown smoothing variant {variant!r}; use 'paper' or 'video_foley'")
    target = torch.where(dist <= window, g, torch.zeros_like(g))
    target[..., 0] = 0.0  # class 0 never receives smoothed mass
    target = torch.where(d == 0, torch.ones_like(target), target)
    silent = (c == 0).unsqueeze(-1)
    one_hot = (d == 0).double()
    target = torch.where(silent, one_hot, target).float()
    return target if is_tensor else target.numpy()


# --- envelope following ------------------------------------------------------------------------------------
#: Largest boost :func:`follow_envelope` applies (dB): quiet renderings are raised, noise is not blown up.
FOLLOW_MAX_GAIN_DB = 18.0


def follow_envelope(
    wav: np.ndarray,
    sample_rate: int,
    target: TemporalControl,
    *,
    strength: float = 1.0,
    max_gain_db: float = FOLLOW_MAX_GAIN_DB,
    rms_min: float = RMS_MIN,
) -> np.ndarray:
    """Make a rendering's loudness follow an RMS envelope (a gain stage after the vocoder).

    The ControlNet steers the diffusion model towards the envelope; this stage enforces it. The waveform's
    own envelope ``m`` is measured on the control's frames (:func:`rms_envelope` on the control's hop,
    without the low-pass, so that short bursts the target does not have are pulled down too) and a
    per-frame gain brings it to the target ``r``:

    - ``r >= rms_min``: ``g = r / m`` (boost limited to ``max_gain_db``);
    - ``r < rms_min`` (mu-law class 0, "below -40 dBFS", which decodes to 0): the frame is only limited to
      ``rms_min``, ``g = min(1, rms_min / m)`` -- quiet beds stay, loud spurious bursts are pulled down, and
      no frame is gated to digital silence.

    ``g ** strength`` is interpolated linearly between frame centres to every sample (frames of 4 hops
    overlap, so the gain moves smoothly). ``strength`` 0 is a no-op, 1 follows fully.

    Args:
        wav: Waveform ``(T,)`` or ``(C, T)`` (the envelope is measured on the channel mean and the same gain
            applied to every channel). The result is not clipped: a boost may pass full scale, and the caller
            keeps the headroom (the pipeline scales the whole clip, :func:`foleykit.media.headroom_gain`).
        sample_rate: Rate of ``wav`` in Hz.
        target: ``TemporalControl`` of kind ``rms`` (or ``rms_class``, decoded with :func:`classes_to_rms`),
            its time axis relative to the start of ``wav``.
        strength: 0 (off) .. 1 (full).
        max_gain_db: Largest boost in dB (attenuation is unlimited).
        rms_min: Level below which the target means "quiet" rather than a value (Stable-V2A: 0.01).

    Returns:
        float32 waveform of the input's shape, clipped to [-1, 1].

    Raises:
        ControlError: wrong control kind, strength outside [0, 1], negative ``max_gain_db``, a waveform that
            is not ``(T,)`` / ``(C, T)`` or too short.
    """
    if target.kind == "rms_class":
        target = classes_to_rms(target)
    if target.kind != "rms":
        raise ControlError(f"follow_envelope needs an RMS envelope control, got {target.kind!r}")
    if not 0.0 <= float(strength) <= 1.0:
        raise ControlError(f"envelope-follow strength must be in [0, 1], got {strength}")
    if not max_gain_db >= 0:
        raise ControlError(f"max_gain_db must be >= 0, got {max_gain_db}")
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise ControlError(f"follow_envelope needs a waveform (T,) or (C, T), got shape {x.shape}")
    if strength == 0.0:
        return x.copy()
    hop = max(1, round(sample_rate / target.rate))
    mono = x if x.ndim == 1 else x.mean(axis=0)
    measured = rms_envelope(mono, sample_rate, frame_length=4 * hop, hop_length=hop, lowpass=False).values
    measured = np.maximum(measured.astype(np.float64), 1e-6)
    centres = (np.arange(measured.shape[0]) + 0.5) * hop / sample_rate
    t_target = target.start + (np.arange(target.values.shape[0]) + 0.5) / target.rate
    want = np.interp(centres, t_target, np.asarray(target.values, np.float64))
    gain = np.where(want >= rms_min, want / measured, np.minimum(1.0, rms_min / measured))
    gain = np.clip(gain, 0.0, 10.0 ** (max_gain_db / 20.0)) ** float(strength)
    per_sample = np.interp((np.arange(x.shape[-1]) + 0.5) / sample_rate, centres, gain)
    return (x * per_sample).astype(np.float32)


def envelope_peaks(envelope: TemporalControl, *, rise_db: float = 6.0) -> np.ndarray:
    """Times (seconds, on the control's time axis: frame centres) of the envelope's local maxima that rise
    ``rise_db`` above the lowest level since the previous such peak: the hits of an RMS curve.

    ``rms_class`` controls are decoded first (:func:`classes_to_rms`); levels are floored at 1e-5 (-100 dB)."""
    if envelope.kind == "rms_class":
        envelope = classes_to_rms(envelope)
    if envelope.kind != "rms":
        raise ControlError(f"envelope_peaks needs an RMS envelope control, got {envelope.kind!r}")
    v = 20 * np.log10(np.maximum(np.asarray(envelope.values, np.float64).reshape(-1), 1e-5))
    out, low = [], v[0] if v.size else 0.0
    for i in range(1, v.size - 1):
        low = min(low, v[i])
        if v[i] >= v[i - 1] and v[i] > v[i + 1] and v[i] - low >= rise_db:
            out.append(envelope.start + (i + 0.5) / envelope.rate)
            low = v[i]
    return np.asarray(out, np.float64)


def spot_recording(
    recording: np.ndarray, sample_rate: int, num_samples: int, envelope: TemporalControl | None = None
) -> np.ndarray:
    """Lay a recording along a clip the way a Foley editor spots it: a fresh copy at every hit of the envelope.

    Without ``envelope`` (or with no hits) the recording is looped from the clip's start. Otherwise each hit
    (:func:`envelope_peaks`, the envelope's time axis relative to the clip) starts a copy placed so that the
    recording's loudest moment lands on the hit; a copy plays (looping if needed) until the next copy starts,
    and the stretch before the first copy is the loop's end leading into it. A one-shot (a step, a knock) so
    lands on every contact; a long texture (an engine, rain) restarts at the hits and continues between them.
    Loudness is not touched: :func:`follow_envelope` brings it to the curve.

    Returns:
        float32 ``(num_samples,)``.
    """
    x = np.asarray(recording, np.float32).reshape(-1)
    if x.size == 0:
        raise ControlError("spot_recording needs a non-empty recording")
    from scipy.ndimage import uniform_filter1d

    hits = envelope_peaks(envelope) if envelope is not None else np.zeros(0)
    # the centre of the recording's loudest 10 ms lands on the hit
    lead = int(np.argmax(uniform_filter1d(x.astype(np.float64) ** 2, max(1, sample_rate // 100))))
    starts = sorted({int(round(t * sample_rate)) - lead for t in hits})
    starts = [s for s in starts if s < num_samples]  # hits past the clip's end start nothing
    if not starts:
        return np.tile(x, -(-num_samples // x.size))[:num_samples]
    # every sample plays the copy that started last before it, looping; before the first copy: the loop,
    # phased so that it runs into the first copy's start
    n = np.arange(num_samples)
    k = np.searchsorted(np.asarray(starts), n, side="right") - 1
    origin = np.asarray(starts)[np.maximum(k, 0)]
    return x[(n - origin) % x.size]
