"""Webhook URLs: which addresses a receiver may have, and how to reach exactly those.

A receiver URL is resolved once per attempt; every address must pass the one network policy
(``vadmon.netpolicy``, the same table ``config check`` uses), and the request then connects to
an address that was checked. Letting the HTTP client resolve the name again would open a window
for DNS rebinding (a name that answers a public address to the check and 169.254.169.254 to the
connect). The Host header and, for https, the TLS server name still say the original host, so
virtual hosting and certificate checks work as before.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vadmon.errors import VadmonError
from vadmon.netpolicy import Network, allowed_networks, parse_address, refused
from vadmon.redact import redact_url

AllowPrivate = bool | tuple[str, ...]


class UrlRefused(VadmonError):
    """A webhook URL that is malformed or resolves to a non-public address (SSRF guard)."""


class UrlUnresolved(UrlRefused):
    """A webhook host that does not resolve (now): possibly a DNS outage, not a bad config.
    Transient: the message is retried with backoff like a refused connection, never
    dead-lettered on the spot and never a reason to stop at start-up."""


def _split(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"webhook URL must be http(s)://host/..., got {redact_url(url)!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UrlRefused(f"bad port in webhook URL {redact_url(url)!r}") from None
    return parts.hostname, port


def _check_addresses(url: str, addrs: list[str], allow_private: AllowPrivate) -> None:
    if not addrs:
        raise UrlUnresolved(f"webhook host of {redact_url(url)!r} resolved to no address")
    allowed = allowed_networks(allow_private)
    bad = sorted({a for a in addrs if _refused(a, allowed)})
    if bad:
        raise UrlRefused(
            f"webhook URL {redact_url(url)!r} resolves to non-public address {bad[0]}",
            "webhook endpoint",
            "list its network in this endpoint's allow_private if the receiver is yours",
        )


def _refused(addr: str, allowed: tuple[Network, ...]) -> bool:
    ip = parse_address(addr)
    return ip is None or refused(ip, allowed)


def check_url(url: str, allow_private: AllowPrivate = False) -> None:
    """Refuse loopback/link-local/private targets unless allowed (call at config time)."""
    host, port = _split(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlUnresolved(f"cannot resolve webhook host {host!r}: {exc}") from None
    _check_addresses(url, [i[4][0] for i in infos], allow_private)


async def resolve_approved(url: str, allow_private: AllowPrivate) -> list[str]:
    """The receiver's addresses, all checked against the policy (refused or unresolved raise)."""
    host, port = _split(url)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlUnresolved(f"cannot resolve webhook host {host!r}: {exc}") from None
    addrs = list(dict.fromkeys(str(i[4][0]) for i in infos))
    _check_addresses(url, addrs, allow_private)
    return addrs


def pinned_request(url: str, addr: str) -> tuple[str, str, dict[str, Any]]:
    """(URL naming ``addr`` instead of the host, Host header, httpx request extensions)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = literal + (f":{parts.port}" if parts.port else "")
    header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), header, extensions
