"""The event body every alert channel sends: built here, once, for webhooks and any other
channel (MQTT reuses ``EventBodies.body``).

On top of the event (``data``) it adds what a receiver on another machine needs: signed,
expiring ``data.snapshot_url`` / ``data.clip_url`` / ``data.event_url`` (``vadmon.alerts.links``,
when the web process is on), a top-level plain ``text`` for chat tools (Slack, Mattermost and
Discord-style relays show it as is) and the ``instance`` that raised it. A webhook with
``embed_snapshot`` gets its own copy with a small base64 JPEG in ``data.snapshot_jpeg``.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vadmon.alerts.delivery import MAX_PAYLOAD_BYTES, build_body
from vadmon.alerts.links import LinkSettings, event_links, load_key
from vadmon.errors import VadmonError

log = logging.getLogger("vadmon.alerts.payload")
EMBED_WIDTHS = (160, 96)  # tried in order until the body fits MAX_PAYLOAD_BYTES
EMBED_QUALITY = 70


@dataclass(frozen=True)
class PayloadSettings:
    instance: str
    links: LinkSettings | None  # None: the web process is off, no links
    embed: frozenset[str]  # webhook names that get data.snapshot_jpeg


class EventBodies:
    """Builds the stored, signed-as-is bodies of one event message."""

    def __init__(self, settings: PayloadSettings) -> None:
        self.s = settings
        self._key: bytes | None = None

    def with_links(self, data: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        """``data`` plus its signed links (unchanged when links are off or the key is bad)."""
        links = self.s.links
        if links is None or not data.get("id"):
            return data
        try:
            if self._key is None:
                self._key = load_key(links.key_path)
        except (VadmonError, OSError) as exc:  # alerts go out without links, never not at all
            log.warning("no links in alerts: %s", exc)
            return data
        now = time.time() if now is None else now
        return {**data, **event_links(links, self._key, str(data["id"]), now)}

    def text(self, data: dict[str, Any]) -> str:
        """One line for chat tools: instance, what happened, and the link to look at it."""
        line = f"[{self.s.instance}] {data.get('text') or data.get('label', 'event')}"
        url = data.get("event_url")
        return f"{line} {url}" if url else line

    def body(self, kind: str, data: dict[str, Any], ts: float | None = None) -> str:
        extra = {"instance": self.s.instance, "text": self.text(data)}
        return build_body(kind, data, ts, extra=extra)

    def bodies(
        self, kind: str, data: dict[str, Any], endpoints: list[str], ts: float | None = None
    ) -> tuple[str, dict[str, str]]:
        """(the shared body, {endpoint: its own body} for those embedding the snapshot)."""
        shared = self.body(kind, data, ts)
        own: dict[str, str] = {}
        wanted = [e for e in endpoints if e in self.s.embed]
        if wanted and data.get("snapshot_path"):
            embedded = self._embedded(kind, data, ts)
            if embedded is not None:
                own = dict.fromkeys(wanted, embedded)
        return shared, own

    def _embedded(self, kind: str, data: dict[str, Any], ts: float | None) -> str | None:
        image = _read_image(Path(str(data["snapshot_path"])))
        if image is None:
            return None
        for width in EMBED_WIDTHS:
            jpeg = small_jpeg(image, width)
            body = {**data, "snapshot_jpeg": base64.b64encode(jpeg).decode()}
            try:
                return self.body(kind, body, ts)
            except ValueError:  # over MAX_PAYLOAD_BYTES: try smaller
                continue
        log.warning("snapshot too large to embed under %d bytes", MAX_PAYLOAD_BYTES)
        return None


def _read_image(path: Path) -> np.ndarray | None:
    try:
        raw = np.frombuffer(path.read_bytes(), np.uint8)
    except OSError:
        return None
    return cv2.imdecode(raw, cv2.IMREAD_COLOR)


def small_jpeg(image: np.ndarray, width: int) -> bytes:
    """A downscaled JPEG at most ``width`` pixels wide (aspect kept)."""
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(
            image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, EMBED_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
