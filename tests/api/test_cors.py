"""CORS through django-cors-headers: configured origins only, credentials, the exposed API headers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

ORIGIN = "https://shop.example.com"


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]


@pytest.mark.django_db
def test_preflight_from_an_allowed_origin_allows_the_api_headers(cors):
    response = APIClient().options(
        "/api/v1/images",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, idempotency-key, x-request-id",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "x-request-id"} <= allowed
    assert response["X-Request-ID"]


@pytest.mark.django_db
def test_responses_expose_request_id_rate_limit_and_location_headers(cors):
    response = APIClient().get("/api/version", HTTP_ORIGIN=ORIGIN)
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {
        "x-request-id", "location", "idempotent-replayed", "retry-after", "x-ratelimit-limit",
        "x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit-policy", "ratelimit",
    } <= exposed


@pytest.mark.django_db
def test_other_origins_get_no_cors_headers(cors):
    response = APIClient().get("/api/version", HTTP_ORIGIN="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.django_db
def test_no_origin_is_allowed_by_default():
    response = APIClient().get("/api/version", HTTP_ORIGIN=ORIGIN)
    assert "Access-Control-Allow-Origin" not in response


def test_a_wildcard_origin_is_refused_at_start():
    """Credentials are allowed, so `*` would let any site act with a user's session: settings refuse it."""
    env = dict(os.environ, CORS_ALLOWED_ORIGINS="*", DJANGO_SETTINGS_MODULE="pod_gateway.settings")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "CORS_ALLOWED_ORIGINS must list origins" in result.stderr
