"""Entry of the capture process: ``python -m vadmon.capture --config X --camera NAME``.

The monitor's supervisor starts one per enabled camera. This module is the only capture code
that knows the config: it asks ``vadmon.settings`` for this camera's settings and endpoints,
guards fd 2 against secrets, and runs ``vadmon.capture.process``. Every value comes from the
config file (the schema holds the defaults), so a capture started by hand behaves exactly like
one started by ``vadmon run``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from vadmon.capture.process import run_capture
from vadmon.capture.stderr_scrub import StderrScrubber
from vadmon.config import load_config
from vadmon.errors import VadmonError
from vadmon.redact import url_secrets
from vadmon.runtime.heartbeat import report_fatal
from vadmon.runtime.logs import setup_logging
from vadmon.runtime.transport import ipc_dir
from vadmon.settings import camera_endpoints, capture_settings

log = logging.getLogger("vadmon.capture")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vadmon.capture", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="monitor config (YAML)")
    p.add_argument("--camera", required=True, help="name of a camera in the config")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        settings = capture_settings(cfg, args.camera)
        endpoints = camera_endpoints(cfg, args.camera)
    except VadmonError as exc:
        print(f"vadmon capture: error: {exc.line()}", file=sys.stderr)
        report_fatal(exc.line())  # the supervisor shows it as this camera's reason
        return 2
    # the exact ${ENV} values (raw and URL-encoded), not a password guessed from the URL
    scrubber = StderrScrubber([*cfg.secret_values(), *url_secrets(settings.source)])
    scrubber.install()
    setup_logging(f"capture:{args.camera}", cfg.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        ipc_dir(Path(endpoints.publish.removeprefix("ipc://")).parent)
        code = run_capture(settings, endpoints, stop)
        log.info("camera %s: stopped", args.camera)
        return code
    except VadmonError as exc:
        print(f"vadmon capture: error: {exc.line()}", file=sys.stderr)
        report_fatal(exc.line())
        return 2
    finally:
        scrubber.uninstall()


if __name__ == "__main__":
    exit_code = main()
    # A source thread may still be blocked inside FFmpeg (C++); letting the interpreter
    # finalise would cancel it mid-call and abort ("exception not rethrown"). Everything we own
    # (ring, sockets, ipc files) is already closed, so leave without finalisation.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
