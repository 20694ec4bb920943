"""What every route needs, built once per process and hung on ``app.state``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastapi import Request

from vadmon.web.live import LiveFeed
from vadmon.web.options import WebSettings
from vadmon.web.security import Guard
from vadmon.web.store import EventStore


@dataclass
class WebContext:
    settings: WebSettings
    live: LiveFeed
    guard: Guard
    link_key: bytes
    _local: threading.local = field(default_factory=threading.local)
    _stores: list[EventStore] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def store(self) -> EventStore:
        """This thread's connection (sync routes run in a thread pool; SQLite connections must
        stay in the thread that made them)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = EventStore(self.settings.db_path)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def close(self) -> None:
        self.live.stop()
        with self._lock:
            for store in self._stores:
                store.close()  # closing from another thread: sqlite3 allows close()
            self._stores.clear()


def context(request: Request) -> WebContext:
    return request.app.state.vadmon
