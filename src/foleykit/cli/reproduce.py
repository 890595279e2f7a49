"""``foleykit reproduce SIDECAR|OUTPUT [-o OUT]``: make a recorded result again, warning about changed inputs.

Runs the ``reproduce`` command line a sidecar records (same seed, settings and model), after comparing the
content fingerprints the sidecar recorded for every input file (video, reference sound, control file,
timing recording, previous result) with the files as they are now: each one that changed or vanished is
reported as ``foleykit: warning: ...`` (the result will then differ). The model's fingerprint is compared
after the run. Without ``-o`` the result goes next to the original as ``NAME.reproduced.EXT``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from foleykit.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``foleykit reproduce``."""
    p = subparsers.add_parser(
        "reproduce",
        help="make a recorded result again from its sidecar (warns when an input file changed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sidecar", help="a result's sidecar (take.mp4.json) or the result itself (take.mp4)")
    p.add_argument(
        "-o", "--output", help="where to write (default: NAME.reproduced.EXT next to the original)"
    )
    p.add_argument(
        "--strict", action="store_true", help="refuse (exit 2) instead of warning when an input changed"
    )
    p.set_defaults(_run=run)
    return p


def _warn(text: str) -> None:
    print(f"foleykit: warning: {text}", file=sys.stderr)


def reproduce_args(doc: dict, output: str | None) -> list[str]:
    """The ``generate`` arguments of a sidecar's ``reproduce`` command line, writing to ``output``."""
    cmd = shlex.split(str(doc.get("reproduce") or ""))
    if cmd[:2] != ["foleykit", "generate"] or "-o" not in cmd:
        raise ConfigError("the sidecar holds no `foleykit generate` command line to reproduce")
    args = cmd[1:]
    i = args.index("-o") + 1
    if output is None:
        old = Path(args[i])
        output = str(old.with_name(f"{old.stem}.reproduced{old.suffix}"))
    args[i] = output
    return args


def run(args: argparse.Namespace) -> int:
    from foleykit.cli import main
    from foleykit.product.outputs import changed_inputs, read_sidecar

    doc = read_sidecar(args.sidecar)
    if doc is None:
        raise ConfigError(
            f"{args.sidecar}: no sidecar found (give the .json written next to a result, or the result)"
        )
    gen_args = reproduce_args(doc, args.output)
    current = {
        k: v["path"] for k, v in (doc.get("inputs") or {}).items() if isinstance(v, dict) and "path" in v
    }
    if not current:
        _warn("this sidecar records no input fingerprints (an older foleykit): inputs cannot be checked")
    changed = changed_inputs(doc, current)
    if changed and args.strict:
        raise ConfigError("; ".join(changed) + " (--strict)")
    for text in changed:
        _warn(text)
    rc = main(gen_args)
    if rc == 0:
        new = read_sidecar(gen_args[gen_args.index("-o") + 1]) or {}
        before = (doc.get("model") or {}).get("fingerprint")
        after = (new.get("model") or {}).get("fingerprint")
        if before and after and before != after:
            _warn(f"the model's fingerprint changed ({before} -> {after}): its weights are not the same")
    return rc
