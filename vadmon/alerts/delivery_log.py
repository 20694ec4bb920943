"""Operator log lines for webhook delivery: a WARNING when an endpoint starts failing (not per
retry: repeats collapse through ``RepeatLog``), one when it recovers, and one per dead letter.

Lines name the endpoint, the event and the error only: never the URL's credentials, secrets or
payloads (the URL is redacted, the error text is the worker's own short summary)."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vadmon.runtime.log_repeat import RepeatLog

if TYPE_CHECKING:
    from vadmon.alerts.outbox import Delivery, Outbox

log = logging.getLogger("vadmon.alerts.delivery")


def failure_kind(error: str) -> str:
    """Short class of an error for collapsing: ``HTTP 500``, ``ConnectError``, ``DNS`` …"""
    match = re.match(r"(HTTP \d{3}|DNS|deadline|[A-Za-z]+Error)", error)
    return match.group(1) if match else error[:40]


@dataclass
class DeliveryLog:
    """One per worker; keyed by endpoint name."""

    counts: dict[str, int]
    repeat: RepeatLog = field(default_factory=lambda: RepeatLog(log))

    def ok(self, endpoint: str) -> None:
        self.repeat.recovered(endpoint, f"webhook {endpoint}: delivering again")

    def failed(self, endpoint: str, row: Delivery, error: str, delay_s: float) -> None:
        line = (
            f"webhook {endpoint}: delivery of event {row.event_id} ({row.kind}) failed: "
            f"{error}; retrying in {delay_s:.0f} s"
        )
        self.repeat.failed(endpoint, failure_kind(error), line, delay_s)

    def dead(self, outbox: Outbox, row: Delivery, attempts: int, reason: str) -> None:
        """Dead-letter ``row`` (outbox + counter) and say so: every dead letter is a lost alert
        until someone replays it, so each one gets its own WARNING."""
        outbox.mark_dead(row, attempts, reason, time.time())
        self.counts["dead"] += 1
        log.warning(
            "webhook %s: event %s (%s) is a dead letter after %d attempts: %s "
            "(replay with `vadmon events replay %s`)",
            row.endpoint,
            row.event_id,
            row.kind,
            attempts,
            reason[:300],
            row.msg_id,
        )
