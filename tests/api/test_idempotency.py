"""Idempotency-Key on POSTs: replay, reuse with another body, in-flight conflict, expiry, concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from api.idempotency import idempotency_prune
from api.models import IdempotencyRecord, IdempotencyState
from tests.api import infra_urls
from tests.conftest import make_user

pytestmark = pytest.mark.urls("tests.api.infra_urls")


def things() -> int:
    return Group.objects.filter(name__startswith="thing-").count()


@pytest.fixture
def alice(db) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_user('alice')).key}")
    return client


@pytest.fixture(autouse=True)
def _reset_view_switches():
    infra_urls.FAIL.clear()
    infra_urls.RELEASE.clear()
    infra_urls.STARTED.clear()
    yield
    infra_urls.RELEASE.set()


def test_the_same_key_and_body_replays_the_first_response(alice):
    first = alice.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    again = alice.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"]
    assert again["Location"] == first["Location"]
    assert things() == 1


def test_without_a_key_every_post_runs(alice):
    alice.post("/api/things", {"name": "a"}, format="json")
    alice.post("/api/things", {"name": "a"}, format="json")
    assert things() == 2
    assert not IdempotencyRecord.objects.exists()


def test_the_same_key_with_another_body_is_refused(alice):
    alice.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    reused = alice.post("/api/things", {"name": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert reused.status_code == 422
    assert reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert reused.json()["request_id"] == reused["X-Request-ID"]
    assert things() == 1
    problem = alice.post("/api/v2/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert problem.status_code == 422  # another path is another request
    assert problem["Content-Type"] == "application/problem+json"
    assert problem.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_keys_belong_to_their_user(alice, db):
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_user('bob')).key}")
    first = alice.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    other = bob.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other
    assert other.json()["id"] != first.json()["id"]
    assert things() == 2


def test_session_users_get_idempotency_too(db):
    user = make_user("carol")
    client = APIClient()
    client.force_login(user)
    client.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    again = client.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert again["Idempotent-Replayed"] == "true"
    assert things() == 1


def test_a_request_still_running_answers_409(alice):
    user = make_user("dave")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    first = client.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    record = IdempotencyRecord.objects.get(user=user, key="busy")
    # As it is while the first request is still inside the view.
    IdempotencyRecord.objects.filter(pk=record.pk).update(state=IdempotencyState.RUNNING)
    busy = client.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    assert busy.status_code == 409
    assert busy.json()["code"] == "CONFLICT"
    assert first.status_code == 201
    assert things() == 1


def test_a_claim_whose_process_died_is_freed_after_the_timeout(alice, settings):
    user = make_user("erin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    long_ago = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_RUNNING_TIMEOUT + 5)
    IdempotencyRecord.objects.create(
        user=user, key="orphan", request_hash="x" * 64, created_at=long_ago, expires_at=long_ago + timedelta(days=1)
    )
    response = client.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="orphan")
    assert response.status_code == 201
    assert things() == 1


def test_responses_of_requests_that_did_not_complete_are_not_stored(alice):
    infra_urls.FAIL.set()
    failed = alice.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert failed.status_code == 503
    assert not IdempotencyRecord.objects.exists()
    infra_urls.FAIL.clear()
    retried = alice.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert things() == 1


def test_anonymous_posts_are_refused_and_nothing_is_stored(db):
    response = APIClient().post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="anon")
    assert response.status_code == 401
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["x" * 256, "has space", "tab\tkey"])
def test_a_malformed_key_is_a_validation_error(alice, key):
    response = alice.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert "Idempotency-Key" in response.json()["details"]["fields"]
    assert things() == 0


def test_records_expire_after_the_ttl_and_are_pruned(alice, settings):
    alice.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    record = IdempotencyRecord.objects.get(key="old")
    assert timedelta(hours=23) < record.expires_at - record.created_at <= timedelta(hours=24)
    IdempotencyRecord.objects.filter(pk=record.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    again = alice.post("/api/things", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert things() == 2
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert idempotency_prune() == 1
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_run_the_view_once(live_server):
    token = Token.objects.create(user=make_user("frank")).key
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": "together"}
    url = f"{live_server.url}/api/things"

    def post():
        return requests.post(url, json={"wait": True}, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=6) as pool:
        holder = pool.submit(post)
        assert infra_urls.STARTED.wait(20), "the first request never reached the view"
        others = [f.result() for f in [pool.submit(post) for _ in range(5)]]
        infra_urls.RELEASE.set()
        first = holder.result()
    assert first.status_code == 201
    assert [r.status_code for r in others] == [409] * 5
    assert all(r.json()["code"] == "CONFLICT" for r in others)
    replay = requests.post(url, json={"wait": True}, headers=headers, timeout=60)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert things() == 1

