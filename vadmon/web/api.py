"""The JSON API: health, cameras (live state and reason), events (filtered, keyset pages),
one event, its score curve, and reviewer feedback. Media routes are ``media_routes``.

Every id from a client is checked against a strict pattern before it reaches SQLite or a
path (event ids: ``vadmon.web.store.EVENT_ID``; cameras: the configured names), so
``../``, ``%2e%2e`` and absolute paths never match anything.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from vadmon.alerts.links import event_paths
from vadmon.web.context import WebContext, context
from vadmon.web.scores import score_curve
from vadmon.web.store import EVENT_ID, MAX_NOTE, BadCursor, EventQuery

router = APIRouter(prefix="/api")


class Feedback(BaseModel):
    """A reviewer's verdict on one event."""

    model_config = {"extra": "forbid"}
    verdict: Literal["confirmed", "false_alarm"]
    note: str = Field("", max_length=MAX_NOTE)


def check_event_id(event_id: str) -> str:
    if not EVENT_ID.match(event_id):
        raise HTTPException(404, "no such event")
    return event_id


def check_camera(ctx: WebContext, name: str) -> str:
    if name not in ctx.settings.cameras:
        raise HTTPException(404, "no such camera")
    return name


def with_urls(event: dict[str, Any]) -> dict[str, Any]:
    """Relative media URLs for this server (session or Bearer auth; links in alerts are signed)."""
    paths = event_paths(event["id"])
    event["snapshot_url"] = paths["snapshot_url"] if event.get("has_snapshot") else None
    event["clip_url"] = paths["clip_url"] if event.get("has_clip") else None
    event["scores_url"] = f"/api/events/{event['id']}/scores"
    return event


@router.get("/health", summary="Liveness and what this server sees")
def health(request: Request) -> dict[str, Any]:
    ctx = context(request)
    return {
        "status": "ok",
        "instance": ctx.settings.instance,
        "time": time.time(),
        "cameras": len(ctx.settings.cameras),
        "feed": dict(ctx.live.counters),
    }


@router.get("/cameras", summary="Cameras with live state, reason and latest score")
def cameras(request: Request) -> list[dict[str, Any]]:
    ctx = context(request)
    out = ctx.live.cameras()
    for cam in out:
        cam["latest_url"] = f"/api/cameras/{cam['name']}/latest.jpg"
        cam["live_url"] = f"/api/cameras/{cam['name']}/live.mjpeg"
    return out


@router.get("/events", summary="Events newest first (keyset pages: pass next_cursor back)")
def events(
    request: Request,
    camera: str | None = Query(None, max_length=64),
    label: str | None = Query(None, max_length=128),
    since: float | None = Query(None, description="unix seconds, start_ts >= since"),
    until: float | None = Query(None, description="unix seconds, start_ts < until"),
    cursor: str | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    ctx = context(request)
    if camera is not None:
        check_camera(ctx, camera)
    query = EventQuery(camera, label, since, until, cursor, min(limit, ctx.settings.page_size_max))
    try:
        rows, nxt = ctx.store().page(query)
    except BadCursor as exc:
        raise HTTPException(400, str(exc)) from None
    return {"events": [with_urls(r) for r in rows], "next_cursor": nxt}


@router.get("/events/{event_id}", summary="One event with its feedback")
def event(request: Request, event_id: str) -> dict[str, Any]:
    found = context(request).store().get(check_event_id(event_id))
    if found is None:
        raise HTTPException(404, "no such event")
    return with_urls(found)


@router.get("/events/{event_id}/scores", summary="The event's anomaly-score curve")
def scores(request: Request, event_id: str) -> dict[str, Any]:
    ctx = context(request)
    found = ctx.store().get(check_event_id(event_id))
    if found is None:
        raise HTTPException(404, "no such event")
    return score_curve(ctx.settings.score_dir, found)


@router.post("/events/{event_id}/feedback", summary="Mark an event confirmed or a false alarm")
def feedback(request: Request, event_id: str, body: Feedback) -> dict[str, Any]:
    stored = (
        context(request).store().set_feedback(check_event_id(event_id), body.verdict, body.note)
    )
    if stored is None:
        raise HTTPException(404, "no such event")
    return stored
