"""Reference-audio encoders (the timbre of an example sound) and the shared aisfx embedder code.

Registered under kind ``audio_encoder``:

- ``aisfx`` (default): the packaged sound-effects embedder (aiSFX, ISMIR 2022; ``pip install --no-deps
  aisfx``): one 512-d token per ~2.3 s block (100 mel frames at 44.1 kHz, hop 1024), blocks every half
  block; frozen.
- ``clap``: CLAP audio tower (transformers ``ClapModel``; Stable-V2A conditions on it) from a local
  folder: one projected, L2-normalised token per <= 10 s chunk.
- ``debug``: log band energies of 0.5 s blocks through a fixed random projection; no weights.

The aisfx functions (:func:`load_aisfx`, :func:`aisfx_mel`, :func:`aisfx_blocks`, :func:`aisfx_embed`) are
public so that the FD_aisfx embedder of ``foleykit.evaluation`` computes exactly the same embedding.
They reproduce the package's librosa path (``aisfx.spectrogram.spectrogram_librosa`` + ``preprocessing``)
with the three fixes RESOURCES.md lists: the checkpoint is loaded with ``weights_only=False``, the
librosa mel is transposed to (frames, mels), and clips shorter than one block are zero-padded.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foleykit.encoders.base import AudioEncoder, load_hf_model, pad_sequences, resolve_hf_folder
from foleykit.errors import ConfigError, ModelError, WeightsNotFoundError
from foleykit.registry import register

__all__ = [
    "AISFX_DIM",
    "AISFX_SAMPLE_RATE",
    "AisfxAudioEncoder",
    "ClapAudioEncoder",
    "DebugAudioEncoder",
    "aisfx_blocks",
    "aisfx_embed",
    "aisfx_mel",
    "load_aisfx",
]

# aiSFX constants (aisfx/inference.py: SAMPLE_RATE, SPEC_BLOCK_LENGTH, SPEC_HOP_LENGTH, MEL_BINS,
# EMB_BLOCK_LENGTH; preprocessing.spectrogram_normalize 'original' range).
AISFX_SAMPLE_RATE = 44100
AISFX_WIN_LENGTH = 2048
AISFX_HOP_LENGTH = 1024
AISFX_N_MELS = 96
AISFX_BLOCK_FRAMES = 100
AISFX_NORM_MAX = 9.457798957824707
AISFX_DIM = 512


def load_aisfx(device: str | torch.device = "cpu") -> nn.Module:
    """The aiSFX embedding network (``EmbeddingNet('max', 3, 1, 64)``, 4.7M params), frozen, eval mode.

    ``model(Tensor[N x 100 x 96]) -> Tensor[N x 512]``. Each call loads a fresh copy (~1 s).

    Raises:
        WeightsNotFoundError: the ``aisfx`` package (which carries the weights) is not installed.
    """
    try:
        from aisfx.inference import get_path_modelWeights
        from aisfx.models.cnn2d import EmbeddingNet
    except ImportError:
        raise WeightsNotFoundError(
            "aisfx audio embedder: the package `aisfx` is not installed; install it with "
            "`pip install --no-deps aisfx` (it carries its 25 MB checkpoint; nothing is downloaded)"
        ) from None
    path = get_path_modelWeights()
    if not os.path.isfile(path):
        raise WeightsNotFoundError(f"aisfx audio embedder: checkpoint {path} is missing; reinstall aisfx")
    # The checkpoint pickles (state_dict, dataset dict with numpy ints): weights_only=True refuses it.
    weights, _ = torch.load(path, map_location="cpu", weights_only=False)
    prefix = "embedding_net."
    state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    net = EmbeddingNet("max", 3, 1, 64)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"aisfx audio embedder: unexpected checkpoint layout in {path}: {err}") from err
    net.requires_grad_(False)
    return net.eval().to(device)


def aisfx_mel(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """aiSFX input spectrogram ``(frames, 96)`` float32 of a mono or ``(C, T)`` waveform.

    librosa path of the package: resample to 44.1 kHz, peak-normalise, power mel (n_fft = win 2048, hop
    1024, 96 HTK mels 0-22050 Hz, unit-sum filters), ``log10(1e4 * mel + 1)``, transposed to (frames, mels),
    min-max normalised with the paper's range [0, 9.4578].
    """
    import librosa

    from foleykit.audio import resample, to_mono

    y = resample(to_mono(wav), int(sample_rate), AISFX_SAMPLE_RATE)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    y = y / (peak if peak > 0 else 1.0)
    spec = librosa.feature.melspectrogram(
        y=y,
        sr=AISFX_SAMPLE_RATE,
        n_mels=AISFX_N_MELS,
        norm=1.0,
        fmin=0.0,
        fmax=AISFX_SAMPLE_RATE / 2,
        htk=True,
        power=2.0,
        n_fft=AISFX_WIN_LENGTH,
        hop_length=AISFX_HOP_LENGTH,
        win_length=AISFX_WIN_LENGTH,
    )
    spec = np.log10(spec * 10000.0 + 1.0).T  # (frames, mels): the package forgets this transpose
    return (spec / AISFX_NORM_MAX).astype(np.float32)


def aisfx_blocks(mel: np.ndarray, *, hop: float = 0.5) -> np.ndarray:
    """Cut a ``(frames, 96)`` spectrogram into ``(N, 100, 96)`` blocks every ``hop`` x 100 frames.

    Same blocks as ``aisfx.preprocessing.blocking(..., drop_partial_block=True)``; a spectrogram shorter
    than one block is zero-padded to one block (the package asserts on those).
    """
    if not 0 < hop <= 1:
        raise ConfigError(f"aisfx hop must be in (0, 1] blocks, got {hop}")
    hop_frames = max(1, round(AISFX_BLOCK_FRAMES * hop))
    if mel.shape[0] < AISFX_BLOCK_FRAMES:
        mel = np.pad(mel, ((0, AISFX_BLOCK_FRAMES - mel.shape[0]), (0, 0)))
    n = (mel.shape[0] - AISFX_BLOCK_FRAMES) // hop_frames + 1
    idx = np.arange(n)[:, None] * hop_frames + np.arange(AISFX_BLOCK_FRAMES)[None, :]
    return mel[idx]


def aisfx_embed(
    wav: np.ndarray,
    sample_rate: int,
    *,
    model: nn.Module | None = None,
    hop: float = 0.5,
    batch_size: int = 64,
) -> Tensor:
    """aiSFX embeddings ``Tensor[N x 512]`` (float32, on the model's device) of one waveform, one per block.

    Args:
        wav: ``(T,)`` or ``(C, T)`` float waveform.
        sample_rate: Its sample rate.
        model: A network from :func:`load_aisfx` (loaded here when None; pass one to avoid reloading).
        hop: Block hop as a fraction of a block (the paper: 0.5 -> ~1.16 s).
        batch_size: Blocks per forward.
    """
    model = load_aisfx() if model is None else model
    blocks = torch.from_numpy(aisfx_blocks(aisfx_mel(wav, sample_rate), hop=hop))
    dev = next(model.parameters()).device
    with torch.no_grad():
        out = [model(blocks[i : i + batch_size].to(dev)) for i in range(0, blocks.shape[0], batch_size)]
    return torch.cat(out).float()


class AisfxAudioEncoder(AudioEncoder):
    """Reference-audio encoder on the packaged aiSFX embedder: ``(B, n_blocks, 512)`` tokens + mask.

    Args:
        hop: Block hop as a fraction of a ~2.32 s block (0.5 as in the aiSFX paper).
        normalize: L2-normalise each token.
    """

    def __init__(self, *, hop: float = 0.5, normalize: bool = False) -> None:
        super().__init__()
        aisfx_blocks(np.zeros((1, AISFX_N_MELS), np.float32), hop=hop)  # validates hop
        self.hop, self.normalize, self.dim = hop, normalize, AISFX_DIM
        self.model: nn.Module | None = None  # loaded on first use (:meth:`load`)
        self.freeze()

    def load(self) -> nn.Module:
        """The aiSFX network, loaded (once) when a sound is first encoded, not when the model loads: a model
        whose reference-sound encoder is aisfx runs without the ``aisfx`` package as long as no reference
        sound is given (``pip install .`` alone installs no aisfx: its metadata pins ancient numpy/librosa).

        Raises:
            WeightsNotFoundError: ``aisfx`` is not installed (the message says how to install it).
        """
        if self.model is None:
            try:
                net = load_aisfx(self.device)
            except WeightsNotFoundError as err:
                if importlib.util.find_spec("aisfx") is not None:
                    raise
                raise WeightsNotFoundError(
                    "a reference sound needs the aisfx sound encoder, which is not installed: run "
                    "`pip install --no-deps aisfx` (25 MB with its weights; --no-deps because its metadata "
                    "pins ancient numpy/librosa)"
                ) from err
            self.model = net
            self.freeze()
        return self.model

    def encode(self, wavs: list[np.ndarray], sample_rate: int) -> tuple[Tensor, Tensor]:
        wavs = self._check_wavs(wavs, sample_rate)
        model = self.load()
        seqs = [aisfx_embed(w, int(sample_rate), model=model, hop=self.hop) for w in wavs]
        if self.normalize:
            seqs = [F.normalize(s, dim=-1) for s in seqs]
        return pad_sequences(seqs)


class ClapAudioEncoder(AudioEncoder):
    """CLAP audio tower (transformers ``ClapModel`` + ``ClapFeatureExtractor``) from a local folder.

    The waveform is resampled to the extractor's rate (48 kHz) and cut into chunks of ``chunk_seconds``
    (default: the extractor's ``max_length_s``, 10 s); each chunk gives one projected, L2-normalised token
    (``projection_dim``, 512 for laion/clap-htsat-*).
    """

    what = "CLAP audio encoder"

    def __init__(self, *, path: str | os.PathLike | None = None, chunk_seconds: float | None = None) -> None:
        super().__init__()
        from transformers import ClapFeatureExtractor, ClapModel

        self.path = str(path or "laion/clap-htsat-unfused")
        folder = resolve_hf_folder(self.path, what=self.what)
        if not (folder / "preprocessor_config.json").is_file():
            raise WeightsNotFoundError(
                f"{self.what}: {folder} has no preprocessor_config.json (the ClapFeatureExtractor settings)"
            )
        self.feature_extractor = ClapFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
        self.model = load_hf_model(ClapModel, folder, what=self.what)
        self.dim = int(self.model.config.projection_dim)
        self.chunk_seconds = float(chunk_seconds or self.feature_extractor.max_length_s)
        if self.chunk_seconds <= 0:
            raise ConfigError(f"{self.what}: chunk_seconds must be positive, got {chunk_seconds}")
        self.truncation = "fusion" if self.model.config.audio_config.enable_fusion else "rand_trunc"
        self.freeze()

    def _chunks(self, wav: np.ndarray, sample_rate: int) -> list[np.ndarray]:
        from foleykit.audio import resample

        sr = int(self.feature_extractor.sampling_rate)
        y = resample(wav, sample_rate, sr)
        n = max(1, round(self.chunk_seconds * sr))
        return [y[i : i + n] for i in range(0, len(y), n)]

    def encode(self, wavs: list[np.ndarray], sample_rate: int) -> tuple[Tensor, Tensor]:
        wavs = self._check_wavs(wavs, sample_rate)
        seqs = []
        for w in wavs:
            # Chunks never exceed max_length_s, so "rand_trunc" never crops (deterministic).
            feats = self.feature_extractor(
                self._chunks(w, int(sample_rate)),
                sampling_rate=self.feature_extractor.sampling_rate,
                return_tensors="pt",
                truncation=self.truncation,
            )
            feats = {k: v.to(self.device) for k, v in feats.items()}
            with torch.no_grad():
                out = self.model.get_audio_features(**feats)
            emb = out if isinstance(out, Tensor) else out.pooler_output  # transformers 4 / 5
            seqs.append(F.normalize(emb.float(), dim=-1))
        return pad_sequences(seqs)


class DebugAudioEncoder(AudioEncoder):
    """Weight-free reference-audio encoder for tests: one token per ``block_seconds`` block.

    Token = fixed random projection of the log energies in ``n_bands`` equal-width frequency bands.
    """

    def __init__(
        self, *, dim: int = 32, block_seconds: float = 0.5, n_bands: int = 16, seed: int = 0
    ) -> None:
        super().__init__()
        if dim <= 0 or block_seconds <= 0 or n_bands <= 0:
            raise ConfigError("DebugAudioEncoder: dim, block_seconds and n_bands must be positive")
        self.dim, self.block_seconds, self.n_bands = dim, block_seconds, n_bands
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(n_bands, dim, generator=g) / n_bands**0.5)
        self.freeze()

    def encode(self, wavs: list[np.ndarray], sample_rate: int) -> tuple[Tensor, Tensor]:
        wavs = self._check_wavs(wavs, sample_rate)
        n = max(1, round(self.block_seconds * sample_rate))
        seqs = []
        for w in wavs:
            x = torch.from_numpy(np.pad(w, (0, (-len(w)) % n))).view(-1, n)  # (blocks, n)
            power = torch.fft.rfft(x).abs() ** 2  # (blocks, n // 2 + 1)
            bands = F.adaptive_avg_pool1d(power[:, None, :], self.n_bands)[:, 0]  # (blocks, n_bands)
            seqs.append((torch.log1p(bands) @ self.projection.cpu()).to(self.device))
        return pad_sequences(seqs)


register("audio_encoder", "debug")(DebugAudioEncoder)
register("audio_encoder", "aisfx")(AisfxAudioEncoder)
register("audio_encoder", "clap")(ClapAudioEncoder)
