"""Media: an event's snapshot and clip (with Range), a camera's latest preview and live view.

Paths come from the event's row and are then checked to lie inside the media store
(``vadmon.web.media.inside_store``); a client never names a file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

from vadmon.web.api import check_camera, check_event_id
from vadmon.web.context import WebContext, context
from vadmon.web.live import LiveFeed
from vadmon.web.media import content_type, inside_store, parse_range, read_slice
from vadmon.web.store import media_path

router = APIRouter(prefix="/api")
BOUNDARY = "vadmonframe"
MJPEG_MAX_S = 3600.0  # one live view connection lasts at most this long (then reconnects)


def _event_file(ctx: WebContext, event_id: str, kind: str) -> Path:
    stored = media_path(ctx.store().conn, check_event_id(event_id), kind)
    if stored is None:
        raise HTTPException(404, f"no {kind} for this event (yet)")
    path = inside_store(ctx.settings.media_dir, stored)
    if path is None:
        raise HTTPException(404, f"no {kind} for this event")
    return path


def file_response(request: Request, path: Path, cache: str = "private, max-age=300") -> Response:
    size = path.stat().st_size
    part = parse_range(request.headers.get("range"), size)
    headers = {**part.headers(), "cache-control": cache}
    if request.method == "HEAD" or part.status == 416:
        return Response(status_code=part.status, headers=headers, media_type=content_type(path))
    return StreamingResponse(
        read_slice(path, part), part.status, headers=headers, media_type=content_type(path)
    )


@router.get("/events/{event_id}/snapshot.jpg", summary="The event's snapshot (JPEG)")
def snapshot(request: Request, event_id: str) -> Response:
    return file_response(request, _event_file(context(request), event_id, "snapshot"))


@router.get("/events/{event_id}/clip.mp4", summary="The event's clip (MP4, HTTP Range)")
def clip(request: Request, event_id: str) -> Response:
    return file_response(request, _event_file(context(request), event_id, "clip"))


@router.get("/cameras/{name}/latest.jpg", summary="The camera's newest preview frame")
def latest(request: Request, name: str) -> Response:
    ctx = context(request)
    frame = ctx.live.frame(check_camera(ctx, name))
    if frame is None:
        raise HTTPException(404, "no frame from this camera yet")
    headers = {"cache-control": "no-store", "x-frame-ts": f"{frame.ts:.3f}"}
    return Response(frame.jpeg, media_type="image/jpeg", headers=headers)


@router.get("/cameras/{name}/live.mjpeg", summary="Live view (MJPEG, at most web.live_fps)")
async def live(request: Request, name: str) -> StreamingResponse:
    ctx = context(request)
    check_camera(ctx, name)
    media = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    frames = _mjpeg(ctx.live, name, 1.0 / ctx.settings.live_fps)
    return StreamingResponse(frames, media_type=media, headers={"cache-control": "no-store"})


async def _mjpeg(feed: LiveFeed, camera: str, period: float) -> AsyncIterator[bytes]:
    """Each new preview once, no faster than ``period``; polling, so no thread is held.
    Starlette cancels this generator when the client goes away."""
    loop = asyncio.get_running_loop()
    until = loop.time() + MJPEG_MAX_S
    seq = None
    while loop.time() < until:
        frame = feed.frame(camera)
        if frame is not None and frame.seq != seq:
            seq = frame.seq
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
            head += f"Content-Length: {len(frame.jpeg)}\r\n\r\n"
            yield head.encode() + frame.jpeg + b"\r\n"
        await asyncio.sleep(period)
