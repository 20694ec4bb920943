"""A real Triton server for tests: ``vadmon/encoder/pytriton_serve.py`` in the Triton venv.

Started with its own session so a test can SIGKILL the whole server (pytriton's Python and the
``tritonserver`` binary it runs) and start it again on the same ports. Readiness is Triton's
own HTTP endpoints (server and every model ready), polled with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from capture_support import free_port, wait_for
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
SERVE = REPO / "vadmon" / "encoder" / "pytriton_serve.py"


class TritonExited(AssertionError):
    """The server process ended while it was being waited for."""


@dataclass
class TritonServer:
    python: str
    repo: Path
    models: tuple[str, ...]
    log: Path
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def start(self, timeout_s: float = 120.0, attempts: int = 3) -> TritonServer:
        """Start and wait until every model is ready. pytriton's model load can lose a race
        with its own handshake socket under load ("load failed … Connection refused") and the
        server then exits at once: that start is retried, a server that runs but never gets
        ready is not."""
        argv = [self.python, str(SERVE), str(self.repo), "--grpc-port", str(self.grpc_port)]
        argv += ["--http-port", str(self.http_port), "--metrics-port", str(self.metrics_port)]
        for attempt in range(attempts):
            with open(self.log, "a") as out:
                self.proc = subprocess.Popen(
                    argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            try:
                ok = wait_for(self.ready, timeout_s, 0.2)
            except TritonExited:
                if attempt + 1 == attempts:
                    raise
                continue
            assert ok, f"Triton not ready in {timeout_s}s:\n{self.log.read_text()[-3000:]}"
            return self
        raise AssertionError("unreachable")

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise TritonExited(f"Triton exited:\n{self.log.read_text()[-3000:]}")
        base = f"http://127.0.0.1:{self.http_port}/v2"
        paths = ["/health/ready", *(f"/models/{m}/ready" for m in self.models)]
        try:
            return all(httpx.get(base + p, timeout=2).status_code == 200 for p in paths)
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL the server's whole session: nothing gets to shut down cleanly."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        # pytriton names its shared memory after its pid; a killed server leaves it behind
        for leftover in Path("/dev/shm").glob(f"pytrtion{self.proc.pid}-*"):
            with contextlib.suppress(OSError):
                leftover.unlink()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def metrics(self, model: str) -> dict[str, float]:
        """Triton's own Prometheus counters for ``model`` (``nv_X`` → ``X``; a counter absent
        before its first sample reads 0)."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        out: dict[str, float] = dict.fromkeys(
            ("inference_request_success", "inference_count", "inference_exec_count"), 0.0
        )
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.labels.get("model") == model and s.name.startswith("nv_inference_"):
                    out[s.name.removeprefix("nv_").removesuffix("_total")] = s.value
        return out
