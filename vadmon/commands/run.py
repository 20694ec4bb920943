"""``vadmon run``: start the monitor (supervisor + capture/inference/alerts processes)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from vadmon.errors import VadmonError
from vadmon.runtime.logs import ENV_FORMAT, FORMATS, setup_logging
from vadmon.startup.preflight import report

DESCRIPTION = (
    "Start the monitor: a supervisor with one capture process per camera, the inference "
    "process and the alerts process (events, snapshots, clips, webhooks)."
)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="monitor config YAML (see configs/)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="offline pipeline demo: generated camera + tiny random CLIP (no downloads)",
    )
    p.add_argument("--demo-dir", type=Path, help="where the demo keeps its model and data")
    dash = p.add_mutually_exclusive_group()
    dash.add_argument(
        "--dashboard",
        dest="dashboard",
        action="store_true",
        default=None,
        help="live terminal view (default: the config's dashboard.enabled, "
        "where auto means on when stdout is a terminal)",
    )
    dash.add_argument(
        "--no-dashboard",
        dest="dashboard",
        action="store_false",
        help="service mode: plain log lines instead of the live view (systemd, docker)",
    )
    p.add_argument("--systemd", action="store_true", help="sd_notify READY/WATCHDOG")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument(
        "--role",
        choices=["all", "capture", "inference"],
        default="all",
        help="split across hosts: 'capture' (cameras → transport.tcp.connect) or "
        "'inference' (inference + alerts on transport.tcp.bind); default: everything here",
    )
    p.add_argument(
        "--move-corrupt-outbox",
        action="store_true",
        help="if the outbox database fails its integrity check, move it aside "
        "(<file>.corrupt-<time>) and start a new one; without it a corrupt outbox stops the start",
    )
    p.add_argument("--log-level", default="INFO")
    p.add_argument(
        "--log-format",
        choices=FORMATS,
        default="plain",
        help="log lines of every process: plain text, or one JSON object per line "
        "(journald, Loki); with the live view they go to files in the run directory",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the monitor", description=DESCRIPTION)
    add_run_arguments(p)
    p.set_defaults(handler=run)


@contextlib.contextmanager
def demo_progress(workdir: Path) -> Iterator[Callable[[int, int], None]]:
    """A bar for the demo model's training (seconds when idle, minutes on a loaded CPU)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    print(f"vadmon demo: model and data in {workdir}", flush=True)
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    bar = Progress(*columns)
    tasks: list[int] = []  # the bar appears only if the model has to be trained

    def update(done: int, total: int) -> None:
        if not tasks:
            bar.start()
            tasks.append(bar.add_task("training the tiny demo model", total=total))
        bar.update(tasks[0], completed=done, total=total)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()


def startup_problems(config: Path, role: str) -> list[VadmonError]:
    """``config check``'s preflight, made before any child starts (same lines, exit 2)."""
    from vadmon.config import load_config
    from vadmon.config.load import ConfigErrors
    from vadmon.startup.preflight import preflight_problems

    try:
        cfg = load_config(config)
    except ConfigErrors as exc:
        return list(exc.problems)
    return preflight_problems(cfg, role, str(config))


def run(args: argparse.Namespace) -> int:
    from vadmon.monitor import run_monitor

    os.environ[ENV_FORMAT] = args.log_format  # the children inherit it
    setup_logging("supervisor", args.log_level)
    banner = ""
    config = args.config
    if args.demo:
        from vadmon.demo import BANNER, demo_config

        workdir = args.demo_dir or Path(tempfile.gettempdir()) / "vadmon-demo"
        with demo_progress(workdir) as progress:
            config = demo_config(workdir, progress)
        banner = BANNER
    if config is None:
        raise VadmonError("no config given", fix="pass --config configs/NAME.yaml or --demo")
    problems = startup_problems(config, args.role)
    if problems:
        return report(problems, config)
    code = run_monitor(
        config,
        dashboard=args.dashboard,
        systemd=args.systemd,
        banner=banner,
        duration_s=args.duration,
        role=args.role,
        move_corrupt_outbox=args.move_corrupt_outbox,
    )
    gc.freeze()  # skip the final collection of everything imported (seconds on a loaded CPU)
    if args.demo:  # the demo trained its model with torch in this process: its teardown at
        sys.stdout.flush()  # exit took 1.5–2.5 s more; everything is closed and written now
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    return code
