"""Helpers for the web tests: a config with a ``web:`` section, events made by the real alert
pipeline in-process (snapshots, MP4 clips, score logs, outbox rows), and the web process
itself (``python -m vadmon.web``) on 127.0.0.1, ready when /api/health answers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
from config_support import write_config_file, yaml_part

from vadmon.alerts.outbox import Outbox
from vadmon.alerts.process import AlertPipeline
from vadmon.config import MonitorConfig, deep_merge, load_config
from vadmon.runtime.messages import PreviewFrame, ScoreMessage
from vadmon.settings import alert_settings

REPO = Path(__file__).resolve().parents[1]
TOKEN = "web-test-token-0123456789abcdef"
CLASSES = ["normal", "fighting", "explosion"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def web_config(
    tmp: Path,
    *,
    port: int | None = None,
    auth: bool = True,
    web: str = "",
    hooks: str = "",
    overrides: dict | None = None,
) -> Path:
    """A monitor config whose web section listens on a free loopback port. ``web``: more of
    the web section (YAML, indented as in the file); ``hooks``: top-level YAML (``webhooks:``);
    ``overrides`` deep-merge last."""
    port = port or free_port()
    alerts = {"threshold": 0.6, "min_duration_s": 1.0, "cutoff_s": 1.0, "cooldown_s": 0,
              "pre_capture_s": 1, "post_capture_s": 1, "smoothing": {"kind": "none"}}  # fmt: skip
    section = {
        "enabled": True,
        "listen": f"127.0.0.1:{port}",
        "auth": {"token": "${VADMON_WEB_TOKEN}"} if auth else {"enabled": False},
    }
    config = {
        "instance": "webtest",
        "defaults": {"alerts": alerts},
        "cameras": {cam: {"source": "synthetic:w=64&h=48&fps=10"} for cam in ("door", "yard")},
        "model": {"mode": "vadclip", "checkpoint": "model.pt"},
        "storage": {"dir": tmp / "data"},
        "transport": {"ipc_dir": tmp / "ipc"},
        "web": deep_merge(section, yaml_part(web)),
        **yaml_part(hooks),
    }
    return write_config_file(tmp / "monitor.yaml", deep_merge(config, overrides or {}))


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "VADMON_WEB_TOKEN": TOKEN}


def load(path: Path) -> MonitorConfig:
    os.environ["VADMON_WEB_TOKEN"] = TOKEN
    return load_config(path)


def frame_jpeg(i: int, red: bool) -> bytes:
    img = np.full((48, 64, 3), (0, 0, 255) if red else (90, 90 + i % 50, 90), np.uint8)
    cv2.putText(img, str(i), (2, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 1)
    return cv2.imencode(".jpg", img)[1].tobytes()


def _score(camera: str, i: int, t: float, value: float) -> ScoreMessage:
    probs = [1 - value, value * 0.8, value * 0.2]
    return ScoreMessage(camera, i, t, t + 0.5, value, value, CLASSES, probs, t_emitted=t + 0.5)


def make_events(
    config: Path, cameras: tuple[str, ...] = ("door",), t0: float | None = None
) -> list[str]:
    """One event per camera through the real alert pipeline: previews at 10 fps, scores at
    2 per second (high for 3 s), the clip encoded; returns the event ids (oldest first)."""
    pipe = AlertPipeline(alert_settings(load(config)))
    pipe.start()
    t0 = time.time() - 30.0 if t0 is None else t0
    try:
        for k, cam in enumerate(cameras):
            base = t0 + k * 12.0
            for j in range(110):  # 11 s of previews around the event
                ts = base + j * 0.1
                red = 20 <= j < 55
                pipe.on_message(PreviewFrame(cam, j, ts, 48, 64).to_parts(frame_jpeg(j, red)))
                if j % 5 == 0:
                    i = j // 5
                    value = 0.9 if 4 <= i < 11 else 0.1
                    pipe.on_message(_score(cam, i, base + i * 0.5, value).to_parts())
            _finish_clips(pipe, base + 20.0)
    finally:
        pipe.shutdown()
    box = Outbox(load(config).storage.outbox_db, readonly=True)
    try:
        return [r["id"] for r in reversed(box.list_events(limit=100))]
    finally:
        box.close()


def _finish_clips(pipe: AlertPipeline, now: float, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    pipe.tick(now)
    while pipe.clips.recordings and time.monotonic() < deadline:
        time.sleep(0.05)
        pipe.tick(now)
    assert not pipe.clips.recordings, "clip not encoded in time"


@dataclass
class WebServer:
    """The real web process (uvicorn) for a ``with`` block."""

    config: Path
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return load(self.config).web.base_url()

    def client(self, auth: bool = True) -> httpx.Client:
        headers = {"authorization": f"Bearer {TOKEN}"} if auth else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=10.0, trust_env=False)

    def __enter__(self) -> WebServer:
        log = open(self.config.with_suffix(".web.log"), "w")  # noqa: SIM115 - closed on exit
        self._log = log
        argv = [sys.executable, "-m", "vadmon.web", "--config", str(self.config)]
        self.proc = subprocess.Popen(argv, env=env(), stdout=log, stderr=subprocess.STDOUT)
        wait_ready(self.base, self.proc, self.config.with_suffix(".web.log"))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


def wait_ready(base: str, proc: subprocess.Popen, log: Path, timeout_s: float = 30.0) -> None:
    """Poll /api/health until the server answers at all (401 counts: it is up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"web process exited: {log.read_text()[-2000:]}"
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{base}/api/health", timeout=1.0, trust_env=False)
            return
        time.sleep(0.05)
    raise AssertionError(f"web server not ready in {timeout_s} s: {log.read_text()[-2000:]}")


def web_server(config: Path) -> Iterator[WebServer]:
    with WebServer(config) as server:
        yield server
