"""Product status changes (`product_transition`) and what the publish pipeline records as it runs.

Every product status change goes through `product_transition`: the transition table, a history row
and the outbox event in one transaction. The worker (`publishing.pipeline`, `publishing.tasks`) records
each step's external ids with `product_progress`, which never touches the status. Image moves go through
`images.services.images_transition`, so the image's history and events are written in the same
transaction as the product's outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from core import metrics
from core.actors import Actor
from core.lifecycle import CREATED, Lifecycle
from images.models import Image, ImageStatus
from images.services import images_transition
from publishing.models import Product, ProductStatus, ProductTransition
from webhooks.models import EventType
from webhooks.services import event_record

P = ProductStatus
# CONTRACT §3: queued → uploading → created → publishing → published | failed. A step already done
# is skipped (a retry after the upload goes straight to create; after the create, to publish; an
# export is published at once); any working status may fail; a failed product is queued again.
PRODUCT_TRANSITIONS: dict[str, frozenset[str]] = {
    P.QUEUED: frozenset({P.UPLOADING, P.CREATED, P.PUBLISHING, P.PUBLISHED, P.FAILED}),
    P.UPLOADING: frozenset({P.CREATED, P.FAILED}),
    P.CREATED: frozenset({P.PUBLISHING, P.FAILED}),
    P.PUBLISHING: frozenset({P.PUBLISHED, P.FAILED}),
    P.FAILED: frozenset({P.QUEUED}),
    P.PUBLISHED: frozenset(),
}
PRODUCT_LIFECYCLE = Lifecycle(
    subject="product", model=Product, history=ProductTransition, transitions=PRODUCT_TRANSITIONS
)
PRODUCT_EVENTS = {P.PUBLISHED: EventType.PRODUCT_PUBLISHED, P.FAILED: EventType.PRODUCT_FAILED}


def product_transition(
    *, product: Product, to_status: str, actor: Actor | None = None, note: str = "", **fields: Any
) -> bool:
    """Move a product (row locked) to `to_status` with `fields`, its history row and event; True if it moved.

    `product` is updated in place. Moving to the status it already has writes only `fields` (a resumed
    worker repeats a step harmlessly); a refused move raises `InvalidStateError` and changes nothing.
    """
    actor = actor or Actor.system()
    with transaction.atomic():
        move = PRODUCT_LIFECYCLE.move(object_id=product.id, to_status=to_status, actor=actor, note=note,
                                      fields=fields)
        for name in ("status", *fields):
            setattr(product, name, getattr(move.obj, name))
        product.updated_at = move.obj.updated_at
        if move.moved and to_status in PRODUCT_EVENTS:
            data = _event_data(product)
            if to_status == P.FAILED:
                data["error"] = product.error
            event_record(event_type=PRODUCT_EVENTS[to_status], data=data)
    return move.moved


def products_record(
    moves: Sequence[tuple[str, str]], *, to_status: str, actor: Actor, note: str = ""
) -> None:
    """History rows for products moved set-wise by a service that checked `PRODUCT_LIFECYCLE` itself."""
    PRODUCT_LIFECYCLE.record(moves, to_status=to_status, actor=actor, note=note)


def products_created(products: Sequence[Product], *, actor: Actor, note: str = "") -> None:
    """The first history row of just-created (queued) products, in one INSERT."""
    PRODUCT_LIFECYCLE.record([(p.id, CREATED) for p in products], to_status=P.QUEUED, actor=actor, note=note)


def product_mark_published(*, product: Product, external_url: str = "") -> Product:
    """The product is live: product and image published, `product.published` recorded, counted."""
    fields: dict[str, Any] = {"published_at": timezone.now(), "error": ""}
    if external_url:
        fields["external_url"] = external_url
    with transaction.atomic():
        if product_transition(product=product, to_status=P.PUBLISHED, **fields):
            image_sum_up(image_id=product.image_id)
            platform = product.platform
            transaction.on_commit(lambda: metrics.PRODUCTS_PUBLISHED.labels(platform=platform).inc())
    return product


def product_mark_failed(*, product: Product, error: str) -> Product:
    """The pipeline gave up: product and image failed with the reason, `product.failed` recorded."""
    with transaction.atomic():
        if product_transition(product=product, to_status=P.FAILED, note=error[:1000], error=error[:5000]):
            image_sum_up(image_id=product.image_id, note=error[:1000])
            platform = product.platform
            transaction.on_commit(lambda: metrics.PRODUCTS_FAILED.labels(platform=platform).inc())
    return product


IN_PROGRESS = frozenset({P.QUEUED, P.UPLOADING, P.CREATED, P.PUBLISHING})


def image_sum_up(*, image_id: str, note: str = "") -> str | None:
    """Move a publishing image to the status its products sum up to (CONTRACT §3); the status it moved to.

    Still `publishing` while any product is in progress; then `published` if one is published, else
    `failed`. The image row is locked first, so two products finishing at once agree on the outcome.
    """
    with transaction.atomic():
        status = Image.objects.select_for_update().filter(id=image_id).values_list("status", flat=True).first()
        if status != ImageStatus.PUBLISHING:
            return None  # reset or deleted meanwhile: nothing to sum up
        statuses = set(Product.objects.filter(image_id=image_id).values_list("status", flat=True))
        if statuses & IN_PROGRESS:
            return None
        target = ImageStatus.PUBLISHED if P.PUBLISHED in statuses else ImageStatus.FAILED
        images_transition(image_ids=[image_id], to_status=target, actor=Actor.system(),
                          note="" if target == ImageStatus.PUBLISHED else note)
    return target


def product_progress(*, product: Product, **fields: Any) -> None:
    """Persist a step's result (external ids, the task) at once, outside any transaction, so a restart
    continues after it. Status changes go through `product_transition`."""
    if "status" in fields:
        raise TypeError("product_progress does not change the status; use product_transition")
    for key, value in fields.items():
        setattr(product, key, value)
    Product.objects.filter(id=product.id).update(**fields, updated_at=timezone.now())


def _event_data(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.id,
        "image_id": product.image_id,
        "platform": product.platform,
        "status": product.status,
        "external_id": product.external_id,
        "external_url": product.external_url,
        "template_id": product.template_id,
    }
