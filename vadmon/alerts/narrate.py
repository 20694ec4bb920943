"""Optional narration of an event by a vision-language model (chat-completions API).

Ollama, vLLM and llama.cpp's server all expose ``POST {base}/chat/completions`` in the OpenAI
format; a user message may mix ``text`` and ``image_url`` parts, and images travel inline as
``data:image/jpeg;base64,…`` URLs. We send the peak snapshot, a few keyframes and the structured
evidence, and store the reply as ``explanation.narrative``.

Narration must never delay or lose an alert: it starts only after ``start`` is in the outbox,
runs on its own threads under a wall-clock deadline, a concurrency limit and an hourly budget,
and its result comes back through ``poll()`` for the alert loop to enqueue as an ``explained``
webhook. Failures (refused, timeout, HTTP error, a reply that is not the format) are counted and
shown; nothing is retried, because a late narrative is worth less than a quiet one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

SYSTEM = (
    "You review alerts from a video anomaly detector watching a security camera. Given the "
    "detector's evidence and frames, say in at most three sentences what is happening, and "
    "say plainly when the frames do not support the detector."
)
MAX_REPLY_CHARS = 2000
MAX_REPLY_BYTES = 256 * 1024


@dataclass(frozen=True)
class NarrateSettings:
    url: str
    model: str
    api_key: str
    timeout_s: float
    concurrency: int
    max_per_hour: int
    keyframes: int
    max_tokens: int


@dataclass(frozen=True)
class Narration:
    event: dict[str, Any]
    narrative: str


class NarrationError(Exception):
    """The server's answer was not a usable chat-completions reply."""


def data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def build_request(
    event: dict[str, Any], images: Sequence[bytes], model: str, max_tokens: int
) -> dict[str, Any]:
    """The chat-completions body: system prompt, evidence as text, frames as image parts."""
    evidence = {
        k: event.get(k)
        for k in ("camera", "label", "label_prob", "top3", "peak_score", "duration_s", "text")
    }
    evidence["explanation"] = (event.get("explanation") or {}).get("text", "")
    parts: list[dict[str, Any]] = [
        {"type": "text", "text": "Detector evidence:\n" + json.dumps(evidence, indent=1)}
    ]
    parts += [{"type": "image_url", "image_url": {"url": data_url(jpg)}} for jpg in images]
    return {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": parts},
        ],
    }


def parse_reply(raw: bytes) -> str:
    """``choices[0].message.content`` as plain text, or NarrationError."""
    if len(raw) > MAX_REPLY_BYTES:
        raise NarrationError("reply too large")
    try:
        body = json.loads(raw)
        content = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise NarrationError("reply is not a chat completion") from None
    if isinstance(content, list):  # some servers answer with content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        raise NarrationError("reply has no text")
    return content.strip()[:MAX_REPLY_CHARS]


def keyframes(frames: Sequence[Any], start_ts: float, peak_ts: float, k: int) -> list[bytes]:
    """Up to ``k`` preview JPEGs spread from the event's start to its peak (``.ts``/``.jpeg``)."""
    if k <= 0:
        return []
    span = [f for f in frames if start_ts <= f.ts <= max(peak_ts, start_ts)]
    if not span:
        return []
    step = max(1, len(span) // k)
    return [f.jpeg for f in span[::step][:k]]


class Narrator:
    """Bounded background narration; ``submit`` never blocks, ``poll`` hands results back."""

    def __init__(self, settings: NarrateSettings) -> None:
        self.s = settings
        self.pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="vadmon-narrate")
        self.done: queue.Queue[Narration] = queue.Queue()
        self.started: deque[float] = deque()
        self.in_flight = 0
        self.lock = threading.Lock()
        self.counters = {
            "narrations": 0,
            "narration_failures": 0,
            "narration_skipped": 0,
            "narration_timeouts": 0,
        }

    def submit(self, event: dict[str, Any], images: Sequence[bytes]) -> bool:
        """Start one narration unless the hourly budget or the queue bound says no."""
        now = time.monotonic()
        while self.started and self.started[0] < now - 3600:
            self.started.popleft()
        with self.lock:
            busy = self.in_flight >= 4 * self.s.concurrency
            if busy or len(self.started) >= self.s.max_per_hour:
                self.counters["narration_skipped"] += 1
                return False
            self.in_flight += 1
        self.started.append(now)
        self.pool.submit(self._job, dict(event), list(images))
        return True

    def poll(self) -> list[Narration]:
        out = []
        while True:
            try:
                out.append(self.done.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _job(self, event: dict[str, Any], images: list[bytes]) -> None:
        try:
            text = asyncio.run(self._ask(event, images))
            self.done.put(Narration(event, text))
            self.counters["narrations"] += 1
        except TimeoutError:
            self.counters["narration_timeouts"] += 1
        except (httpx.HTTPError, NarrationError, OSError):
            self.counters["narration_failures"] += 1
        finally:
            with self.lock:
                self.in_flight -= 1

    async def _ask(self, event: dict[str, Any], images: list[bytes]) -> str:
        body = build_request(event, images, self.s.model, self.s.max_tokens)
        headers = {"Content-Type": "application/json"}
        if self.s.api_key:
            headers["Authorization"] = f"Bearer {self.s.api_key}"
        timeout = httpx.Timeout(self.s.timeout_s)
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        ) as client:

            async def attempt() -> bytes:
                url = f"{self.s.url}/chat/completions"
                async with client.stream("POST", url, json=body, headers=headers) as resp:
                    if resp.status_code != 200:
                        raise NarrationError(f"HTTP {resp.status_code}")
                    raw = b""
                    async for chunk in resp.aiter_bytes():
                        raw += chunk
                        if len(raw) > MAX_REPLY_BYTES:
                            raise NarrationError("reply too large")
                    return raw

            raw = await asyncio.wait_for(attempt(), self.s.timeout_s)
        return parse_reply(raw)
