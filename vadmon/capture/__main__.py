"""Entry of the capture process: ``python -m vadmon.capture --config X --camera NAME``.

The monitor's supervisor starts one per enabled camera. This module is the only capture code
that knows the config: it asks ``vadmon.settings`` for this camera's settings (its endpoints
included), guards fd 2 against secrets, and runs ``vadmon.capture.process``. Every value comes
from the config file (the schema holds the defaults), so a capture started by hand behaves
exactly like one started by ``vadmon run``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from vadmon.capture.process import run_capture
from vadmon.capture.stderr_scrub import StderrScrubber
from vadmon.config import MonitorConfig
from vadmon.redact import url_secrets
from vadmon.runtime.entry import process_main, process_parser
from vadmon.runtime.transport import ipc_dir
from vadmon.settings import capture_settings

log = logging.getLogger("vadmon.capture")


def build_parser() -> argparse.ArgumentParser:
    p = process_parser("capture", __doc__.split("\n")[0])
    p.add_argument("--camera", required=True, help="name of a camera in the config")
    return p


def start(cfg: MonitorConfig, args: argparse.Namespace, stop: threading.Event) -> int:
    settings = capture_settings(cfg, args.camera)
    # the exact ${ENV} values (raw and URL-encoded), not a password guessed from the URL
    scrubber = StderrScrubber([*cfg.secret_values(), *url_secrets(settings.source)])
    scrubber.install()
    try:
        ipc_dir(Path(settings.endpoints.publish.removeprefix("ipc://")).parent)
        code = run_capture(settings, stop)
        log.info("camera %s: stopped", args.camera)
        return code
    finally:
        scrubber.uninstall()


def process_name(args: argparse.Namespace) -> str:
    return f"capture:{args.camera}"


def main(argv: list[str] | None = None) -> int:
    return process_main("capture", build_parser(), argv, start, process_name)


if __name__ == "__main__":
    exit_code = main()
    # A source thread may still be blocked inside FFmpeg (C++); letting the interpreter
    # finalise would cancel it mid-call and abort ("exception not rethrown"). Everything we own
    # (ring, sockets, ipc files) is already closed, so leave without finalisation.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
