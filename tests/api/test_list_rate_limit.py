"""The image list reads Redis's rate-limit answer after sending its page's reads: still refused over the limit."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from api.throttling import _redis_client

REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL is not set: the Redis limiter is tested in CI"),
]


@pytest.fixture
def read_limit(settings):
    import redis

    settings.REDIS_URL = REDIS_URL
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter("pod:ratelimit:*"))
    if keys:
        client.delete(*keys)
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "read": (2, 60)}


def test_a_list_over_the_read_limit_is_refused_with_the_limits_headers(read_limit, as_reviewer, make_image):
    make_image()
    pages = [as_reviewer.get("/api/v1/images") for _ in range(2)]
    assert [page.status_code for page in pages] == [200, 200]
    assert [page["X-RateLimit-Remaining"] for page in pages] == ["1", "0"]
    assert pages[0].json()["count"] == 1
    refused = as_reviewer.get("/api/v1/images")
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "RATE_LIMIT_EXCEEDED" and "results" not in body
    assert refused["X-RateLimit-Remaining"] == "0" and int(refused["Retry-After"]) >= 1
    # Other lists are refused too: the page's reads were sent, their answers not given.
    assert as_reviewer.get("/api/v1/images?status=pending").status_code == 429


def test_a_list_failing_before_the_answer_is_read_is_refused_over_the_limit(read_limit, as_reviewer):
    bad = as_reviewer.get("/api/v1/images?page=x")
    assert bad.status_code == 400
    assert bad["X-RateLimit-Remaining"] == "1"  # the answer was read for the error's response too
    assert as_reviewer.get("/api/v1/images?page=99").status_code == 404
    over = as_reviewer.get("/api/v1/images?page=x")
    assert over.status_code == 429
    assert over.json()["code"] == "RATE_LIMIT_EXCEEDED"
    assert over["RateLimit"].startswith('"read";r=0;')


def test_the_answer_is_read_after_the_page_is_sent(read_limit, as_reviewer, make_image, monkeypatch):
    make_image()
    as_reviewer.get("/api/v1/images")  # this thread's Redis connection, open
    events = []
    redis_connection = _redis_client(REDIS_URL).connection
    read_response = redis_connection.read_response

    def answer_read(*args, **kwargs):
        events.append("answer")
        return read_response(*args, **kwargs)

    def statement(execute, sql, params, many, context):
        events.append("images_image" if '"images_image"' in sql else "other")
        return execute(sql, params, many, context)

    monkeypatch.setattr(redis_connection, "read_response", answer_read)
    with connection.execute_wrapper(statement):
        page = as_reviewer.get("/api/v1/images")
    assert page.status_code == 200 and page["X-RateLimit-Remaining"] == "0"
    assert events.count("answer") == 1
    assert "images_image" in events[: events.index("answer")]
