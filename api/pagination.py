"""List pagination per API version: v1 numbered pages, v2 cursors (CONTRACT §4)."""

from __future__ import annotations

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination

MAX_PAGE_SIZE = 200


class PagePagination(PageNumberPagination):
    """v1: `?page=&page_size=` → `{count, next, previous, results}`."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def paginate_queryset(self, queryset, request, view=None):
        # A `page` that is not a number is the client's typo (400); a number past the end stays DRF's 404.
        number = request.query_params.get(self.page_query_param)
        if number is not None and number not in self.last_page_strings and not (number.isdigit() and int(number)):
            raise ValidationError({self.page_query_param: ["A page number (1, 2, …) or 'last' is required."]})
        return super().paginate_queryset(queryset, request, view)


class CursorPage(CursorPagination):
    """v2: `?cursor=&page_size=` → `{results, next, previous}`; stable under concurrent inserts."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "-created_at"

    def decode_cursor(self, request):
        # A cursor is only ever copied from `next`/`previous`; a damaged one is bad input (400), not a 404.
        try:
            return super().decode_cursor(request)
        except NotFound:
            message = "Invalid cursor; follow a next or previous link."
            raise ValidationError({self.cursor_query_param: [message]}) from None


class VersionedPaginationMixin:
    """For list views: picks the paginator by `request.version` (also what drf-spectacular sees per version)."""

    @property
    def pagination_class(self) -> type[BasePagination]:
        request = getattr(self, "request", None)
        return CursorPage if getattr(request, "version", None) == "v2" else PagePagination
