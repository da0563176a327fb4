"""A web process reads a token (with its user and permissions) once and is told by PostgreSQL when any of
it changed: a revoked token, a deactivated user, a role taken away are refused from the notice on."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from api import tokencache

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's notices"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def cache(settings):
    settings.API_TOKEN_CACHE = True
    cache = tokencache.token_cache(connection.alias)
    _wait_for(lambda: cache.generation() is not None)  # the listener connected
    yield cache
    tokencache.stop_listening()


def _wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the listener did not get there"
        time.sleep(0.01)


def _elsewhere(sql: str, params: list) -> None:
    """A change made by another connection (a script, the admin of another process), committed."""
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         user=settings["USER"], password=settings["PASSWORD"], dbname=settings["NAME"],
                         autocommit=True) as other:
        other.execute(sql, params)


def _auth_queries(client, url: str = "/api/v1/images") -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        status = client.get(url).status_code
    reads = [query["sql"] for query in queries.captured_queries
             if "authtoken_token" in query["sql"] or "auth_permission" in query["sql"]]
    return status, reads


def test_a_token_and_its_permissions_are_read_once_while_nothing_changes(cache, as_reviewer):
    status, first = _auth_queries(as_reviewer)
    assert status == 200 and len(first) == 3  # the token with its user; the user's and the groups' permissions
    for _ in range(3):
        assert _auth_queries(as_reviewer) == (200, [])


def test_a_token_deleted_by_anyone_is_refused_once_the_database_says_so(cache, as_reviewer, reviewer):
    assert as_reviewer.get("/api/v1/images").status_code == 200
    seen = cache.generation()
    _elsewhere("DELETE FROM authtoken_token WHERE user_id = %s", [reviewer.id])
    _wait_for(lambda: cache.generation() != seen)
    assert as_reviewer.get("/api/v1/images").status_code == 401


def test_a_user_deactivated_or_a_role_taken_away_is_noticed(cache, as_reviewer, reviewer):
    assert as_reviewer.post("/api/v1/images/img_none/approve", {}, format="json").status_code == 404
    seen = cache.generation()
    reviewers = Group.objects.get(name="reviewers")
    _elsewhere("DELETE FROM auth_user_groups WHERE user_id = %s AND group_id = %s", [reviewer.id, reviewers.id])
    _wait_for(lambda: cache.generation() != seen)
    assert as_reviewer.post("/api/v1/images/img_none/approve", {}, format="json").status_code == 403

    seen = cache.generation()
    _elsewhere("UPDATE auth_user SET is_active = false WHERE id = %s", [reviewer.id])
    _wait_for(lambda: cache.generation() != seen)
    assert as_reviewer.get("/api/v1/images").status_code == 401


def test_a_change_rolled_back_or_read_inside_a_transaction_keeps_nothing(cache, as_reviewer, reviewer):
    with transaction.atomic():
        status, reads = _auth_queries(as_reviewer)
        assert status == 200 and reads  # inside a transaction: read, not kept
        status, reads = _auth_queries(as_reviewer)
        assert status == 200 and reads
    assert _auth_queries(as_reviewer)[1]  # read (and kept) outside it
    assert _auth_queries(as_reviewer)[1] == []


def test_nothing_is_kept_while_the_listener_is_not_connected(settings, as_reviewer):
    settings.API_TOKEN_CACHE = True
    tokencache.stop_listening()
    cache = tokencache.TokenCache()  # a process whose listener has not connected yet
    cache.put("key", ("values", None), 0)
    assert cache.generation() is None and cache.get("key") is None
    settings.API_TOKEN_CACHE = False
    assert tokencache.token_cache(connection.alias) is None
    for _ in range(2):
        assert _auth_queries(as_reviewer)[1]  # read for each request
