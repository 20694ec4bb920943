"""``vadmon run``: start the monitor (supervisor + capture/inference/alerts processes)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from vadmon.errors import VadmonError
from vadmon.runtime.logs import ENV_FORMAT, FORMATS, setup_logging


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="monitor config YAML (see configs/)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="offline pipeline demo: generated camera + tiny random CLIP (no downloads)",
    )
    p.add_argument("--demo-dir", type=Path, help="where the demo keeps its model and data")
    dash = p.add_mutually_exclusive_group()
    dash.add_argument("--dashboard", dest="dashboard", action="store_true", default=None)
    dash.add_argument("--no-dashboard", dest="dashboard", action="store_false")
    p.add_argument("--systemd", action="store_true", help="sd_notify READY/WATCHDOG")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument(
        "--role",
        choices=["all", "capture", "inference"],
        default="all",
        help="split across hosts: 'capture' (cameras → transport.tcp.connect) or "
        "'inference' (inference + alerts on transport.tcp.bind); default: everything here",
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
    p = sub.add_parser("run", help="run the monitor", description=__doc__)
    add_run_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vadmon.monitor import run_monitor

    os.environ[ENV_FORMAT] = args.log_format  # the children inherit it
    setup_logging("supervisor", args.log_level)
    banner = ""
    config = args.config
    if args.demo:
        from vadmon.demo import BANNER, demo_config

        workdir = args.demo_dir or Path(tempfile.gettempdir()) / "vadmon-demo"
        print(f"vadmon demo: preparing the tiny demo model in {workdir} …", flush=True)
        config = demo_config(workdir)
        banner = BANNER
    if config is None:
        raise VadmonError("no config given", fix="pass --config configs/NAME.yaml or --demo")
    return run_monitor(
        config,
        dashboard=args.dashboard,
        systemd=args.systemd,
        banner=banner,
        duration_s=args.duration,
        role=args.role,
    )
