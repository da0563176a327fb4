"""The webhooks admin: subscriptions with recent deliveries, deliveries with attempts, owners, the actions."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.contrib.messages import get_messages
from django.db import transaction
from django.urls import reverse

from core.actors import Actor, Via
from core.admin_tools import admin_url
from tests.conftest import make_user
from tests.webhooks.conftest import deliver_pass
from webhooks import services
from webhooks.models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = reverse("admin:webhooks_webhooksubscription_changelist")
DELIVERIES = reverse("admin:webhooks_webhookdelivery_changelist")
EVENTS = reverse("admin:webhooks_webhookevent_changelist")


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def staff_client(db):
    """A staff user in the `clients` role: manages its own subscriptions in the admin."""
    return make_user("looker", "clients", is_staff=True)


@pytest.fixture
def other(db):
    return make_user("client2", "clients")


def subscription_of(user, url: str, **data) -> tuple[WebhookSubscription, str]:
    return services.subscription_create(data={"url": url, **data}, actor=Actor(user, Via.API))


def delivered_and_failing(receiver, subscription: WebhookSubscription) -> tuple:
    """For the two event types the subscription wants: one delivery that got a 204 and one that got a 500
    with a body (pending its retry)."""
    receiver.script(subscription.url.removeprefix(receiver.url), [204, 500])
    first, second = subscription.events
    with transaction.atomic():
        ok = services.event_record(event_type=first, data={"image_id": f"img_{subscription.pk}"})
        bad = services.event_record(event_type=second, data={"image_id": f"img_{subscription.pk}_2"})
    deliver_pass()
    return WebhookDelivery.objects.get(event=ok, subscription=subscription), WebhookDelivery.objects.get(
        event=bad, subscription=subscription)


@pytest.fixture
def two_owners(staff_client, other, receiver):
    """A subscription of the staff client and one of another client (no event type in common), each with a
    delivered and a failing delivery."""
    receiver.reply_body = b"receiver says no"
    mine, my_secret = subscription_of(staff_client, receiver.url_for("/mine"),
                                      events=[EventType.IMAGE_APPROVED, EventType.IMAGE_REJECTED])
    theirs, their_secret = subscription_of(other, receiver.url_for("/theirs"),
                                           events=[EventType.PRODUCT_PUBLISHED, EventType.PRODUCT_FAILED])
    return {"mine": mine, "theirs": theirs, "secrets": [my_secret, their_secret],
            "my_deliveries": delivered_and_failing(receiver, mine),
            "their_deliveries": delivered_and_failing(receiver, theirs)}


def action(client, url: str, name: str, ids: list[str]):
    return client.post(url, {"action": name, helpers.ACTION_CHECKBOX_NAME: ids, "index": 0}, follow=True)


# --- Pages ---------------------------------------------------------------------------------------


def test_a_superuser_sees_every_subscription_and_delivery_and_never_a_secret(client, superuser, two_owners):
    client.force_login(superuser)
    mine, theirs = two_owners["mine"], two_owners["theirs"]
    ok, failing = two_owners["my_deliveries"]

    listing = client.get(SUBSCRIPTIONS).content.decode()
    page = client.get(admin_url("webhooks_webhooksubscription_change", mine.pk)).content.decode()
    deliveries = client.get(DELIVERIES).content.decode()
    delivery = client.get(admin_url("webhooks_webhookdelivery_change", failing.pk)).content.decode()

    assert mine.url in listing and theirs.url in listing
    assert "looker" in listing and "client2" in listing and "image.approved, image.rejected" in listing
    # The subscription's page shows its recent deliveries: status, event type, attempts, last error.
    assert ok.pk in page and failing.pk in page
    assert "image.rejected" in page and "HTTP 500" in page and "pod-status-pending" in page
    assert all(d.pk in deliveries for d in two_owners["my_deliveries"] + two_owners["their_deliveries"])
    # A delivery's page shows each attempt: status code, duration, error and response body.
    attempt = failing.attempts.get()
    assert "HTTP 500" in delivery and "receiver says no" in delivery and f">{attempt.duration_ms}<" in delivery
    assert admin_url("webhooks_webhookevent_change", failing.event_id) in delivery
    for secret in two_owners["secrets"]:
        assert secret not in listing + page + deliveries + delivery


def test_the_failed_filter_and_the_event_type_filter(client, superuser, two_owners):
    ok, failing = two_owners["my_deliveries"]
    WebhookDelivery.objects.filter(pk=failing.pk).update(status=DeliveryStatus.FAILED)
    client.force_login(superuser)

    failed = client.get(DELIVERIES, {"status": "failed"})
    approvals = client.get(DELIVERIES, {"event__event_type__exact": "image.approved"})
    everything = client.get(DELIVERIES)

    assert "Failed deliveries" in failed.content.decode()
    assert [d.pk for d in failed.context["cl"].result_list] == [failing.pk]
    assert [d.pk for d in approvals.context["cl"].result_list] == [ok.pk]
    assert len(everything.context["cl"].result_list) == 4


def test_a_client_staff_user_sees_only_its_own_rows(client, staff_client, two_owners):
    client.force_login(staff_client)
    mine, theirs = two_owners["mine"], two_owners["theirs"]
    their_ok, their_failing = two_owners["their_deliveries"]

    listing = client.get(SUBSCRIPTIONS)
    deliveries = client.get(DELIVERIES)
    own_page = client.get(admin_url("webhooks_webhooksubscription_change", mine.pk))
    own_delivery = client.get(admin_url("webhooks_webhookdelivery_change", two_owners["my_deliveries"][1].pk))

    assert listing.status_code == deliveries.status_code == own_page.status_code == own_delivery.status_code == 200
    assert [s.pk for s in listing.context["cl"].result_list] == [mine.pk]
    assert {d.pk for d in deliveries.context["cl"].result_list} == {d.pk for d in two_owners["my_deliveries"]}
    assert theirs.url not in listing.content.decode() + deliveries.content.decode()
    assert their_failing.pk not in own_page.content.decode()
    # Another's rows are not found (the admin sends the user back to its index).
    for url in (admin_url("webhooks_webhooksubscription_change", theirs.pk),
                admin_url("webhooks_webhookdelivery_change", their_failing.pk)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    # The outbox holds every event's payload: not for clients, and their delivery pages do not link to it.
    assert client.get(EVENTS).status_code == 403
    assert reverse("admin:webhooks_webhookevent_changelist") not in own_delivery.content.decode()
    for secret in two_owners["secrets"]:
        assert secret not in listing.content.decode() + own_page.content.decode()


def test_a_subscription_is_deleted_with_its_deliveries_after_a_confirmation_that_counts_them(
    client, superuser, two_owners
):
    mine = two_owners["mine"]
    client.force_login(superuser)
    url = reverse("admin:webhooks_webhooksubscription_delete", args=[mine.pk])

    confirm = client.get(url)
    done = client.post(url, {"post": "yes"})

    assert confirm.status_code == 200
    assert "Webhook deliveries: 2" in confirm.content.decode() and "Webhook attempts: 2" in confirm.content.decode()
    assert done.status_code == 302
    assert not WebhookSubscription.objects.filter(pk=mine.pk).exists()
    assert not WebhookDelivery.objects.filter(subscription_id=mine.pk).exists()
    assert WebhookDelivery.objects.filter(subscription=two_owners["theirs"]).count() == 2


# --- Actions -------------------------------------------------------------------------------------


def test_redeliver_action_queues_the_selected_deliveries_and_reports_the_refused(client, superuser, two_owners,
                                                                                 receiver):
    ok, failing = two_owners["my_deliveries"]
    their_ok, _ = two_owners["their_deliveries"]
    services.subscription_update(subscription_id=two_owners["theirs"].pk, data={"is_active": False},
                                 actor=Actor(superuser, Via.ADMIN))
    client.force_login(superuser)

    response = action(client, DELIVERIES, "redeliver", [ok.pk, their_ok.pk])

    messages_ = texts(response)
    assert any(m.startswith("Queued again 1") and ok.pk in m for m in messages_)
    assert any("Not redelivered" in m and their_ok.pk in m for m in messages_)
    ok.refresh_from_db()
    their_ok.refresh_from_db()
    assert ok.status == DeliveryStatus.PENDING and their_ok.status == DeliveryStatus.DELIVERED
    before = len(receiver.at("/mine"))
    deliver_pass()
    assert receiver.at("/mine")[before:][0].header("webhook-id") == ok.event_id
    assert ok.attempts.count() == 2


def test_a_client_staff_user_redelivers_its_own_deliveries_only(client, staff_client, two_owners):
    my_ok, _ = two_owners["my_deliveries"]
    their_ok, _ = two_owners["their_deliveries"]
    client.force_login(staff_client)

    action(client, DELIVERIES, "redeliver", [my_ok.pk, their_ok.pk])

    my_ok.refresh_from_db()
    their_ok.refresh_from_db()
    assert my_ok.status == DeliveryStatus.PENDING
    assert their_ok.status == DeliveryStatus.DELIVERED


def test_ping_action_queues_one_ping_per_active_subscription(client, superuser, staff_client, receiver):
    active, _ = subscription_of(staff_client, receiver.url_for("/a"), events=["product.failed"])
    disabled, _ = subscription_of(staff_client, receiver.url_for("/b"), is_active=False)
    client.force_login(superuser)

    response = action(client, SUBSCRIPTIONS, "send_ping", [active.pk, disabled.pk])

    messages_ = texts(response)
    assert any(m.startswith("Ping queued for 1") and active.url in m for m in messages_)
    assert any(m.startswith(f"No ping for {disabled.url}") for m in messages_)
    deliver_pass()
    (got,) = receiver.received
    assert got.path == "/a" and got.header("X-Webhook-Event") == "webhook.ping"
    assert WebhookAttempt.objects.get().status_code == 204
