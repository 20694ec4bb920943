"""MQTT topic names and payloads (docs/MQTT.md has the table).

Events reuse the webhook's ``data`` exactly (whatever the webhook body carries, MQTT carries),
wrapped the way Frigate publishes ``frigate/events``: ``{"type", "before", "after"}``, so the
automations Frigate users already have need only a new topic name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# webhook kind → Frigate's event type; a narration only adds to the event, like an update
FRIGATE_TYPE = {"start": "new", "update": "update", "explained": "update", "end": "end"}
# alerts.provisional: types Frigate automations do not know, so they never trigger on them
FRIGATE_TYPE |= {"provisional": "provisional", "withdrawn": "withdrawn"}
MAX_REASON_CHARS = 200
ONLINE, OFFLINE = "online", "offline"


@dataclass(frozen=True)
class Topics:
    """Every topic vadmon publishes, from one prefix."""

    prefix: str

    @property
    def available(self) -> str:
        return f"{self.prefix}/available"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    def camera(self, camera: str, leaf: str) -> str:
        """``<prefix>/<camera>/<leaf>``; camera names are ``[A-Za-z0-9_-]`` (config checks)."""
        return f"{self.prefix}/{camera}/{leaf}"

    def camera_of(self, topic: str) -> str | None:
        """The camera a per-camera topic belongs to (None for prefix-wide topics)."""
        rest = topic.removeprefix(self.prefix + "/")
        if rest == topic or "/" not in rest:
            return None
        return rest.split("/", 1)[0]


def webhook_data(body: str) -> dict[str, Any]:
    """The ``data`` of a stored webhook body (``vadmon.alerts.delivery.build_body``)."""
    data = json.loads(body).get("data")
    return data if isinstance(data, dict) else {}


def frigate_event(kind: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    """The ``<prefix>/events`` payload."""
    doc = {"type": FRIGATE_TYPE[kind], "before": before, "after": after}
    return json.dumps(doc, separators=(",", ":"))


def camera_event(data: dict[str, Any]) -> str:
    """The ``<prefix>/<camera>/event`` payload for Home Assistant's event entity: its
    ``event_type`` must be one of the announced ``event_types`` (the class names)."""
    doc = {
        "event_type": data.get("label", ""),
        "id": data.get("id", ""),
        "score": data.get("peak_score"),
        "label_prob": data.get("label_prob"),
        "start_ts": data.get("start_ts"),
    }
    return json.dumps(doc, separators=(",", ":"))


def camera_state(state: str, reason: str, ts: float) -> str:
    """The retained ``<prefix>/<camera>/state`` payload; ``reason`` bounded (peer text)."""
    doc = {"state": state[:32], "reason": reason[:MAX_REASON_CHARS], "ts": round(ts, 3)}
    return json.dumps(doc, separators=(",", ":"))


def score_text(score: float) -> str:
    return f"{score:.4f}"
