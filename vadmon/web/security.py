"""Who may do what: one ASGI middleware in front of every route, static file and the schema.

- Authentication: ``Authorization: Bearer <token>`` or the review page's session cookie
  (HttpOnly, SameSite=Strict, an HMAC of its expiry; never the token itself), both compared in
  constant time. Media and share pages also accept their own signed link
  (``vadmon.alerts.links``): valid for that exact path until it expires. With auth off (only
  possible on loopback) everything is open, but the Host header must name this server, so a
  web page cannot reach it through DNS rebinding.
- CSRF: a POST must carry ``X-Vadmon-Request: 1`` (a header no cross-site form or simple request
  can add) unless it authenticates with a Bearer token; an ``Origin`` header, when sent, must be
  this server's own (or a configured CORS origin).
- Size: request bodies above ``max_request_bytes`` get 413, whether declared or streamed.
- Every response: nosniff, no referrer (signed links never leak in Referer), a strict CSP
  (the page loads only its own files), frames refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vadmon.alerts.links import check_signature

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "vadmon_session"
CSRF_HEADER = b"x-vadmon-request"
PUBLIC = ("/", "/favicon.ico", "/api/session")  # the page shell and the login: no data
PUBLIC_PREFIX = "/static/"
SIGNED_PREFIXES = ("/api/events/", "/e/")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'",
    ),
]


class Guard:
    """The checks, given the secrets; ``WebGuard`` applies them to requests."""

    def __init__(self, token: str | None, link_key: bytes, session_ttl_s: float) -> None:
        self.token = token
        self.link_key = link_key
        self.session_ttl_s = session_ttl_s
        # the cookie's key depends on the token: changing the token logs every page out
        self._session_key = hmac.new(
            link_key, b"session\n" + (token or "").encode(), hashlib.sha256
        ).digest()

    def bearer_ok(self, header: str) -> bool:
        if self.token is None or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())

    def token_ok(self, candidate: str) -> bool:
        return self.token is not None and hmac.compare_digest(
            candidate.encode(), self.token.encode()
        )

    def new_session(self, now: float | None = None) -> str:
        exp = int((time.time() if now is None else now) + self.session_ttl_s)
        return f"{exp}.{self._session_mac(exp)}"

    def session_ok(self, value: str, now: float | None = None) -> bool:
        exp, _, mac = value.partition(".")
        if not exp.isdigit() or len(exp) > 12:
            return False
        if not hmac.compare_digest(self._session_mac(int(exp)), mac):
            return False
        return int(exp) >= (time.time() if now is None else now)

    def _session_mac(self, exp: int) -> str:
        return hmac.new(self._session_key, str(exp).encode(), hashlib.sha256).hexdigest()

    def link_ok(self, path: str, query: str) -> bool:
        if not path.startswith(SIGNED_PREFIXES):
            return False
        q = parse_qs(query, max_num_fields=4)
        exp, sig = q.get("exp", [None])[0], q.get("sig", [None])[0]
        return check_signature(self.link_key, path, exp, sig, time.time()) == ""


def cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out.setdefault(name, value)
    return out


class WebGuard:
    """ASGI middleware: size limit, Host check, authentication, CSRF, security headers."""

    def __init__(
        self,
        app: ASGIApp,
        guard: Guard,
        *,
        max_body: int,
        hosts: frozenset[str],
        origins: frozenset[str],
    ) -> None:
        self.app = app
        self.guard = guard
        self.max_body = max_body
        self.hosts = hosts  # Host values accepted while auth is off
        self.origins = origins  # this server's own origins + configured CORS origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # none are served: refuse before any route sees it
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _plain(send, *refusal)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, _with_headers(send))
            return
        body = await _read_body(receive, self.max_body)
        if body is None:
            await _plain(send, 413, "request body too large")
            return
        await self.app(scope, _replay(body, receive), _with_headers(send))

    def _refusal(self, scope: Scope, h: dict[str, str]) -> tuple[int, str] | None:
        declared = h.get("content-length", "0")
        if not declared.isdigit() or int(declared) > self.max_body:
            return 413, "request body too large"
        if self.guard.token is None and h.get("host", "") not in self.hosts:
            return 421, "unknown Host for this server"
        path, method = scope["path"], scope["method"]
        bearer = self.guard.bearer_ok(h.get("authorization", ""))
        if method not in ("GET", "HEAD", "OPTIONS"):
            origin = h.get("origin")
            same = origin is not None and urlsplit(origin).netloc == h.get("host")
            if origin is not None and not same and origin not in self.origins:
                return 403, "cross-origin request refused"
            if not bearer and CSRF_HEADER.decode() not in h:
                return 403, "missing X-Vadmon-Request header (CSRF protection)"
        if method == "OPTIONS":  # CORS preflight (answered only when cors_origins is set)
            return None
        if self.guard.token is None or bearer or path in PUBLIC or path.startswith(PUBLIC_PREFIX):
            return None
        if self.guard.session_ok(cookies(h.get("cookie", "")).get(COOKIE, "")):
            return None
        if method in ("GET", "HEAD") and self.guard.link_ok(path, scope["query_string"].decode()):
            return None
        return 401, "authentication required"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it passes ``limit`` (declared or chunked)."""
    chunks, seen = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away; the app sees an empty body
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then waits like the real one."""
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
        await send(message)

    return wrapped


async def _plain(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="vadmon"'))
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + SECURITY_HEADERS}
    )
    await send({"type": "http.response.body", "body": body})


def allowed_hosts(host: str, port: int, public_url: str) -> frozenset[str]:
    """Host header values naming this server (checked while auth is off, against rebinding)."""
    names = {f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
    if ":" in host:
        names.add(f"[{host}]:{port}")
    names.add(urlsplit(public_url).netloc)
    return frozenset(n for n in names if n)


def own_origins(hosts: frozenset[str], public_url: str, cors: tuple[str, ...]) -> frozenset[str]:
    parts = urlsplit(public_url)
    found = {f"http://{h}" for h in hosts} | {f"{parts.scheme}://{parts.netloc}"} | set(cors)
    return frozenset(found)
