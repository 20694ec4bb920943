"""Starts the monitor's processes, keeps them alive, and takes them all down together.

Children run in their own sessions with PDEATHSIG=SIGKILL (a supervisor killed outright takes
them along). Crashes restart with jittered exponential backoff; a crash loop parks a camera
(retried after ``supervisor.park_s``) and stops everything for an essential child. A child that
sends heartbeats (``vadmon.runtime.heartbeat``) and falls silent is killed and restarted.
Everything runs on the calling thread: PDEATHSIG fires when the *thread* that forked exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from vadmon.config import SupervisorConfig
from vadmon.runtime.backoff import backoff_delay
from vadmon.runtime.child import (
    Child,
    ChildSpec,
    ChildState,
    ChildStatus,
    describe_exit,
    launch,
    pdeathsig_preexec,
)
from vadmon.runtime.cleanup import ORDERLY, Cleanup, run_cleanup, start_janitor
from vadmon.runtime.entry import BAD_INPUT_EXIT  # an essential child's stops everything
from vadmon.runtime.heartbeat import ENV_ENDPOINT, ENV_NAME, Heartbeat, HeartbeatReceiver
from vadmon.runtime.instance_lock import release_instance_lock
from vadmon.runtime.log_wrap import pump_json
from vadmon.runtime.logs import ChildLogs, log_format
from vadmon.runtime.sdnotify import sd_notify, watchdog_interval_s

log = logging.getLogger("vadmon.runtime.supervisor")
Hook = Callable[[], None]


class Supervisor:
    """Owns the children. Use ``run()`` from a CLI, or ``start``/``poll``/``shutdown`` in tests."""

    def __init__(
        self,
        specs: list[ChildSpec],
        policy: SupervisorConfig | None = None,
        *,
        heartbeat_endpoint: str | None = None,
        cleanup: Cleanup | None = None,
        systemd: bool = False,
        rng: random.Random | None = None,
        log_dir: Path | None = None,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate child names in {names}")
        self.policy = policy or SupervisorConfig()
        self.heartbeat_endpoint = heartbeat_endpoint
        self.cleanup = cleanup or Cleanup()
        self.systemd = systemd
        self.rng = rng or random.Random()
        self.children = {s.name: Child(s, ChildStatus(s.name)) for s in specs}
        # set: children's stdout/stderr go to rotating files here, never to our terminal
        self.logs = ChildLogs(log_dir) if log_dir is not None else None
        self.failure: str | None = None
        self.failure_code = 1  # exit code of run() after a failure
        self.stray_heartbeats = 0
        self.bad_bodies = 0  # heartbeats whose status body failed validation (liveness kept)
        self._stop_reason: str | None = None
        self._force = False
        self._receiver: HeartbeatReceiver | None = None
        self._janitor_fd: int | None = None
        self._janitor: subprocess.Popen | None = None
        self._watchdog_every = watchdog_interval_s() if systemd else None
        self._watchdog_next = 0.0
        self._preexec = pdeathsig_preexec(os.getpid())
        # called with every valid heartbeat (the dashboard and metrics read them)
        self.listeners: list[Callable[[Heartbeat], None]] = []
        # called once when shutdown begins, children already marked "stopping" (the operator
        # sees "stopping…" at once, not after the last child is gone)
        self.on_stopping: list[Hook] = []
        self._json_pumps: list = []  # threads wrapping children's output as JSON lines

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Bind the heartbeat socket, start the janitor, spawn every child, notify systemd."""
        if self.heartbeat_endpoint:
            self._receiver = HeartbeatReceiver(self.heartbeat_endpoint)
        if self.cleanup.has_data_targets():
            self._janitor_fd, self._janitor = start_janitor(self.cleanup)
        for child in self.children.values():
            self._spawn(child)
        if self.systemd:
            sd_notify("READY=1\nSTATUS=children started")

    def run(self, on_tick: Hook | None = None, on_stopped: Hook | None = None) -> int:
        """Supervise until SIGTERM/SIGINT, a crash loop, or all non-restarting children exit.
        Returns 0 after an orderly stop, 1 after a crash loop or a failed child. ``on_tick``
        runs after every poll; ``on_stopped`` once all is down, before error lines are printed
        (the live view gives the terminal back first, or they would vanish with its screen)."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while self._stop_reason is None and self.failure is None and self._anything_left():
                self.poll(0.1)
                if on_tick is not None:
                    on_tick()
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if on_stopped is not None:
                on_stopped()
        if self.failure and self.failure_code == BAD_INPUT_EXIT:
            for name, child in self.children.items():  # its line went to a file: repeat it
                if child.status.state == ChildState.FAILED and self.logs is not None:
                    print(self.logs.error_line(name), file=sys.stderr)
            return BAD_INPUT_EXIT  # the child's own error line is the message
        if self.failure:
            print(f"vadmon supervisor: error: {self.failure}; stopped everything", file=sys.stderr)
            return 1
        failed = [c for c in self.children.values() if c.status.state == ChildState.FAILED]
        return 1 if failed else 0

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    def request_stop(self, reason: str) -> None:
        if self._stop_reason is not None:
            self._force = True  # second request: stop waiting politely
        self._stop_reason = reason

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.request_stop(signal.Signals(signum).name)

    # ------------------------------------------------------------------ one iteration

    def poll(self, timeout_s: float = 0.1) -> None:
        """Wait up to ``timeout_s`` for heartbeats, then reap, restart and watchdog."""
        self._receive_heartbeats(timeout_s)
        now = time.monotonic()
        for child in self.children.values():
            self._reap(child, now)
            self._check_heartbeat(child, now)
            if child.restart_at is not None and now >= child.restart_at and not self.failure:
                self._spawn(child)
        if self._watchdog_every and now >= self._watchdog_next:
            sd_notify("WATCHDOG=1")
            self._watchdog_next = now + self._watchdog_every

    def heartbeat(self, name: str, ts: float, pid: int) -> bool:
        """Record a heartbeat for ``name``; only the running incarnation's own pid counts, so a
        forged or stale beat cannot keep a wedged (SIGSTOPped) child "alive"."""
        child = self.children.get(name)
        if child is None or child.proc is None or child.proc.returncode is not None:
            return False
        if pid != child.proc.pid:
            return False
        child.heartbeat_mono = time.monotonic()
        child.status.last_heartbeat = ts if ts is not None else time.time()
        return True

    def status(self) -> dict[str, ChildStatus]:
        return {name: ChildStatus(**asdict(c.status)) for name, c in self.children.items()}

    # ------------------------------------------------------------------ internals

    def _spawn(self, child: Child) -> None:
        spec = child.spec
        env = dict(os.environ if spec.env is None else spec.env)
        env[ENV_NAME] = spec.name
        if self.heartbeat_endpoint:
            env[ENV_ENDPOINT] = self.heartbeat_endpoint
        child.restart_at = None
        child.kill_reason = ""
        child.heartbeat_mono = None
        to_file = self.logs is not None
        # service mode in JSON: read the child's output and wrap what is not JSON (FFmpeg)
        wrap = not to_file and log_format() == "json"
        to_file = to_file or wrap
        try:
            child.proc = launch(spec, env, self._preexec, piped=to_file)
        except OSError as exc:
            child.proc = None
            self._after_exit(child, f"cannot start: {exc.strerror or exc}", time.monotonic())
            return
        if self.logs is not None and child.proc.stdout is not None:
            self.logs.attach(spec.name, child.proc.stdout)
        elif wrap and child.proc.stdout is not None:
            self._json_pumps = [t for t in self._json_pumps if t.is_alive()]
            self._json_pumps.append(pump_json(spec.name, child.proc.stdout))
        child.started_mono = time.monotonic()
        child.status.pid = child.proc.pid
        child.to(ChildState.RUNNING)
        child.status.starts += 1
        log.info("started %s (pid %d)", spec.name, child.proc.pid)

    def _reap(self, child: Child, now: float) -> None:
        if child.proc is None or child.proc.poll() is None:
            return
        reason = child.kill_reason or describe_exit(child.proc.returncode)
        bad_input = not child.kill_reason and child.proc.returncode == BAD_INPUT_EXIT
        child.status.pid = None
        child.proc = None
        if self._stop_reason is None and bad_input and not child.spec.essential:
            child.to(ChildState.FAILED)
            child.status.last_exit = f"bad input, not restarted: {child.error or reason}"
            log.warning(
                "%s stopped on bad input (%s); the others keep running", child.spec.name, reason
            )
        elif self._stop_reason is None and bad_input and child.spec.restart:
            child.to(ChildState.FAILED)
            child.status.last_exit = reason
            self.failure = f"child '{child.spec.name}' reported bad input"
            self.failure_code = BAD_INPUT_EXIT
            log.warning(
                "%s stopped on bad input (%s); stopping everything", child.spec.name, reason
            )
        elif self._stop_reason is None:
            self._after_exit(child, reason, now, returncode_ok=reason == "exit code 0")

    def _after_exit(
        self, child: Child, reason: str, now: float, returncode_ok: bool = False
    ) -> None:
        status, spec = child.status, child.spec
        status.last_exit = reason
        if not spec.restart:
            child.to(ChildState.EXITED if returncode_ok else ChildState.FAILED)
            log.info("%s %s (not restarted)", spec.name, reason)
            return
        if now - child.started_mono >= self.policy.crash_loop_window_s:
            child.consecutive = 0  # it ran stably for a while: start the backoff afresh
        child.crashes.append(now)
        while child.crashes and child.crashes[0] < now - self.policy.crash_loop_window_s:
            child.crashes.popleft()
        if len(child.crashes) > self.policy.crash_loop_restarts and not spec.essential:
            self._park(child, reason, now)
            return
        if len(child.crashes) > self.policy.crash_loop_restarts:
            child.to(ChildState.FAILED)
            self.failure = (
                f"child '{spec.name}' crashed {len(child.crashes)} times within "
                f"{self.policy.crash_loop_window_s:g} s (last: {reason})"
            )
            log.error("%s", self.failure)
            return
        child.consecutive += 1
        delay = backoff_delay(
            child.consecutive,
            self.policy.restart_backoff_initial_s,
            self.policy.restart_backoff_max_s,
            self.rng,
        )
        child.restart_at = now + delay
        child.to(ChildState.BACKOFF)
        status.restarts += 1
        status.last_backoff_s = delay
        log.warning("%s %s; restarting in %.2f s", spec.name, reason, delay)

    def _park(self, child: Child, reason: str, now: float) -> None:
        """A camera in a crash loop rests for ``park_s`` (state and reason shown) and is then
        tried afresh; the other children never notice."""
        n, window, park = len(child.crashes), self.policy.crash_loop_window_s, self.policy.park_s
        child.crashes.clear()
        child.consecutive = 0
        child.restart_at = now + park
        child.to(ChildState.PARKED)
        child.status.last_backoff_s = park
        child.status.last_exit = (
            f"parked: crashed {n} times within {window:g} s (last: {reason}); retry in {park:g} s"
        )
        log.warning("%s %s; the others keep running", child.spec.name, child.status.last_exit)

    def _check_heartbeat(self, child: Child, now: float) -> None:
        if not child.spec.heartbeat or child.proc is None or child.kill_reason:
            return
        if not self.heartbeat_endpoint:
            return
        if child.heartbeat_mono is None:
            silent, limit = now - child.started_mono, self.policy.heartbeat_startup_s
        else:
            silent, limit = now - child.heartbeat_mono, self.policy.heartbeat_timeout_s
        if silent < limit:
            return
        child.kill_reason = f"no heartbeat for {silent:.1f} s (killed)"
        child.status.heartbeat_kills += 1
        log.warning("%s: %s", child.spec.name, child.kill_reason)
        self._signal(child, signal.SIGKILL)

    @property
    def bad_heartbeats(self) -> int:
        """Heartbeat messages that could not be parsed (dropped)."""
        return self._receiver.malformed if self._receiver is not None else 0

    def _receive_heartbeats(self, timeout_s: float) -> None:
        if self._receiver is None:
            time.sleep(timeout_s)
            return
        for beat in self._receiver.receive(timeout_s):
            if beat.fatal and beat.process in self.children:
                self.children[beat.process].note_fatal(beat.fatal)
            if self.heartbeat(beat.process, beat.ts, beat.pid):
                self._accepted(beat)
            else:
                self.stray_heartbeats += 1  # unknown name or a previous incarnation: no state

    def _accepted(self, beat: Heartbeat) -> None:
        """Only our own children's beats reach the listeners: their state stays bounded."""
        if beat.problem:
            self.bad_bodies += 1
            if self.bad_bodies in (1, 10, 100, 1000):
                log.warning("%s sent a status the schema rejects (%s)", beat.process, beat.problem)
        for listener in self.listeners:
            listener(beat)

    def _signal(self, child: Child, sig: int) -> None:
        if child.proc is None or child.proc.returncode is not None:
            return
        try:
            os.killpg(child.proc.pid, sig)  # the child's whole session: its helpers too
        except ProcessLookupError:
            pass
        except PermissionError:
            child.proc.send_signal(sig)

    def _anything_left(self) -> bool:
        return any(c.proc is not None or c.restart_at is not None for c in self.children.values())

    # ------------------------------------------------------------------ shutdown

    def shutdown(self) -> None:
        """SIGTERM every child, wait up to the deadline, SIGKILL the rest, then clean up."""
        if self.systemd:
            sd_notify("STOPPING=1")
        if self._stop_reason is None:
            self._stop_reason = self.failure or "shutdown"
        running = [c for c in self.children.values() if c.proc is not None]
        for child in running:
            child.to(ChildState.STOPPING)
            child.restart_at = None
            self._signal(child, signal.SIGTERM)
            self._signal(child, signal.SIGCONT)  # a stopped child must run to see SIGTERM
        for hook in self.on_stopping:
            hook()
        deadline = time.monotonic() + self.policy.shutdown_deadline_s
        while not self._force and time.monotonic() < deadline and self._alive(running):
            time.sleep(0.05)
        for child in self._alive(running):
            log.warning("%s ignored SIGTERM; sending SIGKILL", child.spec.name)
            self._signal(child, signal.SIGKILL)
        for child in running:
            child.settle_stopped()
        for child in self.children.values():
            child.restart_at = None
        self._close_heartbeats()
        n = (self.bad_heartbeats, self.stray_heartbeats, self.bad_bodies)
        log.info("heartbeats: %d malformed, %d stray (name or pid), %d with a bad status", *n)
        if self.logs is not None:
            self.logs.close()
        deadline = time.monotonic() + 1.0  # the children's last lines before our summary
        for pump in self._json_pumps:
            pump.join(max(0.0, deadline - time.monotonic()))
        for problem in run_cleanup(self.cleanup):
            log.warning("%s", problem)
        self._release_janitor()

    def _alive(self, children: list[Child]) -> list[Child]:
        return [c for c in children if c.proc is not None and c.proc.poll() is None]

    def _close_heartbeats(self) -> None:
        if self._receiver is not None:
            self._receiver.close()

    def _release_janitor(self) -> None:
        lock = self.cleanup.lock_fd, self.cleanup.lock_path
        if self._janitor is None and lock[0] is not None and lock[1] is not None:
            release_instance_lock(lock[0], lock[1])  # no janitor to do it: no stale lock file
            self.cleanup.lock_fd = None
        if self._janitor_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._janitor_fd, ORDERLY)  # every child is gone: no grace needed
            os.close(self._janitor_fd)
            self._janitor_fd = None
        if self._janitor is not None:
            try:
                self._janitor.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._janitor.kill()
            self._janitor = None
