"""Helpers for system tests: a real ``vadmon run`` process, its children, and a listener on the
monitor's own ipc sockets (capture status + scores)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from capture_support import rss_kib, wait_for  # noqa: F401  (re-exported for the soak tests)
from config_support import write_config_file, yaml_part

from vadmon.config import deep_merge
from vadmon.runtime.heartbeat import Heartbeat, decode_published
from vadmon.runtime.messages import MessageError, ScoreMessage
from vadmon.runtime.status_schema import CaptureStatus
from vadmon.runtime.transport import RecvStats, subscriber

REPO = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    """Running and not a zombie (a container's PID 1 may never reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def child_pids(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(x) for x in (task / "children").read_text().split()]
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def role_of(argv: list[str]) -> str:
    """The supervisor's child name for a process command line (``capture:cam`` …)."""
    if "vadmon.capture" in argv and "--camera" in argv:
        return "capture:" + argv[argv.index("--camera") + 1]
    for module, name in (
        ("vadmon.inference", "inference"),
        ("vadmon.alerts", "alerts"),
        ("vadmon.runtime.cleanup", "janitor"),
    ):
        if module in argv:
            return name
    return ""


def marked_processes(marker: str) -> list[int]:
    """Live processes whose environment carries ``VADMON_TEST_MARK=marker``."""
    needle = f"VADMON_TEST_MARK={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def short_dir(prefix: str = "vr-") -> Path:
    """A short directory under /tmp: ipc socket paths must stay under ~100 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def write_config(
    path: Path,
    cameras: dict[str, str],
    checkpoint: Path,
    *,
    instance: str | None = None,
    ipc: Path | None = None,
    extra: str = "",
    camera_extra: str = "",
    supervisor: str = "",
    transport: str = "",
    storage: str = "",
    alerts: str = "threshold: 0.6, min_duration_s: 1.0, cutoff_s: 2.0, cooldown_s: 5",
    lookahead: int = 0,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """A monitor config: fast reconnects, small timeouts, the demo model, each snippet scored
    as it arrives (lookahead 0: these tests time faults; the e2e and demo tests run the shipped
    default). The string arguments are YAML fragments of their sections (``extra``: top level;
    ``alerts``: the defaults' alerts mapping without braces); ``overrides`` deep-merge last."""
    instance = instance or f"t{uuid.uuid4().hex[:10]}"
    ipc = ipc or short_dir() / "ipc"
    config = {
        "instance": instance,
        "defaults": {
            "loop": True,
            "stall_timeout_s": 3,
            "open_timeout_s": 3,
            "read_timeout_s": 2,
            "backoff_initial_s": 0.3,
            "backoff_max_s": 2,
            "preview": {"fps": 5, "max_width": 320},
            "alerts": {**yaml_part(f"{{{alerts}}}"), "pre_capture_s": 1, "post_capture_s": 1},
        },
        "cameras": {
            name: {"source": src, **yaml_part(camera_extra)} for name, src in cameras.items()
        },
        "model": {
            "mode": "vadclip",
            "checkpoint": checkpoint,
            "window": 64,
            "batch_wait_ms": 10,
            "lookahead": lookahead,
        },
        "storage": {"dir": path.parent / ("data-" + instance)},
        "transport": {"ipc_dir": ipc},
        "supervisor": {
            "restart_backoff_initial_s": 0.5,
            "restart_backoff_max_s": 2,
            "shutdown_deadline_s": 8,
        },
    }
    parts = {"storage": storage, "transport": transport, "supervisor": supervisor}
    for section, text in parts.items():
        config = deep_merge(config, {section: yaml_part(text)})
    config = deep_merge(deep_merge(config, yaml_part(extra)), overrides or {})
    return write_config_file(path, config)


@dataclass
class Monitor:
    """``python -m vadmon run --config X`` with its output in a log file."""

    config: Path
    env: dict[str, str]
    role: str = "all"
    args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None
    log: Path | None = None

    def start(self) -> Monitor:
        self.log = self.config.with_suffix(f".{self.role}.log")
        self._log = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        argv = [sys.executable, "-m", "vadmon", "run", "--config", str(self.config)]
        argv += ["--no-dashboard", "--role", self.role, *self.args]
        self.proc = subprocess.Popen(
            argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def children(self) -> dict[str, int]:
        """Live children by supervisor name."""
        out = {}
        for pid in child_pids(self.pid):
            name = role_of(cmdline(pid))
            if name and alive(pid):
                out[name] = pid
        return out

    def child(self, name: str, timeout_s: float = 30.0, not_pid: int | None = None) -> int:
        """The pid of child ``name`` (a new one when ``not_pid`` is given)."""
        found: list[int] = []

        def look() -> bool:
            pid = self.children().get(name)
            if pid is not None and pid != not_pid:
                found.append(pid)
                return True
            return False

        assert wait_for(look, timeout_s, 0.1), f"no {name} child; log:\n{self.output()[-3000:]}"
        return found[-1]

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int | None:
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                code = self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self._log.close()
        return code

    def kill_all(self) -> None:
        """Test teardown: nothing of this monitor may survive a failed test."""
        if self.proc is None:
            return
        kids = child_pids(self.pid) if self.proc.poll() is None else []
        with contextlib.suppress(ProcessLookupError):
            for pid in kids:
                os.kill(pid, signal.SIGCONT)
        self.stop(timeout_s=20)
        for pid in kids:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@dataclass
class Listener:
    """Collects capture ``CaptureStatus`` beats and ``ScoreMessage``s from a monitor's ipc
    directory (the beats parsed as the supervisor parses them)."""

    ipc: Path
    cameras: list[str]
    scores: list[tuple[float, ScoreMessage]] = field(default_factory=list)
    statuses: dict[str, list[tuple[float, Heartbeat]]] = field(default_factory=dict)
    stats: RecvStats = field(default_factory=RecvStats)

    def __post_init__(self) -> None:
        self.statuses = {c: [] for c in self.cameras}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ctx = zmq.Context()
        sub = subscriber(ctx, f"ipc://{self.ipc}/scores.sock", topics=(b"score", b"status"))
        for cam in self.cameras:
            sub.connect(f"ipc://{self.ipc}/capture-{cam}.sock")
        while not self._stop.is_set():
            if not sub.poll(50):
                continue
            try:
                msg, _ = decode_published(sub.recv_multipart())
            except MessageError:
                self.stats.malformed += 1
                continue
            now = time.time()
            if isinstance(msg, ScoreMessage):
                self.scores.append((now, msg))
            elif isinstance(msg, Heartbeat) and isinstance(msg.body, CaptureStatus):
                self.statuses.get(msg.body.camera or "", []).append((now, msg))
        sub.close(0)
        ctx.term()

    def status(self, cam: str) -> CaptureStatus | None:
        items = self.statuses[cam]
        return items[-1][1].body if items else None  # type: ignore[return-value]

    def state(self, cam: str) -> str:
        st = self.status(cam)
        return (st.state or "") if st else ""

    def counter(self, cam: str, key: str) -> float:
        """A ``CaptureCounters`` field by name (0 until the first beat carries it)."""
        st = self.status(cam)
        return (getattr(st.counters, key) or 0.0) if st else 0.0

    def scores_for(self, cam: str, since: float = 0.0) -> list[ScoreMessage]:
        return [m for t, m in list(self.scores) if m.camera == cam and t >= since]

    def wait_scores(self, cam: str, n: int, timeout_s: float, since: float = 0.0) -> bool:
        return wait_for(lambda: len(self.scores_for(cam, since)) >= n, timeout_s, 0.1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def outbox_drained(db: Path) -> bool:
    """No webhook row still pending in the outbox at ``db`` (read-only look)."""
    from vadmon.alerts.outbox import Outbox

    reader = Outbox(db, readonly=True)
    try:
        return reader.counts()["pending"] == 0
    finally:
        reader.close()
