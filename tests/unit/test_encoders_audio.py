"""Reference-audio encoders: debug twin, input errors, aisfx blocking + the packaged model, local CLAP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from foleykit import registry
from foleykit.encoders.audio import (
    AISFX_BLOCK_FRAMES,
    AisfxAudioEncoder,
    ClapAudioEncoder,
    DebugAudioEncoder,
    aisfx_blocks,
    aisfx_mel,
)
from foleykit.errors import ConfigError, WeightsNotFoundError, ZeroDurationError


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SR = 16000


def tone(seconds: float, freq: float = 440.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


# --- debug twin and input checks --------------------------------------------------------------------------
def test_debug_encoder_blocks_and_mask():
    enc = registry.build("audio_encoder", "debug", dim=8)
    tokens, mask = enc.encode([tone(1.2), tone(0.3)], SR)  # 0.5 s blocks: ceil(1.2 / 0.5) = 3, then 1
    assert tokens.shape == (2, 3, 8) and mask.sum(1).tolist() == [3, 1]
    assert torch.all(tokens[1, 1:] == 0)
    # a tone and noise give different tokens; the same input gives the same tokens
    assert not torch.allclose(enc.encode([noise(0.5, 0)], SR)[0], enc.encode([tone(0.5)], SR)[0])
    assert torch.equal(enc.encode([tone(0.5)], SR)[0], enc.encode([tone(0.5)], SR)[0])
    stereo = np.stack([tone(0.5), tone(0.5)])
    assert torch.allclose(enc.encode([stereo], SR)[0], enc.encode([tone(0.5)], SR)[0])


@pytest.mark.parametrize(
    "wavs, sr, error, match",
    [
        (np.zeros(10, np.float32), SR, ConfigError, "list of waveforms"),
        ([], SR, ConfigError, "empty list"),
        ([np.zeros(0, np.float32)], SR, ZeroDurationError, "empty"),
        ([np.array([0.0, np.nan], np.float32)], SR, ConfigError, "NaN"),
        ([np.zeros((2, 2, 2), np.float32)], SR, ConfigError, "shape"),
        ([np.zeros(10, np.float32)], 0, ConfigError, "sample_rate"),
    ],
)
def test_input_errors(wavs, sr, error, match):
    with pytest.raises(error, match=match):
        DebugAudioEncoder().encode(wavs, sr)


# --- aisfx --------------------------------------------------------------------------------------------------
def test_aisfx_blocking_matches_package_rules():
    mel = np.arange(441 * 96, dtype=np.float32).reshape(441, 96)
    blocks = aisfx_blocks(mel, hop=0.5)
    assert blocks.shape == (7, AISFX_BLOCK_FRAMES, 96)  # (441 - 100) // 50 + 1, partial block dropped
    np.testing.assert_array_equal(blocks[3], mel[150:250])
    assert aisfx_blocks(mel, hop=1.0).shape[0] == 4
    short = aisfx_blocks(mel[:30])  # shorter than a block: zero-padded to one block
    assert (
        short.shape == (1, 100, 96) and np.all(short[0, 30:] == 0) and np.array_equal(short[0, :30], mel[:30])
    )
    with pytest.raises(ConfigError, match="hop"):
        aisfx_blocks(mel, hop=0)


def test_aisfx_mel_geometry():
    mel = aisfx_mel(tone(1.0, sr=44100), 44100)
    assert mel.shape == (1 + 44100 // 1024, 96)  # centred frames, transposed to (frames, mels)
    assert mel.dtype == np.float32 and 0 <= mel.min() and mel.max() <= 1.2
    # peak normalisation: the level does not matter
    np.testing.assert_allclose(aisfx_mel(0.1 * tone(1.0), SR), aisfx_mel(tone(1.0), SR), atol=1e-4)


@pytest.fixture(scope="module")
def aisfx_encoder():
    return registry.build("audio_encoder", "aisfx")


def test_packaged_aisfx_embeds(aisfx_encoder):
    enc = aisfx_encoder
    assert isinstance(enc, AisfxAudioEncoder) and enc.dim == 512
    assert not any(p.requires_grad for p in enc.parameters())
    tokens, mask = enc.encode([noise(3.0, 1), noise(3.0, 2), tone(3.0), tone(1.0)], SR)
    # 3 s = 130 frames at 44.1 kHz / hop 1024 -> 1 block; 1 s is padded to one block
    assert tokens.shape == (4, 1, 512) and mask.all()
    e = torch.nn.functional.normalize(tokens[:, 0], dim=-1)
    noise_noise, noise_tone = (e[0] @ e[1]).item(), (e[0] @ e[2]).item()
    assert noise_noise > 0.98 and noise_tone < noise_noise - 0.1  # measured: 0.996 vs 0.789
    long, mask = enc.encode([noise(10.0, 3)], SR)
    assert long.shape == (1, (431 - 100) // 50 + 1, 512)  # 10 s: 431 frames -> 7 blocks


# --- CLAP audio from a local folder -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory):
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    folder = tmp_path_factory.mktemp("clap_audio")
    torch.manual_seed(0)
    ClapModel(
        ClapConfig(
            text_config={
                "vocab_size": 32,
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 37,
                "max_position_embeddings": 40,
                "type_vocab_size": 1,
            },
            audio_config={
                "hidden_size": 32,
                "depths": [1, 1],
                "num_attention_heads": [2, 2],
                "window_size": 4,
                "spec_size": 256,
                "num_mel_bins": 64,
                "patch_stride": [4, 4],
                "patch_embeds_hidden_size": 16,
                "enable_fusion": False,
            },
            projection_dim=16,
        )
    ).save_pretrained(folder)
    ClapFeatureExtractor().save_pretrained(folder)  # 48 kHz, 64 mels, 10 s
    return folder


def test_clap_audio_from_folder(tiny_clap):
    enc = registry.build("audio_encoder", "clap", path=tiny_clap)
    assert enc.dim == 16 and enc.chunk_seconds == 10.0
    tokens, mask = enc.encode([tone(12.0), tone(3.0)], SR)  # 12 s -> chunks of 10 s + 2 s
    assert tokens.shape == (2, 2, 16) and mask.sum(1).tolist() == [2, 1]
    assert torch.allclose(tokens[mask].norm(dim=-1), torch.ones(3), atol=1e-5)
    # the first chunk of the 12 s tone and the 3 s tone are the same sound: the 3 s one is repeat-padded
    again, _ = enc.encode([tone(3.0)], SR)
    assert torch.allclose(again[0, 0], tokens[1, 0], atol=1e-5)


def test_clap_audio_missing_files(tiny_clap, tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "home"))
    with pytest.raises(WeightsNotFoundError, match="CLAP audio encoder"):
        ClapAudioEncoder(path=tmp_path / "missing")
    import shutil

    shutil.copytree(tiny_clap, tmp_path / "noproc")
    (tmp_path / "noproc" / "preprocessor_config.json").unlink()
    with pytest.raises(WeightsNotFoundError, match="preprocessor_config.json"):
        ClapAudioEncoder(path=tmp_path / "noproc")
