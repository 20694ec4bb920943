"""HTML: the review page (static files from the package), the login, and the share page a
signed ``event_url`` opens (server-rendered, no script: it works in any chat preview)."""

from __future__ import annotations

import html
import time
from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from vadmon.alerts.links import event_paths, sign_path
from vadmon.web.api import check_event_id
from vadmon.web.context import context
from vadmon.web.security import COOKIE, cookies

router = APIRouter()


class Login(BaseModel):
    model_config = {"extra": "forbid"}
    token: str = Field(..., min_length=1, max_length=512)


def static_text(name: str) -> str:
    return resources.files("vadmon.web").joinpath("static", name).read_text(encoding="utf-8")


@router.get("/", include_in_schema=False)
def index() -> HTMLResponse:
    """The page shell: no data and no credentials in it; the script asks the API."""
    return HTMLResponse(static_text("index.html"), headers={"cache-control": "no-cache"})


@router.get("/api/session", summary="Whether this browser is logged in (public)")
def session(request: Request) -> dict[str, bool]:
    guard = context(request).guard
    cookie = cookies(request.headers.get("cookie", "")).get(COOKIE, "")
    return {
        "auth": guard.token is not None,
        "authenticated": guard.token is None or guard.session_ok(cookie),
    }


@router.post("/api/session", summary="Log the review page in (sets an HttpOnly cookie)")
def login(request: Request, body: Login) -> Response:
    ctx = context(request)
    if ctx.guard.token is None:
        return Response(status_code=204)  # auth off: nothing to log in to
    if not ctx.guard.token_ok(body.token):
        raise HTTPException(401, "wrong token")
    resp = Response(status_code=204)
    secure = ctx.settings.links.public_url.startswith("https://")
    resp.set_cookie(
        COOKIE,
        ctx.guard.new_session(),
        max_age=int(ctx.settings.session_ttl_s),
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    return resp


@router.post("/api/logout", summary="End the page's session")
def logout() -> Response:
    resp = Response(status_code=204)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/e/{event_id}", include_in_schema=False)
def share(request: Request, event_id: str) -> HTMLResponse:
    """One event for someone holding its signed link: snapshot, clip, explanation."""
    ctx = context(request)
    event = ctx.store().get(check_event_id(event_id))
    if event is None:
        raise HTTPException(404, "no such event")
    exp_text = request.query_params.get("exp", "")
    latest = int(time.time() + ctx.settings.links.ttl_s)
    exp = min(int(exp_text), latest) if exp_text.isdigit() and len(exp_text) <= 12 else latest
    paths = event_paths(event_id)
    snap = html.escape(sign_path(ctx.link_key, paths["snapshot_url"], exp))
    clip = html.escape(sign_path(ctx.link_key, paths["clip_url"], exp))
    e = {k: html.escape(str(event.get(k, ""))) for k in ("camera", "label", "text")}
    why = html.escape(str((event.get("explanation") or {}).get("text", "")))
    media = f'<img src="{snap}" alt="snapshot">' if event.get("has_snapshot") else ""
    if event.get("has_clip"):
        media += f'<video src="{clip}" controls muted playsinline></video>'
    page = static_text("share.html").format(
        label=e["label"], camera=e["camera"], text=e["text"], why=why, media=media
    )
    return HTMLResponse(page, headers={"cache-control": "private, no-store"})
