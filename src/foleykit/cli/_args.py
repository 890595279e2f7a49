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
