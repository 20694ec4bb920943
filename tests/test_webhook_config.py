"""Webhook config keys reach delivery: ``events`` filter, per-webhook retry policy and timeout,
and one address policy (``allow_private`` as CIDRs) for ``config check`` and sending.

Real parts: config text through ``load_config_text``, the monitor's own mapping
(``vadmon.monitor.alert_settings``), the alert pipeline, a SQLite outbox, HTTP receivers on
127.0.0.1.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from delivery_support import run_once
from webhook_receiver import Receiver
from webhook_support import SECRET, T0, config, hook, score

from vadmon.alerts.delivery import DeliveryWorker, build_body, new_msg_id
from vadmon.alerts.outbox import Outbox
from vadmon.alerts.process import AlertPipeline
from vadmon.alerts.webhook_url import UrlRefused, check_url
from vadmon.errors import VadmonError
from vadmon.settings import alert_settings


def run_event(pipeline: AlertPipeline) -> None:
    """One event: 3 high snippets (start), 3 low (end), then shut down (flushes deliveries)."""
    pipeline.start()
    for i, value in enumerate([0.9, 0.9, 0.9, 0.1, 0.1, 0.1]):
        pipeline.on_message(score(i, value))
    pipeline.shutdown()


def kinds(rx: Receiver) -> list[str]:
    return [r.json["type"].rsplit(".", 1)[1] for r in rx.verified()]


def test_webhook_events_filter_sends_only_subscribed_kinds(tmp_path: Path) -> None:
    with Receiver([SECRET]) as every, Receiver([SECRET]) as starts:
        hooks = hook("every", every.url) + hook("starts", starts.url, "events: [start]")
        cfg = config(tmp_path, hooks)
        run_event(AlertPipeline(alert_settings(cfg)))
        every.wait_for(2, ok_only=True)
        assert kinds(every) == ["start", "end"]
        assert kinds(starts) == ["start"]
    outbox = Outbox(cfg.storage.outbox_db, readonly=True)
    rows = {(d.kind, d.endpoint) for d in outbox.deliveries()}
    outbox.close()
    assert rows == {("start", "every"), ("start", "starts"), ("end", "every")}


def test_each_webhook_has_its_own_attempts_and_backoff(tmp_path: Path) -> None:
    failing = ("status", 500, {})
    with Receiver([SECRET], default=failing) as rx:
        hooks = (
            hook(
                "capped", rx.url + "/a", "max_attempts: 10, backoff_initial_s: 1, backoff_max_s: 2"
            )
            + hook("few", rx.url + "/b", "max_attempts: 6, backoff_initial_s: 1")
            + hook("slow", rx.url + "/c", "max_attempts: 10, backoff_initial_s: 2")
        )
        cfg = config(tmp_path, hooks)
        settings = alert_settings(cfg)
        outbox = Outbox(cfg.storage.outbox_db)
        ev = {"id": "e1", "camera": "lobby", "start_ts": T0}
        msg_id = new_msg_id()
        outbox.enqueue(ev, "start", msg_id, build_body("start", ev), ["capped", "few", "slow"])
        now = time.time()
        for row in outbox.deliveries(msg_id):  # as if 5 attempts had failed already
            outbox.mark_retry(row, 5, now, "HTTP 500", now)
        run_once(DeliveryWorker(str(cfg.storage.outbox_db), settings.delivery))
        rows = {d.endpoint: d for d in outbox.deliveries(msg_id)}
        outbox.close()
    assert rows["few"].status == "dead" and rows["few"].attempts == 6
    capped, slow = rows["capped"], rows["slow"]
    assert capped.status == slow.status == "pending"
    # 6th failure: full delay = initial · 2^5, capped by backoff_max_s, jittered to [½, 1]
    assert 1.0 - 0.5 <= capped.next_attempt_at - now <= 2.0 + 1.0
    assert 32.0 - 0.5 <= slow.next_attempt_at - now <= 64.0 + 1.0


def test_each_webhook_has_its_own_timeout(tmp_path: Path) -> None:
    with Receiver([SECRET], default=("hang", 2.0)) as rx:
        hooks = hook("impatient", rx.url + "/a", "timeout_s: 0.3") + hook(
            "patient", rx.url + "/b", "timeout_s: 20"
        )
        cfg = config(tmp_path, hooks)
        outbox = Outbox(cfg.storage.outbox_db)
        ev = {"id": "e1", "camera": "lobby", "start_ts": T0}
        msg_id = new_msg_id()
        outbox.enqueue(ev, "start", msg_id, build_body("start", ev), ["impatient", "patient"])
        run_once(DeliveryWorker(str(cfg.storage.outbox_db), alert_settings(cfg).delivery))
        rows = {d.endpoint: d for d in outbox.deliveries(msg_id)}
        outbox.close()
    assert "deadline of 0.3 s exceeded" in (rows["impatient"].last_error or "")
    # the receiver hangs 2 s then closes without answering: not the 0.3 s deadline
    assert "deadline" not in (rows["patient"].last_error or "")


# --------------------------------------------------------------------------- address policy

CASES = [  # address, allow_private, allowed?
    ("100.64.0.1", "false", False),  # carrier-grade NAT: not public
    ("100.64.0.1", "true", True),  # ... but a VPN overlay counts as LAN
    ("192.0.0.8", "false", False),  # IETF protocol assignments: not public on any Python
    ("169.254.169.254", "true", False),  # cloud metadata is never "LAN"
    ("169.254.169.254", "['169.254.169.254/32']", True),  # only when named exactly
    ("192.168.1.20", "['192.168.1.0/24']", True),
    ("10.0.0.5", "['192.168.1.0/24']", False),
    ("169.254.169.254", "['192.168.1.0/24']", False),
    ("8.8.8.8", "false", True),
    ("::ffff:10.0.0.1", "false", False),  # v4-mapped v6 is checked as v4
]


@pytest.mark.parametrize(("address", "allow", "allowed"), CASES)
def test_config_check_and_delivery_share_one_address_policy(
    tmp_path: Path, address: str, allow: str, allowed: bool
) -> None:
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:9/hook"
    text = hook("h", url).replace("allow_private: true", f"allow_private: {allow}")
    try:
        cfg = config(tmp_path, text)
        check_ok = True
    except VadmonError as exc:
        assert "allow_private" in exc.fix or "allow_private" in exc.what, exc.line()
        check_ok = False
    endpoint = alert_settings(cfg).delivery.endpoints[0] if check_ok else None
    try:
        check_url(url, endpoint.allow_private if endpoint else _allow(allow))
        send_ok = True
    except UrlRefused:
        send_ok = False
    assert (check_ok, send_ok) == (allowed, allowed)


def _allow(text: str) -> bool | tuple[str, ...]:
    if text in ("true", "false"):
        return text == "true"
    return tuple(part.strip(" '") for part in text.strip("[]").split(","))


def test_allow_private_cidr_rejects_a_bad_network(tmp_path: Path) -> None:
    text = hook("h", "http://192.168.1.2/x").replace(
        "allow_private: true", "allow_private: ['192.168.1.0/33']"
    )
    with pytest.raises(VadmonError) as err:
        config(tmp_path, text)
    assert "allow_private" in err.value.what and "test.yaml:" in err.value.where


def test_delivery_refuses_a_loopback_receiver_outside_the_allow_list(tmp_path: Path) -> None:
    with Receiver([SECRET]) as rx:
        host = rx.url.replace("127.0.0.1", "localhost")
        good = hook("lo", rx.url).replace("allow_private: true", "allow_private: [127.0.0.0/8]")
        cfg = config(tmp_path, good)
        outbox = Outbox(cfg.storage.outbox_db)
        ev = {"id": "e1", "camera": "lobby", "start_ts": T0}
        outbox.enqueue(ev, "start", new_msg_id(), build_body("start", ev), ["lo"])
        run_once(DeliveryWorker(str(cfg.storage.outbox_db), alert_settings(cfg).delivery))
        assert [d.status for d in outbox.deliveries()] == ["delivered"]
        lan_only = hook("lo", host).replace("allow_private: true", "allow_private: [10.0.0.0/8]")
        with pytest.raises(VadmonError, match="non-public address 127.0.0.1"):
            config(tmp_path, lan_only)
        outbox.close()
