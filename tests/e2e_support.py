"""Helpers shared by tests (moved from test_monitor_e2e.py; test modules import only *_support modules)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import cv2
import pytest
from config_support import write_config_file
from conftest import require_tool

from vadmon.config import deep_merge


def write_flash_video(path: Path, vtest: Path, frames: int = 300, flash=(100, 160)) -> Path:
    """vtest frames at 10 fps with a red flash at frames [flash[0], flash[1])."""
    cap = cv2.VideoCapture(str(vtest))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for i in range(frames):
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
        frame = cv2.resize(frame, (320, 240))
        if flash[0] <= i < flash[1]:
            frame[:, :] = (0, 0, 255)
        out.write(frame)
    out.release()
    cap.release()
    return path


class Tmux:
    def __init__(self, name: str) -> None:
        self.sock = name

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.sock, *args], capture_output=True, text=True, timeout=20
        ).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "mon")

    def pid(self) -> int:
        return int(self.run("display-message", "-p", "-t", "mon", "#{pane_pid}").strip())


@pytest.fixture
def tmux():
    require_tool("tmux", "tmux")
    t = Tmux(f"vadmon-e2e-{time.time_ns()}")
    yield t
    t.run("kill-server")


def monitor_config(
    tmp: Path,
    rtsp_url: str,
    flash_video: Path,
    ckpt: Path,
    hook_url: str,
    secret: str,
    overrides: dict | None = None,
) -> Path:
    """Cameras ``lobby`` (RTSP) and ``door`` (the flash video, looped), one webhook signed with
    ``${HOOK_SECRET}``, the dashboard on; ``overrides`` deep-merge last."""
    alerts = {"threshold": 0.6, "min_duration_s": 1.0, "cutoff_s": 2.0, "cooldown_s": 60,
              "pre_capture_s": 2, "post_capture_s": 2}  # fmt: skip
    hook = {"name": "receiver", "url": hook_url, "secret": "${HOOK_SECRET}",
            "allow_private": True, "timeout_s": 5}  # fmt: skip
    config = {
        "instance": f"e2e{time.time_ns() % 10**6}",
        "defaults": {
            "stall_timeout_s": 3,
            "open_timeout_s": 5,
            "read_timeout_s": 3,
            "backoff_initial_s": 0.5,
            "backoff_max_s": 2,
            "preview": {"fps": 5, "max_width": 320},
            "alerts": alerts,
        },
        "cameras": {
            "lobby": {"source": rtsp_url},
            "door": {"source": str(flash_video), "loop": True},
        },
        "model": {"mode": "vadclip", "checkpoint": ckpt, "window": 64, "batch_wait_ms": 10},
        "webhooks": [hook],
        "storage": {"dir": tmp / "data"},
        "transport": {"ipc_dir": tmp / "ipc"},
        "dashboard": {"enabled": True, "refresh_hz": 2},
    }
    return write_config_file(tmp / "monitor.yaml", deep_merge(config, overrides or {}))
