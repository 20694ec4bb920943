"""Narration over a real chat-completions server: format, ordering, failures never cost alerts."""

from __future__ import annotations

import time

import pytest
from chat_server import REPLY, ChatServer
from config_support import rewrite_config
from explain_support import SECRET, drive, feed_event, pipeline, write_config
from webhook_receiver import Receiver

from vadmon.alerts.narrate import NarrationError, parse_reply
from vadmon.runtime.heartbeat import TOPIC, encode, parse_heartbeat
from vadmon.runtime.status_schema import RecentEvent


def narrate_config(tmp_path, hook: str, url: str, **extra) -> str:
    opts = ", ".join(f"{k}: {v}" for k, v in extra.items())
    return write_config(
        tmp_path,
        f"explain:\n  narrate: {{url: {url}, model: llava, api_key: '${{NARRATE_KEY}}', {opts}}}\n",
        webhook=hook,
    )


def types(rx: Receiver) -> list[str]:
    return [r.json["type"].rsplit(".", 1)[-1] for r in rx.verified()]


def test_explained_webhook_follows_start_with_a_well_formed_request(tmp_path, monkeypatch):
    monkeypatch.setenv("NARRATE_KEY", "sk-test-123")
    with ChatServer("answer") as chat, Receiver([SECRET]) as rx:
        pipe = pipeline(narrate_config(tmp_path, rx.url, chat.url, timeout_s=10, keyframes=2))
        try:
            feed_event(pipe, time.time() - 20, range(5, 15))
            drive(pipe, lambda: {"end", "explained"} <= set(types(rx)))
            status = pipe.status()
        finally:
            pipe.shutdown()
    # the heartbeat the supervisor validates still passes with the extra kind and the text
    hb = parse_heartbeat([TOPIC, encode("alerts", status)])
    assert hb is not None and hb.body is not None, hb
    (latest,) = hb.body.info.recent_events  # newest message of the one event: end or explained
    assert latest.kind in ("end", "explained") and latest.text.startswith("Explosion (")
    assert RecentEvent.model_validate({**latest.model_dump(), "kind": "explained"}).kind
    order = types(rx)
    assert order.index("start") < order.index("explained")
    explained = next(r.json["data"] for r in rx.verified() if r.json["type"].endswith("explained"))
    assert explained["explanation"]["narrative"] == REPLY
    assert explained["explanation"]["text"].startswith("Explosion (")
    assert chat.errors == [[]], chat.errors  # every request well formed
    parts = chat.requests[0]["messages"][1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert 1 <= len(images) <= 3  # peak snapshot + up to 2 keyframes
    assert "explosion" in parts[0]["text"]
    assert chat.auth == ["Bearer sk-test-123"]
    assert chat.requests[0]["model"] == "llava" and chat.requests[0]["max_tokens"] == 200
    assert pipe.narrator.counters["narrations"] == 1


def test_model_tokens_and_keyframes_come_from_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("NARRATE_KEY", "")
    with ChatServer("answer") as chat, Receiver([SECRET]) as rx:
        config = narrate_config(tmp_path, rx.url, chat.url, keyframes=0, max_tokens=50)
        rewrite_config(config, lambda c: c["explain"]["narrate"].update(model="qwen2.5-vl"))
        pipe = pipeline(config)
        try:
            feed_event(pipe, time.time() - 20, range(5, 15))
            drive(pipe, lambda: "explained" in types(rx))
        finally:
            pipe.shutdown()
    body = chat.requests[0]
    assert body["model"] == "qwen2.5-vl" and body["max_tokens"] == 50
    images = [p for p in body["messages"][1]["content"] if p["type"] == "image_url"]
    assert len(images) == 1  # the peak snapshot only


def test_private_narration_url_refused_when_not_allowed(tmp_path, monkeypatch):
    from vadmon.config import load_config
    from vadmon.errors import VadmonError
    from vadmon.settings import alert_settings

    monkeypatch.setenv("NARRATE_KEY", "")
    config = narrate_config(tmp_path, None, "http://127.0.0.1:9/v1", allow_private="false")
    with pytest.raises(VadmonError, match="non-public address"):
        alert_settings(load_config(config))
    ok = narrate_config(tmp_path, None, "http://127.0.0.1:9/v1")
    assert alert_settings(load_config(ok)).narrate.url == "http://127.0.0.1:9/v1"


def test_hanging_server_never_delays_or_loses_the_alert(tmp_path, monkeypatch):
    monkeypatch.setenv("NARRATE_KEY", "")
    with ChatServer("hang") as chat, Receiver([SECRET]) as rx:
        pipe = pipeline(narrate_config(tmp_path, rx.url, chat.url, timeout_s=1.5))
        try:
            t = time.monotonic()
            feed_event(pipe, time.time() - 20, range(5, 15))
            drive(pipe, lambda: "end" in types(rx))
            alert_s = time.monotonic() - t
            drive(pipe, lambda: pipe.narrator.counters["narration_timeouts"] == 1, timeout=15)
        finally:
            pipe.shutdown()
    assert len(chat.requests) == 1
    assert types(rx) == ["start", "end"]
    assert alert_s < 10


@pytest.mark.parametrize("mode", ["fail", "garbage"])
def test_failing_or_garbage_server_is_counted_and_alerts_flow(tmp_path, monkeypatch, mode):
    monkeypatch.setenv("NARRATE_KEY", "")
    with ChatServer(mode) as chat, Receiver([SECRET]) as rx:
        pipe = pipeline(narrate_config(tmp_path, rx.url, chat.url, timeout_s=5))
        try:
            feed_event(pipe, time.time() - 20, range(5, 15))
            drive(pipe, lambda: "end" in types(rx) and pipe.narrator.counters["narration_failures"])
            assert pipe.status().counters.get("narration_failures") == 1  # the heartbeat shows it
        finally:
            pipe.shutdown()
    assert chat.errors == [[]]
    assert types(rx) == ["start", "end"]


def test_hourly_budget_skips_and_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("NARRATE_KEY", "")
    with ChatServer("answer") as chat, Receiver([SECRET]) as rx:
        pipe = pipeline(narrate_config(tmp_path, rx.url, chat.url, max_per_hour=1))
        try:
            t0 = time.time() - 60
            feed_event(pipe, t0, range(5, 15))
            # a second camera-label pair cannot be cooled down: other camera
            from explain_support import score

            for i in range(30):
                hot = 5 <= i < 15
                probs = [0.1, 0.7, 0.1, 0.1] if hot else [0.9, 0.04, 0.03, 0.03]
                msg = score(i, t0, 0.95 if hot else 0.05, probs, camera="yard")
                pipe.on_message(msg.to_parts())
            drive(pipe, lambda: types(rx).count("end") == 2 and "explained" in types(rx))
        finally:
            pipe.shutdown()
    assert len(chat.requests) == 1
    assert pipe.narrator.counters["narration_skipped"] == 1


def test_reply_parsing_refuses_what_is_not_a_completion():
    ok = b'{"choices": [{"message": {"content": [{"type": "text", "text": "a fight"}]}}]}'
    assert parse_reply(ok) == "a fight"
    for bad in (b"", b"[]", b'{"choices": []}', b'{"choices": [{"message": {"content": " "}}]}'):
        with pytest.raises(NarrationError):
            parse_reply(bad)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_concurrency_bounds_requests_in_flight(tmp_path, monkeypatch, concurrency):
    from explain_support import score

    monkeypatch.setenv("NARRATE_KEY", "")
    with ChatServer("hang") as chat, Receiver([SECRET]) as rx:
        pipe = pipeline(narrate_config(tmp_path, rx.url, chat.url, timeout_s=4,
                                       concurrency=concurrency))  # fmt: skip
        try:
            t0 = time.time() - 20
            for camera in ("door", "yard"):  # two events at once, each wants a narration
                for i in range(30):
                    hot = 5 <= i < 15
                    probs = [0.1, 0.2, 0.6, 0.1] if hot else [0.9, 0.04, 0.03, 0.03]
                    msg = score(i, t0, 0.95 if hot else 0.05, probs, camera=camera)
                    pipe.on_message(msg.to_parts())
            time.sleep(2.0)  # well inside timeout_s: only concurrent requests have arrived
            in_flight = len(chat.requests)
            drive(pipe, lambda: pipe.narrator.counters["narration_timeouts"] == 2, timeout=20)
        finally:
            pipe.shutdown()
    assert in_flight == concurrency
    assert len(chat.requests) == 2
