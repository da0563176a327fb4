"""Ownership (CONTRACT §4): two clients and a reviewer, in the API and the admin.

A client sees and cancels only its own generations (another's is 404); reviewers and above read and
cancel any. Only superusers see or change other users' webhook subscriptions.
"""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.test import Client
from django.urls import reverse

from core.admin_tools import admin_url
from images.models import Generation, GenerationStatus
from tests.api.conftest import token_client
from tests.conftest import make_user
from webhooks.models import WebhookSubscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    alice = make_user("alice", "clients", is_staff=True)
    bob = make_user("bob", "clients", is_staff=True)
    rita = make_user("rita", "reviewers", is_staff=True)
    return alice, bob, rita


def generation_of(user) -> Generation:
    return Generation.objects.create(prompt=f"a fox by {user.username}", prompt_hash=user.username, params={},
                                     created_by=user)


def test_a_client_sees_only_its_own_generations(people):
    alice, bob, rita = people
    mine, theirs = generation_of(alice), generation_of(bob)
    api = token_client(alice)
    for version in ("v1", "v2"):
        listed = [row["id"] for row in api.get(f"/api/{version}/generations").json()["results"]]
        assert listed == [mine.id]
    assert api.get(f"/api/v1/generations/{mine.id}").status_code == 200
    response = api.get(f"/api/v1/generations/{theirs.id}")
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def test_a_client_cannot_cancel_another_clients_generation(people):
    alice, bob, rita = people
    theirs = generation_of(bob)
    response = token_client(alice).post(f"/api/v1/generations/{theirs.id}/cancel")
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    theirs.refresh_from_db()
    assert theirs.status == GenerationStatus.QUEUED
    assert token_client(bob).post(f"/api/v1/generations/{theirs.id}/cancel").status_code == 200


def test_a_reviewer_reads_and_cancels_any_generation(people):
    alice, bob, rita = people
    first, second = generation_of(alice), generation_of(bob)
    api = token_client(rita)
    listed = {row["id"] for row in api.get("/api/v1/generations").json()["results"]}
    assert listed == {first.id, second.id}
    assert api.get(f"/api/v2/generations/{first.id}").status_code == 200
    assert api.post(f"/api/v1/generations/{second.id}/cancel").status_code == 200
    second.refresh_from_db()
    assert second.status == GenerationStatus.CANCELLED


def test_the_admin_shows_a_client_only_its_own_generations(people):
    alice, bob, rita = people
    mine, theirs = generation_of(alice), generation_of(bob)
    client = Client()
    client.force_login(alice)
    alice.user_permissions.add(*rita.groups.get().permissions.filter(codename="view_generation"))
    page = client.get(reverse("admin:images_generation_changelist"))
    assert page.status_code == 200
    assert mine.id in page.content.decode() and theirs.id not in page.content.decode()
    assert client.get(admin_url("images_generation_change", theirs.id)).status_code in (302, 404)
    client.force_login(rita)
    page = client.get(reverse("admin:images_generation_changelist")).content.decode()
    assert mine.id in page and theirs.id in page


def subscription_of(user, path: str) -> WebhookSubscription:
    return WebhookSubscription.objects.create(owner=user, url=f"https://example.com/{path}", secret="whsec_x")


def test_webhook_subscriptions_are_their_owners_alone_in_the_api(people, superuser):
    alice, bob, rita = people
    mine, theirs = subscription_of(alice, "a"), subscription_of(bob, "b")
    apis = {user: token_client(user) for user in (alice, rita)}
    for api in apis.values():
        listed = [row["id"] for row in api.get("/api/v1/webhooks").json()["results"]]
        assert theirs.id not in listed
        assert api.get(f"/api/v1/webhooks/{theirs.id}").status_code == 404
        assert api.patch(f"/api/v1/webhooks/{theirs.id}", {"description": "mine now"},
                         format="json").status_code == 404
        assert api.post(f"/api/v1/webhooks/{theirs.id}/rotate-secret").status_code == 404
        assert api.delete(f"/api/v1/webhooks/{theirs.id}").status_code == 404
    assert [row["id"] for row in apis[alice].get("/api/v1/webhooks").json()["results"]] == [mine.id]
    theirs.refresh_from_db()
    assert theirs.description == "" and theirs.secret == "whsec_x"
    admin_api = token_client(superuser)
    assert {row["id"] for row in admin_api.get("/api/v1/webhooks").json()["results"]} == {mine.id, theirs.id}
    assert admin_api.delete(f"/api/v1/webhooks/{theirs.id}").status_code == 204


def test_a_reviewer_cannot_see_or_delete_another_users_subscription_in_the_admin(people, superuser):
    alice, bob, rita = people
    theirs = subscription_of(bob, "b")
    client = Client()
    client.force_login(rita)
    changelist = reverse("admin:webhooks_webhooksubscription_changelist")
    page = client.get(changelist)
    assert theirs.url not in page.content.decode()
    client.post(changelist, {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: [theirs.pk], "post": "yes"})
    delete_url = reverse("admin:webhooks_webhooksubscription_delete", args=[theirs.pk])
    assert client.get(delete_url).status_code in (302, 403, 404)
    client.post(delete_url, {"post": "yes"})
    assert WebhookSubscription.objects.filter(pk=theirs.pk).exists()
    client.force_login(superuser)
    assert theirs.url in client.get(changelist).content.decode()
    client.post(delete_url, {"post": "yes"})
    assert not WebhookSubscription.objects.filter(pk=theirs.pk).exists()
