"""Durable SQLite outbox: the event log plus one row per (webhook message, endpoint).

An alert is committed here, in one transaction with its event row, *before* anyone tries to
send it; the delivery worker only ever reads rows back. So a crash at any moment either loses
nothing or loses an alert that was never raised.

The file itself (schema, WAL, fsync policy, 0600) is ``vadmon.alerts.outbox_db``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vadmon.alerts.outbox_check import check_outbox
from vadmon.alerts.outbox_db import connect
from vadmon.errors import VadmonError

STATUSES = ("pending", "delivered", "dead", "disabled")
# retention may delete these (never open)
FINISHED_EVENT_STATES = ("closed", "interrupted", "suppressed", "withdrawn")
# Each delivery worker reads only its own channel's rows. MQTT rows' endpoint is
# "mqtt:<topic>" (vadmon.alerts.mqtt_worker); webhook names cannot contain ':'.
WEBHOOK, MQTT = "webhook", "mqtt"
_CHANNEL_SQL = {WEBHOOK: "endpoint NOT LIKE 'mqtt:%'", MQTT: "endpoint LIKE 'mqtt:%'"}


@dataclass(frozen=True)
class Delivery:
    msg_id: str
    endpoint: str
    event_id: str | None
    kind: str
    payload: str
    attempts: int
    next_attempt_at: float
    status: str
    last_error: str | None
    created_at: float


class Outbox:
    """Typed access to the outbox database; not shared between threads (open one each)."""

    def __init__(self, path: str | Path, readonly: bool = False, max_pending: int = 10_000) -> None:
        self.path = Path(path)
        self.max_pending = max_pending
        if not readonly:
            check_outbox(self.path)  # never write to a corrupt file (one line instead)
        try:
            self.conn = connect(self.path, readonly=readonly)
        except (sqlite3.Error, OSError) as exc:  # read-only or full storage: one clear line
            reason = getattr(exc, "strerror", None) or str(exc)
            raise VadmonError(
                f"cannot open the outbox database ({reason})",
                str(self.path),
                "make storage.dir writable and give it free space",
            ) from None

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. A failed COMMIT (e.g. ``database or disk is full``) is rolled
        back too, so the connection is usable for the caller's retry."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise

    # --- writer side (alert process) -------------------------------------------------------

    def enqueue(
        self,
        event: dict[str, Any],
        kind: str,
        msg_id: str,
        body: str,
        endpoints: list[str],
        state: str = "open",
        now: float | None = None,
        own: dict[str, str] | None = None,
    ) -> list[str]:
        """Store the event state and one delivery per endpoint atomically (``own``: endpoints
        with a body of their own, e.g. with the snapshot embedded; the rest get ``body``).

        A message to a disabled endpoint is stored as ``disabled``; beyond ``max_pending``
        pending rows it is stored ``dead`` (visible, replayable) so the queue stays bounded.
        Returns the statuses stored, one per endpoint.
        """
        t = time.time() if now is None else now
        statuses: list[str] = []
        with self._tx() as db:
            self._upsert_event(db, event, state, t)
            pending = db.execute("SELECT COUNT(*) FROM deliveries WHERE status='pending'")
            n_pending = pending.fetchone()[0]
            for endpoint in endpoints:
                disabled = db.execute(
                    "SELECT 1 FROM endpoints WHERE name=? AND disabled_at IS NOT NULL", (endpoint,)
                ).fetchone()
                status, error = "pending", None
                if disabled:
                    status, error = "disabled", "endpoint disabled (410 Gone)"
                elif n_pending >= self.max_pending:
                    status, error = "dead", f"outbox full ({self.max_pending} pending)"
                db.execute(
                    "INSERT OR IGNORE INTO deliveries (msg_id, endpoint, event_id, kind, payload,"
                    " attempts, next_attempt_at, status, last_error, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
                    (
                        msg_id,
                        endpoint,
                        event.get("id"),
                        kind,
                        (own or {}).get(endpoint, body),
                        t,
                        status,
                        error,
                        t,
                        t,
                    ),  # fmt: skip
                )
                n_pending += status == "pending"
                statuses.append(status)
        return statuses

    def record_event(self, event: dict[str, Any], state: str, now: float | None = None) -> None:
        with self._tx() as db:
            self._upsert_event(db, event, state, time.time() if now is None else now)

    @staticmethod
    def _upsert_event(db: sqlite3.Connection, ev: dict[str, Any], state: str, t: float) -> None:
        db.execute(
            "INSERT INTO events (id, camera, label, label_prob, start_ts, end_ts, peak_score,"
            " peak_ts, state, data, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET label=excluded.label, label_prob=excluded.label_prob,"
            " end_ts=excluded.end_ts, peak_score=excluded.peak_score, peak_ts=excluded.peak_ts,"
            " state=excluded.state, data=excluded.data, updated_at=excluded.updated_at",
            (
                ev["id"],
                ev["camera"],
                ev.get("label", ""),
                ev.get("label_prob"),
                ev["start_ts"],
                ev.get("end_ts"),
                ev.get("peak_score"),
                ev.get("peak_ts"),
                state,
                json.dumps(ev, separators=(",", ":")),
                t,
            ),
        )

    def event(self, event_id: str) -> tuple[str, dict[str, Any]] | None:
        """(state, last stored data) of one event, or None."""
        row = self.conn.execute("SELECT state, data FROM events WHERE id=?", (event_id,)).fetchone()
        return (row["state"], json.loads(row["data"])) if row else None

    def open_events(self) -> list[dict[str, Any]]:
        """Events a previous run started (or ended without sending ``end``) and then died."""
        rows = self.conn.execute(
            "SELECT data FROM events WHERE state IN ('open', 'ending') ORDER BY start_ts"
        )
        return [json.loads(r["data"]) for r in rows]

    # --- delivery worker ------------------------------------------------------------------

    def due(
        self,
        now: float,
        limit: int = 100,
        skip_endpoints: tuple[str, ...] = (),
        channel: str = WEBHOOK,
    ) -> list[Delivery]:
        """Pending rows of ``channel`` due by ``now``, oldest first; ``skip_endpoints``: those
        busy sending."""
        rows = self.conn.execute(
            "SELECT * FROM deliveries WHERE status='pending' AND next_attempt_at <= ?"
            f" AND {_CHANNEL_SQL[channel]}{_not_in(skip_endpoints)}"
            " ORDER BY created_at, rowid LIMIT ?",
            (now, *skip_endpoints, limit),
        )
        return [_delivery(r) for r in rows]

    def pending_event_ids(self) -> set[str]:
        """Events a row (webhook or MQTT) still waits to deliver (retention keeps their media)."""
        rows = self.conn.execute(
            "SELECT DISTINCT event_id FROM deliveries WHERE status='pending'"
            " AND event_id IS NOT NULL"
        )
        return {r[0] for r in rows}

    def next_due_at(
        self, skip_endpoints: tuple[str, ...] = (), channel: str = WEBHOOK
    ) -> float | None:
        row = self.conn.execute(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status='pending'"
            f" AND {_CHANNEL_SQL[channel]}" + _not_in(skip_endpoints),
            skip_endpoints,
        ).fetchone()
        return row[0]

    def mark_delivered(self, d: Delivery, attempts: int, now: float) -> None:
        self._set(d, "delivered", attempts, d.next_attempt_at, None, now, delivered_at=now)

    def mark_retry(
        self, d: Delivery, attempts: int, next_at: float, error: str, now: float
    ) -> None:
        self._set(d, "pending", attempts, next_at, error, now)

    def mark_dead(self, d: Delivery, attempts: int, error: str, now: float) -> None:
        self._set(d, "dead", attempts, d.next_attempt_at, error, now)

    def _set(
        self,
        d: Delivery,
        status: str,
        attempts: int,
        next_at: float,
        error: str | None,
        now: float,
        delivered_at: float | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET status=?, attempts=?, next_attempt_at=?, last_error=?,"
                " updated_at=?, delivered_at=? WHERE msg_id=? AND endpoint=?",
                (status, attempts, next_at, error, now, delivered_at, d.msg_id, d.endpoint),
            )

    def disable_endpoint(self, endpoint: str, reason: str, now: float | None = None) -> int:
        """410 Gone: stop sending there; its pending rows become ``disabled`` (not dead)."""
        t = time.time() if now is None else now
        with self._tx() as db:
            db.execute(
                "INSERT INTO endpoints (name, disabled_at, reason) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET disabled_at=excluded.disabled_at,"
                " reason=excluded.reason",
                (endpoint, t, reason),
            )
            cur = db.execute(
                "UPDATE deliveries SET status='disabled', last_error=?, updated_at=?"
                " WHERE endpoint=? AND status='pending'",
                (reason, t, endpoint),
            )
            return cur.rowcount

    def disabled_endpoints(self) -> dict[str, str]:
        rows = self.conn.execute("SELECT name, reason FROM endpoints WHERE disabled_at IS NOT NULL")
        return {r["name"]: r["reason"] or "" for r in rows}

    # --- retention --------------------------------------------------------------------------

    def live_bytes(self) -> int:
        """Bytes the rows occupy (pages in use); the file itself may hold free pages too."""
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def prune(self, before: float | None, max_bytes: int | None, batch: int = 50) -> int:
        """Delete finished events (closed, no webhook row pending) with their webhook rows:
        those last updated before ``before``, then oldest first while over ``max_bytes``.
        Returns the number of events deleted; free pages go back to the file system."""
        removed = 0
        if before is not None:
            removed += self._delete_finished("AND e.updated_at < ?", (before,))
        while max_bytes is not None and self.live_bytes() > max_bytes:
            n = self._delete_finished("", (), batch)
            if n == 0:
                break  # only open events / pending rows left: they are never deleted
            removed += n
        if removed:
            self.conn.executescript("PRAGMA incremental_vacuum;")  # steps to the end
        return removed

    def _delete_finished(self, extra: str, args: tuple[float, ...], limit: int = -1) -> int:
        states = ",".join("?" * len(FINISHED_EVENT_STATES))
        with self._tx() as db:
            ids = [
                r[0]
                for r in db.execute(
                    f"SELECT e.id FROM events e WHERE e.state IN ({states}) {extra}"
                    " AND NOT EXISTS (SELECT 1 FROM deliveries d"
                    "   WHERE d.event_id = e.id AND d.status = 'pending')"
                    " ORDER BY e.updated_at, e.start_ts LIMIT ?",
                    (*FINISHED_EVENT_STATES, *args, limit),
                )
            ]
            db.executemany("DELETE FROM deliveries WHERE event_id = ?", [(i,) for i in ids])
            db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
        return len(ids)

    # --- readers (CLI, dashboard) ---------------------------------------------------------

    def list_events(
        self, camera: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM events WHERE 1=1", []
        if camera:
            sql += " AND camera=?"
            args.append(camera)
        if since is not None:
            sql += " AND start_ts>=?"
            args.append(since)
        sql += " ORDER BY start_ts DESC LIMIT ?"
        args.append(limit)
        return [dict(r) for r in self.conn.execute(sql, args)]

    def feedback(self, event_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Reviewers' verdicts (the web page's buttons) by event id, all or those given; {}
        from an outbox older than the ``feedback`` table (read-only opens do not create it)."""
        found = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='feedback'"
        ).fetchone()
        if found is None:
            return {}
        rows = self.conn.execute("SELECT * FROM feedback ORDER BY updated_at").fetchall()
        wanted = None if event_ids is None else set(event_ids)
        return {r["event_id"]: dict(r) for r in rows if wanted is None or r["event_id"] in wanted}

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM dead_letters ORDER BY updated_at DESC")
        return [dict(r) for r in rows]

    def deliveries(self, msg_id: str | None = None) -> list[Delivery]:
        if msg_id is None:
            rows = self.conn.execute("SELECT * FROM deliveries ORDER BY created_at, rowid")
        else:
            rows = self.conn.execute("SELECT * FROM deliveries WHERE msg_id=?", (msg_id,))
        return [_delivery(r) for r in rows]

    def replay(self, msg_id: str, now: float | None = None) -> int:
        """Re-queue dead letters with this webhook-id (same id, same body, attempts reset)."""
        t = time.time() if now is None else now
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET status='pending', attempts=0, next_attempt_at=?,"
                " updated_at=?, last_error='replayed: ' || COALESCE(last_error, '')"
                " WHERE msg_id=? AND status='dead'",
                (t, t, msg_id),
            )
            return cur.rowcount

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for row in self.conn.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status"):
            out[row[0]] = row[1]
        return out

    def queue_counts(self) -> dict[str, int]:
        """The operator's view: ``pending`` = not tried yet, ``retrying`` = failed at least once
        and due again (both are ``pending`` rows here), ``delivered``, ``dead``."""
        counts = self.counts()
        row = self.conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE status='pending' AND attempts>0"
        ).fetchone()
        retrying = int(row[0])
        return {
            "pending": counts.get("pending", 0) - retrying,
            "retrying": retrying,
            "delivered": counts.get("delivered", 0),
            "dead": counts.get("dead", 0),
        }


def _not_in(endpoints: tuple[str, ...]) -> str:
    """SQL ``AND endpoint NOT IN (?, …)`` for that many parameters ("" for none)."""
    return f" AND endpoint NOT IN ({', '.join('?' * len(endpoints))})" if endpoints else ""


def _delivery(r: sqlite3.Row) -> Delivery:
    return Delivery(
        msg_id=r["msg_id"],
        endpoint=r["endpoint"],
        event_id=r["event_id"],
        kind=r["kind"],
        payload=r["payload"],
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        status=r["status"],
        last_error=r["last_error"],
        created_at=r["created_at"],
    )
