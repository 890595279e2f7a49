"""Metric families, one per module (each module docstring names its protocol, constants and reference).

- :mod:`.av_align` — AV-Align (Yariv et al.; TempoTokens HEAD "reference" and "legacy" variants)
- :mod:`.aa_align` — AA-Align (STA-V2A; "reference" many-to-one and "one-to-one")
- :mod:`.onset` — onset accuracy / AP (CondFoleyGen Greatest Hits protocol; "reference" and "strict")
- :mod:`.envelope` — E-L1 (T-Foley) and RMS class accuracy acc@k / tolerance (Stable-V2A)
- :mod:`.energy` — energy MAE (ReWaS)
- :mod:`.distribution` — FD, FAD, KL, IS (audioldm_eval conventions)
- :mod:`.clap_score` — CLAP text-audio / audio-audio cosine

The modules are the namespaces: ``metrics.av_align.av_align(...)``, ``metrics.onset.onset_metrics(...)``.
"""

from foleykit.evaluation.metrics import (
    aa_align,
    av_align,
    clap_score,
    distribution,
    energy,
    envelope,
    onset,
)

__all__ = ["aa_align", "av_align", "clap_score", "distribution", "energy", "envelope", "onset"]
