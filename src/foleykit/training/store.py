"""Training from a prepared store (``foleykit train prepare`` / ``--store``): the CPU path of the shipped model.

``foleykit train`` on a ``--data`` folder decodes every clip window at every step; on a CPU that cost
dominates. ``foleykit train prepare`` decodes each window once into the array backend of the feature cache
(:mod:`foleykit.data.cache.arrays`), and ``foleykit train --store STORE`` trains the same stages on it:

- what is prepared per clip comes from the recipe's pipeline (:func:`prepare_extractors`): the soundtrack,
  the control targets its predictors / adapters learn (``rms``, ``energy``), and what training needs of its
  video encoder (``VideoInputsExtractor``: the features of a frozen encoder; the frames and the frozen
  parts' features of a trainable one), plus any registered extractor named with ``--extract``;
- stage data (:func:`store_datasets`): autoencoder = ``crops_per_clip`` crops of ``crop_seconds``; vocoder =
  whole soundtracks (the stage draws segments); predictor = aligned ``window_frames`` windows
  (``windows_per_clip`` per clip); diffusion stages = whole windows with the arrays of
  :func:`ensure_arrays`: latents of the pipeline's autoencoder, its video features and reference-audio
  tokens, each recomputed when the component that made it changed (content tags).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from foleykit.errors import ConfigError, DataError

#: Stage families that read latents / video features / reference tokens from the store.
DIFFUSION_FAMILIES = ("prior", "semantic", "adapter")


def weights_tag(*modules: Any) -> str:
    """Content hash of modules' weights (what arrays computed with them depend on)."""
    h = hashlib.sha1()
    for module in modules:
        h.update(type(module).__name__.encode())
        for name, t in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def latents_tag(codec: Any) -> str:
    """What stored latents depend on: the VAE's weights and its latent ``scaling_factor`` (latents are stored
    scaled, so latents made before the factor changed are stale even though the weights are the same)."""
    return f"latents:{weights_tag(codec.vae)}:{float(codec.scaling_factor)!r}"


# --- preparation ----------------------------------------------------------------------------------------------
def prepare_extractors(pipe: Any, *, extract: Iterable[str] = (), pose: str = "model") -> list[Any]:
    """The per-clip arrays a store for ``pipe`` holds: ``audio``; ``rms`` / ``energy`` when a predictor or
    adapter of the pipeline works on them; the video encoder's inputs (``VideoInputsExtractor``, its pose
    from ``pose``: ``"model"`` as at inference, or the clips' ``"keypoints"``); and the registered extractors
    named in ``extract`` (e.g. per-clip metadata read from the clip's json)."""
    from foleykit.data.cache import VideoInputsExtractor, make_extractors

    seq = pipe.seq
    kinds = set(getattr(pipe, "predictors", {}) or {})
    kinds |= {getattr(a, "control_kind", n) for n, a in (getattr(pipe, "adapters", {}) or {}).items()}
    names = ["audio"] + [k for k in ("rms", "energy") if k in kinds]
    names += [n for n in extract if n not in names]
    out = make_extractors(names, seq=seq)
    enc = pipe.video_encoder
    if enc is not None:
        tag = weights_tag(enc) if getattr(enc, "frozen", True) else ""
        out.append(VideoInputsExtractor(encoder=enc, seq=seq, tag=tag, pose=pose))
    return out


def prepare_store(
    data: str | os.PathLike,
    store: str | os.PathLike,
    *,
    pipe: Any,
    extract: Iterable[str] = (),
    pose: str = "model",
    workers: int = 1,
    limit: int | None = None,
    say: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Decode every clip window of ``data`` once into ``store`` for ``pipe`` (see :func:`prepare_extractors`;
    resumable)."""
    from foleykit.data.cache import prepare_arrays

    exts = prepare_extractors(pipe, extract=extract, pose=pose)
    say(f"[prepare] per clip: {', '.join(e.name for e in exts)}")
    return prepare_arrays(data, store, extractors=exts, seq=pipe.seq, workers=workers, limit=limit, say=say)


# --- stage data -------------------------------------------------------------------------------------------------
def store_splits(store: str | os.PathLike) -> list[str]:
    from foleykit.data.cache import read_store_index

    return list(read_store_index(store)["splits"])


def check_store(store: str | os.PathLike, seq: Any) -> None:
    """Refuse a store prepared for another geometry than the model's ``SequenceConfig``.

    Raises:
        DataError: the geometries differ (or the folder is not a store).
    """
    from foleykit.data.cache import read_store_index

    have = read_store_index(store)["sequence"]
    if have != seq.to_dict():
        diff = {k: (have.get(k), v) for k, v in seq.to_dict().items() if have.get(k) != v}
        raise DataError(
            f"{store} was prepared for another geometry ({', '.join(f'{k}: {a} != {b}' for k, (a, b) in diff.items())}); "
            "prepare a store for this recipe / config"
        )


def store_datasets(
    family: str, store: str | os.PathLike, table: Mapping[str, Any], *, train_encoder: bool = False
) -> dict[str, Any]:
    """The train / validation datasets of a stage family from the store (knobs of ``table``:
    ``crop_seconds`` / ``crops_per_clip`` (autoencoder), ``window_frames`` / ``windows_per_clip``
    (predictor), ``data_seed``); ``train_encoder``: the stage trains the video encoder (serve its inputs,
    not cached features)."""
    from foleykit.data.cache import ArrayDataset, AudioCrops, Windows, field_grid, read_store_index

    seed = int(table.get("data_seed") or 0)
    splits = [s for s in ("train", "validation") if s in store_splits(store)]
    if "train" not in splits:
        raise DataError(f"the store {store} has no train split")
    out: dict[str, Any] = {}
    if family == "autoencoder":
        seconds = float(table.get("crop_seconds") or read_store_index(store)["sequence"]["duration"])
        per = int(table.get("crops_per_clip") or 1)
        for s in splits:
            out[s] = AudioCrops(
                store,
                s,
                crop_seconds=seconds,
                crops_per_clip=per if s == "train" else 1,
                seed=seed + (s != "train"),
            )
        return out
    if family == "vocoder":
        return {s: ArrayDataset(store, s, fields=["audio"]) for s in splits}
    present = _present(store, "train")
    if family == "predictor":
        timed = [f for f in dict.fromkeys(present) if field_grid(f) in ("video", "control")]
        if train_encoder:
            timed = [f for f in timed if f != "video_features"]
        elif "video_features" in timed:
            timed = [f for f in timed if f == "video_features" or field_grid(f) == "control"]
        window = int(table.get("window_frames") or 10**9)
        train = Windows(
            store,
            "train",
            fields=timed,
            window_frames=window,
            windows_per_clip=int(table.get("windows_per_clip") or 1),
            seed=seed,
        )
        out["train"] = train
        if "validation" in splits:
            out["validation"] = Windows(
                store,
                "validation",
                fields=timed,
                window_frames=10**9,
                categories=train.categories,
                seed=seed + 1,
            )
        return out
    fields = [f for f in ("latents", "video_features", "audio_tokens", "audio_mask") if f in present]
    return {s: ArrayDataset(store, s, fields=fields) for s in splits}


def _present(store: str | os.PathLike, split: str) -> list[str]:
    from pathlib import Path

    return sorted(p.stem for p in (Path(store) / split).glob("*.npy") if p.stem not in ("done",))


# --- arrays from trained components -------------------------------------------------------------------------
def _batched(fn: Callable[[Sequence[int]], np.ndarray], n: int, size: int = 8) -> Callable[[int], np.ndarray]:
    """``fn`` over index chunks of ``size``, served one row at a time (``add_array`` asks row by row)."""
    memo: dict[int, np.ndarray] = {}

    def row(i: int) -> np.ndarray:
        if i not in memo:
            memo.clear()
            idx = list(range(i, min(n, i + size)))
            for k, v in zip(idx, fn(idx), strict=True):
                memo[k] = v
        return memo[i]

    return row


def ensure_arrays(
    pipe: Any,
    store: str | os.PathLike,
    *,
    latents: bool = True,
    video: bool = True,
    tokens: bool = True,
    splits: Sequence[str] = ("train", "validation"),
    say: Callable[[str], None] = lambda s: None,
) -> None:
    """Add to the store what the diffusion stages read, made by ``pipe``'s components: ``latents`` (its
    autoencoder, posterior mode), ``video_features`` (its video encoder on the prepared inputs) and
    ``audio_tokens`` / ``audio_mask`` (its reference-audio encoder on each clip's own soundtrack). An array is
    computed when absent or made by other weights (its tag), else kept.

    Raises:
        DataError: the store was prepared for a frozen video encoder other than the pipeline's.
    """
    import torch

    from foleykit.data.cache import ArrayDataset, add_array, array_tag, encode_prepared, read_store_index

    index = read_store_index(store)
    enc = pipe.video_encoder
    prepared_video = (index["extractors"].get("video") or {}).get("frame_size", 0) is None
    if video and enc is not None and prepared_video:
        made_by = index["extractors"]["video"].get("tag")
        if made_by != weights_tag(enc):
            raise DataError(
                f"{store} holds the features of another frozen video encoder; prepare a store for this model "
                "(`foleykit train prepare --model MODEL ...`)"
            )
    for split in [s for s in splits if s in index["splits"]]:
        n = int(index["splits"][split]["n"])
        if latents:
            tag = latents_tag(pipe.codec)
            if array_tag(store, split, "latents") != tag:
                fn = _encoder_rows(store, split, ["audio"], lambda b: pipe.codec.encode_audio(b["audio"]))
                add_array(store, split, "latents", _batched(fn, n), tag=tag, say=say)
        if video and enc is not None and not prepared_video:
            tag = "video:" + weights_tag(enc)
            if array_tag(store, split, "video_features") != tag:
                names = [f for f in _present(store, split) if f == "frames" or f.startswith("video_part")]
                fn = _encoder_rows(store, split, names, lambda b: encode_prepared(enc, b))
                add_array(store, split, "video_features", _batched(fn, n), tag=tag, say=say)
        if tokens and pipe.audio_encoder is not None:
            tag = f"tokens:{type(pipe.audio_encoder).__name__}:{getattr(pipe.audio_encoder, 'dim', '')}"
            if array_tag(store, split, "audio_tokens") != tag or array_tag(store, split, "audio_mask") != tag:
                audio = ArrayDataset(store, split, fields=["audio"]).arrays()["audio"]
                toks = []
                with torch.no_grad():
                    for i in range(n):
                        tok, mask = pipe.audio_encoder.encode([np.array(audio[i])], pipe.seq.sample_rate)
                        toks.append((tok[0].float().numpy(), mask[0].numpy()))
                add_array(store, split, "audio_tokens", _column(toks, 0), tag=tag, say=say)
                add_array(store, split, "audio_mask", _column(toks, 1), dtype=np.bool_, tag=tag, say=say)


def _column(rows: Sequence[tuple[np.ndarray, ...]], k: int) -> Callable[[int], np.ndarray]:
    return lambda i: rows[i][k]


def _encoder_rows(
    store: str | os.PathLike, split: str, names: Sequence[str], encode: Callable[[dict[str, Any]], Any]
) -> Callable[[Sequence[int]], np.ndarray]:
    """``idx -> encode({name: Tensor[len(idx) x ...]})`` as float32 numpy (no gradients), over stored arrays."""
    import torch

    from foleykit.data.cache import ArrayDataset

    arrays = {k: v for k, v in ArrayDataset(store, split, fields=list(names)).arrays().items() if k in names}

    def fn(idx: Sequence[int]) -> np.ndarray:
        batch = {k: torch.from_numpy(np.stack([np.asarray(a[i]) for i in idx])) for k, a in arrays.items()}
        with torch.no_grad():
            return encode(batch).float().cpu().numpy()

    return fn


def latent_scale(pipe: Any, store: str | os.PathLike, *, n: int = 96) -> float:
    """1 / std of the unscaled posterior-mode latents of ``n`` training clips: the VAE's ``scaling_factor``,
    so that the diffusion model sees unit-variance latents (LDM sec. 4.3)."""
    import torch

    from foleykit.data.cache import ArrayDataset

    audio = ArrayDataset(store, "train", fields=["audio"]).arrays()["audio"]
    idx = np.linspace(0, len(audio) - 1, min(n, len(audio))).astype(int)
    codec = pipe.codec
    old = codec.vae.config.scaling_factor
    codec.vae.register_to_config(scaling_factor=1.0)
    zs = []
    try:
        with torch.no_grad():
            for k in range(0, len(idx), 8):
                wav = torch.from_numpy(np.stack([np.asarray(audio[i]) for i in idx[k : k + 8]]))
                zs.append(codec.encode_audio(wav).float())
    finally:
        codec.vae.register_to_config(scaling_factor=old)
    if not zs:
        raise ConfigError(f"{store} has no training clips to measure the latent scale on")
    return float(1.0 / torch.cat(zs).std())
