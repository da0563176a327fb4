"""Webhook subscriptions and the event outbox, browsable; secrets are never shown here."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from webhooks.models import WebhookEvent, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions are created through the API (URL checks, secret generation); here they are inspected."""

    list_display = ["url", "owner", "events_column", "is_active", "consecutive_failures", "disabled_reason",
                    "created_at"]
    list_filter = ["is_active", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["url", "description", "=id", "owner__username"]
    fields = readonly_fields = ["id", "url", "owner", "events", "description", "is_active", "consecutive_failures",
                                "disabled_reason", "created_at"]

    @admin.display(description="Events")
    def events_column(self, obj: WebhookSubscription) -> str:
        return ", ".join(obj.events or [])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookSubscription | None = None) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """The outbox: what happened, with the payload every matching subscriber receives."""

    list_display = ["id", "event_type", "created_at", "dispatched_at"]
    list_filter = ["event_type", "created_at"]
    search_fields = ["=id"]
    fields = readonly_fields = ["id", "event_type", "data", "created_at", "dispatched_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WebhookEvent | None = None) -> bool:
        return False
