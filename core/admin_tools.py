"""Helpers the admin pages of every app share: the acting user, object links, status badges, batch reports,
and changelists that never count a whole table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import IGNORED_PARAMS, PAGE_VAR, SEARCH_VAR
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.dateformat import format as date_format
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.timezone import localtime

from core.actors import Actor, Via
from core.batch import BatchResult

# The admin pages' own styles (queue, badges, tiles), on every page that shows gateway objects.
REVIEW_CSS = {"all": ["core/admin/review.css"]}


class ReadOnlyInline(admin.TabularInline):
    """An inline that only shows rows (history, deliveries, attempts): nothing is added, changed or deleted."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StatusHistoryInline(ReadOnlyInline):
    """The status history of an object (a `core.models.StatusChange` model): who, when, from → to, how, why."""

    fields = readonly_fields = ["when", "from_status", "to_status", "by", "via", "note"]
    verbose_name = "status change"
    verbose_name_plural = "Status history"
    ordering = ["created_at", "id"]

    @admin.display(description="When")
    def when(self, obj: Any) -> str:
        return date_format(localtime(obj.created_at), "Y-m-d H:i:s")

    @admin.display(description="By")
    def by(self, obj: Any) -> str:
        return obj.actor_label

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever may see the object may see its history; there is no separate history permission.
        opts = self.parent_model._meta
        return any(request.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")
                   for action in ("view", "change"))


def admin_actor(request: HttpRequest) -> Actor:
    return Actor(request.user, Via.ADMIN)


def status_badge(status: str) -> str:
    return format_html('<span class="pod-badge pod-status-{}">{}</span>', status, status)


def admin_url(name: str, pk: str) -> str:
    """An admin object URL, the id quoted the way the admin unquotes it."""
    return reverse(f"admin:{name}", args=[quote(pk)])


def report_result(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    result: BatchResult,
    done: str,
    *,
    wording: Callable[[dict[str, str]], str] | None = None,
) -> None:
    """Tell the reviewer which objects changed, and which were refused and why (grouped by reason).

    `wording` may give a skipped entry the admin's own sentence for its code.
    """
    if result.successful:
        count = len(result.successful)
        model_admin.message_user(
            request,
            f"{done} {count} image{'s' if count != 1 else ''}: {', '.join(result.successful)}",
            messages.SUCCESS,
        )
    refused: dict[str, list[str]] = defaultdict(list)
    for entry in result.skipped:
        refused[(wording(entry) if wording else "") or entry["reason"]].append(entry["image_id"])
    for entry in result.failed:
        refused[entry["error"]].append(entry["image_id"])
    level = messages.WARNING if result.successful else messages.ERROR
    for reason, ids in refused.items():
        model_admin.message_user(request, f"Not changed ({reason}): {', '.join(ids)}", level)
    if not (result.successful or result.skipped or result.failed):
        model_admin.message_user(request, "No images were selected.", messages.WARNING)


class CappedPaginator(Paginator):
    """A paginator that never counts a whole table and never offers a page deeper than `max_pages`.

    The count is given when the admin knows it cheaply (`CappedCountAdmin.known_count`: the database's
    counters); otherwise rows are counted up to one past `pages_ahead` pages after the page shown (at
    most `max_pages` in all), and `capped` says "more" (admin/pagination.html, admin/actions.html): a
    filter that few rows match (pending with print errors) is counted by reading its index until enough
    rows match, and up to the last page offered that was a walk through most of a large table.
    """

    max_pages = 200
    pages_ahead = 10

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, *,
                 known_count: int | None = None, page: int = 1) -> None:
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.known_count = known_count
        self.page_shown = page

    @cached_property
    def limit(self) -> int:
        return min(self.max_pages, max(self.page_shown, 1) + self.pages_ahead) * self.per_page

    @cached_property
    def count(self) -> int:
        if self.known_count is not None:
            return self.known_count
        return self.object_list.order_by().values("pk")[: self.limit + 1].count()

    @cached_property
    def capped(self) -> bool:
        """Whether the count stopped at `limit` (the list holds more rows than it says)."""
        return self.known_count is None and self.count > self.limit

    @cached_property
    def beyond_last(self) -> bool:
        """Whether the list holds rows past the last page offered (only a filter or a search shows them)."""
        return self.count > self.max_pages * self.per_page

    @cached_property
    def num_pages(self) -> int:
        return min(super().num_pages, self.max_pages)


class CappedCountAdmin:
    """A ModelAdmin mixin: the changelist is counted by `CappedPaginator`, and only once (no "x of y").

    A model whose rows the database counts by status (core.db.counters) gives `status_counts()`: the list
    of all its rows, or of one status (`status_filter`), then has its exact count without counting.
    """

    paginator = CappedPaginator
    show_full_result_count = False
    status_filter = "status__exact"

    def status_counts(self, request: HttpRequest) -> dict[str, int] | None:
        """Rows per status of everything the request's user may see in this list, from the database's
        counters; None when they do not tell (the default, or a user who sees only some of the rows)."""
        return None

    def known_count(self, request: HttpRequest) -> int | None:
        """The list's row count when it costs nothing to know (the counters: all rows or one status), else None."""
        filters = set(request.GET) - {*IGNORED_PARAMS, PAGE_VAR}
        if request.GET.get(SEARCH_VAR, "").strip() or not filters <= {self.status_filter}:
            return None
        statuses = request.GET.getlist(self.status_filter)
        # One known status only: an empty or repeated value filters differently from what one counter holds.
        field = self.model._meta.get_field(self.status_filter.removesuffix("__exact"))
        if statuses and (len(statuses) != 1 or statuses[0] not in {value for value, _ in field.flatchoices}):
            return None
        counts = self.status_counts(request)
        if counts is None:
            return None
        return counts.get(statuses[0], 0) if statuses else sum(counts.values())

    def get_paginator(self, request: HttpRequest, queryset: QuerySet, per_page: int, orphans: int = 0,
                      allow_empty_first_page: bool = True) -> CappedPaginator:
        try:  # as Django's ChangeList reads the page number
            page = int(request.GET.get(PAGE_VAR, 1))
        except ValueError:
            page = 1
        return self.paginator(queryset, per_page, orphans, allow_empty_first_page,
                              known_count=self.known_count(request), page=page)
