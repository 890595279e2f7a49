"""``foleykit data``: sound banks, synthetic data, audio-only examples, feature caches and filters.

foleykit data prepare-bank [--output DIR] [--deb FILE | --extracted DIR | --procedural] [--force]
                           [--no-stamps | --stamps-deb FILE | --stamps-extracted DIR]
foleykit data prepare-photos [--output DIR] [--opencv-deb FILE | --opencv-extracted DIR]
                             [--stamps-deb FILE | --stamps-extracted DIR] [--skimage-wheel FILE | --skimage-data DIR]
foleykit data bank-info [--bank DIR] [--split-seed S]
foleykit data synth --bank DIR --output DIR --num-clips N [--split train|validation|test|all] [--seed S]
                    [--style photoreal|flat] [--photos DIR] [--duration D] [--size WxH] [--fps F]
                    [--workers W] [--scenes footsteps,...] [--no-audio-track]
foleykit data events --bank DIR --output DIR --num N [--split NAME] [--seed S] [--duration D]
foleykit data cache --input MANIFEST_OR_DIR --output DIR --extract rms,energy,motion,... [--workers W]
foleykit data filter --input MANIFEST_OR_DIR --output KEPT.csv [--av-align-min 0.2]
                        [--clap-min 0.3 --clap-model DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from foleykit.cli._args import add_actions, positive_float, positive_int, run_action
from foleykit.errors import DataError

SPLIT_CHOICES = ("train", "validation", "test", "all")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 160x120, got {text!r}") from None
    return w, h


def _bank_dir(arg: str | None) -> Path:
    from foleykit.data.ufoai import default_bank_dir

    p = Path(arg).expanduser() if arg else default_bank_dir()
    if not p.is_dir():
        hint = "run `foleykit data prepare-bank` first" if not arg else "check the path"
        raise DataError(f"sound bank {p} does not exist; {hint}")
    return p


def _print_split(bank_dir: Path, split_seed: int) -> None:
    from foleykit.data.bank import SPLITS, SoundBank, split_bank

    bank = SoundBank(bank_dir)
    split = split_bank(bank, seed=split_seed)
    print(f"{bank}: licences {bank.licenses()}")
    print(f"{'category':24s} {'files':>5s} " + " ".join(f"{s:>10s}" for s in SPLITS))
    counts = bank.counts()
    for cat, row in split.counts().items():
        print(f"{cat:24s} {counts[cat]:5d} " + " ".join(f"{row[s]:10d}" for s in SPLITS))
    tot = split.totals()
    print(f"{'total':24s} {len(bank):5d} " + " ".join(f"{tot[s]:10d}" for s in SPLITS))


# --- prepare-bank / bank-info ------------------------------------------------------------------------------
def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare-bank",
        help="build the default sound bank from Debian's ufoai-sound",
        description="Download (apt-get download ufoai-sound), extract and organise the default "
        "sound bank into categories, with its licence and attribution. Idempotent.",
    )
    p.add_argument("--output", help="bank folder (default $FOLEYKIT_HOME/banks/ufoai)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--deb", help="use this ufoai-sound_*.deb instead of apt-get download")
    src.add_argument("--extracted", help="use a dpkg-deb -x folder of the package (or an unzipped 0snd.pk3)")
    src.add_argument(
        "--procedural",
        action="store_true",
        help="make the offline procedural bank instead (DSP-synthesised, CC0; default output "
        "$FOLEYKIT_HOME/banks/procedural)",
    )
    stamps = p.add_mutually_exclusive_group()
    stamps.add_argument(
        "--no-stamps",
        action="store_true",
        help="leave out the Tux Paint stamp sounds (animals, tools, instruments...; apt-get download "
        "tuxpaint-stamps-default otherwise)",
    )
    stamps.add_argument("--stamps-deb", help="use this tuxpaint-stamps-default_*.deb")
    stamps.add_argument("--stamps-extracted", help="use a dpkg-deb -x folder of tuxpaint-stamps-default")
    p.add_argument("--force", action="store_true", help="rebuild even when the bank is complete")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the split shown at the end")
    p.set_defaults(_action=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from foleykit.data.ufoai import prepare_default_bank

    t0 = time.perf_counter()
    if args.procedural:
        from foleykit.data.procedural import make_procedural_bank
        from foleykit.paths import foleykit_home

        out = Path(args.output).expanduser() if args.output else foleykit_home() / "banks" / "procedural"
        if args.force or not (out / "bank.json").is_file():
            make_procedural_bank(out)
    else:
        out = prepare_default_bank(
            args.output,
            deb=args.deb,
            extracted=args.extracted,
            force=args.force,
            stamps=not args.no_stamps,
            stamps_deb=args.stamps_deb,
            stamps_extracted=args.stamps_extracted,
        )
    print(f"bank ready at {out} ({time.perf_counter() - t0:.1f} s)")
    _print_split(out, args.split_seed)
    return 0


def _add_photos(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare-photos",
        help="fetch and index the real photos and cut-outs of photo-real synthetic clips",
        description="Backgrounds (opencv-doc example photos, scikit-image / scikit-learn samples), floor and "
        "fabric textures, and Tux Paint photo cut-outs (paired with their own sounds), with licences, into "
        "$FOLEYKIT_HOME/photos (apt-get download opencv-doc and tuxpaint-stamps-default; pip download "
        "scikit-image unless it is installed). Idempotent.",
    )
    p.add_argument("--output", help="photo folder (default $FOLEYKIT_HOME/photos)")
    ocv = p.add_mutually_exclusive_group()
    ocv.add_argument("--opencv-deb", help="use this opencv-doc_*.deb")
    ocv.add_argument("--opencv-extracted", help="use a dpkg-deb -x folder of opencv-doc")
    st = p.add_mutually_exclusive_group()
    st.add_argument("--stamps-deb", help="use this tuxpaint-stamps-default_*.deb")
    st.add_argument("--stamps-extracted", help="use a dpkg-deb -x folder of tuxpaint-stamps-default")
    sk = p.add_mutually_exclusive_group()
    sk.add_argument("--skimage-wheel", help="use this scikit_image-*.whl (only its data files are read)")
    sk.add_argument("--skimage-data", help="use a folder holding scikit-image's data files")
    p.add_argument("--sklearn-images", help="folder with china.jpg / flower.jpg (default: scikit-learn's)")
    p.add_argument("--force", action="store_true", help="rebuild even when the library is complete")
    p.add_argument(
        "--bank", help="sound bank whose split the paired cut-outs follow (default: the prepared one)"
    )
    p.add_argument("--split-seed", type=int, default=0)
    p.set_defaults(_action=_run_photos)


def _run_photos(args: argparse.Namespace) -> int:
    from foleykit.data.bank import SoundBank, split_bank
    from foleykit.data.photos import PhotoLibrary, prepare_photos, split_photos

    t0 = time.perf_counter()
    out = prepare_photos(
        args.output,
        opencv_deb=args.opencv_deb,
        opencv_extracted=args.opencv_extracted,
        stamps_deb=args.stamps_deb,
        stamps_extracted=args.stamps_extracted,
        skimage_data=args.skimage_data,
        skimage_wheel=args.skimage_wheel,
        sklearn_images=args.sklearn_images,
        force=args.force,
    )
    lib = PhotoLibrary(out)
    print(
        f"photos ready at {out} ({time.perf_counter() - t0:.1f} s): {len(lib.photos)} pictures, licences {lib.licenses()}"
    )
    bank_split = None
    try:
        bank_split = split_bank(SoundBank(_bank_dir(args.bank)), seed=args.split_seed)
    except DataError:
        print("(no sound bank found: paired cut-outs are split on their own; run prepare-bank first)")
    for kind, row in split_photos(lib, seed=args.split_seed, bank_split=bank_split).totals().items():
        print(f"{kind:12s} " + " ".join(f"{s} {n:4d}" for s, n in row.items()))
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bank-info", help="category and train/validation/test counts of a bank")
    p.add_argument("--bank", help="bank folder (default: the prepared default bank)")
    p.add_argument("--split-seed", type=int, default=0)
    p.set_defaults(_action=lambda a: (_print_split(_bank_dir(a.bank), a.split_seed), 0)[1])


# --- synth ------------------------------------------------------------------------------------------------
def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="render synthetic audio-visual clips with exactly synchronised sounds",
        description="Clips whose visible contacts carry sound-bank events. --style photoreal (default): real "
        "photo backgrounds and floors, photo cut-outs that drop, bounce, shatter, strike or call, a textured "
        "walker, camera moves, blur, noise, codec artefacts, per-clip size and frame rate (needs "
        "`foleykit data prepare-photos`); --style flat: the drawn scenes of the previous release. Writes "
        "<id>.mp4 (+AAC), <id>.wav (lossless), <id>.json and a manifest.csv per split.",
    )
    p.add_argument("--bank", help="sound bank folder (default: the prepared default bank)")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument(
        "--num-clips", type=positive_int, required=True, help="clips (with --split all: in total, 80/10/10)"
    )
    p.add_argument("--split", choices=SPLIT_CHOICES, default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--split-seed", type=int, default=0, help="seed of the bank and photo splits (keep it fixed)"
    )
    p.add_argument("--style", choices=("photoreal", "flat"), default="photoreal", help="default photoreal")
    p.add_argument("--photos", help="photo library (default $FOLEYKIT_HOME/photos; photoreal only)")
    p.add_argument("--duration", type=positive_float, default=10.0, help="clip seconds (default 10)")
    p.add_argument(
        "--size",
        type=_size,
        help="WIDTHxHEIGHT (flat default 160x120; photoreal: varies per clip unless given)",
    )
    p.add_argument(
        "--fps", type=positive_float, help="frame rate (flat default 25; photoreal: 12-60 per clip)"
    )
    p.add_argument("--workers", type=positive_int, default=1)
    p.add_argument("--scenes", help="comma-separated subset of the style's scenes (flat: footsteps,impact,"
                   "break,door; photoreal: footsteps,impact,break,animal,strike,launch,walkdepth; default: "
                   "all but launch and walkdepth)")  # fmt: skip
    p.add_argument(
        "--no-audio-track", action="store_true", help="write silent mp4s (the wav still holds the sound)"
    )
    p.add_argument("--start-index", type=int, default=0, help="index of the first clip (extend a dataset)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(_action=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from foleykit.data.synth import SynthConfig, synthesize

    base = SynthConfig(style=args.style)
    kw = {}
    if args.scenes:
        names = [s.strip() for s in args.scenes.split(",") if s.strip()]
        bad = [s for s in names if s not in base.scene_names]
        if bad or not names:
            raise DataError(
                f"unknown scene(s) {bad or args.scenes!r} for --style {args.style}; "
                f"choose among {', '.join(base.scene_names)}"
            )
        if args.style == "photoreal":
            from foleykit.data.photoreal import SCENE_WEIGHTS as named
        else:
            named = base.weights
        kw["scene_weights"] = {s: named[s] for s in names}
    size = args.size or (160, 120)
    cfg = SynthConfig(
        width=size[0],
        height=size[1],
        fps=args.fps or 25.0,
        duration=args.duration,
        mp4_audio=not args.no_audio_track,
        style=args.style,
        vary_size=args.style == "photoreal" and args.size is None,
        vary_fps=args.style == "photoreal" and args.fps is None,
        photos=str(Path(args.photos).expanduser()) if args.photos else None,
        **kw,
    )
    report = synthesize(
        _bank_dir(args.bank),
        args.output,
        num_clips=args.num_clips,
        split=args.split,
        seed=args.seed,
        config=cfg,
        workers=args.workers,
        split_seed=args.split_seed,
        progress=not args.no_progress,
        start_index=args.start_index,
    )
    n = sum(report.written.values())
    look = (
        f"{cfg.width}x{cfg.height} at {cfg.fps:g} fps"
        if not (cfg.vary_size or cfg.vary_fps)
        else f"{'varied sizes' if cfg.vary_size else f'{cfg.width}x{cfg.height}'}, "
        f"{'varied frame rates' if cfg.vary_fps else f'{cfg.fps:g} fps'}"
    )
    print(
        f"wrote {n} clips ({report.written}), skipped {sum(report.skipped.values())} existing, "
        f"{report.seconds:.1f} s, {report.clips_per_second:.2f} clips/s "
        f"({args.style}, {look}, {cfg.duration:g} s, {args.workers} worker(s))"
    )
    return 0


# --- events ----------------------------------------------------------------------------------------------
def _add_events(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("events", help="write audio-only event sequences (wav + json + manifest.csv)")
    p.add_argument("--bank", help="sound bank folder (default: the prepared default bank)")
    p.add_argument("--output", required=True)
    p.add_argument("--num", type=positive_int, required=True)
    p.add_argument("--split", choices=SPLIT_CHOICES[:3], default="train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--duration", type=positive_float, default=10.0)
    p.set_defaults(_action=_run_events)


def _run_events(args: argparse.Namespace) -> int:
    import csv
    import io

    from foleykit.config import SequenceConfig
    from foleykit.data.bank import SoundBank, split_bank
    from foleykit.data.events import EventSequenceGenerator
    from foleykit.media import write_audio
    from foleykit.utils.io import atomic_write_json, atomic_write_text

    seq = SequenceConfig(duration=args.duration)
    bank = SoundBank(_bank_dir(args.bank), sample_rate=seq.sample_rate)
    gen = EventSequenceGenerator(
        bank, seq=seq, split=split_bank(bank, seed=args.split_seed), split_name=args.split
    )
    out = Path(args.output)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("path", "caption", "start", "end", "category"))
    for i in range(args.num):
        ex = gen.example(args.seed, i)
        name = f"{args.split}-{i:06d}"
        write_audio(out / f"{name}.wav", ex.audio, seq.sample_rate)
        atomic_write_json(out / f"{name}.json", {"id": name, "audio": f"{name}.wav", **ex.to_dict()})
        w.writerow((f"{name}.wav", ex.caption, 0.0, args.duration, ex.category))
    atomic_write_text(out / "manifest.csv", buf.getvalue())
    print(f"wrote {args.num} examples to {out}")
    return 0


# --- cache -------------------------------------------------------------------------------------------------
def _add_cache(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="compute features / controls for a dataset once (resumable, parallel)")
    p.add_argument("--input", required=True, help="manifest .csv or folder of clips")
    p.add_argument("--output", required=True, help="cache folder")
    p.add_argument(
        "--extract", required=True, help="comma-separated: audio,rms,energy,onsets,motion,frames,events"
    )
    p.add_argument("--workers", type=positive_int, default=1)
    p.add_argument(
        "--duration", type=positive_float, default=10.0, help="model window (SequenceConfig.duration)"
    )
    p.add_argument(
        "--frame-size", type=positive_int, default=64, help="frames extractor: short side in pixels"
    )
    p.add_argument(
        "--motion-size", type=positive_int, default=128, help="motion extractor: short side in pixels"
    )
    p.add_argument("--shard-size", type=positive_int, default=64)
    p.add_argument("--overwrite", action="store_true", help="replace a cache made with other settings")
    p.set_defaults(_action=_run_cache)


def _run_cache(args: argparse.Namespace) -> int:
    from foleykit import registry
    from foleykit.config import SequenceConfig
    from foleykit.data.cache import build_cache

    names = [n.strip() for n in args.extract.split(",") if n.strip()]
    if "latents" in names:
        raise DataError(
            "the latents extractor needs an autoencoder object: build it from Python with "
            "build_cache(..., extractors=[LatentsExtractor(encoder=vae), ...]) (the trainer does)"
        )
    valid = registry.names("extractor")
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise DataError(
            f"unknown extractor(s) {bad or args.extract!r}; "
            f"valid: {', '.join(v for v in valid if v != 'latents')}"
        )
    t0 = time.perf_counter()
    r = build_cache(
        args.input,
        args.output,
        extractors=names,
        seq=SequenceConfig(duration=args.duration),
        workers=args.workers,
        shard_size=args.shard_size,
        overwrite=args.overwrite,
        options={"frames": {"size": args.frame_size}, "motion": {"size": args.motion_size}},
    )
    dt = time.perf_counter() - t0
    rate = f", {r['computed'] / dt:.2f} clips/s" if r["computed"] else ""
    print(
        f"cache {args.output}: {r['computed']} computed, {r['skipped']} already there, {r['total']} clips "
        f"({dt:.1f} s{rate})"
    )
    return 0


# --- filter ------------------------------------------------------------------------------------------------
def _add_filter(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "filter", help="keep clips passing AV-Align / CLAP / caption filters (STA-V2A, VTA-LDM)"
    )
    p.add_argument("--input", required=True, help="manifest .csv or folder of clips")
    p.add_argument("--output", required=True, help="manifest .csv of the kept clips (+ <name>.report.csv)")
    p.add_argument("--av-align-min", type=float, default=0.2, help="AV-Align threshold (negative: no filter)")
    p.add_argument("--clap-min", type=float, help="CLAP text-audio threshold (e.g. 0.3; needs --clap-model)")
    p.add_argument("--clap-model", help="local CLAP folder")
    p.add_argument(
        "--keywords",
        default="speech",
        help="'speech' (default list), 'none', or comma-separated words that drop a clip",
    )
    p.set_defaults(_action=_run_filter)


def _run_filter(args: argparse.Namespace) -> int:
    from foleykit.data.filters import SPEECH_KEYWORDS, filter_records, load_clap, write_filtered_manifest
    from foleykit.data.manifest import load_records

    if args.clap_min is not None and not args.clap_model:
        raise DataError(
            "--clap-min needs --clap-model DIR (a local CLAP folder); foleykit never downloads weights"
        )
    records = load_records(args.input)
    kw = {"speech": SPEECH_KEYWORDS, "none": ()}.get(
        args.keywords, tuple(k.strip() for k in args.keywords.split(",") if k.strip())
    )
    clap = load_clap(args.clap_model) if args.clap_model else None
    results = filter_records(
        records,
        av_align_min=args.av_align_min if args.av_align_min >= 0 else None,
        clap_min=args.clap_min,
        clap=clap,
        keywords=kw,
    )
    kept, report = write_filtered_manifest(results, args.output)
    n = sum(r.keep for r in results)
    print(f"kept {n} of {len(results)} clips -> {kept} (scores: {report})")
    return 0


ACTIONS = (_add_prepare, _add_photos, _add_info, _add_synth, _add_events, _add_cache, _add_filter)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "data",
        help="sound banks, synthetic data, caches and filters",
        description="Sound banks, synthetic audio-visual data, audio-only examples, caches and filters.",
    )
    add_actions(parser, ACTIONS, run_action)
    return parser
