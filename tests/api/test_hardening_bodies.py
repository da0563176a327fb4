"""Malformed bodies (depth, encoding, size) are 400 MALFORMED_REQUEST on any path, anonymous or not.

The request logger and DRF used to raise RecursionError on a small, deeply nested document (a 500 with
a traceback, an HTML 500 on the admin login); now one bounded parser refuses it before anything else.
"""

from __future__ import annotations

import io
import json
import logging
import socket

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from api.parsers import MAX_DEPTH, MalformedBody, json_body_load
from core.logging import redact
from images.models import Generation
from tests.api.test_errors import assert_v1, assert_v2

pytestmark = pytest.mark.django_db

# 5,000 levels in 10,000 bytes: under the 10 KB the access log parses, far over any recursion limit.
DEEP = "[" * 5000 + "]" * 5000
# Over 10 KB, so only the view's parser meets it.
DEEPER = '{"prompt": "a fox", "batch_size": ' + "[" * 20_000 + "]" * 20_000 + "}"


@pytest.fixture
def log_text():
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    logger = logging.getLogger("pod_gateway.request")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield buffer.getvalue
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.mark.parametrize("path", ["/api/v1/generate", "/api/v1/batch/approve", "/api/v1/no-such-thing"])
def test_a_deeply_nested_body_from_anyone_is_malformed_v1(anon, path):
    body = assert_v1(anon.post(path, DEEP, content_type="application/json"), 400, "MALFORMED_REQUEST")
    assert str(MAX_DEPTH) in body["error"]


@pytest.mark.parametrize("path", ["/api/v2/generate", "/api/v2/webhooks", "/api/health"])
def test_a_deeply_nested_body_from_anyone_is_malformed_v2_and_unversioned(anon, path):
    response = anon.post(path, DEEP, content_type="application/json")
    if path.startswith("/api/v2/"):
        assert_v2(response, 400, "MALFORMED_REQUEST")
    else:
        assert_v1(response, 400, "MALFORMED_REQUEST")


def test_a_deep_body_over_the_log_limit_is_malformed_for_the_view_too(as_client):
    assert_v1(as_client.post("/api/v1/generate", DEEPER, content_type="application/json"), 400, "MALFORMED_REQUEST")
    assert_v2(as_client.post("/api/v2/generate", DEEPER, content_type="application/json"), 400, "MALFORMED_REQUEST")
    assert not Generation.objects.exists()


def test_nesting_just_past_the_limit_is_refused_and_at_the_limit_is_read(as_reviewer):
    at_limit = {"image_ids": ["img_x"], "note": "ok"}
    inner: object = "x"
    for _ in range(MAX_DEPTH - 1):
        inner = [inner]
    at_limit["extra"] = inner  # the body object itself is level 1
    response = as_reviewer.post("/api/v1/batch/approve", json.dumps(at_limit), content_type="application/json")
    assert response.status_code == 200
    at_limit["extra"] = [inner]
    response = as_reviewer.post("/api/v1/batch/approve", json.dumps(at_limit), content_type="application/json")
    assert_v1(response, 400, "MALFORMED_REQUEST")


def test_a_body_that_is_not_utf8_is_malformed(as_client):
    raw = '{"prompt": "caf\u00e9 cat"}'.encode("latin-1")
    assert_v1(as_client.post("/api/v1/generate", raw, content_type="application/json"), 400, "MALFORMED_REQUEST")


def test_a_charset_other_than_utf8_is_malformed(as_client):
    raw = json.dumps({"prompt": "retro sunset cat"}).encode("utf-16")
    response = as_client.post("/api/v1/generate", raw, content_type="application/json; charset=utf-16")
    body = assert_v1(response, 400, "MALFORMED_REQUEST")
    assert "UTF-8" in body["error"]
    assert not Generation.objects.exists()


def test_a_utf8_charset_is_accepted(as_client):
    raw = json.dumps({"prompt": "retro sunset cat"}).encode()
    response = as_client.post("/api/v1/generate", raw, content_type="application/json; charset=UTF-8")
    assert response.status_code == 202


@pytest.mark.parametrize("length", ["12abc", "-5"])
def test_a_content_length_that_is_not_a_length_is_malformed(as_client, length):
    response = as_client.post("/api/v1/generate", '{"prompt": "retro sunset cat"}', content_type="application/json",
                              CONTENT_LENGTH=length)
    assert_v1(response, 400, "MALFORMED_REQUEST")
    assert not Generation.objects.exists()


def test_a_body_shorter_than_its_content_length_is_malformed(transactional_db, live_server, client_user):
    token = Token.objects.create(user=client_user).key
    raw = b'{"prompt": "retro sunset cat"}'
    host, port = live_server.thread.host, live_server.thread.port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Authorization: Token {token}\r\nContent-Length: {len(raw) + 50}\r\n\r\n".encode() + raw
        )
        sock.shutdown(socket.SHUT_WR)  # the client is gone before the declared end
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(body)["code"] == "MALFORMED_REQUEST"
    assert not Generation.objects.exists()


@pytest.mark.parametrize("raw", ['{"batch_size": NaN, "prompt": "a fox"}', '{"seed": ' + "9" * 5000 + "}",
                                 "\ufeff{}", "{} {}"])
def test_json_that_python_would_bend_is_malformed(as_client, raw):
    assert_v1(as_client.post("/api/v1/generate", raw.encode(), content_type="application/json"),
              400, "MALFORMED_REQUEST")


def test_a_multipart_upload_without_a_boundary_is_malformed(as_client):
    response = as_client.post("/api/v1/images", b"--x\r\n\r\n", content_type="multipart/form-data")
    assert_v1(response, 400, "MALFORMED_REQUEST")


def test_the_admin_login_answers_a_deep_body_without_a_500(db):
    response = Client().post("/admin/login/", DEEP, content_type="application/json")
    assert response.status_code == 200  # the login form again: a JSON body carries no credentials
    assert b"Server Error" not in response.content


def test_the_access_log_never_raises_and_logs_the_line_without_the_body(log_text):
    Client().post("/admin/login/", DEEP, content_type="application/json", HTTP_X_REQUEST_ID="deep-admin")
    APIClient().post("/api/v1/generate", DEEP, content_type="application/json", HTTP_X_REQUEST_ID="deep-api")
    text = log_text()
    assert "200 POST /admin/login/" in text and "400 POST /api/v1/generate" in text
    assert "[[[[" not in text


def test_the_access_log_redacts_the_parsed_body_it_did_not_parse_again(log_text, as_client):
    as_client.post("/api/v1/generate", {"prompt": "retro sunset cat", "api_key": "k-1"}, format="json")
    line = next(line for line in log_text().splitlines() if "POST /api/v1/generate" in line)
    assert json.loads(line.split(" body=", 1)[1]) == {"prompt": "retro sunset cat", "api_key": "[REDACTED]"}


def test_the_loader_and_redaction_are_bounded_outside_requests_too():
    with pytest.raises(MalformedBody):
        json_body_load(("[" * 100_000).encode())
    deep: object = {"password": "x"}
    for _ in range(5000):
        deep = [deep]
    assert "x" not in json.dumps(redact(deep))
