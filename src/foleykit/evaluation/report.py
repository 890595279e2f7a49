"""The evaluation report: per-metric means and per-file values, the recorded protocol, JSON and Markdown.

JSON shape (``EvalReport.to_dict``)::

    {"metrics": {NAME: {"mean": x, "per_file": {stem: x}}, ...}, "config": {...}}

Set-level metrics (fd, fad, is) have an empty ``per_file`` and their set value in ``mean``; ``is`` adds
``std``. A metric that could not be computed on this input (e.g. FD with a single clip) has
``"mean": null`` and a ``"skipped"`` reason.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Whether higher (+1) or lower (-1) is better, for the Markdown table.
DIRECTION = {
    "av_align": 1,
    "aa_align": 1,
    "onset_acc": 1,
    "onset_ap": 1,
    "e_l1": -1,
    "rms_acc": 1,
    "energy_mae": -1,
    "fd": -1,
    "fad": -1,
    "kl": -1,
    "is": 1,
    "clap": 1,
    "mel_l1": -1,  # resynthesis (benchmarks/eval_resynthesis.py)
    "mr_stft": -1,
    "category_acc": 1,  # nearest-category accuracy (benchmarks/eval_demo.py), per clip 0 / 1
    "family_acc": 1,
    "loudness_corr": 1,  # foleykit.evaluation.metrics.matching
    "loudness_margin": 1,
    "match_rank": -1,
}


@dataclass
class MetricResult:
    """One reported metric.

    Attributes:
        mean: Mean over files (per-file metrics) or the set value (fd, fad, is); None if skipped.
        per_file: Value per stem (empty for set-level metrics).
        extra: Additional fields written next to ``mean`` (e.g. ``std`` for IS, ``skipped`` reason).
    """

    mean: float | None
    per_file: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_values(cls, per_file: dict[str, float]) -> MetricResult:
        vals = [v for v in per_file.values()]
        return cls(
            mean=float(sum(vals) / len(vals)) if vals else None, per_file=dict(sorted(per_file.items()))
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": _clean(self.mean),
            "per_file": {k: _clean(v) for k, v in self.per_file.items()},
            **self.extra,
        }


def _clean(x: float | None) -> float | None:
    """JSON has no NaN / inf: they become null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class EvalReport:
    """Result of :func:`foleykit.evaluation.evaluate`.

    Attributes:
        metrics: Reported name (``av_align``, ``onset_acc``, ``fd``...) -> :class:`MetricResult`.
        config: What was measured and how (inputs, sample rates, clip lengths, crops, variants, embedder).
    """

    metrics: dict[str, MetricResult]
    config: dict[str, Any]

    def __getitem__(self, name: str) -> float | None:
        """The mean of metric ``name``."""
        return self.metrics[name].mean

    def means(self) -> dict[str, float | None]:
        """``{name: mean}`` (handy for training logs)."""
        return {k: v.mean for k, v in self.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": {k: v.to_dict() for k, v in self.metrics.items()}, "config": self.config}

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON atomically (a failure leaves no partial file)."""
        from foleykit.utils.io import atomic_write_json

        return atomic_write_json(path, self.to_dict())

    def to_markdown(self) -> str:
        """A Markdown table: metric, value, files, protocol."""
        notes = self.config.get("notes", {})
        lines = ["| metric | value | files | protocol |", "|---|---|---|---|"]
        for name, res in self.metrics.items():
            base = "rms_acc" if name.startswith("rms_acc") else name
            arrow = {1: " ↑", -1: " ↓"}.get(DIRECTION.get(base, 0), "")
            if res.mean is None:
                value = "n/a"
            else:
                value = f"{res.mean:.4f}" + (f" ± {res.extra['std']:.4f}" if "std" in res.extra else "")
            files = (
                str(len(res.per_file))
                if res.per_file
                else str(self.config.get("inputs", {}).get("num_items", ""))
            )
            note = str(res.extra.get("skipped") or notes.get(name, ""))
            if res.extra.get("warning"):
                note = f"{note} ({res.extra['warning']})" if note else str(res.extra["warning"])
            note = note.replace("|", "\\|")
            lines.append(f"| {name}{arrow} | {value} | {files} | {note} |")
        return "\n".join(lines) + "\n"


@dataclass
class PairedDifference:
    """A paired comparison of two systems on the same clips (:func:`paired_difference`).

    Attributes:
        metric: Metric name.
        diff: ``mean(a) - mean(b)`` over the shared clips.
        low, high: Percentile bootstrap confidence interval of ``diff``.
        better: Share of clips where ``a`` is better than ``b`` (by the metric's direction; ties count half).
        num_clips: Clips compared.
        direction: +1 if higher is better, -1 if lower is better.
    """

    metric: str
    diff: float
    low: float
    high: float
    better: float
    num_clips: int
    direction: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0 (in either direction)."""
        return self.low > 0 or self.high < 0

    @property
    def a_better(self) -> bool:
        """``a`` is better than ``b`` and the interval excludes 0."""
        return self.significant and self.diff * self.direction > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "diff": self.diff,
            "ci": [self.low, self.high],
            "better": self.better,
            "num_clips": self.num_clips,
            "direction": self.direction,
            "a_better": self.a_better,
        }


def paired_difference(
    a: MetricResult | dict[str, float],
    b: MetricResult | dict[str, float],
    metric: str,
    *,
    num_resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Paired bootstrap of ``mean(a) - mean(b)`` over the clips both systems were scored on.

    The clips are resampled with replacement ``num_resamples`` times (the same draw for both systems, so the
    clip-to-clip spread that both share cancels); the interval is the percentile interval of the resampled
    mean differences. Clips whose value is missing or not finite in either system are left out.

    Args:
        a, b: Per-file values (``MetricResult`` or ``{stem: value}``) of the two systems.
        metric: Name (its direction comes from ``DIRECTION``).
        num_resamples: Bootstrap resamples.
        confidence: Interval coverage in (0, 1).
        seed: Random seed of the resampling (the result is reproducible).

    Raises:
        ConfigError: no shared clip, unknown direction, bad ``confidence`` / ``num_resamples``.
    """
    import numpy as np

    from foleykit.errors import ConfigError

    pa = a.per_file if isinstance(a, MetricResult) else a
    pb = b.per_file if isinstance(b, MetricResult) else b
    keys = sorted(k for k in set(pa) & set(pb) if _clean(pa[k]) is not None and _clean(pb[k]) is not None)
    if not keys:
        raise ConfigError(f"{metric}: the two systems share no scored clip")
    direction = DIRECTION.get("rms_acc" if metric.startswith("rms_acc") else metric)
    if direction is None:
        raise ConfigError(f"{metric}: unknown metric direction; known: {', '.join(sorted(DIRECTION))}")
    if not 0 < confidence < 1 or num_resamples < 1:
        raise ConfigError(
            f"need 0 < confidence < 1 and num_resamples >= 1, got {confidence}, {num_resamples}"
        )
    d = np.array([float(pa[k]) - float(pb[k]) for k in keys])
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(num_resamples, len(d)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    signed = d * direction
    better = float(((signed > 0).sum() + 0.5 * (signed == 0).sum()) / len(d))
    return PairedDifference(metric, float(d.mean()), float(low), float(high), better, len(d), direction)
