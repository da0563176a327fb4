"""Which receiver URLs the gateway may call: checked when a subscription is saved and again at every send.

A URL must be http(s) with a host. Every address the host resolves to must be public: loopback,
private, link-local, CGNAT, multicast, reserved, documentation and benchmarking ranges are refused in
IPv4 and IPv6, and so are IPv6 forms that carry such an IPv4 address (IPv4-mapped, IPv4-compatible,
NAT64, 6to4, Teredo). At send time requests-hardened resolves the host once, pins the connection to that
address (so a DNS answer that changes between check and connect — rebinding — cannot slip past) and
never follows a redirect; the pinned address is checked against this list as well, since the
library's own list is shorter. `WEBHOOK_ALLOW_PRIVATE_URLS=true` lifts the address checks (local
receivers in development and tests).
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.structures import CaseInsensitiveDict
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges refused besides what `is_global` already excludes (which misses multicast and a few more).
_BLOCKED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
        "::/128", "::1/128", "::/96", "100::/64", "2001::/23", "2001:db8::/32", "2001:20::/28", "3fff::/20",
        "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "64:ff9b:1::/48",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeAddressError(requests.ConnectionError):
    """The receiver's host resolved to an address the gateway does not call."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))  # IPv4-compatible (::a.b.c.d): refused whatever it carries
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why the gateway must not connect to `ip`, or None if it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None:
            return f"{ip} is a Teredo address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None and (reason := address_refusal(embedded)):
            return f"{ip} carries {reason}"
        if embedded is not None and (ip.ipv4_mapped or ip.sixtofour or ip in _NAT64):
            return None  # a translation of a public IPv4 address
    if any(ip in net for net in _BLOCKED if net.version == ip.version) or not ip.is_global or ip.is_multicast:
        return f"{ip} is not a public address"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def url_refusal(url: str) -> str | None:
    """Why a subscription may not use `url` (scheme, host, every resolved address), or None."""
    if not url:
        return "A URL is required."
    if len(url) > 2000:
        return "At most 2000 characters."
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Must be an http(s) URL with a host."
    if any(ch.isspace() for ch in url):
        return "Not a valid URL."
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return None
    try:
        addresses = _resolve(parts.hostname, port)
    except (OSError, UnicodeError):
        return f"The host {parts.hostname} does not resolve."
    for ip in addresses:
        if reason := address_refusal(ip):
            return f"The host {parts.hostname} resolves to a refused address: {reason}."
    return None


class CheckedAddressAdapter(IPFilterAdapter):
    """requests-hardened's pinning adapter, with the pinned address checked against our full list."""

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
        try:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        except InvalidIPAddress as exc:
            raise UnsafeAddressError(f"refused address {exc}") from None
        pinned = ipaddress.ip_address(host_params["host"].strip("[]"))
        if reason := address_refusal(pinned):
            raise UnsafeAddressError(f"refused address: {reason}")
        return host_params, pool_kwargs


def session_new(*, timeout: float) -> requests.Session:
    """A session for one sending thread: no redirects, the timeout on connect and read, addresses checked."""
    allow_private = bool(settings.WEBHOOK_ALLOW_PRIVATE_URLS)
    session = HTTPSession(Config(
        ip_filter_enable=not allow_private,
        ip_filter_allow_loopback_ips=False,
        never_redirect=True,
        default_timeout=(timeout, timeout),
    ))
    if not allow_private:
        session.mount("http://", CheckedAddressAdapter(is_https_proto=False))
        session.mount("https://", CheckedAddressAdapter(is_https_proto=True))
    # Never a proxy from the environment: the address that was checked is the one connected to.
    session.trust_env = False
    return session


@lru_cache(maxsize=1024)
def _prepared(url: str) -> requests.PreparedRequest:
    """A POST to `url`, prepared once: requests' URL preparation (IDNA, quoting) costs more than the send."""
    return requests.Request("POST", url).prepare()


def post(
    session: requests.Session, *, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> requests.Response:
    """POST through the session's adapter itself: no redirect handling, cookies, hooks or environment merging.

    The adapter is where requests-hardened pins and checks the address, so nothing of that is skipped;
    what is skipped is the per-request work of `Session.request` and of preparing the same URL again,
    which cost as much as the request itself (a dispatcher sends hundreds a second from one process).
    An adapter never follows redirects.
    """
    prepared = _prepared(url).copy()
    # The prepared headers hold what the URL itself asks for (Basic credentials in `user:pass@`).
    prepared.headers = CaseInsensitiveDict({**prepared.headers, **headers})
    prepared.headers["Content-Length"] = str(len(body))
    prepared.body = body
    adapter = session.get_adapter(url)
    return adapter.send(prepared, stream=True, timeout=(timeout, timeout), verify=True, cert=None, proxies={})
