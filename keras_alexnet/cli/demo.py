"""`keras-alexnet demo`: what it checks before anything is imported, and then does: serve the
browser demo (`keras_alexnet.demo`) until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import importlib.util
import threading

from keras_alexnet.cli.commands import UserError, check_flag, check_server_url
from keras_alexnet.config import check_timeout
from keras_alexnet.web import INSTALL


def check_demo(args: argparse.Namespace) -> None:
    """`--model` or `--server` (not both), a port and a timeout in range, Gradio installed."""
    if args.model is not None and args.server is not None:
        raise UserError("give --model or --server, not both")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UserError(f"--port must be in 1..65535, got {args.port}")
    check_flag(check_timeout, args.timeout, "--timeout")
    if args.server is not None:
        check_server_url(args.server)
    if importlib.util.find_spec("gradio") is None:
        raise UserError(INSTALL)


def run_demo(args: argparse.Namespace) -> int:
    """Builds the page, serves it and prints its URL; a signal ends it (exit 75 or 130)."""
    from keras_alexnet.utils.stop_signals import stop_on_signals
    from keras_alexnet.web import demo, launch

    with stop_on_signals() as request:
        request.enter("while starting the demo", "nothing was written outside temporary "
                                                  "directories, which are removed")
        app = demo(args.model, args.server, args.model_name, args.data_dir, args.timeout)
        try:
            launch(app, args.host, args.port)
            print(f"demo: {app.local_url}", flush=True)
            request.enter("while serving the demo")
            threading.Event().wait()
        finally:
            app.close()
    return 0
