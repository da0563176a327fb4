"""Publishing to Printify through the real worker and client against the Printify stand-in."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from core.actors import Actor, Via
from core.errors import InvalidInputError, InvalidStateError
from images.models import ImageStatus, ImageTransition
from publishing.models import Product, ProductStatus, ProductTemplate
from publishing.services import image_publish, images_publish, product_retry
from tests.publishing.conftest import run_worker
from tests.servers.printify import Fault
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(publisher) -> Actor:
    return Actor(publisher, Via.API)


def test_happy_path_uploads_creates_and_publishes(printify, hoodie, approved, actor):
    (image,) = approved(prompt="retro sunset cat")
    product = image_publish(image_id=image.id, actor=actor)
    assert product.status == ProductStatus.QUEUED
    image.refresh_from_db()
    assert image.status == ImageStatus.PUBLISHING

    run_worker()

    product.refresh_from_db()
    image.refresh_from_db()
    assert product.status == ProductStatus.PUBLISHED and image.status == ImageStatus.PUBLISHED
    assert product.published_at is not None and product.attempts == 1
    assert product.external_upload_id in printify.uploads
    remote = printify.products[product.external_id]
    assert remote["published"] is True
    assert remote["title"] == "retro sunset cat hoodie"
    assert remote["tags"] == ["hoodie", "ai-art", f"pod:{product.id}"]  # the template's, and the marker
    assert remote["variants"] == [{"id": 32918, "price": 3499, "is_enabled": True},
                                  {"id": 32919, "price": 3499, "is_enabled": True}]
    placeholder = remote["print_areas"][0]["placeholders"][0]
    assert placeholder["position"] == "front"
    assert placeholder["images"][0] == {"id": product.external_upload_id, "x": 0.5, "y": 0.5, "scale": 1.0, "angle": 0}
    assert product.external_url.endswith(product.external_id)
    # Uploaded as base64 of the very file (no PUBLIC_BASE_URL).
    upload_body = next(body for name, body in printify.requests if name == "upload")
    with image.file.open("rb") as handle:
        assert base64.b64decode(upload_body["contents"]) == handle.read()
    # The stand-in's shop is on the custom-integration channel: the publish is reported back with its link.
    assert dict(printify.calls) == {"upload": 1, "create": 1, "publish": 1, "shops": 1, "publishing_succeeded": 1}
    assert remote["external"] == {"id": product.id, "handle": product.external_url}
    event = WebhookEvent.objects.get(event_type="product.published")
    assert event.data["product_id"] == product.id and event.data["external_id"] == product.external_id
    history = list(ImageTransition.objects.filter(image=image).values_list("to_status", "via"))
    assert history == [("publishing", "api"), ("published", "system")]


def test_overrides_title_description_and_price(printify, hoodie, approved, actor):
    (image,) = approved()
    product = image_publish(image_id=image.id, actor=actor, title="  Custom   title ", description="Desc",
                            price_cents=4200)
    run_worker()
    remote = printify.products[Product.objects.get(id=product.id).external_id]
    assert (remote["title"], remote["description"]) == ("Custom title", "Desc")
    assert {v["price"] for v in remote["variants"]} == {4200}


def test_429_and_5xx_are_retried_but_a_create_only_after_looking_for_it(printify, hoodie, approved, actor):
    (image,) = approved()
    printify.inject("upload", Fault(status=429, headers={"Retry-After": "1"}))
    # Refused before anything was made: each is followed by a search of the shop, then sent again.
    printify.inject("create", Fault(status=500), Fault(status=503))
    printify.inject("publish", Fault(drop=True))
    product = image_publish(image_id=image.id, actor=actor)
    run_worker()
    product.refresh_from_db()
    assert product.status == ProductStatus.PUBLISHED, product.error
    assert dict(printify.calls) == {"upload": 2, "create": 3, "list": 2, "publish": 2, "shops": 1,
                                    "publishing_succeeded": 1}
    assert len(printify.products) == 1


def test_printify_timeout_is_retried_and_the_product_published(printify, hoodie, approved, actor, settings):
    settings.PRINTIFY_TIMEOUT_SECONDS = 0.5
    (image,) = approved()
    printify.inject("upload", Fault(delay=1.0))
    product = image_publish(image_id=image.id, actor=actor)
    run_worker()
    product.refresh_from_db()
    assert product.status == ProductStatus.PUBLISHED, product.error
    assert printify.calls["upload"] == 2


def test_permanent_4xx_fails_with_printifys_message(printify, approved, actor):
    template = ProductTemplate.objects.create(name="bad variant", blueprint_id=77, print_provider_id=29,
                                              variant_ids=[99999], is_default=True)
    (image,) = approved()
    product = image_publish(image_id=image.id, actor=actor, template_id=template.id)
    run_worker()
    product.refresh_from_db()
    image.refresh_from_db()
    assert product.status == ProductStatus.FAILED and image.status == ImageStatus.FAILED
    assert "400" in product.error and "Variant 99999 is not available" in product.error
    assert printify.calls["create"] == 1  # a 4xx is not retried
    assert not printify.products
    event = WebhookEvent.objects.get(event_type="product.failed")
    assert "Variant 99999" in event.data["error"]


def test_retry_of_failed_product_reuses_upload_and_product(printify, hoodie, approved, actor):
    (image,) = approved()
    printify.inject("publish", *[Fault(status=500)] * 4)  # more than PRINTIFY_RETRIES: gives up
    product = image_publish(image_id=image.id, actor=actor)
    run_worker()
    product.refresh_from_db()
    assert product.status == ProductStatus.FAILED and "500" in product.error
    assert product.external_id and product.external_upload_id

    retried = product_retry(product_id=product.id, actor=actor)
    assert retried.status == ProductStatus.QUEUED
    run_worker()
    product.refresh_from_db()
    assert product.status == ProductStatus.PUBLISHED and product.attempts == 2
    assert printify.calls["upload"] == 1 and printify.calls["create"] == 1
    assert len(printify.products) == 1

    with pytest.raises(InvalidStateError):
        product_retry(product_id=product.id, actor=actor)


def test_an_answer_without_an_id_fails_the_product_so_it_can_be_retried(printify, hoodie, approved, actor):
    (image,) = approved()
    printify.inject("upload", Fault(status=200, body={"status": "ok"}))
    product = image_publish(image_id=image.id, actor=actor)
    run_worker()
    product.refresh_from_db()
    image.refresh_from_db()
    assert product.status == ProductStatus.FAILED and image.status == ImageStatus.FAILED
    assert "upload without an id" in product.error and not product.external_upload_id

    product_retry(product_id=product.id, actor=actor)
    run_worker()
    product.refresh_from_db()
    assert product.status == ProductStatus.PUBLISHED and printify.calls["upload"] == 2


def test_an_unexpected_error_fails_the_product_instead_of_leaving_it_working(printify, approved, actor):
    # Made directly in the database: the API and admin refuse such variant ids.
    template = ProductTemplate.objects.create(name="damaged", blueprint_id=77, print_provider_id=29,
                                              variant_ids=["not-a-number"], is_default=True)
    (image,) = approved()
    product = image_publish(image_id=image.id, actor=actor, template_id=template.id)
    run_worker()
    product.refresh_from_db()
    image.refresh_from_db()
    assert product.status == ProductStatus.FAILED and image.status == ImageStatus.FAILED
    assert product.error == "Internal error: ValueError"
    assert product.external_upload_id  # kept: a retry continues after the upload
    assert WebhookEvent.objects.filter(event_type="product.failed").count() == 1


def test_republishing_a_failed_image_reuses_its_product(printify, hoodie, approved, actor):
    (image,) = approved()
    printify.inject("publish", *[Fault(status=500)] * 4)
    first = image_publish(image_id=image.id, actor=actor)
    run_worker()
    second = image_publish(image_id=image.id, actor=actor)
    assert second.id == first.id
    run_worker()
    assert Product.objects.get().status == ProductStatus.PUBLISHED
    assert printify.calls["create"] == 1


def test_batch_of_100_makes_one_upload_create_and_publish_each(printify, hoodie, approved, actor):
    images = approved(100)
    result = images_publish(image_ids=[i.id for i in images], actor=actor, batch_action="publish")
    assert result.as_dict()["counts"]["successful"] == 100
    run_worker()
    assert Product.objects.filter(status=ProductStatus.PUBLISHED).count() == 100
    assert dict(printify.calls) == {"upload": 100, "create": 100, "publish": 100, "shops": 1,
                                    "publishing_succeeded": 100}
    assert len(printify.products) == 100 and all(p["publish_count"] == 1 for p in printify.products.values())
    assert len({p.external_upload_id for p in Product.objects.all()}) == 100


def test_batch_reports_unknown_and_wrong_state_and_uses_constant_queries(hoodie, approved, make_image, actor):
    pending = make_image()
    (ok,) = approved()
    result = images_publish(image_ids=[ok.id, pending.id, "img_missing"], actor=actor).as_dict()
    assert result["successful"] == [ok.id]
    assert result["failed"][0]["code"] == "NOT_FOUND"
    assert result["skipped"][0]["image_id"] == pending.id

    def queries_for(n: int) -> int:
        ids = [i.id for i in approved(n)]
        with CaptureQueriesContext(connection) as ctx:
            images_publish(image_ids=ids, actor=actor)
        # One INSERT per enqueued task (django_tasks has no bulk enqueue); everything else is set-wise.
        return len(ctx.captured_queries) - n

    assert queries_for(2) == queries_for(12)


def test_publishing_without_template_or_default_is_refused(approved, actor):
    (image,) = approved()
    with pytest.raises(InvalidInputError) as info:
        image_publish(image_id=image.id, actor=actor)
    assert "template" in info.value.fields
    image.refresh_from_db()
    assert image.status == ImageStatus.APPROVED


def test_large_batch_paces_publishes_instead_of_hitting_429(printify, hoodie, approved, actor, settings):
    settings.PRINTIFY_PUBLISHES_PER_30_MIN = 4  # a bucket of 2 publishes, refilled every 15 minutes
    images = approved(3)
    images_publish(image_ids=[i.id for i in images], actor=actor)
    run_worker()
    statuses = sorted(Product.objects.values_list("status", flat=True))
    assert statuses == ["created", "published", "published"]
    assert printify.calls["publish"] == 2 and printify.calls["create"] == 3
    waiting = Product.objects.get(status=ProductStatus.CREATED)
    task = DBTaskResult.objects.get(id=waiting.task_id)
    assert task.status == "READY" and task.run_after > timezone.now()
