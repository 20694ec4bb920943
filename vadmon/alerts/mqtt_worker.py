"""MQTT delivery worker: outbox rows → broker, retained states, discovery, in its own thread.

Event messages are outbox rows (endpoint ``mqtt:<topic>``), committed by the alert loop with
the webhook rows; a row is marked delivered only when the broker acknowledges it (PUBACK with
a success code; QoS 0: once written). While the broker is away, refusing us or denying the
topic, rows stay ``pending`` and are retried (denials with backoff); the webhook worker never
reads these rows, so neither channel can hold up the other. At most ``max_inflight`` rows are
unacknowledged at once. After each (re)connect, ``available`` = online, stale retained topics
cleared, and every retained state published again.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

from vadmon.alerts.mqtt_client import MqttLink, MqttSettings
from vadmon.alerts.mqtt_state import Announced, StateStore
from vadmon.alerts.mqtt_topics import ONLINE, Topics
from vadmon.alerts.outbox import MQTT, Delivery, Outbox
from vadmon.runtime.status_schema import ALERT_LATENCY_BUCKETS, Histogram

log = logging.getLogger("vadmon.alerts.mqtt")
ENDPOINT_PREFIX = "mqtt:"
IDLE_WAIT_S = 1.0  # longest sleep without a wake-up: rows in backoff are retried this late


def endpoint_for(topic: str) -> str:
    return ENDPOINT_PREFIX + topic


@dataclass
class _Inflight:
    row: Delivery
    sent_at: float


class MqttWorker:
    """Background publisher; ``counters()`` is safe from any thread."""

    def __init__(self, s: MqttSettings, db_path: str, store: StateStore) -> None:
        self.s = s
        self.db_path = db_path
        self.store = store
        self.topics = Topics(s.topic_prefix)
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.latency = Histogram(ALERT_LATENCY_BUCKETS)  # row queued → acknowledged
        self.rng = random.Random()
        self._counts = dict.fromkeys(
            ("connected", "connects", "disconnects", "refused", "unreachable", "published",
             "delivered", "denied", "ack_timeouts", "states_published", "removed",
             "outbox_errors", "inflight_max"),
            0,
        )  # fmt: skip
        self._inflight: dict[int, _Inflight] = {}
        self._sending: set[tuple[str, str]] = set()
        self._state_mids: dict[int, tuple[str, bool]] = {}  # mid → (topic, is a removal)
        self._connected = False
        self._refused = False
        self._said: set[str] = set()  # problems logged since the last good connect
        self._stop = threading.Event()
        self._flush_until = 0.0
        self._thread: threading.Thread | None = None
        self.last_error = ""

    # --- control (any thread) -------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vadmon-mqtt", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self.events.put(("wake",))

    def stop(self, flush_s: float) -> None:
        """Keep publishing due rows for up to ``flush_s`` (while connected), then say
        ``offline`` and disconnect; unacknowledged rows stay pending for the next run."""
        self._flush_until = time.time() + flush_s
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(flush_s + 5.0)

    def counters(self) -> dict[str, int]:
        out = dict(self._counts)
        out["inflight"] = len(self._inflight)
        return out

    # --- worker thread --------------------------------------------------------------------

    def _run(self) -> None:
        outbox = Outbox(self.db_path)
        announced = Announced(outbox.conn)
        link = MqttLink(self.s, self.events)
        link.start()
        try:
            while not self._finished(outbox):
                items = self._wait()
                try:
                    self._step(items, outbox, announced, link)
                except sqlite3.Error as exc:  # full disk: rows stay as they were
                    self._counts["outbox_errors"] += 1
                    log.warning("mqtt: outbox update failed (%s); retrying", exc)
        finally:
            link.stop([(self.topics.available, "offline")], wait_s=2.0)
            outbox.close()

    def _finished(self, outbox: Outbox) -> bool:
        if not self._stop.is_set():
            return False
        if time.time() >= self._flush_until or not self._connected:
            return True
        return not self._inflight and not outbox.due(time.time(), 1, channel=MQTT)

    def _wait(self) -> list[tuple[Any, ...]]:
        """Sleep until an event (ack, connect, wake) or ``IDLE_WAIT_S``; all events queued."""
        wait = IDLE_WAIT_S
        if self._stop.is_set():
            wait = min(wait, max(0.0, self._flush_until - time.time()), 0.1)
        items: list[tuple[Any, ...]] = []
        with contextlib.suppress(queue.Empty):
            items.append(self.events.get(timeout=wait))
            while True:
                items.append(self.events.get_nowait())
        return items

    def _step(
        self, items: list[tuple[Any, ...]], outbox: Outbox, announced: Announced, link: MqttLink
    ) -> None:
        fresh = False
        for item in items:
            fresh |= self._on_event(item, outbox, announced)
        if not self._connected:
            return
        now = time.time()
        if fresh:
            self._announce(announced, link, now)
        self._publish_states(self.store.take_dirty(), announced, link)
        self._expire(outbox, now)
        self._fill(outbox, link, now)

    def _on_event(self, item: tuple[Any, ...], outbox: Outbox, announced: Announced) -> bool:
        """Apply one connection event; True on a fresh connect."""
        kind = item[0]
        if kind == "connected":
            self._connected = True
            self._counts["connects"] += 1
            self._counts["connected"] = 1
            if self._said:
                log.info("mqtt: connected to %s", self.s.where)
            self._said.clear()
            for f in self._inflight.values():  # paho re-sends these now; time them afresh
                f.sent_at = time.time()
            return True
        if kind == "disconnected":
            if self._connected:
                self._counts["disconnects"] += 1
                self._say("lost", f"lost the broker {self.s.where} ({item[1]}); "
                          "events wait in the outbox and are sent on reconnect")  # fmt: skip
            elif not self._refused:  # dropped before CONNACK: e.g. TLS refused our certificate
                self._unreachable()
            self._refused = False
            self._connected = False
            self._counts["connected"] = 0
        elif kind == "refused":
            self._refused = True  # the broker closes the connection next: same problem
            self._counts["refused"] += 1
            self._say(
                "refused:" + item[1],
                f"broker {self.s.where} refused the connection: {item[1]} (check "
                "mqtt.username / mqtt.password / mqtt.client_id); retrying with backoff",
                error=True,
            )
        elif kind == "unreachable":
            self._unreachable()
        elif kind == "ack":
            self._on_ack(outbox, announced, item[1], item[2], item[3])
        return False

    def _unreachable(self) -> None:
        self._counts["unreachable"] += 1
        self._say("unreachable", f"cannot reach the broker {self.s.where} (connection "
                  "refused, TLS or DNS failure); retrying with backoff")  # fmt: skip

    def _say(self, key: str, line: str, error: bool = False) -> None:
        """One line per problem until the next good connect (a retry loop does not spam)."""
        self.last_error = line
        if key not in self._said:
            self._said.add(key)
            (log.error if error else log.warning)("mqtt: %s", line)

    def _on_ack(
        self, outbox: Outbox, announced: Announced, mid: int, code: int, reason: str
    ) -> None:
        now = time.time()
        f = self._inflight.pop(mid, None)
        if f is not None:
            row = f.row
            self._sending.discard((row.msg_id, row.endpoint))
            attempts = row.attempts + 1
            if code < 0x80:
                outbox.mark_delivered(row, attempts, now)
                self._counts["delivered"] += 1
                self.latency.observe(now - row.created_at)
                return
            topic = row.endpoint.removeprefix(ENDPOINT_PREFIX)
            self._denied(topic, reason)
            error = f"broker refused publish to {topic}: {reason} (0x{code:02x})"
            outbox.mark_retry(row, attempts, now + self._backoff(attempts), error, now)
            return
        state = self._state_mids.pop(mid, None)
        if state is None:
            return  # an ack for a copy paho re-sent after a reconnect
        topic, removal = state
        if code >= 0x80:
            self._denied(topic, reason)
        elif removal:
            announced.forget(topic)
            self._counts["removed"] += 1

    def _denied(self, topic: str, reason: str) -> None:
        self._counts["denied"] += 1
        self._say(
            "denied:" + topic,
            f"broker {self.s.where} denied publishing to {topic}: {reason} (check the "
            "broker's ACL for this user); event messages retry with backoff",
            error=True,
        )

    def _backoff(self, attempts: int) -> float:
        full = min(self.s.backoff_max_s, self.s.backoff_base_s * 2 ** (attempts - 1))
        return full * (0.5 + 0.5 * self.rng.random())

    def _announce(self, announced: Announced, link: MqttLink, now: float) -> None:
        """After a (re)connect: online, clear stale retained topics, re-publish the states."""
        self._state_mids.clear()
        self._send_state(link, self.topics.available, ONLINE.encode(), True, False)
        roots = (self.s.topic_prefix,) + ((self.s.discovery_prefix,) if self.s.discovery else ())
        for topic in announced.stale(self.s.cameras, roots):
            self._send_state(link, topic, b"", True, True)
        self._publish_states([(t, p, True) for t, p in self.store.retained()], announced, link)

    def _publish_states(
        self, items: list[tuple[str, bytes, bool]], announced: Announced, link: MqttLink
    ) -> None:
        for topic, payload, retain in items:
            if retain:
                camera = self.topics.camera_of(topic) or _discovery_camera(topic)
                kind = "state" if topic.startswith(self.s.topic_prefix + "/") else "discovery"
                announced.record(topic, camera or "", kind)
            self._send_state(link, topic, payload, retain, False)

    def _send_state(
        self, link: MqttLink, topic: str, payload: bytes, retain: bool, removal: bool
    ) -> None:
        mid = link.publish(topic, payload, self.s.qos if retain else 0, retain)
        if mid is not None:
            self._counts["states_published"] += 1
            if retain:
                self._state_mids[mid] = (topic, removal)

    def _expire(self, outbox: Outbox, now: float) -> None:
        """Rows without an acknowledgement after ``ack_timeout_s`` connected: send again."""
        late = [m for m, f in self._inflight.items() if now - f.sent_at > self.s.ack_timeout_s]
        for mid in late:
            f = self._inflight.pop(mid)
            self._sending.discard((f.row.msg_id, f.row.endpoint))
            self._counts["ack_timeouts"] += 1
            error = f"no acknowledgement within {self.s.ack_timeout_s:g} s"
            outbox.mark_retry(f.row, f.row.attempts + 1, now, error, now)

    def _fill(self, outbox: Outbox, link: MqttLink, now: float) -> None:
        room = self.s.max_inflight - len(self._inflight)
        if room <= 0:
            return
        for row in outbox.due(now, room + len(self._inflight), channel=MQTT):
            if (row.msg_id, row.endpoint) in self._sending:
                continue
            topic = row.endpoint.removeprefix(ENDPOINT_PREFIX)
            mid = link.publish(topic, row.payload, self.s.qos, retain=False)
            if mid is None:
                return  # not connected after all: the next connect resumes
            self._inflight[mid] = _Inflight(row, now)
            self._sending.add((row.msg_id, row.endpoint))
            self._counts["published"] += 1
            self._counts["inflight_max"] = max(self._counts["inflight_max"], len(self._inflight))
            room -= 1
            if room == 0:
                return


def _discovery_camera(topic: str) -> str | None:
    """The camera of ``<disc>/<component>/<node>/<camera>_<object>/config``."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[-1] != "config":
        return None
    return parts[-2].rsplit("_", 1)[0]
