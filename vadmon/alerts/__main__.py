"""Entry of the alerts process: ``python -m vadmon.alerts --config X``.

The only alerts code that knows the config: it loads it, asks ``vadmon.settings`` for the
settings and endpoints, and runs ``vadmon.alerts.process``. Every value comes from the config
file (the schema holds the defaults).
"""

from __future__ import annotations

import argparse
import sys

from vadmon.alerts.process import run_alerts
from vadmon.config import load_config
from vadmon.errors import VadmonError
from vadmon.settings import alert_settings, preview_endpoints, score_endpoint


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vadmon.alerts", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="monitor config (YAML)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config)
        return run_alerts(alert_settings(cfg), score_endpoint(cfg), preview_endpoints(cfg))
    except VadmonError as exc:
        print(f"vadmon alerts: error: {exc.line()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
