"""A real chat-completions server on 127.0.0.1 that checks every request and misbehaves on command.

Each request is validated against the OpenAI chat-completions format as vision servers (Ollama,
vLLM, llama.cpp) accept it: ``model``, ``messages`` with roles, and user content parts of type
``text`` or ``image_url`` whose URL is a ``data:image/jpeg;base64,`` URL that decodes to a JPEG.
``mode`` says how to answer: ``answer``, ``fail`` (HTTP 500), ``hang`` (never answer),
``garbage`` (200 with a body that is not a completion).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback_http import LoopbackServer

REPLY = "Two people fight near the door; one falls to the ground."


def format_errors(body: Any) -> list[str]:
    """What is wrong with a chat-completions request body (empty: well formed)."""
    errors: list[str] = []
    if not isinstance(body, dict):
        return ["body is not an object"]
    if not isinstance(body.get("model"), str) or not body["model"]:
        errors.append("model missing")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return [*errors, "messages missing"]
    for m in msgs:
        if m.get("role") not in ("system", "user", "assistant"):
            errors.append(f"bad role {m.get('role')!r}")
        content = m.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            errors.append("content neither string nor parts")
            continue
        for part in content:
            errors += _part_errors(part)
    return errors


def _part_errors(part: Any) -> list[str]:
    if not isinstance(part, dict):
        return ["part is not an object"]
    if part.get("type") == "text":
        return [] if isinstance(part.get("text"), str) else ["text part without text"]
    if part.get("type") != "image_url":
        return [f"unknown part type {part.get('type')!r}"]
    url = (part.get("image_url") or {}).get("url", "")
    prefix = "data:image/jpeg;base64,"
    if not url.startswith(prefix):
        return ["image_url is not a JPEG data URL"]
    try:
        raw = base64.b64decode(url[len(prefix) :], validate=True)
    except ValueError:
        return ["image data is not base64"]
    return [] if raw[:3] == b"\xff\xd8\xff" else ["image data is not a JPEG"]


@dataclass
class ChatServer(LoopbackServer):
    mode: str = "answer"
    requests: list[dict[str, Any]] = field(default_factory=list)
    errors: list[list[str]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._start_server()

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                srv.requests.append(body)
                problems = format_errors(body)
                if self.path != "/v1/chat/completions":
                    problems.append(f"wrong path {self.path}")
                srv.errors.append(problems)
                srv.auth.append(self.headers.get("authorization", ""))
                if srv.mode == "hang":
                    srv.closing.wait(60)
                    return
                if srv.mode == "fail" or problems:
                    return self._send(500, b'{"error": "server error"}')
                if srv.mode == "garbage":
                    return self._send(200, b'{"choices": "not a list"}')
                reply = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}}],
                }
                self._send(200, json.dumps(reply).encode())

            def _send(self, code: int, data: bytes) -> None:
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
