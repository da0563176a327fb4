"""Receiver URLs: the address block list, refusals at save, and refusals at send (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from django.db import transaction

from core.actors import Actor, Via
from core.errors import InvalidInputError
from tests.webhooks.conftest import deliver_pass
from webhooks import services
from webhooks.models import DeliveryStatus, EventType, WebhookDelivery
from webhooks.urls import address_refusal, url_refusal

REFUSED = [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "100.127.255.254", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "192.0.0.8", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.88.99.1",
    "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1", "100::1", "fec0::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",   # IPv4-mapped
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",                           # NAT64 carrying private IPv4
    "2002:7f00:1::", "2002:c0a8:101::",                                 # 6to4 carrying private IPv4
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",                             # Teredo
    "::7f00:1",                                                         # IPv4-compatible
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
           "2002:808:808::"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address):
    assert address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.fixture
def dns(monkeypatch):
    """A resolver whose answers the test sets per host name (the network is never asked)."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_urls_must_be_http_with_a_host(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    for url in ["ftp://example.com/x", "file:///etc/passwd", "http://", "example.com/hook", "http://exa mple.com/"]:
        assert url_refusal(url), url
    assert url_refusal("http://127.0.0.1:9/hook") is None


@pytest.mark.django_db
def test_save_refuses_a_host_when_any_of_its_addresses_is_private(settings, dns, client_user):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    dns["hooks.example.test"] = ["93.184.216.34", "10.0.0.5"]
    dns["ok.example.test"] = ["93.184.216.34"]
    actor = Actor(client_user, Via.API)
    with pytest.raises(InvalidInputError) as refused:
        services.subscription_create(data={"url": "https://hooks.example.test/in"}, actor=actor)
    assert "10.0.0.5" in refused.value.fields["url"][0]
    for literal in ["http://127.0.0.1/x", "http://[::1]/x", "http://[::ffff:10.0.0.1]/x", "http://0x7f000001/x"]:
        with pytest.raises(InvalidInputError):
            services.subscription_create(data={"url": literal}, actor=actor)
    subscription, _ = services.subscription_create(data={"url": "https://ok.example.test/in"}, actor=actor)
    assert subscription.url == "https://ok.example.test/in"


@pytest.mark.django_db
def test_a_host_that_rebinds_to_loopback_after_the_check_is_refused_at_send(settings, dns, receiver, subscribe):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    host = "rebind.example.test"
    dns[host] = ["93.184.216.34"]  # what the check at save sees
    port = receiver.server_address[1]
    subscription, _ = subscribe(f"http://{host}:{port}/ok")
    dns[host] = ["127.0.0.1"]  # what the name resolves to when the worker sends
    with transaction.atomic():
        services.event_record(event_type=EventType.IMAGE_APPROVED, data={"image_id": "img_r"})
    deliver_pass()
    assert receiver.received == []  # the loopback receiver was never reached
    attempt = WebhookDelivery.objects.get(subscription=subscription).attempts.get()
    assert attempt.status_code is None and "refused address" in attempt.error
    assert WebhookDelivery.objects.get(subscription=subscription).status == DeliveryStatus.PENDING
