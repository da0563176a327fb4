"""Reads about images and generations that more than one caller makes: the review queue, the image
list's filters and the counts by status (the API, the admin and the management commands)."""

from __future__ import annotations

from typing import TypedDict

from django.db.models import Count, QuerySet

from images import relations
from images.models import Generation, Image, ImageStatus


class CountsByStatus(TypedDict):
    total: int
    by_status: dict[str, int]


class Stats(TypedDict):
    images: CountsByStatus
    generations: CountsByStatus
    products: CountsByStatus


# --- The review queue --------------------------------------------------------------------------

def images_pending(*, generation_id: str | None = None, newest_first: bool = False) -> QuerySet[Image]:
    """Images waiting for a decision, oldest first (the order they are approved in), or newest first."""
    queryset = Image.objects.filter(status=ImageStatus.PENDING)
    if generation_id is not None:
        queryset = queryset.filter(generation_id=generation_id)
    return queryset.order_by("-created_at", "-id") if newest_first else queryset.order_by("created_at", "id")


def image_pending_ids(*, generation_id: str | None = None) -> list[str]:
    """The ids of the pending images (of one generation, when given), oldest first."""
    return list(images_pending(generation_id=generation_id).values_list("id", flat=True))


def image_next_pending_id(*, after: str) -> str | None:
    """Where a reviewer goes after deciding image `after`: the newest other pending image, if any."""
    return images_pending(newest_first=True).exclude(pk=after).values_list("pk", flat=True).first()


def image_pending_count() -> int:
    return images_pending().count()


# --- The image list ----------------------------------------------------------------------------

def images_filter(
    queryset: QuerySet[Image] | None = None,
    *,
    status: str | None = None,
    generation_id: str | None = None,
    search: str | None = None,
) -> QuerySet[Image]:
    """`queryset` (all images by default) narrowed to a status, a generation and a prompt containing `search`.

    An empty `generation_id` or `search` filters nothing, as an empty query parameter does.
    """
    if queryset is None:
        queryset = Image.objects.all()
    if status is not None:
        queryset = queryset.filter(status=status)
    if generation_id:
        queryset = queryset.filter(generation_id=generation_id)
    if search:
        queryset = queryset.filter(prompt__icontains=search)
    return queryset


# --- Counts ------------------------------------------------------------------------------------

def _counts_by_status(queryset: QuerySet) -> dict[str, int]:
    return dict(queryset.order_by().values_list("status").annotate(n=Count("pk")))


def stats() -> Stats:
    """How many images, generations and products are in each status, with their totals."""
    return {
        "images": _with_total(_counts_by_status(Image.objects.all())),
        "generations": _with_total(_counts_by_status(Generation.objects.all())),
        "products": _with_total(relations.product_counts()),
    }


def _with_total(by_status: dict[str, int]) -> CountsByStatus:
    return {"total": sum(by_status.values()), "by_status": by_status}
