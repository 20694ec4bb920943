"""The outbox's SQLite file: schema, journal settings and private file modes.

Journal: WAL, so the CLI can read while the alert process writes (one writer process, any
number of readers). ``synchronous=FULL``: in WAL mode NORMAL survives a process crash but may
drop the last commits on power loss; alerts are rare (the event logic bounds them), so one fsync
per commit costs nothing noticeable and buys "nothing lost" across power cuts too.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from vadmon.alerts.lifecycle import EVENT_ROW_LIFECYCLE, EventRowState
from vadmon.atomic import PRIVATE_FILE, make_dirs
from vadmon.errors import VadmonError

WAL_LIMIT_BYTES = 1 << 20  # the WAL is truncated to this after a checkpoint

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    camera TEXT NOT NULL,
    label TEXT NOT NULL,
    label_prob REAL,
    start_ts REAL NOT NULL,
    end_ts REAL,
    peak_score REAL,
    peak_ts REAL,
    state TEXT NOT NULL,            -- alerts/lifecycle.EventRowState
    data TEXT NOT NULL,             -- last event JSON (payload data)
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_camera_start ON events(camera, start_ts);
CREATE INDEX IF NOT EXISTS events_start_id ON events(start_ts, id);  -- web: keyset pages
CREATE INDEX IF NOT EXISTS events_camera_start_id ON events(camera, start_ts, id);
CREATE INDEX IF NOT EXISTS events_label_start_id ON events(label, start_ts, id);
CREATE TABLE IF NOT EXISTS feedback (   -- a reviewer's verdict; kept when retention drops the event
    event_id TEXT PRIMARY KEY,
    camera TEXT NOT NULL,
    label TEXT,
    peak_score REAL,
    verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'false_alarm')),
    note TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    msg_id TEXT NOT NULL,           -- = webhook-id, identical for every attempt and replay
    endpoint TEXT NOT NULL,
    event_id TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,          -- exact JSON body, signed as stored
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'disabled')),
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    delivered_at REAL,
    PRIMARY KEY (msg_id, endpoint)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event_id);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,
    disabled_at REAL,
    reason TEXT
);
CREATE VIEW IF NOT EXISTS dead_letters AS
    SELECT msg_id, endpoint, event_id, kind, attempts, last_error, created_at, updated_at
    FROM deliveries WHERE status = 'dead';
"""


def connect(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    """One connection per thread; readers open read-only so they never create or lock files."""
    path = Path(path)
    if readonly:
        if not path.is_file():
            raise VadmonError(
                f"no outbox database at {path}", "--db", "run the alert process or pass --db"
            )
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    else:
        _create_private(path)
        conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # new files: retention can shrink them
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _create_private(path: Path) -> None:
    """The outbox holds event data: its directory (if we create it) 0700, the file 0600.

    SQLite gives the ``-wal``/``-shm`` files the database file's mode, so creating the empty
    database file ourselves with 0600 is enough, whatever the umask."""
    make_dirs(path.parent, private=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        return
    os.fchmod(fd, PRIVATE_FILE)
    os.close(fd)


def upsert_event(
    db: sqlite3.Connection, ev: dict[str, Any], state: EventRowState, t: float
) -> None:
    """Insert or move an event row; a move ``EVENT_ROW_LIFECYCLE`` does not list raises
    (rewriting a row in its own state, e.g. for an ``explained`` message, is no move)."""
    row = db.execute("SELECT state FROM events WHERE id=?", (ev["id"],)).fetchone()
    if row is not None and row[0] != state:
        EVENT_ROW_LIFECYCLE.check(EventRowState(row[0]), EventRowState(state))
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
