"""Cases 10, 13, 14 (library level): a real receiver on 127.0.0.1, a real SQLite outbox."""

from __future__ import annotations

import base64
import json
import time

import pytest
from config_support import endpoint
from delivery_support import SECRET, drain, enqueue, event, run_once, setup
from webhook_receiver import Receiver

from vadmon.alerts.delivery import new_msg_id, parse_retry_after
from vadmon.alerts.outbox import Outbox
from vadmon.alerts.signing import SecretError
from vadmon.alerts.webhook_url import UrlRefused, check_url


def test_500s_then_200_is_delivered_with_the_same_id(tmp_path):
    with Receiver([SECRET], script=[("status", 500, {})] * 3) as rx:
        outbox, worker = setup(tmp_path, rx.url)
        msg_id = enqueue(outbox)
        drain(worker, outbox)
        assert [r.verified for r in rx.requests] == [msg_id] * 4
        assert {r.headers["webhook-id"] for r in rx.requests} == {msg_id}  # one id, 4 tries
        body = rx.requests[-1].json
        assert body["type"] == "vadmon.event.start" and body["data"]["label"] == "Fighting"
        (row,) = outbox.deliveries(msg_id)
        assert row.status == "delivered" and row.attempts == 4
        assert worker.counters()["delivered"] == 1 and worker.counters()["failed"] == 3


def test_410_disables_the_endpoint(tmp_path):
    with Receiver([SECRET], script=[("status", 410, {})]) as rx:
        outbox, worker = setup(tmp_path, rx.url)
        first, second = enqueue(outbox, 0), enqueue(outbox, 1)
        run_once(worker)
        assert len(rx.requests) == 1  # the second row is not tried after 410
        assert {d.status for d in outbox.deliveries()} == {"disabled"}
        assert "main" in outbox.disabled_endpoints()
        third = enqueue(outbox, 2)
        run_once(worker)
        assert len(rx.requests) == 1
        assert [d.msg_id for d in outbox.deliveries() if d.status == "disabled"] == [
            first,
            second,
            third,
        ]


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_is_honoured(tmp_path, code):
    with Receiver([SECRET], script=[("status", code, {"Retry-After": "1"})]) as rx:
        outbox, worker = setup(tmp_path, rx.url, backoff_initial_s=0.01)
        msg_id = enqueue(outbox)
        drain(worker, outbox)
        first, second = rx.requests
        assert first.verified == second.verified == msg_id
        assert second.t - first.t >= 1.0


def test_parse_retry_after_forms():
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now) == pytest.approx(20.0)
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_redirect_is_not_followed(tmp_path):
    with Receiver([SECRET], default=("status", 302, {"Location": "/elsewhere"})) as rx:
        outbox, worker = setup(tmp_path, rx.url, max_attempts=2)
        msg_id = enqueue(outbox)
        drain(worker, outbox)
        assert [r.path for r in rx.requests] == ["/hook", "/hook"]
        (row,) = outbox.deliveries(msg_id)
        assert row.status == "dead" and "redirect not followed" in row.last_error


@pytest.mark.parametrize("behaviour", [("hang", 30.0), ("drip", 30.0)])
def test_hanging_or_dripping_receiver_is_cut_off(tmp_path, behaviour):
    with Receiver([SECRET], script=[behaviour]) as rx:
        outbox, worker = setup(tmp_path, rx.url, timeout_s=1.0)
        msg_id = enqueue(outbox)
        t0 = time.monotonic()
        run_once(worker)
        elapsed = time.monotonic() - t0
        (row,) = outbox.deliveries(msg_id)
        assert row.status == "pending" and "deadline of 1 s exceeded" in row.last_error
        assert elapsed < 10.0  # the receiver would have held it for 30 s
        drain(worker, outbox)  # the next attempt gets the default 200
        assert [r.verified for r in rx.requests] == [msg_id, msg_id]


def test_private_urls_refused_unless_allowed(tmp_path):
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://172.16.5.5/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[fe80::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "ftp://8.8.8.8/x",
        "http:///nohost",
    ]:
        with pytest.raises(UrlRefused):
            check_url(url)
    check_url("https://8.8.8.8/hook")  # a public literal needs no DNS
    check_url("http://127.0.0.1:9/x", allow_private=True)
    with Receiver([SECRET]) as rx:
        outbox, worker = setup(tmp_path, rx.url, allow_private=False)
        msg_id = enqueue(outbox)
        run_once(worker)
        assert rx.requests == []
        (row,) = outbox.deliveries(msg_id)
        assert row.status == "dead" and "non-public address 127.0.0.1" in row.last_error
        assert worker.counters()["refused"] == 1


def test_endpoint_refuses_short_secret_and_hides_secrets():
    short = "whsec_" + base64.b64encode(b"k" * 16).decode()
    with pytest.raises(SecretError):
        endpoint("main", "https://8.8.8.8/", short)
    ep = endpoint("main", "https://user:pw@8.8.8.8/", SECRET)
    assert SECRET not in repr(ep) and "pw" not in repr(ep)


def test_dead_letter_then_replay_with_same_id(tmp_path):
    script = [("status", 500, {})] * 2
    with Receiver([SECRET], script=script) as rx:
        outbox, worker = setup(tmp_path, rx.url, max_attempts=2)
        msg_id = enqueue(outbox)
        drain(worker, outbox)
        (dead,) = outbox.dead_letters()
        assert (
            dead["msg_id"] == msg_id and dead["attempts"] == 2 and "HTTP 500" in dead["last_error"]
        )
        assert outbox.replay(msg_id) == 1
        assert outbox.replay(msg_id) == 0  # already pending again
        drain(worker, outbox)
        assert [r.verified for r in rx.requests] == [msg_id] * 3
        assert rx.requests[0].body == rx.requests[2].body
        assert outbox.dead_letters() == []


def test_worker_thread_delivers_on_wake_and_stops(tmp_path):
    with Receiver([SECRET]) as rx:
        outbox, worker = setup(tmp_path, rx.url, poll_interval_s=30.0)
        worker.start()
        try:
            # parked in its 30 s poll wait: only wake() can get the new row out within 10 s
            assert worker.idle.wait(timeout=30.0), "worker never went idle"
            msg_id = enqueue(outbox)
            worker.wake()
            (req,) = rx.wait_for(1, timeout=10.0)
            assert req.verified == msg_id
        finally:
            worker.stop(flush_s=1.0)
        assert worker._thread is not None and not worker._thread.is_alive()


def test_outbox_is_bounded_atomic_and_readable_while_writing(tmp_path):
    db = tmp_path / "o.db"
    writer = Outbox(db, max_pending=3)
    stored = [writer.enqueue(event(i), "start", new_msg_id(), "{}", ["main"]) for i in range(5)]
    assert stored == [["pending"]] * 3 + [["dead"]] * 2
    reader = Outbox(db, readonly=True)
    assert len(reader.list_events()) == 5
    assert reader.counts() == {"pending": 3, "delivered": 0, "dead": 2, "disabled": 0}
    assert "outbox full" in reader.dead_letters()[0]["last_error"]
    assert [e["camera"] for e in reader.list_events(camera="yard")] == []
    assert len(reader.list_events(since=1_700_000_003.0)) == 2
    # a failing enqueue leaves neither the event nor the delivery behind
    with pytest.raises(KeyError):
        writer.enqueue({"id": "x", "start_ts": 1.0}, "start", new_msg_id(), "{}", ["main"])
    assert len(reader.list_events()) == 5 and sum(reader.counts().values()) == 5
    mode = writer.conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert json.loads(reader.list_events(limit=1)[0]["data"])["id"] == event(4)["id"]


def test_connection_goes_to_the_address_the_check_approved(tmp_path, monkeypatch):
    """DNS rebinding: the name answers an allowed address to the check and another one later.
    The worker resolves once and connects to what it approved; Host still names the host."""
    import socket

    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            lookups.append(host)  # first answer: the receiver; any later one: nothing listens
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with Receiver([SECRET]) as rx:
        port = rx.server.server_address[1]
        outbox, worker = setup(tmp_path, f"http://rebind.test:{port}/hook", ("127.0.0.1/32",))
        msg_id = enqueue(outbox)
        drain(worker, outbox)
    assert [r.verified for r in rx.requests] == [msg_id]
    assert rx.requests[0].headers["host"] == f"rebind.test:{port}"
    assert lookups == ["rebind.test"]  # one lookup: the check's; the connect used its answer
