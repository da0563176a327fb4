"""Reads about products that several callers make: the API, the admin and the images app's relations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Q, QuerySet

from core.db.counters import status_counts_later
from core.db.keyed import KeysFrom, values_in_later
from core.db.textsearch import search_terms, text_match
from images.models import Image
from images.selectors import images_filter
from publishing.models import Product

PRODUCT_FIELDS = ("image_id", "id", "status", "platform", "template_id", "external_url")


def products_of_images(image_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Image id → its products' `{id, status, platform, template, external_url}`, newest first, in one query."""
    return products_of_images_later(image_ids)()


def products_of_images_later(image_ids: Sequence[str] | KeysFrom) -> Callable[[], dict[str, list[dict[str, Any]]]]:
    """`products_of_images` in two steps: the query is sent now, the function returned reads the answer.
    The ids may be those a statement selects (`core.db.keyed.KeysFrom`, on PostgreSQL)."""
    rows = values_in_later(Product, key="image_id", keys=image_ids, fields=PRODUCT_FIELDS,
                           order_by=("-created_at", "-id"))

    def found() -> dict[str, list[dict[str, Any]]]:
        products: dict[str, list[dict[str, Any]]] = {}
        for row in rows():
            products.setdefault(row["image_id"], []).append({
                "id": row["id"], "status": row["status"], "platform": row["platform"],
                "template": row["template_id"], "external_url": row["external_url"],
            })
        return products

    return found


def products_on_platform(image_ids: Sequence[str]) -> dict[str, str]:
    """Image id → why it stays: its product exists on the platform (an external id would be lost)."""
    rows = Product.objects.filter(image_id__in=list(image_ids)).exclude(external_id="").values_list(
        "image_id", "external_id"
    )
    return {image_id: f"its product exists on the platform ({external_id})" for image_id, external_id in rows}


def product_counts() -> dict[str, int]:
    """Products by status, from the counters the database keeps (core.db.counters: constant time, exact)."""
    return product_counts_later()()


def product_counts_later() -> Callable[[], dict[str, int]]:
    """`product_counts` in two steps: the read sent now, answered when called (`core.db.pipeline`)."""
    table = Product._meta.db_table
    counts = status_counts_later(connections[router.db_for_read(Product)], [table])
    return lambda: counts()[table]


class ImageProducts:
    """The products of images, as `images.relations` asks for them."""

    def summaries_later(self, image_ids: Sequence[str] | KeysFrom) -> Callable[[], dict[str, list[dict[str, Any]]]]:
        return products_of_images_later(image_ids)

    def delete_refusals(self, image_ids: Sequence[str]) -> dict[str, str]:
        return products_on_platform(image_ids)

    def counts_later(self) -> Callable[[], dict[str, int]]:
        return product_counts_later()


def products_search(queryset: QuerySet[Product], words: str) -> QuerySet[Product]:
    """The admin's search of products: every word (or "quoted phrase") in the title, the marketplace's
    product id or the design's prompt, through their indexes, or the exact product or image id.

    The products of matching designs are a second statement joined by UNION: as one more `OR` beside the
    others, PostgreSQL could use no index for any of them and read every product.
    """
    for term in search_terms(words):
        own = Product.objects.filter(
            text_match(Product, "title", term, using=queryset.db)
            | text_match(Product, "external_id", term, using=queryset.db)
            | Q(pk=term) | Q(image_id=term)
        )
        designs = images_filter(Image.objects.order_by(), search=term).values("pk")
        of_designs = Product.objects.filter(image_id__in=designs)
        queryset = queryset.filter(pk__in=own.order_by().values("pk").union(of_designs.order_by().values("pk")))
    return queryset
