"""Building modules without allocating their weights (the meta device)."""

from __future__ import annotations

import contextlib
from typing import Any


def empty_weights(enabled: bool = True) -> Any:
    """A context in which new modules get meta-device parameters (``accelerate.init_empty_weights``): no
    memory, for parameter counts and planning; ``enabled=False`` gives a no-op context, so builders can take a
    ``meta`` flag and write ``with empty_weights(meta): ...``."""
    if not enabled:
        return contextlib.nullcontext()
    from accelerate import init_empty_weights

    return init_empty_weights()
