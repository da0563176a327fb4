"""Reads about images and generations that more than one caller makes: the review queue, the image
list's filters and the counts by status (the API, the admin and the management commands)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from django.db import connections, router
from django.db.models import Exists, OuterRef, Q, QuerySet

from core.db.compiled import PlainValuesQuerySet
from core.db.counters import status_counts_later
from core.db.pipeline import pipelined
from core.db.textsearch import search_terms, text_match, text_search
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


# How many images the generation choices are read from (the admin's filter, the workspace's).
GENERATIONS_SCAN = 1500


def generation_ids_of(images: QuerySet[Image], scan: int = GENERATIONS_SCAN) -> QuerySet[Image]:
    """The generation of each of the first `scan` images of `images` (in its order; uploads have none):
    with an index's order, a range of that index, whatever the table holds besides."""
    return images.filter(generation__isnull=False).values_list("generation_id", flat=True)[:scan]


def generations_of_images(images: QuerySet[Image], *, limit: int) -> list[dict[str, Any]]:
    """The generations (at most `limit`) of the first images of `images` (see `generation_ids_of`), as
    `id, prompt, created_at`, newest first: for newest-first images, the newest generations with such an
    image. Asking each generation, newest first, whether it had such an image walked every generation
    without one (decided, failed) before the last found, e.g. all of them once the review queue was nearly
    empty."""
    ids = list(dict.fromkeys(generation_ids_of(images)))[:limit]
    return list(Generation.objects.filter(pk__in=ids).order_by("-created_at", "-id")
                .values("id", "prompt", "created_at"))


def with_duplicate_prompt_marker(queryset: QuerySet[Image]) -> QuerySet[Image]:
    """`queryset` with `duplicate`: whether another generation used the image's prompt and parameters (the
    queue's and the workspace's "duplicate prompt" badge). For the rows of a page: as an annotation of a
    whole list its join to the generations would go into the list's count."""
    same_prompt = Generation.objects.filter(prompt_hash=OuterRef("generation__prompt_hash")).exclude(
        pk=OuterRef("generation_id")
    )
    return queryset.annotate(duplicate=Exists(same_prompt))


def image_pending_count() -> int:
    """How many images wait for review, from the database's counters (constant time, exact)."""
    return image_status_counts().get(ImageStatus.PENDING, 0)


def image_status_counts() -> dict[str, int]:
    """Images per status (statuses with at least one), from the database's counters."""
    return _counts(Image)


def generation_status_counts() -> dict[str, int]:
    """Generations per status (statuses with at least one), from the database's counters."""
    return _counts(Generation)


# --- The image list ----------------------------------------------------------------------------

class CountedImages(PlainValuesQuerySet):
    """Images whose `count()` is read from the counters while the rows are all images or one status.

    The page count of `GET images` (v1) would otherwise count every row on every request. Any other
    condition added later (a filter, a slice, DISTINCT, a union) makes it count the rows as usual. A page
    of all images, as `.values()`, is read with SQL compiled once (PlainValuesQuerySet).
    """

    _counted_status: str | None = None
    _counted = False

    def _clone(self):
        clone = super()._clone()
        clone._counted, clone._counted_status = self._counted, self._counted_status
        return clone

    def count(self) -> int:
        later = self.count_later()
        return super().count() if later is None else later()

    def counted(self) -> bool:
        """Whether the count is the counters' (then `count_later()` sends their read)."""
        query = self.query
        if not self._counted or query.is_sliced or query.distinct or query.combinator or self._result_cache:
            return False
        reference = Image.objects.all() if self._counted_status is None else \
            Image.objects.filter(status=self._counted_status)
        return query.where == reference.query.where

    def count_later(self) -> Callable[[], int] | None:
        """When the count is the counters': it in two steps, the read sent now (`core.db.counters`) and
        answered by the function returned; else None."""
        if not self.counted():
            return None
        counts = _counts_later(Image)
        status = self._counted_status
        return lambda: sum(counts().values()) if status is None else counts().get(status, 0)


def images_all(status: str | None = None) -> QuerySet[Image]:
    """All images (of one status), counted from the counters (see CountedImages)."""
    queryset = CountedImages(model=Image)
    if status is not None:
        queryset = queryset.filter(status=status)
    queryset._counted, queryset._counted_status = True, status
    return queryset


def images_filter(
    queryset: QuerySet[Image] | None = None,
    *,
    status: str | None = None,
    generation_id: str | None = None,
    search: str | None = None,
) -> QuerySet[Image]:
    """`queryset` (all images by default) narrowed to a status, a generation and a prompt containing `search`.

    `search` matches a prompt containing it, ignoring case, through the prompt index (core.db.textsearch).
    An empty `generation_id` or `search` filters nothing, as an empty query parameter does.
    """
    if queryset is None:
        queryset = images_all(status)
    elif status is not None:
        queryset = queryset.filter(status=status)
    if generation_id:
        queryset = queryset.filter(generation_id=generation_id)
    if search:
        queryset = text_search(queryset, "prompt", search)
    return queryset


def images_search(queryset: QuerySet[Image], words: str) -> QuerySet[Image]:
    """The admin's search: rows whose prompt contains every word (or "quoted phrase"), or whose id is one."""
    for term in search_terms(words):
        queryset = queryset.filter(text_match(Image, "prompt", term, using=queryset.db) | Q(pk=term))
    return queryset


def generations_search(queryset: QuerySet[Generation], words: str) -> QuerySet[Generation]:
    """The admin's search of generations: every word (or "quoted phrase") in the prompt, through the prompt
    index, or the generation's id or prompt hash (a hex digest, matched in either case)."""
    for term in search_terms(words):
        queryset = queryset.filter(text_match(Generation, "prompt", term, using=queryset.db)
                                   | Q(pk=term) | Q(prompt_hash=term.lower()))
    return queryset


# --- Counts ------------------------------------------------------------------------------------

def _counts(model: type) -> dict[str, int]:
    return _counts_later(model)()


def _counts_later(model: type) -> Callable[[], dict[str, int]]:
    table = model._meta.db_table
    counts = status_counts_later(connections[router.db_for_read(model)], [table])
    return lambda: counts()[table]


def stats() -> Stats:
    """How many images, generations and products are in each status, with their totals.

    Read from the counters the database keeps (core.db.counters): constant time however many rows,
    and exact, whoever wrote them.
    """
    images, generations = Image._meta.db_table, Generation._meta.db_table
    # The three reads sent together: one round trip to PostgreSQL, not three.
    with pipelined(router.db_for_read(Image)):
        counts = status_counts_later(connections[router.db_for_read(Image)], [images, generations])
        products = relations.product_counts_later()
    by_table = counts()
    return {
        "images": _with_total(by_table[images]),
        "generations": _with_total(by_table[generations]),
        "products": _with_total(products()),
    }


def _with_total(by_status: dict[str, int]) -> CountsByStatus:
    return {"total": sum(by_status.values()), "by_status": by_status}
