"""One event as the dashboard shows it, from either source: an alerts heartbeat's recent events
or an outbox ``events`` row (so the view survives an alerts restart)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vadmon.runtime.status_schema import RecentEvent


@dataclass(frozen=True)
class EventView:
    id: str
    camera: str
    label: str
    prob: float | None
    start: float | None
    duration: float | None
    kind: str
    text: str = ""  # the event's explanation, when the alerts process sent one



def event_order(ev: EventView) -> tuple[float, str]:
    return (ev.start or 0.0, ev.id)


def event_from_heartbeat(ev: RecentEvent) -> EventView:
    return EventView(
        ev.id, ev.camera, ev.label, ev.prob, ev.start, ev.duration, ev.kind, ev.text or ""
    )


_ROW_KIND = {
    "open": "open",
    "ending": "end",
    "closed": "end",
    "interrupted": "interrupted",
    "suppressed": "suppressed",
}


def event_from_row(d: dict[str, Any]) -> EventView | None:
    """An outbox ``events`` row: ``label_prob``, ``start_ts``/``end_ts`` and a row state."""
    camera, label = d.get("camera"), d.get("label")
    if not isinstance(camera, str) or not isinstance(label, str):
        return None
    start, end = d.get("start_ts"), d.get("end_ts")
    duration = end - start if start is not None and end is not None else None
    state = str(d.get("state") or "?")
    return EventView(
        id=str(d.get("id") or f"{camera}/{label}/{start}"),
        camera=camera,
        label=label,
        prob=d.get("label_prob"),
        start=start,
        duration=duration,
        kind=_ROW_KIND.get(state, state),
    )
