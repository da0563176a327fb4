"""The publish pipeline of one product, run by the worker: upload → create → publish (or export).

Progress is persisted: each external id is saved (and committed) the moment Printify returns it, and
every step first checks whether it already has its id. A retry, or a run restarted after the worker
died, therefore continues with the first unfinished step.

Creating the product is the one step whose repetition costs something (a second product), and its
answer can be lost after Printify made it (a 502 from a gateway in front of it, a timeout, a dropped
connection, a worker killed mid-request). So every product is created with a marker tag carrying the
gateway's product id (`product_marker`), the time of the first create request is committed before it
is sent, and whenever a create may already have happened the shop's recent products are searched for
the marker first and the one found is adopted. Only a create known not to have happened is sent again.
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
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import ExternalServiceError, InvalidInputError
from publishing import outcomes, pacing
from publishing.clients.printify import PrintifyClient, PrintifyError
from publishing.export import product_export
from publishing.models import Platform, PrintFile, Product, ProductStatus, ProductTemplate

logger = logging.getLogger(__name__)
PRINT_FILE_SALT = "publishing.print-file"
# Waits shorter than this are slept through in the task; longer ones re-schedule it (run_after),
# so a paced batch does not hold the worker while other work (generations) is queued.
PACING_SLEEP_MAX = 2.0
FINISHED = frozenset({ProductStatus.PUBLISHED, ProductStatus.FAILED})
MARKER_PREFIX = "pod:"
# Printify's sales channel whose shops report each publish back (publishing_succeeded / _failed).
CUSTOM_INTEGRATION = "custom_integration"
SHOP_CHANNEL_CACHE_SECONDS = 3600
# How far back the shop's product list is searched for a product a lost create may have made: pages of
# 50 products, newest first, until one older than the first create request less this much clock skew.
ADOPT_MAX_PAGES = 20
ADOPT_CLOCK_SKEW = timedelta(minutes=10)


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
            outcomes.product_progress(product=product, external_upload_id=_print_file(client, product))
        if not product.external_id:
            prepaid = _pace(product, publish=False, prepaid=prepaid)
            external_id, adopted, remote = _create_once(client, product, template)
            outcomes.product_transition(
                product=product, to_status=ProductStatus.CREATED, external_id=external_id,
                mockups=product_mockups(remote),
                note=f"adopted {external_id}, found by its marker" if adopted else "",
                external_url=settings.PRINTIFY_PRODUCT_URL.format(product_id=external_id, shop_id=client.shop_id),
            )
        _pace(product, publish=True, prepaid=prepaid)
        outcomes.product_transition(product=product, to_status=ProductStatus.PUBLISHING)
        try:
            # Repeatable: publishing again only repeats the same listing (`core.retry`).
            client.product_publish(product_id=product.external_id)
        except PrintifyError as exc:
            if not exc.retryable:
                _report_publishing(client, product, failure=exc.message)
            raise
        _report_publishing(client, product)
    finally:
        client.close()
    outcomes.product_mark_published(product=product)


def _custom_integration(client: PrintifyClient) -> bool:
    """Whether the shop is on Printify's custom-integration sales channel (cached: it does not change)."""
    key = f"publishing:printify-channel:{client.base_url}:{client.shop_id}"
    channel = cache.get(key)
    if channel is None:
        shop = next((s for s in client.shops() if str(s.get("id")) == client.shop_id), None) or {}
        channel = str(shop.get("sales_channel") or "")
        cache.set(key, channel, SHOP_CHANNEL_CACHE_SECONDS)
    return channel == CUSTOM_INTEGRATION


def _report_publishing(client: PrintifyClient, product: Product, *, failure: str = "") -> None:
    """A custom-integration shop reports the outcome of a publish, as Printify asks of such channels:
    `publishing_succeeded` with where the product is listed, or `publishing_failed` with the reason.
    The listing is made either way, so a report that fails is logged rather than failing the product."""
    try:
        if not _custom_integration(client):
            return
        if failure:
            client.publishing_failed(product_id=product.external_id, reason=failure)
        else:
            client.publishing_succeeded(product_id=product.external_id, external_id=product.id,
                                        handle=product.external_url)
    except PrintifyError as exc:
        logger.warning("Product %s: reporting the publish to Printify failed: %s", product.id, exc.message)


def product_marker(product: Product) -> str:
    """The tag every Printify product is created with: how a product whose create answer was lost is found."""
    return MARKER_PREFIX + product.id


def _print_file(client: PrintifyClient, product: Product) -> str:
    """The design's Printify upload id: uploaded once per design, reused by each of its products.

    The `PrintFile` row is locked for the upload (on PostgreSQL a second product of the design waits,
    then reuses the id; SQLite has no row locks, and its one worker runs the products one after
    another). Its `upload_requested_at` is committed before the first upload is sent, so a run that
    finds it set without an id — an earlier run died mid-upload — looks for the file on Printify first.
    """
    print_file, _ = PrintFile.objects.get_or_create(image_id=product.image_id)
    if print_file.external_upload_id:
        return print_file.external_upload_id
    outcomes.product_transition(product=product, to_status=ProductStatus.UPLOADING)
    resumed = not PrintFile.objects.filter(image_id=product.image_id, upload_requested_at__isnull=True).update(
        upload_requested_at=timezone.now())
    with transaction.atomic():
        print_file = PrintFile.objects.select_for_update().get(image_id=product.image_id)
        if print_file.external_upload_id:
            return print_file.external_upload_id
        source = _upload_source(product)
        upload_id = _find_upload(client, source["file_name"]) if resumed else None
        if upload_id is None:
            upload_id = _answer_id(client.image_upload(**source), "upload")
        print_file.external_upload_id = upload_id
        print_file.save(update_fields=["external_upload_id", "updated_at"])
    return upload_id


def product_mockups(remote: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Printify's product images (mockups) as kept on the product: src, position, variant ids, is_default."""
    mockups = []
    for item in (remote or {}).get("images") or []:
        if isinstance(item, dict) and isinstance(item.get("src"), str):
            mockups.append({
                "src": item["src"],
                "position": str(item.get("position") or ""),
                "variant_ids": [v for v in item.get("variant_ids") or [] if isinstance(v, int)],
                "is_default": bool(item.get("is_default")),
            })
    return mockups


def _create_once(
    client: PrintifyClient, product: Product, template: ProductTemplate
) -> tuple[str, bool, dict[str, Any] | None]:
    """The product's Printify id, created at most once; (id, whether an existing product was adopted,
    Printify's product as answered or found).

    Before any create that may repeat an earlier one (a create was requested before and its id never
    stored), the shop is searched for the marker. A create answered 5xx, timed out or cut off is
    followed by a search, never by a blind re-send; only when the search finds nothing is it sent again,
    at most `PRINTIFY_RETRIES` times.
    """
    if product.create_requested_at is not None and (found := _find_by_marker(client, product)):
        return str(found["id"]), True, found
    body = _product_body(product, template)
    tries, attempt = settings.PRINTIFY_RETRIES + 1, 0
    while True:
        attempt += 1
        if product.create_requested_at is None:
            outcomes.product_progress(product=product, create_requested_at=timezone.now())
        try:
            answer = client.product_create(product=body)
            return _answer_id(answer, "product creation"), False, answer
        except PrintifyError as exc:
            if not exc.unclear:
                raise
            logger.warning("Product %s: create outcome unclear (%s); looking for it", product.id, exc.message)
            wait = min(settings.PRINTIFY_BACKOFF_SECONDS * 2 ** (attempt - 1), 30)
            if exc.status_code is None:
                # No answer at all (timed out, cut off): Printify may still be making the product. Give it
                # as long again as the answer was given before looking, so that product shows up.
                wait = max(wait, settings.PRINTIFY_TIMEOUT_SECONDS)
            time.sleep(wait)
            if found := _find_by_marker(client, product):
                return str(found["id"]), True, found
            if attempt == tries:
                raise PrintifyError(f"{exc.message}; no product with marker {product_marker(product)} was found"
                                    f" after {tries} tries") from exc


def _find_upload(client: PrintifyClient, file_name: str) -> str | None:
    """The id of the newest upload of this print file (its name carries the image id); None if none.

    An unused upload costs nothing, so this is only asked when a run resumes a started upload: the
    print file is then uploaded once per design.
    """
    for upload in client.uploads_recent(max_pages=ADOPT_MAX_PAGES):
        if upload.get("file_name") == file_name and upload.get("id"):
            return str(upload["id"])
    return None


def _find_by_marker(client: PrintifyClient, product: Product) -> dict[str, Any] | None:
    """The shop's product carrying this product's marker, searching newest first; None if none."""
    marker = product_marker(product)
    since = product.create_requested_at - ADOPT_CLOCK_SKEW if product.create_requested_at else None
    for remote in client.products_recent(max_pages=ADOPT_MAX_PAGES):
        if marker in (remote.get("tags") or []) and remote.get("id"):
            return remote
        created = parse_datetime(str(remote.get("created_at") or "").replace(" ", "T", 1))
        if since is not None and created is not None and created < since:
            return None
    return None


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
    price = product.price_cents or template.price_cents
    prices = product.variant_prices or {}
    return {
        "title": product.title,
        "description": product.description,
        "tags": [*product.tags, product_marker(product)],
        "blueprint_id": template.blueprint_id,
        "print_provider_id": template.print_provider_id,
        "variants": [{"id": v, "price": prices.get(str(v), price), "is_enabled": True} for v in variant_ids],
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
