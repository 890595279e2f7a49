"""PNG figures of timing controls (matplotlib, Agg canvas: no display and no pyplot global state)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.controls.base import TemporalControl
from foleykit.controls.rms import MU, N_CLASSES, RMS_MIN, classes_to_rms, inverse_mu_law, mu_law
from foleykit.errors import ControlError
from foleykit.utils.io import atomic_path

_YLABELS = {
    "energy": "energy (mean log-mel)",
    "rms": "RMS (mu-law scale)",
    "rms_class": "RMS class (mu-law)",
    "onsets": "onset",
    "events": "event",
    "motion": "optical flow (px/frame)",
}


def _class_coordinate(r: np.ndarray | float) -> np.ndarray:
    """Mu-law class coordinate of RMS values: class k (k >= 1) spans [k, k + 1).

    It is affine in ``mu_law(r)``, so it is a linear axis alongside a mu-law-scaled RMS axis (below
    ``rms_min``, the class-0 region, the affine map continues to negative values).
    """
    lo = mu_law(RMS_MIN, MU)
    step = (1.0 - lo) / (N_CLASSES - 1)
    return (mu_law(np.asarray(r, dtype=np.float64), MU) - lo) / step + 1.0


def _rms_from_class_coordinate(u: np.ndarray | float) -> np.ndarray:
    lo = mu_law(RMS_MIN, MU)
    step = (1.0 - lo) / (N_CLASSES - 1)
    return inverse_mu_law(lo + (np.asarray(u, dtype=np.float64) - 1.0) * step, MU)


def _mu_forward(r: np.ndarray) -> np.ndarray:
    return mu_law(np.asarray(r, dtype=np.float64), MU)


def _mu_inverse(y: np.ndarray) -> np.ndarray:
    return inverse_mu_law(np.asarray(y, dtype=np.float64), MU)


def _extra_axis(curve_ax: Any, outward: bool) -> Any:
    """A linear y axis on the right sharing x (pushed outwards when the right edge is taken)."""
    extra = curve_ax.twinx()  # (twinx moves curve_ax's own ticks to the left)
    if outward:  # curve_ax is itself the right-hand twin of the spectrogram: keep it on the right
        curve_ax.yaxis.tick_right()
        curve_ax.yaxis.set_label_position("right")
        extra.spines["right"].set_position(("axes", 1.1))
    return extra


def plot_control(
    control: TemporalControl,
    path: str | PathLike,
    *,
    spectrogram: Any = None,
    spectrogram_rate: float | None = None,
    title: str | None = None,
    size: tuple[float, float] = (10.0, 3.5),
    dpi: int = 100,
) -> Path:
    """Draw a control over time and save it as a PNG (atomically).

    ``rms`` curves use a mu-law y axis (the 64 classes are evenly spaced; a right axis shows the class
    index, with a grid line every 8 classes); ``rms_class`` tracks are drawn as steps with the decoded RMS
    on the right axis; ``onsets`` / ``events`` as stems; other kinds as a plain curve.

    Args:
        control: The control to draw.
        path: Output ``.png`` path.
        spectrogram: Optional ``(n_mels, T_spec)`` log-mel (numpy or Tensor, e.g. :func:`foleykit.audio.log_mel`)
            drawn underneath, starting at ``control.start``.
        spectrogram_rate: Frames per second of ``spectrogram``; default: it spans the control's duration.
        title: Figure title (default: kind, rate and frame count).
        size: Figure size in inches.
        dpi: Resolution.

    Returns:
        The written path.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ControlError(f"{path}: plots are written as PNG; use a .png file name")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    t = control.times
    t_edges = np.append(t, control.end)
    curve_ax = ax
    if spectrogram is not None:
        spec = (
            spectrogram.detach().cpu().numpy() if hasattr(spectrogram, "detach") else np.asarray(spectrogram)
        )
        spec = np.squeeze(spec)
        if spec.ndim != 2 or spec.shape[-1] < 1:
            raise ControlError(f"spectrogram must be (n_mels, frames), got shape {np.shape(spectrogram)}")
        rate = spectrogram_rate or spec.shape[1] / control.duration
        ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            cmap="magma",
            interpolation="nearest",
            extent=(control.start, control.start + spec.shape[1] / rate, 0, spec.shape[0]),
        )
        ax.set_ylabel("mel bin")
        curve_ax = ax.twinx()
    color = "tab:cyan" if spectrogram is not None else "tab:blue"
    outward = spectrogram is not None  # the curve's own axis already sits on the right edge
    v = control.values
    class_ticks = [1, 8, 16, 24, 32, 40, 48, 56, N_CLASSES - 1]
    if control.is_event:
        hits = v > 0
        curve_ax.vlines(t[hits], 0, v[hits], color=color, linewidth=1.5)
        curve_ax.plot(t[hits], v[hits], "o", color=color, markersize=3)
        curve_ax.set_ylim(0, max(1.0, float(v.max())) * 1.05)
    elif control.kind == "rms":
        # mu-law y axis: the 64 classes are evenly spaced; grid lines at class boundaries, classes on the right
        curve_ax.set_yscale("function", functions=(_mu_forward, _mu_inverse))
        curve_ax.step(t_edges, np.append(v, v[-1]), where="post", color=color, linewidth=1.2)
        top = max(1.0, float(v.max()))
        curve_ax.set_ylim(0.0, top)
        ticks = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
        curve_ax.set_yticks(ticks, [f"{x:g}" for x in ticks])
        for k in class_ticks:
            curve_ax.axhline(float(_rms_from_class_coordinate(k)), color="0.75", linewidth=0.6, zorder=0)
        classes = _extra_axis(curve_ax, outward)
        classes.set_ylim(float(_class_coordinate(0.0)), float(_class_coordinate(top)))
        classes.set_yticks(class_ticks)
        classes.set_ylabel(f"class of {N_CLASSES} (lower edge)")
    elif control.is_class:
        curve_ax.step(t_edges, np.append(v, v[-1]), where="post", color=color, linewidth=1.2)
        n = max(N_CLASSES, int(v.max()) + 1)
        curve_ax.set_ylim(0, n - 1)
        curve_ax.set_yticks(list(range(0, n, 8)))
        if control.kind == "rms_class" and n == N_CLASSES:
            table = classes_to_rms(np.arange(N_CLASSES))
            decoded = _extra_axis(curve_ax, outward)
            decoded.set_ylim(0, n - 1)
            decoded.set_yticks(class_ticks, [f"{table[k]:.3g}" for k in class_ticks])
            decoded.set_ylabel("decoded RMS")
    else:
        curve_ax.step(t_edges, np.append(v, v[-1]), where="post", color=color, linewidth=1.2)
    curve_ax.set_ylabel(_YLABELS.get(control.kind, control.kind))
    ax.set_xlim(control.start, control.end)
    ax.set_xlabel("time (s)")
    ax.set_title(title or f"{control.kind} ({control.rate:g} Hz, {control.num_frames} frames)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
