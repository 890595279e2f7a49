"""foleykit as a product: what ``foleykit generate``, ``foleykit controls predict`` and ``foleykit app`` run.

- :mod:`~foleykit.product.generate` — :class:`GenerateOptions`, :func:`generate_audio` (any length,
  windows + crossfades, user / recorded / predicted timing, regeneration of one region);
- :mod:`~foleykit.product.outputs` — :func:`write_outputs` (video or audio + sidecar JSON + timing CSV/PNG,
  all or nothing);
- :mod:`~foleykit.product.windows` — scene cuts, window plans, equal-power crossfades;
- :mod:`~foleykit.product.inputs` — reference sounds, control files, recorded and predicted timing;
- :mod:`~foleykit.product.batch` — folders / CSV lists, sharding, summaries;
- :mod:`~foleykit.product.runtime` — device choice, the model cache, torchrun/accelerate ranks.

See docs/product.md.
"""

from foleykit.product.generate import GenerateOptions, GenerationResult, generate_audio
from foleykit.product.outputs import write_outputs

__all__ = ["GenerateOptions", "GenerationResult", "generate_audio", "write_outputs"]
