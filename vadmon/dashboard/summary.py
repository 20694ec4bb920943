"""The stop summary's numbers, read from the outbox database rather than the last heartbeats.

Why: heartbeats are a second old at best and the alerts process writes its last events and
deliveries while it shuts down, so a summary from them said "5 events" where the database had 6.
The database is what ``vadmon events`` and the webhook receivers see; read-only, short timeout.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def run_totals(db: Path, since: float) -> dict[str, int] | None:
    """Events opened since ``since`` (unix s), deliveries made or failed since then, and what
    is still pending; None when the database is missing or unreadable (then say so)."""
    if not db.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error:
        return None
    try:
        one = lambda sql, *args: int(con.execute(sql, args).fetchone()[0])  # noqa: E731
        return {
            "events": one(  # a provisional alert is an event only once confirmed (start)
                "SELECT COUNT(*) FROM events WHERE start_ts >= ?"
                " AND state NOT IN ('provisional', 'withdrawn')",
                since,
            ),
            "delivered": one(
                "SELECT COUNT(*) FROM deliveries WHERE status='delivered' AND delivered_at >= ?",
                since,
            ),
            "dead": one(
                "SELECT COUNT(*) FROM deliveries WHERE status='dead' AND updated_at >= ?", since
            ),
            "pending": one("SELECT COUNT(*) FROM deliveries WHERE status='pending'"),
        }
    except sqlite3.Error:
        return None
    finally:
        con.close()
