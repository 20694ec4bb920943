"""The one wait-until helper of the tests: poll a condition with a deadline (never a fixed sleep
where a readiness signal exists)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.05) -> bool:
    """True as soon as ``predicate()`` is truthy; False when ``timeout_s`` passed without."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
