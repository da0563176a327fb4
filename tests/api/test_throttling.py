"""Rate-limit tiers: sliding window per user / client IP, headers, 429s, both limiter backends."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from api.models import RateLimitBucket, RateLimitHit
from api.throttling import rate_limit_prune
from tests.conftest import make_user

pytestmark = pytest.mark.urls("tests.api.infra_urls")

REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_SKIP = "REDIS_URL is not set: the Redis limiter is tested in CI"
BACKENDS = [
    "database",
    pytest.param("redis", marks=pytest.mark.skipif(not REDIS_URL, reason=REDIS_SKIP)),
]


def _clear_redis_limits() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter("pod:ratelimit:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(params=BACKENDS)
def backend(request, settings) -> str:
    """Run the test on the embedded (database) limiter and, when REDIS_URL is set, on Redis."""
    if request.param == "redis":
        settings.REDIS_URL = REDIS_URL
        _clear_redis_limits()
    else:
        settings.REDIS_URL = ""
    return request.param


def _limit(settings, tier: str, limit: int, window: int = 3600) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, tier: (limit, window)}


def token_client(username: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_user(username)).key}")
    return client


@pytest.mark.django_db
def test_limited_responses_carry_every_header_and_the_429_explains_itself(backend, settings):
    _limit(settings, "approval", 3, 60)
    client = token_client("alice")
    remaining = []
    for _ in range(3):
        response = client.post("/api/limited", {}, format="json")
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"
        assert response["RateLimit-Policy"] == '"approval";q=3;w=60'
        remaining.append(response["X-RateLimit-Remaining"])
        reset = int(response["X-RateLimit-Reset"])
        assert time.time() < reset <= time.time() + 61
        assert response["RateLimit"].startswith(f'"approval";r={response["X-RateLimit-Remaining"]};t=')
    assert remaining == ["2", "1", "0"]

    refused = client.post("/api/limited", {}, format="json")
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "RATE_LIMIT_EXCEEDED"
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= 60
    assert body["details"] == {"tier": "approval", "limit": 3, "window_seconds": 60, "retry_after": retry_after}
    assert refused["X-RateLimit-Remaining"] == "0"
    assert refused["RateLimit"] == f'"approval";r=0;t={retry_after}'
    assert body["request_id"] == refused["X-Request-ID"]


@pytest.mark.django_db
def test_v2_429_is_a_problem_document(backend, settings):
    _limit(settings, "approval", 1, 60)
    client = token_client("alice")
    assert client.post("/api/v2/limited", {}, format="json").status_code == 200
    refused = client.post("/api/v2/limited", {}, format="json")
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "RATE_LIMIT_EXCEEDED"


@pytest.mark.django_db
def test_limits_are_per_user_and_per_ip_for_anonymous_clients(backend, settings):
    _limit(settings, "approval", 1, 60)
    alice, bob = token_client("alice"), token_client("bob")
    assert alice.post("/api/limited").status_code == 200
    assert alice.post("/api/limited").status_code == 429
    assert bob.post("/api/limited").status_code == 200

    anon = APIClient()
    assert anon.post("/api/limited", REMOTE_ADDR="127.0.0.7").status_code == 200
    assert anon.post("/api/limited", REMOTE_ADDR="127.0.0.7").status_code == 429
    assert anon.post("/api/limited", REMOTE_ADDR="127.0.0.8").status_code == 200


@pytest.mark.django_db
def test_reads_use_the_read_tier_and_untiered_writes_are_not_limited(backend, settings):
    _limit(settings, "approval", 1, 60)
    _limit(settings, "read", 2, 60)
    client = token_client("alice")
    assert client.post("/api/limited").status_code == 200
    assert client.post("/api/limited").status_code == 429
    first = client.get("/api/limited")
    assert first.status_code == 200
    assert first["RateLimit-Policy"] == '"read";q=2;w=60'
    assert client.get("/api/limited").status_code == 200
    assert client.get("/api/limited").status_code == 429

    untiered = client.post("/api/untiered")
    assert untiered.status_code == 200
    assert "X-RateLimit-Limit" not in untiered


@pytest.fixture
def counted_once(settings) -> APIClient:
    """On Redis, a client whose first of 3 approvals in the window is counted."""
    if not REDIS_URL:
        pytest.skip(REDIS_SKIP)
    settings.REDIS_URL = REDIS_URL
    _clear_redis_limits()
    _limit(settings, "approval", 3, 60)
    client = token_client("alice")
    assert client.post("/api/limited")["X-RateLimit-Remaining"] == "2"
    return client


@pytest.mark.django_db
def test_the_redis_limiter_loads_its_script_again_when_redis_has_forgotten_it(counted_once):
    import redis

    client = counted_once
    redis.Redis.from_url(REDIS_URL).script_flush()  # as after a restart of Redis
    again = client.post("/api/limited")
    assert again.status_code == 200
    assert again["X-RateLimit-Remaining"] == "1"  # the same window, counted on


@pytest.mark.django_db
def test_the_redis_limiter_connects_again_when_its_connection_is_closed(counted_once):
    import redis

    from api.throttling import _redis_client

    client = counted_once
    own = _redis_client(REDIS_URL).client_id()  # this thread's connection, which the request used
    assert redis.Redis.from_url(REDIS_URL).client_kill_filter(_id=own) == 1
    again = client.post("/api/limited")
    assert again.status_code == 200
    assert again["X-RateLimit-Remaining"] == "1"
    assert _redis_client(REDIS_URL).client_id() != own


@pytest.mark.django_db
def test_the_window_slides_requests_older_than_the_window_stop_counting(backend, settings):
    _limit(settings, "approval", 2, 60)
    user = make_user("alice")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    key = f"approval:user:{user.pk}"
    # Two requests 61 s and 30 s ago: only the recent one is still inside the 60 s window.
    now = time.time()
    if backend == "redis":
        import redis

        client_redis = redis.Redis.from_url(REDIS_URL)
        client_redis.zadd(f"pod:ratelimit:{key}", {"old": (now - 61) * 1e6, "recent": (now - 30) * 1e6})
    else:
        bucket = RateLimitBucket.objects.create(key=key)
        RateLimitHit.objects.bulk_create([RateLimitHit(bucket=bucket, at=at) for at in (now - 61, now - 30)])

    allowed = client.post("/api/limited")
    assert allowed.status_code == 200
    assert allowed["X-RateLimit-Remaining"] == "0"
    # The oldest request still counted (30 s ago) leaves the window in about 30 s.
    assert 25 <= int(allowed["RateLimit"].rsplit("t=", 1)[1]) <= 31
    refused = client.post("/api/limited")
    assert refused.status_code == 429
    assert 25 <= int(refused["Retry-After"]) <= 31


@pytest.mark.django_db
def test_prune_removes_hits_older_than_the_longest_window(settings):
    settings.REDIS_URL = ""
    stale = RateLimitBucket.objects.create(key="read:ip:10.0.0.1")
    live = RateLimitBucket.objects.create(key="read:ip:10.0.0.2")
    now = time.time()
    RateLimitHit.objects.create(bucket=stale, at=now - 90_000)
    RateLimitHit.objects.create(bucket=live, at=now - 10)
    assert rate_limit_prune() == 1
    assert list(RateLimitBucket.objects.values_list("key", flat=True)) == ["read:ip:10.0.0.2"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_get_exactly_the_limit(backend, settings, live_server):
    """N threads at once against a tier of limit L: exactly L succeed, across the server's threads."""
    limit, attempts = 7, 24
    _limit(settings, "approval", limit, 3600)
    token = Token.objects.create(user=make_user(f"burst-{uuid.uuid4().hex[:8]}")).key

    def attempt(_):
        with requests.Session() as session:
            return session.post(
                f"{live_server.url}/api/limited", json={}, headers={"Authorization": f"Token {token}"}, timeout=60
            ).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(attempt, range(attempts)))
    assert statuses.count(200) == limit, statuses
    assert statuses.count(429) == attempts - limit



@pytest.mark.django_db
def test_a_new_client_clears_hits_no_window_counts_any_more(settings):
    settings.REDIS_URL = ""
    _limit(settings, "approval", 5, 60)
    departed = RateLimitBucket.objects.create(key="read:ip:10.0.0.9")
    RateLimitHit.objects.create(bucket=departed, at=time.time() - 90_000)
    assert token_client("newcomer").post("/api/limited").status_code == 200
    assert not RateLimitHit.objects.filter(bucket=departed).exists()
