"""Helpers the admin pages of every app share: the acting user, object links, status badges, batch reports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.http import HttpRequest
from django.urls import reverse
from django.utils.dateformat import format as date_format
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
