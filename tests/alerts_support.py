"""Helpers shared by tests (moved from test_alerts.py; test modules import only *_support modules)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import pytest
import zmq
from config_support import write_config

from vadmon.alerts.signing import generate_secret
from vadmon.config import load_config
from vadmon.runtime.heartbeat import ENV_ENDPOINT, ENV_NAME, parse_heartbeat
from vadmon.runtime.messages import PreviewFrame, ScoreMessage
from vadmon.runtime.transport import ipc_dir
from vadmon.settings import preview_endpoints, score_endpoint

SECRET = generate_secret()


CLASSES = ["normal", "Fighting", "Abuse"]


FIGHT = [0.1, 0.8, 0.1]


CALM = [0.9, 0.05, 0.05]


# event rules of these tests: no smoothing, 2 s to open and to close, 2 s of pre/post roll
ALERTS = {"threshold": 0.5, "hysteresis": 0.1, "min_duration_s": 2, "cutoff_s": 2,
          "smoothing": {"kind": "none"}, "pre_capture_s": 2, "post_capture_s": 2}  # fmt: skip


def vtest_jpegs(vtest_path, n: int = 200, quality: int = 95) -> list[bytes]:
    """``n`` real frames downscaled to 192x144 and JPEG-encoded like capture's previews."""
    cap = cv2.VideoCapture(str(vtest_path))
    out = []
    for _ in range(n):
        ok, img = cap.read()
        assert ok
        small = cv2.resize(img, (192, 144))
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(jpeg.tobytes())
    cap.release()
    return out


@pytest.fixture(scope="module")
def previews(vtest_path):
    return vtest_jpegs(vtest_path)


class Harness:
    """Binds the sockets the alert process connects to; starts/stops that process.

    The process gets its settings from a config file (``python -m vadmon.alerts --config``),
    as under ``vadmon run``; its heartbeats come to a PULL bound here, as to a supervisor."""

    def __init__(self, env: dict[str, str], webhook: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vadm-"))
        self.config = write_config(
            self.dir,
            cameras={"lobby": {"source": "synthetic:w=192&h=144"}},
            defaults={"alerts": ALERTS},
            webhooks=[{"name": "default", "url": webhook, "secret": SECRET, "allow_private": True,
                       "backoff_initial_s": 0.2, "timeout_s": 2}],
        )  # fmt: skip
        cfg = load_config(self.config)
        self.db = cfg.storage.outbox_db
        self.env = {**env, ENV_ENDPOINT: f"ipc://{self.dir}/status", ENV_NAME: "alerts"}
        self.ctx = zmq.Context()
        ipc_dir(cfg.ipc_dir())
        self.scores = self._xpub(score_endpoint(cfg))
        (preview,) = preview_endpoints(cfg)
        self.previews = self._xpub(preview)
        self.status = self.ctx.socket(zmq.PULL)
        self.status.setsockopt(zmq.LINGER, 0)
        self.status.bind(self.env[ENV_ENDPOINT])
        self.args = [sys.executable, "-m", "vadmon.alerts", "--config", str(self.config)]
        self.proc: subprocess.Popen | None = None

    def _xpub(self, endpoint: str) -> zmq.Socket:
        sock = self.ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.bind(endpoint)
        return sock

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, env=self.env, stderr=subprocess.PIPE)
        for sock in (self.scores, self.previews):  # no slow-joiner loss: wait for the SUB
            deadline = time.monotonic() + 20
            while True:
                assert time.monotonic() < deadline, "alert process never subscribed"
                assert self.proc.poll() is None, self.proc.stderr.read().decode()
                if sock.poll(100) and sock.recv().startswith(b"\x01"):
                    break

    def last_counters(self, timeout: float = 5.0) -> dict[str, float]:
        """Counters of the newest heartbeat (every one must pass the supervisor's validation;
        the test reads the process's own counters, beyond the dashboard's schema, raw)."""
        deadline = time.monotonic() + timeout
        frames = None
        while time.monotonic() < deadline and frames is None:
            while self.status.poll(100 if frames is None else 0):
                frames = self.status.recv_multipart()
                beat = parse_heartbeat(frames)
                assert beat is not None and beat.body is not None and not beat.problem, beat
        assert frames is not None and beat.process == "alerts", "no heartbeat from the alerts"
        return json.loads(frames[-1])["counters"]

    def wait_counter(self, key: str, value: float, timeout: float = 20.0) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counters = self.last_counters()
            if counters.get(key, 0) >= value:
                return counters
        raise AssertionError(f"{key} never reached {value}")

    def score(self, k: int, base: float, value: float, probs: list[float]) -> None:
        msg = ScoreMessage("lobby", k, base + 1.6 * k, base + 1.6 * (k + 1), value, 1 - probs[0],
                           list(CLASSES), list(probs), t_emitted=time.time())  # fmt: skip
        self.scores.send_multipart(msg.to_parts())

    def preview(self, i: int, base: float, jpeg: bytes) -> None:
        frame = PreviewFrame("lobby", i, base + 0.1 * i, 144, 192)
        self.previews.send_multipart(frame.to_parts(jpeg))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.proc.stderr.close()
        return rc

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.ctx.destroy(0)


def events_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vadmon.commands.events", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
