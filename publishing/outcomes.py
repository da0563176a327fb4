"""What the publish pipeline records as it runs: each step's progress, and the product published or failed.

Called by the worker (`publishing.pipeline`, `publishing.tasks`). Image moves go through
`images.services.images_transition`, so the image's history and events are written in the same
transaction as the product's outcome.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from core import metrics
from core.actors import Actor
from images.models import ImageStatus
from images.services import images_transition
from publishing.models import Product, ProductStatus
from webhooks.models import EventType
from webhooks.services import event_record


def product_mark_published(*, product: Product, external_url: str = "") -> Product:
    """The product is live: product and image published, `product.published` recorded, counted."""
    with transaction.atomic():
        product.status = ProductStatus.PUBLISHED
        product.published_at = timezone.now()
        product.error = ""
        if external_url:
            product.external_url = external_url
        product.save(update_fields=["status", "published_at", "error", "external_url", "updated_at"])
        images_transition(image_ids=[product.image_id], to_status=ImageStatus.PUBLISHED, actor=Actor.system())
        event_record(event_type=EventType.PRODUCT_PUBLISHED, data=_event_data(product))
        platform = product.platform
        transaction.on_commit(lambda: metrics.PRODUCTS_PUBLISHED.labels(platform=platform).inc())
    return product


def product_mark_failed(*, product: Product, error: str) -> Product:
    """The pipeline gave up: product and image failed with the reason, `product.failed` recorded."""
    with transaction.atomic():
        product.status = ProductStatus.FAILED
        product.error = error[:5000]
        product.save(update_fields=["status", "error", "updated_at"])
        images_transition(
            image_ids=[product.image_id], to_status=ImageStatus.FAILED, actor=Actor.system(), note=error[:1000]
        )
        event_record(event_type=EventType.PRODUCT_FAILED, data={**_event_data(product), "error": product.error})
        platform = product.platform
        transaction.on_commit(lambda: metrics.PRODUCTS_FAILED.labels(platform=platform).inc())
    return product


def product_progress(*, product: Product, status: str | None = None, **fields: str) -> None:
    """Persist a step's result at once (outside any transaction), so a restart continues after it."""
    if status:
        fields["status"] = status
    for key, value in fields.items():
        setattr(product, key, value)
    product.save(update_fields=[*fields, "updated_at"])


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
