"""One supervised child: how to run it, what the dashboard sees of it, how it restarts.

Kept apart from the ``Supervisor`` loop so that the data (``ChildSpec``, ``ChildStatus``) can be
used without the loop (the monitor builds specs, the dashboard shows statuses), and the
process-level details (PDEATHSIG, backoff, exit descriptions) are read in one place.
"""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from vadmon.runtime.backoff import backoff_delay  # noqa: F401 - restart delays (supervisor)
from vadmon.runtime.lifecycle import Transitions

PR_SET_PDEATHSIG = 1


class ChildState(StrEnum):
    PENDING = "pending"  # not started yet
    RUNNING = "running"
    BACKOFF = "backoff"  # exited; restarts after a delay
    STOPPING = "stopping"  # asked to stop (SIGTERM), not yet reaped
    STOPPED = "stopped"  # stopped by the supervisor
    EXITED = "exited"  # a non-restarting child that ended well
    FAILED = "failed"  # bad input, a crash loop, or a non-restarting child that failed


RUN, BACKOFF, STOPPING = ChildState.RUNNING, ChildState.BACKOFF, ChildState.STOPPING
ENDS = {ChildState.FAILED, ChildState.EXITED}  # how an exit may end a child for good
# a start that fails (cannot exec) is handled as an exit, hence pending → backoff/failed/exited
CHILD_LIFECYCLE = Transitions.of(
    "child",
    {
        ChildState.PENDING: {RUN, BACKOFF, *ENDS},
        ChildState.RUNNING: {BACKOFF, STOPPING, *ENDS},
        ChildState.BACKOFF: {RUN, BACKOFF, *ENDS},
        ChildState.STOPPING: {ChildState.STOPPED},
        ChildState.STOPPED: set(),
        ChildState.EXITED: set(),
        ChildState.FAILED: set(),
    },
)


@dataclass
class ChildSpec:
    """How to run one child. ``heartbeat``: the child promises application heartbeats.
    ``essential``: bad input from this child stops the whole monitor (else only the child)."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    restart: bool = True
    heartbeat: bool = False
    cwd: str | None = None
    essential: bool = True


@dataclass
class ChildStatus:
    """What the dashboard shows per child (a copy; safe to keep)."""

    name: str
    state: ChildState = ChildState.PENDING
    pid: int | None = None
    starts: int = 0
    restarts: int = 0
    heartbeat_kills: int = 0
    last_exit: str = ""
    last_heartbeat: float | None = None  # unix time of the child's last heartbeat
    last_backoff_s: float | None = None


@dataclass
class Child:
    """The supervisor's bookkeeping for one child process (restarts, heartbeats, crashes)."""

    spec: ChildSpec
    status: ChildStatus
    proc: subprocess.Popen | None = None
    started_mono: float = 0.0
    heartbeat_mono: float | None = None
    restart_at: float | None = None
    error: str = ""  # the error line of its last bad-input exit (``report_fatal``)
    consecutive: int = 0
    crashes: collections.deque = field(default_factory=collections.deque)
    kill_reason: str = ""

    def to(self, state: ChildState) -> None:
        """Move along ``CHILD_LIFECYCLE``; an unlisted move raises ``IllegalTransition``."""
        self.status.state = CHILD_LIFECYCLE.check(ChildState(self.status.state), state)

    def note_fatal(self, error: str) -> None:
        """Its last heartbeat before a bad-input exit (``report_fatal``) names the reason. It
        may arrive before or after the exit is reaped, so both cases show it."""
        self.error = error[:300]
        if self.status.state == ChildState.FAILED and self.status.last_exit.startswith("bad input"):
            self.status.last_exit = f"bad input, not restarted: {self.error}"


class CrashLoop(RuntimeError):
    """A child restarted too often; the supervisor stops everything."""


def pdeathsig_preexec(parent_pid: int) -> Callable[[], None] | None:
    """Build the preexec hook in the parent; only async-signal-safe work happens in the child."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # parent died before prctl took effect
            os._exit(1)

    return preexec


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"
