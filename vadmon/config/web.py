"""The ``web:`` section: the HTTP API, review page and signed media links (``vadmon.web``).

Security defaults: bound to loopback, authentication on, CORS off. Auth may be switched off
only while ``listen`` is a loopback address; a token must come from ``${ENV}`` (the loader
records it as a secret, so log scrubbers mask it).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from vadmon.config.base import StrictModel

MIN_TOKEN_CHARS = 16


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` → (host, port); ValueError with the reason."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen must be host:port, not {listen!r}")
    host = host.strip("[]")
    if not host:
        raise ValueError(f"listen needs a host (e.g. 127.0.0.1:{port})")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Only a literal loopback address or ``localhost`` counts (a name could resolve anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebAuthConfig(StrictModel):
    """Who may use the API and the review page."""

    enabled: bool = Field(
        True,
        description="Require the token on every endpoint (Bearer header or the page's session "
        "cookie). false is accepted only while web.listen is a loopback address.",
    )
    token: SecretStr | None = Field(
        None,
        description="The API/login token (>= 16 characters); use ${ENV}. Required when auth "
        "is enabled.",
    )


class WebConfig(StrictModel):
    """The ``web`` process: JSON API (OpenAPI at /openapi.json), media, review page."""

    enabled: bool = Field(False, description="Run the web process under the supervisor.")
    listen: str = Field("127.0.0.1:8971", description="host:port the web process binds.")
    public_url: str | None = Field(
        None,
        description="Base URL receivers reach this server at (links in alerts start with it); "
        "null: http://<listen>.",
    )
    auth: WebAuthConfig = Field(default_factory=WebAuthConfig)
    link_ttl_s: float = Field(
        7 * 86400.0,
        gt=0,
        le=365 * 86400.0,
        description="Lifetime of the signed snapshot/clip/event links put in alerts.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS); empty: CORS off.",
    )
    max_request_bytes: int = Field(
        16384, ge=1024, le=1 << 20, description="Largest request body accepted (413 above)."
    )
    live_fps: float = Field(
        2.0, gt=0, le=30, description="Frame rate cap of the MJPEG live view per camera."
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"public_url must be an http(s) URL, not {value!r}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("public_url must not carry credentials, a query or a fragment")
        return value.rstrip("/")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for origin in values:
            parts = urlsplit(origin)
            if origin == "*" or parts.scheme not in ("http", "https") or parts.path:
                raise ValueError(f"cors origin must be scheme://host[:port], not {origin!r}")
        return values

    @model_validator(mode="after")
    def _auth_rules(self) -> WebConfig:
        host, _ = split_listen(self.listen)
        if not self.auth.enabled and not is_loopback(host):
            raise ValueError(
                f"web.auth.enabled: false needs a loopback web.listen, not {host}; "
                "set web.auth.token from ${ENV} instead"
            )
        token = self.auth.token
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"web.auth.token must be at least {MIN_TOKEN_CHARS} characters")
        if self.enabled and self.auth.enabled and token is None:
            raise ValueError(
                "web.auth.token is required while auth is enabled: set it from ${ENV} "
                "(or bind to 127.0.0.1 with auth.enabled: false)"
            )
        return self

    def base_url(self) -> str:
        """Where links point: ``public_url``, else the listen address."""
        if self.public_url:
            return self.public_url
        host, port = split_listen(self.listen)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"
