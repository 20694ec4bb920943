"""Run the web app under uvicorn, with heartbeats to the supervisor, until SIGTERM.

uvicorn handles SIGTERM/SIGINT itself (graceful: open requests finish, then it returns);
the heartbeat thread beats while the server runs, so a wedged server is noticed and
restarted by the supervisor like any other child.
"""

from __future__ import annotations

import logging
import threading

import uvicorn

from vadmon.runtime.heartbeat import HeartbeatSender
from vadmon.web.app import create_app
from vadmon.web.live import LiveFeed
from vadmon.web.options import WebSettings

log = logging.getLogger("vadmon.web")
MAX_CONNECTIONS = 64  # more at once get 503 (live views hold one each)
HEADER_LIMIT = 16 * 1024  # request line + headers


def run_web(settings: WebSettings) -> int:
    live = LiveFeed(settings.cameras, settings.feed_endpoints, settings.stale_after_s)
    live.start()
    app = create_app(settings, live)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=HEADER_LIMIT,
        timeout_graceful_shutdown=3,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeats, args=(server, live, settings, stop), daemon=True)
    beat.start()
    log.info(
        "web on http://%s:%d (links: %s)", settings.host, settings.port, settings.links.public_url
    )
    try:
        server.run()
    finally:
        stop.set()
        beat.join(2.0)  # its socket closed on its own thread before the entry closes the context
        app.state.vadmon.close()
    return 0 if server.started else 1


def _heartbeats(
    server: uvicorn.Server, live: LiveFeed, settings: WebSettings, stop: threading.Event
) -> None:
    sender = HeartbeatSender.from_env()
    if sender is None:
        return
    try:
        while not stop.wait(settings.heartbeat_s):
            state = "running" if server.started else "starting"
            sender.beat(state=state, counters={k: float(v) for k, v in live.counters.items()})
    finally:
        sender.close()
