"""Which webhook addresses vadmon may send to: one policy for ``config check`` and delivery.

A webhook URL is an SSRF vector: a config (or DNS answer) that points at the metadata service
of a cloud host (169.254.169.254), a router's admin page or a database on loopback would have
vadmon POST signed JSON there. Every address that is not globally routable is therefore refused
unless the endpoint's ``allow_private`` lists a network containing it.

The table below is written out instead of using ``ipaddress``'s ``is_global``/``is_private``,
whose lists change between Python versions (3.11 calls 192.0.0.8 global, 3.12 does not): the
config check and the delivery worker, and two hosts on different Pythons, must agree.

``allow_private: true`` means the usual LAN ranges (``LAN_NETWORKS``: RFC 1918, loopback,
carrier-grade NAT 100.64/10 as used by VPN overlays, IPv6 ULA and loopback); link-local (cloud
metadata), multicast, documentation and unspecified addresses stay refused. A list of CIDRs
allows exactly those networks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IANA special-purpose registries: not globally reachable (or not unicast)
NON_PUBLIC: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)
LAN_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
    )
)
LOCAL_NAMES = ("localhost", "localhost.localdomain")


def parse_address(text: str) -> Address | None:
    """An IP literal (``[v6]``, ``v6%zone`` accepted); None for a host name."""
    try:
        addr = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def allowed_networks(allow_private: bool | Iterable[str]) -> tuple[Network, ...]:
    """``allow_private`` from the config → the networks it opens (raises ValueError on a bad
    CIDR)."""
    if allow_private is True:
        return LAN_NETWORKS
    if allow_private is False:
        return ()
    return tuple(ipaddress.ip_network(str(n), strict=False) for n in allow_private)


def is_public(addr: Address) -> bool:
    return not any(addr.version == n.version and addr in n for n in NON_PUBLIC)


def refused(addr: Address, allowed: Iterable[Network]) -> bool:
    """True when ``addr`` is not public and no allowed network contains it."""
    if is_public(addr):
        return False
    return not any(addr.version == n.version and addr in n for n in allowed)


def refused_host(host: str, allowed: Iterable[Network]) -> str | None:
    """Config-time check of a URL host without DNS: the refused address, or None.

    Names of the local host count as loopback; other names are checked after resolution, at
    send time, by the delivery worker with the same ``refused``.
    """
    name = host.lower().rstrip(".")
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        loopback = ipaddress.ip_address("127.0.0.1")
        return str(loopback) if refused(loopback, allowed) else None
    addr = parse_address(host)
    if addr is None:
        return None
    return str(addr) if refused(addr, allowed) else None
