"""``foleykit app``: the web app (Gradio) on this machine.

foleykit app [--model M] [--host H] [--port P] [--workdir DIR] [--max-duration S] [--max-upload-mb N]
             [--trust-pickle]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from foleykit.cli._args import number
from foleykit.errors import ConfigError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``foleykit app``."""
    p = subparsers.add_parser(
        "app",
        help="start the web app (upload a video, edit the timing, generate, download)",
        description="Start the foleykit web app. It listens on 127.0.0.1 (this machine only) unless --host says "
        "otherwise, and reads and writes only inside --workdir.",
    )
    p.add_argument("--model", metavar="NAME_OR_DIR", help="model name or folder (default: foleykit-demo)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every network; default 127.0.0.1)"
    )
    p.add_argument(
        "--port", type=number(int, minimum=0, strict=True), default=7860, help="port (default 7860)"
    )
    p.add_argument(
        "--workdir", default="foleykit-app", help="the only folder the app uses (uploads, results)"
    )
    p.add_argument(
        "--max-duration",
        type=number(float, minimum=0, strict=True),
        default=60.0,
        metavar="S",
        help="longest video accepted, in seconds (default 60)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=number(int, minimum=0, strict=True),
        default=100,
        metavar="N",
        help="largest upload in MB (default 100)",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where to run")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow a model folder whose weights are pickles (.bin) (loading one can run code stored in the "
        "file: only for folders from a source you trust); safetensors need no flag",
    )
    p.set_defaults(_run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Start the server and block until Ctrl-C."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ConfigError("the web app needs gradio: pip install 'foleykit[app]'") from None
    from foleykit.app import AppConfig, launch_app
    from foleykit.product.runtime import load_model, resolve_device

    if args.port > 65535:
        raise ConfigError(f"--port {args.port}: ports go up to 65535")
    from foleykit.pipelines.trust import trusting_pickle

    with trusting_pickle(args.trust_pickle):  # an unknown or untrusted model fails here, before serving
        load_model(args.model, device=resolve_device(args.device))
    config = AppConfig(
        model=args.model,
        workdir=Path(args.workdir),
        max_duration=args.max_duration,
        max_upload_mb=args.max_upload_mb,
        device=args.device,
        trust_pickle=args.trust_pickle,
        host=args.host,
        port=args.port,
    )
    if args.host not in LOCAL_HOSTS:
        print(
            f"foleykit: warning: listening on {args.host}: other machines can reach the app", file=sys.stderr
        )
    print(
        f"foleykit app: http://{'127.0.0.1' if args.host in LOCAL_HOSTS else args.host}:{args.port}/ "
        f"(working folder {config.workdir.resolve()}); Ctrl-C stops it",
        file=sys.stderr,
    )
    launch_app(config, block=True)
    return 0
