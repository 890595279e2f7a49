"""foleykit: give silent video its sound.

Timing-controlled video-to-audio generation (STA-V2A, ReWaS, VTA-LDM, Stable-V2A, Rhythmic Foley),
with training for every stage and the evaluation metrics the papers report.

Heavy submodules are imported lazily: ``import foleykit`` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

from foleykit.config import SequenceConfig
from foleykit.errors import FoleykitError

__all__ = ["FoleykitError", "SequenceConfig", "__version__"]
