"""``foleykit eval``: the evaluation suite over folders of generated / reference audio and videos.

    foleykit eval --generated DIR [--reference DIR] [--videos DIR] [--metrics LIST] [--json OUT.json]
                  [--av-align-variant reference|legacy] [--aa-align-variant reference|one-to-one]
                  [--onset-mode reference|strict] [--workers N] ...

Files pair by stem across audio / video extensions; pairing is checked first and every unpaired file is
listed. The default runs every metric whose inputs were given. A Markdown table goes to stdout, the JSON
report (``{"metrics": {NAME: {"mean", "per_file"}}, "config": {...}}``) to ``--json`` (written atomically).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from foleykit.cli._args import number, positive_int

METRIC_HELP = (
    "av_align, aa_align, onset (onset_acc + onset_ap), e_l1, rms_acc, energy_mae, loudness (loudness_corr + "
    "loudness_margin), fd, fad, kl, is, match (match_rank), clap"
)


_positive_float_or_none = number(
    float, minimum=0, strict=True, unit="seconds", none_words=("none", "all", "full")
)


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="evaluate generated audio (AV-Align, AA-Align, onsets, E-L1, energy, loudness, FD/KL/IS, own-sound rank, CLAP)",
        description="Evaluate generated audio against reference audio and/or the source videos. Files pair by "
        "stem (clip_01.wav <-> clip_01.flac <-> clip_01.mp4). Without --metrics, every metric whose inputs "
        "were given runs. See docs/evaluation.md for each protocol.",
    )
    p.add_argument("--generated", required=True, metavar="DIR", help="generated audio (or video) files")
    p.add_argument("--reference", metavar="DIR", help="reference / ground-truth audio, paired by stem")
    p.add_argument("--videos", metavar="DIR", help="source videos for AV-Align, paired by stem")
    p.add_argument("--metrics", metavar="LIST", help=f"comma-separated subset of: {METRIC_HELP}")
    p.add_argument("--json", metavar="OUT.json", help="write the JSON report here (atomically)")
    p.add_argument(
        "--av-align-variant",
        choices=("reference", "legacy"),
        default="reference",
        help="reference: TempoTokens HEAD (flow >= 0.1, one-to-one); legacy: original paper code",
    )
    p.add_argument(
        "--aa-align-variant",
        choices=("reference", "one-to-one"),
        default="reference",
        help="reference: STA-V2A many-to-one count; one-to-one: each reference peak matched once",
    )
    p.add_argument(
        "--onset-mode",
        choices=("reference", "strict"),
        default="reference",
        help="reference: CondFoleyGen code with its quirks; strict: quirks fixed",
    )
    p.add_argument(
        "--onset-seconds",
        type=_positive_float_or_none,
        default=2.0,
        metavar="S",
        help="onset protocol clip length (default 2, Greatest Hits; 'all' for whole clips)",
    )
    p.add_argument(
        "--energy-seconds",
        type=_positive_float_or_none,
        default=None,
        metavar="S",
        help="energy MAE window from 0 s (default: the common length of each pair)",
    )
    p.add_argument(
        "--e-l1-sample-rate",
        type=positive_int,
        default=22050,
        metavar="HZ",
        help="E-L1 sample rate (22050 T-Foley; 16000 Stable-V2A)",
    )
    p.add_argument(
        "--rms-tolerance", type=int, default=2, metavar="T", help="class tolerance of rms_acc_tolT"
    )
    p.add_argument(
        "--embedder", default="aisfx", help="embedder for fd/fad/kl/is: aisfx (offline), panns, vggish, clap"
    )
    p.add_argument(
        "--embedder-weights",
        metavar="PATH",
        help="checkpoint file / folder of the embedder (panns, vggish) or model folder (clap)",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow a full unpickling of an embedder checkpoint that holds more than tensors and numpy data "
        "(it can run code stored in the file: only for files from a source you trust)",
    )
    p.add_argument(
        "--clap-model", metavar="DIR", help="local CLAP model folder (transformers layout) for 'clap'"
    )
    p.add_argument(
        "--prompts", metavar="FILE", help="prompts for 'clap': JSON {stem: text} or 'stem<TAB>text' lines"
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=_default_workers(),
        metavar="N",
        help="parallel worker processes (default: min(8, CPUs))",
    )
    p.add_argument(
        "--allow-unpaired", action="store_true", help="evaluate paired stems only, listing the others"
    )
    p.add_argument("--skip-errors", action="store_true", help="leave out files that fail to decode (listed)")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not reuse cached video peaks / embeddings of unchanged files ($FOLEYKIT_HOME/cache/eval)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(_run=run)
    return p


def _embedder_options(args: argparse.Namespace) -> dict:
    opts: dict = {}
    if args.trust_pickle and args.embedder in ("panns", "vggish"):
        opts["trust_pickle"] = True
    if args.embedder_weights:
        opts["path" if args.embedder == "clap" else "checkpoint"] = args.embedder_weights
    return opts


def run(args: argparse.Namespace) -> int:
    from foleykit.evaluation import evaluate
    from foleykit.evaluation.pairing import load_text_map

    if args.json and Path(args.json).is_dir():
        from foleykit.errors import ConfigError

        raise ConfigError(f"--json {args.json} is a folder; give a file name")
    prompts = load_text_map(args.prompts) if args.prompts else None
    report = evaluate(
        args.generated,
        args.reference,
        args.videos,
        metrics=args.metrics,
        prompts=prompts,
        workers=args.workers,
        progress=not args.no_progress and sys.stderr.isatty(),
        allow_unpaired=args.allow_unpaired,
        skip_errors=args.skip_errors,
        cache=not args.no_cache,
        av_align_variant=args.av_align_variant,
        aa_align_variant=args.aa_align_variant,
        onset_mode=args.onset_mode,
        onset_seconds=args.onset_seconds,
        energy_seconds=args.energy_seconds,
        e_l1_sample_rate=args.e_l1_sample_rate,
        rms_tolerance=args.rms_tolerance,
        embedder=args.embedder,
        embedder_options=_embedder_options(args),
        clap_model=args.clap_model,
    )
    for problem in report.config["inputs"]["unpaired_ignored"]:
        print(f"foleykit: warning: not evaluated: {problem}", file=sys.stderr)
    for reason in report.config["not_run"] + report.config.get("warnings", []):
        print(f"foleykit: warning: {reason}", file=sys.stderr)
    for err in report.config["inputs"]["skipped_files"]:
        print(f"foleykit: warning: skipped: {err}", file=sys.stderr)
    sys.stdout.write(report.to_markdown())
    if args.json:
        path = report.write_json(args.json)
        print(f"wrote {path}", file=sys.stderr)
    return 0
