"""The alert process end to end: real subprocess, real ZeroMQ, real receiver, real SQLite.

Covers case 11 (SIGKILL between queueing and delivery), 14 (dead letters via the CLI, replay
with the same id) and 15 (a flood of high scores gives a bounded number of webhooks).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import pytest
import zmq
from config_support import delivery_settings, write_config
from webhook_receiver import Receiver

from vadmon.alerts.delivery import (
    DeliveryWorker,
    Endpoint,
    build_body,
    new_msg_id,
)
from vadmon.alerts.outbox import Outbox
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


@pytest.fixture(scope="module")
def previews(vtest_path):
    cap = cv2.VideoCapture(str(vtest_path))
    out = []
    for _ in range(200):
        ok, img = cap.read()
        assert ok
        ok, jpeg = cv2.imencode(".jpg", cv2.resize(img, (192, 144)))
        out.append(jpeg.tobytes())
    cap.release()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        """Counters of the newest heartbeat (the supervisor's view of the process)."""
        deadline = time.monotonic() + timeout
        beat = None
        while time.monotonic() < deadline and beat is None:
            while self.status.poll(100 if beat is None else 0):
                beat = parse_heartbeat(self.status.recv_multipart()) or beat
        assert beat is not None and beat.process == "alerts", "no heartbeat from the alert process"
        return beat.fields["counters"]

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


def snapshot_on_disk(req) -> bool | None:
    data = json.loads(req.body)["data"]
    path = data.get("snapshot_path")
    return path is not None and os.path.isfile(path)


@pytest.mark.slow
def test_scores_and_previews_in_webhooks_with_snapshot_and_clip_out(subprocess_env, previews):
    with Receiver([SECRET], inspect=snapshot_on_disk) as rx:
        h = Harness(subprocess_env, rx.url)
        try:
            h.start()
            base = time.time() + 1.0
            for k in range(12):  # 12 snippets of 16 previews at 10 fps
                for i in range(16 * k, 16 * (k + 1)):
                    h.preview(i, base, previews[i])
                    time.sleep(0.003)
                time.sleep(0.03)
                high = 3 <= k <= 6
                h.score(k, base, 0.9 if high else 0.1, FIGHT if high else CALM)
            reqs = rx.wait_for(2, timeout=30.0, ok_only=True)
            start, end = (r.json for r in reqs[:2])
            assert [start["type"], end["type"]] == ["vadmon.event.start", "vadmon.event.end"]
            assert reqs[0].seen is True  # snapshot was on disk when start arrived
            assert start["data"]["id"] == end["data"]["id"]
            assert reqs[0].verified != reqs[1].verified
            data = end["data"]
            assert data["label"] == "Fighting" and data["camera"] == "lobby"
            assert data["start_ts"] == pytest.approx(base + 4.8)
            assert data["end_ts"] == pytest.approx(base + 11.2)
            assert data["text"].startswith("Fighting (0.")
            assert len(reqs[1].body) < 20_000
            cap = cv2.VideoCapture(data["clip_path"])
            n = 0
            while cap.read()[0]:
                n += 1
            cap.release()
            assert n == 105  # previews 28..132: start - 2 s … end + 2 s
            assert h.stop(signal.SIGTERM) == 0
            out = events_cli(subprocess_env, "--db", str(h.db), "--json")
            assert out.returncode == 0, out.stderr
            (row,) = json.loads(out.stdout)
            assert row["id"] == data["id"] and row["state"] == "closed"
        finally:
            h.close()


@pytest.mark.slow
def test_sigkill_between_queueing_and_delivery_loses_nothing(subprocess_env):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    h = Harness(subprocess_env, url)
    try:
        h.start()
        base = time.time() + 1.0
        for k in range(4):
            h.score(k, base, 0.9, FIGHT)
        deadline = time.monotonic() + 20
        queued = []
        while not queued and time.monotonic() < deadline:  # receiver down: attempts fail
            if h.db.exists():
                reader = Outbox(h.db, readonly=True)
                queued = [d for d in reader.deliveries() if d.attempts >= 1]
                reader.close()
            time.sleep(0.05)
        assert queued and queued[0].status == "pending" and queued[0].kind == "start"
        h.stop(signal.SIGKILL)
        with Receiver([SECRET], port=port) as rx:
            h.start()
            reqs = rx.wait_for(2, timeout=30.0, ok_only=True)
            assert reqs[0].verified == queued[0].msg_id
            assert reqs[0].json["type"] == "vadmon.event.start"
            end = reqs[1].json
            assert end["type"] == "vadmon.event.end"
            assert end["data"]["id"] == reqs[0].json["data"]["id"]
            assert end["data"]["reason"].startswith("interrupted")
            assert h.stop(signal.SIGTERM) == 0
    finally:
        h.close()


@pytest.mark.slow
def test_flood_of_high_scores_gives_bounded_webhooks(subprocess_env):
    with Receiver([SECRET]) as rx:
        h = Harness(subprocess_env, rx.url)
        try:
            h.start()
            base = time.time() + 1.0
            for k in range(1000):
                flicker = [0.05, 0.5 + 0.4 * (k % 2), 0.45 - 0.4 * (k % 2)]
                h.score(k, base, 0.95, flicker)
            counters = h.wait_counter("scores", 1000)
            assert counters["events"] == 1
            queued = counters["queued"]
            h.wait_counter("deliveries_delivered", queued)  # everything queued was sent
            kinds = [r.json["type"] for r in rx.verified()]
            assert kinds.count("vadmon.event.start") == 1
            assert kinds.count("vadmon.event.update") <= 3
            assert len(kinds) <= 4
            assert h.stop() == 0
        finally:
            h.close()


def test_dead_letter_listed_by_cli_and_replayed_with_same_id(tmp_path, subprocess_env):
    db = tmp_path / "outbox.db"
    ev = {"id": "1700000000.000000-abcdef", "camera": "lobby", "label": "Fighting",
          "start_ts": 1_700_000_000.0}  # fmt: skip
    with Receiver([SECRET], script=[("status", 500, {})] * 2) as rx:
        ep = Endpoint("main", rx.url, (SECRET,), allow_private=True)
        settings = delivery_settings((ep,), max_attempts=2, backoff_base_s=0.01)
        worker = DeliveryWorker(str(db), settings)
        outbox = Outbox(db)
        msg_id = new_msg_id()
        outbox.enqueue(ev, "start", msg_id, build_body("start", ev), ["main"])
        deadline = time.monotonic() + 20
        while outbox.counts()["dead"] == 0 and time.monotonic() < deadline:
            worker.run_once()
            time.sleep(0.02)
        out = events_cli(subprocess_env, "dead", "--db", str(db))
        assert out.returncode == 0 and msg_id in out.stdout and "HTTP 500" in out.stdout
        out = events_cli(subprocess_env, "--db", str(db), "dead", "--json")
        assert [r["msg_id"] for r in json.loads(out.stdout)] == [msg_id]
        bad = events_cli(subprocess_env, "replay", "msg_nope", "--db", str(db))
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
        out = events_cli(subprocess_env, "replay", msg_id, "--db", str(db))
        assert out.returncode == 0, out.stderr
        worker.run_once()
        assert [r.verified for r in rx.requests] == [msg_id] * 3
        assert (
            json.loads(events_cli(subprocess_env, "dead", "--db", str(db), "--json").stdout) == []
        )


def test_cli_registers_events_and_rejects_bad_input(tmp_path, subprocess_env):
    from vadmon.cli import COMMANDS

    assert "vadmon.commands.events" in COMMANDS
    out = events_cli(subprocess_env, "--db", str(tmp_path / "missing.db"))
    assert (
        out.returncode == 2 and "no outbox database" in out.stderr and "Traceback" not in out.stderr
    )
    Outbox(tmp_path / "o.db").close()
    out = events_cli(subprocess_env, "--db", str(tmp_path / "o.db"), "--since", "yesterday-ish")
    assert out.returncode == 2 and "--since" in out.stderr


def test_alert_process_refuses_private_url_unless_allowed(tmp_path, subprocess_env):
    hook = {"name": "default", "url": "http://10.0.0.8/hook", "secret": SECRET}

    def alerts(**webhook: object) -> subprocess.CompletedProcess:
        config = write_config(tmp_path, webhooks=[{**hook, **webhook}])
        args = [sys.executable, "-m", "vadmon.alerts", "--config", str(config)]
        return subprocess.run(args, env=subprocess_env, capture_output=True, text=True, timeout=60)

    out = alerts()
    assert out.returncode == 2 and "private" in out.stderr and "allow_private" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = alerts(secret="whsec_c2hvcnQ=")
    assert out.returncode == 2 and "at least 24" in out.stderr
    # allowed, the address is checked again when sending: the process starts and stays up
    config = write_config(tmp_path, webhooks=[{**hook, "allow_private": True}])
    ctx = zmq.Context()
    status = ctx.socket(zmq.PULL)
    status.setsockopt(zmq.LINGER, 0)
    status.bind(f"ipc://{tmp_path}/status")
    env = {**subprocess_env, ENV_ENDPOINT: f"ipc://{tmp_path}/status", ENV_NAME: "alerts"}
    proc = subprocess.Popen([sys.executable, "-m", "vadmon.alerts", "--config", str(config)],
                            env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        # its first heartbeat says the main loop runs, i.e. the URL check let it through
        beat, deadline = None, time.monotonic() + 60
        while beat is None and proc.poll() is None and time.monotonic() < deadline:
            if status.poll(100):
                beat = parse_heartbeat(status.recv_multipart())
        assert proc.poll() is None, proc.stderr.read()
        assert beat is not None and beat.process == "alerts", "no heartbeat in 60 s"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        status.close()
        ctx.term()
