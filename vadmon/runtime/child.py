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

from vadmon.runtime.lifecycle import Transitions

PR_SET_PDEATHSIG = 1


class ChildState(StrEnum):
    PENDING = "pending"  # not started yet
    RUNNING = "running"
    BACKOFF = "backoff"  # exited; restarts after a delay
    PARKED = "parked"  # a camera in a crash loop: rests for park_s, then tried afresh
    STOPPING = "stopping"  # asked to stop (SIGTERM), not yet reaped
    STOPPED = "stopped"  # stopped by the supervisor
    EXITED = "exited"  # a non-restarting child that ended well
    FAILED = "failed"  # bad input, a crash loop, or a non-restarting child that failed


RUN, BACKOFF, STOPPING = ChildState.RUNNING, ChildState.BACKOFF, ChildState.STOPPING
PARKED = ChildState.PARKED
ENDS = {ChildState.FAILED, ChildState.EXITED}  # how an exit may end a child for good
# a start that fails (cannot exec) is handled as an exit, hence pending → backoff/parked/failed
CHILD_LIFECYCLE = Transitions.of(
    "child",
    {
        ChildState.PENDING: {RUN, BACKOFF, PARKED, *ENDS},
        ChildState.RUNNING: {BACKOFF, PARKED, STOPPING, *ENDS},
        ChildState.BACKOFF: {RUN, BACKOFF, PARKED, *ENDS},
        ChildState.PARKED: {RUN, BACKOFF, PARKED, *ENDS},
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

    def settle_stopped(self) -> None:
        """After shutdown's SIGTERM/SIGKILL: collect the exit and mark the child stopped."""
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self.status.last_exit = describe_exit(self.proc.returncode)
            self.proc, self.status.pid = None, None
        if self.status.state == ChildState.STOPPING:
            self.to(ChildState.STOPPED)


def launch(
    spec: ChildSpec, env: dict[str, str], preexec: Callable[[], None], piped: bool
) -> subprocess.Popen:
    """Start one child in its own session (a terminal's Ctrl-C reaches only the supervisor);
    ``piped``: its stdout+stderr come back to us (log files, JSON wrapping)."""
    return subprocess.Popen(
        spec.argv,
        env=env,
        cwd=spec.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if piped else None,
        stderr=subprocess.STDOUT if piped else None,
        start_new_session=True,
        preexec_fn=preexec,
    )


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
