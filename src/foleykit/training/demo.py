"""Training driver of the shipped demonstrator (``foleykit-demo``) on a 2-core CPU.

``foleykit train`` decodes every clip window at every step; on a CPU that cost dominates. This driver runs
the same recipe stages (``foleykit.training.stages``, the same ``Trainer``: EMA, checkpoints, exact resume)
on an array store (``foleykit.training.arrays``) that holds every decoded input once, and lets independent
stages run as separate processes (one thread each)::

    python -m foleykit.training.demo prepare --data SYNTH --store STORE --workers 2
    python -m foleykit.training.demo tokens  --store STORE                          # aisfx reference tokens
    python -m foleykit.training.demo stage   --stage autoencoder --store STORE --run RUN [key=value ...]
    python -m foleykit.training.demo stage   --stage vocoder     --store STORE --run RUN [...]
    python -m foleykit.training.demo stage   --stage predictor   --store STORE --run RUN [...]
    python -m foleykit.training.demo merge   --run RUN --out RUN/base     # vae + vocoder + predictor, latent scale
    python -m foleykit.training.demo cache   --store STORE --model RUN/base     # latents + video features
    python -m foleykit.training.demo stage   --stage denoiser --store STORE --run RUN --init RUN/base [...]
    python -m foleykit.training.demo ship    --model RUN/denoiser/model --out src/foleykit/weights/foleykit-demo

Stage data: autoencoder = fixed-length crops of the soundtracks (``crop_seconds``); vocoder = whole
soundtracks (the stage takes random ``segment_seconds`` segments); predictor = aligned windows of frames,
cached motion statistics and RMS targets (only the frame CNN runs per step); diffusion stages = cached
latents, video features and reference-audio tokens (text tokens: the MiniLM encoder's own prompt cache).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import ConfigError

RECIPE = "foleykit_demo"
LEVEL = "full"
#: Stage name -> family (the recipe's stage names).
STAGES = {
    "autoencoder": "autoencoder",
    "vocoder": "vocoder",
    "predictor": "predictor",
    "denoiser": "prior",
    "adapter": "adapter",
}


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def set_threads(n: int) -> None:
    """Pin torch's intra-op threads (2 threads under contention are slower than 1 on a 2-core machine)."""
    import torch

    torch.set_num_threads(max(1, int(n)))


def stage_datasets(stage: str, store: str | os.PathLike, table: dict[str, Any]) -> dict[str, Any]:
    """The train / validation datasets of a stage, from the array store.

    ``table`` knobs read here: ``crop_seconds`` (autoencoder), ``+window_frames`` / ``+windows_per_clip``
    (predictor, defaults 100 / 2), ``+crops_per_clip`` (autoencoder, default 5).
    """
    from foleykit.training.arrays import AudioCrops, FrameWindows, StoreDataset

    fam = STAGES[stage]
    seed = int(table.get("data_seed", 0))
    if fam == "autoencoder":
        crop = float(table.get("crop_seconds") or 2.0)
        return {
            "train": AudioCrops(
                store,
                "train",
                crop_seconds=crop,
                crops_per_clip=int(table.get("crops_per_clip", 5)),
                seed=seed,
            ),
            "validation": AudioCrops(store, "validation", crop_seconds=crop, seed=seed + 1),
        }
    if fam == "vocoder":
        return {
            "train": StoreDataset(store, "train", fields=[]),
            "validation": StoreDataset(store, "validation", fields=[]),
        }
    if fam == "predictor":
        train = FrameWindows(
            store,
            "train",
            window_frames=int(table.get("window_frames", 100)),
            windows_per_clip=int(table.get("windows_per_clip", 2)),
            seed=seed,
        )
        val = FrameWindows(
            store, "validation", window_frames=10**6, categories=train.categories, seed=seed + 1
        )
        return {"train": train, "validation": val}
    fields = ["latents", "video_features", "audio_tokens", "audio_mask"]
    return {
        "train": StoreDataset(store, "train", fields=fields),
        "validation": StoreDataset(store, "validation", fields=fields),
    }


def run_stage(
    *,
    stage: str,
    store: str | os.PathLike,
    run: str | os.PathLike,
    init: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    recipe: str = RECIPE,
    level: str = LEVEL,
    progress: Any = None,
) -> Any:
    """Train one recipe stage on the array store.

    Args:
        stage: ``autoencoder``, ``vocoder``, ``predictor``, ``denoiser`` (prior; may also train the adapter) or
            ``adapter``.
        store: Array store folder.
        run: Run folder (the stage writes ``<run>/<stage>/``: checkpoints, metrics, ``model/``).
        init: Model folder to start from (default: the recipe's freshly initialised pipeline, seed 0).
        overrides: ``key=value`` run-config overrides (``foleykit train`` syntax; ``<stage>.knob=value``).
        resume: Continue the stage from its newest checkpoint.
        recipe, level: The recipe and size level (tests use ``level="debug"``).
        progress: One-line progress callback (default: print with a time stamp).

    Returns:
        The ``TrainResult``.
    """
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.training.config import dump_yaml
    from foleykit.training.run import _build, resolve_recipe_run, stage_class
    from foleykit.training.stages.base import StageContext
    from foleykit.training.stages.components import quiet_libraries
    from foleykit.training.trainer import Trainer

    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    run = Path(run)
    extra = [
        o
        for o in overrides
        if o.split("=", 1)[0].lstrip("+").split(".")[-1]
        in ("window_frames", "windows_per_clip", "crops_per_clip", "data_seed")
    ]
    rest = [o for o in overrides if o not in extra]
    cfg = resolve_recipe_run(recipe=recipe, level=level, stage=stage, output=run, overrides=rest)
    cfg["stages"] = {stage: cfg["stages"][stage]}
    cfg["data"]["path"] = str(Path(store).resolve())
    table = cfg["stages"][stage]
    for o in extra:
        k, v = o.split("=", 1)
        table[k.lstrip("+").split(".")[-1]] = int(v)
    if init is not None:
        with quiet_libraries():
            pipe = VideoToAudioPipeline.from_pretrained(init)
    else:
        pipe = _build(recipe, level, seed=int(cfg.get("seed", 0)))[1]
    run.mkdir(parents=True, exist_ok=True)
    (run / f"{stage}.config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
    ctx = StageContext(
        run_config=cfg,
        cfg=table,
        run_dir=run,
        stage_dir=run / stage,
        data=stage_datasets(stage, store, table),
        seq=pipe.seq,
        pipeline=pipe,
    )
    st = stage_class(table["family"])(ctx)
    say = progress or _say
    say(f"[{stage}] training {', '.join(table['trainable'])} for {table['max_steps']} steps")
    return Trainer(stage=st, progress=say).fit(resume=resume)


# --- preparation ------------------------------------------------------------------------------------------
def reference_tokens(
    store: str | os.PathLike, splits: Iterable[str] = ("train", "validation"), skip_existing: bool = True
) -> None:
    """aisfx tokens of every clip's own soundtrack (the reference-audio condition of the diffusion stages)."""
    import foleykit.encoders  # noqa: F401
    from foleykit import registry
    from foleykit.training.arrays import StoreDataset, add_array, read_index

    enc = registry.build("audio_encoder", "aisfx")
    for split in splits:
        ds = StoreDataset(store, split, fields=[])
        if skip_existing and all(
            (Path(store) / split / f"{n}.npy").is_file() for n in ("audio_tokens", "audio_mask")
        ):
            continue
        audio = ds.arrays()["audio"]
        sr = int(read_index(store)["sequence"]["sample_rate"])
        pairs = []
        for i in range(len(ds)):
            tok, mask = enc.encode([np.array(audio[i])], sr)
            pairs.append((tok[0].float().numpy(), mask[0].numpy()))
        add_array(store, split, "audio_tokens", lambda i: pairs[i][0], say=_say)
        add_array(store, split, "audio_mask", lambda i: pairs[i][1], dtype=np.bool_, say=_say)


def latent_scale(pipe: Any, store: str | os.PathLike, *, n: int = 96) -> float:
    """1 / std of the (unscaled) posterior-mode latents of ``n`` training clips: the VAE's ``scaling_factor``,
    so that the diffusion model sees unit-variance latents (LDM sec. 4.3)."""
    import torch

    from foleykit.training.arrays import StoreDataset

    audio = StoreDataset(store, "train", fields=[]).arrays()["audio"]
    idx = np.linspace(0, len(audio) - 1, min(n, len(audio))).astype(int)
    codec = pipe.codec
    old = codec.vae.config.scaling_factor
    codec.vae.register_to_config(scaling_factor=1.0)
    zs = []
    with torch.no_grad():
        for k in range(0, len(idx), 8):
            wav = torch.from_numpy(np.stack([np.asarray(audio[i]) for i in idx[k : k + 8]]))
            zs.append(codec.encode_audio(wav).float())
    codec.vae.register_to_config(scaling_factor=old)
    return float(1.0 / torch.cat(zs).std())


def merge(run: str | os.PathLike, out: str | os.PathLike) -> Path:
    """One model folder from the stages trained independently: the predictor stage's export (RMS-Mapper +
    frame CNN) with the autoencoder stage's VAE (its ``scaling_factor`` is set later by :func:`build_cache`)
    and, when that stage has finished, the vocoder stage's HiFi-GAN (else it is swapped in by :func:`ship`)."""
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.training.stages.components import quiet_libraries

    run = Path(run)
    with quiet_libraries():
        pipe = VideoToAudioPipeline.from_pretrained(run / "predictor" / "model")
        vae = VideoToAudioPipeline.from_pretrained(run / "autoencoder" / "model").codec.vae
        pipe.codec.vae.load_state_dict(vae.state_dict())
        if (run / "vocoder" / "model").is_dir():
            voc = VideoToAudioPipeline.from_pretrained(run / "vocoder" / "model").codec.vocoder
            pipe.codec.vocoder.load_state_dict(voc.state_dict())
    return _save(pipe, out)


def _save(pipe: Any, out: str | os.PathLike, dtype: Any = None) -> Path:
    from foleykit.training.stages.components import quiet_libraries

    with quiet_libraries():
        return pipe.save_pretrained(out, dtype=dtype)


def build_cache(
    store: str | os.PathLike,
    model: str | os.PathLike,
    *,
    splits: Iterable[str] = ("train", "validation"),
    scale: bool = True,
) -> None:
    """Cache the latents of the model's VAE and the features of its video encoder (motion statistics from the
    store + the trained frame CNN on the stored frames) for every clip. With ``scale``, the VAE's
    ``scaling_factor`` is first set from the training latents and the model folder re-saved."""
    import torch

    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.training.arrays import StoreDataset, add_array
    from foleykit.training.stages.components import quiet_libraries

    with quiet_libraries():
        pipe = VideoToAudioPipeline.from_pretrained(model)
    if scale:
        s = latent_scale(pipe, store)
        pipe.codec.vae.register_to_config(scaling_factor=s)
        _save(pipe, model)
        _say(f"[cache] VAE scaling_factor = {s:.4f} (saved in {model})")
    enc = pipe.video_encoder
    for split in splits:
        a = StoreDataset(store, split, fields=["motion", "frames"]).arrays()

        def latents(i: int) -> Any:
            with torch.no_grad():
                return (
                    pipe.codec.encode_audio(torch.from_numpy(np.array(a["audio"][i]))[None])[0]
                    .float()
                    .numpy()
                )

        def video(i: int) -> Any:
            with torch.no_grad():
                return (
                    enc.encode_cached(
                        torch.from_numpy(np.array(a["frames"][i]))[None],
                        {0: torch.from_numpy(np.array(a["motion"][i]))[None]},
                    )[0]
                    .float()
                    .numpy()
                )

        add_array(store, split, "latents", latents, say=_say)
        add_array(store, split, "video_features", video, say=_say)


def ship(
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    card: str | os.PathLike | None = None,
    vocoder: str | os.PathLike | None = None,
    adapter_weight: float | None = None,
    silence_threshold: float | None = None,
) -> Path:
    """Write the shipped folder: the model in fp16 safetensors (+ ``MODEL_CARD.md`` when given); ``vocoder``: a
    model folder whose HiFi-GAN replaces the model's (the vocoder trains independently of the diffusion stages);
    ``adapter_weight``: the default weight of every control adapter (chosen on the validation split);
    ``silence_threshold``: the RMS-Mapper's decoding rule (``RMSMapper``; chosen on the validation split)."""
    import torch

    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline
    from foleykit.training.stages.components import quiet_libraries

    with quiet_libraries():
        pipe = VideoToAudioPipeline.from_pretrained(model)
        if vocoder is not None:
            pipe.codec.vocoder.load_state_dict(
                VideoToAudioPipeline.from_pretrained(vocoder).codec.vocoder.state_dict()
            )
    if adapter_weight is not None:
        if not (adapter_weight >= 0):
            raise ValueError(f"adapter weight must be >= 0, got {adapter_weight}")
        for a in pipe.adapters.values():
            a.weight = float(adapter_weight)
    if silence_threshold is not None:
        if "rms" not in pipe.predictors:
            raise ValueError("--silence-threshold needs a model with an RMS-Mapper")
        pipe.predictors["rms"].silence_threshold = silence_threshold  # checks the range
        spec = pipe.specs["predictor_rms"]
        pipe.specs["predictor_rms"] = {
            **spec,
            "kwargs": {**spec.get("kwargs", {}), "silence_threshold": float(silence_threshold)},
        }
    folder = _save(pipe, out, dtype=torch.float16)
    if card is not None:
        shutil.copyfile(card, Path(folder) / "MODEL_CARD.md")
    size = sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())
    _say(f"[ship] {folder}: {size / 1e6:.1f} MB")
    return Path(folder)


# --- command line -------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m foleykit.training.demo", description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare", help="decode the dataset once into an array store")
    a.add_argument("--data", required=True)
    a.add_argument("--store", required=True)
    a.add_argument("--workers", type=int, default=1)
    a.add_argument("--limit", type=int, default=None)
    a = sub.add_parser("tokens", help="aisfx reference tokens of the stored soundtracks")
    a.add_argument("--store", required=True)
    a = sub.add_parser("stage", help="train one stage")
    a.add_argument("--stage", required=True, choices=sorted(STAGES))
    a.add_argument("--store", required=True)
    a.add_argument("--run", required=True)
    a.add_argument("--init", default=None)
    a.add_argument("--resume", action="store_true")
    a.add_argument("overrides", nargs="*")
    a = sub.add_parser("merge", help="combine the autoencoder, vocoder and predictor stages")
    a.add_argument("--run", required=True)
    a.add_argument("--out", required=True)
    a = sub.add_parser("cache", help="latents + video features of a model for the diffusion stages")
    a.add_argument("--store", required=True)
    a.add_argument("--model", required=True)
    a.add_argument("--no-scale", action="store_true")
    a = sub.add_parser("ship", help="write the fp16 shipped folder")
    a.add_argument("--model", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--card", default=None)
    a.add_argument("--vocoder", default=None, help="model folder whose vocoder replaces the model's")
    a.add_argument(
        "--adapter-weight", type=float, default=None, help="default weight of the control adapters"
    )
    a.add_argument(
        "--silence-threshold",
        type=float,
        default=None,
        help="RMS-Mapper decoding: silence when P(class 0) >= this (default: argmax)",
    )
    args = p.parse_args(argv)
    set_threads(args.threads)
    t0 = time.time()
    if args.cmd == "prepare":
        from foleykit.training.arrays import build_store

        build_store(args.data, args.store, workers=args.workers, limit=args.limit, say=_say)
    elif args.cmd == "tokens":
        reference_tokens(args.store)
    elif args.cmd == "stage":
        run_stage(
            stage=args.stage,
            store=args.store,
            run=args.run,
            init=args.init,
            overrides=args.overrides,
            resume=args.resume,
        )
    elif args.cmd == "merge":
        merge(args.run, args.out)
    elif args.cmd == "cache":
        build_cache(args.store, args.model, scale=not args.no_scale)
    elif args.cmd == "ship":
        ship(
            args.model,
            args.out,
            card=args.card,
            vocoder=args.vocoder,
            adapter_weight=args.adapter_weight,
            silence_threshold=args.silence_threshold,
        )
    _say(f"[{args.cmd}] done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
