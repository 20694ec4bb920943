"""The whole monitor with real parts: RTSP server, file camera, webhook receiver, dashboard.

A GStreamer RTSP server on 127.0.0.1 serves vtest.avi (camera ``lobby``); a second camera reads
a file with a red flash inserted (``door``). The model is the demo's tiny VadCLIP trained to fire
on red. The monitor runs under tmux at 100×30 with its dashboard; the test listens on the real
ipc sockets, receives signed webhooks over HTTP, kills and restarts the RTSP server.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq
from capture_support import rtsp_servers, wait_for
from e2e_support import Tmux, monitor_config, tmux, write_flash_video  # noqa: F401
from webhook_receiver import Receiver

from vadmon.alerts.signing import generate_secret
from vadmon.runtime.heartbeat import Heartbeat, decode_published
from vadmon.runtime.messages import ScoreMessage
from vadmon.runtime.status_schema import CaptureStatus

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture
def rtsp(vtest_path):
    yield from rtsp_servers(vtest_path)


class Listener:
    """Subscribes to the monitor's own sockets: capture status and inference scores."""

    def __init__(self, ipc: Path, cameras: list[str]) -> None:
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        for topic in (b"status", b"score"):
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        for cam in cameras:
            self.sub.connect(f"ipc://{ipc}/capture-{cam}.sock")
        self.sub.connect(f"ipc://{ipc}/scores.sock")
        self.states: dict[str, list[tuple[float, str]]] = {c: [] for c in cameras}
        self.scores: list[tuple[float, ScoreMessage]] = []

    def pump(self, seconds: float = 0.2) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not self.sub.poll(50):
                continue
            while True:
                try:
                    parts = self.sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                msg, _ = decode_published(parts)
                if isinstance(msg, Heartbeat) and isinstance(msg.body, CaptureStatus):
                    cam = msg.body.camera or ""
                    self.states.get(cam, []).append((time.time(), msg.body.state or ""))
                elif isinstance(msg, ScoreMessage):
                    self.scores.append((time.time(), msg))

    def state(self, cam: str) -> str:
        return self.states[cam][-1][1] if self.states[cam] else ""

    def wait_state(self, cam: str, wanted: set[str], timeout: float) -> bool:
        return wait_for(lambda: (self.pump(0.2), self.state(cam) in wanted)[1], timeout)

    def close(self) -> None:
        self.sub.close(0)
        self.ctx.term()


def test_monitor_end_to_end(tmp_path, rtsp, vtest_path, demo_checkpoint, tmux, subprocess_env):  # noqa: F811
    server = rtsp()
    flash = write_flash_video(tmp_path / "door.avi", vtest_path)
    secret = generate_secret()
    with Receiver([secret]) as hook:
        cfg = monitor_config(tmp_path, server.url(), flash, demo_checkpoint, hook.url, secret)
        log = tmp_path / "monitor.log"
        env = " ".join(
            f"{k}='{v}'"
            for k, v in {"PYTHONPATH": subprocess_env["PYTHONPATH"], "HOOK_SECRET": secret}.items()
        )
        cmd = f"cd {REPO} && env {env} {sys.executable} run_monitor.py --config {cfg} --dashboard 2>{log}"
        tmux.run("new-session", "-d", "-s", "mon", "-x", "100", "-y", "30", cmd)
        listener = Listener(tmp_path / "ipc", ["lobby", "door"])
        try:
            started = time.time()
            assert listener.wait_state("lobby", {"online"}, 60), log.read_text()[-3000:]
            assert listener.wait_state("door", {"online"}, 30), log.read_text()[-3000:]

            # the red flash on 'door' becomes a signed webhook with label, snapshot and clip
            def got(kind: str) -> list:
                listener.pump(0.1)
                return [r for r in hook.verified() if r.json["type"].endswith(kind)]

            assert wait_for(lambda: got("start"), 90), log.read_text()[-3000:]
            start = got("start")[0]
            data = start.json["data"]
            assert data["camera"] == "door" and data["label"] == "explosion", data
            assert Path(data["snapshot_path"]).is_file()
            assert start.headers["webhook-id"] and start.verified == start.headers["webhook-id"]
            door = [(t, m) for t, m in listener.scores if m.camera == "door" and t <= start.t]
            latency = start.t - door[-1][1].t_end
            print(f"alert latency (last snippet end → start webhook received): {latency:.2f} s")
            assert wait_for(lambda: got("end"), 60)
            end = got("end")[0].json["data"]
            clip = cv2.VideoCapture(end["clip_path"])
            assert clip.isOpened() and clip.get(cv2.CAP_PROP_FRAME_COUNT) > 10

            # the dashboard renders in a 100x30 terminal
            screen = tmux.screen()
            assert "lobby" in screen and "door" in screen, screen
            assert "online" in screen, screen
            assert all(len(line) <= 100 for line in screen.splitlines())
            (tmp_path / "dashboard.txt").write_text(screen)

            # throughput: snippets scored per second per camera while running
            elapsed = time.time() - started
            per_cam = {c: sum(m.camera == c for _, m in listener.scores) for c in ("lobby", "door")}
            print(f"snippets scored over {elapsed:.0f} s: {per_cam}")
            assert per_cam["lobby"] > 5 and per_cam["door"] > 5

            # RTSP server killed mid-run → stalled/offline; restarted → online again
            server.kill()
            assert listener.wait_state("lobby", {"stalled", "offline", "connecting"}, 30)
            down_at = time.time()
            server.start()
            assert listener.wait_state("lobby", {"online"}, 60), log.read_text()[-3000:]
            print(f"lobby back online {time.time() - down_at:.1f} s after the server restart")
            assert listener.state("door") == "online"

            # orderly shutdown on Ctrl-C
            pid = tmux.pid()
            tmux.run("send-keys", "-t", "mon", "C-c")
            assert wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30)
        finally:
            listener.close()
        text = log.read_text()
        assert "Traceback" not in text, text[-3000:]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_config_error_is_one_line_with_yaml_line(tmp_path, subprocess_env):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "cameras:\n  a:\n    source: x.mp4\n    fpz: 3\nmodel:\n  mode: vadclip\n  checkpoint: m.pt\n"
    )
    proc = subprocess.run(
        [sys.executable, "run_monitor.py", "--config", str(cfg), "--no-dashboard"],
        cwd=REPO,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{cfg}:4" in lines[0] and "fpz" in lines[0], lines[0]


def test_demo_checkpoint_fires_on_red(demo_checkpoint):
    """The forced-anomaly model really separates red flashes from normal footage."""
    from vadmon.inference.embedding import SnippetEncoder
    from vadmon.inference.scores import VadClipStreamScorer
    from vadmon.model import load_model

    model = load_model(demo_checkpoint)
    scorer = VadClipStreamScorer(model, window=64)
    enc = SnippetEncoder(model.clipmodel)
    cap = cv2.VideoCapture("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
    scores, red = [], []
    for i in range(30):
        cap.set(cv2.CAP_PROP_POS_FRAMES, i * 16 + 8)
        _, frame = cap.read()
        if 20 <= i < 24:
            frame = np.zeros_like(frame)
            frame[:, :] = (0, 0, 255)
        s = scorer.score(["cam"], enc.encode([[frame]]))[0]
        (red if 20 <= i < 24 else scores).append(s.score)
    assert min(red) > 0.9 and max(scores[:20]) < 0.3, (scores, red)
