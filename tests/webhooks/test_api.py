"""The webhooks API: owners, secrets shown once, refused input, ping, redelivery and the delivery shapes."""

from __future__ import annotations

import json
import socket

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from core.actors import Actor, Via
from tests.api.conftest import token_client
from tests.conftest import make_user
from tests.webhooks.conftest import deliver_pass
from webhooks import services
from webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookEvent, WebhookSubscription

pytestmark = pytest.mark.django_db

SUBSCRIPTION_FIELDS = {"id", "url", "events", "description", "is_active", "created_at", "consecutive_failures",
                       "disabled_reason"}
DELIVERY_FIELDS = {"id", "event_id", "event_type", "subscription", "status", "attempts", "next_attempt_at",
                   "created_at", "delivered_at"}
ATTEMPT_FIELDS = {"number", "started_at", "duration_ms", "status_code", "error", "response_body"}


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings):
    # Rate limiting has its own tests; a burst of requests here must not be cut short by it.
    settings.RATE_LIMITS = {tier: (100_000, 3600) for tier in ("generation", "publishing", "approval", "read")}


@pytest.fixture
def other_client(db):
    return make_user("client2", "clients")


@pytest.fixture
def as_client(client_user) -> APIClient:
    return token_client(client_user)


@pytest.fixture
def as_other(other_client) -> APIClient:
    return token_client(other_client)


@pytest.fixture
def as_admin(superuser) -> APIClient:
    return token_client(superuser)


@pytest.fixture
def dns(monkeypatch):
    """A resolver answering only the names a test sets; any other name fails (the network is never asked)."""
    answers: dict[str, list[str]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def record_event(event_type: str = EventType.IMAGE_APPROVED, image_id: str = "img_1") -> WebhookEvent:
    with transaction.atomic():
        return services.event_record(event_type=event_type, data={"image_id": image_id})


def create(api: APIClient, url: str, **fields) -> dict:
    response = api.post("/api/v1/webhooks", {"url": url, **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


# --- Create, read, change, delete ----------------------------------------------------------------


def test_create_answers_201_with_the_secret_and_no_read_ever_shows_it(as_client, client_user, receiver):
    body = create(as_client, receiver.url_for("/ok"), events=["image.approved", "image.rejected"],
                  description="  shop  ")

    stored = WebhookSubscription.objects.get()
    assert set(body) == SUBSCRIPTION_FIELDS | {"secret"}
    assert body["secret"] == stored.secret and body["secret"].startswith("whsec_")
    assert (body["id"], body["url"], body["events"], body["description"], body["is_active"]) == (
        stored.id, receiver.url_for("/ok"), ["image.approved", "image.rejected"], "shop", True)
    assert (body["consecutive_failures"], body["disabled_reason"]) == (0, "")
    assert stored.owner == client_user
    detail = as_client.get(f"/api/v1/webhooks/{stored.id}")
    listing = as_client.get("/api/v1/webhooks/")
    changed = as_client.patch(f"/api/v1/webhooks/{stored.id}", {"description": "renamed"}, format="json")
    for response in (detail, listing, changed):
        assert response.status_code == 200
        assert stored.secret not in response.content.decode()
    assert set(detail.json()) == SUBSCRIPTION_FIELDS
    assert [row["id"] for row in listing.json()["results"]] == [stored.id]
    assert changed.json()["description"] == "renamed"
    deliver_pass()
    assert receiver.received == []  # neither creating nor changing sends anything


def test_create_answers_a_location_and_defaults_to_every_event(as_client, receiver):
    response = as_client.post("/api/v2/webhooks/", {"url": receiver.url_for("/ok")}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert response["Location"] == f"http://testserver/api/v2/webhooks/{body['id']}"
    assert body["events"] == ["*"]


def test_rotate_secret_answers_the_new_secret_and_keeps_the_old_one_for_the_grace_period(as_client, receiver):
    created = create(as_client, receiver.url_for("/ok"))

    response = as_client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret")

    assert response.status_code == 200
    body = response.json()
    stored = WebhookSubscription.objects.get()
    assert set(body) == SUBSCRIPTION_FIELDS | {"secret"}
    assert body["secret"] == stored.secret != created["secret"]
    assert stored.previous_secret == created["secret"]
    assert body["secret"] not in as_client.get(f"/api/v1/webhooks/{created['id']}").content.decode()


def test_an_unknown_event_is_refused_with_the_allowed_list(as_client, receiver):
    response = as_client.post("/api/v1/webhooks", {"url": receiver.url_for("/ok"),
                                                   "events": ["image.approved", "image.exploded"]}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    (message,) = body["details"]["fields"]["events"]
    assert "image.exploded" in message and "Allowed:" in message
    for name in services.SUBSCRIBABLE:
        assert name in message
    assert not WebhookSubscription.objects.exists()


def test_a_refused_change_is_answered_in_the_v2_problem_shape_and_changes_nothing(as_client, receiver):
    created = create(as_client, receiver.url_for("/ok"), events=["image.approved"])

    response = as_client.patch(f"/api/v2/webhooks/{created['id']}", {"events": ["nope"]}, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["pointer"] == "#/events" and "nope" in error["detail"]
    assert WebhookSubscription.objects.get().events == ["image.approved"]


def test_a_url_resolving_to_a_private_address_is_refused_at_save(as_client, settings, dns):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    dns["hooks.example.test"] = ["93.184.216.34", "10.0.0.5"]
    dns["ok.example.test"] = ["93.184.216.34"]

    refused = as_client.post("/api/v1/webhooks", {"url": "https://hooks.example.test/in"}, format="json")
    literal = as_client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:8000/in"}, format="json")

    assert refused.status_code == literal.status_code == 400
    assert "10.0.0.5" in refused.json()["details"]["fields"]["url"][0]
    assert "127.0.0.1" in literal.json()["details"]["fields"]["url"][0]
    assert not WebhookSubscription.objects.exists()
    created = create(as_client, "https://ok.example.test/in")
    moved = as_client.patch(f"/api/v1/webhooks/{created['id']}", {"url": "https://hooks.example.test/in"},
                            format="json")
    assert moved.status_code == 400 and "url" in moved.json()["details"]["fields"]
    assert WebhookSubscription.objects.get().url == "https://ok.example.test/in"


@pytest.mark.parametrize("body", [
    {"url": "ftp://example.com/in"},
    {"url": 42},
    {"url": "http://127.0.0.1/in", "events": "image.approved"},
    {"url": "http://127.0.0.1/in", "events": []},
    {"url": "http://127.0.0.1/in", "is_active": "maybe"},
    {"url": "http://127.0.0.1/in", "description": "x" * 501},
    {"events": ["*"]},
])
def test_malformed_input_is_refused_with_field_errors(as_client, body):
    response = as_client.post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR" and response.json()["details"]["fields"]
    assert not WebhookSubscription.objects.exists()


def test_delete_answers_204_and_removes_the_deliveries(as_client, receiver):
    created = create(as_client, receiver.url_for("/ok"))
    as_client.post(f"/api/v1/webhooks/{created['id']}/ping")

    response = as_client.delete(f"/api/v1/webhooks/{created['id']}/")

    assert response.status_code == 204
    assert not WebhookSubscription.objects.exists() and not WebhookDelivery.objects.exists()
    assert as_client.get(f"/api/v1/webhooks/{created['id']}").status_code == 404


def test_put_is_not_offered(as_client, receiver):
    created = create(as_client, receiver.url_for("/ok"))
    response = as_client.put(f"/api/v1/webhooks/{created['id']}", {"url": receiver.url_for("/x")}, format="json")
    assert response.status_code == 405 and response.json()["code"] == "METHOD_NOT_ALLOWED"


def test_anonymous_is_401_and_a_user_without_a_role_403(receiver):
    assert APIClient().get("/api/v1/webhooks").status_code == 401
    nobody = token_client(make_user("nobody"))
    assert nobody.get("/api/v1/webhooks").status_code == 403
    assert nobody.post("/api/v1/webhooks", {"url": receiver.url_for("/ok")}, format="json").status_code == 403
    assert not WebhookSubscription.objects.exists()


# --- Owners --------------------------------------------------------------------------------------


@pytest.fixture
def theirs(other_client, receiver):
    """Another client's subscription with one failed delivery."""
    subscription, secret = services.subscription_create(
        data={"url": receiver.url_for("/status/500"), "description": "theirs"}, actor=Actor(other_client, Via.API)
    )
    event = record_event()
    delivery = WebhookDelivery.objects.create(event=event, subscription=subscription, status=DeliveryStatus.FAILED,
                                              last_error="HTTP 500")
    return subscription, secret, delivery


@pytest.mark.parametrize(("method", "path", "body"), [
    ("get", "/api/v1/webhooks/{sub}", None),
    ("patch", "/api/v1/webhooks/{sub}", {"description": "mine now", "is_active": False}),
    ("delete", "/api/v1/webhooks/{sub}", None),
    ("post", "/api/v1/webhooks/{sub}/ping", None),
    ("post", "/api/v1/webhooks/{sub}/rotate-secret", None),
    ("get", "/api/v1/webhooks/{sub}/deliveries", None),
    ("get", "/api/v2/webhooks/{sub}/deliveries", None),
    ("get", "/api/v1/webhook-deliveries/{delivery}", None),
    ("post", "/api/v1/webhook-deliveries/{delivery}/redeliver", None),
])
def test_a_client_cannot_reach_another_clients_subscription_or_its_deliveries(as_client, theirs, method, path,
                                                                              body):
    subscription, secret, delivery = theirs

    response = getattr(as_client, method)(path.format(sub=subscription.id, delivery=delivery.id), body,
                                          format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    stored = WebhookSubscription.objects.get(id=subscription.id)
    assert (stored.description, stored.is_active, stored.secret) == ("theirs", True, secret)
    assert list(WebhookDelivery.objects.values_list("id", "status")) == [(delivery.id, DeliveryStatus.FAILED)]
    assert not WebhookEvent.objects.filter(event_type=EventType.WEBHOOK_PING).exists()


def test_a_client_lists_only_its_own_subscriptions_and_a_superuser_all(as_client, as_admin, theirs, receiver):
    mine = create(as_client, receiver.url_for("/ok"))
    subscription, secret, delivery = theirs

    assert [row["id"] for row in as_client.get("/api/v1/webhooks").json()["results"]] == [mine["id"]]
    everyone = as_admin.get("/api/v1/webhooks").json()
    assert everyone["count"] == 2 and {row["id"] for row in everyone["results"]} == {mine["id"], subscription.id}
    assert as_admin.get(f"/api/v1/webhooks/{subscription.id}").json()["description"] == "theirs"
    assert as_admin.get(f"/api/v1/webhook-deliveries/{delivery.id}").json()["subscription"] == subscription.id
    changed = as_admin.patch(f"/api/v1/webhooks/{subscription.id}", {"description": "checked"}, format="json")
    assert changed.status_code == 200
    assert WebhookSubscription.objects.get(id=subscription.id).description == "checked"
    assert as_admin.delete(f"/api/v1/webhooks/{subscription.id}").status_code == 204
    assert list(WebhookSubscription.objects.values_list("id", flat=True)) == [mine["id"]]


# --- Ping and redelivery -------------------------------------------------------------------------


def test_ping_answers_202_and_the_next_pass_sends_exactly_one_webhook_ping(as_client, receiver):
    # Subscribed to something else: a ping goes out whatever `events` says.
    created = create(as_client, receiver.url_for("/ok"), events=["product.published"])

    response = as_client.post(f"/api/v1/webhooks/{created['id']}/ping/")

    assert response.status_code == 202
    body = response.json()
    assert set(body) == DELIVERY_FIELDS
    assert (body["event_type"], body["status"], body["subscription"], body["attempts"]) == (
        "webhook.ping", "pending", created["id"], [])
    assert receiver.received == []  # queued, not sent from the request
    deliver_pass()
    deliver_pass()
    (got,) = receiver.at("/ok")
    assert got.header("X-Webhook-Event") == "webhook.ping"
    assert got.header("webhook-id") == body["event_id"]
    assert json.loads(got.body)["data"]["webhook_id"] == created["id"]
    delivered = as_client.get(f"/api/v1/webhook-deliveries/{body['id']}").json()
    assert delivered["status"] == "delivered" and delivered["delivered_at"]
    assert [a["status_code"] for a in delivered["attempts"]] == [204]


def test_ping_of_a_disabled_subscription_is_refused(as_client, receiver):
    created = create(as_client, receiver.url_for("/ok"), is_active=False)
    response = as_client.post(f"/api/v1/webhooks/{created['id']}/ping")
    assert response.status_code == 409 and response.json()["code"] == "INVALID_STATE"
    assert not WebhookDelivery.objects.exists()


def test_redeliver_answers_202_and_the_next_pass_adds_an_attempt_with_the_same_event_id(as_client, receiver):
    created = create(as_client, receiver.url_for("/ok"))
    event = record_event()
    deliver_pass()
    delivery = WebhookDelivery.objects.get(event=event)

    response = as_client.post(f"/api/v1/webhook-deliveries/{delivery.id}/redeliver")

    assert response.status_code == 202
    body = response.json()
    assert (body["id"], body["event_id"], body["status"], body["subscription"]) == (
        delivery.id, event.id, "pending", created["id"])
    deliver_pass()
    first, second = receiver.at("/ok")
    assert first.header("webhook-id") == second.header("webhook-id") == event.id
    assert first.body == second.body
    detail = as_client.get(f"/api/v1/webhook-deliveries/{delivery.id}").json()
    assert detail["status"] == "delivered"
    assert [a["number"] for a in detail["attempts"]] == [1, 2]


def test_deactivating_ends_pending_deliveries_and_reactivating_allows_redelivery(as_client, receiver):
    created = create(as_client, receiver.url_for("/status/500"))
    record_event()
    deliver_pass()  # fails, and waits for its retry
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING

    off = as_client.patch(f"/api/v1/webhooks/{created['id']}", {"is_active": False}, format="json")

    assert off.status_code == 200
    assert off.json()["is_active"] is False and off.json()["disabled_reason"] == "Disabled by client1"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error == "Disabled by client1"
    refused = as_client.post(f"/api/v1/webhook-deliveries/{delivery.id}/redeliver")
    assert refused.status_code == 409 and refused.json()["code"] == "INVALID_STATE"

    on = as_client.patch(f"/api/v1/webhooks/{created['id']}", {"is_active": True}, format="json")

    assert on.status_code == 200
    assert (on.json()["is_active"], on.json()["disabled_reason"], on.json()["consecutive_failures"]) == (True, "", 0)
    deliver_pass()
    assert len(receiver.at("/status/500")) == 1  # re-enabling alone sends nothing
    assert as_client.post(f"/api/v1/webhook-deliveries/{delivery.id}/redeliver").status_code == 202
    deliver_pass()
    assert len(receiver.at("/status/500")) == 2


# --- Delivery shapes -----------------------------------------------------------------------------


@pytest.fixture
def two_deliveries(client_user, receiver, subscribe):
    """A subscription with an older failing delivery and a newer delivered one."""
    subscription, _ = subscribe(receiver.url_for("/hook"))
    receiver.script("/hook", [500])
    failing = record_event(image_id="img_old")
    deliver_pass()
    delivered = record_event(event_type=EventType.IMAGE_REJECTED, image_id="img_new")
    deliver_pass()
    return subscription, WebhookDelivery.objects.get(event=failing), WebhookDelivery.objects.get(event=delivered)


def test_deliveries_v1_page_newest_first_filtered_by_status(as_client, two_deliveries):
    subscription, failing, delivered = two_deliveries

    page = as_client.get(f"/api/v1/webhooks/{subscription.id}/deliveries").json()
    pending = as_client.get(f"/api/v1/webhooks/{subscription.id}/deliveries/?status=pending").json()
    bad = as_client.get(f"/api/v1/webhooks/{subscription.id}/deliveries?status=lost")

    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 2 and [row["id"] for row in page["results"]] == [delivered.id, failing.id]
    assert all(set(row) == DELIVERY_FIELDS for row in page["results"])
    assert [row["id"] for row in pending["results"]] == [failing.id] and pending["count"] == 1
    assert bad.status_code == 400 and "failed" in bad.json()["details"]["fields"]["status"][0]


def test_deliveries_v2_walk_by_cursor(as_client, two_deliveries):
    subscription, failing, delivered = two_deliveries

    first = as_client.get(f"/api/v2/webhooks/{subscription.id}/deliveries?page_size=1").json()
    second = as_client.get(first["next"]).json()

    assert set(first) == {"next", "previous", "results"}
    assert "cursor=" in first["next"] and first["previous"] is None
    assert [row["id"] for row in first["results"] + second["results"]] == [delivered.id, failing.id]
    assert second["next"] is None


def test_delivery_detail_has_every_attempt(as_client, two_deliveries):
    subscription, failing, _ = two_deliveries

    body = as_client.get(f"/api/v2/webhook-deliveries/{failing.id}/").json()

    assert set(body) == DELIVERY_FIELDS
    assert (body["event_id"], body["event_type"], body["subscription"], body["status"]) == (
        failing.event_id, "image.approved", subscription.id, "pending")
    assert body["next_attempt_at"] and body["delivered_at"] is None
    (attempt,) = body["attempts"]
    assert set(attempt) == ATTEMPT_FIELDS
    assert (attempt["number"], attempt["status_code"], attempt["error"], attempt["response_body"]) == (
        1, 500, "HTTP 500", '{"ok": true}')
    assert isinstance(attempt["duration_ms"], int) and attempt["started_at"]
