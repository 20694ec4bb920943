"""A real HTTP webhook receiver on 127.0.0.1 that verifies signatures and misbehaves on command.

``Receiver.script`` is a list of behaviours consumed one per request (then ``default``):
``("status", code, headers)``, ``("hang", seconds)`` (accept, never answer), ``("drip", seconds)``
(send the status line one byte every 0.2 s). Every request is recorded with its verified
webhook-id (or the verification error).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback_http import LoopbackServer

from vadmon.alerts.signing import WebhookVerificationError, verify


@dataclass
class Request:
    t: float
    path: str
    headers: dict[str, str]
    body: bytes
    verified: str | None
    error: str = ""
    seen: Any = None  # what ``Receiver.inspect`` returned at receipt time

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver(LoopbackServer):
    secrets: list[str]
    script: list[tuple] = field(default_factory=list)
    default: tuple = ("status", 200, {})
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    inspect: Callable[[Request], Any] | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._start_server(self.port)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    def wait_for(
        self, n: int, timeout: float = 10.0, ok_only: bool = False, unique: bool = False
    ) -> list[Request]:
        """The first ``n`` requests (``ok_only``: verified ones; ``unique``: the first of each
        webhook-id, as a receiver that dedupes sees them: a resend after a delivery whose
        "delivered" mark could not be stored is by design)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.verified() if ok_only or unique else list(self.requests)
            if unique:
                firsts: dict[str | None, Request] = {}
                for r in got:
                    firsts.setdefault(r.verified, r)
                got = list(firsts.values())
            if len(got) >= n:
                return got
            time.sleep(0.02)
        raise AssertionError(f"receiver got {len(self.requests)} requests, wanted {n}")

    def verified(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.verified]

    def _next(self) -> tuple:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verified, error = verify(headers, body, receiver.secrets), ""
                except WebhookVerificationError as exc:
                    verified, error = None, str(exc)
                req = Request(time.time(), self.path, headers, body, verified, error)
                if receiver.inspect is not None:
                    req.seen = receiver.inspect(req)
                with receiver.lock:
                    receiver.requests.append(req)
                action = receiver._next()
                if action[0] == "hang":
                    receiver.closing.wait(action[1])
                    return
                if action[0] == "drip":
                    end = time.monotonic() + action[1]
                    line = b"HTTP/1.1 200 OK\r\nx-drip: " + b"a" * 100_000
                    for i in range(len(line)):
                        if time.monotonic() > end or receiver.closing.is_set():
                            return
                        try:
                            self.wfile.write(line[i : i + 1])
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(0.2)
                    return
                _, code, extra = action
                if verified is None and code < 300:
                    code = 401
                self.send_response(code)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

        return Handler
