"""The publish pipeline of one product, run by the worker: upload → create → publish (or export).

Progress is persisted: each external id is saved (and committed) the moment Printify returns it, and
every step first checks whether it already has its id. A retry, or a run restarted after the worker
died, therefore continues with the first unfinished step and never creates a second product.
"""

from __future__ import annotations

import base64
import logging
import time
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from core.errors import ExternalServiceError, InvalidInputError
from publishing import outcomes, pacing
from publishing.clients.printify import PrintifyClient, PrintifyError
from publishing.export import product_export
from publishing.models import Platform, Product, ProductStatus, ProductTemplate

logger = logging.getLogger(__name__)
PRINT_FILE_SALT = "publishing.print-file"
# Waits shorter than this are slept through in the task; longer ones re-schedule it (run_after),
# so a paced batch does not hold the worker while other work (generations) is queued.
PACING_SLEEP_MAX = 2.0
FINISHED = frozenset({ProductStatus.PUBLISHED, ProductStatus.FAILED})


class Deferred(Exception):
    """The run must continue later to stay within Printify's rate limits; a slot is reserved at `run_after`."""

    def __init__(self, run_after: datetime) -> None:
        super().__init__(f"paced until {run_after.isoformat()}")
        self.run_after = run_after


def product_run(*, product_id: str, prepaid: bool = False) -> str:
    """Carry one product as far as it goes; return its status.

    Raises `Deferred` when the next step must wait for Printify's limits; the task re-schedules itself.
    """
    product = Product.objects.select_related("image", "template").filter(id=product_id).first()
    if product is None or product.status in FINISHED:
        # Deleted meanwhile, or a duplicate run of a finished product: nothing to do.
        return product.status if product else "missing"
    if not prepaid:
        Product.objects.filter(id=product.id).update(attempts=F("attempts") + 1)
    try:
        if product.platform == Platform.EXPORT:
            folder = product_export(product=product)
            outcomes.product_progress(product=product, external_id=folder.name)
            outcomes.product_mark_published(product=product)
        else:
            _run_printify(product, prepaid=prepaid)
    except Deferred:
        raise
    except (ExternalServiceError, InvalidInputError, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        logger.warning("Publishing product %s failed: %s", product.id, message)
        outcomes.product_mark_failed(product=product, error=message)
    except Exception as exc:
        # Failed rather than left in a working status no retry accepts; the task still records the crash.
        logger.exception("Publishing product %s crashed", product.id)
        outcomes.product_mark_failed(product=product, error=f"Internal error: {type(exc).__name__}")
        raise
    return product.status


def _run_printify(product: Product, *, prepaid: bool) -> None:
    template = product.template
    if template is None:
        raise PrintifyError("The product's template was deleted; publish the image again with a template",
                            retryable=False)
    client = PrintifyClient.from_settings()
    if product.shop_id:
        client.shop_id = product.shop_id
    try:
        if not product.external_upload_id:
            prepaid = _pace(product, publish=False, prepaid=prepaid)
            outcomes.product_progress(product=product, status=ProductStatus.UPLOADING)
            upload = client.image_upload(**_upload_source(product))
            outcomes.product_progress(product=product, external_upload_id=_answer_id(upload, "upload"))
        if not product.external_id:
            prepaid = _pace(product, publish=False, prepaid=prepaid)
            created = client.product_create(product=_product_body(product, template))
            external_id = _answer_id(created, "product creation")
            outcomes.product_progress(
                product=product, status=ProductStatus.CREATED, external_id=external_id,
                external_url=settings.PRINTIFY_PRODUCT_URL.format(product_id=external_id, shop_id=client.shop_id),
            )
        _pace(product, publish=True, prepaid=prepaid)
        outcomes.product_progress(product=product, status=ProductStatus.PUBLISHING)
        client.product_publish(product_id=product.external_id)
    finally:
        client.close()
    outcomes.product_mark_published(product=product)


def _answer_id(answer: Any, step: str) -> str:
    """The id in a Printify answer; an answer without one fails the product (a crash would leave it stuck)."""
    external_id = answer.get("id") if isinstance(answer, dict) else None
    if external_id in (None, ""):
        raise PrintifyError(f"Printify answered the {step} without an id", retryable=False)
    return str(external_id)


def _pace(product: Product, *, publish: bool, prepaid: bool) -> bool:
    """Wait for a slot under Printify's limits; `Deferred` if the wait is long (the task re-schedules).

    Returns the `prepaid` flag for the next step: a slot reserved before a re-schedule is used once.
    """
    if prepaid:
        return False
    delay = pacing.reserve(pacing.printify_buckets(publish=publish))
    if delay <= PACING_SLEEP_MAX:
        time.sleep(delay)
        return False
    raise Deferred(timezone.now() + timedelta(seconds=delay))


def print_file_url(*, image_id: str, file_name: str) -> str:
    """A signed, expiring public URL of an image's print file, for Printify to fetch."""
    token = signing.dumps(image_id, salt=PRINT_FILE_SALT, compress=True)
    path = reverse("publishing-print-file", kwargs={"token": token, "filename": file_name})
    return settings.PUBLIC_BASE_URL + path


def _upload_source(product: Product) -> dict[str, Any]:
    image = product.image
    suffix = PurePath(image.file.name).suffix.lower() or ".png"
    file_name = f"{image.id}{suffix}"
    if settings.PUBLIC_BASE_URL:
        # Printify fetches it itself: recommended above 5 MB, and the request stays small.
        return {"file_name": file_name, "url": print_file_url(image_id=image.id, file_name=file_name)}
    with image.file.open("rb") as handle:
        return {"file_name": file_name, "contents": base64.b64encode(handle.read()).decode("ascii")}


def _product_body(product: Product, template: ProductTemplate) -> dict[str, Any]:
    variant_ids = [int(v) for v in template.variant_ids]
    return {
        "title": product.title,
        "description": product.description,
        "tags": list(product.tags),
        "blueprint_id": template.blueprint_id,
        "print_provider_id": template.print_provider_id,
        "variants": [{"id": v, "price": product.price_cents or template.price_cents, "is_enabled": True}
                     for v in variant_ids],
        "print_areas": [
            {
                "variant_ids": variant_ids,
                "placeholders": [
                    {
                        "position": template.position,
                        "images": [
                            {"id": product.external_upload_id, "x": template.x, "y": template.y,
                             "scale": template.scale, "angle": int(round(template.angle))}
                        ],
                    }
                ],
            }
        ],
    }
