"""What other apps keep about an image, asked for here without images/ importing them.

The publishing app registers its products (`PublishingConfig.ready`); images/ then shows an image's
products in the API, counts products in the stats and keeps an image whose product exists on the
platform. Without a registered lookup an image simply has no products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from core.db.keyed import KeysFrom


class ProductLookup(Protocol):
    def summaries_later(self, image_ids: Sequence[str] | KeysFrom) -> Callable[[], dict[str, list[dict[str, Any]]]]:
        """Sends the read now; the function returned answers image id → its products' `{id, status,
        platform, template, external_url}`, newest first (images without one are absent). The ids may be
        those a statement selects (`core.db.keyed.KeysFrom`, on PostgreSQL)."""

    def delete_refusals(self, image_ids: Sequence[str]) -> dict[str, str]:
        """Image id → why it must not be deleted (its product exists on the platform)."""

    def counts_later(self) -> Callable[[], dict[str, int]]:
        """Sends the read now; the function returned answers products by status."""


class _NoProducts:
    def summaries_later(self, image_ids: Sequence[str] | KeysFrom) -> Callable[[], dict[str, list[dict[str, Any]]]]:
        return dict

    def delete_refusals(self, image_ids: Sequence[str]) -> dict[str, str]:
        return {}

    def counts_later(self) -> Callable[[], dict[str, int]]:
        return dict


_products: ProductLookup = _NoProducts()


def products_register(lookup: ProductLookup) -> None:
    """Called once by the app that owns products, when the app registry is ready."""
    global _products
    _products = lookup


def product_summaries(image_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    return product_summaries_later(image_ids)()


def product_summaries_later(image_ids: Sequence[str] | KeysFrom) -> Callable[[], dict[str, list[dict[str, Any]]]]:
    """`product_summaries` in two steps (the read sent now, answered when called), so that it can share
    a round trip with other reads (`core.db.pipeline`)."""
    return _products.summaries_later(image_ids) if image_ids else dict


def delete_refusals(image_ids: Sequence[str]) -> dict[str, str]:
    return _products.delete_refusals(image_ids) if image_ids else {}


def product_counts_later() -> Callable[[], dict[str, int]]:
    return _products.counts_later()
