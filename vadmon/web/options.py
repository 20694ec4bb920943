"""The web process's settings (mapped from ``web:`` by ``vadmon.settings``; no defaults here).

Kept free of FastAPI imports so that every process's entry module can import
``vadmon.settings`` without paying for the web stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vadmon.alerts.links import LinkSettings


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    token: str | None = field(repr=False)  # None: auth off (only on loopback: the config)
    links: LinkSettings
    db_path: Path
    media_dir: Path
    score_dir: Path | None  # score logs (the events' score curves); None: off
    cameras: tuple[str, ...]
    feed_endpoints: tuple[str, ...]  # every camera's capture PUB, then inference's scores
    cors_origins: tuple[str, ...]
    max_request_bytes: int
    live_fps: float
    instance: str
    heartbeat_s: float
    stale_after_s: float  # a camera silent this long is offline (the dashboard's rule)
    session_ttl_s: float  # lifetime of the review page's login cookie
    page_size_max: int  # most events one API page returns
