"""No product is made twice: a create whose answer is lost is looked for, never blindly sent again."""

from __future__ import annotations

import pytest

from core.actors import Actor, Via
from core.retry import retry_policy
from publishing.models import Product, ProductStatus, ProductTransition
from publishing.services import image_publish, product_retry
from tests.publishing.conftest import run_worker
from tests.servers.printify import Fault

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(publisher) -> Actor:
    return Actor(publisher, Via.API)


def publish_one(approved, actor) -> Product:
    (image,) = approved()
    product = image_publish(image_id=image.id, actor=actor)
    run_worker()
    product.refresh_from_db()
    return product


def assert_one_product(printify, product: Product) -> None:
    assert product.status == ProductStatus.PUBLISHED, product.error
    assert len(printify.products) == 1
    (remote_id,) = printify.products
    assert product.external_id == remote_id
    assert f"pod:{product.id}" in printify.products[remote_id]["tags"]
    assert printify.products[remote_id]["published"] is True


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(status=502, after=True), id="502-after-creating"),
        pytest.param(Fault(status=504, after=True), id="504-after-creating"),
        pytest.param(Fault(delay=1.0, after=True), id="timeout-after-creating"),
        pytest.param(Fault(drop=True, after=True), id="dropped-after-creating"),
    ],
)
def test_a_create_answered_badly_after_printify_made_the_product_is_adopted(
    printify, hoodie, approved, actor, settings, fault
):
    settings.PRINTIFY_TIMEOUT_SECONDS = 0.5
    printify.inject("create", fault)
    product = publish_one(approved, actor)
    assert_one_product(printify, product)
    assert printify.calls["create"] == 1  # never re-sent
    assert printify.calls["list"] == 1
    history = list(ProductTransition.objects.filter(product_id=product.id).values_list("to_status", "note"))
    assert ("created", f"adopted {product.external_id}, found by its marker") in history


def test_a_create_printify_completes_after_the_gateway_stopped_waiting_is_adopted(
    printify, hoodie, approved, actor, settings
):
    # Printify is still making the product when the gateway's read times out; it appears 0.4 s later.
    settings.PRINTIFY_TIMEOUT_SECONDS = 0.5
    printify.inject("create", Fault(delay=0.9, late=True))
    product = publish_one(approved, actor)
    assert_one_product(printify, product)
    assert printify.calls["create"] == 1  # looked for after as long again as the answer was awaited


@pytest.mark.parametrize(("oldest_first", "lists"), [(False, 3), (True, 4)], ids=["newest-first", "oldest-first"])
def test_the_marker_is_found_on_a_later_page_of_the_shop(printify, hoodie, approved, actor, oldest_first, lists):
    # Printify does not promise an order: read newest first either way (page 1, then from the last back).
    printify.oldest_first = oldest_first

    def others_arrive() -> None:
        # Other products made in the shop right after ours push it to the third page of 50.
        for n in range(120):
            printify.products[f"other{n}"] = {"id": f"other{n}", "tags": ["pod:prd_someone_else"],
                                              "created_at": "2099-01-01 00:00:00+00:00"}

    printify.inject("create", Fault(status=502, after=True, hook=others_arrive))
    product = publish_one(approved, actor)
    assert product.status == ProductStatus.PUBLISHED, product.error
    assert printify.calls["create"] == 1 and printify.calls["list"] == lists
    assert product.external_id and not product.external_id.startswith("other")
    assert f"pod:{product.id}" in printify.products[product.external_id]["tags"]


def test_a_create_refused_before_anything_was_made_is_sent_again_after_looking(printify, hoodie, approved, actor):
    printify.inject("create", Fault(status=502))
    product = publish_one(approved, actor)
    assert_one_product(printify, product)
    assert printify.calls["create"] == 2 and printify.calls["list"] == 1


def test_429_on_create_is_sent_again_without_a_search(printify, hoodie, approved, actor):
    printify.inject("create", Fault(status=429, headers={"Retry-After": "0"}))
    product = publish_one(approved, actor)
    assert_one_product(printify, product)
    assert printify.calls["create"] == 2 and printify.calls["list"] == 0


def test_a_4xx_on_create_fails_the_product_without_a_second_create(printify, hoodie, approved, actor):
    printify.inject("create", Fault(status=422, body={"status": "error", "code": 8150, "message": "No."}))
    product = publish_one(approved, actor)
    assert product.status == ProductStatus.FAILED and "422" in product.error
    assert printify.calls["create"] == 1 and printify.calls["list"] == 0 and not printify.products


def test_an_unclear_create_never_found_gives_up_and_a_retry_looks_again_first(
    printify, hoodie, approved, actor, settings
):
    settings.PRINTIFY_RETRIES = 1
    printify.inject("create", Fault(status=502), Fault(status=502))
    product = publish_one(approved, actor)
    assert product.status == ProductStatus.FAILED and "no product with marker" in product.error
    assert printify.calls["create"] == 2 and printify.calls["list"] == 2 and not printify.products

    # Meanwhile the product turned up (Printify was slow): the retry adopts it instead of creating.
    printify.products["late"] = {"id": "late", "tags": [f"pod:{product.id}"], "created_at": "2099-01-01 00:00:00"}
    product_retry(product_id=product.id, actor=actor)
    run_worker()
    product.refresh_from_db()
    assert product.status == ProductStatus.PUBLISHED and product.external_id == "late"
    assert printify.calls["create"] == 2 and printify.calls["list"] == 3


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(status=502, after=True), id="502-after-publishing"),
        pytest.param(Fault(delay=1.0, after=True), id="timeout-after-publishing"),
        pytest.param(Fault(drop=True, after=True), id="dropped-after-publishing"),
    ],
)
def test_a_publish_answered_badly_is_repeated_harmlessly_and_counted(printify, hoodie, approved, actor, settings,
                                                                     fault):
    settings.PRINTIFY_TIMEOUT_SECONDS = 0.5
    printify.inject("publish", fault)
    product = publish_one(approved, actor)
    assert_one_product(printify, product)
    assert printify.calls["publish"] == 2
    assert printify.products[product.external_id]["publish_count"] == 2


def test_the_retry_policy_declares_which_requests_repeat():
    creating = retry_policy(repeatable=False, total=3, backoff=0)
    repeatable = retry_policy(repeatable=True, total=3, backoff=0)
    assert set(creating.status_forcelist) == {429} and creating.read == 0 and creating.connect == 3
    assert set(repeatable.status_forcelist) == {429, 500, 502, 503, 504} and repeatable.read == 3
    assert creating.is_retry("POST", 429) and not creating.is_retry("POST", 502)
    assert repeatable.is_retry("POST", 502)
