"""List pagination per API version: v1 numbered pages, v2 cursors (CONTRACT §4)."""

from __future__ import annotations

from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination

MAX_PAGE_SIZE = 200


class PagePagination(PageNumberPagination):
    """v1: `?page=&page_size=` → `{count, next, previous, results}`."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class CursorPage(CursorPagination):
    """v2: `?cursor=&page_size=` → `{results, next, previous}`; stable under concurrent inserts."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "-created_at"


class VersionedPaginationMixin:
    """For list views: picks the paginator by `request.version` (also what drf-spectacular sees per version)."""

    @property
    def pagination_class(self) -> type[BasePagination]:
        request = getattr(self, "request", None)
        return CursorPage if getattr(request, "version", None) == "v2" else PagePagination
