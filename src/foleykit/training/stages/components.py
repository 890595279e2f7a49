"""How stages reach the pipeline's components and the run's data splits."""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from foleykit.errors import ConfigError, DataError
from foleykit.training.stages.base import StageContext

#: Components of the base denoiser (what ``train.unfreeze_base`` adds to an adapter stage).
BASE_COMPONENTS = ("unet", "transformer", "projection_model")


def build_component(ctx: StageContext, name: str) -> nn.Module:
    """The pipeline component ``name`` (model-folder name: ``vae``, ``vocoder``, ``unet``...).

    Raises:
        ConfigError: no pipeline is attached, or it has no such component.
    """
    if ctx.pipeline is None:
        raise ConfigError(
            f"stage {ctx.stage_dir.name!r} needs component {name!r} but no pipeline is attached"
        )
    comps = ctx.pipeline.components()
    if name not in comps:
        raise ConfigError(f"the pipeline has no component {name!r}; it has {sorted(comps)}")
    return comps[name]


def stage_components(
    ctx: StageContext, *, extra: tuple[str, ...] = ()
) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
    """(trainable, frozen) pipeline components of a stage.

    The trainable ones are the stage table's ``trainable`` list (the recipe's ``training.stages.<name>.trainable``,
    or the family default), plus ``extra`` names the pipeline has (e.g. the base denoiser for
    ``unfreeze_base``); every other component is frozen.

    Raises:
        ConfigError: no pipeline, an empty list, or names the pipeline does not have.
    """
    if ctx.pipeline is None:
        raise ConfigError(f"stage {ctx.stage_dir.name!r} needs a pipeline")
    comps = ctx.pipeline.components()
    names = list(ctx.cfg.get("trainable") or [])
    if not names:
        raise ConfigError(f"stage {ctx.stage_dir.name!r} trains nothing: set its 'trainable' component list")
    unknown = [n for n in names if n not in comps]
    if unknown:
        raise ConfigError(
            f"stage {ctx.stage_dir.name!r}: unknown components {unknown}; the pipeline has {sorted(comps)}"
        )
    names += [n for n in extra if n in comps and n not in names]
    return {n: comps[n] for n in names}, {n: m for n, m in comps.items() if n not in names}


def restrict_parameters(
    components: Mapping[str, nn.Module], patterns: Sequence[str], *, stage: str
) -> tuple[int, int]:
    """Freeze the trainable parameters of ``components`` whose ``<component>.<parameter>`` name matches none of
    ``patterns`` (shell-style globs, :func:`fnmatch.fnmatchcase`).

    Returns:
        (parameters that still train, parameters that trained before), counted in elements.

    Raises:
        ConfigError: a pattern matches no trainable parameter (a typo would otherwise train nothing it names).
    """
    used = dict.fromkeys(patterns, False)
    kept = before = 0
    for comp, module in components.items():
        for pname, p in module.named_parameters():
            if not p.requires_grad:
                continue
            before += p.numel()
            hits = [pat for pat in patterns if fnmatch.fnmatchcase(f"{comp}.{pname}", pat)]
            for pat in hits:
                used[pat] = True
            if hits:
                kept += p.numel()
            else:
                p.requires_grad_(False)
    unused = [pat for pat, hit in used.items() if not hit]
    if unused:
        raise ConfigError(
            f"stages.{stage}.trainable_params: {unused} match no trainable parameter (names are "
            "'<component>.<parameter>', e.g. 'transformer.transformer_blocks.*.attn2.*')"
        )
    return kept, before


def export_pipeline(ctx: StageContext, folder: Path) -> dict[str, Path]:
    """Save the whole pipeline (trained components included) as a model folder; component -> sub-folder."""
    with quiet_libraries():
        ctx.pipeline.save_pretrained(folder)
    return {name: folder / name for name in ctx.pipeline.components() if (folder / name).is_dir()}


def dataset_split(ctx: StageContext, split: str, *, required: bool = True) -> Any:
    """The run's dataset for ``split`` (``train`` / ``validation`` / ``test``).

    Raises:
        DataError: the split is required but missing.
    """
    ds = ctx.data.get(split)
    if ds is None and required:
        raise DataError(
            f"no {split!r} data for stage {ctx.stage_dir.name!r}: give --data DIR (a dataset folder) "
            "or let foleykit make synthetic data (omit --data)"
        )
    return ds


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence transformers / diffusers progress bars and info warnings while saving / loading folders."""
    import logging as _logging

    loggers = [_logging.getLogger(n) for n in ("transformers", "diffusers")]
    levels = [lg.level for lg in loggers]
    toggles = []
    try:
        from transformers.utils import logging as tlog

        toggles.append((tlog.enable_progress_bar, tlog.is_progress_bar_enabled()))
        tlog.disable_progress_bar()
    except ImportError:  # pragma: no cover - optional
        pass
    try:
        from diffusers.utils import logging as dlog

        toggles.append((dlog.enable_progress_bar, dlog.is_progress_bar_enabled()))
        dlog.disable_progress_bar()
    except ImportError:  # pragma: no cover - optional
        pass
    for lg in loggers:
        lg.setLevel(_logging.ERROR)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)
        for enable, was in toggles:
            if was:
                enable()
