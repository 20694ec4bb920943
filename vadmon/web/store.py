"""The web process's view of the outbox database: event pages, one event, feedback.

Pages are keyset-paginated on ``(start_ts, id)`` newest first, over the indexes
``vadmon.alerts.outbox_db`` creates (``events_start_id``, ``events_camera_start_id``,
``events_label_start_id``): a page costs the same at event 10 and at event 10,000, where
``OFFSET`` would scan every row before it. The cursor is opaque to clients (base64 JSON).

Feedback lives in its own table (``feedback``, created with ``CREATE TABLE IF NOT EXISTS``: a
database from before it keeps every row) so that a verdict survives retention deleting its
event; ``vadmon calibrate --from-feedback`` reads it.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vadmon.alerts.outbox import Outbox

EVENT_ID = re.compile(r"^\d{1,12}\.\d{6}-[a-z0-9]{6}$")  # vadmon.alerts.event.new_event_id
VERDICTS = ("confirmed", "false_alarm")
MAX_NOTE = 1000
ROW_KEYS = ("id", "camera", "label", "label_prob", "start_ts", "end_ts", "peak_score", "state")


class BadCursor(ValueError):
    """A cursor this server did not hand out."""


@dataclass(frozen=True)
class EventQuery:
    camera: str | None = None
    label: str | None = None
    since: float | None = None
    until: float | None = None
    cursor: str | None = None
    limit: int = 50


def encode_cursor(start_ts: float, event_id: str) -> str:
    raw = json.dumps([start_ts, event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        start, event_id = json.loads(raw)
        if not isinstance(start, int | float) or not isinstance(event_id, str):
            raise TypeError
        if not EVENT_ID.match(event_id):
            raise ValueError
    except (ValueError, TypeError):
        raise BadCursor("cursor is not one this server returned") from None
    return float(start), event_id


def has_feedback_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='feedback'")
    return row.fetchone() is not None


class EventStore:
    """One connection per thread (FastAPI runs sync routes in a pool: open one per request)."""

    def __init__(self, db_path: Path) -> None:
        self.outbox = Outbox(db_path)  # read-write: creates the schema and the feedback table
        self.conn = self.outbox.conn

    def close(self) -> None:
        self.outbox.close()

    def page(self, q: EventQuery) -> tuple[list[dict[str, Any]], str | None]:
        """One page newest first and the cursor of the next (None: this was the last)."""
        where, args = ["1=1"], []
        for column, value in (("e.camera", q.camera), ("e.label", q.label)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if q.since is not None:
            where.append("e.start_ts >= ?")
            args.append(q.since)
        if q.until is not None:
            where.append("e.start_ts < ?")
            args.append(q.until)
        if q.cursor:
            start, event_id = decode_cursor(q.cursor)
            where.append("(e.start_ts, e.id) < (?, ?)")
            args += [start, event_id]
        sql = (
            "SELECT e.*, f.verdict, f.note, f.updated_at AS feedback_at FROM events e"
            " LEFT JOIN feedback f ON f.event_id = e.id"
            f" WHERE {' AND '.join(where)} ORDER BY e.start_ts DESC, e.id DESC LIMIT ?"
        )
        rows = [event_json(r) for r in self.conn.execute(sql, [*args, q.limit + 1])]
        nxt = None
        if len(rows) > q.limit:
            rows = rows[: q.limit]
            nxt = encode_cursor(rows[-1]["start_ts"], rows[-1]["id"])
        return rows, nxt

    def get(self, event_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT e.*, f.verdict, f.note, f.updated_at AS feedback_at FROM events e"
            " LEFT JOIN feedback f ON f.event_id = e.id WHERE e.id = ?",
            (event_id,),
        ).fetchone()
        return event_json(row) if row else None

    def set_feedback(self, event_id: str, verdict: str, note: str) -> dict[str, Any] | None:
        """Store (replace) the verdict; None when the event does not exist."""
        now = time.time()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            row = self.conn.execute(
                "SELECT camera, label, peak_score FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            if row is None:
                self.conn.execute("ROLLBACK")
                return None
            self.conn.execute(
                "INSERT INTO feedback (event_id, camera, label, peak_score, verdict, note,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(event_id) DO UPDATE SET"
                " verdict=excluded.verdict, note=excluded.note, updated_at=excluded.updated_at",
                (event_id, row["camera"], row["label"], row["peak_score"], verdict, note, now),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return {"verdict": verdict, "note": note, "updated_at": now}


def event_json(row: sqlite3.Row) -> dict[str, Any]:
    """An events row as the API returns it: the row's columns, the event data, the feedback.

    Local paths (``snapshot_path``, ``clip_path``) and links signed at alert time are left
    out: clients get this server's media URLs instead (``vadmon.web.api``)."""
    data = json.loads(row["data"])
    out = {k: row[k] for k in ROW_KEYS}
    for key in ("duration_s", "peak_ts", "top3", "text", "snippets", "mode", "reason",
                "explanation", "clip_gaps"):  # fmt: skip
        if key in data:
            out[key] = data[key]
    out["has_snapshot"] = bool(data.get("snapshot_path"))
    out["has_clip"] = bool(data.get("clip_path"))
    verdict = row["verdict"]
    out["feedback"] = (
        {"verdict": verdict, "note": row["note"], "updated_at": row["feedback_at"]}
        if verdict
        else None
    )
    return out


def media_path(conn: sqlite3.Connection, event_id: str, kind: str) -> str | None:
    """The stored ``snapshot_path`` / ``clip_path`` of an event (not yet checked)."""
    row = conn.execute("SELECT data FROM events WHERE id = ?", (event_id,)).fetchone()
    if row is None:
        return None
    value = json.loads(row["data"]).get(f"{kind}_path")
    return value if isinstance(value, str) else None
