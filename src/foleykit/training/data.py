"""Data of a training run: the synthetic clips, the audio-only event sequences and the feature cache.

- :func:`prepare_data`: the run's datasets — ``--data`` folders, or synthetic clips made once from a sound
  bank (the prepared default bank, else the procedural one: nothing is downloaded) with the synthetic
  audio-visual generator (``foleykit.data.synth``);
- :func:`build_feature_cache`: latents of the (trained) autoencoder, the video encoder's features (stages
  that do not train it) and the energy / RMS controls of every clip window, precomputed with the feature cache
  (``foleykit.data.cache``; the ``latents`` extractor gets the pipeline's codec).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from foleykit.errors import ConfigError


def resolve_bank(spec: str | None, out: Path) -> tuple[Path, bool]:
    """The sound bank of a synthetic run: (folder, is_procedural).

    ``auto``: the prepared default bank (``foleykit data prepare-bank``) when present, else the procedural
    bank of ``foleykit.data.procedural`` written once to ``<out>/bank`` (no download); ``procedural``: always
    that one; anything else: a bank folder.
    """
    from foleykit.data.procedural import make_procedural_bank
    from foleykit.data.ufoai import default_bank_dir, is_prepared

    spec = spec or "auto"
    if spec == "auto" and is_prepared(default_bank_dir()):
        return default_bank_dir(), False
    if spec in ("auto", "procedural"):
        folder = out / "bank"
        if not (folder / "bank.json").is_file():
            make_procedural_bank(folder)
        return folder, True
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"data.bank: {folder} is not a folder (use auto, procedural or a sound-bank folder)"
        )
    return folder, False


def prepare_data(
    cfg: Mapping[str, Any],
    seq: Any,
    out: Path,
    data: str | os.PathLike | None,
    *,
    video_size: int | None = None,
    say: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Datasets of a run: ``{"train", "validation", "test", "audio_only"}`` (missing splits absent).

    Without ``data``, synthetic clips are generated (once; resumable) into ``<out>/data/<split>/`` with the
    synthetic audio-visual generator from the run's bank, ``data.num_<split>`` clips each, at least 2 s long
    (``data.clip_seconds``; windows are cut to the model's duration). With ``data``: a folder with
    ``train/`` (+ ``validation/``, ``test/``) sub-folders (what ``foleykit data synth`` writes), or one folder /
    manifest used for training. ``audio_only`` holds bank event sequences (Rhythmic Foley's temporal adapter)
    when a bank is known. Only the main process generates; the others wait.
    """
    from foleykit.data.datasets import EventSequenceDataset, VideoClipDataset

    dcfg = dict(cfg.get("data") or {})
    from foleykit.training.trainer import process_state

    state = process_state()
    bank: Path | None = None
    if data is None and dcfg.get("path"):
        data = dcfg["path"]
    if data is None:
        root = out / "data"
        with state.main_process_first():
            bank, _ = resolve_bank(dcfg.get("bank"), out)
            if state.is_main_process:
                _synthesize(bank, root, seq, dcfg, say=say)
    else:
        root = Path(data).expanduser()
        if not root.exists():
            raise ConfigError(f"--data {root} does not exist")
        if dcfg.get("bank") not in (None, "auto", "procedural"):
            bank = Path(dcfg["bank"]).expanduser()
    datasets: dict[str, Any] = {}
    if root.is_dir() and (root / "train").is_dir():
        for split in ("train", "validation", "test"):
            if (root / split).is_dir():
                datasets[split] = VideoClipDataset(root / split, seq=seq, video_size=video_size)
    else:
        datasets["train"] = VideoClipDataset(root, seq=seq, video_size=video_size)
    if bank is not None:
        n = max(int(dcfg.get("num_train", 8)), 1)
        datasets["audio_only"] = {
            "train": EventSequenceDataset(
                bank, seq=seq, split_name="train", length=n, seed=int(dcfg.get("seed", 0))
            )
        }
        if int(dcfg.get("num_validation", 0)) > 0:
            datasets["audio_only"]["validation"] = EventSequenceDataset(
                bank,
                seq=seq,
                split_name="validation",
                length=int(dcfg["num_validation"]),
                seed=int(dcfg.get("seed", 0)),
            )
    return datasets


def _synthesize(
    bank: Path, root: Path, seq: Any, dcfg: Mapping[str, Any], *, say: Callable[[str], None]
) -> None:
    from foleykit.data.synth import SynthConfig, synthesize

    seconds = dcfg.get("clip_seconds") or max(2.0, float(seq.duration))
    kw: dict[str, Any] = {
        "width": int(dcfg.get("width", 64)),
        "height": int(dcfg.get("height", 48)),
        "fps": seq.video_fps,
        "duration": float(seconds),
        "sample_rate": seq.sample_rate,
    }
    if float(seconds) < 3.0:  # break scenes need ~2 s before the fall; short windows use footsteps / impacts
        kw.update(scene_weights={"footsteps": 0.5, "impact": 0.5})
    cfg = SynthConfig(**kw)
    for split in ("train", "validation", "test"):
        n = int(dcfg.get(f"num_{split}", 0))
        if n <= 0:
            continue
        rep = synthesize(
            bank,
            root,
            num_clips=n,
            split=split,
            seed=int(dcfg.get("seed", 0)),
            config=cfg,
            workers=int(dcfg.get("workers", 1)),
            progress=False,
        )
        if rep.written.get(split):
            say(
                f"[data] {rep.written[split]} synthetic {split} clips in {rep.seconds:.1f} s "
                f"({rep.clips_per_second:.2f} clips/s) -> {root / split}"
            )


# --- feature cache ------------------------------------------------------------------------------------------
class _CodecEncoder:
    """``encode_audio(wav (T,)) -> latents`` for the cache's ``latents`` extractor (posterior mode, no grad)."""

    def __init__(self, codec: Any, seq: Any) -> None:
        self.codec, self.seq = codec, seq

    def encode_audio(self, wav: Any) -> Any:
        import torch

        from foleykit.training.stages.base import fit_length

        x = fit_length(torch.as_tensor(wav, dtype=torch.float32).reshape(-1), self.seq.num_samples)[None]
        device = next(self.codec.parameters()).device
        with torch.no_grad():
            return self.codec.encode_audio(x.to(device))[0].float().cpu().numpy()


class _VideoFeatures:
    """Cache extractor: the video encoder's features ``video_features`` (T_v, D) of the clip window (for stages
    that do not train the encoder)."""

    name = "video_features"

    def __init__(self, encoder: Any, seq: Any, tag: str) -> None:
        self.encoder, self.seq, self.tag = encoder, seq, tag

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "encoder": self.tag}

    def __call__(self, clip: Any) -> dict[str, Any]:
        import numpy as np
        import torch

        from foleykit.data.datasets import fit_length

        size = getattr(self.encoder, "input_size", None)
        frames = fit_length(clip.frames(size), self.seq.num_video_frames)
        with torch.no_grad():
            feats = self.encoder.encode(frames)[0].float().cpu().numpy()
        return {"video_features": np.asarray(feats, np.float32)}


class _AudioTokens:
    """Cache extractor: the (frozen) reference-audio encoder's tokens of the clip's own audio, the timbre
    condition of the diffusion stages: ``audio_tokens`` (L, D) and ``audio_mask`` (L,)."""

    name = "audio_tokens"

    def __init__(self, encoder: Any, seq: Any, tag: str) -> None:
        self.encoder, self.seq, self.tag = encoder, seq, tag

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "encoder": self.tag}

    def __call__(self, clip: Any) -> dict[str, Any]:
        import numpy as np
        import torch

        from foleykit.data.datasets import fit_length

        wav = fit_length(np.asarray(clip.audio, np.float32), self.seq.num_samples)
        with torch.no_grad():
            tokens, mask = self.encoder.encode([wav], self.seq.sample_rate)
        return {
            "audio_tokens": tokens[0].float().cpu().numpy(),
            "audio_mask": mask[0].cpu().numpy().astype(bool),
        }


def build_feature_cache(
    pipe: Any,
    datasets: Mapping[str, Any],
    out: Path,
    *,
    tag: str,
    video: bool = True,
    say: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Precompute per clip window, with the feature cache (``foleykit.data.cache``): the latents of the
    pipeline's (trained) autoencoder, the video encoder's features (``video``: for stages that do not train
    the encoder), the reference-audio encoder's tokens of each clip, and the energy / RMS controls.

    One cache per split (train, validation) in ``<out>/cache/<split>``; it is rebuilt when ``tag`` (a content
    hash of the autoencoder / encoder that made it) changes and extended (resumable) otherwise. Returns the datasets wrapped with
    :class:`~foleykit.training.targets.WithCache`.
    """
    import dataclasses as dc

    from foleykit.data.cache import FeatureCache, LatentsExtractor, build_cache, make_extractors
    from foleykit.data.datasets import VideoClipDataset
    from foleykit.training.targets import WithCache
    from foleykit.training.trainer import process_state

    state = process_state()
    seq = pipe.seq
    wrapped = dict(datasets)
    for split in ("train", "validation"):
        ds = datasets.get(split)
        if not isinstance(ds, VideoClipDataset):
            continue
        records = []
        for i, r in enumerate(ds.records):
            start, dur = ds.window(i)
            records.append(dc.replace(r, start=start, end=start + dur))
        exts: list[Any] = [
            LatentsExtractor(encoder=_CodecEncoder(pipe.codec, seq), seq=seq, tag=f"latents:{tag}")
        ]
        enc = pipe.video_encoder
        if video and enc is not None:
            exts.append(_VideoFeatures(enc, seq, f"{type(enc).__name__}:{tag}"))
        if pipe.audio_encoder is not None:
            exts.append(_AudioTokens(pipe.audio_encoder, seq, type(pipe.audio_encoder).__name__))
        exts += make_extractors(["energy", "rms"], seq=seq)
        folder = out / "cache" / split
        with state.main_process_first():
            if state.is_main_process:
                stats = build_cache(records, folder, extractors=exts, seq=seq, overwrite=True, progress=False)
                if stats.get("computed"):
                    say(f"[cache] {stats['computed']} {split} clips -> {folder}")
        wrapped[split] = WithCache(ds, FeatureCache(folder))
    return wrapped


def cache_tag(pipe: Any, *, video: bool) -> str:
    """Content hash of what the cached arrays depend on: the autoencoder and its latent ``scaling_factor``
    (the cached latents are scaled), and the video encoder when its features are cached."""
    import hashlib

    h = hashlib.sha1()
    h.update(repr(float(pipe.codec.scaling_factor)).encode())
    parts = [pipe.codec.vae]
    if video and pipe.video_encoder is not None:
        parts.append(pipe.video_encoder)
        h.update(b"video")
    for module in parts:
        for name, t in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
