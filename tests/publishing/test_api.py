"""The publishing API: publish, batch publish, products, retry, product templates."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from images.models import ImageStatus
from publishing.models import Product, ProductStatus, ProductTemplate
from tests.publishing.conftest import run_worker
from tests.servers.printify import Fault

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings):
    settings.RATE_LIMITS = {tier: (100_000, 3600) for tier in ("generation", "publishing", "approval", "read")}


@pytest.fixture
def as_publisher(publisher) -> APIClient:
    return token_client(publisher)


def test_publish_one_image_through_the_api(printify, hoodie, approved, as_publisher):
    (image,) = approved(prompt="neon fox")
    response = as_publisher.post(f"/api/v1/images/{image.id}/publish", {"price_cents": 3999}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["image"] == image.id and body["template"] == hoodie.id
    assert body["title"] == "neon fox hoodie" and body["price_cents"] == 3999
    run_worker()
    detail = as_publisher.get(f"/api/v1/products/{body['id']}/").json()
    assert detail["status"] == "published" and detail["external_id"] and detail["published_at"]
    image.refresh_from_db()
    assert image.status == ImageStatus.PUBLISHED


def test_publish_refuses_wrong_state_unknown_image_and_bad_input(hoodie, approved, make_image, as_publisher):
    pending = make_image()
    response = as_publisher.post(f"/api/v1/images/{pending.id}/publish/", {}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "INVALID_STATE"
    assert as_publisher.post("/api/v1/images/img_nope/publish", {}, format="json").status_code == 404
    (image,) = approved()
    response = as_publisher.post(f"/api/v1/images/{image.id}/publish", {"price_cents": -5}, format="json")
    assert response.status_code == 400 and "price_cents" in response.json()["details"]["fields"]
    response = as_publisher.post(f"/api/v1/images/{image.id}/publish", {"template": "tpl_nope"}, format="json")
    assert response.status_code == 400 and "template" in response.json()["details"]["fields"]


def test_publish_needs_the_publish_permission(hoodie, approved, reviewer):
    (image,) = approved()
    assert token_client(reviewer).post(f"/api/v1/images/{image.id}/publish", {}, format="json").status_code == 403
    assert APIClient().post(f"/api/v1/images/{image.id}/publish", {}, format="json").status_code == 401
    assert not Product.objects.exists()
    image.refresh_from_db()
    assert image.status == ImageStatus.APPROVED


def test_batch_publish_reports_per_id(hoodie, approved, make_image, as_publisher):
    (ok,) = approved()
    pending = make_image()
    response = as_publisher.post("/api/v1/batch/publish", {"image_ids": [ok.id, pending.id, "img_x"]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["successful"] == [ok.id] and body["counts"] == {"successful": 1, "failed": 1, "skipped": 1,
                                                                 "total": 3}
    response = as_publisher.post("/api/v1/batch/publish/", {"image_ids": []}, format="json")
    assert response.status_code == 400


def test_atomic_batch_publish_changes_nothing_when_one_is_refused(hoodie, approved, make_image, as_publisher):
    (ok,) = approved()
    pending = make_image()
    response = as_publisher.post("/api/v1/batch/publish", {"image_ids": [ok.id, pending.id], "atomic": True},
                                 format="json")
    assert response.status_code == 409
    assert not Product.objects.exists()


def test_retry_a_failed_product(printify, hoodie, approved, as_publisher):
    (image,) = approved()
    printify.inject("publish", *[Fault(status=500)] * 4)
    product_id = as_publisher.post(f"/api/v1/images/{image.id}/publish", {}, format="json").json()["id"]
    run_worker()
    failed = as_publisher.get(f"/api/v2/products/{product_id}").json()
    assert failed["status"] == "failed" and "500" in failed["error"]
    response = as_publisher.post(f"/api/v1/products/{product_id}/retry", format="json")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    run_worker()
    assert Product.objects.get(id=product_id).status == ProductStatus.PUBLISHED
    again = as_publisher.post(f"/api/v1/products/{product_id}/retry/", format="json")
    assert again.status_code == 409


def test_products_list_filters_v1_and_v2(hoodie, approved, as_publisher):
    images = approved(2)
    as_publisher.post("/api/v1/batch/publish", {"image_ids": [i.id for i in images]}, format="json")
    v1 = as_publisher.get("/api/v1/products?status=queued").json()
    assert v1["count"] == 2 and len(v1["results"]) == 2
    v2 = as_publisher.get("/api/v2/products/").json()
    assert len(v2["results"]) == 2 and "count" not in v2
    assert as_publisher.get("/api/v1/products?status=published").json()["count"] == 0


def test_product_templates_crud_and_several_defaults(hoodie, as_publisher):
    payload = {"name": "Tee", "blueprint_id": 6, "print_provider_id": 99, "variant_ids": [12100], "price_cents": 2499,
               "tags": [" tee "], "is_default": True}
    response = as_publisher.post("/api/v1/product-templates", payload, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["tags"] == ["tee"] and created["is_default"] is True and created["x"] == 0.5
    hoodie.refresh_from_db()
    assert hoodie.is_default is True  # several templates may be default: each makes a product
    response = as_publisher.patch(f"/api/v1/product-templates/{created['id']}/", {"price_cents": 2999}, format="json")
    assert response.status_code == 200 and response.json()["price_cents"] == 2999
    assert as_publisher.get(f"/api/v1/product-templates/{created['id']}").json()["name"] == "Tee"
    assert as_publisher.delete(f"/api/v1/product-templates/{created['id']}").status_code == 204
    assert not ProductTemplate.objects.filter(id=created["id"]).exists()
    assert as_publisher.get("/api/v1/product-templates").json()["count"] == 1


def test_product_template_refuses_bad_platform_missing_printify_ids_and_unknown_keys(as_publisher):
    response = as_publisher.post("/api/v1/product-templates", {"name": "x", "platform": "etsy"}, format="json")
    assert response.status_code == 400 and "platform" in response.json()["details"]["fields"]
    response = as_publisher.post("/api/v1/product-templates", {"name": "x"}, format="json")
    fields = response.json()["details"]["fields"]
    assert response.status_code == 400 and {"blueprint_id", "variant_ids"} <= set(fields)
    response = as_publisher.post("/api/v1/product-templates", {"name": "Export", "platform": "export", "x": 3},
                                 format="json")
    assert response.status_code == 400 and "x" in response.json()["details"]["fields"]
    response = as_publisher.post("/api/v1/product-templates", {"name": "Export", "platform": "export"}, format="json")
    assert response.status_code == 201
