"""The alert process's heartbeat body (``AlertStatus``), built from its pipeline's stages.

Kept beside ``alerts/process.py`` so the loop stays small: every stage keeps its own counters
under its own names, and this one function gathers them with the typed fields the dashboard,
Prometheus and the benches read.
"""

from __future__ import annotations

from typing import Any, Protocol

from vadmon.runtime.status_schema import (
    MAX_CAMERAS,
    MAX_RECENT_EVENTS,
    AlertCounters,
    AlertInfo,
    AlertStatus,
    HistogramBody,
    valid_recent_events,
)


class Stages(Protocol):
    """What of ``alerts.process.AlertPipeline`` the body reads (its stages and counters)."""

    counters: Any
    tracker: Any
    clips: Any
    media: Any
    narrator: Any
    score_log: Any
    worker: Any
    outbox: Any
    mqtt: Any
    unsaved: Any
    recent: Any
    endpoints: Any


def alert_status(pipeline: Stages) -> AlertStatus:
    """The ``alerts`` heartbeat body: the typed fields the dashboard reads, and every stage's
    own counters beside them under their own names."""
    counters: dict[str, float] = {}
    for source in (
        pipeline.counters,
        pipeline.tracker.counters(),
        pipeline.clips.counters,
        pipeline.media.counters,
        pipeline.narrator.counters if pipeline.narrator else {},
        pipeline.score_log.counters if pipeline.score_log else {},
        {f"deliveries_{k}": v for k, v in pipeline.worker.counters().items()},
        {f"outbox_{k}": v for k, v in pipeline.outbox.counts().items()},
        pipeline.mqtt.status_counters() if pipeline.mqtt else {},
        pipeline.outbox.queue_counts(),
    ):
        counters.update(source)
    counters["events_total"] = pipeline.counters.get("queued_start", 0)
    counters["outbox_unsaved"] = len(pipeline.unsaved)
    seen: dict[str, dict[str, Any]] = {}
    for ev in pipeline.recent:  # newest message per event
        seen.setdefault(ev["id"], ev)
    open_events = sum(cam.open_event is not None for cam in pipeline.tracker.cameras.values())
    info = AlertInfo(
        webhooks=len(pipeline.endpoints),
        open_events=open_events,
        recent_events=valid_recent_events(list(seen.values())[:MAX_RECENT_EVENTS]),
        alert_latency=HistogramBody.model_validate(pipeline.worker.latency.body()),
        flood_suppressed={
            name: cam.counters["suppressed_rate"]
            for name, cam in list(pipeline.tracker.cameras.items())[:MAX_CAMERAS]
        },
    )
    return AlertStatus(counters=AlertCounters.model_validate(counters), info=info)
