"""Every error under /api/ in the v1 envelope or the v2 problem document, never HTML or a 500 page."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory
from rest_framework.exceptions import APIException
from rest_framework.test import APIClient

from api.exceptions import error_response, exception_handler
from api.views import server_error
from images.models import Generation

pytestmark = pytest.mark.django_db

ENVELOPE_KEYS = {"error", "code", "details", "request_id"}
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code", "request_id", "errors"}


def assert_v1(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert ENVELOPE_KEYS <= set(body) and body["code"] == code
    return body


def assert_v2(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert PROBLEM_KEYS <= set(body) and body["code"] == code and body["status"] == status
    assert body["type"].endswith(code.lower().replace("_", "-"))
    return body


def test_malformed_json_is_400_malformed_request(as_reviewer):
    response = as_reviewer.post("/api/v1/batch/approve", "{not json", content_type="application/json")
    assert_v1(response, 400, "MALFORMED_REQUEST")
    response = as_reviewer.post("/api/v2/batch/approve", "{not json", content_type="application/json")
    assert_v2(response, 400, "MALFORMED_REQUEST")


def test_wrong_content_type_is_415(as_reviewer):
    response = as_reviewer.post("/api/v1/batch/approve", "image_ids=a", content_type="text/plain")
    assert_v1(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    response = as_reviewer.post("/api/v2/generate", "<x/>", content_type="application/xml")
    assert_v2(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_json_that_is_not_an_object_is_a_validation_error(as_reviewer):
    body = assert_v1(as_reviewer.post("/api/v1/batch/approve", [1, 2], format="json"), 400, "VALIDATION_ERROR")
    assert "non_field_errors" in body["details"]["fields"]
    problem = assert_v2(as_reviewer.post("/api/v2/batch/approve", "null", content_type="application/json"),
                        400, "VALIDATION_ERROR")
    assert problem["errors"][0]["pointer"] == "#"


def test_v1_validation_error_has_fields(as_client):
    response = as_client.post("/api/v1/generate", {"prompt": ""}, format="json")
    body = assert_v1(response, 400, "VALIDATION_ERROR")
    assert list(body["details"]["fields"]) == ["prompt"]


def test_v2_problem_carries_instance(as_client):
    body = assert_v2(as_client.get("/api/v2/images/img_none"), 404, "NOT_FOUND")
    assert body["instance"] == "/api/v2/images/img_none"
    assert body["title"] == "Not Found" and body["errors"] == []


@pytest.mark.parametrize("path", ["/api/v1/images", "/api/v2/images"])
def test_errors_carry_the_request_id_the_middleware_set(path):
    request = RequestFactory().get(path)
    request.request_id = "req-123"
    response = error_response(request, status=409, code="CONFLICT", message="busy", details={"a": 1})
    assert json.loads(response.content)["request_id"] == "req-123"


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/images/a/b/c", "/api/nothing", "/api/"])
def test_unknown_paths_are_json_404(anon, path):
    assert_v1(anon.get(path), 404, "NOT_FOUND")


def test_unknown_v2_path_is_a_problem(anon):
    assert_v2(anon.post("/api/v2/nothing"), 404, "NOT_FOUND")


@pytest.mark.parametrize("path", ["/api/v3/images", "/api/v0", "/api/v99/generate/"])
def test_unknown_version_is_404_unsupported_version(anon, path):
    body = assert_v1(anon.get(path), 404, "UNSUPPORTED_VERSION")
    assert body["details"]["supported"] == ["v1", "v2"]


def test_method_not_allowed_is_405_in_the_api_shape(as_client):
    assert_v1(as_client.put("/api/v1/images", {}, format="json"), 405, "METHOD_NOT_ALLOWED")
    assert_v2(as_client.patch("/api/v2/stats", {}, format="json"), 405, "METHOD_NOT_ALLOWED")
    assert_v1(as_client.post("/api/version"), 405, "METHOD_NOT_ALLOWED")


def test_not_acceptable_is_406_in_the_api_shape(as_client):
    assert_v1(as_client.get("/api/v1/images", HTTP_ACCEPT="text/csv"), 406, "NOT_ACCEPTABLE")


def test_pages_outside_the_api_keep_django_behaviour(client):
    assert client.get("/definitely-not-here").status_code == 404
    assert client.get("/definitely-not-here")["Content-Type"].startswith("text/html")


def test_server_error_handler_answers_in_the_api_shape_under_api():
    response = server_error(RequestFactory().get("/api/v2/images"))
    assert response.status_code == 500 and response["Content-Type"] == "application/problem+json"
    assert server_error(RequestFactory().get("/api/v1/images")).status_code == 500
    assert server_error(RequestFactory().get("/admin/"))["Content-Type"].startswith("text/html")


def test_unexpected_exception_in_an_api_view_becomes_internal_error():
    request = RequestFactory().get("/api/v1/images")
    response = exception_handler(ZeroDivisionError("bug"), {"request": request})
    assert response.status_code == 500
    assert json.loads(response.content)["code"] == "INTERNAL_ERROR" and "bug" not in response.content.decode()


def test_api_exception_with_error_code_and_details_uses_them():
    exc = APIException("slow down")
    exc.status_code = 429
    exc.error_code = "RATE_LIMIT_EXCEEDED"
    exc.error_details = {"tier": "read"}
    response = exception_handler(exc, {"request": RequestFactory().get("/api/v1/images")})
    assert json.loads(response.content) == {
        "error": "slow down", "code": "RATE_LIMIT_EXCEEDED", "details": {"tier": "read"}, "request_id": None,
    }


def test_hostile_input_never_yields_a_500(as_reviewer, make_image):
    image = make_image()
    hostile = ["\x00", "💥" * 5000, {"$gt": ""}, [[[[]]]], 2**70, -0.0, True, None]
    for value in hostile:
        for path, payload in [
            ("/api/v1/generate", {"prompt": value, "steps": value}),
            ("/api/v1/batch/approve", {"image_ids": value, "atomic": value}),
            (f"/api/v1/images/{image.id}/reject", {"reason": value}),
        ]:
            response = as_reviewer.post(path, payload, format="json")
            assert response.status_code < 500, (path, value, response.content)
            assert response["Content-Type"] in ("application/json", "application/problem+json")


@pytest.mark.parametrize("raw", ['{"prompt": "cat", "steps": 1e309}', '{"prompt": "cat", "guidance": NaN}',
                                 '{"prompt": "cat", "seed": Infinity}', '{"prompt": "cat", "width": 1e400}'])
def test_non_finite_numbers_are_refused_not_crashed_on(as_client, raw):
    response = as_client.post("/api/v1/generate", raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] in ("MALFORMED_REQUEST", "VALIDATION_ERROR")
    assert not Generation.objects.exists()


def test_lone_surrogates_in_json_are_cleaned_not_crashed_on(as_reviewer, make_image):
    image = make_image()
    raw = '{"reason": "bad \\ud800 design"}'
    response = as_reviewer.post(f"/api/v1/images/{image.id}/reject", raw, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["history"][-1]["note"] == "bad  design"


def test_csrf_failure_under_api_is_a_coded_403(reviewer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    response = client.post("/api/ready")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json" and response.json()["code"] == "FORBIDDEN"
    # Session-authenticated DRF writes need the CSRF token too (DRF's own check, same error shape).
    response = client.post("/api/v2/batch/approve", {"image_ids": ["x"]}, content_type="application/json")
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"


@pytest.mark.urls("tests.api.infra_urls")
@pytest.mark.parametrize("path", ["/api/busy", "/api/v2/busy"])
def test_a_database_pool_with_no_free_connection_is_503_with_retry_after(path):
    response = APIClient().get(path)
    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    assert int(response.headers["Retry-After"]) >= 1
