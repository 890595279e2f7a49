"""Argument types and sub-action dispatch shared by the subcommand modules (no heavy imports here)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any

EXIT_USAGE = 2


def number(
    kind: type = float,
    *,
    minimum: float | None = None,
    strict: bool = False,
    unit: str = "",
    none_words: Iterable[str] = (),
) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses ``kind`` and checks a lower bound with a clear message.

    Args:
        kind: ``int`` or ``float``.
        minimum: Lowest accepted value (None: no bound).
        strict: Reject ``minimum`` itself (``> minimum`` instead of ``>= minimum``).
        unit: Word appended to the expectation in messages (e.g. "seconds", "pixels").
        none_words: Words (case-insensitive) that parse to None, e.g. ``("all",)``.
    """
    words = {w.lower() for w in none_words}
    what = ("a whole number" if kind is int else "a number") + (f" of {unit}" if unit else "")
    if words:
        what += " or " + " / ".join(repr(w) for w in sorted(words))

    def parse(text: str) -> Any:
        if text.lower() in words:
            return None
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if minimum is not None and not (v > minimum if strict else v >= minimum):
            bound = (
                "a positive number"
                if (strict and minimum == 0)
                else f"a number {'>' if strict else '>='} {minimum:g}"
            )
            raise argparse.ArgumentTypeError(f"expected {bound}{f' of {unit}' if unit else ''}, got {text!r}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in "invalid ... value" messages
    return parse


positive_float = number(float, minimum=0, strict=True)
non_negative_float = number(float, minimum=0)
positive_int = number(int, minimum=1)


def add_expansion_argument(p: argparse.ArgumentParser) -> None:
    """``--expansion G`` of the commands that decode a predicted RMS curve (``generate``, ``controls
    predict``); its upper bound is checked with the other options (``GenerateOptions``)."""
    p.add_argument(
        "--expansion",
        type=number(float, minimum=1),
        metavar="G",
        help="valley expansion of the predicted RMS timing curve, 1..10 (default: the model's, 3 for foleykit-demo; "
        "1 = none): lower keeps quieter events such as distant footsteps, higher leaves deeper quiet between events",
    )


def threads(text: str) -> int | str:
    """``--threads`` values: a whole number >= 1, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    return positive_int(text)


threads.__name__ = "threads"


def add_process_options(
    parser: argparse.ArgumentParser, *, threads_default: int | str | None = "auto"
) -> None:
    """``--threads N|auto`` for a subcommand (and each of its sub-actions) that does not define its own (see
    :func:`apply_process_options`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                add_process_options(sub, threads_default=threads_default)
    if "--threads" in parser._option_string_actions:
        return
    parser.add_argument(
        "--threads",
        type=threads,
        default=threads_default,
        metavar="N|auto",
        help="CPU threads of torch and OpenCV in this process (default auto: all cores when the machine is "
        "idle, fewer when other work keeps them busy; $FOLEYKIT_NUM_THREADS / $OMP_NUM_THREADS are respected)",
    )


def apply_process_options(args: argparse.Namespace, *, busy: float | None = None) -> None:
    """What a ``foleykit`` command sets for its own process (library code sets none of it): the CPU thread
    count (``--threads``: a number, ``auto`` = ``foleykit.product.runtime.configure_threads``, or None = leave
    torch's) and a garbage-collector freeze at exit (``freeze_gc_at_exit``: ~1 s off every command's exit).
    ``busy``: the CPUs other work keeps busy, measured by the caller (default: measured here)."""
    from foleykit.product.runtime import configure_threads, freeze_gc_at_exit, set_threads

    freeze_gc_at_exit()
    value = getattr(args, "threads", None)
    if value == "auto":
        configure_threads(busy=busy)
    elif value is not None:
        set_threads(int(value))


def thread_count(args: argparse.Namespace) -> int | None:
    """``--threads N`` as a number (None for ``auto`` / not given)."""
    value = getattr(args, "threads", None)
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None


def start_early_features(
    args: argparse.Namespace, model: Any, video: Any, opts: Any
) -> tuple[Any, float | None]:
    """For a command that sets its own process options (``_own_process_options``) and runs a model on one video:
    measure the busy CPUs (before the child exists: it is this command's own work), then start computing the
    first window's video features in a second process (:class:`foleykit.product.early.EarlyFeatures`; None
    where it does not apply). Returns ``(early, busy)``: pass ``busy`` to :func:`apply_process_options`, load
    the model, give ``early`` to the product function, and ``early.close()`` in a ``finally``."""
    from foleykit.product.early import EarlyFeatures
    from foleykit.product.runtime import busy_cpus

    busy = busy_cpus() if getattr(args, "threads", None) == "auto" else None
    return EarlyFeatures.start(model, video, opts, threads=thread_count(args)), busy


def add_actions(
    parser: argparse.ArgumentParser, adders: Iterable[Callable[[Any], Any]], run: Callable
) -> None:
    """Give ``parser`` sub-actions (``foleykit data synth``...), each registered by one ``adder(sub)``.

    The chosen action's ``add`` function must ``set_defaults(_action=...)``; without one, ``run_action`` prints
    the help and exits 2.
    """
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    for add in adders:
        add(sub)
    parser.set_defaults(_run=run, _parser=parser)


def run_action(args: argparse.Namespace) -> int:
    """Run the sub-action chosen on the command line (see :func:`add_actions`)."""
    action = getattr(args, "_action", None)
    if action is None:
        args._parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(action(args) or 0)
