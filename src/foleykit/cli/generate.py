"""``foleykit generate``: give a video (or a folder / CSV list of videos) its sound.

    foleykit generate VIDEO -o OUT.mp4|OUT.wav [--prompt TEXT] [--negative-prompt TEXT] [--audio-prompt SOUND]
        [--control FILE | --control-from-audio SOUND] [--control-scale F] [--follow-envelope S] [--expansion G]
        [--init-audio SOUND [--init-strength S]] [--steps N]
        [--guidance F] [--seed N]
        [--start S] [--duration S] [--model NAME_OR_DIR | --backbone DIR] [--recipe NAME]
        [--keep-original-audio] [--device auto|cpu|cuda|mps]
        [--save-controls] [--regenerate START-END --from PREVIOUS]
    foleykit generate FOLDER|LIST.csv -o OUT_FOLDER [--format mp4|wav|...] [same options]

The work lives in :mod:`foleykit.product`; this module only parses and reports.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from foleykit.cli._args import add_expansion_argument, apply_process_options, number, start_early_features
from foleykit.errors import ConfigError

EXIT_BATCH_FAILURES = 1


def parse_region(text: str) -> tuple[float, float]:
    """``"START-END"`` (seconds, also ``START:END``) -> ``(start, end)`` with ``0 <= start < end``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*[-:]\s*(\d+(?:\.\d*)?|\.\d+)\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError(f"expected START-END in seconds (e.g. 2.5-4), got {text!r}")
    r0, r1 = float(m.group(1)), float(m.group(2))
    if r1 <= r0:
        raise argparse.ArgumentTypeError(f"the region's end must be after its start, got {text!r}")
    return r0, r1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``foleykit generate``."""
    p = subparsers.add_parser(
        "generate",
        help="generate the sound of a video (or of a folder / CSV list of videos)",
        description="Generate a soundtrack that follows the video's timing. OUT.mp4/.mov/.mkv/.webm: the input "
        "picture untouched with the new sound (re-encoded only when the container cannot hold its codec); "
        "OUT.wav/.flac: the sound alone. A sidecar OUT.json (e.g. take.mp4.json) records every setting "
        "(seed, model, versions, input fingerprints) to reproduce it (`foleykit reproduce`). Videos of any "
        "length are generated in overlapping windows joined at scene cuts where possible.",
    )
    p.add_argument("video", help="video file, or a folder of videos / a .csv list (path,prompt,... columns)")
    p.add_argument("-o", "--output", required=True, help="output file (batch: output folder)")
    p.add_argument("--prompt", help="what it should sound like (text)")
    p.add_argument("--negative-prompt", help="what it should not sound like")
    p.add_argument("--audio-prompt", metavar="SOUND", help="reference sound whose timbre to follow")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--control", metavar="FILE", help="timing curve (.csv/.json, e.g. from `controls predict`)"
    )
    g.add_argument("--control-from-audio", metavar="SOUND", help="take the timing from a reference recording")
    p.add_argument(
        "--control-scale",
        type=number(float, minimum=0),
        metavar="F",
        help="how strongly the timing curve is followed (default: the model's, usually 1)",
    )
    p.add_argument(
        "--follow-envelope",
        type=number(float, minimum=0),
        metavar="S",
        help="0..1: after generation, make the loudness follow the RMS timing curve exactly "
        "(a gain stage; 1 = fully, default: the model's, 0 = off)",
    )
    add_expansion_argument(p)
    p.add_argument(
        "--init-audio",
        metavar="SOUND",
        help="start from this recording instead of noise: a copy lands on every hit of the timing curve and "
        "its loudness follows the curve, so the recording decides WHAT and the picture WHEN",
    )
    p.add_argument(
        "--init-strength",
        type=number(float, minimum=0, strict=True),
        metavar="S",
        help="with --init-audio: how much is regenerated, 0..1 (default 0.8; 1 keeps only the timing, "
        "lower keeps more of the recording)",
    )
    p.add_argument(
        "--steps", type=number(int, minimum=1), metavar="N", help="sampling steps (default: the model's)"
    )
    p.add_argument(
        "--guidance",
        type=number(float, minimum=0),
        metavar="F",
        help="classifier-free guidance scale (default: the model's)",
    )
    p.add_argument(
        "--seed", type=number(int, minimum=0), metavar="N", help="random seed (default: random, recorded)"
    )
    p.add_argument("--start", type=number(float, minimum=0), metavar="S", help="generate from this time (s)")
    p.add_argument(
        "--duration",
        type=number(float, minimum=0, strict=True),
        metavar="S",
        help="generate this many seconds",
    )
    p.add_argument(
        "--model",
        metavar="NAME_OR_DIR",
        help="model name or folder (default: foleykit-demo); also a published AudioLDM / Stable Audio Open "
        "folder (diffusers layout) or its hub id in the local HF cache",
    )
    p.add_argument(
        "--backbone",
        metavar="DIR",
        help="a published AudioLDM / Stable Audio Open folder (or cached hub id) to run with --recipe; the "
        "same as --model DIR",
    )
    p.add_argument(
        "--recipe",
        metavar="NAME",
        help="with a published backbone folder: the recipe to run it with (default: the backbone's, rewas "
        "for AudioLDM, stable_v2a for Stable Audio Open)",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow model folders whose weights are pickles (.bin) (loading one can run code stored in the "
        "file: only for folders from a source you trust); safetensors need no flag",
    )
    p.add_argument(
        "--keep-original-audio",
        action="store_true",
        default=None,
        help="video outputs: keep the source's sound as a second track",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where to run")
    p.add_argument(
        "--save-controls",
        action="store_true",
        help="also write the timing curve used (OUT.timing.csv, e.g. take.mp4.timing.csv) and OUT.timing.png",
    )
    p.add_argument(
        "--regenerate",
        type=parse_region,
        metavar="START-END",
        help="regenerate only this region of a previous result (with --from)",
    )
    p.add_argument(
        "--from",
        dest="previous",
        metavar="PREVIOUS",
        help="the previous result (.mp4/.wav...) whose sound is kept outside --regenerate",
    )
    p.add_argument(
        "--window",
        type=number(float, minimum=0, strict=True),
        metavar="S",
        help="longest window for long videos (default: the model's clip length)",
    )
    p.add_argument(
        "--overlap",
        type=number(float, minimum=0, strict=True),
        metavar="S",
        help="overlap of consecutive windows (default: a fifth of the window, at most 1 s)",
    )
    p.add_argument(
        "--no-scene-cuts",
        dest="scene_cuts",
        action="store_false",
        default=None,
        help="do not align window edges with detected scene cuts",
    )
    p.add_argument("--format", default="mp4", help="batch: output format (mp4, mov, mkv, webm, wav, flac)")
    # the process options (threads: torch) are applied by run(), after the early video work has started
    p.set_defaults(_run=run, _own_process_options=True)
    return p


#: Options copied from a previous result's sidecar when regenerating (unless given again).
_INHERITED = (
    "prompt",
    "negative_prompt",
    "audio_prompt",
    "control",
    "control_from_audio",
    "control_scale",
    "init_audio",
    "init_strength",
    "follow_envelope",
    "expansion",
    "steps",
    "guidance",
    "start",
    "duration",
    "window",
    "overlap",
    "scene_cuts",
    "keep_original_audio",
)


def _options(args: argparse.Namespace, previous: dict | None):
    from foleykit.product.generate import GenerateOptions

    values = {k: getattr(args, k) for k in _INHERITED}
    if previous is not None:
        old = previous.get("parameters", {})
        for k in _INHERITED:
            if values[k] is None and old.get(k) is not None:
                values[k] = old[k]
        if (
            args.control is not None or args.control_from_audio is not None
        ):  # a new timing replaces the old one (and an inherited expansion of the old predicted curve)
            values["control"], values["control_from_audio"] = args.control, args.control_from_audio
            values["expansion"] = args.expansion
    seed = args.seed
    if seed is None and previous is not None and isinstance(previous.get("parameters", {}).get("seed"), int):
        seed = previous["parameters"]["seed"] + 1  # a regeneration with the old seed would sound the same
    values["start"] = values["start"] or 0.0
    values["scene_cuts"] = True if values["scene_cuts"] is None else bool(values["scene_cuts"])
    values["keep_original_audio"] = bool(values["keep_original_audio"])
    return GenerateOptions(
        seed=seed,
        save_controls=args.save_controls,
        regenerate=args.regenerate,
        previous=args.previous,
        **values,
    )


def _note(text: str) -> None:
    print(f"foleykit: note: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Generate one video, or a batch (folder / CSV) with a summary; see the module docstring."""
    from foleykit.pipelines.trust import trusting_pickle
    from foleykit.product.batch import is_batch_input

    trusted = trusting_pickle() if getattr(args, "trust_pickle", False) else contextlib.nullcontext()
    with _terminate_like_interrupt(), trusted:
        if is_batch_input(args.video):
            apply_process_options(args)
            return _run_batch(args)
        return _run_single(args)


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """SIGTERM (a job scheduler, ``kill``, ``timeout``) ends the run like Ctrl-C: the KeyboardInterrupt
    unwinds through every atomic write, so no temporary file is left behind (exit code 130)."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():  # signals can only be set there
        yield
        return
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _run_single(args: argparse.Namespace) -> int:
    from foleykit.product.checks import check_inputs, model_control_kinds
    from foleykit.product.outputs import check_same_video, read_sidecar, write_outputs
    from foleykit.product.runtime import gc_paused_while_loading

    started = time.time()
    previous = None
    if args.previous is not None:
        if not Path(args.previous).is_file():
            raise ConfigError(f"--from {args.previous}: no such file (the previous result to keep)")
        previous = read_sidecar(args.previous)
        if previous is None:
            _note(
                f"no sidecar next to {args.previous}: the original settings are not known (defaults are used) "
                "and it cannot be checked that it was made from this video"
            )
    opts = _options(args, previous)
    model, recipe = _model_and_recipe(args, previous)
    # every input is checked before the model loads (seconds): video, output, sounds, control file, --from
    checked = check_inputs(
        args.video, args.output, opts, kinds=model_control_kinds(model) if not recipe else None
    )
    if args.previous is not None:
        check_same_video(previous, args.video, args.previous)  # a take of another video is refused
    for n in checked.notes:
        _note(n)
    # the first window's video features are computed in a second process while this one imports torch and
    # loads the model (foleykit.product.early; the result is used only when it is exactly what the model computes)
    early, busy = start_early_features(args, model, args.video, opts)
    try:
        with gc_paused_while_loading():
            apply_process_options(args, busy=busy)
            from foleykit.product.generate import generate_audio
            from foleykit.product.runtime import load_model, resolve_device

            device = resolve_device(args.device)
            pipe = load_model(model, device=device, recipe=recipe)
        _load_note(pipe)
        origin = float(((previous or {}).get("output") or {}).get("segment", [0.0])[0])
        bar = _WindowBar(Path(args.video).name)
        try:
            result = generate_audio(pipe, args.video, opts, previous_origin=origin, progress=bar, early=early)
        finally:
            bar.close()
    finally:
        if early is not None:
            early.close()
    for n in result.notes:
        _note(n)
    written = write_outputs(
        result,
        args.video,
        args.output,
        opts,
        model_info=_model_info(pipe, args.model or args.backbone),
        device=device,
        video_plan=checked.plan,
        started=started,
    )
    extra = ", ".join(str(p) for k, p in written.items() if k != "output")
    what = (
        f"regenerated {result.regenerated['region'][0]:g}-{result.regenerated['region'][1]:g} s"
        if result.regenerated
        else f"{len(result.windows)} window(s)"
    )
    print(
        f"{written['output']}: {result.end - result.start:.2f} s of sound ({what}, seed {result.seed}) in "
        f"{result.timings['total']:.1f} s; {extra}"
    )
    return 0


def _model_and_recipe(args: argparse.Namespace, previous: dict | None) -> tuple[str | None, str | None]:
    """``--model`` / ``--backbone`` (one of them) and ``--recipe``; a regeneration reuses the previous
    result's model (and, for a published backbone, its recipe)."""
    if args.model is not None and args.backbone is not None:
        raise ConfigError("give --model or --backbone, not both (--backbone DIR is the same as --model DIR)")
    old = (previous or {}).get("model") or {}
    model = args.model or args.backbone or old.get("path")
    recipe = args.recipe
    if recipe is None and model == old.get("path") and old.get("backbone"):
        recipe = old.get("recipe")
    return model, recipe


def _load_note(pipe) -> None:
    """The one line saying what a published backbone runs without (untrained parts), if anything."""
    note = (getattr(pipe, "model_info", None) or {}).get("note")
    if note:
        _note(note)


def _model_info(pipe, name: str | None) -> dict:
    info = dict(getattr(pipe, "model_info", {}) or {})
    if name is not None:
        info["name"] = name
    return info


class _WindowBar:
    """A tqdm bar over the windows of a long video (shown on a terminal, when there is more than one)."""

    def __init__(self, label: str) -> None:
        self.label, self.bar = label, None

    def __call__(self, done: int, total: int) -> None:
        if total < 2:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.label, unit="window", disable=None)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_batch(args: argparse.Namespace) -> int:
    from foleykit.product.batch import check_items, collect_items, run_batch
    from foleykit.product.checks import model_control_kinds
    from foleykit.product.runtime import (
        gc_paused_while_loading,
        load_model,
        resolve_device,
        shard,
        shard_info,
    )

    if args.regenerate is not None or args.previous is not None:
        raise ConfigError("--regenerate works on one video at a time, not on a folder or a list")
    opts = _options(args, None)
    opts.check()
    items = collect_items(args.video, args.output, fmt=args.format)
    from foleykit.product.batch import skipped_subfolders

    nested = skipped_subfolders(args.video)
    if nested:  # a folder batch takes the videos directly inside it
        names = ", ".join(d.name for d in nested[:5]) + (
            f" and {len(nested) - 5} more" if len(nested) > 5 else ""
        )
        _note(f"sub-folders are not searched; skipped (they hold videos): {names}")
    rank, world = shard_info()
    mine = shard(items, rank, world)
    if world > 1:
        print(f"process {rank + 1} of {world}: {len(mine)} of {len(items)} videos", file=sys.stderr)
    if not mine:
        print(f"process {rank + 1} of {world}: nothing to do", file=sys.stderr)
        return 0
    model, recipe = _model_and_recipe(args, None)
    # every row is checked before the model loads; a bad one fails alone (named by its CSV line)
    if not check_items(mine, opts, kinds=model_control_kinds(model) if not recipe else None):
        summary = run_batch(None, mine, opts, log=lambda s: print(s, file=sys.stderr))
        print(summary.text(rank, world))
        return EXIT_BATCH_FAILURES
    device = resolve_device(args.device)
    with gc_paused_while_loading():
        pipe = load_model(model, device=device, recipe=recipe)
    _load_note(pipe)
    summary = run_batch(
        pipe,
        mine,
        opts,
        model_info=_model_info(pipe, model),
        device=device,
        log=lambda s: print(s, file=sys.stderr),
    )
    print(summary.text(rank, world))
    return 0 if summary.ok else EXIT_BATCH_FAILURES
