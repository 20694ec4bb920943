"""MQTT channel against a real mosquitto (tests/mqtt_support.py) and a real subscriber.

The alert pipeline is driven in-process (as tests/explain_support.py does) with its settings
built from a YAML config through ``vadmon.settings``, so these tests follow the schema.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import time
from pathlib import Path

import pytest
from config_support import rewrite_config, write_config_file, yaml_part
from explain_support import SECRET, drive, feed_event, pipeline, score
from mqtt_support import Broker, Watcher, make_tls, mqtt_section, wait_until
from webhook_receiver import Receiver

from vadmon.alerts.outbox import Outbox
from vadmon.config import load_config
from vadmon.runtime.heartbeat import TOPIC, encode
from vadmon.runtime.messages import ProvisionalScore
from vadmon.runtime.status_schema import CaptureInfo, CaptureStatus

EVENTS = "vadmon/events"


def config(tmp_path: Path, mqtt: str, cameras=("door",), webhook: str | None = None) -> Path:
    """Synthetic ``cameras``, no cooldown; ``mqtt``: the ``mqtt:`` YAML (``mqtt_section``)."""
    alerts = {"threshold": 0.6, "min_duration_s": 1.0, "cutoff_s": 2.0, "cooldown_s": 0,
              "pre_capture_s": 1, "post_capture_s": 1}  # fmt: skip
    config = {
        "instance": "mqtt-test",
        "defaults": {"alerts": alerts},
        "cameras": {c: {"source": "synthetic:w=64&h=48&fps=10"} for c in cameras},
        "model": {"mode": "vadclip", "checkpoint": "model.pt"},
        "storage": {"dir": tmp_path / "data"},
    }
    if webhook:
        config["webhooks"] = [{"name": "rx", "url": webhook, "secret": SECRET,
                               "allow_private": True, "backoff_initial_s": 0.2}]  # fmt: skip
    return write_config_file(tmp_path / "monitor.yaml", {**config, **yaml_part(mqtt)})


def event_types(watcher: Watcher) -> list[tuple[str, str]]:
    return [(m.json["type"], m.json["after"]["id"]) for m in watcher.on(EVENTS)]


def mqtt_rows(db: Path) -> list:
    outbox = Outbox(db, readonly=True)
    try:
        return [d for d in outbox.deliveries() if d.endpoint.startswith("mqtt:")]
    finally:
        outbox.close()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker")
    yield b
    b.close()


@pytest.fixture
def watcher(broker):
    w = Watcher(broker)
    yield w
    w.close()


def test_events_and_retained_states_arrive_with_the_webhook_body(tmp_path, broker, watcher):
    section = mqtt_section(broker.url, extra="  client_id: door-monitor-7\n")
    path = config(tmp_path, section, webhook="http://127.0.0.1:9/hook")
    pipe = pipeline(path)
    try:
        t0 = time.time() - 30
        capture = CaptureStatus(camera="door", state="stalled",
                                info=CaptureInfo(error="no frame for 5 s"))  # fmt: skip
        pipe.on_message([TOPIC, encode("capture:door", capture)])
        pipe.on_message(score(0, t0, 0.1, [0.9, 0.04, 0.03, 0.03]).to_parts())
        feed_event(pipe, t0, range(5, 15))
        drive(pipe, lambda: "end" in [t for t, _ in event_types(watcher)])
        watcher.wait("vadmon/door/anomaly", lambda m: m.payload == b"OFF" and m.t > 0)
    finally:
        pipe.shutdown()
    (new, *_rest, end) = [m.json for m in watcher.on(EVENTS)]
    assert (new["type"], end["type"]) == ("new", "end")
    assert {m.qos for m in watcher.on(EVENTS)} == {1}  # the default QoS
    assert " as door-monitor-7 " in broker.log()  # mqtt.client_id, as the broker saw it
    assert new["before"] == new["after"] and end["after"]["end_ts"] is not None
    # the same event body as the webhook's data, byte for byte
    outbox = Outbox(pipe.s.db_path, readonly=True)
    hooks = [d for d in outbox.deliveries() if d.endpoint == "rx"]
    outbox.close()
    assert json.loads(hooks[0].payload)["data"] == new["after"]
    assert json.loads(hooks[-1].payload)["data"] == end["after"]
    anomaly = [m.payload for m in watcher.on("vadmon/door/anomaly")]
    assert b"ON" in anomaly and anomaly[-1] == b"OFF"  # latest value wins before connecting
    assert watcher.on("vadmon/door/label")[-1].payload == b"explosion"
    snap = watcher.on("vadmon/door/snapshot")[-1].payload
    assert snap[:2] == b"\xff\xd8" and snap == Path(end["after"]["snapshot_path"]).read_bytes()
    (state,) = [m.json for m in watcher.on("vadmon/door/state")]
    assert (state["state"], state["reason"]) == ("stalled", "no frame for 5 s")
    assert len(watcher.on("vadmon/door/score")) == 1  # 31 scores in well under a second
    (hit,) = [m for m in watcher.on("vadmon/door/event")]
    assert hit.json["event_type"] == "explosion" and hit.json["id"] == new["after"]["id"]
    assert {d.status for d in mqtt_rows(pipe.s.db_path)} == {"delivered"}
    # retained: a subscriber arriving later gets the last states (and offline: vadmon stopped)
    late = Watcher(broker, "vadmon/#")
    try:
        late.wait("vadmon/door/snapshot")
        got = {m.topic: m for m in late.messages}
        assert got["vadmon/door/anomaly"].payload == b"OFF" and got["vadmon/door/anomaly"].retain
        assert got["vadmon/door/label"].retain and got["vadmon/door/state"].retain
        assert got["vadmon/available"].payload == b"offline"
        assert EVENTS not in got and "vadmon/door/score" not in got  # never retained
    finally:
        late.close()


def test_score_topic_is_rate_limited_to_one_per_interval(tmp_path, broker, watcher):
    extra = "  score_interval_s: 1.2\n  discovery_prefix: ha-test\n"
    pipe = pipeline(config(tmp_path, mqtt_section(broker.url, extra=extra)))
    try:
        wait_until(lambda: pipe.mqtt.worker.counters()["connected"], 20, "connected")
        t0, start = time.time(), time.monotonic()
        i = 0
        while time.monotonic() - start < 3.0:  # ~100 scores/s for 3 s: at 0, 1.2, 2.4 s
            pipe.on_message(score(i, t0, 0.2, [0.9, 0.04, 0.03, 0.03], dt=0.01).to_parts())
            i += 1
            time.sleep(0.01)
        wait_until(lambda: len(watcher.on("vadmon/door/score")) >= 3, 10, "three scores")
    finally:
        pipe.shutdown()
    got = watcher.on("vadmon/door/score")
    assert len(got) == 3 and float(got[0].payload) == pytest.approx(0.2)  # of ~250 scores
    gaps = [b.t - a.t for a, b in zip(got, got[1:], strict=False)]
    assert min(gaps) > 1.0
    # mqtt.discovery_prefix: the configs live under it, and nowhere else
    assert watcher.on("ha-test/binary_sensor/vadmon/door_anomaly/config")
    assert not [m for m in watcher.messages if m.topic.startswith("homeassistant/")]


def ha_configs(watcher: Watcher, component: str) -> dict[str, dict]:
    prefix = f"homeassistant/{component}/"
    return {m.topic: m.json for m in watcher.messages if m.topic.startswith(prefix) and m.payload}


def test_discovery_payloads_have_what_home_assistant_requires(tmp_path, broker, watcher):
    """Required fields per HA's MQTT docs: binary_sensor/sensor/event need ``state_topic``,
    event also ``event_types``; image needs ``image_topic`` (or url_topic); a device needs
    ``identifiers``; entities with a device need ``unique_id``. Then a camera leaves the config:
    its configs become empty retained messages (HA deletes those entities)."""
    path = config(tmp_path, mqtt_section(broker.url), cameras=("door", "yard"))
    pipe = pipeline(path)
    try:
        pipe.on_message(score(0, time.time(), 0.1, [0.9, 0.04, 0.03, 0.03]).to_parts())
        watcher.wait("homeassistant/event/vadmon/door_event/config")
        wait_until(lambda: len(ha_configs(watcher, "sensor")) == 4, 10, "four sensors")
    finally:
        pipe.shutdown()
    (binary,) = [c for t, c in ha_configs(watcher, "binary_sensor").items() if "door" in t]
    assert binary["state_topic"] == "vadmon/door/anomaly"
    assert (binary["payload_on"], binary["payload_off"]) == ("ON", "OFF")
    (event,) = ha_configs(watcher, "event").values()
    assert event["state_topic"] == "vadmon/door/event"
    assert event["event_types"] == ["fighting", "explosion", "arson"]
    (image,) = [c for t, c in ha_configs(watcher, "image").items() if "door" in t]
    assert image["image_topic"] == "vadmon/door/snapshot"
    assert image["content_type"] == "image/jpeg"
    sensors = {c["unique_id"]: c for c in ha_configs(watcher, "sensor").values()}
    assert sensors["vadmon_door_score"]["state_topic"] == "vadmon/door/score"
    diag = sensors["vadmon_door_state"]
    assert diag["state_topic"] == "vadmon/door/state"
    assert diag["entity_category"] == "diagnostic"
    every = [binary, event, image, *sensors.values()]
    assert len({c["unique_id"] for c in every}) == len(every)
    for c in every:
        assert c["availability_topic"] == "vadmon/available"
        assert c["device"]["identifiers"] == [f"vadmon_{c['unique_id'].split('_')[1]}"]
    # yard removed from the config: its retained configs are cleared, door's stay
    before = len(watcher.messages)
    pipe = pipeline(config(tmp_path, mqtt_section(broker.url), cameras=("door",)))
    try:
        gone = "homeassistant/binary_sensor/vadmon/yard_anomaly/config"
        watcher.wait(gone, lambda m: m.payload == b"")
        db = pipe.s.db_path
        wait_until(lambda: "yard" not in _announced(db), 10, "yard forgotten")
    finally:
        pipe.shutdown()
    cleared = {m.topic for m in watcher.messages[before:] if m.payload == b""}
    yard = {m.topic for m in watcher.messages[:before] if "yard" in m.topic and m.payload}
    assert len(yard) == 5  # 4 discovery configs (no class names seen yet) + yard/anomaly
    assert cleared == yard


def _announced(db: Path) -> str:
    outbox = Outbox(db, readonly=True)
    try:
        return " ".join(r[0] for r in outbox.conn.execute("SELECT topic FROM mqtt_announced"))
    finally:
        outbox.close()


@pytest.mark.slow
def test_broker_killed_mid_event_and_restarted_loses_nothing(tmp_path, broker, watcher):
    """Kill -9 mid-event; while it is down a second event starts and ends (webhooks go on);
    restarted (refusing vadmon until the watcher is back): every new and end arrives."""
    with Receiver([SECRET]) as rx:
        section = mqtt_section(broker.url, extra="  max_inflight: 2\n")
        pipe = pipeline(config(tmp_path, section, webhook=rx.url))
        try:
            t0 = time.time() - 120
            for i in range(8):  # event 1 opens
                pipe.on_message(score(i, t0, 0.95, [0.1, 0.2, 0.6, 0.1]).to_parts())
            watcher.wait(EVENTS, lambda m: m.json["type"] == "new")
            broker.kill()
            for i in range(8, 30):  # event 1 ends; event 2 opens and ends, broker down
                hot = 14 <= i < 22
                p = [0.1, 0.2, 0.6, 0.1] if hot else [0.9, 0.04, 0.03, 0.03]
                pipe.on_message(score(i, t0, 0.95 if hot else 0.05, p).to_parts())
            drive(pipe, lambda: [r.json["type"] for r in rx.verified()].count(
                "vadmon.event.end") == 2)  # fmt: skip
            pending = [d for d in mqtt_rows(pipe.s.db_path) if d.status == "pending"]
            assert len(pending) >= 3  # end 1, new 2, end 2 (+ door/event) wait in the outbox
            watcher.subscribed.clear()
            broker.start(users=("watcher",))  # refuses vadmon until the watcher is back
            assert watcher.subscribed.wait(20)
            worker = pipe.mqtt.worker
            wait_until(lambda: worker.counters()["refused"] >= 1, 60, "vadmon refused")
            assert {d.status for d in mqtt_rows(pipe.s.db_path)} >= {"pending"}
            broker.allow_all()
            drive(pipe, lambda: {d.status for d in mqtt_rows(pipe.s.db_path)} == {"delivered"})
            # the restarted broker lost its retained messages: vadmon published them again
            late = Watcher(broker, "vadmon/#")
            try:
                late.wait("vadmon/door/anomaly", lambda m: m.retain and m.payload == b"OFF")
                late.wait("vadmon/available", lambda m: m.retain and m.payload == b"online")
                late.wait("vadmon/door/label", lambda m: m.retain)
            finally:
                late.close()
        finally:
            pipe.shutdown()
    got = event_types(watcher)
    ids = {i for _, i in got}
    assert len(ids) == 2
    for event_id in ids:
        kinds = {t for t, i in got if i == event_id}
        assert {"new", "end"} <= kinds, (event_id, got)
        assert [t for t, i in dict.fromkeys(got) if i == event_id].count("new") == 1
    assert pipe.mqtt.worker.counters()["inflight_max"] == 2  # mqtt.max_inflight bounds it


def test_wrong_password_is_one_clear_line_and_webhooks_keep_going(
    tmp_path, broker, caplog
):  # fmt: skip
    caplog.set_level(logging.WARNING, logger="vadmon.alerts.mqtt")
    with Receiver([SECRET]) as rx:
        section = mqtt_section(broker.url, password="${MQTT_PASSWORD}")
        path = config(tmp_path, section, webhook=rx.url)
        import os

        os.environ["MQTT_PASSWORD"] = "not-the-password"
        try:
            pipe = pipeline(path)
        finally:
            del os.environ["MQTT_PASSWORD"]
        try:
            feed_event(pipe, time.time() - 60, range(5, 15))
            drive(pipe, lambda: len(rx.verified()) == 2)
            wait_until(lambda: pipe.mqtt.worker.counters()["refused"] >= 2, 20, "a retry")
            counters = pipe.status().counters
        finally:
            pipe.shutdown()
    lines = [r.getMessage() for r in caplog.records if r.name == "vadmon.alerts.mqtt"]
    assert len(lines) == 1 and "refused the connection: Not authorized" in lines[0], lines
    assert "check mqtt.username / mqtt.password" in lines[0] and "not-the-password" not in lines[0]
    assert {d.status for d in mqtt_rows(pipe.s.db_path)} == {"pending"}
    assert counters.get("mqtt_connected", -1) == 0 and counters.get("mqtt_delivered", -1) == 0


def test_acl_denied_publish_is_counted_and_visible(tmp_path, broker, watcher, caplog):
    caplog.set_level(logging.WARNING, logger="vadmon.alerts.mqtt")
    path = config(tmp_path, mqtt_section(broker.url, prefix="blocked"))
    pipe = pipeline(path)
    try:
        feed_event(pipe, time.time() - 60, range(5, 15))
        db = pipe.s.db_path
        drive(pipe, lambda: all(d.attempts >= 1 for d in mqtt_rows(db)) and mqtt_rows(db))
        counters = pipe.status().counters
    finally:
        pipe.shutdown()
    assert counters.get("mqtt_denied") >= 3 and counters.get("mqtt_delivered", -1) == 0
    rows = mqtt_rows(db)
    assert {d.status for d in rows} == {"pending"}  # kept, retried with backoff
    assert all("not authorized" in (d.last_error or "").lower() for d in rows)
    assert any("denied publishing to blocked/events" in r.getMessage() for r in caplog.records)
    assert not [m for m in watcher.messages if m.topic.startswith("blocked/")]
    assert watcher.on("homeassistant/binary_sensor/blocked/door_anomaly/config")  # allowed


def test_tls_with_a_ca_made_here(tmp_path):
    """Mutual TLS: the CA (tls.ca_file) and a client certificate (cert_file/key_file) made
    here; the broker's certificate names only ``localhost``, so 127.0.0.1 is refused unless
    ``tls.insecure``; no client certificate is refused by the broker. QoS 0 and no discovery
    on the good run (mqtt.qos, mqtt.discovery)."""
    tls = make_tls(tmp_path)
    b = Broker(tmp_path / "broker", tls=tls)
    w = Watcher(b)
    mutual = f"cert_file: {tls.client_cert}, key_file: {tls.client_key}"
    cases = {
        "ok": ("localhost", f"{{ca_file: {tls.ca}, {mutual}}}", "  qos: 0\n  discovery: false\n"),
        "mismatch": ("127.0.0.1", f"{{ca_file: {tls.ca}, {mutual}}}", ""),
        "insecure": ("127.0.0.1", f"{{ca_file: {tls.ca}, {mutual}, insecure: true}}", ""),
        "no_client_cert": ("localhost", f"{{ca_file: {tls.ca}}}", ""),
    }
    seen = {}
    try:
        for case, (host, tls_yaml, extra) in cases.items():
            d = tmp_path / case
            d.mkdir()
            section = mqtt_section(
                f"mqtts://{host}:{b.tls_port}", extra=f"  tls: {tls_yaml}\n{extra}"
            )
            pipe = pipeline(config(d, section))
            try:
                c = pipe.mqtt.worker.counters
                wait_until(lambda c=c: c()["connects"] or c()["unreachable"], 20, case)
                seen[case] = c()["connects"] > 0
                if case == "ok":
                    feed_event(pipe, time.time() - 60, range(5, 15))
                    drive(pipe, lambda: [t for t, _ in event_types(w)] == ["new", "end"])
            finally:
                pipe.shutdown()
            if case == "ok":
                ok_messages = list(w.messages)
    finally:
        w.close()
        b.close()
    assert seen == {"ok": True, "mismatch": False, "insecure": True, "no_client_cert": False}
    assert {m.qos for m in w.on(EVENTS)} == {0}
    assert not [m for m in ok_messages if m.topic.startswith("homeassistant/")]
    assert [m for m in w.messages if m.topic.startswith("homeassistant/")]  # "insecure" run


@pytest.mark.parametrize(
    ("mqtt", "line"),
    [
        ({"url": "http://broker:1883"}, "mqtt url must be mqtt://host[:port] or mqtts://"),
        ({"url": "mqtt://u:p@broker"}, "must not carry credentials"),
        ({"url": "mqtt://broker/topic"}, "takes no path"),
        ({"url": "mqtt://broker", "password": "x"}, "mqtt.password needs mqtt.username"),
        ({"url": "mqtt://broker", "topic_prefix": "a/#"}, "topic_prefix"),
        ({"url": "mqtt://broker", "score_interval_s": 0.5}, "score_interval_s"),
        ({"url": "mqtts://broker", "tls": {"cert_file": "c.pem"}}, "cert_file and key_file"),
    ],
)
def test_bad_mqtt_config_is_one_clear_error(tmp_path, mqtt, line):
    path = config(tmp_path, "mqtt: " + json.dumps(mqtt) + "\n")
    with pytest.raises(Exception) as err:
        load_config(path)
    assert line in str(err.value)


@pytest.mark.slow
def test_alert_process_killed_gives_the_last_will_then_an_interrupted_end(
    subprocess_env, broker, watcher
):  # fmt: skip
    """The real alert process (python -m vadmon.alerts): SIGKILL mid-event → the broker
    publishes its last will (``available`` = offline, retained); the next run sends the
    event's ``end`` (interrupted) from the outbox, and says ``online`` again."""
    from alerts_support import FIGHT, Harness
    from alerts_support import SECRET as HARNESS_SECRET

    with Receiver([HARNESS_SECRET]) as rx:
        h = Harness(subprocess_env, rx.url)
        with h.config.open("a") as f:
            f.write(mqtt_section(broker.url))
        try:
            h.start()
            base = time.time() + 1.0  # snippet times ≈ now: the event is not stale
            for k in range(4):
                h.score(k, base, 0.9, FIGHT)
            new = watcher.wait(EVENTS, lambda m: m.json["type"] == "new")
            watcher.wait("vadmon/available", lambda m: m.payload == b"online")
            h.proc.kill()
            h.proc.wait(10)
            assert [t for t, _ in event_types(watcher)] == ["new"]
            will = watcher.wait("vadmon/available", lambda m: m.payload == b"offline")
            h.start()
            end = watcher.wait(EVENTS, lambda m: m.json["type"] == "end", timeout=30)
            hooks = [r.json["type"] for r in rx.wait_for(2, timeout=30, ok_only=True)]
            assert h.stop(signal.SIGTERM) == 0
        finally:
            h.close()
    assert end.json["after"]["id"] == new.json["after"]["id"]
    assert end.json["after"]["reason"].startswith("interrupted")
    assert end.t > will.t
    assert [m.payload for m in watcher.on("vadmon/available")][-1] == b"offline"  # clean stop
    assert hooks == ["vadmon.event.start", "vadmon.event.end"]  # the webhook, alongside


def test_provisional_and_withdrawn_on_the_events_topic(tmp_path, broker, watcher):
    """``alerts.provisional``: the provisional event, then Frigate's ``new`` with the same id
    (confirmed), then a provisional the final scores withdraw; only the confirmed one touches
    the camera's event entity."""
    path = config(tmp_path, mqtt_section(broker.url))
    rewrite_config(path, lambda c: c["defaults"]["alerts"].update(provisional={"enabled": True}))
    pipe = pipeline(path)
    try:
        t0 = time.time() - 30
        hot = [0.1, 0.2, 0.6, 0.1]
        early = [ProvisionalScore(**dataclasses.asdict(score(i, t0, 0.95, hot))) for i in (5, 35)]
        pipe.on_message(early[0].to_parts())
        feed_event(pipe, t0, range(5, 15))  # the final scores confirm it
        pipe.on_message(early[1].to_parts())
        pipe.on_message(score(35, t0, 0.05, [0.9, 0.04, 0.03, 0.03]).to_parts())  # withdrawn
        drive(pipe, lambda: "withdrawn" in [t for t, _ in event_types(watcher)])
    finally:
        pipe.shutdown()
    got = event_types(watcher)
    first, second = [i for t, i in got if t == "provisional"]
    assert got.index(("provisional", first)) < got.index(("new", first))
    withdrawn = [i for t, i in got if t == "withdrawn"]
    assert withdrawn == [second] and second != first
    assert [m.json["id"] for m in watcher.on("vadmon/door/event")] == [first]
