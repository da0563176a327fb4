"""Every token a client hands back (cursors, page numbers, page sizes, ids, idempotency keys) that does not
decode to a valid value is a 400, never a 500 or a silently different answer."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest

from images.models import Generation
from publishing.models import Platform, ProductTemplate
from tests.api.test_errors import assert_v1, assert_v2
from webhooks.models import WebhookSubscription

pytestmark = pytest.mark.django_db


def cursor(**tokens: str) -> str:
    """A cursor as DRF encodes one (base64 of a query string), with the position chosen by the test."""
    return base64.b64encode(urlencode(tokens).encode()).decode()


TAMPERED = [
    cursor(o="0", r="0", p="not-a-date"),
    cursor(o="0", p="2026-13-45 99:99:99"),
    cursor(o="0", p="2026-12-01\x00"),
    cursor(o="abc"),
    cursor(o="0", p="x" * 5000),
    base64.b64encode(b"\xff\xfe").decode(),
    "%%%",
]


@pytest.fixture
def v2_lists(client_user):
    subscription = WebhookSubscription.objects.create(owner=client_user, url="https://example.com/h", secret="whsec_x")
    ProductTemplate.objects.create(name="Tee", platform=Platform.EXPORT)
    Generation.objects.create(prompt="a fox", prompt_hash="h", params={}, created_by=client_user)
    return ["/api/v2/generations", "/api/v2/images", "/api/v2/products", "/api/v2/product-templates",
            "/api/v2/webhooks", f"/api/v2/webhooks/{subscription.id}/deliveries"]


@pytest.mark.parametrize("token", TAMPERED)
def test_a_tampered_cursor_is_400_on_every_v2_list(as_client, v2_lists, token):
    for path in v2_lists:
        problem = assert_v2(as_client.get(path, {"cursor": token}), 400, "VALIDATION_ERROR")
        assert problem["errors"][0]["pointer"] == "#/cursor", path


def test_a_cursor_position_of_the_wrong_type_for_the_ordering_field_is_400(as_client, make_image):
    make_image()
    response = as_client.get("/api/v2/images", {"ordering": "file_size", "cursor": cursor(o="0", p="abc")})
    assert_v2(response, 400, "VALIDATION_ERROR")
    huge = cursor(o="0", p="9" * 30)  # a number no integer column holds
    assert_v2(as_client.get("/api/v2/images", {"ordering": "file_size", "cursor": huge}), 400, "VALIDATION_ERROR")


def test_cursors_the_api_made_still_walk_the_list(as_client, make_image):
    for _ in range(3):
        make_image()
    seen = []
    url = "/api/v2/images?page_size=2&ordering=file_size"
    while url:
        body = as_client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == 3


@pytest.mark.parametrize("page", ["²", "١", " 1", "1.0", "-1", "1e3", "9" * 30])
def test_a_page_number_that_is_not_plain_digits_is_400(as_client, make_image, page):
    make_image()
    body = assert_v1(as_client.get("/api/v1/images", {"page": page}), 400, "VALIDATION_ERROR")
    assert "page" in body["details"]["fields"]


@pytest.mark.parametrize("size", ["abc", "0", "-3", "2.5", "١٠"])
def test_a_page_size_that_is_not_a_whole_number_is_400_not_ignored(as_client, make_image, size):
    make_image()
    body = assert_v1(as_client.get("/api/v1/images", {"page_size": size}), 400, "VALIDATION_ERROR")
    assert "page_size" in body["details"]["fields"]
    assert_v2(as_client.get("/api/v2/generations", {"page_size": size}), 400, "VALIDATION_ERROR")


def test_a_page_size_over_the_maximum_reads_as_the_maximum(as_client, make_image):
    make_image()
    assert as_client.get("/api/v1/images", {"page_size": "100000"}).status_code == 200


@pytest.mark.parametrize("key", ["", "k" * 256, "caf\u00e9", "a b"])
def test_an_idempotency_key_that_is_not_a_key_is_400(as_client, key):
    response = as_client.post("/api/v1/generate", {"prompt": "retro sunset cat"}, format="json",
                              HTTP_IDEMPOTENCY_KEY=key)
    body = assert_v1(response, 400, "VALIDATION_ERROR")
    assert "Idempotency-Key" in body["details"]["fields"]
    assert not Generation.objects.exists()


@pytest.mark.parametrize("value", ["x" * 41, "img_\u202e", "<script>", "a\nb"])
def test_an_id_in_a_filter_or_body_that_is_not_an_id_is_400(as_reviewer, value):
    assert_v1(as_reviewer.get("/api/v1/images", {"generation": value}), 400, "VALIDATION_ERROR")
    response = as_reviewer.post("/api/v1/batch/approve", {"image_ids": [value]}, format="json")
    assert_v1(response, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("path", ["/api/v1/images/" + "x" * 5000, "/api/v1/generations/%E2%80%AE",
                                  "/api/v2/webhooks/%F0%9F%90%88", "/api/v1/product-templates/..%2F"])
def test_an_id_in_a_path_that_names_nothing_is_404(as_client, path):
    response = as_client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


@pytest.mark.parametrize("header", ["Token a\x00b", "Token " + "x" * 41, "Token caf\u00e9"])
def test_an_auth_token_that_cannot_be_a_key_is_401(anon, header):
    for response in (anon.get("/api/v1/images", HTTP_AUTHORIZATION=header),
                     anon.post("/api/v1/generate", {"prompt": "retro sunset cat"}, format="json",
                               HTTP_AUTHORIZATION=header, HTTP_IDEMPOTENCY_KEY="k-1")):
        assert_v1(response, 401, "UNAUTHORIZED")
    assert not Generation.objects.exists()
