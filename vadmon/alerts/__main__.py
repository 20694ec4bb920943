"""Entry of the alerts process: ``python -m vadmon.alerts --config X``.

The only alerts code that knows the config: it loads it, asks ``vadmon.settings`` for the
settings (its endpoints included), and runs ``vadmon.alerts.process``. Every value comes from
the config file (the schema holds the defaults).
"""

from __future__ import annotations

import argparse
import sys
import threading

from vadmon.alerts.process import run_alerts
from vadmon.config import MonitorConfig
from vadmon.runtime.entry import process_main, process_parser
from vadmon.settings import alert_settings


def start(cfg: MonitorConfig, args: argparse.Namespace, stop: threading.Event) -> int:
    return run_alerts(alert_settings(cfg), stop)


def main(argv: list[str] | None = None) -> int:
    parser = process_parser("alerts", __doc__.split("\n")[0])
    return process_main("alerts", parser, argv, start)


if __name__ == "__main__":
    sys.exit(main())
