"""Entry of the web process: ``python -m vadmon.web --config X``.

Loads the config, maps it onto the web settings (with ``vadmon.settings``' shared pieces) and runs ``vadmon.web.server``.
A port already in use is one line and exit 1 (the supervisor retries with backoff).
"""

from __future__ import annotations

import argparse
import sys

from vadmon.config import MonitorConfig, load_config
from vadmon.errors import VadmonError
from vadmon.runtime.logs import setup_logging
from vadmon.runtime.zmq_context import close_process_context
from vadmon.settings import (
    HEARTBEAT_S,
    preview_endpoints,
    score_endpoint,
    score_log_dir,
)
from vadmon.settings_channels import link_settings
from vadmon.web.options import WebSettings

WEB_STALE_S = 10.0  # a camera silent this long shows offline (the dashboard's default)
WEB_SESSION_TTL_S = 12 * 3600.0  # the review page's login cookie
WEB_PAGE_MAX = 500  # events per API page at most


def web_settings(cfg: MonitorConfig) -> WebSettings:
    from vadmon.config.web import split_listen

    web = cfg.web
    host, port = split_listen(web.listen)
    token = web.auth.token.get_secret_value() if web.auth.enabled and web.auth.token else None
    return WebSettings(
        host=host,
        port=port,
        token=token,
        links=link_settings(cfg),
        db_path=cfg.storage.outbox_db,
        media_dir=cfg.storage.media_dir,
        score_dir=score_log_dir(cfg) if cfg.score_log.enabled else None,
        cameras=tuple(cfg.enabled_cameras()),
        feed_endpoints=(*preview_endpoints(cfg), score_endpoint(cfg)),
        cors_origins=tuple(web.cors_origins),
        max_request_bytes=web.max_request_bytes,
        live_fps=web.live_fps,
        instance=cfg.instance,
        heartbeat_s=HEARTBEAT_S,
        stale_after_s=WEB_STALE_S,
        session_ttl_s=WEB_SESSION_TTL_S,
        page_size_max=WEB_PAGE_MAX,
    )


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
    finally:
        close_process_context()


if __name__ == "__main__":
    sys.exit(main())
