"""Retained MQTT state: the latest value of every state topic, and what was ever announced.

``StateStore`` is shared by the alert loop (writes) and the MQTT worker (publishes): latest
value wins, so a broker that was away for an hour gets one message per topic on reconnect,
not an hour of history. ``Announced`` lives in the outbox database and remembers every
retained topic vadmon published, so a camera removed from the config (or discovery turned
off, or a new topic prefix) has its retained topics cleared from the broker — Home Assistant
deletes an entity whose discovery config becomes an empty retained message.
"""

from __future__ import annotations

import sqlite3
import threading
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS mqtt_announced (
    topic TEXT PRIMARY KEY,
    camera TEXT NOT NULL,
    kind TEXT NOT NULL,             -- discovery | state
    updated_at REAL NOT NULL
);
"""


class StateStore:
    """Thread-safe latest-value map: retained topics plus rate-limited transient ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retained: dict[str, bytes] = {}
        self._dirty: dict[str, tuple[bytes, bool]] = {}

    def set(self, topic: str, payload: bytes | str, retain: bool = True) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        with self._lock:
            if retain:
                if self._retained.get(topic) == data:
                    return  # unchanged: nothing to send
                self._retained[topic] = data
            self._dirty[topic] = (data, retain)

    def take_dirty(self) -> list[tuple[str, bytes, bool]]:
        """Changes since the last call, oldest first (one per topic: the newest value)."""
        with self._lock:
            items, self._dirty = self._dirty, {}
        return [(t, p, r) for t, (p, r) in items.items()]

    def retained(self) -> list[tuple[str, bytes]]:
        """Every retained topic's latest value (re-published on each (re)connect); marks
        them clean, as they are about to be sent."""
        with self._lock:
            self._dirty = {t: v for t, v in self._dirty.items() if not v[1]}
            return list(self._retained.items())

    def get(self, topic: str) -> bytes | None:
        with self._lock:
            return self._retained.get(topic)


class Announced:
    """The record of published retained topics (one table in the outbox file)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(SCHEMA)
        self._known = {r[0] for r in conn.execute("SELECT topic FROM mqtt_announced")}

    def record(self, topic: str, camera: str, kind: str) -> None:
        """Written before the publish, so a crash in between still knows to clear it."""
        if topic in self._known:
            return
        self.conn.execute(
            "INSERT OR REPLACE INTO mqtt_announced (topic, camera, kind, updated_at)"
            " VALUES (?, ?, ?, ?)",
            (topic, camera, kind, time.time()),
        )
        self._known.add(topic)

    def stale(self, cameras: tuple[str, ...], roots: tuple[str, ...]) -> list[str]:
        """Recorded topics to clear: of a camera no longer configured, or under none of
        ``roots`` (the current topic prefix, and the discovery prefix when discovery is on)."""
        rows = self.conn.execute("SELECT topic, camera FROM mqtt_announced ORDER BY topic")
        return [
            topic
            for topic, camera in rows
            if camera not in cameras or not any(topic.startswith(r + "/") for r in roots)
        ]

    def forget(self, topic: str) -> None:
        self.conn.execute("DELETE FROM mqtt_announced WHERE topic=?", (topic,))
        self._known.discard(topic)
