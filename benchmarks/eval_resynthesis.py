"""Resynthesis quality of a model's vocoder and mel autoencoder on real test audio.

Rows, for every test clip (mono, the model's sample rate, at most ``--max-seconds`` from its start,
zero-padded to whole latent frames):

- ``vocoder``: the vocoder on the clip's true log-mel (``codec.mel``), i.e. vocoder-only reconstruction;
- ``vae+vocoder``: the mel VAE's posterior mode decoded to a log-mel, then vocoded (what generation hears
  at best: the diffusion model's output goes through the same path);
- ``griffin-lim`` and ``vae+griffin-lim`` (``--griffin-lim``): the weight-free Griffin-Lim inverse
  (``GriffinLimVocoder``, ``--gl-iters`` iterations) of the true log-mel and of the VAE's log-mel;
- ``vocoder+gl`` and ``vae+vocoder+gl`` (``--gl-from-vocoder``): Griffin-Lim started from the phase of the
  vocoder's output instead of a random one.

Each row also reports the seconds its waveform stage took (the VAE excluded), summed over the clips.

Metrics (each reconstruction against its original, over the first ``ceil(T / hop) * hop`` samples):

- ``mr_stft``: multi-resolution STFT distance, the mean over Hann STFTs (n_fft / hop) 256 / 64, 512 / 128,
  1024 / 256 of L1(log |S|) + L1(|S|) (magnitudes floored at 1e-5; ``foleykit.training.losses``);
  being magnitude-only, it (like ``mel_l1``) does not see phase artefacts: Griffin-Lim scores well on both;
- ``mel_l1``: L1 between AudioLDM log-mels (natural log, 64 mels, hop 160; the vocoder training loss);
- ``fd`` (FD_aisfx): Frechet distance between the aisfx clip embeddings of the reconstructions and of the
  originals (``foleykit.evaluation``); ``fad``: the same over aisfx frame embeddings;
- ``vae_mel_l1`` (per model): the mel VAE's own log-mel reconstruction error, before any vocoder.

Per-clip metrics are means over clips; with ``--compare DIR`` a second model is scored on the same clips and
the differences (compare - model) come with paired bootstrap 95% intervals over clips.

Commands::

    # the bank's test split (foleykit data prepare-bank first), the shipped model
    python benchmarks/eval_resynthesis.py --bank-split test
    # a folder of audio (e.g. a synthetic split's soundtracks), two models, JSON report
    python benchmarks/eval_resynthesis.py --audio SYNTH/test --model runs/x/vocoder/model \\
        --compare runs/y/vocoder/model --json resynth.json --griffin-lim
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac")
ROWS = ("vocoder", "vae+vocoder", "griffin-lim", "vae+griffin-lim", "vocoder+gl", "vae+vocoder+gl")
CLIP_METRICS = ("mr_stft", "mel_l1")


def load_clips(args: argparse.Namespace, sample_rate: int) -> dict[str, np.ndarray]:
    """``{name: float32 (T,)}`` from ``--audio`` (recursive) or the bank split ``--bank-split``."""
    clips: dict[str, np.ndarray] = {}
    if args.audio:
        from foleykit.media import read_audio

        root = Path(args.audio)
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXT)
        if not files:
            sys.exit(f"no audio files ({', '.join(AUDIO_EXT)}) under {root}")
        for p in files:
            name = str(p.relative_to(root).with_suffix("")).replace("/", "__")
            clips[name] = read_audio(p, sample_rate=sample_rate, duration=args.max_seconds)
    else:
        from foleykit.data.bank import SoundBank, split_bank
        from foleykit.data.ufoai import default_bank_dir

        bank = SoundBank(Path(args.bank) if args.bank else default_bank_dir(), sample_rate=sample_rate)
        split = split_bank(bank, seed=args.split_seed)
        for path in split.files(args.bank_split):
            wav = np.asarray(bank.load(path), np.float32)
            clips[path.rsplit(".", 1)[0].replace("/", "__")] = wav[: int(args.max_seconds * sample_rate)]
    names = sorted(clips)[: args.limit] if args.limit else sorted(clips)
    return {k: clips[k] for k in names}


def resynthesize(
    pipe, clips: dict[str, np.ndarray], rows: list[str], gl_iters: int = 32
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, float], dict[str, float]]:
    """``{row: {name: waveform}}`` (every output as long as its zero-padded input), per clip the mel VAE's own
    reconstruction error (log-mel L1 over the clip's frames, before any vocoder), and per row the seconds of
    its waveform stage."""
    import torch

    from foleykit.models.vocoder import GriffinLimVocoder, vocode

    codec, seq = pipe.codec, pipe.seq
    gl = GriffinLimVocoder(seq=seq, n_iter=gl_iters)
    out: dict[str, dict[str, np.ndarray]] = {r: {} for r in rows}
    seconds = dict.fromkeys(rows, 0.0)
    vae_l1: dict[str, float] = {}

    def run(row: str, name: str, fn) -> torch.Tensor:
        t0 = time.perf_counter()
        wav = fn()
        seconds[row] += time.perf_counter() - t0
        out[row][name] = wav[0].numpy()
        return wav

    with torch.no_grad():
        for name, wav in clips.items():
            n_lat = max(1, math.ceil(len(wav) / seq.latent_hop))
            x = torch.zeros(1, n_lat * seq.latent_hop)
            x[0, : len(wav)] = torch.from_numpy(np.array(wav, np.float32))
            image = codec.audio_to_mel_image(x)  # (1, 1, T_mel, n_mels)
            mels = {"": image[:, 0].transpose(1, 2)}
            if any(r.startswith("vae+") for r in rows):
                z = codec.encode_mel_image(image).mode()
                mel_hat = codec.vae.decode(z).sample[:, 0].transpose(1, 2).float()
                frames = math.ceil(len(wav) / seq.hop_length)
                vae_l1[name] = float((mel_hat - mels[""])[..., :frames].abs().mean())
                mels["vae+"] = mel_hat
            for pre, mel in mels.items():
                voc = None
                if pre + "vocoder" in rows or pre + "vocoder+gl" in rows:
                    voc = run(pre + "vocoder", name, lambda mel=mel: vocode(codec.vocoder, mel))
                if pre + "griffin-lim" in rows:
                    run(pre + "griffin-lim", name, lambda mel=mel: gl(mel))
                if pre + "vocoder+gl" in rows:
                    run(pre + "vocoder+gl", name, lambda mel=mel, voc=voc: gl(mel, init=voc))
    out = {r: v for r, v in out.items() if v}
    return out, vae_l1, {r: seconds[r] for r in out}


def clip_metrics(ref: dict[str, np.ndarray], rec: dict[str, np.ndarray], seq) -> dict[str, dict[str, float]]:
    """``{metric: {name: value}}`` for ``CLIP_METRICS``."""
    import torch

    from foleykit.audio import MelSpectrogram
    from foleykit.training.losses import MultiResolutionSTFTLoss
    from foleykit.training.stages.autoencoder import _stft_resolutions

    mel = MelSpectrogram.from_sequence(seq)
    stft = MultiResolutionSTFTLoss(resolutions=_stft_resolutions(seq.sample_rate))
    res: dict[str, dict[str, float]] = {m: {} for m in CLIP_METRICS}
    with torch.no_grad():
        for name, wav in ref.items():
            n = math.ceil(len(wav) / seq.hop_length) * seq.hop_length
            x = torch.zeros(1, n)
            x[0, : len(wav)] = torch.from_numpy(np.array(wav, np.float32))
            y = torch.from_numpy(np.asarray(rec[name][:n], np.float32))[None]
            res["mr_stft"][name] = float(stft(y, x))
            res["mel_l1"][name] = float((mel(y) - mel(x)).abs().mean())
    return res


def embedding_metrics(ref: dict[str, np.ndarray], rec: dict[str, np.ndarray], sample_rate: int) -> dict:
    """FD_aisfx (clip embeddings) and FAD_aisfx (frame embeddings) of the reconstructions vs the originals."""
    from foleykit.evaluation import evaluate

    report = evaluate(
        {k: (v, sample_rate) for k, v in rec.items()},
        {k: (v, sample_rate) for k, v in ref.items()},
        metrics=["fd", "fad"],
        cache=False,
        embedder="aisfx",
    )
    return {"fd": report["fd"], "fad": report["fad"]}


def score_model(model: str, clips_by_rate: dict, args: argparse.Namespace) -> dict:
    """Resynthesise and score every row for one model folder; ``{"rows": {row: {...}}, ...}``."""
    from foleykit.pipelines.video_to_audio import VideoToAudioPipeline

    pipe = VideoToAudioPipeline.from_pretrained(model)
    seq = pipe.seq
    if seq.latent_space != "mel":
        sys.exit(f"{model}: resynthesis needs a mel-latent model (vocoder + mel VAE)")
    clips = clips_by_rate.setdefault(seq.sample_rate, load_clips(args, seq.sample_rate))
    rows = ["vocoder", "vae+vocoder"]
    rows += ["griffin-lim", "vae+griffin-lim"] if args.griffin_lim else []
    rows += ["vocoder+gl", "vae+vocoder+gl"] if args.gl_from_vocoder else []
    t0 = time.perf_counter()
    recs, vae_l1, stage_seconds = resynthesize(pipe, clips, rows, gl_iters=args.gl_iters)
    seconds = time.perf_counter() - t0
    out: dict = {
        "model": str(model),
        "resynthesis_seconds": round(seconds, 2),
        "vae_mel_l1": float(np.mean(list(vae_l1.values()))),
        "vae_mel_l1_per_clip": vae_l1,
        "rows": {},
    }
    for row in rows:
        per_clip = clip_metrics(clips, recs[row], seq)
        emb = embedding_metrics(clips, recs[row], seq.sample_rate)
        out["rows"][row] = {
            **{m: float(np.mean(list(v.values()))) for m, v in per_clip.items()},
            **emb,
            "waveform_seconds": round(stage_seconds[row], 3),
            "per_clip": per_clip,
        }
        if args.save_audio:
            import soundfile as sf

            folder = Path(args.save_audio) / Path(str(model)).name / row
            folder.mkdir(parents=True, exist_ok=True)
            for name, wav in recs[row].items():
                sf.write(folder / f"{name}.wav", wav, seq.sample_rate, subtype="FLOAT")
    out["num_clips"] = len(clips)
    out["audio_seconds"] = round(sum(len(v) for v in clips.values()) / seq.sample_rate, 2)
    return out


def compare(a: dict, b: dict) -> dict:
    """Paired bootstrap (95%) of ``b - a`` per row and clip metric."""
    from foleykit.evaluation import paired_difference

    diffs = {}
    for row, ra in a["rows"].items():
        rb = b["rows"].get(row)
        if rb is None:
            continue
        for m in CLIP_METRICS:
            d = paired_difference(rb["per_clip"][m], ra["per_clip"][m], m)
            diffs[f"{row}/{m}"] = {
                "diff": d.diff,
                "low": d.low,
                "high": d.high,
                "better": d.better,
                "clips": d.num_clips,
            }
    return diffs


def table(result: dict) -> str:
    lines = [
        "| row | MR-STFT ↓ | mel L1 ↓ | FD_aisfx ↓ | FAD_aisfx ↓ | waveform s |",
        "|---|---|---|---|---|---|",
    ]
    for row, r in result["rows"].items():
        fmt = [f"{r[m]:.4f}" if r[m] is not None else "n/a" for m in ("mr_stft", "mel_l1")]
        fmt += [f"{r[m]:.2f}" if r[m] is not None else "n/a" for m in ("fd", "fad")]
        fmt.append(f"{r['waveform_seconds']:.2f}")
        lines.append(f"| {row} | " + " | ".join(fmt) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--audio", help="folder of test audio (searched recursively)")
    src.add_argument(
        "--bank-split", default="test", choices=["train", "validation", "test"], help="a split of the bank"
    )
    ap.add_argument("--bank", default=None, help="bank folder (default: the prepared ufoai bank)")
    ap.add_argument("--split-seed", type=int, default=0, help="seed of the bank split (the model card's: 0)")
    ap.add_argument(
        "--model", default="foleykit-demo", help="model folder or name (default: the shipped one)"
    )
    ap.add_argument("--compare", default=None, help="a second model folder scored on the same clips")
    ap.add_argument("--max-seconds", type=float, default=10.0, help="seconds of each clip from its start")
    ap.add_argument("--limit", type=int, default=None, help="first N clips (by name)")
    ap.add_argument("--griffin-lim", action="store_true", help="add the weight-free Griffin-Lim rows")
    ap.add_argument(
        "--gl-from-vocoder", action="store_true", help="add Griffin-Lim rows started from the vocoder's phase"
    )
    ap.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations (default: %(default)s)")
    ap.add_argument("--save-audio", default=None, help="write the reconstructions under this folder")
    ap.add_argument("--json", default=None, help="write the full report (per-clip values) here")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, args.threads))
    clips_by_rate: dict = {}
    report: dict = {"args": vars(args)}
    report["model"] = score_model(args.model, clips_by_rate, args)
    src_name = args.audio or f"bank split {args.bank_split!r} (seed {args.split_seed})"
    m = report["model"]
    print(f"{src_name}: {m['num_clips']} clips, {m['audio_seconds']} s")
    print(f"\nmodel {args.model} (resynthesis {m['resynthesis_seconds']} s)\n" + table(m))
    print(f"mel VAE alone (log-mel L1 of its reconstruction, no vocoder): {m['vae_mel_l1']:.4f}")
    if args.compare:
        report["compare"] = score_model(args.compare, clips_by_rate, args)
        c = report["compare"]
        print(f"\nmodel {args.compare} (resynthesis {c['resynthesis_seconds']} s)\n" + table(c))
        print(f"mel VAE alone (log-mel L1 of its reconstruction, no vocoder): {c['vae_mel_l1']:.4f}")
        report["differences"] = compare(m, c)
        print(
            "\npaired differences (compare - model), 95% bootstrap interval over clips, share of clips better:"
        )
        for k, d in report["differences"].items():
            print(f"  {k}: {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}], better on {d['better']:.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
