"""Config → the settings of the alert channels beyond webhooks: MQTT, and the signed media links
and event body that every channel shares (``vadmon.alerts.payload``, ``vadmon.web``).

Part of the composition root with ``vadmon.settings`` (which re-exports these): process code
never imports it.
"""

from __future__ import annotations

from vadmon.alerts.links import LinkSettings
from vadmon.alerts.mqtt_client import MqttSettings, MqttTls
from vadmon.alerts.payload import PayloadSettings
from vadmon.config import MonitorConfig

MQTT_ACK_TIMEOUT_S = 30.0  # connected and no PUBACK by then: the event message is sent again
MQTT_BACKOFF_S = (1.0, 60.0)  # reconnect delay and denied-row retry delay: first, cap
MQTT_KEEPALIVE_S = 30
MQTT_STATUS_STALE_S = 10.0  # 10 capture status intervals without one: camera state offline


def mqtt_settings(cfg: MonitorConfig, normal_label: str) -> MqttSettings | None:
    """``mqtt:`` → the MQTT channel's settings; None when no broker is configured."""
    m = cfg.mqtt
    if m.url is None:
        return None
    host, port, tls = m.host_port()
    t = m.tls
    return MqttSettings(
        host=host,
        port=port,
        tls=MqttTls(
            ca_file=str(t.ca_file) if t.ca_file else None,
            cert_file=str(t.cert_file) if t.cert_file else None,
            key_file=str(t.key_file) if t.key_file else None,
            insecure=t.insecure,
        )
        if tls
        else None,
        client_id=m.client_id or f"vadmon-{cfg.instance}",
        username=m.username,
        password=m.password.get_secret_value() if m.password else None,
        topic_prefix=m.topic_prefix,
        qos=m.qos,
        discovery=m.discovery,
        discovery_prefix=m.discovery_prefix,
        score_interval_s=m.score_interval_s,
        max_inflight=m.max_inflight,
        ack_timeout_s=MQTT_ACK_TIMEOUT_S,
        backoff_base_s=MQTT_BACKOFF_S[0],
        backoff_max_s=MQTT_BACKOFF_S[1],
        keepalive_s=MQTT_KEEPALIVE_S,
        status_stale_s=MQTT_STATUS_STALE_S,
        cameras=tuple(cfg.enabled_cameras()),
        normal_label=normal_label,
    )


def link_settings(cfg: MonitorConfig) -> LinkSettings:
    """Links in alerts and the web server's check of them share the key file and base URL."""
    key = cfg.storage.dir / "web" / "links.key"
    return LinkSettings(public_url=cfg.web.base_url(), ttl_s=cfg.web.link_ttl_s, key_path=key)


def payload_settings(cfg: MonitorConfig) -> PayloadSettings:
    embed = frozenset(w.name for w in cfg.webhooks if w.embed_snapshot)
    links = link_settings(cfg) if cfg.web.enabled else None
    return PayloadSettings(instance=cfg.instance, links=links, embed=embed)
