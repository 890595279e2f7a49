"""VGGish (Hershey et al., ICASSP 2017) from a local torchvggish checkpoint: the classic FAD backbone.

Written against the torchvggish layout (harritaylor/torchvggish ``vggish-10086976.pth``):
``features.{0,3,6,8,11,13}`` (3x3 convs 64, M, 128, M, 256, 256, M, 512, 512, M) and
``embeddings.{0,2,4}`` (Linear 512*4*6 -> 4096 -> 4096 -> 128, ReLU after each), plus the optional PCA
parameters ``vggish_pca_params-970ea276.pth`` (``pca_eigen_vectors`` (128, 128), ``pca_means`` (128,)).

Input (the AudioSet ``vggish_input`` / ``mel_features`` front end): 16 kHz mono; frames of 25 ms (400
samples) every 10 ms with a periodic Hann window, ``|rfft|`` with 512 points, 64 HTK-mel bands 125-7500 Hz
(DC bin zeroed), ``log(mel + 0.01)``; non-overlapping 0.96 s patches of 96 x 64 -> one 128-d embedding each.

FAD convention (audioldm_eval / frechet_audio_distance: ``use_pca=False, use_activation=False``): no PCA
post-processing and the last ReLU dropped — the defaults here. ``postprocess=True`` applies the PCA
whitening + 8-bit quantisation of the AudioSet release (needs the PCA file). Clips shorter than one patch
(0.975 s) are zero-padded to one patch. Channel widths are read from the checkpoint, so tiny random
checkpoints in the same layout load through the same code.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from foleykit.errors import ModelError
from foleykit.evaluation.embedders._checkpoint import find_checkpoint, load_state
from foleykit.evaluation.embedders.base import Embedder, check_mono
from foleykit.registry import register

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
FFT = 512
N_MELS = 64
FMIN, FMAX = 125.0, 7500.0
LOG_OFFSET = 0.01
PATCH = 96  # frames per 0.96 s example
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0
CHECKPOINT = "vggish-10086976.pth"
PCA_PARAMS = "vggish_pca_params-970ea276.pth"
SOURCE = "https://github.com/harritaylor/torchvggish/releases (v0.1: vggish-10086976.pth, vggish_pca_params-970ea276.pth)"
CONV_INDICES = (0, 3, 6, 8, 11, 13)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_matrix() -> np.ndarray:
    """HTK triangular mel weights ``(257, 64)``, 125-7500 Hz at 16 kHz, DC row zeroed (AudioSet mel_features)."""
    bins_mel = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, FFT // 2 + 1))
    edges = np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (bins_mel[:, None] - lower) / (center - lower)
    down = (upper - bins_mel[:, None]) / (upper - center)
    m = np.maximum(0.0, np.minimum(up, down))
    m[0, :] = 0.0
    return m


def log_mel_examples(wav: np.ndarray) -> np.ndarray:
    """VGGish input patches ``(N, 96, 64)`` float32 of 16 kHz mono audio ``(T,)`` (zero-padded to one patch)."""
    x = np.asarray(wav, dtype=np.float64)
    need = WINDOW + (PATCH - 1) * HOP
    if x.size < need:
        x = np.pad(x, (0, need - x.size))
    n_frames = 1 + (x.size - WINDOW) // HOP
    idx = np.arange(n_frames)[:, None] * HOP + np.arange(WINDOW)[None, :]
    window = 0.5 - 0.5 * np.cos(2 * np.pi / WINDOW * np.arange(WINDOW))  # periodic Hann
    spec = np.abs(np.fft.rfft(x[idx] * window, FFT))  # (frames, 257)
    log_mel = np.log(spec @ mel_matrix() + LOG_OFFSET)  # (frames, 64)
    n = 1 + (n_frames - PATCH) // PATCH
    return np.stack([log_mel[i * PATCH : (i + 1) * PATCH] for i in range(n)]).astype(np.float32)


class VGGish(nn.Module):
    """VGGish in the torchvggish layout (``features`` + ``embeddings`` Sequentials).

    Args:
        widths: Conv channels (64, 128, 256, 256, 512, 512).
        hidden: Width of the two hidden fully connected layers (4096).
        dim: Embedding size (128).
    """

    def __init__(
        self, *, widths: tuple[int, ...] = (64, 128, 256, 256, 512, 512), hidden: int = 4096, dim: int = 128
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for i, c in enumerate(widths):
            layers += [nn.Conv2d(c_in, c, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            if i in (0, 1, 3, 5):
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            c_in = c
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(widths[-1] * 4 * 6, hidden),
            nn.ReLU(True),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Linear(hidden, dim),
            nn.ReLU(True),
        )

    def forward(self, patches: Tensor, *, final_activation: bool = False) -> Tensor:
        """``Tensor[N x 1 x 96 x 64]`` -> ``Tensor[N x dim]`` (last ReLU only with ``final_activation``)."""
        x = self.features(patches)  # (N, C, 6, 4)
        x = x.permute(0, 2, 3, 1).contiguous().flatten(1)  # torchvggish's transposes: (N, 6, 4, C)
        body = self.embeddings if final_activation else self.embeddings[:-1]
        return body(x)


class VGGishEmbedder(Embedder):
    """VGGish frame embeddings (128-d per 0.96 s) for FAD.

    Args:
        checkpoint: ``vggish-10086976.pth`` or a folder holding it (default ``$FOLEYKIT_HOME/models/vggish/``).
        pca_params: ``vggish_pca_params-970ea276.pth`` (or its folder); needed only with ``postprocess``.
        postprocess: Apply PCA whitening + 8-bit quantisation (the AudioSet release embeddings).
        final_activation: Keep the last ReLU (audioldm_eval's FAD drops it).
        device: Torch device.
        trust_pickle: Allow a full unpickling of a checkpoint that holds more than tensors and numpy data
            (it can run code from the file: only for files from a source you trust).
    """

    name = "vggish"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        checkpoint: str | os.PathLike | None = None,
        pca_params: str | os.PathLike | None = None,
        postprocess: bool = False,
        final_activation: bool = False,
        device: str = "cpu",
        trust_pickle: bool = False,
    ) -> None:
        from foleykit.paths import foleykit_home

        default = [foleykit_home() / "models" / "vggish"]
        self.path = find_checkpoint(
            checkpoint, filename=CHECKPOINT, what="VGGish embedder", search=default, source=SOURCE
        )
        state = load_state(self.path, what="VGGish embedder", trust_pickle=trust_pickle)
        try:
            widths = tuple(int(state[f"features.{i}.weight"].shape[0]) for i in CONV_INDICES)
            hidden, dim = (
                int(state["embeddings.0.weight"].shape[0]),
                int(state["embeddings.4.weight"].shape[0]),
            )
        except KeyError as err:
            raise ModelError(
                f"VGGish embedder: {self.path} is not a torchvggish checkpoint (missing {err})"
            ) from None
        self.model = VGGish(widths=widths, hidden=hidden, dim=dim)
        model_state = {k: v for k, v in state.items() if k.startswith(("features.", "embeddings."))}
        try:
            self.model.load_state_dict(model_state, strict=True)
        except RuntimeError as err:
            raise ModelError(f"VGGish embedder: {self.path} does not match the VGGish layout: {err}") from err
        self.model.requires_grad_(False)
        self.model.eval().to(device)
        self.device, self.dim = device, dim
        self.postprocess, self.final_activation = postprocess, final_activation
        self.pca_path: Path | None = None
        self.pca_matrix = self.pca_means = None
        if postprocess:
            self._load_pca(state, pca_params, default, trust_pickle)

    def _load_pca(
        self, state: dict, pca_params: str | os.PathLike | None, default: list[Path], trust_pickle: bool
    ) -> None:
        if "pproc.pca_matrix" in state and pca_params is None:  # a full torchvggish model state dict
            matrix, means = state["pproc.pca_matrix"], state["pproc.pca_means"]
        else:
            self.pca_path = find_checkpoint(
                pca_params, filename=PCA_PARAMS, what="VGGish PCA parameters", search=default, source=SOURCE
            )
            params = load_state(self.pca_path, what="VGGish PCA parameters", trust_pickle=trust_pickle)
            try:
                matrix, means = params["pca_eigen_vectors"], params["pca_means"]
            except KeyError as err:
                raise ModelError(f"VGGish PCA parameters: {self.pca_path} lacks {err}") from None
        self.pca_matrix = torch.as_tensor(np.asarray(matrix), dtype=torch.float32)
        self.pca_means = torch.as_tensor(np.asarray(means), dtype=torch.float32).reshape(-1, 1)
        if self.pca_matrix.shape != (self.dim, self.dim) or self.pca_means.shape != (self.dim, 1):
            raise ModelError(
                f"VGGish PCA parameters have shapes {tuple(self.pca_matrix.shape)} / "
                f"{tuple(self.pca_means.shape)}, expected ({self.dim}, {self.dim}) / ({self.dim},)"
            )

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """``(T,)`` at 16 kHz -> ``(N, 128)``, one embedding per 0.96 s patch."""
        x = check_mono(wav, name="vggish")
        patches = torch.from_numpy(log_mel_examples(x))[:, None].to(self.device)  # (N, 1, 96, 64)
        with torch.no_grad():
            emb = self.model(patches, final_activation=self.final_activation or self.postprocess).cpu()
        if self.postprocess:
            pca = (self.pca_matrix @ (emb.T - self.pca_means)).T
            emb = torch.round(
                (pca.clamp(QUANTIZE_MIN, QUANTIZE_MAX) - QUANTIZE_MIN)
                * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN))
            )
        return emb.numpy().astype(np.float32)

    def describe(self) -> dict:
        return {
            **super().describe(),
            "checkpoint": str(self.path),
            "postprocess": self.postprocess,
            "final_activation": self.final_activation,
        }


register("embedder", "vggish")(VGGishEmbedder)
