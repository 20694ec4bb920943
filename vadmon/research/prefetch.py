"""Load the next training batches while the current one trains.

On full-size UCF-Crime/XD-Violence runs every step reads 128 feature files from disk and pools
them; done inline, the model waits for the disk each step. A single background thread keeps
``depth`` batches ready (bounded, so memory stays flat). Order and content are exactly those of
the wrapped iterator, so seeded runs and resumes stay bit-identical; an exception raised while
loading (a corrupt file) is re-raised in the training loop at the batch where it occurred.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order, produced ``depth`` ahead by a daemon thread."""
    if depth < 1:
        raise ValueError("depth must be ≥ 1")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(obj: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
            return
        put(_END)

    worker = threading.Thread(target=produce, name="vadmon-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            obj = ready.get()
            if obj is _END:
                return
            if isinstance(obj, _Failed):
                raise obj.exc
            yield obj
    finally:
        stop.set()  # the consumer stopped early (or failed): let the producer end
        worker.join(timeout=5)
