"""List pagination per API version: v1 numbered pages, v2 cursors (CONTRACT §4)."""

from __future__ import annotations

import base64
import re

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination

from core.db.pipeline import pipelined_snapshot, pipelines

MAX_PAGE_SIZE = 200
# Digits only, and few enough to be a number a page could have (int() would also read "١٢" or " 7").
_NUMBER_RE = re.compile(r"[0-9]{1,9}")
INVALID_CURSOR = "Invalid cursor; follow a next or previous link."


def _whole_number(value: str) -> int | None:
    return int(value) if _NUMBER_RE.fullmatch(value) and int(value) > 0 else None


class PageSizeMixin:
    """`page_size` is a whole number ≥ 1 (larger than 200 reads as 200); anything else is a 400, not ignored."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        size = _whole_number(raw)
        if size is None:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return min(size, self.max_page_size)


class PagePagination(PageSizeMixin, PageNumberPagination):
    """v1: `?page=&page_size=` → `{count, next, previous, results}`."""

    def paginate_queryset(self, queryset, request, view=None):
        # A `page` that is not a number is the client's typo (400); a number past the end stays DRF's 404.
        number = request.query_params.get(self.page_query_param)
        if number is not None and number not in self.last_page_strings and _whole_number(number) is None:
            raise ValidationError({self.page_query_param: ["A page number (1, 2, …) or 'last' is required."]})
        if number not in self.last_page_strings:
            queryset = _SentPage.of(queryset, self.get_page_size(request), int(number or 1),
                                    getattr(view, "send_with_page", None))
        return super().paginate_queryset(queryset, request, view)


class _SentPage:
    """A list's count and the page asked for, sent together and answered as Django's Paginator asks.

    The paginator counts first (to know the pages) and then reads the page: two round trips to
    PostgreSQL. When the queryset can send both reads without waiting (`counted()`, `count_later()`,
    `send()`), both go in one pipeline and one snapshot (`core.db.pipeline.pipelined_snapshot`) and are
    answered by its end; the paginator then reads them here. The view's `send_with_page(keys)`, when it
    has one, is called in the same block with the page's ids as its statement selects them
    (`core.db.keyed.KeysFrom`, or None), to send its reads about the page's rows with the page.
    A slice other than the one sent (a paginator with orphans, say) runs the query as usual, and the view
    is told so by `send_with_page(None)`: what it sent is not about those rows. Only
    for pages that start within the first SENT_AHEAD_ROWS rows: a page past the end is read for nothing,
    and reading one far past it would walk the whole table (the count alone answers it 404).
    """

    SENT_AHEAD_ROWS = 10_000

    def __init__(self, queryset, count: int, bottom: int, top: int, rows: list, send_with_page=None) -> None:
        self._queryset, self._count, self._bottom, self._top, self._rows = queryset, count, bottom, top, rows
        self._send_with_page = send_with_page
        self.ordered = queryset.ordered  # the paginator warns about unordered lists

    @classmethod
    def of(cls, queryset, size: int, number: int, send_with_page=None):
        counted = getattr(queryset, "counted", None)
        bottom, top = (number - 1) * size, number * size
        if counted is None or not hasattr(queryset, "send") or bottom >= cls.SENT_AHEAD_ROWS or \
                not pipelines(queryset.db) or not counted():
            return queryset
        with pipelined_snapshot(queryset.db):
            count = queryset.count_later()
            page = queryset[bottom:top]
            rows = page.send()
            if send_with_page is not None:
                send_with_page(page.keys_from(queryset.model._meta.pk.attname))
        return cls(queryset, count(), bottom, top, rows(), send_with_page)

    def count(self) -> int:
        return self._count

    def __getitem__(self, key):
        # The last page's slice ends at the count, within the page sent (whose rows end with the table's).
        if isinstance(key, slice) and key.step is None and key.start == self._bottom and key.stop is not None \
                and key.stop <= self._top:
            return self._rows[: key.stop - key.start]
        if self._send_with_page is not None:
            self._send_with_page(None)
        return self._queryset[key]


class CursorPage(PageSizeMixin, CursorPagination):
    """v2: `?cursor=&page_size=` → `{results, next, previous}`; stable under concurrent inserts."""

    ordering = "-created_at"

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model  # decode_cursor checks the cursor's position against its field
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        # A cursor is only ever copied from `next`/`previous`; a damaged one is bad input (400), not a 404.
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            # DRF's decoder skips characters that are not base64, so "%%%" would read as the first page.
            if encoded is not None:
                base64.b64decode(encoded.encode("ascii"), validate=True)
            cursor = super().decode_cursor(request)
        except (NotFound, ValueError):
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        if cursor is not None and cursor.position is not None and not self._position_valid(cursor.position):
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]})
        return cursor

    def _position_valid(self, position: str) -> bool:
        """Whether the position reads as a value of the ordering field (else the query would fail: a 500)."""
        if "\x00" in position or len(position) > 200:
            return False
        try:
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        except (AttributeError, FieldDoesNotExist):
            return True  # not a model field (an annotation): the database compares it as given
        try:
            field.clean(position, None)  # the type and the field's range (an integer SQLite can hold)
        except (DjangoValidationError, TypeError, ValueError, OverflowError):
            return False
        return True


class VersionedPaginationMixin:
    """For list views: picks the paginator by `request.version` (also what drf-spectacular sees per version)."""

    @property
    def pagination_class(self) -> type[BasePagination]:
        request = getattr(self, "request", None)
        return CursorPage if getattr(request, "version", None) == "v2" else PagePagination
