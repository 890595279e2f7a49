"""Typed exceptions. Every error a user can cause is a FoleykitError with an actionable message.

The CLI catches FoleykitError, prints its message and exits non-zero; anything else is a bug.
"""

from __future__ import annotations


class FoleykitError(Exception):
    """Base class of every error foleykit raises on bad input or missing resources."""


class ConfigError(FoleykitError, ValueError):
    """An invalid configuration value or an unknown name (recipe, model, metric...)."""


# --- media -----------------------------------------------------------------------------------------
class MediaError(FoleykitError):
    """A media file cannot be used. Subclasses say why."""


class MediaNotFoundError(MediaError, FileNotFoundError):
    """The path does not exist (or is not a file)."""


class EmptyMediaError(MediaError):
    """The file has zero bytes."""


class NotMediaError(MediaError):
    """The file is not a media file FFmpeg can open."""


class CorruptMediaError(MediaError):
    """The file opens but is truncated or corrupt (decoding fails part-way)."""


class NoVideoStreamError(MediaError):
    """A video stream is required but the file has none (e.g. an audio-only file)."""


class NoAudioStreamError(MediaError):
    """An audio stream is required but the file has none."""


class ZeroFramesError(MediaError):
    """The video stream decodes to zero frames."""


class ZeroDurationError(MediaError):
    """The media (or the requested segment) has zero duration."""


class MediaLimitError(MediaError):
    """Duration or resolution is over a configured limit."""


# --- controls ----------------------------------------------------------------------------------------
class ControlError(FoleykitError):
    """A timing control (file or array) is malformed or does not fit the request."""


# --- models / weights --------------------------------------------------------------------------------
class ModelError(FoleykitError):
    """A model cannot be built or loaded."""


class WeightsNotFoundError(ModelError, FileNotFoundError):
    """Weights for a named model or backbone are not present locally (nothing is downloaded)."""


# --- data / evaluation -------------------------------------------------------------------------------
class DataError(FoleykitError):
    """A dataset, manifest, sound bank or cache is malformed."""


class EvaluationError(FoleykitError):
    """Evaluation inputs are unusable (e.g. nothing could be paired)."""
