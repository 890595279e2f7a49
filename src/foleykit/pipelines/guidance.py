"""Condition assembly and classifier-free guidance.

- :class:`ConditionAssembler` projects each condition's tokens to the cross-attention size and concatenates
  them as c = [text; video; audio] (STA-V2A eq. 5). A condition that is dropped (training-time dropout, or the
  unconditional branch of guidance) or absent is replaced by its null: a learned embedding, a zero
  embedding (VTA-LDM sec. 3.3), or the text encoder's own embedding of the empty prompt ``""``
  (``empty_prompt``: AudioLDM / ReWaS, as diffusers' ``AudioLDMPipeline`` does) — chosen per condition by the
  recipe. It also produces the pooled FiLM embedding of AudioLDM-style UNets (``global_from="text"``).
- :func:`combine` is classifier-free guidance (Ho & Salimans 2022) in the standard form
  ``eps_u + s (eps_c - eps_u)``; :func:`effective_scale` converts AudioLDM / ReWaS's ``(1 + w)`` form.
  Guiding "per condition" (STA-V2A eq. 7: text is guided while the video stays) is choosing which conditions
  the unconditional branch drops (``guide_on``); a negative prompt replaces the null text of that branch.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from foleykit.errors import ConfigError

#: Order of the token blocks in c (STA-V2A eq. 5, extended with the reference audio).
CONDITION_ORDER = ("text", "video", "audio")
NULL_KINDS = ("learned", "zero", "empty_prompt")
GUIDANCE_FORMS = ("standard", "one_plus_w")

TokenPart = tuple[torch.Tensor, torch.Tensor | None]  # (Tensor[B x L x D], BoolTensor[B x L] | None)


def effective_scale(scale: float, form: str = "standard") -> float:
    """Guidance scale in the standard form ``eps_u + s (eps_c - eps_u)``.

    ``form="one_plus_w"``: AudioLDM / ReWaS write ``(1 + w) eps_c - w eps_u``, i.e. s = 1 + w.
    """
    if form not in GUIDANCE_FORMS:
        raise ConfigError(f"guidance form must be one of {', '.join(GUIDANCE_FORMS)}, got {form!r}")
    return float(scale) + 1.0 if form == "one_plus_w" else float(scale)


def combine(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``uncond + scale * (cond - uncond)`` (scale 1 -> exactly ``cond``)."""
    if scale == 1.0:
        return cond
    return uncond + scale * (cond - uncond)


class ConditionAssembler(ModelMixin, ConfigMixin):
    """Projections, null embeddings and concatenation of the conditions.

    Args:
        cross_dim: Token size of the denoiser's cross-attention (None: the denoiser takes no tokens).
        sources: ``{name: {"dim": int, "null": "learned" | "zero" | "empty_prompt", "project": bool}}`` for
            the token conditions, in c order ("text", "video", "audio"). ``project=False`` means the tokens
            already have ``cross_dim`` (e.g. pooled video tokens from ``AttentivePooling(out_dim=cross_dim)``).
            ``empty_prompt``: the null is the encoder's own embedding of ``""`` (``null_length`` tokens of size
            ``dim``, a fixed buffer filled by :meth:`set_prompt_null`); it replaces the raw tokens *before*
            the projection and the FiLM pooling, so a dropped / absent prompt is exactly the prompt ``""``.
        num_null_tokens: Length of each learned null sequence.
        global_from: Source whose masked token mean feeds the FiLM embedding (AudioLDM ``class_labels``),
            or None.
        global_dim: Size of that embedding (``projection_class_embeddings_input_dim``).
        global_null: "learned" or "zero" null for the FiLM embedding.

    Shapes:
        ``assemble({name: (Tensor[B x L x D_name], mask) or None}, drop={name: BoolTensor[B]}) ->
        (tokens Tensor[B x L_total x cross_dim] or None, mask BoolTensor[B x L_total] or None,
        global Tensor[B x global_dim] or None)``.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        *,
        cross_dim: int | None,
        sources: dict[str, dict[str, Any]],
        num_null_tokens: int = 1,
        global_from: str | None = None,
        global_dim: int | None = None,
        global_null: str = "learned",
    ) -> None:
        super().__init__()
        unknown = set(sources) - set(CONDITION_ORDER)
        if unknown:
            raise ConfigError(
                f"unknown condition sources {sorted(unknown)}; valid: {', '.join(CONDITION_ORDER)}"
            )
        if cross_dim is None and any(s.get("tokens", True) for s in sources.values()) and global_from is None:
            raise ConfigError("ConditionAssembler: cross_dim is None but token sources are configured")
        self.proj = nn.ModuleDict()
        self.null = nn.ParameterDict()
        for name in CONDITION_ORDER:
            if name not in sources:
                continue
            s = sources[name]
            null = s.get("null", "learned")
            if null not in NULL_KINDS:
                raise ConfigError(
                    f"condition {name!r}: null must be one of {', '.join(NULL_KINDS)}, got {null!r}"
                )
            if null == "empty_prompt":
                length = int(s.get("null_length", 1))
                self.register_buffer(f"prompt_null_{name}", torch.zeros(length, int(s["dim"])))
            if cross_dim is not None and s.get("tokens", True):
                dim = int(s["dim"])
                if s.get("project", dim != cross_dim):
                    self.proj[name] = nn.Linear(dim, cross_dim)
                elif dim != cross_dim:
                    raise ConfigError(
                        f"condition {name!r} has dim {dim} != cross_dim {cross_dim} and project=False"
                    )
                if null == "learned":
                    self.null[name] = nn.Parameter(torch.randn(num_null_tokens, cross_dim) * 0.02)
        self.global_proj: nn.Module | None = None
        self.register_parameter("global_null_embedding", None)
        if global_from is not None:
            if global_from not in sources or global_dim is None:
                raise ConfigError("global_from must name a configured source and global_dim must be set")
            gdim_in = int(sources[global_from]["dim"])
            self.global_proj = nn.Identity() if gdim_in == global_dim else nn.Linear(gdim_in, global_dim)
            if global_null == "learned" and sources[global_from].get("null") != "empty_prompt":
                self.global_null_embedding = nn.Parameter(torch.randn(global_dim) * 0.02)

    @property
    def sources(self) -> list[str]:
        return [n for n in CONDITION_ORDER if n in self.config.sources]

    def prompt_null(self, name: str) -> torch.Tensor | None:
        """The stored embedding of ``""`` (``Tensor[L x dim]``) of an ``empty_prompt`` source, else None."""
        return getattr(self, f"prompt_null_{name}", None)

    @torch.no_grad()
    def set_prompt_null(self, name: str, tokens: torch.Tensor) -> None:
        """Store the encoder's embedding of the empty prompt ``""`` (``Tensor[L x dim]``) as the null of
        ``name`` (an ``empty_prompt`` source whose ``null_length`` is L)."""
        buf = self.prompt_null(name)
        if buf is None:
            raise ConfigError(f"condition {name!r} has no empty_prompt null")
        if tuple(tokens.shape) != tuple(buf.shape):
            raise ConfigError(
                f"condition {name!r}: the empty-prompt embedding has shape {tuple(tokens.shape)}, the model "
                f"expects {tuple(buf.shape)} (null_length x dim)"
            )
        buf.copy_(tokens.detach().to(device=buf.device, dtype=buf.dtype))

    def _with_prompt_null(
        self, name: str, part: TokenPart | None, rows: torch.Tensor, batch: int, device
    ) -> TokenPart:
        """Raw tokens of an ``empty_prompt`` source with absent / dropped rows replaced by the ``""`` tokens."""
        null = self.prompt_null(name)
        length = null.shape[0]
        if part is None:
            tokens = null[None].expand(batch, -1, -1).to(device)
            return tokens, torch.ones(batch, length, dtype=torch.bool, device=device)
        tokens, mask = part
        if mask is None:
            mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        if not rows.any():
            return tokens, mask
        n = max(tokens.shape[1], length)
        t = nn.functional.pad(tokens, (0, 0, 0, n - tokens.shape[1]))
        m = nn.functional.pad(mask.to(tokens.device), (0, n - mask.shape[1]), value=False)
        nt = nn.functional.pad(null.to(tokens), (0, 0, 0, n - length))[None].expand_as(t)
        nm = (torch.arange(n, device=tokens.device) < length)[None].expand_as(m)
        r = rows.to(tokens.device)
        return torch.where(r[:, None, None], nt, t), torch.where(r[:, None], nm, m)

    def _null_block(
        self, name: str, batch: int, length: int, device, dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Null tokens for ``batch`` rows, padded to ``length`` (learned: mask True on the null tokens)."""
        d = self.config.cross_dim
        tokens = torch.zeros(batch, length, d, device=device, dtype=dtype)
        mask = torch.zeros(batch, length, dtype=torch.bool, device=device)
        if name in self.null:
            n = self.null[name].shape[0]
            tokens[:, :n] = self.null[name].to(dtype)
            mask[:, :n] = True
        else:  # zero embedding (VTA-LDM): zeros that are attended to
            mask[:] = True
        return tokens, mask

    def _project(self, name: str, part: TokenPart) -> TokenPart:
        tokens, mask = part
        if tokens.ndim != 3:
            raise ConfigError(f"condition {name!r}: tokens must be B x L x D, got {tuple(tokens.shape)}")
        if name in self.proj:
            tokens = self.proj[name](tokens.to(self.proj[name].weight.dtype))
        if mask is None:
            mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return tokens, mask.to(tokens.device)

    def assemble(
        self,
        parts: dict[str, TokenPart | None],
        *,
        batch_size: int,
        drop: dict[str, torch.Tensor | bool] | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Concatenate the conditions, replacing absent / dropped ones by their null (see class docstring).

        Args:
            parts: Tokens per source (None = absent for the whole batch). Unknown names are an error.
            batch_size: B.
            drop: Per-source bool (whole batch) or ``BoolTensor[B]`` (per row) of rows to replace by null.
            device: Device of the outputs when no part is given.
        """
        drop = drop or {}
        unknown = (set(parts) | set(drop)) - set(self.config.sources)
        if unknown:
            raise ConfigError(
                f"conditions {sorted(unknown)} are not used by this model (it uses {self.sources})"
            )
        dtype = next(iter(self.parameters()), torch.zeros(())).dtype
        blocks_t, blocks_m = [], []
        global_embed = None
        for name in self.sources:
            part = parts.get(name)
            rows = drop.get(name, False)
            rows = (
                torch.full((batch_size,), bool(rows)) if isinstance(rows, bool) else rows.to(torch.bool).cpu()
            )
            if part is not None and part[0].shape[0] != batch_size:
                raise ConfigError(f"condition {name!r} has batch {part[0].shape[0]}, expected {batch_size}")
            if self.prompt_null(name) is not None:  # the null is the prompt "": substitute the raw tokens
                part = self._with_prompt_null(name, part, rows, batch_size, device)
                rows = torch.zeros_like(rows)
            if name == self.config.global_from:
                global_embed = self._global(part, rows, batch_size, device, dtype)
            if self.config.cross_dim is None or not self.config.sources[name].get("tokens", True):
                continue
            if part is None:
                n = max(1, self.null[name].shape[0] if name in self.null else 1)
                t, m = self._null_block(name, batch_size, n, device, dtype)
            else:
                t, m = self._project(name, part)
                if rows.any():
                    length = max(t.shape[1], self.null[name].shape[0] if name in self.null else 1)
                    t = nn.functional.pad(t, (0, 0, 0, length - t.shape[1]))
                    m = nn.functional.pad(m, (0, length - m.shape[1]), value=False)
                    nt, nm = self._null_block(name, batch_size, length, t.device, t.dtype)
                    r = rows.to(t.device)
                    t = torch.where(r[:, None, None], nt, t)
                    m = torch.where(r[:, None], nm, m)
            blocks_t.append(t)
            blocks_m.append(m)
        if not blocks_t:
            return None, None, global_embed
        return torch.cat(blocks_t, dim=1), torch.cat(blocks_m, dim=1), global_embed

    def _global(self, part: TokenPart | None, rows: torch.Tensor, batch: int, device, dtype) -> torch.Tensor:
        gdim = self.config.global_dim
        null = (
            self.global_null_embedding if self.global_null_embedding is not None else torch.zeros(gdim)
        ).to(device=device, dtype=dtype)
        if part is None:
            return null.expand(batch, -1).clone()
        tokens, mask = part
        m = mask if mask is not None else torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        m = m[..., None].to(tokens.dtype)
        pooled = (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)
        g = self.global_proj(pooled.to(dtype))
        r = rows.to(g.device)
        return torch.where(r[:, None], null.to(g.device).expand_as(g), g)
