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
    "av_align": 1, "aa_align": 1, "onset_acc": 1, "onset_ap": 1, "e_l1": -1, "rms_acc": 1, "energy_mae": -1,
    "fd": -1, "fad": -1, "kl": -1, "is": 1, "clap": 1,
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
        return cls(mean=float(sum(vals) / len(vals)) if vals else None, per_file=dict(sorted(per_file.items())))

    def to_dict(self) -> dict[str, Any]:
        return {"mean": _clean(self.mean), "per_file": {k: _clean(v) for k, v in self.per_file.items()}, **self.extra}


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
            files = str(len(res.per_file)) if res.per_file else str(self.config.get("inputs", {}).get("num_items", ""))
            note = str(res.extra.get("skipped") or notes.get(name, "")).replace("|", "\\|")
            lines.append(f"| {name}{arrow} | {value} | {files} | {note} |")
        return "\n".join(lines) + "\n"
