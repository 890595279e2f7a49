"""Timing controls: the time-varying signals the seed methods condition on.

- :class:`TemporalControl` — one signal on a uniform grid (kind, values, rate, start, meta): resample,
  fit, crop, edit (scale / offset / shift / smooth / clip), save/load CSV or JSON, plot to PNG.
- From audio: :func:`energy` (ReWaS), :func:`rms_envelope` + mu-law classes (Stable-V2A),
  :func:`detect_onsets` / :func:`onsets` (STA-V2A pseudo-labels, Rhythmic Foley onset mask).
- From video: :func:`flow_trajectory` (AV-Align), :func:`motion_features`, :func:`motion`.
- :func:`extract` — any of the above from a media file.
"""

from __future__ import annotations

from foleykit.controls.base import CLASS_KINDS, EVENT_KINDS, TemporalControl, is_class_kind, is_event_kind
from foleykit.controls.energy import energy, energy_from_mel, savgol_smooth
from foleykit.controls.extract import KINDS, extract
from foleykit.controls.files import load_control, save_control
from foleykit.controls.motion import MOTION_FEATURE_NAMES, flow_trajectory, motion, motion_features
from foleykit.controls.onsets import detect_onsets, onset_track, onsets
from foleykit.controls.rms import (
    classes_to_rms,
    follow_envelope,
    gaussian_smoothed_targets,
    inverse_mu_law,
    lowpass_envelope,
    mu_law,
    rms_bin_edges,
    rms_envelope,
    rms_to_classes,
)

__all__ = [
    "CLASS_KINDS",
    "EVENT_KINDS",
    "KINDS",
    "MOTION_FEATURE_NAMES",
    "TemporalControl",
    "classes_to_rms",
    "detect_onsets",
    "energy",
    "energy_from_mel",
    "extract",
    "flow_trajectory",
    "follow_envelope",
    "gaussian_smoothed_targets",
    "inverse_mu_law",
    "is_class_kind",
    "is_event_kind",
    "load_control",
    "lowpass_envelope",
    "motion",
    "motion_features",
    "mu_law",
    "onset_track",
    "onsets",
    "rms_bin_edges",
    "rms_envelope",
    "rms_to_classes",
    "save_control",
    "savgol_smooth",
]
