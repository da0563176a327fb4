"""Request ids (accepted, generated, returned, in every log line) and the redacted access log."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from core.logging import JsonFormatter, RequestIdFilter, current_request_id, outgoing_headers, redact

pytestmark = [pytest.mark.urls("tests.api.infra_urls"), pytest.mark.django_db]


@pytest.fixture
def log_lines():
    """The root logger's output through the configured filter and formatter (text), as lines."""
    yield from _capture(logging.Formatter(settings.LOGGING["formatters"]["text"]["format"]))


@pytest.fixture
def json_log_lines():
    yield from _capture(JsonFormatter())


def _capture(formatter):
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: buffer.getvalue().splitlines()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_a_client_request_id_is_kept_and_returned():
    response = APIClient().get("/api/things/t1", HTTP_X_REQUEST_ID="client-id_42:a/b")
    assert response["X-Request-ID"] == "client-id_42:a/b"
    # The view saw the same id through the context variable (what outgoing calls use).
    assert response.json()["request_id"] == "client-id_42:a/b"


@pytest.mark.parametrize("sent", ["x" * 129, "has space", "semi;colon", "new\nline", ""])
def test_an_unsafe_or_overlong_request_id_is_replaced(sent):
    response = APIClient().get("/api/things/t1", HTTP_X_REQUEST_ID=sent)
    assert response["X-Request-ID"] != sent
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert response.json()["request_id"] == response["X-Request-ID"]


def test_error_responses_carry_the_id_in_header_and_body():
    response = APIClient().post("/api/things", {}, format="json", HTTP_X_REQUEST_ID="err-1")
    assert response.status_code == 401
    assert response["X-Request-ID"] == "err-1"
    assert response.json()["request_id"] == "err-1"


def test_unknown_paths_outside_the_test_routes_still_get_an_id():
    response = APIClient().get("/nowhere")
    assert response.status_code == 404
    assert response["X-Request-ID"]


def test_every_log_line_of_a_request_has_its_id_and_one_line_sums_it_up(log_lines):
    APIClient().get("/api/things/t9?x=1", HTTP_X_REQUEST_ID="trace-7")
    lines = [line for line in log_lines() if "trace-7" in line or "looking at t9" in line]
    assert any("tests.infra [trace-7] looking at t9" in line for line in lines)
    summary = [line for line in lines if "pod_gateway.request" in line]
    assert len(summary) == 1
    assert re.search(r"\[trace-7\] 200 GET /api/things/t9\?x=1 \(\d+\.\d ms\)$", summary[0])
    assert all("[trace-7]" in line for line in lines)


def test_the_id_is_gone_after_the_request():
    APIClient().get("/api/things/t1", HTTP_X_REQUEST_ID="done-1")
    assert current_request_id() is None
    assert outgoing_headers() == {}


def test_json_bodies_are_logged_with_secrets_redacted(log_lines):
    body = {
        "prompt": "a fox",
        "password": "hunter2",
        "nested": {"api_key": "k-123", "items": [{"access_token": "t-456", "keep": "visible"}]},
        "Authorization": "Token abc",
        "webhook": {"secret": "whsec_zzz"},
    }
    APIClient().post("/api/untiered", body, format="json", HTTP_X_REQUEST_ID="body-1")
    summary = next(line for line in log_lines() if "[body-1] 200 POST /api/untiered" in line)
    logged = json.loads(summary.split(" body=", 1)[1])
    assert logged == {
        "prompt": "a fox",
        "password": "[REDACTED]",
        "nested": {"api_key": "[REDACTED]", "items": [{"access_token": "[REDACTED]", "keep": "visible"}]},
        "Authorization": "[REDACTED]",
        "webhook": {"secret": "[REDACTED]"},
    }
    for secret in ("hunter2", "k-123", "t-456", "abc", "whsec_zzz"):
        assert secret not in summary


def test_large_or_non_json_bodies_are_not_logged(log_lines):
    APIClient().post("/api/untiered", {"blob": "p" * 11_000}, format="json", HTTP_X_REQUEST_ID="big-1")
    APIClient().post("/api/untiered", "password=x", content_type="text/plain", HTTP_X_REQUEST_ID="txt-1")
    lines = [line for line in log_lines() if "[big-1]" in line or "[txt-1]" in line]
    assert len(lines) >= 2
    assert not any("body=" in line for line in lines)


def test_json_log_format_has_one_object_per_line_with_the_id(json_log_lines):
    APIClient().post("/api/untiered", {"token": "t"}, format="json", HTTP_X_REQUEST_ID="json-1")
    entries = [json.loads(line) for line in json_log_lines()]
    summary = next(e for e in entries if e["logger"] == "pod_gateway.request" and e["request_id"] == "json-1")
    assert summary["status"] == 200
    assert summary["method"] == "POST"
    assert summary["path"] == "/api/untiered"
    assert summary["body"] == {"token": "[REDACTED]"}
    assert summary["level"] == "INFO"


def test_redact_leaves_other_values_alone():
    assert redact([{"a": 1, "b": [None, {"client_secret": 2}]}, "password"]) == [
        {"a": 1, "b": [None, {"client_secret": "[REDACTED]"}]},
        "password",
    ]


@pytest.mark.django_db
def test_every_response_says_how_long_the_server_took_for_it():
    for response in (APIClient().get("/api/health"), APIClient().get("/api/v1/images")):
        timing = response.headers["Server-Timing"]
        assert re.fullmatch(r"app;dur=\d+\.\d\d", timing), timing
