"""One run of the whole monitor for ``vadmon bench monitor``: start it, listen, stop it.

``run_monitor`` starts ``vadmon run`` on N file cameras with a webhook receiver, listens on the
monitor's own sockets (scores on ``scores.sock``, capture status on ``capture-<cam>.sock``)
until every camera is scored, then for the measurement period, and returns what it saw; the
evaluation (``vadmon.bench.monitor``) decides whether the count was sustained.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from vadmon.alerts.signing import generate_secret
from vadmon.bench import procs
from vadmon.bench.monitor_breakdown import cpu_by_role
from vadmon.bench.monitor_setup import (
    SECRET_ENV,
    Delivery,
    HookReceiver,
    MonitorSpec,
    VideoSpec,
    write_config,
)
from vadmon.runtime.heartbeat import Heartbeat, decode_published
from vadmon.runtime.messages import MessageError, ScoreMessage
from vadmon.runtime.status_schema import CaptureCounters, CaptureStatus
from vadmon.runtime.transport import ipc_dir
from vadmon.runtime.zmq_context import process_context


@dataclass(frozen=True)
class Plan:
    video: VideoSpec
    warm_s: float  # after every camera's first score, before measuring
    period_s: float
    start_timeout_s: float
    budget_s: float  # for the whole camera stepping
    max_cameras: int


@dataclass
class Listener:
    """SUB on the monitor's score socket and every capture's status socket."""

    ipc: Path
    cameras: list[str]
    scores: list[ScoreMessage] = field(default_factory=list)
    capture: dict[str, list[tuple[float, CaptureCounters]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sub = process_context().socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 100_000)
        for topic in (b"score", b"status"):
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.sub.connect(f"ipc://{self.ipc}/scores.sock")
        for cam in self.cameras:
            self.sub.connect(f"ipc://{self.ipc}/capture-{cam}.sock")
            self.capture[cam] = []

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if not self.sub.poll(max(1, int(left * 1000))):
                continue
            while True:
                try:
                    parts = self.sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on(parts)

    def _on(self, parts: list[bytes]) -> None:
        try:
            msg, _ = decode_published(parts)
        except MessageError:
            return
        if isinstance(msg, ScoreMessage):
            self.scores.append(msg)
        elif isinstance(msg, Heartbeat) and isinstance(msg.body, CaptureStatus):
            self.capture.get(msg.body.camera or "", []).append((msg.ts, msg.body.counters))

    def scored_cameras(self) -> set[str]:
        return {m.camera for m in self.scores}

    def close(self) -> None:
        self.sub.close(0)


@dataclass
class RunResult:
    cameras: int
    model: str
    t0: float  # measurement window, unix s
    t1: float
    scores: list[ScoreMessage]  # all of the run
    capture: dict[str, list[tuple[float, CaptureCounters]]]
    deliveries: list[Delivery]
    error: str = ""
    settled: bool = True  # the start-up catch-up had ended before the measurement began
    cpu: tuple[dict[str, float], dict[str, float]] = ({}, {})  # per role, at t0 and t1


def run_monitor(
    tmp: Path,
    cameras: int,
    ckpt: Path,
    window: int,
    video: Path,
    p: Plan,
    model: str,
    encoder: str | None = None,
    threads: int | None = None,
) -> RunResult:
    secret = generate_secret()
    tag = f"b{os.getpid() % 10000}{secrets.token_hex(2)}"
    ipc = ipc_dir(tmp / f"ipc-{tag}")
    names = [f"cam{i}" for i in range(cameras)]
    with HookReceiver(secret) as hook:
        data = tmp / f"data-{tag}"
        spec = MonitorSpec(tag, cameras, video, ckpt, window, ipc, data, hook.url, encoder, threads)
        config = write_config(tmp / f"monitor-{tag}.yaml", spec)
        log = tmp / f"monitor-{tag}.log"
        limit = p.start_timeout_s + p.warm_s + p.period_s + 30  # the monitor stops itself too
        with open(log, "w") as err:
            proc = procs.start(
                ["vadmon", "run", "--config", str(config), "--no-dashboard",
                 "--duration", str(limit), "--log-level", "WARNING"],
                env=procs.child_env({SECRET_ENV: secret}), stdout=err, stderr=err,
            )  # fmt: skip
        listener = Listener(ipc, names)
        try:
            result = _observe(listener, proc, names, p, model)
        finally:
            _stop(proc)
            listener.close()
        time.sleep(0.5)  # a webhook in flight at the stop
        result.deliveries = hook.take()
        if result.error:
            result.error += f" (log: {_tail(log)})"
    return result


def _observe(listener: Listener, proc, names: list[str], p: Plan, model: str) -> RunResult:
    deadline = time.monotonic() + p.start_timeout_s
    error = ""
    while listener.scored_cameras() < set(names):
        if proc.poll() is not None:
            error = f"monitor exited with {proc.returncode} before scoring every camera"
            break
        if time.monotonic() > deadline:
            error = f"not every camera scored within {p.start_timeout_s:.0f} s"
            break
        listener.pump(0.2)
    if not error:
        error = _work_off_held(listener, proc, names, deadline)
    t0 = t1 = time.time()
    settled = True
    if not error:
        listener.pump(p.warm_s)
        settled = _settle(listener, p.warm_s, deadline)
        t0, cpu0 = time.time(), cpu_by_role(proc.pid)
        listener.pump(p.period_s)
        t1, cpu1 = time.time(), cpu_by_role(proc.pid)
        if proc.poll() is not None:
            error = f"monitor exited with {proc.returncode} during the measurement"
    run = RunResult(
        len(names), model, t0, t1, listener.scores, listener.capture, [], error, settled
    )
    if not error:
        run.cpu = (cpu0, cpu1)
    return run


def _work_off_held(listener: Listener, proc, names: list[str], deadline: float) -> str:
    """Wait until every camera is scored on a live snippet (one that ended after inference
    published its first score), so the warm-up and measurement never include the catch-up on
    the snippets capture held while the model loaded (at real size that takes longer than the
    warm-up under load, and its latencies and backlog drops are start-up, not steady state)."""
    first = min(m.t_emitted for m in listener.scores)
    while {m.camera for m in listener.scores if m.t_end > first} < set(names):
        if proc.poll() is not None:
            return f"monitor exited with {proc.returncode} while working off held snippets"
        if time.monotonic() > deadline:
            return "held snippets not worked off within the start timeout"
        listener.pump(0.2)
    return ""


SETTLED_SPREAD = 1.5  # max ÷ median latency of a window with no start-up backlog left in it


def _settle(listener: Listener, window_s: float, deadline: float) -> bool:
    """Wait until the last ``window_s`` of scores show no backlog: at real size and many
    cameras, working off what piled up at start outlasts the fixed warm-up, and its
    descending latency ramp (and the stale drops it causes) is start-up, not steady state.
    Steady state, loaded or not, has a tight spread (1 camera: p95 ÷ p50 ≈ 1.01). Gives up
    at ``deadline`` and says so: an overloaded monitor never settles, and is then measured
    as it is."""
    while time.monotonic() < deadline:
        now = time.time()
        recent = sorted(m.t_emitted - m.t_end for m in listener.scores
                        if m.t_emitted >= now - window_s)  # fmt: skip
        if recent and recent[-1] <= SETTLED_SPREAD * recent[len(recent) // 2]:
            return True
        listener.pump(1.0)
    return False


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the supervisor stops its children and cleans up
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    procs.kill(proc)


def _tail(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-3:])[-400:]
