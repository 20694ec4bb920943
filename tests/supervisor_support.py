"""Helpers shared by tests (moved from test_supervisor.py; test modules import only *_support modules)."""

from __future__ import annotations

import time
from collections.abc import Callable

from vadmon.runtime.supervisor import Supervisor


def drive(sup: Supervisor, condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.poll(0.05)
        if condition():
            return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
