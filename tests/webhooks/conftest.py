"""A loopback receiver, webhook settings for fast tests, and a synchronous pass of the dispatcher."""

from __future__ import annotations

import pytest

from core.actors import Actor, Via
from tests.servers.receiver import ReceiverServer
from webhooks import delivery, services
from webhooks.models import WebhookSubscription


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_TIMEOUT = 2.0
    settings.WEBHOOK_RETRY_DELAYS = [10, 60, 300]
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 10
    settings.WEBHOOK_ROTATION_GRACE = 86400
    settings.WEBHOOK_DISABLE_AFTER = 5 * 86400
    settings.WEBHOOK_RETENTION_DAYS = 30
    settings.WEBHOOK_CONCURRENCY = 8
    settings.WEBHOOK_POLL_SECONDS = 0.05


@pytest.fixture
def receiver():
    server = ReceiverServer().start()
    yield server
    server.stop()


@pytest.fixture
def subscribe(request):
    """Create a subscription through the service, as the API does; returns (subscription, secret)."""

    def make(url: str, events: list[str] | None = None, user=None) -> tuple[WebhookSubscription, str]:
        owner = user or request.getfixturevalue("client_user")
        return services.subscription_create(
            data={"url": url, "events": events or ["*"]}, actor=Actor(owner, Via.API)
        )

    return make


def deliver_pass(*, limit: int = 100) -> list[delivery.Result]:
    """One dispatcher pass without threads: fan out, claim, send each claim in turn, record the outcomes."""
    delivery.events_fan_out()
    results = [delivery.attempt_send(claim) for claim in delivery.deliveries_claim(limit=limit)]
    delivery.outcomes_record(results)
    return results
