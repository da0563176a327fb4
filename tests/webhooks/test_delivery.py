"""Delivering the outbox: signed bodies, retries on the schedule, 410, redirects, auto-disable, caps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from core.actors import Actor, Via
from tests.webhooks.conftest import deliver_pass
from webhooks import delivery, services
from webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookEvent, WebhookSubscription

pytestmark = pytest.mark.django_db


def _record(event_type: str = EventType.IMAGE_APPROVED, **data) -> WebhookEvent:
    with transaction.atomic():
        return services.event_record(event_type=event_type, data={"image_id": "img_1", **data})


def test_an_event_reaches_a_subscriber_once_with_the_documented_body_and_headers(receiver, subscribe):
    subscription, secret = subscribe(receiver.url_for("/ok"))
    event = _record(status="approved")
    deliver_pass()
    deliver_pass()  # nothing left: the delivered event is not sent again
    (got,) = receiver.at("/ok")
    body = json.loads(got.body)
    assert body == {"event_type": "image.approved", "event_id": event.id,
                    "timestamp": int(event.created_at.timestamp()),
                    "data": {"image_id": "img_1", "status": "approved", "sequence": 1}}
    assert got.header("Content-Type") == "application/json"
    assert got.header("User-Agent") == "POD-Gateway-Webhook/1.0"
    assert got.header("X-Webhook-Event") == "image.approved"
    assert got.header("X-Webhook-ID") == got.header("webhook-id") == event.id
    expected = "sha256=" + hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.header("X-Webhook-Signature") == expected
    row = WebhookDelivery.objects.get(event=event, subscription=subscription)
    assert row.status == DeliveryStatus.DELIVERED and row.attempt_count == 1
    assert row.attempts.get().status_code == 204


def test_credentials_in_the_url_reach_the_receiver_as_basic_auth(receiver, subscribe):
    subscribe(receiver.url_for("/ok").replace("http://", "http://hook:s3cret@", 1))
    _record()
    deliver_pass()
    (got,) = receiver.at("/ok")
    assert got.header("Authorization") == "Basic " + base64.b64encode(b"hook:s3cret").decode()
    assert got.header("X-Webhook-Event") == "image.approved"


def test_sequence_grows_per_object(receiver, subscribe):
    subscribe(receiver.url_for("/ok"))
    first, second = _record(), _record(event_type=EventType.IMAGE_REJECTED)
    other = _record(image_id="img_2")
    assert [first.data["sequence"], second.data["sequence"], other.data["sequence"]] == [1, 2, 1]
    with transaction.atomic():
        services.events_record(event_type=EventType.IMAGE_APPROVED,
                               payloads=[{"image_id": "img_1"}, {"image_id": "img_3"}])
    latest = WebhookEvent.objects.filter(event_type=EventType.IMAGE_APPROVED).order_by("-created_at", "-id")[:2]
    assert sorted(e.data["sequence"] for e in latest) == [1, 3]


def test_a_rolled_back_change_sends_nothing(receiver, subscribe):
    subscribe(receiver.url_for("/ok"))
    with pytest.raises(RuntimeError), transaction.atomic():
        services.event_record(event_type=EventType.IMAGE_APPROVED, data={"image_id": "img_1"})
        raise RuntimeError("the change failed")
    deliver_pass()
    assert not WebhookEvent.objects.exists() and receiver.received == []


def test_only_matching_and_older_subscriptions_receive(receiver, subscribe):
    approvals, _ = subscribe(receiver.url_for("/ok"), events=["image.approved"])
    everything, _ = subscribe(receiver.url_for("/status/200"))
    _record(event_type=EventType.IMAGE_REJECTED)
    deliver_pass()
    assert len(receiver.at("/status/200")) == 1 and receiver.at("/ok") == []
    before = _record()
    late, _ = subscribe(receiver.url_for("/status/201"))
    WebhookSubscription.objects.filter(id=late.id).update(created_at=before.created_at + timedelta(seconds=1))
    deliver_pass()
    assert len(receiver.at("/ok")) == 1 and receiver.at("/status/201") == []


def test_failures_are_retried_on_the_schedule_with_jitter_then_fail(receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_DELAYS = [10, 60]
    subscription, _ = subscribe(receiver.url_for("/status/500"))
    event = _record()
    deliver_pass()
    row = WebhookDelivery.objects.get(event=event)
    assert row.status == DeliveryStatus.PENDING and row.last_error == "HTTP 500"
    waited = (row.next_attempt_at - row.attempts.get().started_at).total_seconds()
    assert 8 <= waited <= 12.5  # 10 s ± 20 %
    assert deliver_pass() == []  # not due yet
    WebhookDelivery.objects.filter(id=row.id).update(next_attempt_at=timezone.now())
    deliver_pass()
    row.refresh_from_db()
    second = row.attempts.order_by("number").last()
    assert 48 <= (row.next_attempt_at - second.started_at).total_seconds() <= 72.5
    WebhookDelivery.objects.filter(id=row.id).update(next_attempt_at=timezone.now())
    deliver_pass()
    row.refresh_from_db()
    assert row.status == DeliveryStatus.FAILED and row.attempt_count == 3  # 1 + len(delays) tries
    assert len(receiver.at("/status/500")) == 3
    assert {r.header("webhook-id") for r in receiver.at("/status/500")} == {event.id}
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 3 and subscription.is_active


def test_retry_after_is_honoured_up_to_the_next_step(receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_DELAYS = [5, 100, 1000]
    subscribe(receiver.url_for("/status/429", retry_after=40))
    subscribe(receiver.url_for("/status/503", retry_after=5000))
    _record()
    deliver_pass()
    by_url = {d.subscription.url: d for d in WebhookDelivery.objects.select_related("subscription")}
    asked = by_url[receiver.url_for("/status/429", retry_after=40)]
    capped = by_url[receiver.url_for("/status/503", retry_after=5000)]
    assert 39 <= (asked.next_attempt_at - asked.attempts.get().started_at).total_seconds() <= 41
    assert 99 <= (capped.next_attempt_at - capped.attempts.get().started_at).total_seconds() <= 101


def test_a_redirect_is_a_failure_and_is_not_followed(receiver, subscribe):
    subscribe(receiver.url_for("/redirect"))
    _record()
    deliver_pass()
    row = WebhookDelivery.objects.get()
    assert row.status == DeliveryStatus.PENDING and "302" in row.last_error
    assert receiver.at("/ok") == []


def test_410_gone_disables_the_subscription_and_ends_its_pending_deliveries(receiver, subscribe):
    subscription, _ = subscribe(receiver.url_for("/status/410"))
    _record()
    deliver_pass()
    _record(image_id="img_2")
    delivery.events_fan_out()
    subscription.refresh_from_db()
    assert not subscription.is_active and "410" in subscription.disabled_reason
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.FAILED}
    assert len(receiver.received) == 1


def test_a_receiver_failing_for_days_is_disabled_with_a_reason(receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_DELAYS = [1] * 20
    subscription, _ = subscribe(receiver.url_for("/status/500"))
    _record()
    for _ in range(9):
        deliver_pass()
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 9 and subscription.is_active
    # The clock moves on: the failures began six days ago.
    WebhookSubscription.objects.filter(id=subscription.id).update(failing_since=timezone.now() - timedelta(days=6))
    deliver_pass()
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert "failed since" in subscription.disabled_reason and "10 attempts" in subscription.disabled_reason
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED


def test_ten_failures_within_the_window_do_not_disable(receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_DELAYS = [1] * 20
    subscription, _ = subscribe(receiver.url_for("/status/500"))
    _record()
    for _ in range(12):
        deliver_pass()
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    subscription.refresh_from_db()
    assert subscription.is_active and subscription.consecutive_failures == 12


def test_a_success_resets_the_failure_record(receiver, subscribe):
    subscription, _ = subscribe(receiver.url_for("/flaky"))
    receiver.script("/flaky", [500])
    _record()
    deliver_pass()
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    deliver_pass()
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0 and subscription.failing_since is None
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_claims_never_exceed_the_in_flight_cap(receiver, subscribe, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 3
    busy, _ = subscribe(receiver.url_for("/ok"))
    quiet, _ = subscribe(receiver.url_for("/status/200"), events=["image.rejected"])
    for n in range(8):
        _record(image_id=f"img_{n}")
    _record(event_type=EventType.IMAGE_REJECTED)
    delivery.events_fan_out()
    first = delivery.deliveries_claim(limit=50)
    assert sorted(c.subscription_id for c in first) == sorted([busy.id] * 3 + [quiet.id])
    assert delivery.deliveries_claim(limit=50) == []  # the busy one is at its cap
    delivery.outcomes_record([delivery.attempt_send(first[0])])
    again = delivery.deliveries_claim(limit=50)
    assert len(again) == (1 if first[0].subscription_id == busy.id else 0)


def test_a_lease_that_ran_out_is_sent_again(receiver, subscribe):
    subscribe(receiver.url_for("/ok"))
    event = _record()
    delivery.events_fan_out()
    (claim,) = delivery.deliveries_claim(limit=10)  # the worker that claimed it dies here
    WebhookDelivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    deliver_pass()
    (got,) = receiver.at("/ok")
    assert got.header("webhook-id") == event.id == claim.event_id
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_response_bodies_are_kept_up_to_16_kb(receiver, subscribe):
    receiver.reply_body = b"x" * 40_000
    subscribe(receiver.url_for("/status/500"))
    _record()
    deliver_pass()
    attempt = WebhookDelivery.objects.get().attempts.get()
    assert attempt.response_body == "x" * 16 * 1024 and attempt.status_code == 500


def test_a_timeout_is_a_failed_attempt(receiver, subscribe, settings):
    settings.WEBHOOK_TIMEOUT = 0.3
    subscribe(receiver.url_for("/hang"))
    _record()
    deliver_pass()
    attempt = WebhookDelivery.objects.get().attempts.get()
    assert attempt.status_code is None and attempt.error.startswith("Timed out")


def test_redelivery_keeps_the_event_id_and_adds_an_attempt(receiver, subscribe, settings):
    settings.WEBHOOK_RETRY_DELAYS = []
    subscribe(receiver.url_for("/flaky"))
    receiver.script("/flaky", [500])
    event = _record()
    deliver_pass()
    row = WebhookDelivery.objects.get()
    assert row.status == DeliveryStatus.FAILED
    services.delivery_redeliver(delivery_id=row.id, actor=Actor(None, Via.API))
    deliver_pass()
    row.refresh_from_db()
    assert row.status == DeliveryStatus.DELIVERED and row.attempt_count == 2
    assert [r.header("webhook-id") for r in receiver.at("/flaky")] == [event.id, event.id]


def test_redelivering_many_takes_as_many_queries_as_one(receiver, subscribe, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.WEBHOOK_RETRY_DELAYS = []
    subscribe(receiver.url_for("/status/500"))
    for n in range(6):
        _record(image_id=f"img_{n}")
    deliver_pass()
    ids = list(WebhookDelivery.objects.values_list("id", flat=True))
    assert len(ids) == 6 and set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.FAILED}

    def queries(chosen: list[str]) -> int:
        with CaptureQueriesContext(connection) as captured:
            queued, refused = services.deliveries_redeliver_selected(delivery_ids=chosen, actor=Actor(None, Via.ADMIN))
        assert queued == chosen and refused == {}
        return len(captured.captured_queries)

    assert queries(ids[:1]) == queries(ids[1:])
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == 6
