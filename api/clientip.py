"""The client's address: the socket's, or `X-Forwarded-For`'s only when a trusted proxy sent it (CONTRACT §4).

`TRUSTED_PROXIES` lists the addresses and networks (CIDR) of the proxies in front of the gateway; none
by default, so the header is ignored and every client is the address it connects from. Behind trusted
proxies the header is read from the right (each proxy appends the address it was connected from) and
the first address that is not itself a trusted proxy is the client's. An entry that is not an IP
address ends the walk: what lies left of it was written by someone we cannot vouch for.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


def trusted_networks(entries: Iterable[str | Network]) -> tuple[Network, ...]:
    """The networks of `TRUSTED_PROXIES` entries (`10.0.0.1`, `10.0.0.0/8`, `fd00::/8`); ValueError if malformed."""
    return tuple(ipaddress.ip_network(str(entry).strip(), strict=False) for entry in entries)


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return trusted_networks(entries)


def _address(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.7:443
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is that IPv4 address (one limit, one log spelling).
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_ip(request: HttpRequest) -> str:
    """The client's IP address as text (bounded: at most an IPv6 address), `unknown` without a usable socket."""
    peer = _address(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return UNKNOWN
    networks = _networks(tuple(str(entry) for entry in settings.TRUSTED_PROXIES))
    if not networks:
        return str(peer)

    def trusted(address: Address) -> bool:
        return any(address in network for network in networks)

    client = peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if trusted(client) and forwarded:
        for entry in reversed(forwarded.split(",")[-20:]):
            hop = _address(entry)
            if hop is None:
                break
            client = hop
            if not trusted(hop):
                break
    return str(client)


def ratelimit_ip(request: HttpRequest) -> str:
    """`client_ip` for django-ratelimit (the admin login), which needs an address: `0.0.0.0` for `unknown`."""
    ip = client_ip(request)
    return "0.0.0.0" if ip == UNKNOWN else ip
