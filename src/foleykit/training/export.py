"""Model folders from finished stages: ``foleykit train merge``, ``foleykit train cache`` and ``foleykit train
ship``.

Stages that train independently (one process each, ``--stage``) each export the whole pipeline with their
own components trained; :func:`merge` combines them into one folder (and, given the store, sets the VAE's
latent ``scaling_factor``); :func:`store_latent_scale` sets that factor in a trained folder in place (``train
cache``); :func:`ship` writes the shipped fp16 folder with its decoding defaults.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from foleykit.errors import ConfigError
from foleykit.utils.io import check_replaceable

#: Components each independently trained stage contributes to a merged model (stage folder -> components).
MERGED = {"autoencoder": ("vae",), "vocoder": ("vocoder",)}


def load(folder: str | os.PathLike) -> Any:
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.training.stages.components import quiet_libraries

    with quiet_libraries():
        return VideoToAudioPipeline.from_pretrained(folder)


def save(pipe: Any, out: str | os.PathLike, dtype: Any = None, files: dict[str, str] | None = None) -> Path:
    """Write the model folder (``save_pipeline``, as ``pipe.save_pretrained``) with library chatter silenced;
    ``files`` (e.g. a model card) are written into it in the same atomic step."""
    from foleykit.pipelines.components import save_pipeline
    from foleykit.training.stages.components import quiet_libraries

    with quiet_libraries():
        return Path(save_pipeline(pipe, Path(out), dtype=dtype, files=files))


def set_latent_scale(pipe: Any, store: str | os.PathLike) -> float:
    """Set the VAE's ``scaling_factor`` from the store's training latents (``store.latent_scale``)."""
    from foleykit.training.store import latent_scale

    s = latent_scale(pipe, store)
    pipe.codec.vae.register_to_config(scaling_factor=s)
    return s


#: Weight dtypes :func:`ship` writes. A folder saved in one of them is final (:func:`store_latent_scale`).
SHIPPED_DTYPES = ("float16", "bfloat16")


def store_latent_scale(model: str | os.PathLike, pipe: Any, store: str | os.PathLike) -> str:
    """Set the latent ``scaling_factor`` of ``pipe`` (loaded from ``model``) from the store's training clips,
    in the folder too, and return the line to print (``foleykit train cache``).

    Only the folder's ``vae/config.json`` is rewritten (an atomic replace): the weights, their dtype, a model
    card and every other file stay as they are. Only a training folder is changed (one foleykit saved in
    float32). A shipped folder (fp16 / bf16, written by :func:`ship`; the packaged default is one) or a
    published layout is final: its diffusion model was trained on latents of its own scale, so the folder and
    ``pipe`` keep that scale, and the line says what the store's clips measure instead.
    """
    from foleykit.paths import resolve_model
    from foleykit.training.store import latent_scale
    from foleykit.utils.io import atomic_write_json

    folder = resolve_model(model)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    meta = index.get("_foleykit") if isinstance(index.get("_foleykit"), dict) else None
    old, measured = float(pipe.codec.scaling_factor), latent_scale(pipe, store)
    if meta is None or meta.get("dtype", "float32") in SHIPPED_DTYPES:
        kind = "a published model" if meta is None else f"a shipped model ({meta['dtype']})"
        return (
            f"[cache] {folder} is {kind}: its diffusion model was trained on latents of its own scale, so its "
            f"scaling_factor {old:.4f} is kept and nothing in it is changed (the store's clips measure "
            f"{measured:.4f})"
        )
    path = folder / "vae" / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["scaling_factor"] = measured
    atomic_write_json(path, config)
    pipe.codec.vae.register_to_config(scaling_factor=measured)
    return f"[cache] VAE scaling_factor = {measured:.4f} (was {old:.4f}; written to {path})"


def merge(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    base: str = "predictor",
    store: str | os.PathLike | None = None,
    say: Any = None,
) -> Path:
    """One model folder from stages trained independently in ``run``: the ``base`` stage's export (default
    the predictor: RMS-Mapper + trained video encoder) with the autoencoder stage's VAE and, when that stage
    has finished, the vocoder stage's HiFi-GAN (else :func:`ship` can swap it in later). With ``store``, the
    VAE's latent ``scaling_factor`` is set from the store's training clips.

    Raises:
        ConfigError: the base stage or the autoencoder stage has no exported model; ``out`` is a file or a
            folder other than a model folder (it would be replaced as a whole).
    """
    run = Path(run)
    say = say or (lambda s: None)
    check_replaceable(out, "model_index.json", "a model folder")
    if not (run / base / "model").is_dir():
        raise ConfigError(f"{run / base / 'model'} does not exist: train the {base} stage first")
    pipe = load(run / base / "model")
    for stage, names in MERGED.items():
        folder = run / stage / "model"
        if not folder.is_dir():
            if stage == "autoencoder":
                raise ConfigError(f"{folder} does not exist: train the autoencoder stage first")
            say(f"[merge] no {stage} stage in {run}: keeping the {base} stage's {', '.join(names)}")
            continue
        comps = load(folder).components()
        for name in names:
            pipe.components()[name].load_state_dict(comps[name].state_dict())
        say(f"[merge] {', '.join(names)} from {folder}")
    if store is not None:
        say(f"[merge] VAE scaling_factor = {set_latent_scale(pipe, store):.4f}")
    return save(pipe, out)


#: ``ship(vocoder=GRIFFIN_LIM)``: the weight-free Griffin-Lim waveform stage instead of a trained vocoder.
GRIFFIN_LIM = "griffin-lim"


def ship(
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    card: str | os.PathLike | None = None,
    vocoder: str | os.PathLike | None = None,
    adapter_weight: float | None = None,
    silence_threshold: float | None = None,
    decoding: str | None = None,
    expansion: float | None = None,
    follow_envelope: float | None = None,
) -> Path:
    """Write the shipped folder: the model in fp16 safetensors (+ ``MODEL_CARD.md`` when given).

    Args:
        model: The trained model folder.
        out: The shipped folder.
        card: A model card copied to ``MODEL_CARD.md``.
        vocoder: A model folder whose vocoder (HiFi-GAN or iSTFT) replaces the model's (the vocoder trains
            independently), or
            :data:`GRIFFIN_LIM`: the weight-free Griffin-Lim inverse of the mel (``GriffinLimVocoder``) in its
            place, e.g. to hear a model without its trained vocoder (``benchmarks/eval_resynthesis.py
            --griffin-lim`` compares the two on recordings).
        adapter_weight: The default weight of every control adapter (chosen on the validation split).
        silence_threshold: The RMS-Mapper's silence threshold (``RMSMapper``; chosen on the validation split).
        decoding: The RMS-Mapper's decoding rule (``argmax``, ``expected``, ``median``; chosen likewise).
        expansion: The RMS-Mapper's dynamic-range expansion (``RMSMapper.expansion``; chosen likewise).
        follow_envelope: The default strength of the envelope-following gain stage (``pipe.defaults``;
            ``VideoToAudioPipeline.__call__(follow_envelope=)``; chosen likewise).

    Raises:
        ConfigError: a negative adapter weight, a silence threshold out of (0, 1), an unknown decoding rule,
            both a threshold and a rule other than argmax, an expansion out of [1, 10], or any of these for a
            model without an RMS-Mapper; a follow strength out of [0, 1] or for a model without an RMS adapter;
            ``out`` is a file or a folder other than a model folder (it would be replaced as a whole); a
            ``vocoder`` folder, or a model, without a vocoder (a waveform codec).
    """
    import torch

    if adapter_weight is not None and not adapter_weight >= 0:
        raise ConfigError(f"the adapter weight must be >= 0, got {adapter_weight}")
    if follow_envelope is not None and not 0.0 <= follow_envelope <= 1.0:
        raise ConfigError(f"the envelope-follow strength must be in [0, 1], got {follow_envelope}")
    check_replaceable(out, "model_index.json", "a model folder")
    card_text = None
    if card is not None:  # read first: the card may lie in the folder being replaced (re-shipping in place)
        try:
            card_text = Path(card).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"--card {card}: cannot read it ({type(err).__name__})") from None
    pipe = load(model)
    if follow_envelope is not None:
        if not any(a.control_kind == "rms" for a in pipe.adapters.values()):
            raise ConfigError("--follow-envelope needs a model with an RMS timing adapter")
        pipe.defaults["follow_envelope"] = float(follow_envelope)
    if vocoder is not None and str(vocoder) == GRIFFIN_LIM:
        from foleykit.models.vocoder import GriffinLimVocoder

        if getattr(pipe.codec, "vocoder", None) is None:
            raise ConfigError("--vocoder griffin-lim needs a mel codec (a model with a vocoder)")
        pipe.codec.vocoder = GriffinLimVocoder(seq=pipe.seq)
    elif vocoder is not None:
        donor = getattr(load(vocoder).codec, "vocoder", None)
        if donor is None or getattr(pipe.codec, "vocoder", None) is None:
            raise ConfigError("--vocoder DIR needs two mel codecs (models with a vocoder)")
        pipe.codec.vocoder = donor  # of any kind and size (an iSTFT vocoder for a HiFi-GAN); it saves as such
    if adapter_weight is not None:
        for a in pipe.adapters.values():
            a.weight = float(adapter_weight)
    rule: dict[str, Any] = {}
    if silence_threshold is not None:
        rule["silence_threshold"] = float(silence_threshold)
    if decoding is not None:
        rule["decoding"] = decoding
    if expansion is not None:
        rule["expansion"] = float(expansion)
    if rule:
        if "rms" not in pipe.predictors:
            raise ConfigError(
                "--silence-threshold / --decoding / --expansion need a model with an RMS-Mapper"
            )
        mapper = pipe.predictors["rms"]
        mapper.silence_threshold = None
        mapper.decoding = rule.get("decoding", "argmax")  # each setter checks its value
        mapper.silence_threshold = rule.get("silence_threshold")
        mapper.expansion = rule.get("expansion", 1.0)
        spec = pipe.specs["predictor_rms"]
        kwargs = {
            k: v
            for k, v in spec.get("kwargs", {}).items()
            if k not in ("silence_threshold", "decoding", "expansion")
        }
        pipe.specs["predictor_rms"] = {**spec, "kwargs": {**kwargs, **rule}}
    # the card is written with the weights, in one atomic step
    return save(pipe, out, torch.float16, files=None if card_text is None else {"MODEL_CARD.md": card_text})


def folder_size(folder: str | os.PathLike) -> int:
    """Bytes of every file under ``folder``."""
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())
