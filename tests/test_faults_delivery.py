"""Faults found by independent testing (issue 20), delivery side: the real delivery worker
(its own thread and asyncio loop), real SQLite outbox, real loopback HTTP receivers.

Case 2: a receiver that accepts and never answers does not delay a healthy one.
Case 9: no answer at all (refused connections) retries until the row's age, not a count.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from config_support import delivery_settings, endpoint
from delivery_support import SECRET, event, run_once
from webhook_receiver import Receiver

from vadmon.alerts.delivery import DeliveryWorker, build_body, new_msg_id
from vadmon.alerts.outbox import Outbox
from vadmon.config.webhook import WebhookConfig
from vadmon.settings import webhook_endpoint

MESSAGES = 8


def test_a_hung_endpoint_never_delays_a_healthy_one(tmp_path: Path) -> None:
    with Receiver([SECRET]) as healthy, Receiver([SECRET], default=("hang", 30.0)) as hung:
        retry = {"timeout_s": 2.0, "backoff_initial_s": 0.05, "max_attempts": 50}
        eps = (endpoint("ok", healthy.url, SECRET, **retry),
               endpoint("hung", hung.url, SECRET, **retry))  # fmt: skip
        db = tmp_path / "outbox.db"
        outbox = Outbox(db)
        worker = DeliveryWorker(str(db), delivery_settings(eps, poll_interval_s=0.05))
        worker.start()
        queued: dict[str, float] = {}
        try:
            for i in range(MESSAGES):  # one every 0.3 s, to both receivers
                msg_id = new_msg_id()
                queued[msg_id] = time.time()
                outbox.enqueue(event(i), "start", msg_id, build_body("start", event(i)),
                               ["ok", "hung"])  # fmt: skip
                worker.wake()
                time.sleep(0.3)
            got = healthy.wait_for(MESSAGES, timeout=20.0)
        finally:
            worker.stop(flush_s=0.5)
        lags = sorted(r.t - queued[r.verified] for r in got)
        assert len(got) == MESSAGES and lags[-1] < 1.0, lags  # before: up to the 2 s deadline
        assert len(hung.requests) >= 1  # it was tried (and cut) meanwhile


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once closed: connections are refused


def test_no_answer_retries_until_its_age_not_a_count(tmp_path: Path) -> None:
    retry = {"max_attempts": 2, "backoff_initial_s": 0.05, "backoff_max_s": 0.1,
             "network_retry_s": 2.0}  # fmt: skip
    hook = WebhookConfig(name="down", url=f"http://127.0.0.1:{closed_port()}/hook",
                         secret=SECRET, allow_private=True, max_attempts=2,
                         backoff_initial_s=0.05, backoff_max_s=0.1, network_retry_s=2.0)  # fmt: skip
    ep = webhook_endpoint(hook)  # the config key, as the alert process gets it
    db = tmp_path / "outbox.db"
    outbox = Outbox(db)
    worker = DeliveryWorker(str(db), delivery_settings((ep,), poll_interval_s=0.05))
    msg_id = new_msg_id()
    outbox.enqueue(event(), "start", msg_id, build_body("start", event()), ["down"])
    t0 = time.monotonic()
    while outbox.deliveries(msg_id)[0].status == "pending" and time.monotonic() - t0 < 20:
        run_once(worker)
        time.sleep(0.05)
    (row,) = outbox.deliveries(msg_id)
    assert row.status == "dead" and row.attempts > retry["max_attempts"], row  # before: 2
    assert time.monotonic() - t0 >= retry["network_retry_s"]
    # an answer (HTTP 500) still counts attempts: dead after max_attempts
    with Receiver([SECRET], default=("status", 500, {})) as rx:
        ep = endpoint("down", rx.url, SECRET, **retry)
        worker = DeliveryWorker(str(db), delivery_settings((ep,), poll_interval_s=0.05))
        answered = new_msg_id()
        outbox.enqueue(event(1), "start", answered, build_body("start", event(1)), ["down"])
        while outbox.deliveries(answered)[0].status == "pending" and time.monotonic() - t0 < 30:
            run_once(worker)
            time.sleep(0.05)
        (row,) = outbox.deliveries(answered)
        assert row.status == "dead" and row.attempts == 2 and len(rx.requests) == 2
