"""Media I/O on PyAV (it bundles FFmpeg): probe, decode, encode, mux; typed errors; size limits.

Conventions (docs/ARCHITECTURE.md): video frames are ``uint8`` RGB ``(T, H, W, 3)`` with ``float64``
timestamps in seconds; audio is ``float32`` ``(T,)`` mono or ``(C, T)``. Time 0 is the start of the file
(the container's start time), so audio and video read from one file stay in sync.

Rotation: ``MediaInfo.rotation`` is the clockwise angle (0, 90, 180, 270) a player turns the stored picture
for display (what phones write); readers return frames as displayed.

Every write goes through ``foleykit.utils.io.atomic_path``: a failure leaves no partial file behind.
Every error a user can cause is a subclass of ``foleykit.errors.MediaError``. See docs/media.md.
"""

from foleykit.media._core import MediaInfo, MediaLimits, probe
from foleykit.media.audio import PEAK_CEILING, headroom_gain, read_audio, write_audio
from foleykit.media.encode import AAC_RATES, MUX_SAMPLE_RATE, write_video
from foleykit.media.mux import MuxPlan, mux, mux_video, plan_mux
from foleykit.media.video import VideoClip, read_video

__all__ = [
    "AAC_RATES",
    "MUX_SAMPLE_RATE",
    "PEAK_CEILING",
    "MediaInfo",
    "MediaLimits",
    "MuxPlan",
    "VideoClip",
    "headroom_gain",
    "mux",
    "mux_video",
    "plan_mux",
    "probe",
    "read_audio",
    "read_video",
    "write_audio",
    "write_video",
]
