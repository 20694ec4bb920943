"""Helpers shared by tests (moved from test_supervisor.py; test modules import only *_support modules)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from vadmon.runtime.child import ChildSpec
from vadmon.runtime.supervisor import Supervisor


def drive(sup: Supervisor, condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.poll(0.05)
        if condition():
            return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


CHILD = Path(__file__).with_name("sup_child.py")


def pids(directory: Path, name: str) -> list[int]:
    path = directory / f"{name}.pids"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def child(name: str, mode: str, directory: Path, env: dict[str, str], **kw) -> ChildSpec:
    return ChildSpec(name, [sys.executable, str(CHILD), mode, str(directory)], env=env, **kw)
