"""Configuration dataclasses. ``SequenceConfig`` owns every rate and length in foleykit.

Never recompute hop / fps / latent-length arithmetic elsewhere: ask a SequenceConfig (MMAudio's
SequenceConfig idea). All lengths are derived properties, so changing ``duration`` or ``sample_rate``
keeps everything consistent.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from foleykit.errors import ConfigError


@dataclass(frozen=True)
class SequenceConfig:
    """Sample rates, hops and clip lengths for one model / dataset.

    The defaults are AudioLDM's audio geometry (16 kHz, 64 mels, hop 160 -> 100 mel frames/s, 4x latent
    time compression -> 25 latent frames/s), the Stable-V2A control rate at 16 kHz (RMS hop 128 -> 125 Hz)
    and 25 fps video features.

    Attributes:
        sample_rate: Audio sample rate in Hz.
        n_fft: STFT size for mel features.
        win_length: STFT window length (<= n_fft).
        hop_length: STFT hop in samples (one mel frame).
        n_mels: Number of mel bins.
        f_min: Lowest mel frequency in Hz.
        f_max: Highest mel frequency in Hz (<= Nyquist).
        latent_space: "mel" (mel VAE + vocoder, AudioLDM) or "waveform" (waveform VAE, Stable Audio Open).
        latent_hop: Audio samples per latent frame (mel models: hop_length x VAE time downsampling).
        latent_freq_downsample: Mel bins per latent frequency row (mel VAE only).
        video_fps: Frame rate of video features (decoded frames are resampled to it by timestamp).
        control_hop: Audio samples per timing-control frame (RMS envelope; energy uses the mel rate).
        duration: Clip (model window) duration in seconds.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 8000.0
    latent_space: Literal["mel", "waveform"] = "mel"
    latent_hop: int = 640
    latent_freq_downsample: int = 4
    video_fps: float = 25.0
    control_hop: int = 128
    duration: float = 10.0

    def __post_init__(self) -> None:
        def check(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(f"SequenceConfig: {msg} (got {self})")

        check(self.sample_rate > 0, "sample_rate must be positive")
        check(
            0 < self.hop_length <= self.win_length <= self.n_fft, "need 0 < hop_length <= win_length <= n_fft"
        )
        check(self.n_mels > 0, "n_mels must be positive")
        check(
            0 <= self.f_min < self.f_max <= self.sample_rate / 2, "need 0 <= f_min < f_max <= sample_rate / 2"
        )
        check(self.latent_space in ("mel", "waveform"), "latent_space must be 'mel' or 'waveform'")
        check(self.latent_hop > 0, "latent_hop must be positive")
        if self.latent_space == "mel":
            check(
                self.latent_hop % self.hop_length == 0,
                "latent_hop must be a multiple of hop_length for mel latents",
            )
            check(
                self.n_mels % self.latent_freq_downsample == 0,
                "n_mels must be divisible by latent_freq_downsample",
            )
        check(self.video_fps > 0, "video_fps must be positive")
        check(self.control_hop > 0, "control_hop must be positive")
        check(self.duration > 0 and math.isfinite(self.duration), "duration must be positive and finite")

    # --- rates (Hz) ----------------------------------------------------------------------------------
    @property
    def mel_rate(self) -> float:
        """Mel frames per second (also the ReWaS energy rate)."""
        return self.sample_rate / self.hop_length

    @property
    def latent_rate(self) -> float:
        """Latent frames per second."""
        return self.sample_rate / self.latent_hop

    @property
    def control_rate(self) -> float:
        """Timing-control (RMS envelope) frames per second."""
        return self.sample_rate / self.control_hop

    @property
    def mel_frames_per_latent(self) -> int:
        """Mel frames folded into one latent frame (mel latents only)."""
        if self.latent_space != "mel":
            raise ConfigError("mel_frames_per_latent is only defined for mel latents")
        return self.latent_hop // self.hop_length

    @property
    def latent_freq_bins(self) -> int:
        """Latent frequency rows of a mel VAE (n_mels / latent_freq_downsample)."""
        return self.n_mels // self.latent_freq_downsample

    # --- lengths for `duration` ---------------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        """Audio samples in one clip: round(duration * sample_rate)."""
        return round(self.duration * self.sample_rate)

    @property
    def num_latent_frames(self) -> int:
        """Latent frames covering the clip (rounded up: the last one may extend past the end)."""
        return math.ceil(self.num_samples / self.latent_hop)

    @property
    def padded_num_samples(self) -> int:
        """Samples the model actually generates (num_latent_frames * latent_hop); trim to num_samples."""
        return self.num_latent_frames * self.latent_hop

    @property
    def num_mel_frames(self) -> int:
        """Mel frames the mel VAE sees: num_latent_frames * mel_frames_per_latent (AudioLDM: 10.24 s -> 1024)."""
        return self.num_latent_frames * self.mel_frames_per_latent

    @property
    def num_video_frames(self) -> int:
        """Video-feature frames in one clip: round(duration * video_fps)."""
        return round(self.duration * self.video_fps)

    @property
    def num_control_frames(self) -> int:
        """Control frames in one clip: num_samples // control_hop (Stable-V2A: 10 s at 16 kHz -> 1250)."""
        return self.num_samples // self.control_hop

    @property
    def num_energy_frames(self) -> int:
        """ReWaS energy frames (one per mel frame, reflect-padded STFT): num_samples // hop_length."""
        return self.num_samples // self.hop_length

    # --- grids --------------------------------------------------------------------------------------------
    #: Names of the time grids a series can live on (``grid``).
    GRIDS = ("audio", "mel", "energy", "latent", "control", "video")

    def grid(self, name: str) -> tuple[float, int]:
        """(rate in Hz, frames in the clip) of a named time grid: ``audio`` (samples), ``mel`` / ``energy``
        (one value per mel frame: ``num_energy_frames``), ``latent``, ``control`` (RMS envelope) or ``video``.

        Raises:
            ConfigError: an unknown grid name.
        """
        grids = {
            "audio": (float(self.sample_rate), self.num_samples),
            "mel": (self.mel_rate, self.num_energy_frames),
            "energy": (self.mel_rate, self.num_energy_frames),
            "latent": (self.latent_rate, self.num_latent_frames),
            "control": (self.control_rate, self.num_control_frames),
            "video": (float(self.video_fps), self.num_video_frames),
        }
        if name not in grids:
            raise ConfigError(f"unknown grid {name!r}; valid: {', '.join(grids)}")
        return grids[name]

    # --- conversions ------------------------------------------------------------------------------------
    def frames_at(self, rate: float, duration: float | None = None) -> int:
        """Number of frames of a series at ``rate`` Hz covering ``duration`` (default: the clip)."""
        d = self.duration if duration is None else duration
        if rate <= 0:
            raise ConfigError(f"rate must be positive, got {rate}")
        return round(d * rate)

    def seconds_to_samples(self, seconds: float) -> int:
        return round(seconds * self.sample_rate)

    def seconds_to_latent_frames(self, seconds: float) -> int:
        """Latent frames needed to cover ``seconds`` of audio (rounded up)."""
        return math.ceil(round(seconds * self.sample_rate) / self.latent_hop)

    def latent_frame_to_seconds(self, index: float) -> float:
        return index * self.latent_hop / self.sample_rate

    def with_duration(self, duration: float) -> SequenceConfig:
        """The same geometry for another clip duration."""
        return dataclasses.replace(self, duration=float(duration))

    def replace(self, **changes: Any) -> SequenceConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SequenceConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"SequenceConfig: unknown keys {sorted(unknown)}")
        return cls(**d)

    # --- presets ----------------------------------------------------------------------------------------
    @classmethod
    def audioldm(cls, duration: float = 10.24) -> SequenceConfig:
        """AudioLDM / ReWaS: 16 kHz, 64 mels, hop 160, latent 4x (25 Hz), 10.24 s windows."""
        return cls(duration=duration)

    @classmethod
    def stable_audio_open(cls, duration: float = 47.55) -> SequenceConfig:
        """Stable Audio Open 1.0: 44.1 kHz waveform VAE, 2048 samples per latent (~21.5 Hz).

        Stable-V2A's RMS control at 44.1 kHz uses hop 512 (~86 Hz).
        """
        return cls(
            sample_rate=44100,
            n_fft=2048,
            win_length=2048,
            hop_length=512,
            n_mels=128,
            f_max=22050.0,
            latent_space="waveform",
            latent_hop=2048,
            control_hop=512,
            video_fps=30.0,
            duration=duration,
        )
