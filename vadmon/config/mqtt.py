"""The ``mqtt:`` section: one broker, the Home Assistant / Frigate-style channel.

Off unless ``url`` is set. Credentials come from ``${ENV}`` like every other secret (they are
scrubbed from logs by ``MonitorConfig.secret_values``); the URL itself may not carry them, so
one place (``username``/``password``) holds them and nothing prints them by accident.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from vadmon.config.base import StrictModel

# MQTT topic levels we build from this: no wildcards, no '$' start, no empty levels
TOPIC_PREFIX = r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$"


class MqttTlsConfig(StrictModel):
    """TLS for ``mqtts://`` (system CAs unless ``ca_file``); client certificate optional."""

    ca_file: Path | None = Field(None, description="PEM CA bundle that signed the broker's cert.")
    cert_file: Path | None = Field(None, description="PEM client certificate (mutual TLS).")
    key_file: Path | None = Field(None, description="PEM private key of cert_file.")
    insecure: bool = Field(
        False,
        description="Skip the broker host name check (the chain is still verified); only for "
        "brokers whose certificate names another host.",
    )

    @model_validator(mode="after")
    def _pair(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("mqtt.tls: cert_file and key_file go together")
        for path in (self.ca_file, self.cert_file, self.key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"mqtt.tls: no such file {path}")
        return self


class MqttConfig(StrictModel):
    """Events, per-camera states and Home Assistant discovery over MQTT (QoS 1, durable)."""

    url: str | None = Field(
        None, description="mqtt://host[:1883] or mqtts://host[:8883]; null: MQTT off."
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="MQTT client id; null: vadmon-<instance>. Two monitors must differ.",
    )
    username: str | None = Field(None, description="Broker user (use ${ENV}).")
    password: SecretStr | None = Field(None, description="Broker password (use ${ENV}).")
    topic_prefix: str = Field(
        "vadmon", pattern=TOPIC_PREFIX, max_length=64, description="First topic level(s)."
    )
    qos: Literal[0, 1, 2] = Field(
        1,
        description="QoS of events and states. 1/2: a row is delivered only once the broker "
        "acknowledges it; 0: once written to the socket (not durable).",
    )
    tls: MqttTlsConfig = Field(default_factory=MqttTlsConfig)
    discovery: bool = Field(True, description="Publish Home Assistant discovery configs.")
    discovery_prefix: str = Field(
        "homeassistant", pattern=TOPIC_PREFIX, max_length=64, description="HA discovery prefix."
    )
    score_interval_s: float = Field(
        1.0, ge=1.0, le=3600, description="At most one <camera>/score message this often."
    )
    max_inflight: int = Field(
        20, ge=1, le=1000, description="Event messages sent and not yet acknowledged, at most."
    )

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("mqtt url must be mqtt://host[:port] or mqtts://host[:port]")
        if parts.username or parts.password:
            raise ValueError("mqtt url must not carry credentials; use mqtt.username/password")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError("mqtt url takes no path or query (topics: mqtt.topic_prefix)")
        try:
            parts.port  # noqa: B018 (raises for a bad port)
        except ValueError:
            raise ValueError("mqtt url has a bad port") from None
        return value

    @model_validator(mode="after")
    def _secure_credentials(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError("mqtt.password needs mqtt.username")
        return self

    def host_port(self) -> tuple[str, int, bool]:
        """(host, port, tls) of ``url``; 1883 / 8883 when the port is left out."""
        parts = urlsplit(self.url or "")
        tls = parts.scheme == "mqtts"
        return parts.hostname or "", parts.port or (8883 if tls else 1883), tls


def node_id(text: str) -> str:
    """A discovery node id / unique-id part from a topic prefix (HA allows [A-Za-z0-9_-])."""
    return re.sub(r"[^A-Za-z0-9_\-]", "_", text)
