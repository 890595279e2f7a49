"""Timing predictors: video features -> a timing control (energy, RMS envelope, onsets, event presence).

Every predictor takes video features ``Tensor[B x T_v x D]`` (one row per video frame at
``seq.video_fps``), exposes ``loss(...)`` for training and ``to_control(output, seq)`` that turns the
output for ONE clip into a :class:`foleykit.controls.TemporalControl`.

- :class:`EnergyPredictor` — ReWaS phi (sec. 4.1 + appendix): linear(768) + transformer blocks + MLP
  128-64-16-1, MSE against the mel energy resized (nearest) to the video-feature length.
- :class:`RMSMapper` — Stable-V2A RMS-Mapper (sec. III-C): 3 x [conv1d, batch-norm, ReLU, upsample] to the
  envelope rate, 2-layer BiLSTM, linear to 64 mu-law classes; cross-entropy on Gaussian-smoothed targets.
- :class:`OnsetHead` — STA-V2A onset pretext head (sec. II-B-1, eq. 1): features resized to the latent
  length, expanding context windows, linear -> onset logits, BCE on onset pseudo-labels.
- :class:`EventDetector` — Rhythmic Foley's video event detector (sec. III-A): sound-event presence per
  video frame, BCE.

Sizes: each class has ``preset(size, in_dim=...)`` with ``full`` (the paper's), ``small`` (the CPU
demonstrator's) and ``debug`` (tests) sizes; keyword arguments override a preset.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError
from foleykit.models.pooling import SinusoidalPositions
from foleykit.registry import register

if TYPE_CHECKING:  # pragma: no cover
    from foleykit.controls.base import TemporalControl

__all__ = ["EnergyPredictor", "EventDetector", "OnsetHead", "RMSMapper", "TimingPredictor"]


# --- shared helpers ------------------------------------------------------------------------------------
def _check_feats(feats: Tensor, in_dim: int, name: str) -> None:
    if feats.ndim != 3 or feats.shape[-1] != in_dim:
        raise ConfigError(
            f"{name}: expected video features Tensor[B x T_v x {in_dim}], got {tuple(feats.shape)}"
        )
    if feats.shape[1] == 0:
        raise ConfigError(f"{name}: got zero video frames")


def _channel_ranges(ranges: Any, in_dim: int, name: str) -> list[list[int]]:
    """Checked ``[[start, stop], ...]`` channel ranges inside ``[0, in_dim)`` (None: none)."""
    out = []
    for r in ranges or []:
        ok = isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(v, int) for v in r)
        if not ok or not 0 <= r[0] < r[1] <= in_dim:
            raise ConfigError(
                f"{name}: ignore_channels needs [start, stop] pairs inside [0, {in_dim}], got {r!r}"
            )
        out.append([int(r[0]), int(r[1])])
    return out


def _check_num_frames(num_frames: int, name: str) -> int:
    if int(num_frames) != num_frames or num_frames < 1:
        raise ConfigError(f"{name}: num_frames must be a positive integer, got {num_frames!r}")
    return int(num_frames)


def _one_clip(output: Tensor, ndim: int, name: str) -> np.ndarray:
    """The output of a single clip as numpy (drops a leading batch dimension of 1)."""
    out = output.detach()
    if out.ndim == ndim + 1:
        if out.shape[0] != 1:
            raise ConfigError(
                f"{name}.to_control converts one clip; got a batch of {out.shape[0]} (index it first)"
            )
        out = out[0]
    if out.ndim != ndim or out.shape[0] == 0:
        raise ConfigError(f"{name}.to_control: unexpected output shape {tuple(output.shape)}")
    return out.float().cpu().numpy()


def _masked_mean(loss: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of an elementwise loss ``Tensor[B x N]`` over valid (mask True) entries."""
    if mask is None:
        return loss.mean()
    if mask.shape != loss.shape:
        raise ConfigError(f"loss mask shape {tuple(mask.shape)} does not match {tuple(loss.shape)}")
    m = mask.to(loss.dtype)
    return (loss * m).sum() / m.sum().clamp_min(1.0)


def resize_time(x: Tensor, num_frames: int, *, mode: str = "nearest") -> Tensor:
    """Resize ``Tensor[B x T x C]`` (or ``Tensor[B x T]``) along time to ``num_frames``.

    ``nearest`` is the ReWaS resize (energy targets / video embeddings) and STA-V2A's temporal adjustment.
    """
    squeeze = x.ndim == 2
    y = x[:, None, :] if squeeze else x.transpose(1, 2)  # (B, C, T)
    if y.shape[-1] != num_frames:
        kwargs = {} if mode == "nearest" else {"align_corners": False}
        y = F.interpolate(y.float(), size=num_frames, mode=mode, **kwargs).to(x.dtype)
    return y[:, 0, :] if squeeze else y.transpose(1, 2)


def _peaks(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Binary track: 1 at local maxima of ``prob`` that reach ``threshold`` (first frame of a plateau)."""
    left = np.concatenate([[-np.inf], prob[:-1]])
    right = np.concatenate([prob[1:], [-np.inf]])
    return ((prob >= threshold) & (prob > left) & (prob >= right)).astype(np.float32)


class TimingPredictor(nn.Module):
    """Base class: ``kind`` names the control the predictor produces; ``preset`` builds a named size."""

    kind: ClassVar[str] = ""
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, size: str = "full", **overrides: Any) -> TimingPredictor:
        """Build a named size (``full`` / ``small`` / ``debug``); ``overrides`` replace preset values."""
        if size not in cls.PRESETS:
            raise ConfigError(f"{cls.__name__}: unknown size {size!r}; valid sizes: {', '.join(cls.PRESETS)}")
        return cls(**{**cls.PRESETS[size], **overrides})

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# --- ReWaS energy projector phi ------------------------------------------------------------------------
class EnergyPredictor(TimingPredictor):
    """ReWaS video-to-energy projector phi (sec. 4.1, appendix "Energy signal").

    linear(in_dim -> hidden) -> ``num_layers`` pre-norm transformer blocks (8 heads, MLP ratio 4) ->
    MLP hidden-128-64-16-1 (ReLU). The paper states 2 blocks and 22M parameters; the published code uses
    3 blocks, which is what 22M corresponds to (``num_layers=3``: 21.9M with in_dim 768; 2 blocks: 14.9M).

    Args:
        in_dim: Video feature size D.
        hidden_dim: Width of the linear layer and transformer blocks (ReWaS: 768).
        num_layers: Transformer blocks.
        num_heads: Attention heads.
        mlp_ratio: Feed-forward expansion of the blocks.
        head_dims: Hidden sizes of the output MLP (ReWaS: 128, 64, 16; a final 1 is appended).
        dropout: Dropout inside the transformer blocks.
        positional: Add sinusoidal positions before the blocks (ReWaS does not).

    Shapes:
        ``forward(feats: Tensor[B x T_v x D], mask: BoolTensor[B x T_v] | None) -> Tensor[B x T_v]``
        (predicted energy per video frame; mask True = valid frame).
    """

    kind: ClassVar[str] = "energy"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {
            "in_dim": 768,
            "hidden_dim": 768,
            "num_layers": 2,
            "num_heads": 8,
            "head_dims": (128, 64, 16),
        },
        "small": {
            "in_dim": 256,
            "hidden_dim": 256,
            "num_layers": 2,
            "num_heads": 4,
            "head_dims": (128, 64, 16),
        },
        "debug": {"in_dim": 16, "hidden_dim": 32, "num_layers": 1, "num_heads": 2, "head_dims": (16, 8, 4)},
    }

    def __init__(
        self,
        *,
        in_dim: int,
        hidden_dim: int = 768,
        num_layers: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        head_dims: tuple[int, ...] = (128, 64, 16),
        dropout: float = 0.0,
        positional: bool = False,
    ) -> None:
        super().__init__()
        if hidden_dim % num_heads:
            raise ConfigError(
                f"EnergyPredictor: hidden_dim {hidden_dim} must be divisible by num_heads {num_heads}"
            )
        self.in_dim, self.hidden_dim = in_dim, hidden_dim
        self.proj = nn.Linear(in_dim, hidden_dim)
        self.positions = SinusoidalPositions(dim=hidden_dim) if positional else None
        layer = nn.TransformerEncoderLayer(
            hidden_dim,
            num_heads,
            dim_feedforward=int(mlp_ratio * hidden_dim),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        dims = [hidden_dim, *head_dims, 1]
        mlp: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            mlp.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                mlp.append(nn.ReLU())
        self.head = nn.Sequential(*mlp)

    def forward(self, feats: Tensor, mask: Tensor | None = None) -> Tensor:
        _check_feats(feats, self.in_dim, "EnergyPredictor")
        x = self.proj(feats)
        if self.positions is not None:
            x = x + self.positions(x.shape[1]).to(x.dtype)
        pad = None if mask is None else ~mask.to(device=x.device, dtype=torch.bool)
        x = self.blocks(x, src_key_padding_mask=pad)
        return self.head(x).squeeze(-1)

    @staticmethod
    def resize_target(energy: Tensor, num_frames: int) -> Tensor:
        """ReWaS: resize the energy ``Tensor[B x T_e]`` (mel rate) to ``num_frames`` by nearest neighbour."""
        return resize_time(energy, num_frames, mode="nearest")

    def loss(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """MSE ``|phi(E_v) - Resize(e)|^2`` (ReWaS L_e).

        Args:
            pred: ``Tensor[B x T_v]`` from forward.
            target: Energy ``Tensor[B x T_e]`` at any rate (resized to T_v by nearest neighbour).
            mask: Optional BoolTensor[B x T_v], True = frame counts.
        """
        if target.ndim != 2 or target.shape[0] != pred.shape[0]:
            raise ConfigError(
                f"EnergyPredictor.loss: target must be Tensor[B x T], got {tuple(target.shape)}"
            )
        target = self.resize_target(target.to(pred.dtype), pred.shape[1])
        return _masked_mean((pred - target) ** 2, mask)

    def to_control(self, output: Tensor, seq: SequenceConfig) -> TemporalControl:
        """Energy control on the mel/energy grid (``seq.mel_rate``), resized by nearest neighbour as ReWaS.

        Args:
            output: ``Tensor[T_v]`` or ``Tensor[1 x T_v]`` (one clip at ``seq.video_fps``).
        """
        from foleykit.controls.base import TemporalControl

        values = _one_clip(output, 1, "EnergyPredictor")
        n = seq.with_duration(len(values) / seq.video_fps).num_energy_frames
        video = TemporalControl("energy", values, seq.video_fps)
        return video.resample(seq.mel_rate, num_frames=max(n, 1), method="nearest")


# --- Stable-V2A RMS-Mapper -------------------------------------------------------------------------------
class RMSMapper(TimingPredictor):
    """Stable-V2A RMS-Mapper (sec. III-C, Fig. 4): video features -> 64-class mu-law RMS envelope.

    ``num_convs`` x [conv1d (kernel 5), batch-norm, ReLU, dropout, upsample] take the features from the
    video rate to the envelope rate (the upsample sizes come from :meth:`upsample_sizes`: doubling, the
    last one exactly ``num_frames``; 300 -> [600, 1200, 1250] as in the paper), then a 2-layer BiLSTM and a
    linear layer give the class logits per envelope frame.

    Args:
        in_dim: Video feature size D (Stable-V2A: 1024, TC-CLIP RGB + flow).
        hidden_dim: Conv channels (the Video-Foley/RegNet encoder keeps the input width).
        kernel_size: Conv kernel (odd).
        num_convs: Conv + upsample stages (3).
        lstm_hidden: LSTM hidden size per direction.
        lstm_layers: BiLSTM layers (2).
        num_classes: Mu-law classes (64).
        dropout: Dropout after each conv stage.
        upsample_mode: ``nearest`` (torch Upsample default) or ``linear``.
        ignore_channels: ``[[start, stop], ...]`` ranges of feature channels the mapper does not read (zeroed
            before the first convolution; the weights keep their shape). The recipe's ``input_groups`` names
            the video encoder's channel groups to read instead (``foleykit.recipes``); the demonstrator reads
            the timing groups of its scene encoder and leaves the detector's classes and embedding, which say
            what is visible, to the video tokens.
        silence_threshold: How :meth:`to_control` decodes the logits. None (Stable-V2A): the argmax class.
            A probability ``tau``: class 0 (silence) when ``P(class 0) >= tau``, else the most likely of the
            sounding classes 1..C-1. Trained with eq. 9's smoothing, class 0 is one-hot but every sounding
            target is spread over 5 neighbouring classes, so the argmax picks silence on frames where sound
            is more likely than not; a threshold chosen on validation data undoes that bias.
        decoding: The rule of :meth:`decode_classes` (``argmax``, ``expected``, ``median``).
        expansion: Dynamic-range expansion of the decoded envelope, in mu-law classes (:meth:`decode_classes`;
            1: none). An expected class under uncertainty lies between the silent and the sounding mode, so
            the valleys between events decode too loud; ``g`` > 1 moves every frame ``g`` times as far below
            the clip's peak class (the peak keeps its level; below class 0 is silence).

    Shapes:
        ``forward(feats: Tensor[B x T_v x D], num_frames: int)`` -> logits
        ``Tensor[B x num_frames x num_classes]``.
    """

    kind: ClassVar[str] = "rms"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"in_dim": 1024, "hidden_dim": 1024, "kernel_size": 5, "lstm_hidden": 256},
        "small": {"in_dim": 128, "hidden_dim": 128, "kernel_size": 5, "lstm_hidden": 64, "dropout": 0.2},
        "debug": {"in_dim": 16, "hidden_dim": 16, "kernel_size": 3, "lstm_hidden": 8, "dropout": 0.0},
    }

    def __init__(
        self,
        *,
        in_dim: int,
        hidden_dim: int = 1024,
        kernel_size: int = 5,
        num_convs: int = 3,
        lstm_hidden: int = 256,
        lstm_layers: int = 2,
        num_classes: int = 64,
        dropout: float = 0.5,
        upsample_mode: str = "nearest",
        silence_threshold: float | None = None,
        decoding: str = "argmax",
        expansion: float = 1.0,
        ignore_channels: list[list[int]] | None = None,
    ) -> None:
        super().__init__()
        self.ignore_channels = _channel_ranges(ignore_channels, in_dim, "RMSMapper")
        self.silence_threshold = silence_threshold
        self.decoding = decoding
        self.expansion = expansion
        if kernel_size % 2 == 0:
            raise ConfigError(f"RMSMapper: kernel_size must be odd, got {kernel_size}")
        if upsample_mode not in ("nearest", "linear"):
            raise ConfigError(f"RMSMapper: upsample_mode must be nearest or linear, got {upsample_mode!r}")
        self.in_dim, self.num_classes, self.num_convs = in_dim, num_classes, num_convs
        self.upsample_mode = upsample_mode
        self.convs = nn.ModuleList()
        for i in range(num_convs):
            self.convs.append(
                nn.Sequential(
                    nn.Conv1d(
                        in_dim if i == 0 else hidden_dim, hidden_dim, kernel_size, padding=kernel_size // 2
                    ),
                    nn.BatchNorm1d(hidden_dim),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                )
            )
        self.lstm = nn.LSTM(
            hidden_dim, lstm_hidden, num_layers=lstm_layers, batch_first=True, bidirectional=True
        )
        self.head = nn.Linear(2 * lstm_hidden, num_classes)

    @staticmethod
    def upsample_sizes(num_video_frames: int, num_frames: int, num_stages: int = 3) -> list[int]:
        """Upsample size after each conv stage: doubling, capped at ``num_frames``, the last = ``num_frames``.

        Stable-V2A: 300 video frames -> [600, 1200, 1250]; the demonstrator (25 fps -> 125 Hz, 10 s):
        250 -> [500, 1000, 1250].
        """
        sizes = [min(num_video_frames * 2 ** (i + 1), num_frames) for i in range(num_stages - 1)]
        return [*sizes, num_frames]

    @staticmethod
    def num_output_frames(seq: SequenceConfig, num_video_frames: int) -> int:
        """Envelope frames N for ``num_video_frames`` frames at ``seq.video_fps``."""
        return seq.with_duration(num_video_frames / seq.video_fps).num_control_frames

    def forward(self, feats: Tensor, num_frames: int) -> Tensor:
        _check_feats(feats, self.in_dim, "RMSMapper")
        num_frames = _check_num_frames(num_frames, "RMSMapper")
        if self.ignore_channels:
            feats = feats.clone()
            for start, stop in self.ignore_channels:
                feats[..., start:stop] = 0
        x = feats.transpose(1, 2)  # (B, D, T_v)
        for conv, size in zip(self.convs, self.upsample_sizes(feats.shape[1], num_frames, self.num_convs)):
            x = conv(x)
            kwargs = {} if self.upsample_mode == "nearest" else {"align_corners": False}
            x = F.interpolate(x, size=size, mode=self.upsample_mode, **kwargs)
        x, _ = self.lstm(x.transpose(1, 2))  # (B, N, 2 * lstm_hidden)
        return self.head(x)

    def smoothed_targets(self, classes: Tensor, *, window: int = 2) -> Tensor:
        """Gaussian-smoothed targets (Stable-V2A eq. 9) ``Tensor[B x N x C]`` from ``LongTensor[B x N]``."""
        from foleykit.controls.rms import gaussian_smoothed_targets

        return gaussian_smoothed_targets(classes.long(), n_classes=self.num_classes, window=window).float()

    def loss(self, logits: Tensor, target: Tensor, mask: Tensor | None = None, *, window: int = 2) -> Tensor:
        """Cross-entropy on Gaussian-smoothed mu-law classes (Stable-V2A eq. 10).

        Args:
            logits: ``Tensor[B x N x C]``.
            target: class indices ``LongTensor[B x N]`` (smoothed here with eq. 9, sigma 1, half-width
                ``window``) or soft targets ``Tensor[B x N x C]`` used as given.
            mask: Optional BoolTensor[B x N], True = frame counts.
            window: Smoothing half-width W in classes (Video-Foley uses 2).
        """
        if target.ndim == 2 and not target.is_floating_point():
            target = self.smoothed_targets(target, window=window)
        if target.shape != logits.shape:
            raise ConfigError(
                f"RMSMapper.loss: target shape {tuple(target.shape)} does not fit logits "
                f"{tuple(logits.shape)} (give LongTensor[B x N] classes or Tensor[B x N x C])"
            )
        ce = -(target.to(logits.dtype) * F.log_softmax(logits, dim=-1)).sum(-1)  # (B, N)
        return _masked_mean(ce, mask)

    @property
    def silence_threshold(self) -> float | None:
        """The decoding rule of :meth:`decode_classes` (None: argmax); setting it checks the range."""
        return self._silence_threshold

    @silence_threshold.setter
    def silence_threshold(self, value: float | None) -> None:
        if value is not None and not 0 < value < 1:
            raise ConfigError(f"RMSMapper: silence_threshold must be in (0, 1) or None, got {value}")
        if value is not None and getattr(self, "_decoding", "argmax") != "argmax":
            raise ConfigError("RMSMapper: silence_threshold applies to decoding 'argmax' only")
        self._silence_threshold = None if value is None else float(value)

    @property
    def decoding(self) -> str:
        """The decoding rule of :meth:`decode_classes`: ``argmax``, ``expected`` or ``median``."""
        return self._decoding

    @decoding.setter
    def decoding(self, value: str) -> None:
        if value not in DECODINGS:
            raise ConfigError(f"RMSMapper: decoding must be one of {', '.join(DECODINGS)}, got {value!r}")
        if value != "argmax" and self.silence_threshold is not None:
            raise ConfigError("RMSMapper: silence_threshold applies to decoding 'argmax' only")
        self._decoding = value

    @property
    def expansion(self) -> float:
        """Dynamic-range expansion of :meth:`decode_classes` about the clip's peak class (1: none)."""
        return self._expansion

    @expansion.setter
    def expansion(self, value: float) -> None:
        self._expansion = check_expansion(value)

    def decode_classes(self, logits: Tensor, *, expansion: float | None = None) -> Tensor:
        """Class per frame of logits ``Tensor[... x N x C]`` (N frames of a clip) by the :attr:`decoding` rule.

        ``argmax``: the most likely class, or with ``silence_threshold`` tau: silence when P(0) >= tau, else
        the most likely sounding class. ``expected``: the rounded expected class index (a level that moves
        with the whole distribution, so an uncertain frame decodes quieter rather than silent). ``median``: the
        class where the cumulative probability reaches 0.5. Then :attr:`expansion` ``g``: class
        ``peak - g * (peak - c)`` with ``peak`` the clip's loudest decoded class, 0 below 0 (mu-law classes are
        nearly logarithmic in RMS, so this is ``rms ~ peak_rms * (rms / peak_rms) ** g``). ``expansion``
        overrides :attr:`expansion` for this call.
        """
        g = self.expansion if expansion is None else check_expansion(expansion)
        if self.decoding == "argmax" and self.silence_threshold is None:
            level = logits.argmax(-1).float()
        else:
            p = logits.float().softmax(-1)
            if self.decoding == "expected":
                index = torch.arange(p.shape[-1], dtype=p.dtype, device=p.device)
                level = (p * index).sum(-1)
            elif self.decoding == "median":
                level = (p.cumsum(-1) < 0.5).sum(-1).clamp(max=p.shape[-1] - 1).float()
            else:
                sounding = 1 + p[..., 1:].argmax(-1)
                level = torch.where(p[..., 0] >= self.silence_threshold, 0, sounding).float()
        if g != 1.0 and level.shape[-1] > 0:
            peak = level.amax(-1, keepdim=True)
            level = (peak - g * (peak - level)).clamp(min=0)
        return level.round().long()

    def to_control(
        self, output: Tensor, seq: SequenceConfig, *, expansion: float | None = None
    ) -> TemporalControl:
        """Class per frame (:meth:`decode_classes`), mu-law decoded to an RMS envelope at ``seq.control_rate``
        (kind ``rms``).

        Args:
            output: logits ``Tensor[N x C]`` or ``Tensor[1 x N x C]``.
            expansion: Valley expansion of this decoding (None: :attr:`expansion`).
        """
        from foleykit.controls.base import TemporalControl
        from foleykit.controls.rms import classes_to_rms

        logits = _one_clip(output, 2, "RMSMapper")
        classes = self.decode_classes(torch.from_numpy(logits), expansion=expansion).numpy()
        rms = np.asarray(classes_to_rms(classes, n_classes=self.num_classes), dtype=np.float32)
        return TemporalControl("rms", rms, seq.control_rate, meta={"source": "RMSMapper"})


#: The RMS-Mapper's decoding rules (:meth:`RMSMapper.decode_classes`).
DECODINGS = ("argmax", "expected", "median")


def check_expansion(value: Any) -> float:
    """The RMS-Mapper's valley expansion as a float, checked to lie in [1, 10] (1: none).

    Raises:
        ConfigError: not a number in that range.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 1.0 <= float(value) <= 10.0
    if not ok:
        raise ConfigError(f"RMSMapper: expansion must be a number in [1, 10], got {value!r}")
    return float(value)


# --- STA-V2A onset head -------------------------------------------------------------------------------------
def window_means(x: Tensor, half_width: int) -> Tensor:
    """Centred moving average over ``[i - w, i + w]`` (clipped at the edges) of ``Tensor[B x T x C]``."""
    T = x.shape[1]
    c = F.pad(torch.cumsum(x, dim=1), (0, 0, 1, 0))  # (B, T+1, C), c[k] = sum x[:k]
    idx = torch.arange(T, device=x.device)
    lo = (idx - half_width).clamp(min=0)
    hi = (idx + half_width + 1).clamp(max=T)
    return (c[:, hi] - c[:, lo]) / (hi - lo).to(x.dtype)[None, :, None]


class OnsetHead(TimingPredictor):
    """STA-V2A onset-prediction pretext head (sec. II-B-1, eq. 1) with expanding context windows.

    per-frame MLP (in -> hidden -> hidden -> feature -> feature, GELU) -> nearest resize to the latent
    length -> concat [e; mean over +-1; +-2; +-4; +-8 frames] -> linear + SiLU = local temporal features
    ``e_lv`` (the ControlNet input of STA-V2A) -> linear -> onset logit per latent frame.

    Args:
        in_dim: Video feature size D (STA-V2A: 512, CAVP).
        hidden_dim: MLP hidden size.
        feature_dim: Size of the per-frame embedding and of ``e_lv``.
        windows: Half-widths of the expanding context windows, in latent frames.

    Shapes:
        ``forward(feats: Tensor[B x T_v x D], num_frames: int) -> logits Tensor[B x num_frames]``;
        with ``return_features=True`` also ``e_lv Tensor[B x num_frames x feature_dim]``.
    """

    kind: ClassVar[str] = "onsets"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"in_dim": 512, "hidden_dim": 256, "feature_dim": 128},
        "small": {"in_dim": 128, "hidden_dim": 128, "feature_dim": 64},
        "debug": {"in_dim": 16, "hidden_dim": 16, "feature_dim": 8},
    }

    def __init__(
        self,
        *,
        in_dim: int,
        hidden_dim: int = 256,
        feature_dim: int = 128,
        windows: tuple[int, ...] = (1, 2, 4, 8),
    ) -> None:
        super().__init__()
        if any(w < 1 for w in windows):
            raise ConfigError(f"OnsetHead: window half-widths must be >= 1, got {windows}")
        self.in_dim, self.feature_dim, self.windows = in_dim, feature_dim, tuple(windows)
        self.embed = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, feature_dim),
            nn.GELU(),
            nn.Linear(feature_dim, feature_dim),
        )
        self.local = nn.Linear(feature_dim * (1 + len(self.windows)), feature_dim)
        self.out = nn.Linear(feature_dim, 1)

    def forward(
        self, feats: Tensor, num_frames: int, *, return_features: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        _check_feats(feats, self.in_dim, "OnsetHead")
        num_frames = _check_num_frames(num_frames, "OnsetHead")
        e = resize_time(self.embed(feats), num_frames, mode="nearest")  # (B, N, F)
        ctx = torch.cat([e, *(window_means(e, w) for w in self.windows)], dim=-1)
        e_lv = F.silu(self.local(ctx))
        logits = self.out(e_lv).squeeze(-1)
        return (logits, e_lv) if return_features else logits

    def loss(
        self, logits: Tensor, target: Tensor, mask: Tensor | None = None, *, pos_weight: float | None = None
    ) -> Tensor:
        """BCE with onset pseudo-labels (STA-V2A eq. 1).

        Args:
            logits: ``Tensor[B x N]``.
            target: 0/1 onset track ``Tensor[B x N]`` at the latent rate.
            mask: Optional BoolTensor[B x N].
            pos_weight: Weight of positive frames (onsets are sparse; e.g. negatives / positives).
        """
        if target.shape != logits.shape:
            raise ConfigError(
                f"OnsetHead.loss: target shape {tuple(target.shape)} != logits {tuple(logits.shape)}"
            )
        pw = None if pos_weight is None else torch.tensor(float(pos_weight), device=logits.device)
        bce = F.binary_cross_entropy_with_logits(
            logits, target.to(logits.dtype), reduction="none", pos_weight=pw
        )
        return _masked_mean(bce, mask)

    def to_control(
        self, output: Tensor, seq: SequenceConfig, *, threshold: float = 0.5, mode: str = "peaks"
    ) -> TemporalControl:
        """Onset track at ``seq.latent_rate`` (kind ``onsets``).

        Args:
            output: logits ``Tensor[N]`` or ``Tensor[1 x N]``.
            threshold: Probability an onset peak must reach (mode ``peaks``).
            mode: ``peaks`` (1 at local maxima of the probability >= threshold) or ``probabilities``.
        """
        from foleykit.controls.base import TemporalControl

        prob = 1.0 / (1.0 + np.exp(-_one_clip(output, 1, "OnsetHead")))
        if mode == "peaks":
            values = _peaks(prob, threshold)
        elif mode == "probabilities":
            values = prob.astype(np.float32)
        else:
            raise ConfigError(f"OnsetHead.to_control: mode must be peaks or probabilities, got {mode!r}")
        return TemporalControl("onsets", values, seq.latent_rate, meta={"source": "OnsetHead", "mode": mode})


# --- Rhythmic Foley event detector ------------------------------------------------------------------------
class _TemporalBlock(nn.Module):
    def __init__(self, dim: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T)
        return x + self.drop(self.conv(F.gelu(self.norm(x))))


class EventDetector(TimingPredictor):
    """Video event detector of Rhythmic Foley (sec. III-A): is a sound event present at each video frame?

    The paper describes "a simple network trained to identify the occurrence of sound events during a
    certain period"; this is a temporal convolution network: linear in -> ``num_blocks`` residual dilated
    conv1d blocks (dilation 1, 2, 4, ...) -> linear -> presence logit per frame.

    Args:
        in_dim: Video feature size D.
        hidden_dim: Channels.
        num_blocks: Residual blocks (receptive field grows as 2^num_blocks frames).
        kernel_size: Conv kernel (odd).
        dropout: Dropout in the blocks.

    Shapes:
        ``forward(feats: Tensor[B x T_v x D]) -> presence logits Tensor[B x T_v]``.
    """

    kind: ClassVar[str] = "events"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"in_dim": 512, "hidden_dim": 256, "num_blocks": 4},
        "small": {"in_dim": 128, "hidden_dim": 64, "num_blocks": 3},
        "debug": {"in_dim": 16, "hidden_dim": 16, "num_blocks": 2, "dropout": 0.0},
    }

    def __init__(
        self,
        *,
        in_dim: int,
        hidden_dim: int = 256,
        num_blocks: int = 4,
        kernel_size: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ConfigError(f"EventDetector: kernel_size must be odd, got {kernel_size}")
        self.in_dim = in_dim
        self.proj = nn.Linear(in_dim, hidden_dim)
        self.blocks = nn.Sequential(
            *(_TemporalBlock(hidden_dim, kernel_size, 2**i, dropout) for i in range(num_blocks))
        )
        self.head = nn.Linear(hidden_dim, 1)

    def forward(self, feats: Tensor) -> Tensor:
        _check_feats(feats, self.in_dim, "EventDetector")
        x = self.blocks(self.proj(feats).transpose(1, 2)).transpose(1, 2)
        return self.head(x).squeeze(-1)

    @staticmethod
    def presence_targets(envelope: Tensor, num_frames: int, *, threshold: float) -> Tensor:
        """0/1 presence per video frame from an audio envelope at any rate (e.g. RMS at 125 Hz).

        Each video frame takes the max of the envelope frames whose centres fall inside it; present when
        that max >= ``threshold``. ``Tensor[B x T_e] -> Tensor[B x num_frames]``.
        """
        if envelope.ndim != 2:
            raise ConfigError(
                f"presence_targets: envelope must be Tensor[B x T], got {tuple(envelope.shape)}"
            )
        num_frames = _check_num_frames(num_frames, "presence_targets")
        T = envelope.shape[1]
        target = torch.floor((torch.arange(T, device=envelope.device) + 0.5) * num_frames / T).long()
        out = torch.full((envelope.shape[0], num_frames), -math.inf, device=envelope.device)
        out = out.scatter_reduce(
            1, target[None].expand(envelope.shape[0], -1), envelope.float(), reduce="amax"
        )
        return (out >= threshold).float()

    def loss(
        self, logits: Tensor, target: Tensor, mask: Tensor | None = None, *, pos_weight: float | None = None
    ) -> Tensor:
        """BCE on 0/1 presence targets ``Tensor[B x T_v]`` (``pos_weight`` up-weights event frames)."""
        if target.shape != logits.shape:
            raise ConfigError(
                f"EventDetector.loss: target shape {tuple(target.shape)} != logits {tuple(logits.shape)}"
            )
        pw = None if pos_weight is None else torch.tensor(float(pos_weight), device=logits.device)
        bce = F.binary_cross_entropy_with_logits(
            logits, target.to(logits.dtype), reduction="none", pos_weight=pw
        )
        return _masked_mean(bce, mask)

    def to_control(
        self, output: Tensor, seq: SequenceConfig, *, threshold: float = 0.5, mode: str = "binary"
    ) -> TemporalControl:
        """Event-presence track at ``seq.video_fps`` (kind ``events``): ``binary`` (p >= threshold) or
        ``probabilities``. ``output``: logits ``Tensor[T_v]`` or ``Tensor[1 x T_v]``."""
        from foleykit.controls.base import TemporalControl

        prob = 1.0 / (1.0 + np.exp(-_one_clip(output, 1, "EventDetector")))
        if mode == "binary":
            values = (prob >= threshold).astype(np.float32)
        elif mode == "probabilities":
            values = prob.astype(np.float32)
        else:
            raise ConfigError(f"EventDetector.to_control: mode must be binary or probabilities, got {mode!r}")
        return TemporalControl(
            "events", values, seq.video_fps, meta={"source": "EventDetector", "mode": mode}
        )


# --- registry -------------------------------------------------------------------------------------------
def _builder(cls: type[TimingPredictor]):
    def build(*, size: str = "full", **overrides: Any) -> TimingPredictor:
        return cls.preset(size, **overrides)

    build.__doc__ = f"Build a {cls.__name__} of a named size (full/small/debug) with overrides."
    return build


for _name, _cls in {
    "energy": EnergyPredictor,
    "rms": RMSMapper,
    "onsets": OnsetHead,
    "events": EventDetector,
}.items():
    register("timing_predictor", _name)(_builder(_cls))
