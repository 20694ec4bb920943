"""The ``webhooks:`` section: Standard Webhooks receivers, their secrets and retry policy."""

from __future__ import annotations

import base64
import binascii
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from vadmon.config.base import StrictModel
from vadmon.netpolicy import Network, allowed_networks, refused_host
from vadmon.redact import redact_url

EventType = Literal["start", "update", "end", "explained", "provisional", "withdrawn"]
EVENT_TYPES: tuple[EventType, ...] = (
    "start",
    "update",
    "end",
    "explained",
    "provisional",
    "withdrawn",
)


class WebhookConfig(StrictModel):
    """A Standard Webhooks endpoint receiving event start/update/end messages."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$", description="Unique id.")
    url: str = Field(..., description="http(s) URL of the receiver.")
    secret: SecretStr = Field(
        ..., description="Signing secret 'whsec_<base64>' (>= 24 bytes decoded); use ${ENV}."
    )
    events: list[EventType] = Field(
        default_factory=lambda: list(EVENT_TYPES), min_length=1, description="Event types sent."
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="Overall deadline per attempt.")
    max_attempts: int = Field(
        8, ge=1, le=100,
        description="Attempts answered with an HTTP error; then the message is a dead letter.",
    )  # fmt: skip
    network_retry_s: float = Field(
        86400.0,
        gt=0,
        le=30 * 86400,
        description="No answer at all (DNS, connect, timeout) is retried until the message is "
        "this old, however many attempts that takes; then it is a dead letter.",
    )
    backoff_initial_s: float = Field(1.0, gt=0, le=3600, description="First retry delay.")
    backoff_max_s: float = Field(300.0, gt=0, le=86400, description="Retry delay cap.")
    allow_private: bool | list[str] = Field(
        False,
        description="Non-public receiver addresses allowed: a list of CIDRs (e.g. "
        "['192.168.1.0/24']), true = LAN ranges (RFC 1918, loopback, 100.64/10, IPv6 ULA; "
        "never link-local/metadata), false = none. Checked here and on every send.",
    )
    embed_snapshot: bool = Field(
        False,
        description="Put a small base64 JPEG of the snapshot in data.snapshot_jpeg "
        "(for receivers that cannot fetch web links).",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook url must be an http:// or https:// URL with a host")
        return value

    @field_validator("secret")
    @classmethod
    def _secret_format(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.startswith("whsec_"):
            raise ValueError("webhook secret must start with 'whsec_'")
        try:
            key = base64.b64decode(raw[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("webhook secret after 'whsec_' must be base64") from None
        if len(key) < 24:
            raise ValueError(f"webhook secret decodes to {len(key)} bytes; at least 24 required")
        return value

    @field_validator("allow_private")
    @classmethod
    def _cidrs(cls, value: bool | list[str]) -> bool | list[str]:
        try:
            allowed_networks(value)
        except ValueError as exc:
            raise ValueError(f"allow_private: {exc} (use CIDRs like 192.168.1.0/24)") from None
        return value

    @model_validator(mode="after")
    def _private_hosts(self) -> WebhookConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        bad = refused_host(urlsplit(self.url).hostname or "", self.allowed_networks())
        if bad is not None:
            raise ValueError(
                f"webhook url points at the non-public address {bad}; list its network in "
                "allow_private (e.g. [192.168.1.0/24]) if that is intended"
            )
        return self

    def allowed_networks(self) -> tuple[Network, ...]:
        return allowed_networks(self.allow_private)

    def signing_key(self) -> bytes:
        """The HMAC key: base64-decoded part after ``whsec_``."""
        return base64.b64decode(self.secret.get_secret_value()[len("whsec_") :])

    def __repr_args__(self):  # noqa: ANN204
        for name, value in super().__repr_args__():
            yield name, (redact_url(value) if name == "url" else value)
