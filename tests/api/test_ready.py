"""GET /api/ready: database, cache and a live task worker, or 503 naming what failed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import WorkerHeartbeat


def heartbeat(age_seconds: float) -> None:
    last_seen = timezone.now() - timedelta(seconds=age_seconds)
    WorkerHeartbeat.objects.create(worker_id=f"w-{age_seconds}", pid=1, last_seen=last_seen)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/ready", "/api/ready/"])
def test_ready_when_database_cache_and_a_worker_are_alive(path):
    heartbeat(1)
    response = APIClient().get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok", "worker": "ok"}}


@pytest.mark.django_db
def test_not_ready_without_a_worker_heartbeat():
    response = APIClient().get("/api/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "SERVICE_UNAVAILABLE"
    assert body["details"]["failed"] == ["worker"]
    assert body["details"]["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_a_stale_heartbeat_does_not_count(settings):
    settings.WORKER_STALE_SECONDS = 30
    heartbeat(31)
    assert APIClient().get("/api/ready").json()["details"]["failed"] == ["worker"]
    heartbeat(29)
    assert APIClient().get("/api/ready").status_code == 200


@pytest.mark.django_db
def test_a_cache_that_does_not_keep_values_is_reported(settings):
    heartbeat(1)
    settings.CACHES = {**settings.CACHES, "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    response = APIClient().get("/api/ready/")
    assert response.status_code == 503
    assert response.json()["details"]["failed"] == ["cache"]


@pytest.mark.django_db
def test_not_ready_answers_json_with_the_request_id():
    response = APIClient().get("/api/ready")
    assert response["Content-Type"] == "application/json"
    assert response["X-Request-ID"] == response.json()["request_id"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/ready", "/api/metrics"])
def test_operational_endpoints_refuse_other_methods_with_a_coded_error(path):
    response = APIClient().post(path)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
