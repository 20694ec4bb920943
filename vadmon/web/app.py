"""The ASGI app: routes (``api``, ``media_routes``, ``pages``), static files, the guard.

``create_app`` takes the settings and a started ``LiveFeed`` so tests and the process entry
build the very same app. The interactive ``/docs`` pages are off (they load from a CDN);
the OpenAPI schema is at ``/openapi.json`` (authenticated like everything else).
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware

from vadmon.alerts.links import load_key
from vadmon.web import api, media_routes, pages
from vadmon.web.context import WebContext
from vadmon.web.live import LiveFeed
from vadmon.web.options import WebSettings
from vadmon.web.security import Guard, WebGuard, allowed_hosts, own_origins


def create_app(settings: WebSettings, live: LiveFeed) -> FastAPI:
    key = load_key(settings.links.key_path)
    guard = Guard(settings.token, key, settings.session_ttl_s)
    app = FastAPI(
        title="vadmon",
        summary="Events, cameras and media of one vadmon monitor",
        docs_url=None,
        redoc_url=None,
    )
    app.state.vadmon = WebContext(settings, live, guard, key)
    for router in (api.router, media_routes.router, pages.router):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        """422 without echoing the input back (it may be a token someone mistyped)."""
        errors = [{"loc": e.get("loc"), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    static = resources.files("vadmon.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    if settings.cors_origins:  # off by default: no CORS headers at all
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-vadmon-request"],
        )
    hosts = allowed_hosts(settings.host, settings.port, settings.links.public_url)
    origins = own_origins(hosts, settings.links.public_url, settings.cors_origins)
    app.add_middleware(
        WebGuard, guard=guard, max_body=settings.max_request_bytes, hosts=hosts, origins=origins
    )
    return app
