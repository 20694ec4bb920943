"""Helpers for capture tests: a real RTSP server process and a capture process with listeners."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import zmq
from config_support import write_config
from conftest import SYSTEM_PYTHON, require_rtsp_server
from wait_support import wait_for  # noqa: F401 - re-exported: the one wait helper

from vadmon.capture.setup import capture_endpoints
from vadmon.runtime.heartbeat import Heartbeat, decode_published
from vadmon.runtime.messages import MessageError, PreviewFrame, SnippetMessage
from vadmon.runtime.status_schema import CaptureStatus
from vadmon.runtime.transport import RecvStats, ipc_dir, puller, recv_message, subscriber

TESTS = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RtspServer:
    """``tests/rtsp_server.py`` under Debian's Python; can be killed and restarted."""

    video: Path
    port: int = field(default_factory=free_port)
    user: str = ""
    password: str = ""
    proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        cmd = [SYSTEM_PYTHON, str(TESTS / "rtsp_server.py"), "--port", str(self.port)]
        cmd += ["--file", str(self.video)]
        if self.user:
            cmd += ["--user", self.user, "--password", self.password]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()))
        reader.daemon = True
        reader.start()
        reader.join(timeout_s)
        if not ready or ready[0].strip() != "READY":
            self.kill()
            pytest.fail(f"RTSP server did not become ready on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def url(self, user: str | None = None, password: str | None = None) -> str:
        user = self.user if user is None else user
        password = self.password if password is None else password
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/test"


def rtsp_servers(vtest_path: Path) -> Iterator[Callable[..., RtspServer]]:
    """Fixture body: ``make(user=..., password=...)`` → a started server (all killed after)."""
    require_rtsp_server()
    servers: list[RtspServer] = []

    def make(**kw: str) -> RtspServer:
        server = RtspServer(video=vtest_path, **kw)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill()


@dataclass
class Capture:
    """A ``python -m vadmon.capture`` process plus listeners on everything it publishes."""

    camera: str
    config: Path
    env: dict[str, str]
    directory: Path  # the config's ipc directory
    statuses: list[CaptureStatus] = field(default_factory=list)
    snippets: list[SnippetMessage] = field(default_factory=list)
    previews: list[tuple[PreviewFrame, bytes]] = field(default_factory=list)
    recv_stats: RecvStats = field(default_factory=RecvStats)
    read_snippets: bool = True
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self) -> None:
        self.log_path = self.directory.parent / f"{self.camera}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "vadmon.capture", "--config", str(self.config)]
        cmd += ["--camera", self.camera]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        ctx = zmq.Context()
        endpoints = capture_endpoints(self.directory, self.camera)
        sub = subscriber(ctx, endpoints.publish)
        pull = puller(ctx, endpoints.snippets) if self.read_snippets else None
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        if pull is not None:
            poller.register(pull, zmq.POLLIN)
        while not self._stop.is_set():
            ready = dict(poller.poll(50))
            if sub in ready:
                self._receive(sub)
            if pull is not None and pull in ready:
                got = recv_message(pull, 0, self.recv_stats)
                if got is not None:
                    self.snippets.append(got[0])  # type: ignore[arg-type]
        ctx.destroy(linger=0)

    def _receive(self, sub: zmq.Socket) -> None:
        """Status beats parsed as the supervisor parses them; previews as messages."""
        try:
            msg, payload = decode_published(sub.recv_multipart())
        except MessageError:
            self.recv_stats.malformed += 1
            return
        if isinstance(msg, Heartbeat) and isinstance(msg.body, CaptureStatus):
            self.statuses.append(msg.body)
        elif isinstance(msg, PreviewFrame):
            self.previews.append((msg, payload or b""))

    @property
    def state(self) -> str:
        return (self.statuses[-1].state or "") if self.statuses else ""

    def last(self) -> CaptureStatus:
        assert self.statuses, "no status heartbeat received"
        return self.statuses[-1]

    def wait_state(self, states: set[str], timeout_s: float) -> bool:
        return wait_for(lambda: self.state in states, timeout_s)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 15.0) -> int | None:
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stop.set()
        self._thread.join(timeout=5)
        self._log.close()
        return code

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def capture_runs(subprocess_env: dict[str, str]) -> Iterator[Callable[..., Capture]]:
    """Fixture body: ``make(camera, source, camera_settings, read_snippets, **config)`` → a
    running capture process, configured like ``vadmon run`` would (``config`` deep-merges into
    the test config, e.g. ``model={"snippet_frames": 1}``)."""
    runs: list[Capture] = []
    with tempfile.TemporaryDirectory(prefix="vc-", dir="/tmp") as tmp:
        directory = ipc_dir(Path(tmp) / "ipc")

        def make(
            camera: str,
            source: str,
            camera_settings: dict[str, Any] | None = None,
            read_snippets: bool = True,
            **config: Any,
        ) -> Capture:
            cameras = {camera: {"source": source, **(camera_settings or {})}}
            path = write_config(Path(tmp), f"{camera}.yaml", cameras=cameras, **config)
            run = Capture(camera, path, subprocess_env, directory, read_snippets=read_snippets)
            run.start()
            runs.append(run)
            return run

        make.directory = directory  # type: ignore[attr-defined]  # for configs' ipc_dir
        yield make
        for run in runs:
            with contextlib.suppress(Exception):
                run.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def shm_names(pid: int) -> list[str]:
    return sorted(p.name for p in Path("/dev/shm").glob(f"vadmon-{pid}-*"))
