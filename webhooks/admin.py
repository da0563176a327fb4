"""Webhook subscriptions with their recent deliveries, the deliveries with their attempts, and the outbox.

Owners are respected as in the API: a non-superuser sees only its own subscriptions and their
deliveries, a superuser all of them. Pings, redeliveries and deletions go through webhooks.services.
Secrets are never shown here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from core.admin_tools import REVIEW_CSS, ReadOnlyInline, admin_actor, admin_url, status_badge
from core.errors import DomainError
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription

VIEW = "webhooks.view_webhooksubscription"
CHANGE = "webhooks.change_webhooksubscription"
RECENT_DELIVERIES = 20
ERROR_PREVIEW = 120


def _when(value: Any) -> str:
    return date_format(localtime(value), "Y-m-d H:i:s") if value else "—"


def _short(text: str) -> str:
    return text if len(text) <= ERROR_PREVIEW else text[: ERROR_PREVIEW - 1] + "…"


def _may_see_subscriptions(request: HttpRequest) -> bool:
    # Deliveries and attempts have no permissions of their own: they follow their subscription's.
    return request.user.has_perm(VIEW) or request.user.has_perm(CHANGE)


class SubscriptionRowsInline(ReadOnlyInline):
    """Read-only rows, shown to whoever may see the subscriptions."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_see_subscriptions(request)


class RecentDeliveriesFormSet(BaseInlineFormSet):
    """The newest deliveries only: a subscription may have thousands; the delivery list has them all."""

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset().order_by("-created_at", "-id")[:RECENT_DELIVERIES]
        return self._recent


class RecentDeliveryInline(SubscriptionRowsInline):
    model = WebhookDelivery
    formset = RecentDeliveriesFormSet
    verbose_name = "delivery"
    verbose_name_plural = f"Recent deliveries (the last {RECENT_DELIVERIES})"
    fields = readonly_fields = ["delivery_link", "status_column", "event_type", "attempt_count", "next_attempt",
                                "last_error_column", "created"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).select_related("event").defer("event__data")

    @admin.display(description="Delivery")
    def delivery_link(self, obj: WebhookDelivery) -> str:
        return format_html('<a href="{}">{}</a>', admin_url("webhooks_webhookdelivery_change", obj.pk), obj.pk)

    @admin.display(description="Status")
    def status_column(self, obj: WebhookDelivery) -> str:
        return status_badge(obj.status)

    @admin.display(description="Event type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.event_type

    @admin.display(description="Next attempt")
    def next_attempt(self, obj: WebhookDelivery) -> str:
        return _when(obj.next_attempt_at)

    @admin.display(description="Last error")
    def last_error_column(self, obj: WebhookDelivery) -> str:
        return _short(obj.last_error) or "—"

    @admin.display(description="Created")
    def created(self, obj: WebhookDelivery) -> str:
        return _when(obj.created_at)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions are created through the API (URL checks, secret generation); here they are inspected."""

    list_display = ["url", "owner", "events_column", "is_active", "consecutive_failures", "disabled_reason",
                    "created_at"]
    list_filter = ["is_active", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["url", "description", "=id", "owner__username"]
    fields = readonly_fields = ["id", "url", "owner", "events_column", "description", "is_active",
                                "consecutive_failures", "disabled_reason", "created_at"]
    inlines = [RecentDeliveryInline]
    actions = ["send_ping"]

    class Media:
        css = REVIEW_CSS

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookSubscription]:
        return services.subscriptions_of(admin_actor(request)).select_related("owner")

    @admin.display(description="Events")
    def events_column(self, obj: WebhookSubscription) -> str:
        return ", ".join(obj.events or [])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookSubscription | None = None) -> bool:
        return False

    def has_ping_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CHANGE)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list, dict, set, list]:
        # Deliveries and attempts go with their subscription and have no delete permission of their own;
        # the confirmation counts them rather than listing them (a busy subscription has thousands).
        subscriptions = list(objs)
        ids = [subscription.pk for subscription in subscriptions]
        counts = {
            "webhook subscriptions": len(subscriptions),
            "webhook deliveries": WebhookDelivery.objects.filter(subscription_id__in=ids).count(),
            "webhook attempts": WebhookAttempt.objects.filter(delivery__subscription_id__in=ids).count(),
        }
        return [str(subscription) for subscription in subscriptions], counts, set(), []

    def delete_model(self, request: HttpRequest, obj: WebhookSubscription) -> None:
        services.subscription_delete(subscription_id=obj.pk, actor=admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        for subscription_id in queryset.values_list("pk", flat=True):
            services.subscription_delete(subscription_id=subscription_id, actor=admin_actor(request))

    @admin.action(description="Send a ping", permissions=["ping"])
    def send_ping(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        queued: list[str] = []
        for subscription in queryset.order_by("created_at", "id"):
            try:
                delivery = services.subscription_ping(subscription_id=subscription.pk, actor=admin_actor(request))
            except DomainError as exc:
                self.message_user(request, f"No ping for {subscription.url}: {exc.message}", messages.WARNING)
            else:
                queued.append(f"{subscription.url} ({delivery.pk})")
        if queued:
            self.message_user(request, f"Ping queued for {len(queued)}: {', '.join(queued)}", messages.SUCCESS)


class AttemptInline(SubscriptionRowsInline):
    model = WebhookAttempt
    verbose_name_plural = "Attempts"
    fields = readonly_fields = ["number", "started", "status_code", "duration_ms", "error", "response"]

    @admin.display(description="Started")
    def started(self, obj: WebhookAttempt) -> str:
        return _when(obj.started_at)

    @admin.display(description="Response body")
    def response(self, obj: WebhookAttempt) -> str:
        if not obj.response_body:
            return "—"
        return format_html('<pre style="white-space: pre-wrap; max-height: 12em; overflow: auto; margin: 0">{}</pre>',
                           obj.response_body)


class DeliveryStatusFilter(admin.SimpleListFilter):
    """By status; "Failed deliveries" are the ones to look at and redeliver."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            (DeliveryStatus.FAILED, "Failed deliveries"),
            (DeliveryStatus.PENDING, "Pending (waiting for an attempt)"),
            (DeliveryStatus.DELIVERING, "Being sent"),
            (DeliveryStatus.DELIVERED, "Delivered"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> QuerySet[WebhookDelivery]:
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Every event sent (or to be sent) to a subscription, with its attempts; redelivered on request."""

    list_display = ["id", "subscription_column", "event_type", "status_column", "attempt_count", "next_attempt",
                    "last_error_column", "created_at", "delivered_at"]
    list_filter = [DeliveryStatusFilter, "event__event_type", "created_at"]
    list_select_related = ["event", "subscription"]
    search_fields = ["=id", "=event__id", "subscription__url"]
    list_per_page = 50
    actions = ["redeliver"]
    fields = readonly_fields = ["id", "subscription_link", "event_link", "event_type", "status_column",
                                "attempt_count", "next_attempt", "last_error", "created_at", "delivered_at"]
    inlines = [AttemptInline]

    class Media:
        css = REVIEW_CSS

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        deliveries = services.deliveries_of(admin_actor(request))
        return deliveries.select_related("event", "subscription").defer("event__data")

    def get_fields(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> list[str]:
        # The outbox (every event's payload) is for those who may read it; others see the event id only.
        if request.user.has_perm("webhooks.view_webhookevent"):
            return self.fields
        return [name if name != "event_link" else "event_id_column" for name in self.fields]

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> list[str]:
        return self.get_fields(request, obj)

    @admin.display(description="Subscription", ordering="subscription__url")
    def subscription_column(self, obj: WebhookDelivery) -> str:
        return obj.subscription.url

    @admin.display(description="Subscription")
    def subscription_link(self, obj: WebhookDelivery) -> str:
        url = admin_url("webhooks_webhooksubscription_change", obj.subscription_id)
        return format_html('<a href="{}">{}</a>', url, obj.subscription.url)

    @admin.display(description="Event")
    def event_link(self, obj: WebhookDelivery) -> str:
        return format_html('<a href="{}">{}</a>', admin_url("webhooks_webhookevent_change", obj.event_id),
                           obj.event_id)

    @admin.display(description="Event")
    def event_id_column(self, obj: WebhookDelivery) -> str:
        return obj.event_id

    @admin.display(description="Event type", ordering="event__event_type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.event_type

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj: WebhookDelivery) -> str:
        return status_badge(obj.status)

    @admin.display(description="Next attempt", ordering="next_attempt_at")
    def next_attempt(self, obj: WebhookDelivery) -> str:
        return _when(obj.next_attempt_at)

    @admin.display(description="Last error")
    def last_error_column(self, obj: WebhookDelivery) -> str:
        return _short(obj.last_error) or "—"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may_see_subscriptions(request)

    def has_view_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return _may_see_subscriptions(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        # Old deliveries are pruned (`manage.py prune_webhooks`); deleting one by hand would lose its record.
        return False

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CHANGE)

    @admin.action(description="Redeliver selected deliveries", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        queued, refused = services.deliveries_redeliver_selected(
            delivery_ids=list(queryset.values_list("pk", flat=True)), actor=admin_actor(request)
        )
        for delivery_id, reason in refused.items():
            self.message_user(request, f"Not redelivered ({reason}): {delivery_id}", messages.WARNING)
        if queued:
            self.message_user(request, f"Queued again {len(queued)}: {', '.join(queued)}", messages.SUCCESS)


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
