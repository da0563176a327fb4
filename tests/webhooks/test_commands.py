"""`manage.py redeliver_webhooks` and `manage.py prune_webhooks`."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from tests.webhooks.conftest import deliver_pass
from webhooks import services
from webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEvent

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode != 0
    return caught.value


@pytest.fixture
def make_delivery(receiver, subscribe):
    """A delivery to the loopback receiver in a given status, created `days_ago` days ago, with one attempt."""
    subscription, _ = subscribe(receiver.url_for("/ok"), events=[EventType.IMAGE_APPROVED])
    counter = iter(range(1, 1000))

    def make(status: str, days_ago: float = 0, *, subscription=subscription) -> WebhookDelivery:
        with transaction.atomic():
            event = services.event_record(event_type=EventType.IMAGE_APPROVED,
                                          data={"image_id": f"img_{next(counter)}"})
        WebhookEvent.objects.filter(id=event.id).update(dispatched_at=timezone.now())
        delivery = WebhookDelivery.objects.create(event=event, subscription=subscription, status=status,
                                                  attempt_count=1, run_attempts=1)
        WebhookAttempt.objects.create(delivery=delivery, number=1, started_at=timezone.now(), status_code=500)
        created = timezone.now() - timedelta(days=days_ago)
        WebhookDelivery.objects.filter(id=delivery.id).update(created_at=created)
        WebhookEvent.objects.filter(id=event.id).update(created_at=created)
        return delivery

    make.subscription = subscription
    return make


def statuses(*deliveries: WebhookDelivery) -> list[str]:
    return [WebhookDelivery.objects.get(id=d.id).status for d in deliveries]


# --- redeliver_webhooks --------------------------------------------------------------------------


def test_redeliver_failed_queues_only_recent_failed_deliveries_and_the_next_pass_sends_them(make_delivery,
                                                                                            receiver):
    failed, delivered, old = make_delivery("failed", 1), make_delivery("delivered", 1), make_delivery("failed", 20)

    out = run("redeliver_webhooks", "--failed")

    assert "Queued 1 failed delivery again" in out
    assert statuses(failed, delivered, old) == ["pending", "delivered", "failed"]
    deliver_pass()
    (got,) = receiver.at("/ok")
    assert got.header("webhook-id") == failed.event_id
    assert WebhookDelivery.objects.get(id=failed.id).attempts.count() == 2


def test_redeliver_without_failed_also_queues_delivered_ones(make_delivery):
    failed, delivered, pending = make_delivery("failed", 1), make_delivery("delivered", 2), make_delivery("pending")

    out = run("redeliver_webhooks")

    assert "Queued 2 failed or delivered deliveries again" in out
    assert statuses(failed, delivered, pending) == ["pending", "pending", "pending"]


def test_redeliver_since_a_date_or_a_datetime(make_delivery):
    recent, older = make_delivery("failed", 1), make_delivery("failed", 5)

    since_date = (timezone.now() - timedelta(days=3)).date().isoformat()
    assert "Queued 1 " in run("redeliver_webhooks", "--failed", "--since", since_date)
    assert statuses(recent, older) == ["pending", "failed"]

    since = (timezone.now() - timedelta(days=6)).isoformat()
    assert "Queued 1 " in run("redeliver_webhooks", "--failed", f"--since={since}")
    assert statuses(older) == ["pending"]


def test_redeliver_reaches_back_at_most_14_days(make_delivery):
    within, beyond = make_delivery("failed", 13), make_delivery("failed", 15)

    out = run("redeliver_webhooks", "--failed", "--since", (timezone.now() - timedelta(days=30)).date().isoformat())

    assert "at most 14 days" in out and "Queued 1 " in out
    assert statuses(within, beyond) == ["pending", "failed"]


def test_redeliver_skips_disabled_subscriptions(make_delivery, subscribe, receiver):
    disabled, _ = subscribe(receiver.url_for("/off"), events=[EventType.IMAGE_APPROVED])
    disabled.is_active = False
    disabled.save()
    active, stopped = make_delivery("failed", 1), make_delivery("failed", 1, subscription=disabled)

    assert "Queued 1 " in run("redeliver_webhooks", "--failed")
    assert statuses(active, stopped) == ["pending", "failed"]


@pytest.mark.parametrize("since", ["yesterday", "2024-02-30", "2024-13-01", "12/01/2024", "2024-06-01T25:00"])
def test_redeliver_refuses_a_bad_date_and_changes_nothing(make_delivery, since):
    failed = make_delivery("failed", 1)

    error = refused("redeliver_webhooks", "--failed", "--since", since)

    assert since in str(error)
    assert statuses(failed) == ["failed"]


# --- prune_webhooks ------------------------------------------------------------------------------


def test_prune_deletes_deliveries_attempts_and_events_older_than_the_retention(make_delivery, settings):
    settings.WEBHOOK_RETENTION_DAYS = 30
    old, recent = make_delivery("delivered", 40), make_delivery("failed", 10)
    in_flight = make_delivery("delivering", 40)

    out = run("prune_webhooks")

    assert "Deleted 1 webhook delivery older than 30 days" in out
    assert set(WebhookDelivery.objects.values_list("id", flat=True)) == {recent.id, in_flight.id}
    assert not WebhookAttempt.objects.filter(delivery_id=old.id).exists()
    assert not WebhookEvent.objects.filter(id=old.event_id).exists()
    assert WebhookEvent.objects.filter(id=recent.event_id).exists()


def test_prune_older_than_days_overrides_the_retention(make_delivery):
    ten, two = make_delivery("failed", 10), make_delivery("delivered", 2)

    out = run("prune_webhooks", "--older-than-days", "5")

    assert "Deleted 1 webhook delivery older than 5 days" in out
    assert list(WebhookDelivery.objects.values_list("id", flat=True)) == [two.id]
    assert not WebhookDelivery.objects.filter(id=ten.id).exists()


@pytest.mark.parametrize("days", ["0", "-3"])
def test_prune_refuses_fewer_than_one_day_and_deletes_nothing(make_delivery, days):
    make_delivery("pending", 2)

    error = refused("prune_webhooks", "--older-than-days", days)

    assert "1 or more" in str(error)
    assert WebhookDelivery.objects.count() == 1


def test_prune_refuses_a_non_number():
    with pytest.raises(CommandError):
        run("prune_webhooks", "--older-than-days", "many")

