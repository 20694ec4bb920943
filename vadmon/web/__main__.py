"""Entry of the web process: ``python -m vadmon.web --config X``.

Loads the config, asks ``vadmon.settings`` for the web settings and runs ``vadmon.web.server``.
A port already in use is one line and exit 1 (the supervisor retries with backoff).
"""

from __future__ import annotations

import argparse
import sys

from vadmon.config import load_config
from vadmon.errors import VadmonError
from vadmon.runtime.logs import setup_logging
from vadmon.settings import web_settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vadmon.web", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="monitor config (YAML)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config)
        setup_logging("web", cfg.log_level)
        settings = web_settings(cfg)
        from vadmon.web.server import run_web  # the web stack only once the config is good

        return run_web(settings)
    except VadmonError as exc:
        print(f"vadmon web: error: {exc.line()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
