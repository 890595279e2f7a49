"""PANNs CNN14 (Kong et al., TASLP 2020) from a local published checkpoint: FD / KL / IS backbone.

audioldm_eval computes FD on CNN14's 2048-d clip embedding and KL / IS on its 527 AudioSet logits. The
module below is written against the state-dict layout of the published checkpoints
(``Cnn14_mAP=0.431.pth``, zenodo record 3576403, 32 kHz; ``Cnn14_16k_mAP=0.438.pth``, zenodo record
3987831, 16 kHz): ``spectrogram_extractor.stft.conv_{real,imag}.weight`` (torchlibrosa STFT as Conv1d),
``logmel_extractor.melW``, ``bn0``, ``conv_block1..6.{conv1,conv2,bn1,bn2}``, ``fc1``, ``fc_audioset``.

Front end (PANNs config): 32 kHz, window 1024, hop 320, 64 mels 50-14000 Hz (16 kHz: 512 / 160 / 50-8000),
reflect-padded centred STFT with a periodic Hann window, power spectrogram, Slaney mel filterbank,
``10 log10(clamp(., 1e-10))`` (ref 1, no top_db). Network in eval mode: bn0 over mel bins, six conv
blocks (3x3 conv-BN-ReLU twice, 2x2 average pooling except the last), mean over frequency, max + mean
over time, ``embedding = relu(fc1(x))``, ``logits = fc_audioset(embedding)``.

Channel widths and class count are read from the checkpoint, so the same code loads the published file
and the tiny random checkpoints of the tests. Clips shorter than 32 frames are zero-padded (the five
poolings need them).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foleykit.errors import ConfigError, ModelError
from foleykit.evaluation.embedders._checkpoint import find_checkpoint, load_state
from foleykit.evaluation.embedders.base import Embedder, check_mono
from foleykit.registry import register

#: Published front-end settings per sample rate: (file name, window, hop, fmin, fmax, source).
PRESETS = {
    32000: ("Cnn14_mAP=0.431.pth", 1024, 320, 50.0, 14000.0, "https://zenodo.org/record/3576403"),
    16000: ("Cnn14_16k_mAP=0.438.pth", 512, 160, 50.0, 8000.0, "https://zenodo.org/record/3987831"),
}
WIDTHS = (64, 128, 256, 512, 1024, 2048)


class _STFT(nn.Module):
    """torchlibrosa's STFT as two Conv1d (names ``conv_real`` / ``conv_imag`` as in the checkpoint)."""

    def __init__(self, *, n_fft: int, hop_length: int) -> None:
        super().__init__()
        import librosa

        self.n_fft = n_fft
        bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop_length, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop_length, bias=False)
        window = librosa.filters.get_window("hann", n_fft, fftbins=True)
        phase = -2 * np.pi * np.outer(np.arange(bins), np.arange(n_fft)) / n_fft  # (bins, n_fft)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(np.cos(phase) * window)[:, None, :].float())
            self.conv_imag.weight.copy_(torch.from_numpy(np.sin(phase) * window)[:, None, :].float())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``Tensor[B x T]`` -> real, imag ``Tensor[B x bins x F]`` (centred, reflect padding)."""
        x = F.pad(x[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        return self.conv_real(x), self.conv_imag(x)


class _Spectrogram(nn.Module):
    def __init__(self, *, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.stft = _STFT(n_fft=n_fft, hop_length=hop_length)

    def forward(self, x: Tensor) -> Tensor:
        """``Tensor[B x T]`` -> power spectrogram ``Tensor[B x 1 x F x bins]``."""
        real, imag = self.stft(x)
        return (real**2 + imag**2).transpose(1, 2)[:, None]


class _LogMel(nn.Module):
    def __init__(self, *, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> None:
        super().__init__()
        import librosa

        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).T
        self.melW = nn.Parameter(torch.from_numpy(mel).float(), requires_grad=False)  # (bins, n_mels)

    def forward(self, spec: Tensor) -> Tensor:
        """Power spectrogram ``Tensor[B x 1 x F x bins]`` -> dB log-mel ``Tensor[B x 1 x F x n_mels]``."""
        return 10.0 * torch.log10(torch.clamp(torch.matmul(spec, self.melW), min=1e-10))


class _ConvBlock(nn.Module):
    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor, pool: int) -> Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.avg_pool2d(x, kernel_size=pool) if pool > 1 else x


class Cnn14(nn.Module):
    """CNN14 in the published PANNs layout (inference only).

    Args:
        sample_rate: Input rate (32000 or 16000 for the published checkpoints).
        window_size: STFT size / window.
        hop_size: STFT hop.
        mel_bins: Mel bins (64).
        fmin: Lowest mel frequency.
        fmax: Highest mel frequency.
        classes_num: Number of logits (527 AudioSet classes).
        widths: Channels of the six conv blocks (the last one is the embedding size).
    """

    def __init__(
        self,
        *,
        sample_rate: int = 32000,
        window_size: int = 1024,
        hop_size: int = 320,
        mel_bins: int = 64,
        fmin: float = 50.0,
        fmax: float = 14000.0,
        classes_num: int = 527,
        widths: tuple[int, ...] = WIDTHS,
    ) -> None:
        super().__init__()
        if len(widths) != 6:
            raise ConfigError(f"CNN14 has six conv blocks; got widths {widths}")
        self.hop_size = hop_size
        self.spectrogram_extractor = _Spectrogram(n_fft=window_size, hop_length=hop_size)
        self.logmel_extractor = _LogMel(
            sample_rate=sample_rate, n_fft=window_size, n_mels=mel_bins, fmin=fmin, fmax=fmax
        )
        self.bn0 = nn.BatchNorm2d(mel_bins)
        chans = (1, *widths)
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", _ConvBlock(in_channels=chans[i], out_channels=chans[i + 1]))
        self.fc1 = nn.Linear(widths[-1], widths[-1])
        self.fc_audioset = nn.Linear(widths[-1], classes_num)

    def forward(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """``Tensor[B x T]`` -> (embedding ``Tensor[B x D]``, logits ``Tensor[B x classes]``)."""
        x = self.logmel_extractor(self.spectrogram_extractor(wav))  # (B, 1, F, mels)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, pool=2 if i < 5 else 1)
        x = x.mean(dim=3)  # (B, C, F')
        x = x.max(dim=2).values + x.mean(dim=2)
        emb = F.relu(self.fc1(x))
        return emb, self.fc_audioset(emb)


def _shapes_from_state(state: dict[str, Tensor]) -> dict:
    try:
        widths = tuple(int(state[f"conv_block{i}.conv1.weight"].shape[0]) for i in range(1, 7))
        return {
            "widths": widths,
            "classes_num": int(state["fc_audioset.weight"].shape[0]),
            "mel_bins": int(state["bn0.weight"].shape[0]),
        }
    except KeyError as err:
        raise ModelError(f"not a PANNs CNN14 checkpoint: missing {err}") from None


class PannsEmbedder(Embedder):
    """PANNs CNN14 clip embedding (2048-d, one per clip) and 527 AudioSet logits.

    Args:
        checkpoint: The ``.pth`` file, or a folder holding the published file name. Default:
            ``$FOLEYKIT_HOME/models/panns/`` then ``~/.cache/audioldm_eval/ckpt/`` (audioldm_eval's cache).
        sample_rate: 32000 (``Cnn14_mAP=0.431.pth``, the PANNs default) or 16000 (``Cnn14_16k_mAP=0.438.pth``).
        device: Torch device.
        trust_pickle: Allow a full unpickling of a checkpoint that holds more than tensors and numpy data
            (it can run code from the file: only for files from a source you trust).

    Raises:
        WeightsNotFoundError: the checkpoint is not there (the message says where to get it).
    """

    name = "panns"

    def __init__(
        self,
        *,
        checkpoint: str | os.PathLike | None = None,
        sample_rate: int = 32000,
        device: str = "cpu",
        trust_pickle: bool = False,
    ) -> None:
        from foleykit.paths import foleykit_home

        if sample_rate not in PRESETS:
            raise ConfigError(f"PANNs CNN14 checkpoints exist for 32000 and 16000 Hz, not {sample_rate}")
        filename, window, hop, fmin, fmax, source = PRESETS[sample_rate]
        self.path = find_checkpoint(
            checkpoint,
            filename=filename,
            what="PANNs CNN14 embedder",
            source=source,
            search=[foleykit_home() / "models" / "panns", Path.home() / ".cache" / "audioldm_eval" / "ckpt"],
        )
        state = load_state(self.path, what="PANNs CNN14 embedder", trust_pickle=trust_pickle)
        shapes = _shapes_from_state(state)
        self.sample_rate, self.device = int(sample_rate), device
        self.model = Cnn14(
            sample_rate=sample_rate, window_size=window, hop_size=hop, fmin=fmin, fmax=fmax, **shapes
        )
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ModelError(
                f"PANNs CNN14 embedder: {self.path} does not match the CNN14 layout: {err}"
            ) from err
        self.model.requires_grad_(False)
        self.model.eval().to(device)
        self.dim, self.num_classes = shapes["widths"][-1], shapes["classes_num"]
        self.min_samples = 32 * hop  # five 2x poolings need 32 frames

    def _forward(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = check_mono(wav, name="panns")
        if x.size < self.min_samples:
            x = np.pad(x, (0, self.min_samples - x.size))
        with torch.no_grad():
            emb, logits = self.model(torch.from_numpy(x)[None].to(self.device))
        return emb.cpu().numpy().astype(np.float32), logits[0].cpu().numpy().astype(np.float32)

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """``(T,)`` at ``sample_rate`` -> the clip embedding as one frame ``(1, D)``."""
        return self._forward(wav)[0]

    def embed_with_logits(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clip embedding ``(1, D)`` and logits ``(C,)`` from one forward pass."""
        return self._forward(wav)

    def logits(self, wav: np.ndarray) -> np.ndarray:
        """AudioSet logits ``(527,)`` of the clip (before the sigmoid)."""
        return self._forward(wav)[1]

    def describe(self) -> dict:
        return {**super().describe(), "checkpoint": str(self.path)}


register("embedder", "panns")(PannsEmbedder)
