"""Evaluation: every metric the seed papers report, matching the published reference code.

``evaluate(generated, reference=None, videos=None, ...)`` runs the suite over folders (paired by stem) or
in-memory clips and returns an :class:`EvalReport` (JSON / Markdown). The metric families live in
:mod:`foleykit.evaluation.metrics` (array-level functions), the embedders in
:mod:`foleykit.evaluation.embedders`. See docs/evaluation.md.
"""

from foleykit import registry

registry.add_provider("embedder", "foleykit.evaluation.embedders")

from foleykit.evaluation.evaluate import METRICS, EvalConfig, evaluate, get_embedder
from foleykit.evaluation.report import EvalReport, MetricResult, PairedDifference, paired_difference

__all__ = [
    "METRICS",
    "EvalConfig",
    "EvalReport",
    "MetricResult",
    "PairedDifference",
    "evaluate",
    "get_embedder",
    "paired_difference",
]
