"""Webhook delivery worker: outbox rows → signed HTTP POSTs, in its own thread.

The worker owns an asyncio loop in a background thread so that (a) the alert loop never waits on
the network and (b) every attempt runs under one wall-clock deadline (``asyncio.wait_for``):
socket timeouts alone reset on every byte, so a receiver dripping one byte a second would hold
an attempt forever. Endpoints are served concurrently (one slow receiver does not delay the
others) and rows of one endpoint in order.

Policy per response: 2xx delivered; 410 Gone disables the endpoint; 429/503 honour
``Retry-After``; 3xx is a failure (redirects are never followed: a redirect could point a signed
alert anywhere); any other answer retries with jittered exponential backoff until ``max_attempts``; no answer at
all (DNS down, connection refused, the deadline) retries until the row is ``network_retry_s``
old instead, so an outage of minutes never dead-letters the alerts created in it. A dead
letter is replayable with the same id.

Endpoints are independent: each has at most one task in flight and the loop starts the next
round for an endpoint as soon as its own task ends, so a hung receiver (cut at its deadline)
never delays the rows of a healthy one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from vadmon.alerts.delivery_log import DeliveryLog
from vadmon.alerts.outbox import Delivery, Outbox
from vadmon.alerts.signing import decode_secret, sign
from vadmon.alerts.webhook_url import (
    AllowPrivate,
    UrlRefused,
    UrlUnresolved,
    pinned_request,
    resolve_approved,
)
from vadmon.errors import VadmonError
from vadmon.redact import redact_url
from vadmon.runtime.backoff import backoff_delay
from vadmon.runtime.limits import DNS_TIMEOUT_S
from vadmon.runtime.status_schema import ALERT_LATENCY_BUCKETS, Histogram

log = logging.getLogger("vadmon.alerts.delivery")
MAX_PAYLOAD_BYTES = 20_000


@dataclass(frozen=True)
class RetryPolicy:
    """One endpoint's patience: receivers differ (a chat relay vs. a slow ticketing system)."""

    max_attempts: int
    backoff_initial_s: float
    backoff_max_s: float
    timeout_s: float  # one attempt's deadline (request and answer)
    network_retry_s: float  # no answer (DNS, connect, deadline): retried until this old


@dataclass(frozen=True)
class Endpoint:
    """One webhook receiver. ``name`` identifies it in the outbox (keep it stable).

    ``events``: the kinds this receiver subscribed to; ``retry``: its own policy."""

    name: str
    url: str
    secrets: tuple[str, ...]
    allow_private: AllowPrivate = False  # True, False or a tuple of CIDRs (vadmon.netpolicy)
    events: tuple[str, ...] = field(kw_only=True)
    retry: RetryPolicy = field(kw_only=True)

    def wants(self, kind: str) -> bool:
        return kind in self.events

    def __post_init__(self) -> None:
        for s in self.secrets:
            decode_secret(s)  # refuse short/malformed secrets at configuration time
        if not self.secrets:
            raise VadmonError("webhook endpoint has no secret", f"endpoint {self.name!r}")

    def __repr__(self) -> str:  # never print secrets
        return f"Endpoint(name={self.name!r}, url={redact_url(self.url)!r}, secrets=<{len(self.secrets)}>)"


@dataclass(frozen=True)
class DeliverySettings:
    """Worker-wide settings; retries are per endpoint (``Endpoint.retry``)."""

    endpoints: tuple[Endpoint, ...]
    connect_timeout_s: float
    max_retry_after_s: float
    poll_interval_s: float
    batch: int


def new_msg_id() -> str:
    return "msg_" + uuid.uuid4().hex


def build_body(
    kind: str, data: dict[str, Any], ts: float | None = None, extra: dict[str, Any] | None = None
) -> str:
    """Standard Webhooks payload ``{type, timestamp, data}`` (+ ``extra`` top-level fields);
    stored and re-sent byte-identical."""
    when = datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc)
    top = {"type": f"vadmon.event.{kind}", "timestamp": when.isoformat(), **(extra or {})}
    body = json.dumps({**top, "data": data}, separators=(",", ":"))
    if len(body.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"webhook payload is {len(body)} bytes, limit {MAX_PAYLOAD_BYTES}")
    return body


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def give_up(policy: RetryPolicy, result: _Result, attempts: int, age_s: float) -> bool:
    """Dead letter now? An answer counts attempts; no answer (network) only ages the row."""
    if result.status is None:
        return age_s >= policy.network_retry_s
    return attempts >= policy.max_attempts


@dataclass
class _Result:
    status: int | None = None
    retry_after: str | None = None
    error: str = ""
    location: str = ""


@dataclass
class DeliveryWorker:
    """Background sender; ``counters()`` is safe to call from any thread."""

    db_path: str
    settings: DeliverySettings
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._counts: dict[str, int] = dict.fromkeys(
            ("attempts", "delivered", "failed", "dead", "disabled", "refused", "dns_errors"),
            0,
        )
        self._counts["outbox_errors"] = 0
        self._stop = threading.Event()
        # Set while the worker thread waits for its next due row or a ``wake()``: a caller that
        # sees it set knows a new row would otherwise wait for the poll interval.
        self.idle = threading.Event()
        self._flush_until = 0.0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._endpoints = {ep.name: ep for ep in self.settings.endpoints}
        self._log = DeliveryLog(self._counts)
        # queued → delivered (2xx), one observation per delivery (the heartbeat reports it)
        self.latency = Histogram(ALERT_LATENCY_BUCKETS)

    # --- control (any thread) -------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vadmon-delivery", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Called after enqueue so new alerts go out without waiting for the poll interval."""
        loop, ev = self._loop, self._wake
        if loop is not None and ev is not None:
            loop.call_soon_threadsafe(ev.set)

    def stop(self, flush_s: float) -> None:
        """Keep delivering due rows for up to ``flush_s``, then stop; pending rows stay queued."""
        self._flush_until = time.time() + flush_s
        self._stop.set()
        self.wake()
        if self._thread is not None:
            deadline = max([ep.retry.timeout_s for ep in self._endpoints.values()] + [0.0])
            self._thread.join(flush_s + deadline + 2.0)

    def counters(self) -> dict[str, int]:
        return dict(self._counts)

    # --- worker thread --------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._main())

    def _client(self) -> httpx.AsyncClient:
        s = self.settings
        timeout = httpx.Timeout(None, connect=s.connect_timeout_s)  # per request: _post
        return httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False)

    async def _once_with_client(self) -> int:
        outbox = Outbox(self.db_path)
        try:
            async with self._client() as client:
                return await self._deliver_due(outbox, client)
        finally:
            outbox.close()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        outbox = Outbox(self.db_path)
        busy: dict[str, asyncio.Task] = {}  # endpoint → its one task in flight
        try:
            async with self._client() as client:
                while True:
                    self._wake.clear()
                    self._reap(busy)
                    sent = self._start_due(outbox, client, busy)
                    stopping = self._stop.is_set()
                    if stopping and ((sent == 0 and not busy) or time.time() >= self._flush_until):
                        return
                    await self._sleep(outbox, busy)
        finally:
            for task in busy.values():  # its row stays pending: tried again next start
                task.cancel()
            await asyncio.gather(*busy.values(), return_exceptions=True)
            outbox.close()

    def _start_due(self, outbox: Outbox, client: httpx.AsyncClient, busy: dict) -> int:
        """Start one task per endpoint that has due rows and none in flight."""
        rows = outbox.due(time.time(), self.settings.batch, skip_endpoints=tuple(busy))
        by_endpoint: dict[str, list[Delivery]] = {}
        for row in rows:
            by_endpoint.setdefault(row.endpoint, []).append(row)
        for name, items in by_endpoint.items():
            busy[name] = asyncio.create_task(self._serve(outbox, client, name, items))
        return len(rows)

    def _reap(self, busy: dict[str, asyncio.Task]) -> None:
        """Forget finished tasks; an outbox error is counted (the rows are tried again)."""
        for name, task in list(busy.items()):
            if not task.done():
                continue
            del busy[name]
            failure = task.exception()
            if isinstance(failure, sqlite3.Error):
                self._counts["outbox_errors"] += 1
                log.warning("outbox update failed (%s); retrying", failure)
            elif failure is not None:
                raise failure

    async def _sleep(self, outbox: Outbox, busy: dict[str, asyncio.Task] | None = None) -> None:
        """Until a row is due (of an endpoint not busy), a wake(), or a busy task ends."""
        assert self._wake is not None
        busy = busy or {}
        wait = self.settings.poll_interval_s
        nxt = outbox.next_due_at(skip_endpoints=tuple(busy))
        if nxt is not None:
            wait = min(wait, max(0.0, nxt - time.time()))
        if self._stop.is_set():
            wait = min(wait, max(0.0, self._flush_until - time.time()))
        if not busy:
            self.idle.set()
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([waker, *busy.values()], timeout=wait,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            waker.cancel()
            self.idle.clear()

    async def _deliver_due(self, outbox: Outbox, client: httpx.AsyncClient) -> int:
        rows = outbox.due(time.time(), self.settings.batch)
        by_endpoint: dict[str, list[Delivery]] = {}
        for row in rows:
            by_endpoint.setdefault(row.endpoint, []).append(row)
        jobs = [self._serve(outbox, client, name, items) for name, items in by_endpoint.items()]
        for failure in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(failure, sqlite3.Error):
                # e.g. a full disk: the row stays as it was and is tried again on the next
                # round (a receiver may see a message twice, with the same webhook-id)
                self._counts["outbox_errors"] += 1
                log.warning("outbox update failed (%s); retrying", failure)
            elif isinstance(failure, BaseException):
                raise failure
        return len(rows)

    async def _serve(
        self, outbox: Outbox, client: httpx.AsyncClient, name: str, rows: list[Delivery]
    ) -> None:
        ep = self._endpoints.get(name)
        for row in rows:
            if ep is None:
                self._log.dead(outbox, row, row.attempts, "endpoint no longer configured")
                continue
            if not await self._deliver(outbox, client, ep, row):
                return  # endpoint disabled: the rest of its rows were disabled too

    async def _deliver(
        self, outbox: Outbox, client: httpx.AsyncClient, ep: Endpoint, row: Delivery
    ) -> bool:
        try:
            addrs = await asyncio.wait_for(resolve_approved(ep.url, ep.allow_private), DNS_TIMEOUT_S)
        except (UrlUnresolved, asyncio.TimeoutError) as exc:  # DNS down: retry like any failure
            self._counts["dns_errors"] += 1
            reason = exc.what if isinstance(exc, UrlUnresolved) else "DNS lookup timed out"
            result = _Result(error=f"DNS: {reason}"[:300])
        except UrlRefused as exc:  # resolves, but to an address we must not send to
            self._counts["refused"] += 1
            self._log.dead(outbox, row, row.attempts, f"refused: {exc.line()}")
            return True
        else:
            self._counts["attempts"] += 1
            result = await self._post(client, ep, row, addrs[0])
        now = time.time()
        attempts = row.attempts + 1
        if result.status is not None and 200 <= result.status < 300:
            outbox.mark_delivered(row, attempts, now)
            self._counts["delivered"] += 1
            self.latency.observe(now - row.created_at)
            self._log.ok(ep.name)
            return True
        if result.status == 410:
            n = outbox.disable_endpoint(ep.name, f"410 Gone from {redact_url(ep.url)}", now)
            self._counts["disabled"] += n
            return False
        self._counts["failed"] += 1
        error = result.error or f"HTTP {result.status}"
        if result.status is not None and 300 <= result.status < 400:
            error = (
                f"HTTP {result.status} redirect not followed (Location: {result.location[:200]})"
            )
        policy = ep.retry
        if give_up(policy, result, attempts, now - row.created_at):
            self._log.dead(outbox, row, attempts, f"{error} after {attempts} attempts")
            return True
        delay = self._backoff(policy, attempts)
        if result.status in (429, 503):
            after = parse_retry_after(result.retry_after, now)
            if after is not None:
                delay = min(after, self.settings.max_retry_after_s)
        outbox.mark_retry(row, attempts, now + delay, error, now)
        self._log.failed(ep.name, row, error, delay)
        return True

    def _backoff(self, policy: RetryPolicy, attempts: int) -> float:
        return backoff_delay(attempts, policy.backoff_initial_s, policy.backoff_max_s, self.rng)

    async def _post(
        self, client: httpx.AsyncClient, ep: Endpoint, row: Delivery, addr: str
    ) -> _Result:
        """POST to ``addr``, the address the private-address check approved: no second DNS
        lookup between check and connect (DNS rebinding); Host and TLS SNI keep the name."""
        body = row.payload.encode()
        headers = sign(list(ep.secrets), row.msg_id, body)
        headers.update({"content-type": "application/json", "user-agent": "vadmon-webhooks/1"})
        url, host, extensions = pinned_request(ep.url, addr)
        headers["host"] = host

        deadline = ep.retry.timeout_s
        timeout = httpx.Timeout(deadline, connect=min(deadline, self.settings.connect_timeout_s))

        async def attempt() -> _Result:
            async with client.stream(
                "POST", url, content=body, headers=headers, timeout=timeout, extensions=extensions
            ) as resp:
                return _Result(
                    status=resp.status_code,
                    retry_after=resp.headers.get("retry-after"),
                    location=resp.headers.get("location", ""),
                )

        try:
            return await asyncio.wait_for(attempt(), deadline)
        except asyncio.TimeoutError:
            return _Result(error=f"deadline of {deadline:g} s exceeded")
        except httpx.HTTPError as exc:
            return _Result(error=f"{type(exc).__name__}: {str(exc)[:200]}")
