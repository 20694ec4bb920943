"""The broker connection (paho-mqtt 2.x, MQTT v5) behind the MQTT channel.

MQTT v5 because a broker that denies a publish (ACL) says so only in v5: its PUBACK carries a
reason code ≥ 0x80, while v3.1.1 acknowledges a denied publish like a delivered one. paho's
network thread reconnects by itself with backoff; every callback only puts a tuple on the
owner's queue, so all decisions (outbox rows, states) happen in the owner's thread.
"""

from __future__ import annotations

import logging
import queue
import ssl
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties

from vadmon.alerts.mqtt_topics import OFFLINE, Topics

log = logging.getLogger("vadmon.alerts.mqtt")


@dataclass(frozen=True)
class MqttTls:
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    insecure: bool


@dataclass(frozen=True)
class MqttSettings:
    """Everything the channel needs (mapped from ``mqtt:`` by ``vadmon.settings``)."""

    host: str
    port: int
    tls: MqttTls | None  # None: plain TCP
    client_id: str
    username: str | None
    password: str | None = field(repr=False)
    topic_prefix: str
    qos: int
    discovery: bool
    discovery_prefix: str
    score_interval_s: float
    max_inflight: int
    ack_timeout_s: float  # no PUBACK by then (connected): the row is sent again
    backoff_base_s: float  # a denied row waits base·2^(n-1) … max before the next try
    backoff_max_s: float
    keepalive_s: int
    status_stale_s: float  # no capture status this long: the camera's state is "offline"
    cameras: tuple[str, ...]
    normal_label: str  # never an event type

    @property
    def where(self) -> str:
        return f"mqtt{'s' if self.tls else ''}://{self.host}:{self.port}"


class MqttLink:
    """One paho client; ``events`` receives ``("connected",)``, ``("refused", reason)``,
    ``("unreachable",)``, ``("disconnected", reason)`` and ``("ack", mid, code, reason)``."""

    def __init__(self, s: MqttSettings, events: queue.Queue[tuple[Any, ...]]) -> None:
        self.s = s
        self.events = events
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=paho.MQTTv5,
        )
        if s.username is not None:
            c.username_pw_set(s.username, s.password)
        if s.tls is not None:
            c.tls_set(
                ca_certs=s.tls.ca_file,
                certfile=s.tls.cert_file,
                keyfile=s.tls.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            c.tls_insecure_set(s.tls.insecure)
        c.will_set(Topics(s.topic_prefix).available, OFFLINE, qos=1, retain=True)
        c.reconnect_delay_set(min_delay=1, max_delay=int(max(1, s.backoff_max_s)))
        c.max_inflight_messages_set(s.max_inflight + 256)  # our bound is on event rows
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self.client = c

    def start(self) -> None:
        """Connect in paho's own thread; an unreachable broker is retried, never raised."""
        self.client.connect_async(self.s.host, self.s.port, keepalive=self.s.keepalive_s)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, qos: int, retain: bool) -> int | None:
        """Hand one message to paho; its mid, or None when it could not be queued now."""
        try:
            info = self.client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, OSError) as exc:  # e.g. payload over the protocol limit
            log.warning("mqtt publish to %s failed: %s", topic, exc)
            return None
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    def stop(self, last_words: list[tuple[str, bytes | str]], wait_s: float) -> None:
        """Publish ``last_words`` (retained, e.g. ``available`` = offline), give them up to
        ``wait_s`` to be acknowledged, then disconnect cleanly (no last will)."""
        infos = []
        if self.client.is_connected():
            infos = [self.client.publish(t, p, qos=1, retain=True) for t, p in last_words]
        for info in infos:
            try:
                info.wait_for_publish(timeout=wait_s)
            except (ValueError, RuntimeError):
                break
        self.client.disconnect()
        self.client.loop_stop()

    # --- paho's thread ------------------------------------------------------------------

    def _on_connect(
        self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Properties | None
    ) -> None:
        if reason.is_failure:
            self.events.put(("refused", str(reason)))
        else:
            self.events.put(("connected",))

    def _on_connect_fail(self, _c: paho.Client, _u: Any) -> None:
        self.events.put(("unreachable",))

    def _on_disconnect(
        self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Properties | None
    ) -> None:
        self.events.put(("disconnected", str(reason)))

    def _on_publish(
        self, _c: paho.Client, _u: Any, mid: int, reason: Any, _p: Properties | None
    ) -> None:
        self.events.put(("ack", mid, int(reason.value), str(reason)))
