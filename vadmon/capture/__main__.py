"""Entry of the capture process: ``python -m vadmon.capture --config X --camera NAME``.

The monitor's supervisor starts one per enabled camera. This module is the only capture code
that knows the config: it asks the composition root (``vadmon.monitor``) for this camera's
settings and endpoints, guards fd 2 against secrets, and runs ``vadmon.capture.process``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from vadmon.capture.process import (
    CaptureEndpoints,
    CaptureSettings,
    capture_endpoints,
    run_capture,
)
from vadmon.capture.snippet import SnippetSettings
from vadmon.capture.stderr_scrub import StderrScrubber
from vadmon.capture.watchdog import WatchdogSettings
from vadmon.config import load_config
from vadmon.errors import VadmonError
from vadmon.monitor import camera_endpoints, capture_settings
from vadmon.redact import url_secrets
from vadmon.runtime.transport import ipc_dir

log = logging.getLogger("vadmon.capture")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vadmon.capture", description="vadmon capture process"
    )
    p.add_argument("--camera", required=True)
    p.add_argument("--config", default="", help="monitor config: takes this camera's settings")
    p.add_argument("--source", default="", help="file, rtsp://…, webcam index, synthetic:…")
    p.add_argument("--ipc-dir", default="", help="directory for ipc sockets (made 0700)")
    p.add_argument("--publish", default="", help="override the PUB endpoint")
    p.add_argument("--snippets", default="", help="override the snippet PUSH endpoint")
    p.add_argument("--no-loop", action="store_true", help="files: stop at the end")
    p.add_argument("--fps", type=float, default=0.0, help="snippet clock (0: every source frame)")
    p.add_argument("--frames-per-snippet", type=int, default=16)
    p.add_argument("--samples", type=int, default=1, help="frames per snippet to embed")
    p.add_argument("--ring-slots", type=int, default=48)
    p.add_argument("--preview-fps", type=float, default=2.0)
    p.add_argument("--preview-width", type=int, default=320)
    p.add_argument("--stall-timeout", type=float, default=5.0)
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--frozen-timeout", type=float, default=0.0, help="0 disables")
    p.add_argument("--backoff-base", type=float, default=0.5)
    p.add_argument("--backoff-max", type=float, default=60.0)
    p.add_argument("--open-timeout-ms", type=int, default=10000)
    p.add_argument("--read-timeout-ms", type=int, default=5000)
    p.add_argument("--log-level", default="INFO")
    return p


def settings_from_args(args: argparse.Namespace) -> CaptureSettings:
    try:
        snippet = SnippetSettings(args.frames_per_snippet, args.samples, args.fps)
    except ValueError as exc:
        raise VadmonError(str(exc), "snippet options", "fix the command line") from None
    watchdog = WatchdogSettings(
        stall_timeout_s=args.stall_timeout,
        connect_timeout_s=args.connect_timeout,
        backoff_base_s=args.backoff_base,
        backoff_max_s=args.backoff_max,
        frozen_timeout_s=args.frozen_timeout,
    )
    return CaptureSettings(
        camera=args.camera,
        source=args.source,
        loop=not args.no_loop,
        open_timeout_ms=args.open_timeout_ms,
        read_timeout_ms=args.read_timeout_ms,
        ring_slots=args.ring_slots,
        snippet=snippet,
        watchdog=watchdog,
        preview_fps=args.preview_fps,
        preview_width=args.preview_width,
    )


def _from_config(args: argparse.Namespace) -> tuple[CaptureSettings, CaptureEndpoints]:
    cfg = load_config(args.config)
    if args.camera not in cfg.cameras:
        raise VadmonError(f"camera {args.camera!r} is not in the config", args.config)
    return capture_settings(cfg, args.camera), camera_endpoints(cfg, args.camera)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.config and not args.source:
        parser.error("give --config or --source")
    preset: tuple[CaptureSettings, CaptureEndpoints] | None = None
    if args.config:
        try:
            preset = _from_config(args)
        except VadmonError as exc:
            print(f"vadmon capture: error: {exc.line()}", file=sys.stderr)
            return 2
        args.source = preset[0].source
    scrubber = StderrScrubber(url_secrets(args.source))
    scrubber.install()
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s capture[{args.camera}] %(levelname)s %(message)s",
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if preset is not None:
            settings, endpoints = preset
            ipc_dir(Path(endpoints.publish.removeprefix("ipc://")).parent)
        else:
            settings = settings_from_args(args)
            directory = ipc_dir(args.ipc_dir or None)
            endpoints = capture_endpoints(directory, args.camera)
            endpoints = CaptureEndpoints(
                publish=args.publish or endpoints.publish,
                snippets=args.snippets or endpoints.snippets,
            )
        code = run_capture(settings, endpoints, stop)
        log.info("camera %s: stopped", args.camera)
        return code
    except VadmonError as exc:
        print(f"vadmon capture: error: {exc.line()}", file=sys.stderr)
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
