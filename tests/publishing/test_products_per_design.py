"""One design, many products: a product per template, one upload per design, the image's status summing up."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from core.actors import Actor, Via
from core.errors import InvalidStateError
from images.models import ImageStatus, ImageTransition
from publishing.models import PrintFile, Product, ProductStatus, ProductTemplate
from publishing.services import image_publish_products, images_publish
from tests.publishing.conftest import run_worker
from tests.publishing.test_api import token_client
from tests.servers.printify import Fault
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.RATE_LIMITS = {tier: (100_000, 3600) for tier in ("generation", "publishing", "approval", "read")}


@pytest.fixture
def actor(publisher) -> Actor:
    return Actor(publisher, Via.API)


@pytest.fixture
def tee(db) -> ProductTemplate:
    return ProductTemplate.objects.create(
        name="Gildan 5000 tee", blueprint_id=6, print_provider_id=99, variant_ids=[12100, 12101, 12102],
        price_cents=2499, variant_prices={"12102": 2899}, title_template="{prompt} tee", is_default=True,
    )


@pytest.fixture
def mug(db) -> ProductTemplate:
    return ProductTemplate.objects.create(
        name="Mug 11oz", blueprint_id=68, print_provider_id=1, variant_ids=[33719], price_cents=1499,
        title_template="{prompt} mug",
    )


@pytest.fixture
def as_publisher(publisher) -> APIClient:
    return token_client(publisher)


def test_three_templates_make_three_products_from_one_upload(printify, hoodie, tee, mug, approved, actor):
    (image,) = approved(prompt="retro sunset cat")
    products = image_publish_products(image_id=image.id, actor=actor, template_ids=[hoodie.id, tee.id, mug.id])
    assert [p.template_id for p in products] == [hoodie.id, tee.id, mug.id]
    image.refresh_from_db()
    assert image.status == ImageStatus.PUBLISHING

    run_worker()

    image.refresh_from_db()
    assert image.status == ImageStatus.PUBLISHED
    rows = list(Product.objects.filter(image=image))
    assert len(rows) == 3 and {p.status for p in rows} == {ProductStatus.PUBLISHED}
    assert printify.calls["upload"] == 1 and printify.calls["create"] == 3 and printify.calls["publish"] == 3
    (upload_id,) = printify.uploads
    assert {p.external_upload_id for p in rows} == {upload_id}
    assert PrintFile.objects.get(image=image).external_upload_id == upload_id
    assert {printify.products[p.external_id]["title"] for p in rows} == {
        "retro sunset cat hoodie", "retro sunset cat tee", "retro sunset cat mug"}
    # An event per product, and each product's publish reported to the custom-integration shop.
    events = WebhookEvent.objects.filter(event_type="product.published")
    assert sorted(e.data["product_id"] for e in events) == sorted(p.id for p in rows)
    assert printify.calls["publishing_succeeded"] == 3
    assert all(printify.products[p.external_id]["external"] == {"id": p.id, "handle": p.external_url} for p in rows)
    # One image move to publishing and one to published, whatever the number of products.
    moves = list(ImageTransition.objects.filter(image_id=image.id).values_list("to_status", flat=True))
    assert moves.count(ImageStatus.PUBLISHING) == 1 and moves.count(ImageStatus.PUBLISHED) == 1


def test_publishing_the_same_templates_again_makes_nothing_and_a_new_one_adds_one(
    printify, hoodie, tee, mug, approved, actor
):
    (image,) = approved()
    image_publish_products(image_id=image.id, actor=actor, template_ids=[hoodie.id, tee.id])
    run_worker()
    with pytest.raises(InvalidStateError):
        image_publish_products(image_id=image.id, actor=actor, template_ids=[hoodie.id, tee.id])
    result = images_publish(image_ids=[image.id], actor=actor, template_ids=[tee.id, hoodie.id]).as_dict()
    assert result["successful"] == [] and result["skipped"][0]["code"] == "has_live_product"
    assert Product.objects.filter(image=image).count() == 2

    # Published → publishing for another template: one more product, the same upload.
    (added,) = image_publish_products(image_id=image.id, actor=actor, template_ids=[hoodie.id, tee.id, mug.id])
    assert added.template_id == mug.id
    image.refresh_from_db()
    assert image.status == ImageStatus.PUBLISHING
    run_worker()
    image.refresh_from_db()
    assert image.status == ImageStatus.PUBLISHED and Product.objects.filter(image=image).count() == 3
    assert printify.calls["upload"] == 1 and printify.calls["create"] == 3
    assert list(ImageTransition.objects.filter(image_id=image.id).values_list("from_status", "to_status"))[-2:] == [
        (ImageStatus.PUBLISHED, ImageStatus.PUBLISHING), (ImageStatus.PUBLISHING, ImageStatus.PUBLISHED)]


def test_the_database_refuses_a_second_live_product_per_template(hoodie, approved):
    (image,) = approved()
    Product.objects.create(image=image, template=hoodie, platform="printify", status=ProductStatus.PUBLISHED)
    Product.objects.create(image=image, template=hoodie, platform="printify", status=ProductStatus.FAILED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.create(image=image, template=hoodie, platform="printify", status=ProductStatus.QUEUED)


def test_default_templates_are_all_used_when_none_is_named(printify, hoodie, tee, mug, approved, actor):
    (image,) = approved()
    products = image_publish_products(image_id=image.id, actor=actor)
    assert sorted(p.template_id for p in products) == sorted([hoodie.id, tee.id])  # both defaults, not the mug


def test_per_size_prices_reach_printify(printify, tee, approved, actor):
    (image,) = approved()
    (product,) = image_publish_products(image_id=image.id, actor=actor, template_ids=[tee.id])
    run_worker()
    product.refresh_from_db()
    assert printify.products[product.external_id]["variants"] == [
        {"id": 12100, "price": 2499, "is_enabled": True},
        {"id": 12101, "price": 2499, "is_enabled": True},
        {"id": 12102, "price": 2899, "is_enabled": True},  # the 2XL costs more
    ]


def test_status_sums_up_one_failed_one_published_then_all_failed(printify, hoodie, tee, approved, actor):
    (image,) = approved()
    # The first product's publish fails for good (4xx), the second one's goes through.
    printify.inject("publish", Fault(status=400, body={"status": "error", "message": "Shop disconnected"}))
    image_publish_products(image_id=image.id, actor=actor, template_ids=[hoodie.id, tee.id])
    run_worker()
    image.refresh_from_db()
    assert image.status == ImageStatus.PUBLISHED
    assert sorted(Product.objects.filter(image=image).values_list("status", flat=True)) == ["failed", "published"]
    refused = Product.objects.get(image=image, status=ProductStatus.FAILED)
    assert "Shop disconnected" in printify.products[refused.external_id]["publishing_failed"]
    assert WebhookEvent.objects.filter(event_type="product.failed", data__product_id=refused.id).count() == 1

    (other,) = approved()
    printify.inject("create", *[Fault(status=400, body={"status": "error", "message": "Nope"})] * 2)
    image_publish_products(image_id=other.id, actor=actor, template_ids=[hoodie.id, tee.id])
    run_worker()
    other.refresh_from_db()
    assert other.status == ImageStatus.FAILED


def test_products_on_the_image_v1_keeps_the_most_recent_as_product(printify, hoodie, tee, mug, approved,
                                                                   as_publisher):
    (image,) = approved()
    response = as_publisher.post(f"/api/v1/images/{image.id}/publish", {"templates": [hoodie.id, tee.id]},
                                 format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert [p["template"] for p in body["products"]] == [hoodie.id, tee.id] and body["id"] == body["products"][0]["id"]
    run_worker()
    later = as_publisher.post(f"/api/v2/images/{image.id}/publish", {"templates": [mug.id]}, format="json").json()
    run_worker()
    v1 = as_publisher.get(f"/api/v1/images/{image.id}").json()
    v2 = as_publisher.get(f"/api/v2/images/{image.id}").json()
    assert len(v2["products"]) == 3 and v2["products"][0]["id"] == later["id"]
    assert v1["product"] == v2["products"][0] and v1["products"] == v2["products"]
    listed = as_publisher.get("/api/v1/images", {"status": "published"}).json()["results"]
    assert listed[0]["products"] == v2["products"] and listed[0]["product"] == v2["products"][0]


def test_mockups_are_stored_and_served(printify, hoodie, approved, as_publisher):
    (image,) = approved()
    product_id = as_publisher.post(f"/api/v1/images/{image.id}/publish", {}, format="json").json()["id"]
    run_worker()
    product = Product.objects.get(id=product_id)
    remote = printify.products[product.external_id]
    assert product.mockups == [
        {"src": i["src"], "position": i["position"], "variant_ids": i["variant_ids"], "is_default": i["is_default"]}
        for i in remote["images"]
    ] and product.mockups
    for version in ("v1", "v2"):
        assert as_publisher.get(f"/api/{version}/products/{product_id}").json()["mockups"] == product.mockups


def test_batch_publish_takes_templates(printify, hoodie, tee, approved, make_image, as_publisher):
    images = approved(2)
    pending = make_image()
    response = as_publisher.post("/api/v1/batch/publish", {
        "image_ids": [images[0].id, images[1].id, pending.id], "templates": [hoodie.id, tee.id]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["successful"] == [images[0].id, images[1].id] and body["skipped"][0]["image_id"] == pending.id
    assert Product.objects.count() == 4
    response = as_publisher.post("/api/v1/batch/publish", {"image_ids": [images[0].id], "templates": ["tpl_nope"]},
                                 format="json")
    assert response.status_code == 400 and "templates" in response.json()["details"]["fields"]
    assert Product.objects.count() == 4


def test_a_design_too_small_for_a_print_area_is_flagged_from_the_cached_catalog(
    printify, tee, mug, approved, as_publisher, client, superuser
):
    from publishing.catalog import fit_warnings

    (image,) = approved()  # 64×64 pixels
    body = as_publisher.post(f"/api/v1/images/{image.id}/publish", {"templates": [mug.id]}, format="json").json()
    assert body["warnings"] == [
        "Too small for Mug 11oz (front, 2475×1155 px at 300 DPI): 64×64 px prints at about 7 DPI"]
    assert fit_warnings(width=2475, height=1155, templates=[mug]) == []
    assert fit_warnings(width=4500, height=5400, templates=[mug, tee]) == []
    assert len(fit_warnings(width=4000, height=5400, templates=[mug, tee])) == 1  # the tee's area is 4500 wide
    calls = printify.calls["variants"]
    client.force_login(superuser)
    page = client.get(f"/admin/images/image/{image.id}/change/").content.decode()
    assert "Too small for Mug 11oz" in page and "Too small for Gildan 5000 tee" in page
    assert printify.calls["variants"] == calls  # the catalog is cached
