"""``foleykit controls``: timing controls from the command line.

Actions (sub-subcommands), each a pair ``_add_<action>(subparsers)`` / ``_run_<action>(args)`` registered
in :data:`ACTIONS` — add new ones (e.g. ``predict``: video -> predicted timing curve) the same way:

    foleykit controls extract INPUT --kind energy|rms|rms_class|onsets|motion -o OUT.csv|OUT.json [--plot OUT.png]
        [--size PX|full] (motion: analysis size, default 128 px; a progress bar on a terminal)
    foleykit controls plot CONTROL.csv|CONTROL.json -o OUT.png [--audio INPUT]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from foleykit.cli._args import (
    add_actions,
    add_expansion_argument,
    apply_process_options,
    non_negative_float,
    number,
    positive_float,
    run_action,
    start_early_features,
)
from foleykit.errors import ControlError

#: Default short side (pixels) at which ``--kind motion`` decodes and analyses the picture: optical flow on
#: full-size 720p frames took 6.1x real time (24.4 s for a 4 s clip, 1.4 GB); at 128 px it is a small
#: fraction of real time. ``--size full`` keeps the decoded size (the AV-Align protocol's native size).
MOTION_SIZE = 128
_FULL_WORDS = ("full", "native")
_size_px = number(int, minimum=8, unit="pixels")


def _size(text: str) -> int:
    """``--size``: pixels (>= 8), or ``full`` / ``native`` (0: as decoded)."""
    return 0 if text.strip().lower() in _FULL_WORDS else _size_px(text)


def _note(text: str) -> None:
    print(f"foleykit: note: {text}", file=sys.stderr)


def _past_end_note(args: argparse.Namespace, control: Any, what: str) -> None:
    """Say so when ``--duration`` asked for more than the input holds (the result is clipped); a control is
    allowed to fall short by one frame of its rate."""
    if args.duration is not None and control.duration < args.duration - 1.0 / control.rate - 1e-6:
        _note(
            f"--duration {args.duration:g} s from {args.start:g} s runs past the end of {what}; "
            f"the control covers {control.duration:.3f} s"
        )


class _Progress:
    """A tqdm bar on stderr for long work (shown on a terminal only): ``bar(done, total)``."""

    def __init__(self, label: str, unit: str) -> None:
        self.label, self.unit, self.bar = label, unit, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.label, unit=self.unit, disable=None, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_output(path: str, suffixes: tuple[str, ...], what: str) -> Path:
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise ControlError(f"{what} {p}: use a file name ending in {' or '.join(suffixes)}")
    if p.is_dir():
        raise ControlError(f"{what} {p} is a folder; give a file name")
    return p


# --- extract ------------------------------------------------------------------------------------------
#: Same as ``foleykit.controls.extract.KINDS`` (kept here so that ``foleykit --help`` imports no torch).
KINDS = ("energy", "rms", "rms_class", "onsets", "motion")


def _add_extract(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "extract",
        help="compute a timing control from an audio file or a video",
        description="Compute a timing control (ReWaS energy, Stable-V2A RMS envelope or its mu-law classes, "
        "onset track, optical-flow motion) from an audio file or a video, and write it as CSV "
        "(spreadsheet: time,<kind>) or JSON.",
    )
    p.add_argument("input", help="audio file or video (audio kinds use a video's audio track)")
    p.add_argument("--kind", required=True, choices=KINDS, help="which control to compute")
    p.add_argument("-o", "--output", required=True, help="output file, .csv or .json")
    p.add_argument("--plot", metavar="PNG", help="also draw the control to this .png")
    p.add_argument(
        "--rate",
        type=positive_float,
        metavar="HZ",
        help="output rate in Hz (default: energy 100, rms 125, onsets 25, motion the video fps)",
    )
    p.add_argument("--fps", type=positive_float, help="motion: decode the video at this frame rate")
    p.add_argument(
        "--size",
        type=_size,
        metavar="PX",
        help=f"motion: decode and analyse frames with this short side (default {MOTION_SIZE}; 'full': as stored)",
    )
    p.add_argument("--start", type=non_negative_float, default=0.0, metavar="S", help="segment start (s)")
    p.add_argument("--duration", type=positive_float, metavar="S", help="segment duration (s)")
    p.add_argument(
        "--no-smooth", action="store_true", help="energy: skip the Savitzky-Golay (9, 2) smoothing"
    )
    p.set_defaults(_action=_run_extract)
    return p


def _run_extract(args: argparse.Namespace) -> int:
    out = _check_output(args.output, (".csv", ".json"), "output")
    plot = _check_output(args.plot, (".png",), "plot") if args.plot else None
    if (args.fps or args.size is not None) and args.kind != "motion":
        raise ControlError("--fps and --size apply to --kind motion only")
    from foleykit.controls.extract import extract

    options = {}
    size = None
    bar = None
    if args.kind == "motion":
        size = MOTION_SIZE if args.size is None else (args.size or None)
        bar = options["progress"] = _Progress(Path(args.input).name, "frame")
    try:
        control = extract(
            args.input,
            args.kind,
            rate=args.rate,
            fps=args.fps,
            size=size,
            start=args.start,
            duration=args.duration,
            smooth=not args.no_smooth,
            **options,
        )
    finally:
        if bar is not None:
            bar.close()
    _past_end_note(args, control, Path(args.input).name)
    spectrogram = None
    if plot is not None and args.kind in ("energy", "rms", "rms_class", "onsets"):
        spectrogram = _input_mel(args.input, args.start, args.duration)
    control.save(out)
    if plot is not None:
        try:
            control.plot(plot, spectrogram=spectrogram)
        except BaseException:
            out.unlink(missing_ok=True)  # all or nothing
            raise
    print(
        f"{out}: {control.kind}, {control.num_frames} frames at {control.rate:g} Hz "
        f"({control.duration:.3f} s)" + (f"; plot {plot}" if plot else "")
    )
    return 0


def _input_mel(path: str, start: float, duration: float | None):
    from foleykit.audio import log_mel
    from foleykit.config import SequenceConfig
    from foleykit.media import read_audio

    seq = SequenceConfig()
    wav = read_audio(path, sample_rate=seq.sample_rate, start=start, duration=duration)
    return log_mel(wav, seq.sample_rate, seq)


# --- plot ---------------------------------------------------------------------------------------------
def _add_plot(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "plot",
        help="draw a control file (e.g. after editing it) to a PNG",
        description="Draw a .csv/.json control file to a PNG, optionally over the mel "
        "spectrogram of an audio file or video.",
    )
    p.add_argument("control", help="control file, .csv or .json")
    p.add_argument("-o", "--output", required=True, help="output .png")
    p.add_argument(
        "--audio", metavar="INPUT", help="draw over the mel spectrogram of this audio file / video"
    )
    p.set_defaults(_action=_run_plot)
    return p


def _run_plot(args: argparse.Namespace) -> int:
    out = _check_output(args.output, (".png",), "plot")
    from foleykit.controls.base import TemporalControl

    control = TemporalControl.load(args.control)
    spectrogram = None
    if args.audio:
        spectrogram = _input_mel(args.audio, control.start, control.duration)
    control.plot(out, spectrogram=spectrogram)
    print(f"{out}: {control.kind}, {control.num_frames} frames at {control.rate:g} Hz")
    return 0


#: name -> add-parser function; each add-parser sets ``_action``.
ACTIONS: dict[str, Callable[[argparse._SubParsersAction], argparse.ArgumentParser]] = {
    "extract": _add_extract,
    "plot": _add_plot,
}


# --- predict (the product area: foleykit.product.generate.predict_timing) -----------------------------------
def _add_predict(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict",
        help="predict a video's timing curve with a model (edit it, then `generate --control`)",
        description="Predict the timing curve the model would follow for a video (e.g. the RMS envelope of "
        "foleykit-demo) and write it as CSV (time,<kind>: edit it in a spreadsheet) or JSON. Feed "
        "the edited file back with `foleykit generate VIDEO --control FILE`.",
    )
    p.add_argument("input", help="video file")
    p.add_argument("-o", "--output", required=True, help="output file, .csv or .json")
    p.add_argument("--plot", metavar="PNG", help="also draw the curve to this .png")
    p.add_argument("--model", metavar="NAME_OR_DIR", help="model name or folder (default: foleykit-demo)")
    p.add_argument("--start", type=non_negative_float, default=0.0, metavar="S", help="segment start (s)")
    p.add_argument("--duration", type=positive_float, metavar="S", help="segment duration (s)")
    add_expansion_argument(p)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where to run")
    # the process options (threads: torch) are applied by _run_predict, after the early video work has started
    p.set_defaults(_action=_run_predict, _own_process_options=True)
    return p


def _run_predict(args: argparse.Namespace) -> int:
    out = _check_output(args.output, (".csv", ".json"), "output")
    plot = _check_output(args.plot, (".png",), "plot") if args.plot else None
    from foleykit.product.generate import GenerateOptions, check_video, predict_timing
    from foleykit.product.runtime import gc_paused_while_loading

    check_video(args.input)
    opts = GenerateOptions(start=args.start, duration=args.duration, expansion=args.expansion)
    opts.check()
    # the first window's video features are computed while this process loads the model (as in generate)
    early, busy = start_early_features(args, args.model, args.input, opts)
    try:
        with gc_paused_while_loading():
            apply_process_options(args, busy=busy)
            from foleykit.product.runtime import load_model, resolve_device

            pipe = load_model(args.model, device=resolve_device(args.device))
        controls = predict_timing(pipe, args.input, opts, early=early)
    finally:
        if early is not None:
            early.close()
    _past_end_note(args, next(iter(controls.values())), f"the video {Path(args.input).name}")
    many = len(controls) > 1
    written = []
    try:
        for name, control in controls.items():
            target = out.with_name(f"{out.stem}_{name}{out.suffix}") if many else out
            written.append(control.save(target))
            if plot is not None:
                written.append(control.plot(plot.with_name(f"{plot.stem}_{name}.png") if many else plot))
            print(
                f"{target}: predicted {control.kind}, {control.num_frames} frames at {control.rate:g} Hz "
                f"({control.duration:.3f} s)"
            )
    except BaseException:
        for p in written:  # all or nothing
            p.unlink(missing_ok=True)
        raise
    return 0


ACTIONS["predict"] = _add_predict


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``foleykit controls`` and its actions."""
    parser = subparsers.add_parser(
        "controls",
        help="extract, edit-check and plot timing controls (energy, RMS, onsets, motion)",
        description="Timing controls: the time-varying signals the generator follows.",
    )
    add_actions(parser, ACTIONS.values(), run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action; without one, print the help and exit 2."""
    return run_action(args)
