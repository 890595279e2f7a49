import math

import pytest

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError


def test_default_geometry_is_audioldm_at_16k():
    s = SequenceConfig()
    assert s.mel_rate == 100.0
    assert s.latent_rate == 25.0
    assert s.control_rate == 125.0
    assert s.num_samples == 160_000
    assert s.num_latent_frames == 250
    assert s.num_mel_frames == 1000
    assert s.num_control_frames == 1250  # Stable-V2A: 10 s at 16 kHz -> 1250 RMS frames
    assert s.num_energy_frames == 1000
    assert s.num_video_frames == 250
    assert s.mel_frames_per_latent == 4
    assert s.latent_freq_bins == 16


def test_audioldm_preset_10_24_seconds():
    s = SequenceConfig.audioldm()
    assert s.num_mel_frames == 1024 and s.num_latent_frames == 256
    assert s.padded_num_samples == s.num_samples == 163_840


def test_stable_audio_open_preset():
    s = SequenceConfig.stable_audio_open()
    assert s.latent_space == "waveform"
    assert s.num_latent_frames == 1024  # 47.55 s * 44100 / 2048 rounded up
    assert math.isclose(s.latent_rate, 44100 / 2048)
    with pytest.raises(ConfigError):
        _ = s.mel_frames_per_latent


def test_rounding_up_to_latent_frames_for_odd_durations():
    s = SequenceConfig().with_duration(3.01)
    assert s.num_samples == 48_160
    assert s.num_latent_frames == math.ceil(48_160 / 640) == 76
    assert s.padded_num_samples == 76 * 640 >= s.num_samples
    assert s.seconds_to_latent_frames(1.0) == 25
    assert s.latent_frame_to_seconds(25) == 1.0
    assert s.frames_at(30.0, 2.0) == 60


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 0},
        {"hop_length": 2048},
        {"f_max": 9000.0},
        {"latent_hop": 700},
        {"n_mels": 66},
        {"duration": 0.0},
        {"duration": float("inf")},
        {"video_fps": -1.0},
    ],
)
def test_invalid_configs_raise(kwargs):
    with pytest.raises(ConfigError):
        SequenceConfig(**kwargs)


def test_dict_round_trip_and_unknown_keys():
    s = SequenceConfig(duration=4.0, video_fps=30.0)
    assert SequenceConfig.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError):
        SequenceConfig.from_dict({"sample_rte": 16000})
