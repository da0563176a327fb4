"""What a new API client meets at the edges: oversized bodies, refused methods, filters, rate-limit texts, docs."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

from api.middleware import JSON_BODY_MAX_BYTES
from images.models import Image
from publishing.models import Platform, Product, ProductTemplate
from tests.api.conftest import token_client
from tests.conftest import make_user, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_publisher(publisher):
    return token_client(publisher)


def test_json_body_over_the_limit_is_413_before_it_is_read(as_client):
    body = '{"prompt": "' + "a" * JSON_BODY_MAX_BYTES + '"}'
    response = as_client.post("/api/v1/generate", body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    error = response.json()
    assert error["code"] == "REQUEST_TOO_LARGE"
    assert error["details"] == {"content_length": len(body), "limit": JSON_BODY_MAX_BYTES}
    problem = as_client.post("/api/v2/generate", body, content_type="application/json")
    assert problem.status_code == 413 and problem["Content-Type"] == "application/problem+json"


def test_upload_declaring_more_than_image_max_bytes_is_refused_from_content_length(as_client, settings):
    settings.IMAGE_MAX_BYTES = 1000
    # The declared length alone decides: the view, and with it intake and the file spooling, never runs.
    response = as_client.generic(
        "POST", "/api/v1/images", b"x" * 10, content_type="multipart/form-data; boundary=BoUnDaRy",
        CONTENT_LENGTH=str(1000 + 64 * 1024 + 1),
    )
    assert response.status_code == 413
    assert response.json()["code"] == "REQUEST_TOO_LARGE"
    assert response.json()["details"]["limit"] == 1000 + 64 * 1024


def test_upload_within_the_limit_is_stored(as_client, settings):
    settings.IMAGE_MAX_BYTES = 50 * 1024 * 1024
    upload = png_bytes()
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = as_client.post("/api/v1/images", {"file": SimpleUploadedFile("a.png", upload, "image/png")})
    assert response.status_code == 201, response.content
    assert Image.objects.get(id=response.json()["id"]).file.read() == upload


def test_django_body_limit_met_inside_a_view_is_413_not_500(as_client, settings):
    # A limit below the middleware's: Django's own check fires when the view reads the body.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = as_client.post("/api/v1/generate", {"prompt": "a" * 500}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "REQUEST_TOO_LARGE"


def test_method_a_viewset_does_not_offer_is_405_not_403(as_publisher):
    template = ProductTemplate.objects.create(name="Tee", platform=Platform.EXPORT)
    response = as_publisher.put(f"/api/v1/product-templates/{template.id}", {"name": "x"}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


def test_products_filters_refuse_unknown_values_with_the_allowed_list(as_publisher, make_image):
    image = make_image()
    Product.objects.create(image=image, platform=Platform.EXPORT)
    response = as_publisher.get("/api/v1/products", {"status": "bogus", "platform": "etsy"})
    assert response.status_code == 400
    fields = response.json()["details"]["fields"]
    assert "Allowed: queued" in fields["status"][0]
    assert "Allowed: printify, export" in fields["platform"][0]
    listed = as_publisher.get("/api/v1/products", {"platform": "export", "image": image.id}).json()
    assert [product["image"] for product in listed["results"]] == [image.id]
    assert as_publisher.get("/api/v1/products", {"platform": "printify"}).json()["results"] == []


def test_429_message_says_once_when_to_retry(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "read": (1, 3600)}
    client = token_client(make_user("reader", "clients"))
    assert client.get("/api/v1/stats").status_code == 200
    refused = client.get("/api/v1/stats")
    assert refused.status_code == 429
    message = refused.json()["error"]
    assert "Expected available" not in message
    assert message.endswith(f"retry in {refused['Retry-After']} s")


def test_liveness_is_never_rate_limited(settings, anon):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "read": (1, 3600)}
    for _ in range(3):
        response = anon.get("/api/health")
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response


def test_redoc_page_loads_nothing_from_outside(anon):
    html = anon.get("/api/redoc/").content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, html
    assert not [url for url in urls if not url.startswith("/")], urls
    for url in urls:
        assert finders.find(url.removeprefix("/static/")), url


def test_a_page_that_is_not_a_number_or_a_damaged_cursor_is_a_validation_error(as_client, make_image):
    make_image()
    response = as_client.get("/api/v1/images", {"page": "abc"})
    assert response.status_code == 400
    assert "page" in response.json()["details"]["fields"]
    assert as_client.get("/api/v1/images", {"page": "0"}).status_code == 400
    assert as_client.get("/api/v1/images", {"page": "last"}).status_code == 200
    assert as_client.get("/api/v1/images", {"page": "99"}).json()["code"] == "NOT_FOUND"
    problem = as_client.get("/api/v2/images", {"cursor": "garbage"})
    assert problem.status_code == 400
    assert problem.json()["errors"][0]["pointer"] == "#/cursor"
