"""/api/metrics: Prometheus text summed over processes, route-pattern labels, the pending gauge, the token."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from images.models import ImageStatus

pytestmark = [pytest.mark.urls("tests.api.infra_urls"), pytest.mark.django_db]


def scrape(client: APIClient | None = None, **headers) -> dict[tuple[str, tuple], float]:
    response = (client or APIClient()).get("/api/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_api_requests_are_counted_by_route_pattern_not_raw_path():
    before = scrape()
    key = ("pod_api_requests_total", (("endpoint", "/api/things/{thing_id}"), ("method", "GET"), ("status", "200")))
    client = APIClient()
    for thing in ("a1", "b2", "c3"):
        assert client.get(f"/api/things/{thing}").status_code == 200
    after = scrape()
    assert after[key] - before.get(key, 0) == 3
    assert not any("a1" in dict(labels).get("endpoint", "") for _, labels in after)
    count_key = ("pod_api_request_duration_seconds_count", (("endpoint", "/api/things/{thing_id}"), ("method", "GET")))
    assert after[count_key] - before.get(count_key, 0) == 3


def test_unmatched_api_paths_share_one_label():
    before = scrape()
    APIClient().get(f"/api/no-such-{uuid.uuid4().hex}")
    after = scrape()
    key = ("pod_api_requests_total", (("endpoint", "<unmatched>"), ("method", "GET"), ("status", "404")))
    assert after[key] - before.get(key, 0) == 1


def test_pending_review_gauge_is_read_from_the_database(make_image):
    for _ in range(3):
        make_image()
    make_image(status=ImageStatus.APPROVED)
    assert scrape()[("pod_images_pending_review", ())] == 3
    make_image()
    assert scrape()[("pod_images_pending_review", ())] == 4


def test_django_prometheus_metrics_are_exported():
    APIClient().get("/api/things/x")
    names = {name for name, _ in scrape()}
    assert "django_http_requests_total_by_method_total" in names


def test_samples_from_other_processes_are_summed():
    """A separate process (as a gunicorn or task worker is) records a counter; this process's scrape sees it."""
    label = f"test.{uuid.uuid4().hex[:12]}"
    code = (
        "import django; django.setup(); from core import metrics; "
        f"metrics.WEBHOOK_DELIVERIES.labels({label!r}, 'delivered').inc(3)"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="pod_gateway.settings", DATA_DIR=str(settings.DATA_DIR))
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    key = ("pod_webhook_deliveries_total", (("event_type", label), ("outcome", "delivered")))
    assert scrape()[key] == 6


def test_metrics_token_is_required_as_a_bearer_token_when_set(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    client = APIClient()
    missing = client.get("/api/metrics")
    assert missing.status_code == 401
    assert missing.json()["code"] == "UNAUTHORIZED"
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/api/metrics", HTTP_AUTHORIZATION="Token s3cret-token").status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-token")
