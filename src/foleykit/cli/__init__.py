"""The ``foleykit`` command line.

Each subcommand lives in its own module ``foleykit.cli.<name>`` exposing

    def add_parser(subparsers) -> argparse.ArgumentParser   # registers the subcommand
    def run(args: argparse.Namespace) -> int                 # executes it, returns the exit code

Heavy imports (torch, diffusers...) happen inside ``run`` so that ``foleykit --help`` is instant.
Every FoleykitError becomes one clear message on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

from foleykit import __version__
from foleykit.cli._args import add_process_options, apply_process_options
from foleykit.errors import FoleykitError

#: Subcommand modules, in help order.
SUBCOMMANDS = ("generate", "reproduce", "controls", "eval", "train", "data", "models", "app")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foleykit",
        description="Give silent video its sound: timing-controlled video-to-audio generation.",
    )
    parser.add_argument("--version", action="version", version=f"foleykit {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"foleykit.cli.{name}")
        except ModuleNotFoundError as e:  # a subcommand module that is not part of this build
            if e.name == f"foleykit.cli.{name}":
                continue
            raise
        add_process_options(module.add_parser(sub))
    return parser


@contextlib.contextmanager
def _library_warnings(*, shown: bool) -> Iterator[None]:
    """While a command runs, the libraries' FutureWarning / DeprecationWarning (torch, diffusers,
    transformers, librosa... announcing API changes to developers) stay off the terminal, unless ``-v`` or
    ``python -W`` asks for them. Only the CLI does this: importing foleykit changes no warning filter."""
    with warnings.catch_warnings():
        if not shown:
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
        yield


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``foleykit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        if not getattr(args, "_own_process_options", False):  # else the command applies them itself
            apply_process_options(args)
        with _library_warnings(shown=bool(args.verbose) or bool(sys.warnoptions)):
            return int(args._run(args) or 0)
    except FoleykitError as e:
        print(f"foleykit: error: {e}", file=sys.stderr)
        if os.environ.get("FOLEYKIT_TRACEBACK"):
            raise
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("foleykit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # python -m foleykit.cli
    sys.exit(main())
