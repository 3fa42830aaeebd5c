"""Webhook safety: signatures receivers can verify, and no requests to private networks (SSRF).

Signature header (documented in docs/notifications.md)::

    X-Corkboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

Addresses: a URL is refused when any address its host resolves to is not globally routable
(loopback, RFC 1918 private, link-local incl. cloud metadata 169.254.169.254, CGNAT, unique-local
and site-local IPv6, IETF protocol assignments, documentation, multicast, reserved, unspecified;
and an IPv6 address that carries a private IPv4 one: IPv4-mapped or -compatible, NAT64, 6to4, or
Teredo), unless ``WEBHOOK_ALLOW_PRIVATE=true``. It is checked when
the webhook is created and again at every delivery, and the delivery connects to the very address
that was checked (so DNS rebinding between check and connect does not help).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Corkboard-Signature"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURLError(ValueError):
    """The URL is malformed, does not resolve, or points at a private address."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does: recompute, compare in constant time, reject stale timestamps (replays)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# Blocks that are not globally reachable (IANA special-purpose registries) but that the running
# Python's ``is_global`` may still call global; checked in addition to it.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(block)
    for block in (
        "192.0.0.0/24",  # IETF protocol assignments (192.0.0.8, DS-Lite, ...)
        "192.88.99.0/24",  # the deprecated 6to4 relay anycast
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "::/96",  # IPv4-compatible IPv6 (deprecated), ::, ::1
        "fec0::/10",  # site-local (deprecated)
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs (RFC 9602)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: IPv4-mapped, NAT64 well-known prefix, 6to4."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_public(ip: IPAddress) -> bool:
    """Globally reachable unicast, whatever encoding carries it: an IPv6 address that embeds an IPv4
    one (mapped, NAT64, 6to4) is judged by that IPv4 address too, and Teredo is refused outright
    (it tunnels to an address the server cannot judge)."""
    if any(ip in block for block in _NOT_GLOBAL if block.version == ip.version):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None:
            return False
        inner = _embedded_ipv4(ip)
        if inner is not None and not is_public(inner):
            return False
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to call it (``host``)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def parse(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURLError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeURLError("must not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURLError("has an invalid port") from None
    return parts.scheme, parts.hostname, port


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host and check every address it has; returns the address to connect to.

    Raises:
        UnsafeURLError: malformed, unresolvable, or (unless allowed) private.
    """
    scheme, host, port = parse(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise UnsafeURLError(f"host {host!r} does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            raise UnsafeURLError(f"host {host!r} does not resolve")
    if not allow_private:
        for ip in addresses:
            if not is_public(ip):
                raise UnsafeURLError(f"points at a private, loopback or link-local address ({ip})")
    return Target(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]))
