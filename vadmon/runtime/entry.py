"""The one entry of the capture, inference and alerts processes (their ``__main__``).

Every child starts the same way, so a reader learns it once and no child forgets a step:
parse ``--config`` (and the child's own arguments) → load and validate the config → set up
logging under the child's process name → SIGTERM/SIGINT set a stop event → run the loop with
it. A ``VadmonError`` (bad input: config, checkpoint, camera name) prints its one line,
reports it to the supervisor (``report_fatal``: the dashboard shows that line as the child's
reason) and exits 2; nothing else exits 2. Last, the process's one ZeroMQ context is closed
(``runtime/zmq_context``: sockets still open get a bounded linger; the fatal report leaves).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable

from vadmon.config import MonitorConfig, load_config
from vadmon.errors import VadmonError
from vadmon.runtime.heartbeat import report_fatal
from vadmon.runtime.logs import setup_logging
from vadmon.runtime.zmq_context import close_process_context

BAD_INPUT_EXIT = 2
Start = Callable[[MonitorConfig, argparse.Namespace, threading.Event], int]


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set (the loops poll it; nothing is interrupted mid-write)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def process_parser(kind: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m vadmon.{kind}", description=description)
    p.add_argument("--config", required=True, help="monitor config (YAML)")
    return p


def process_main(
    kind: str,
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    start: Start,
    name: Callable[[argparse.Namespace], str] | None = None,
) -> int:
    """Run one child: ``start(config, args, stop)`` returns its exit code. ``name``: its
    process name for the logs (default ``kind``, e.g. ``capture:door`` for a camera)."""
    args = parser.parse_args(argv)
    stop = stop_on_signals()
    try:
        cfg = load_config(args.config)
        setup_logging(name(args) if name else kind, cfg.log_level)
        return start(cfg, args, stop)
    except VadmonError as exc:
        print(f"vadmon {kind}: error: {exc.line()}", file=sys.stderr)
        report_fatal(exc.line())
        return BAD_INPUT_EXIT
    finally:
        close_process_context()
