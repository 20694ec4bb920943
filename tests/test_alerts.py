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
import time

import cv2
import pytest
import zmq
from alerts_support import ALERTS, CALM, CLASSES, FIGHT, SECRET, Harness, events_cli, previews  # noqa: F401 (fixture)
from config_support import delivery_settings, endpoint, write_config
from delivery_support import run_once
from webhook_receiver import Receiver

from vadmon.alerts.delivery import (
    DeliveryWorker,
    build_body,
    new_msg_id,
)
from vadmon.alerts.outbox import Outbox
from vadmon.runtime.heartbeat import ENV_ENDPOINT, ENV_NAME, parse_heartbeat


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot_on_disk(req) -> bool | None:
    data = json.loads(req.body)["data"]
    path = data.get("snapshot_path")
    return path is not None and os.path.isfile(path)


@pytest.mark.slow
def test_scores_and_previews_in_webhooks_with_snapshot_and_clip_out(subprocess_env, previews):  # noqa: F811 - the fixture
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
        ep = endpoint("main", rx.url, SECRET, max_attempts=2, backoff_initial_s=0.01)
        settings = delivery_settings((ep,))
        worker = DeliveryWorker(str(db), settings)
        outbox = Outbox(db)
        msg_id = new_msg_id()
        outbox.enqueue(ev, "start", msg_id, build_body("start", ev), ["main"])
        deadline = time.monotonic() + 20
        while outbox.counts()["dead"] == 0 and time.monotonic() < deadline:
            run_once(worker)
            time.sleep(0.02)
        out = events_cli(subprocess_env, "dead", "--db", str(db))
        assert out.returncode == 0 and msg_id in out.stdout and "HTTP 500" in out.stdout
        out = events_cli(subprocess_env, "--db", str(db), "dead", "--json")
        assert [r["msg_id"] for r in json.loads(out.stdout)] == [msg_id]
        bad = events_cli(subprocess_env, "replay", "msg_nope", "--db", str(db))
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
        out = events_cli(subprocess_env, "replay", msg_id, "--db", str(db))
        assert out.returncode == 0, out.stderr
        run_once(worker)
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
